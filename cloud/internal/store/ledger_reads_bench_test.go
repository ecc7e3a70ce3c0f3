package store

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/omnisync/omnisync/shared/events"
)

// BenchmarkLedgerReads times what the console reads of the ledger (sales
// of 10 SKUs over 28 days, a position's 200 newest lines, sales per hour
// over 48 hours) and a retention pass that finds nothing to do, on SQLite
// and PostgreSQL, against a ledger of OMNI_BENCH_HISTORY events (default 1M; two lines
// each, spread over the 20,000 positions and 90 days, as
// BenchmarkApplyHistory writes them): the readers must stay cheap
// whatever the ledger's key.
//
//	OMNI_BENCH_HISTORY=10000000 go test -run '^$' -bench LedgerReads -benchtime 20x ./cloud/internal/store/
func BenchmarkLedgerReads(b *testing.B) {
	b.Run("sqlite", func(b *testing.B) { benchLedgerReads(b, openSQLite(b)) })
	b.Run("postgres", func(b *testing.B) { benchLedgerReads(b, openPostgres(b)) })
}

func benchLedgerReads(b *testing.B, s *Store) {
	n := 1_000_000
	if v, err := strconv.Atoi(os.Getenv("OMNI_BENCH_HISTORY")); err == nil && v > 0 {
		n = v
	}
	ctx := context.Background()
	const skus, locs = 2000, 10
	sku := func(i int) string { return fmt.Sprintf("SKU-%05d", i) }
	wall := time.Now().UnixMilli()
	hq := stocktakes{}
	var seed []events.Envelope
	for l := range locs {
		for start := 0; start < skus; start += events.MaxLines {
			var ls []events.Line
			for i := start; i < start+events.MaxLines && i < skus; i++ {
				ls = append(ls, line(sku(i), 1000))
			}
			wall++
			seed = append(seed, hq.ev(wall, events.KindCount, sale(fmt.Sprintf("S%02d", l), ls...)))
		}
	}
	if res, err := s.ApplyBatch(ctx, itemsOf(seed...)); err != nil || res.Applied != len(seed) {
		b.Fatalf("seed: %+v %v", res, err)
	}
	fillHistory(b, s, n, wall-int64(len(seed))-1)
	var some []string
	for i := range 10 {
		some = append(some, sku(i*197))
	}
	now := time.Now()
	b.Run("sales-28d-10skus", func(b *testing.B) {
		for b.Loop() {
			if ps, err := s.SalesSince(ctx, some, now.Add(-28*24*time.Hour)); err != nil || len(ps) != 10*locs {
				b.Fatalf("%d %v", len(ps), err)
			}
		}
	})
	b.Run("history-200", func(b *testing.B) {
		for b.Loop() {
			if ls, _, err := s.PositionHistory(ctx, sku(1234), "S07", 200); err != nil || len(ls) != min(200, 2*n/(skus*locs)+1) {
				b.Fatalf("%d %v", len(ls), err)
			}
		}
	})
	b.Run("sales-per-hour-48h", func(b *testing.B) {
		for b.Loop() {
			if hs, err := s.SalesPerHour(ctx, now.Add(-48*time.Hour).Truncate(time.Hour), "S00", nil); err != nil || len(hs) == 0 {
				b.Fatalf("%d %v", len(hs), err)
			}
		}
	})
	b.Run("retention-none-due", func(b *testing.B) {
		s.now = func() time.Time { return now.Add(-100 * 24 * time.Hour) }
		for b.Loop() {
			if res, err := s.RetainLedger(ctx, RetentionOptions{Age: time.Hour}); err != nil || res.Lines != 0 {
				b.Fatalf("%+v %v", res, err)
			}
		}
	})
}
