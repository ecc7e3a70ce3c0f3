package store

import (
	"bytes"
	"context"
	"testing"

	"github.com/omnisync/omnisync/cloud/internal/pii"
	"github.com/omnisync/omnisync/shared/events"
)

// Ensure that a refused message naming a customer is kept sealed (no
// clear text at rest, none in the listing), that a replay still opens it
// (after a key rotation too), that a refused message naming no one stays
// readable, and that erasing the customer empties the sealed message.
func TestRefusedMessages_PersonalDataSealed(t *testing.T) {
	t.Parallel()
	forEachStoreAtOnce(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		f := pii.Generate()
		k1, err := pii.New(f)
		if err != nil {
			t.Fatal(err)
		}
		s.SetCustomerKeys(k1)
		email := "quentin.quagmire@shop.test"
		s1 := newDevice("S1", "pos-1", 1)
		apply(t, s, s1.ev(1000, events.KindIdentify, identify(map[string]string{"email": email})))
		// S1 may not sell at S2: refused for its origin, with the
		// shopper's e-mail in it; a plain count at S2 is refused too.
		res := apply(t, s,
			s1.ev(1100, events.KindSale, saleBy("S2", map[string]string{"email": email}, line("A", 1))),
			s1.ev(1200, events.KindCount, events.StockMove{Location: "S2", Lines: []events.Line{line("A", 5)}}))
		if res.DeadLettered != 2 {
			t.Fatalf("refused %d, want 2: %+v", res.DeadLettered, res)
		}
		rows, err := s.r.QueryContext(ctx, "SELECT kind, payload, payload_enc FROM dead_letters")
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var kind string
			var plain, enc []byte
			if err := rows.Scan(&kind, &plain, &enc); err != nil {
				t.Fatal(err)
			}
			if bytes.Contains(plain, []byte("quagmire")) || bytes.Contains(enc, []byte("quagmire")) {
				t.Errorf("%s: the e-mail at rest", kind)
			}
			if kind == "sale" && (len(plain) != 0 || len(enc) == 0) {
				t.Errorf("sale kept in clear (%d bytes) or not at all", len(plain))
			}
			if kind == "count" && (len(plain) == 0 || len(enc) != 0) {
				t.Errorf("a count naming no one sealed")
			}
		}
		rows.Close()

		dls, err := s.DeadLetters(ctx, "", 10)
		if err != nil {
			t.Fatal(err)
		}
		var sale DeadLetter
		for _, d := range dls {
			if d.Kind == "sale" {
				sale = d
			}
			if d.Kind == "sale" && (!d.Sealed || len(d.Payload) != 0) {
				t.Errorf("listing shows the sale: sealed %v, %d bytes", d.Sealed, len(d.Payload))
			}
			if d.Kind == "count" && (d.Sealed || len(d.Payload) == 0) {
				t.Errorf("listing hides the count")
			}
		}

		// A rotation re-seals it, and a replay opens it: refused again
		// for its origin, not for a payload it could not read.
		f.AddSealKey()
		k, err := pii.New(f)
		if err != nil {
			t.Fatal(err)
		}
		s.SetCustomerKeys(k)
		if n, err := s.RekeyCustomers(ctx, 100); err != nil || n == 0 {
			t.Fatalf("rekey: %d %v", n, err)
		}
		d, _, err := s.ReplayDeadLetter(ctx, sale.ID, "hq")
		if err != nil {
			t.Fatal(err)
		}
		if !d.ReplayedAt.IsZero() || d.Reason != sale.Reason {
			t.Fatalf("replay: %+v, was %q", d, sale.Reason)
		}

		// Erasing her empties the sealed message; the refusal stays.
		if _, err := s.EraseCustomer(ctx, find(t, s, "email:"+email), "hq-dpo", ""); err != nil {
			t.Fatal(err)
		}
		var enc []byte
		if err := s.r.QueryRowContext(ctx, "SELECT payload_enc FROM dead_letters WHERE id = $1", sale.ID).Scan(&enc); err != nil {
			t.Fatal(err)
		}
		if len(enc) != 0 {
			t.Fatalf("erased customer's message still kept (%d bytes)", len(enc))
		}
	})
}
