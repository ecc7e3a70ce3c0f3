package store

import (
	"context"
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/omnisync/omnisync/cloud/internal/catalog"
	"github.com/omnisync/omnisync/cloud/internal/cooccur"
	"github.com/omnisync/omnisync/shared/events"
)

// Ensure that retention rolls the ledger's lines older than its age into
// daily totals per position and kind, deletes them, leaves the books as
// they were, finds nothing left to do on a second pass, and that a count
// stamped before the horizon is then dead-lettered while a later one
// still applies exactly.
func TestRetainLedger(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		s.now = func() time.Time { return testNow }
		day := int64(24 * time.Hour / time.Millisecond)
		base := testNow.Add(-10 * 24 * time.Hour).UnixMilli() // ten days ago
		importOK(t, s, []catalog.Variant{variant("A", "PA", 500), variant("B", "PB", 501)})
		d := newDevice("S1", "pos-1", 1)
		apply(t, s,
			d.ev(base, events.KindReceipt, sale("S1", line("A", 50), line("B", 20))),
			d.ev(base+1000, events.KindSale, sale("S1", line("A", 3))),
			d.ev(base+2000, events.KindSale, sale("S1", line("A", 2), line("B", 1))),
			d.ev(base+day+5, events.KindSale, sale("S1", line("A", 1))),     // nine days ago
			d.ev(base+8*day, events.KindSale, sale("S1", line("A", 4))),     // two days ago
			d.ev(base+8*day+1, events.KindReturn, sale("S1", line("B", 1))), // two days ago
			d.ev(base+9*day, events.KindCount, sale("S1", line("A", 30))),   // yesterday
			d.ev(base+9*day+1, events.KindSale, sale("S1", line("A", 1))),   // after the count
		)
		before := allStock(t, s)

		// Retention does not wait for the basket folder, which reads the
		// sales from its inbox: the old sales' lines go before it folds,
		// and it folds their baskets all the same.
		res0, err := s.RetainLedger(ctx, RetentionOptions{Age: 5 * 24 * time.Hour, Lines: 2})
		if err != nil || res0.Lines != 6 {
			t.Fatalf("pass before the fold: %+v %v", res0, err)
		}
		foldAll(t, s)
		if got, want := boughtPairs(t, s), map[cooccur.Pair]int64{cooccur.PairOf("PA", "PB"): 1}; !maps.Equal(got, want) {
			t.Fatalf("bought pairs %v, want %v", got, want)
		}
		res, err := s.RetainLedger(ctx, RetentionOptions{Age: 5 * 24 * time.Hour, Lines: 2})
		if err != nil {
			t.Fatal(err)
		}
		if want := testNow.Add(-5 * 24 * time.Hour).UTC().Truncate(24 * time.Hour); !res.Horizon.Equal(want) || res0.Lines+res.Lines != 6 {
			t.Fatalf("pass: %+v, want horizon %v and 6 lines", res, want)
		}
		if after := allStock(t, s); len(after) != len(before) {
			t.Fatalf("books changed: %v -> %v", before, after)
		} else {
			for k, st := range before {
				if after[k] != st {
					t.Fatalf("%v: %+v -> %+v", k, st, after[k])
				}
			}
		}
		totals, err := s.DailyTotals(ctx, "A")
		if err != nil {
			t.Fatal(err)
		}
		got := map[string][3]int64{}
		for _, d := range totals {
			got[d.Day.Format(time.DateOnly)+" "+d.Kind] = [3]int64{d.Lines, d.Qty, d.Delta}
		}
		d0 := time.UnixMilli(base).UTC().Format(time.DateOnly)
		d1 := time.UnixMilli(base + day).UTC().Format(time.DateOnly)
		want := map[string][3]int64{d0 + " receipt": {1, 50, 50}, d0 + " sale": {2, 5, -5}, d1 + " sale": {1, 1, -1}}
		if len(got) != len(want) {
			t.Fatalf("daily totals of A: %v, want %v", got, want)
		}
		for k, w := range want {
			if got[k] != w {
				t.Fatalf("daily totals of A: %v, want %v", got, want)
			}
		}
		var raw int
		if err := s.r.QueryRowContext(ctx, "SELECT count(*) FROM stock_ledger").Scan(&raw); err != nil || raw != 4 {
			t.Fatalf("raw lines left: %d, %v", raw, err)
		}
		if again, err := s.RetainLedger(ctx, RetentionOptions{Age: 5 * 24 * time.Hour}); err != nil || again.Lines != 0 {
			t.Fatalf("second pass: %+v, %v", again, err)
		}

		// A count from before the horizon cannot be applied exactly any
		// more: dead-lettered, books unchanged. A later one applies.
		late := d.ev(base+3000, events.KindCount, sale("S1", line("B", 99)))
		res2 := apply(t, s, late, d.ev(base+9*day+10, events.KindCount, sale("S1", line("B", 7))))
		if res2.Applied != 1 || res2.DeadLettered != 1 {
			t.Fatalf("late counts: %+v", res2)
		}
		dls, err := s.DeadLetters(ctx, "", 10)
		if err != nil || len(dls) != 1 || dls[0].EventID != late.ID || !strings.Contains(dls[0].Reason, "retention") {
			t.Fatalf("dead letters: %+v %v", dls, err)
		}
		if st := stockAt(t, s, "B", "S1"); st.OnHand != 7 {
			t.Fatalf("B after the later count: %+v", st)
		}
		if st := stockAt(t, s, "A", "S1"); st.OnHand != 29 {
			t.Fatalf("A: %+v", st)
		}
	})
}
