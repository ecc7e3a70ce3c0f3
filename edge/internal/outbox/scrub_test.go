package outbox

import (
	"bytes"
	"context"
	"encoding/json"
	"testing"

	"github.com/omnisync/omnisync/shared/events"
)

// dropCustomer removes the customer field of bodies whose customer is
// who.
func dropCustomer(who string) ScrubFunc {
	return func(_ events.Kind, data json.RawMessage) (json.RawMessage, bool) {
		if !bytes.Contains(data, []byte(`"customer"`)) {
			return nil, false
		}
		var m map[string]json.RawMessage
		if json.Unmarshal(data, &m) != nil {
			return nil, false
		}
		var c string
		if json.Unmarshal(m["customer"], &c) != nil || c != who {
			return nil, false
		}
		delete(m, "customer")
		b, _ := json.Marshal(m)
		return b, true
	}
}

// Ensure that Scrub rewrites only the bodies it is asked to, durably and
// in place: ids, seqs, stamps and kinds stay, the lines stay, the pending
// byte count follows, a second scrub changes nothing, idempotency keys
// still replay, and acks still remove the events.
func TestScrub(t *testing.T) {
	opts := testOptions(t)
	o := mustOpen(t, opts)
	withCustomer := func(who string) events.Draft {
		return mustParse(t, `{"kind":"sale","data":{"lines":[{"sku":"SKU-1","qty":2,"unit_price":500}],"customer":"`+who+`"}}`)[0]
	}
	before := mustAppend(t, o, withCustomer("loyalty:LC-1"), scan(t, "0001"), withCustomer("loyalty:LC-2"))
	keyed, _, err := o.AppendOnce(context.Background(), "till-1-receipt-9", []events.Draft{withCustomer("loyalty:LC-1")})
	if err != nil {
		t.Fatal(err)
	}
	before = append(before, keyed...)
	size := o.Stats().Bytes

	n, err := o.Scrub(dropCustomer("loyalty:LC-1"))
	if err != nil || n != 2 {
		t.Fatalf("Scrub = %d, %v; want 2", n, err)
	}
	check := func(o *Outbox) {
		t.Helper()
		recs := readAll(t, o)
		if len(recs) != 4 {
			t.Fatalf("%d records", len(recs))
		}
		var total int64
		for i, r := range recs {
			total += int64(len(r.Data))
			env, err := events.Decode(r.Data)
			if err != nil {
				t.Fatalf("seq %d does not decode after the scrub: %v", r.Seq, err)
			}
			b := before[i]
			if env.ID != b.ID || env.Origin != b.Origin || env.HLC != b.HLC || env.Kind != b.Kind || r.Seq != b.Origin.Seq {
				t.Fatalf("seq %d: envelope changed: %+v, was %+v", r.Seq, env, b)
			}
			if bytes.Contains(env.Data, []byte("LC-1")) || i == 2 && !bytes.Contains(env.Data, []byte(`"customer":"loyalty:LC-2"`)) {
				t.Fatalf("seq %d: body %s", r.Seq, env.Data)
			}
			if env.Kind == events.KindSale && !bytes.Contains(env.Data, []byte(`"SKU-1"`)) {
				t.Fatalf("seq %d lost its lines: %s", r.Seq, env.Data)
			}
		}
		if st := o.Stats(); st.Bytes != total || total >= size {
			t.Fatalf("pending bytes %d, records hold %d (before the scrub %d)", st.Bytes, total, size)
		}
	}
	check(o)
	if n, err := o.Scrub(dropCustomer("loyalty:LC-1")); err != nil || n != 0 {
		t.Fatalf("second Scrub = %d, %v", n, err)
	}
	// A scrub that returns something that is not JSON changes nothing.
	if _, err := o.Scrub(func(events.Kind, json.RawMessage) (json.RawMessage, bool) { return json.RawMessage("{"), true }); err == nil {
		t.Fatal("a broken scrub was accepted")
	}
	check(o)
	// The idempotency key replays the first answer.
	again, replayed, err := o.AppendOnce(context.Background(), "till-1-receipt-9", []events.Draft{withCustomer("loyalty:LC-1")})
	if err != nil || !replayed || again[0].ID != keyed[0].ID {
		t.Fatalf("replay after the scrub: %v %v %v", again, replayed, err)
	}
	o.Close()

	o = mustOpen(t, opts)
	check(o)
	if removed, err := o.Ack(o.Epoch(), 4); err != nil || removed != 4 || o.Stats().Bytes != 0 {
		t.Fatalf("Ack after the scrub: %d %v %+v", removed, err, o.Stats())
	}
}

// BenchmarkScrub measures one Scrub over a backlog of 10,000 pending
// sales, half of them naming the erased customer (reported per event of
// the backlog).
func BenchmarkScrub(b *testing.B) {
	const n = 10000
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		o := mustOpen(b, testOptions(b))
		for j := 0; j < n; j += 500 {
			drafts := make([]events.Draft, 0, 500)
			for k := range 500 {
				who := "loyalty:LC-1"
				if k%2 == 1 {
					who = "loyalty:LC-2"
				}
				drafts = append(drafts, mustParse(b, `{"kind":"sale","data":{"lines":[{"sku":"SKU-1","qty":1,"unit_price":500}],"customer":"`+who+`"}}`)[0])
			}
			mustAppend(b, o, drafts...)
		}
		b.StartTimer()
		if got, err := o.Scrub(dropCustomer("loyalty:LC-1")); err != nil || got != n/2 {
			b.Fatalf("Scrub = %d, %v", got, err)
		}
		b.StopTimer()
		o.Close()
		b.StartTimer()
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/event")
}
