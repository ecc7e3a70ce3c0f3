package outbox

import (
	"context"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/omnisync/omnisync/shared/events"
)

// BenchmarkAppend_Concurrent is the POS API's load: many concurrent callers,
// one event each, every one answered after its fsync.
func BenchmarkAppend_Concurrent(b *testing.B) {
	for _, callers := range []int{64, 256} {
		b.Run(fmt.Sprintf("callers=%d", callers), func(b *testing.B) {
			o := mustOpen(b, testOptions(b))
			drafts := []events.Draft{sale(b, "SKU-1", 2)}
			ctx := context.Background()
			var mu sync.Mutex
			lat := make([]time.Duration, 0, b.N)
			b.SetParallelism((callers + runtime.GOMAXPROCS(0) - 1) / runtime.GOMAXPROCS(0))
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				local := make([]time.Duration, 0, 1024)
				for pb.Next() {
					t0 := time.Now()
					if _, err := o.Append(ctx, drafts); err != nil {
						b.Error(err)
						return
					}
					local = append(local, time.Since(t0))
				}
				mu.Lock()
				lat = append(lat, local...)
				mu.Unlock()
			})
			b.StopTimer()
			reportAppend(b, o, lat, 1)
		})
	}
}

// BenchmarkAppend_Batch100 is one caller posting 100 events per call (a
// device flushing its buffer, a POS catching up).
func BenchmarkAppend_Batch100(b *testing.B) {
	o := mustOpen(b, testOptions(b))
	drafts := make([]events.Draft, 100)
	for i := range drafts {
		drafts[i] = sale(b, fmt.Sprintf("SKU-%d", i), 1)
	}
	ctx := context.Background()
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for b.Loop() {
		t0 := time.Now()
		if _, err := o.Append(ctx, drafts); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(t0))
	}
	b.StopTimer()
	reportAppend(b, o, lat, len(drafts))
}

// reportAppend reports events/s and the per-call latency percentiles.
func reportAppend(b *testing.B, o *Outbox, lat []time.Duration, perCall int) {
	b.Helper()
	if len(lat) == 0 {
		return
	}
	slices.Sort(lat)
	pct := func(p float64) float64 {
		return float64(lat[min(len(lat)-1, int(p*float64(len(lat))))].Microseconds())
	}
	st := o.Stats()
	b.ReportMetric(float64(len(lat)*perCall)/b.Elapsed().Seconds(), "events/s")
	b.ReportMetric(pct(0.50), "p50-µs")
	b.ReportMetric(pct(0.99), "p99-µs")
	b.ReportMetric(float64(st.Batches)/b.Elapsed().Seconds(), "tx/s")
	if st.Batches > 0 {
		b.ReportMetric(float64(st.Appends)/float64(st.Batches), "events/tx")
	}
	b.ReportMetric(0, "ns/op") // per-call time is meaningless under RunParallel; events/s says it
}

// BenchmarkRead is the uplink's side: pages of up to 1,000 records (1 MiB)
// from a backlog of 50,000.
func BenchmarkRead(b *testing.B) {
	o := mustOpen(b, testOptions(b))
	drafts := make([]events.Draft, 1000)
	for i := range drafts {
		drafts[i] = sale(b, fmt.Sprintf("SKU-%d", i), 1)
	}
	for range 50 {
		mustAppend(b, o, drafts...)
	}
	last := o.Stats().LastSeq
	var after uint64
	var n, size int
	b.ResetTimer()
	for b.Loop() {
		recs, err := o.Read(after, 1000, 1<<20)
		if err != nil {
			b.Fatal(err)
		}
		n += len(recs)
		for _, r := range recs {
			size += len(r.Data)
		}
		after = recs[len(recs)-1].Seq
		if after >= last {
			after = 0
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "events/s")
	b.ReportMetric(float64(size)/b.Elapsed().Seconds()/(1<<20), "MiB/s")
}

// BenchmarkOpen_Backlog reopens an outbox holding 100,000 pending sales,
// as an agent restarting after a long outage does before it can drain.
func BenchmarkOpen_Backlog(b *testing.B) {
	opts := testOptions(b)
	o, err := Open(opts)
	if err != nil {
		b.Fatal(err)
	}
	drafts := make([]events.Draft, 1000)
	for i := range drafts {
		drafts[i] = sale(b, fmt.Sprintf("SKU-%d", i), 1+i%2)
	}
	for range 100 {
		mustAppend(b, o, drafts...)
	}
	o.Close()
	b.ResetTimer()
	for b.Loop() {
		o, err := Open(opts)
		if err != nil {
			b.Fatal(err)
		}
		if got := o.Stats().UnsyncedSales; got != 100_000 {
			b.Fatalf("%d unsynced sales after reopening, want 100000", got)
		}
		o.Close()
	}
}
