package store

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/omnisync/omnisync/cloud/internal/catalog"
	"github.com/omnisync/omnisync/cloud/internal/inventory"
	"github.com/omnisync/omnisync/shared/events"
)

// Ensure that a count placed at its snapshot folds in the sales made while
// the sweep ran, whichever order they arrive in, records the count's
// method, and records one variance per count line at the catalog price.
func TestCount_SnapshotFoldsSalesDuringSweep(t *testing.T) {
	const (
		t0    = int64(1_780_000_000_000)
		start = t0 + 60_000  // the sweep starts
		mid   = t0 + 90_000  // a sale while it runs
		end   = t0 + 120_000 // the sweep's count event
	)
	cases := []struct {
		name string
		// order lists which events go in which batch: r receipt, b sale
		// before the sweep, d sale during it, c the count.
		order [][]byte
		// expected is what the books said at the snapshot when the count
		// arrived: a sale they did not know of yet is not in it.
		expected int64
	}{
		{"in order", [][]byte{{'r'}, {'b'}, {'d'}, {'c'}}, 8},
		{"count before the sale during the sweep", [][]byte{{'r'}, {'b'}, {'c'}, {'d'}}, 8},
		{"one batch", [][]byte{{'r', 'b', 'd', 'c'}}, 8},
		{"sale before the sweep arrives last", [][]byte{{'r'}, {'c'}, {'d'}, {'b'}}, 10},
	}
	// One database each, a store per case.
	forEachStoreAtOnce(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		cv := variant("A", "P", 1)
		cv.PriceMinor = 250
		importOK(t, s, []catalog.Variant{cv})
		for i, tt := range cases {
			t.Run(tt.name, func(t *testing.T) {
				loc := fmt.Sprintf("S%d", i+1)
				pos, rfid := newDevice(loc, "pos", 1), newDevice(loc, "rfid", 1)
				evs := map[byte]events.Envelope{
					'r': pos.ev(t0, events.KindReceipt, sale(loc, line("A", 10))),
					'b': pos.ev(t0+30_000, events.KindSale, sale(loc, line("A", 2))),
					'd': pos.ev(mid, events.KindSale, sale(loc, line("A", 1))),
					// The shelf held 7 at the sweep's start (10 - 2, one
					// missing); one more was sold while it ran.
					'c': rfid.ev(end, events.KindCount, events.StockMove{Location: loc, Method: events.CountRFIDSweep,
						SnapshotAt: time.UnixMilli(start), Lines: []events.Line{{SKU: "A", Qty: 7}}}),
				}
				for _, batch := range tt.order {
					var envs []events.Envelope
					for _, k := range batch {
						envs = append(envs, evs[k])
					}
					if res := apply(t, s, envs...); res.DeadLettered != 0 {
						t.Fatalf("dead-lettered: %+v", res)
					}
				}
				st := stockAt(t, s, "A", loc)
				if st.OnHand != 6 {
					t.Errorf("on_hand %d, want 6 (7 counted at the sweep's start, 1 sold during it)", st.OnHand)
				}
				if st.CountMethod != events.CountRFIDSweep || !st.CountedAt.Equal(time.UnixMilli(start)) {
					t.Errorf("count %q at %v, want rfid_sweep at the sweep's start", st.CountMethod, st.CountedAt)
				}
				if c := inventory.ConfidenceOf(st.CountMethod, st.CountedAt, time.UnixMilli(end)); c != inventory.ConfidenceHigh {
					t.Errorf("confidence %s", c)
				}
				vs, err := s.CountVariances(ctx, VarianceQuery{Since: time.UnixMilli(t0), Locations: []string{loc}})
				if err != nil {
					t.Fatal(err)
				}
				if len(vs) != 1 {
					t.Fatalf("%d variances, want 1: %+v", len(vs), vs)
				}
				v := vs[0]
				want := CountVariance{EventID: evs['c'].ID, SKU: "A", Location: loc, Store: loc, Device: "rfid", Method: events.CountRFIDSweep,
					SnapshotAt: time.UnixMilli(start).UTC(), Expected: tt.expected, Counted: 7, Variance: 7 - tt.expected, UnitPrice: 250, Currency: "EUR",
					Value: (7 - tt.expected) * 250, AppliedAt: v.AppliedAt}
				if v != want {
					t.Errorf("variance\n got %+v\nwant %+v", v, want)
				}
			})
		}
		all, err := s.CountVariances(ctx, VarianceQuery{Since: time.UnixMilli(t0)})
		if err != nil || len(all) != len(cases) {
			t.Errorf("every store's variances: %d %v", len(all), err)
		}
		if none, err := s.CountVariances(ctx, VarianceQuery{Since: time.UnixMilli(start + 1)}); err != nil || len(none) != 0 {
			t.Errorf("variances after the snapshots: %v %v", none, err)
		}
	})
}

// Ensure that a count whose snapshot is more than a day before its event
// is dead-lettered and changes nothing.
func TestCount_SnapshotTooOldRefused(t *testing.T) {
	s := openSQLite(t)
	d := newDevice("S1", "pos", 1)
	const t0 = int64(1_780_000_000_000)
	apply(t, s, d.ev(t0, events.KindReceipt, sale("S1", line("A", 4))))
	m := events.StockMove{Location: "S1", Method: events.CountManual, SnapshotAt: time.UnixMilli(t0 - 25*3600_000), Lines: []events.Line{{SKU: "A", Qty: 1}}}
	if res := apply(t, s, d.ev(t0+1, events.KindCount, m)); res.DeadLettered != 1 {
		t.Fatalf("%+v, want the count dead-lettered", res)
	}
	if st := stockAt(t, s, "A", "S1"); st.OnHand != 4 || !st.CountedAt.IsZero() {
		t.Errorf("%+v", st)
	}
}
