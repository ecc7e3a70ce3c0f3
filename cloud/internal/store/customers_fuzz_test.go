package store

import (
	"encoding/json"
	"testing"

	"github.com/omnisync/omnisync/shared/events"
	"github.com/omnisync/omnisync/shared/hlc"
)

// FuzzReadCustomer feeds arbitrary bodies of the customer kinds, valid by
// the shared schema, to the hub's reading of them (normalising
// identifiers, profile fields, consent decisions): it never panics, and
// what it accepts names only well-formed digests, twice alike.
func FuzzReadCustomer(f *testing.F) {
	for _, seed := range []struct{ kind, body string }{
		{"identify", `{"identifiers":{"loyalty":"lc 1","email":"A.B+tag@Gmail.com","phone":"010-1234-5678"},"region":"KR"}`},
		{"identify", `{"identifiers":{"loyalty":"null","app":"0000"}}`},
		{"update", `{"customer":{"account":"W-1"},"fields":{"birth_date":"1990-02-30","x_shoe":"42"}}`},
		{"consent", `{"customer":{"email":"a@b.example"},"purpose":"sms","status":"revoked","channel":"web"}`},
		{"erase", `{"customer":{"phone":"+447911123456"}}`},
		{"sale", `{"location":"S1","customer":{"loyalty":"LC-1"},"lines":[{"sku":"A","qty":1,"unit_price":100}]}`},
	} {
		f.Add(seed.kind, []byte(seed.body))
	}
	s := &Store{custKeys: testKeys}
	s.custPolicy = newStoreForFuzz().custPolicy
	f.Fuzz(func(t *testing.T, kind string, body []byte) {
		data, err := events.ValidateBody(events.Kind(kind), json.RawMessage(body))
		if err != nil {
			return
		}
		env := &events.Envelope{ID: "01930000-0000-7000-8000-000000000001", Kind: events.Kind(kind), Data: data,
			Origin: events.Origin{Store: "S1", Device: "pos-1", Epoch: 1, Seq: 1}, HLC: hlc.Timestamp{Wall: 1}}
		r1, err1 := s.readCustomer(env)
		r2, err2 := s.readCustomer(env)
		if (err1 == nil) != (err2 == nil) || (r1 == nil) != (r2 == nil) {
			t.Fatalf("two readings differ: %v %v", err1, err2)
		}
		if r1 == nil {
			return
		}
		d1, d2 := r1.digests(), r2.digests()
		if len(d1) != len(d2) {
			t.Fatal("digests differ")
		}
		for i := range d1 {
			if d1[i] != d2[i] || len(d1[i]) != 67 {
				t.Fatalf("digest %q / %q", d1[i], d2[i])
			}
		}
		if err := r1.obs.Validate(); len(r1.obs.Identifiers) > 0 && err != nil {
			t.Fatalf("observation: %v", err)
		}
	})
}
