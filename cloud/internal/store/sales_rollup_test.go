package store

import (
	"context"
	"testing"
	"time"

	"github.com/omnisync/omnisync/shared/events"
)

// Ensure that SalesSince counts the sales the retention rolled up into
// daily totals as well as the raw ledger lines, each once.
func TestSalesSince_RawAndRolledUp(t *testing.T) {
	forEachStoreAtOnce(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		day := int64(24 * time.Hour / time.Millisecond)
		now := time.Now().UnixMilli()
		d := newDevice("S1", "pos", 1)
		apply(t, s,
			d.ev(now-40*day, events.KindReceipt, sale("S1", line("A", 100))),
			d.ev(now-20*day, events.KindSale, sale("S1", line("A", 5))), // rolled up, in 28 d
			d.ev(now-10*day, events.KindSale, sale("S1", line("A", 3))), // rolled up, in 28 d and not 7
			d.ev(now-10*day+1, events.KindReturn, sale("S1", line("A", 1))),
			d.ev(now-2*day, events.KindSale, sale("S1", line("A", 2))), // raw
		)
		if _, err := s.RetainLedger(ctx, RetentionOptions{Age: 5 * 24 * time.Hour}); err != nil {
			t.Fatal(err)
		}
		for _, tt := range []struct {
			days int64
			want int64
		}{{7, 2}, {28, 2 + 3 - 1 + 5}, {1, 0}} {
			got, ps := unitsSold(t, s, []string{"A"}, time.UnixMilli(now-tt.days*day))
			if got != tt.want {
				t.Errorf("sold in %d days: %d, want %d (%+v)", tt.days, got, tt.want, ps)
			}
		}
	})
}

// unitsSold is SalesSince(skus, since) summed over its positions, with
// what SalesSince returned.
func unitsSold(t *testing.T, s *Store, skus []string, since time.Time) (int64, []PositionSales) {
	t.Helper()
	ps, err := s.SalesSince(context.Background(), skus, since)
	if err != nil {
		t.Fatal(err)
	}
	var units int64
	for _, p := range ps {
		units += p.Units
	}
	return units, ps
}
