package ingest

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/omnisync/omnisync/cloud/internal/pii"
	"github.com/omnisync/omnisync/shared/events"
	"github.com/omnisync/omnisync/shared/subjects"
)

// BenchmarkDecodePrepare is the hub's CPU per event before the database:
// a store's catch-up arrives as batch messages of sales (1 to 3 lines,
// priced, some naming a customer, one event in a hundred a count), which
// the hub decodes and checks (appendBatch) and the store reads into its
// aggregates' terms (Prepare). It reports the process's CPU time per
// event, garbage collection included.
func BenchmarkDecodePrepare(b *testing.B) {
	const perMsg, msgs = 500, 40 // 20,000 events, as a catch-up's batch
	st := fuzzStore(b, b.TempDir())
	b.Cleanup(func() { st.Close() })
	keys, err := pii.New(pii.Generate())
	if err != nil {
		b.Fatal(err)
	}
	st.SetCustomerKeys(keys)
	rng := rand.New(rand.NewPCG(1, 2))
	subj := subjects.Event("S01", "pos-1")
	wall := int64(1_700_000_000_000)
	seq := 0
	bodies := make([][]byte, msgs)
	for m := range bodies {
		envs := make([][]byte, perMsg)
		for i := range envs {
			seq++
			wall++
			kind, n := "sale", 1+rng.IntN(3)
			var lines []string
			for j := range n {
				sku := j*700 + rng.IntN(700)
				if rng.IntN(100) == 0 && j == 0 {
					kind = "count"
				}
				if kind == "count" {
					lines = append(lines, fmt.Sprintf(`{"sku":"SKU-%05d","qty":%d}`, sku, 900+rng.IntN(200)))
				} else {
					lines = append(lines, fmt.Sprintf(`{"sku":"SKU-%05d","qty":%d,"unit_price":%d}`, sku, 1+rng.IntN(2), 100+rng.IntN(5000)))
				}
			}
			customer := ""
			if kind == "sale" && rng.IntN(5) == 0 {
				customer = fmt.Sprintf(`,"customer":{"loyalty":"LC-%d"}`, rng.IntN(10000))
			}
			data := fmt.Sprintf(`{"location":"S01","lines":[%s],"order_id":"O-%d","channel":"store"%s}`, strings.Join(lines, ","), seq, customer)
			if kind == "count" {
				data = fmt.Sprintf(`{"location":"S01","lines":[%s],"method":"manual"}`, strings.Join(lines, ","))
			}
			envs[i] = fmt.Appendf(nil, `{"v":1,"id":"0190a6b4-5c3e-7c3e-8c3e-%012d","origin":{"store":"S01","device":"pos-1","epoch":1,"seq":%d},"hlc":{"wall":%d,"logical":0},"kind":%q,"data":%s}`,
				seq, seq, wall, kind, data)
		}
		bodies[m] = events.AppendBatch(nil, envs...)
	}
	n := float64(perMsg * msgs)
	// One round first, so that the store's caches are as warm as a hub's.
	// As the hub's ingest does: the messages' events are decoded into one
	// batch, whose slices are reused once it is settled.
	var ps pendings
	round := func() {
		ps = ps.reset()
		for _, body := range bodies {
			if dl := appendBatch(&ps, &inMsg{}, subj, body); dl != nil {
				b.Fatal(dl.Reason)
			}
		}
		p := st.Prepare(ps.items)
		if len(p.Items()) != ps.len() {
			b.Fatalf("prepared %d of %d", len(p.Items()), ps.len())
		}
	}
	round()
	b.ResetTimer()
	c0 := cpuTime()
	for b.Loop() {
		round()
	}
	b.ReportMetric(float64((cpuTime()-c0).Nanoseconds())/1e3/float64(b.N)/n, "cpu-µs/event")
}

// cpuTime returns this process's CPU time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
