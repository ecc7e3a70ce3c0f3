package productcache

import (
	"context"
	"math/rand/v2"
	"os"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/omnisync/omnisync/edge/internal/productcache/cachetest"
)

// Size of the benchmark catalog: 25k products of 4 variants (100k SKUs and
// GTINs), review summaries, and stock of every SKU at 3 locations.
const (
	benchProducts = 25_000
	benchBatch    = 1000
)

var benchLocations = []string{"S1", "S2", "online"}

// benchUpdates returns the catalog as the hub would publish it: products,
// review summaries, then stock location by location.
func benchUpdates() []Update {
	us := make([]Update, 0, benchProducts*(2+cachetest.Variants*len(benchLocations)))
	for i := range benchProducts {
		us = append(us, product(cachetest.ProductDoc(i, 1)), review(cachetest.ReviewSummary(i, 1)))
	}
	for _, l := range benchLocations {
		for i := range benchProducts {
			for v := range cachetest.Variants {
				us = append(us, stock(cachetest.StockDoc(l, cachetest.SKU(i, v), int64(i%9), 1)))
			}
		}
	}
	return us
}

// benchCache opens a cache for S1 (nearby S2, online) and applies the
// benchmark catalog in batches of benchBatch; it returns the time that
// took.
func benchCache(b *testing.B) (*Cache, time.Duration, int) {
	b.Helper()
	o := testOptions(b)
	o.Nearby = []string{"S2"}
	c := mustOpen(b, o)
	us := benchUpdates()
	start := time.Now()
	for i := 0; i < len(us); i += benchBatch {
		end := min(i+benchBatch, len(us))
		if err := c.Apply(context.Background(), us[i:end], uint64(end), end == len(us)); err != nil {
			b.Fatal(err)
		}
	}
	return c, time.Since(start), len(us)
}

// Ensure that lookups in a 100k-variant cache stay fast: reports the
// latency percentiles of single lookups by SKU and by GTIN, and the heap the
// process holds with the cache open (the file itself is mapped, not heap).
//
//	go test ./edge/internal/productcache -run '^$' -bench BenchmarkLookup -benchtime 200000x
func BenchmarkLookup(b *testing.B) {
	c, _, _ := benchCache(b)
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(1, 2))
	codes := make([]string, 4096)
	for i := range codes {
		p, v := rng.IntN(benchProducts), rng.IntN(cachetest.Variants)
		if i%2 == 0 {
			codes[i] = cachetest.SKU(p, v)
		} else {
			codes[i] = cachetest.GTIN(p*cachetest.Variants + v)[1:] // as an EAN-13 scan reads
		}
	}
	runtime.GC()
	var durs []time.Duration
	i := 0
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		start := time.Now()
		v, err := c.Lookup(ctx, codes[i%len(codes)])
		durs = append(durs, time.Since(start))
		if err != nil || len(v.Variants) != cachetest.Variants || v.Variants[0].Stock.Here == nil {
			b.Fatalf("lookup %q: %v", codes[i%len(codes)], err)
		}
		i++
	}
	b.StopTimer()
	reportPercentiles(b, durs)
	var ms runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms)
	b.ReportMetric(float64(ms.HeapInuse)/(1<<20), "heap-MiB")
	b.ReportMetric(float64(c.Stats().Bytes)/(1<<20), "file-MiB")
}

// BenchmarkLookupParallel is BenchmarkLookup from every CPU at once:
// lookups take no lock of the cache's, so throughput scales with cores.
func BenchmarkLookupParallel(b *testing.B) {
	c, _, _ := benchCache(b)
	ctx := context.Background()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		rng := rand.New(rand.NewPCG(rand.Uint64(), 2))
		for pb.Next() {
			code := cachetest.GTIN(rng.IntN(benchProducts * cachetest.Variants))
			if _, err := c.Lookup(ctx, code); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkApplyBootstrap measures filling an empty cache with the
// benchmark catalog (350k messages) in batches of 1000, each fsync'd: the
// cache's share of an agent's bootstrap.
//
//	go test ./edge/internal/productcache -run '^$' -bench BenchmarkApplyBootstrap -benchtime 1x
func BenchmarkApplyBootstrap(b *testing.B) {
	for b.Loop() {
		c, took, n := benchCache(b)
		b.ReportMetric(float64(n)/took.Seconds(), "msgs/s")
		b.ReportMetric(took.Seconds(), "s/bootstrap")
		b.ReportMetric(float64(c.Stats().Bytes)/(1<<20), "file-MiB")
		c.Close()
		os.Remove(c.opts.Path)
	}
}

// reportPercentiles reports the 50th, 99th and 99.9th percentile of durs.
func reportPercentiles(b *testing.B, durs []time.Duration) {
	if len(durs) == 0 {
		return
	}
	slices.Sort(durs)
	at := func(q float64) float64 {
		return float64(durs[min(len(durs)-1, int(q*float64(len(durs))))].Nanoseconds()) / 1e3
	}
	b.ReportMetric(at(0.50), "p50-µs")
	b.ReportMetric(at(0.99), "p99-µs")
	b.ReportMetric(at(0.999), "p99.9-µs")
}
