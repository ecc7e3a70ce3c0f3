package staffq

import (
	"encoding/json"
	"reflect"
	"testing"

	"github.com/omnisync/omnisync/shared/events"
	"github.com/omnisync/omnisync/shared/hlc"
)

// FuzzWire feeds what another machine on the store's network may send on
// the staff subjects through the checks and the merge: a record that
// passes check merges with itself into itself and with a known record of
// the same request the same in either order, whatever its fields, and
// nothing panics.
func FuzzWire(f *testing.F) {
	seed := wire{Device: "gw", Inst: "a", Requests: []record{{
		Request:   Request{ID: "r1", Zone: "room-1", Reason: events.AssistSize, Fetch: Item{SKU: "SKU-1", Location: &Location{Area: "rack-7", SeenMS: 900, Units: []string{"6789"}}}, Trying: &Item{SKU: "SKU-0"}, Origin: "gw"},
		CreatedAt: Stamp{HLC: hlc.Timestamp{Wall: 1_000}, Device: "gw"},
		ClaimedAt: &Stamp{HLC: hlc.Timestamp{Wall: 1_200, Logical: 1}, Device: "hand-1"},
	}}}
	b, _ := json.Marshal(seed)
	f.Add(b)
	f.Add([]byte(`{"device":"pos-1","inst":"b","requests":[{"id":"r2","zone":"room-2","reason":"help","fetch":{},"origin":"pos-1","created_at":{"hlc":{"wall":5},"device":"pos-1"},"done_at":{"hlc":{"wall":7},"device":"gw"}}]}`))
	f.Add([]byte(`{"requests":[{"id":"","zone":"x","reason":"size"}]}`))
	f.Add([]byte(`{"device":"gw","inst":"a"}`))
	known := seed.Requests[0]
	known.settle()
	f.Fuzz(func(t *testing.T, data []byte) {
		var w wire
		if json.Unmarshal(data, &w) != nil {
			return
		}
		for _, r := range w.Requests {
			if r.check() != nil {
				continue
			}
			r.settle()
			if got := merge(r, r); !reflect.DeepEqual(got, r) {
				t.Fatalf("not idempotent:\n%+v\n%+v", got, r)
			}
			k := known
			k.ID = r.ID
			if ab, ba := merge(r, k), merge(k, r); !reflect.DeepEqual(ab, ba) {
				t.Fatalf("not commutative:\n%+v\n%+v", ab, ba)
			}
		}
	})
}
