package store

import (
	"context"
	"fmt"
	"math/rand"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/omnisync/omnisync/cloud/internal/catalog"
	"github.com/omnisync/omnisync/shared/events"
	"github.com/omnisync/omnisync/shared/ids"
)

// BenchmarkFoldBaskets is the basket folder's own rate: each op applies
// (untimed) a batch of OMNI_BENCH_BATCH (default 20,000) sales of 1–3
// lines over 2000 SKUs of 500 products at 10 stores, then folds (timed)
// until every basket is folded. It reports baskets/s and the CPU per
// basket here and in the PostgreSQL server.
func BenchmarkFoldBaskets(b *testing.B) {
	b.Run("sqlite", func(b *testing.B) { benchFold(b, openSQLite(b)) })
	b.Run("postgres", func(b *testing.B) { benchFold(b, openPostgres(b)) })
}

func benchFold(b *testing.B, s *Store) {
	const skus, products, locs = 2000, 500, 10
	batch := 20000
	if v, err := strconv.Atoi(os.Getenv("OMNI_BENCH_BATCH")); err == nil && v > 0 {
		batch = v
	}
	ctx := context.Background()
	sku := func(i int) string { return fmt.Sprintf("SKU-%05d", i) }
	vs := make([]catalog.Variant, 0, skus)
	for i := range skus {
		vs = append(vs, variant(sku(i), fmt.Sprintf("PR-%04d", i%products), 100000+i))
	}
	importOK(b, s, vs)
	rng := rand.New(rand.NewSource(1))
	devs := make([]*device, locs)
	for l := range devs {
		devs[l] = newDevice(fmt.Sprintf("S%02d", l), "pos-1", 1)
	}
	wall := time.Now().UnixMilli()
	meter := newCPUMeter(b, s)
	var elapsed, selfCPU, serverCPU time.Duration
	var baskets int
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		envs := make([]events.Envelope, batch)
		for i := range envs {
			wall++
			l := rng.Intn(locs)
			ls := randomBasket(rng, skus, func(k int) events.Line { return line(sku(k), 1) })
			envs[i] = devs[l].ev(wall, events.KindSale, sale(devs[l].store, ls...))
			envs[i].ID = ids.NewEventID(time.UnixMilli(wall))
		}
		if res, err := s.ApplyBatch(ctx, itemsOf(envs...)); err != nil || res.Applied != batch {
			b.Fatalf("apply: %+v %v", res, err)
		}
		b.StartTimer()
		start, c0, s0 := time.Now(), meter.self(), meter.server()
		for folded := 0; folded < batch; {
			res, err := s.FoldBaskets(ctx, 0)
			if err != nil {
				b.Fatal(err)
			}
			folded += res.Baskets
			baskets += res.Baskets
			if res.Baskets == 0 {
				// Another transaction of the server holds the fold back.
				time.Sleep(10 * time.Millisecond)
			}
		}
		elapsed += time.Since(start)
		selfCPU += meter.self() - c0
		serverCPU += meter.server() - s0
	}
	b.StopTimer()
	n := float64(baskets)
	b.ReportMetric(n/elapsed.Seconds(), "baskets/s")
	b.ReportMetric(float64(selfCPU.Microseconds())/n, "hub-cpu-µs/basket")
	if s.d.pg() {
		b.ReportMetric(float64(serverCPU.Microseconds())/n, "db-cpu-µs/basket")
	}
}
