package custsync

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"slices"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/omnisync/omnisync/shared/downsync"
	"github.com/omnisync/omnisync/shared/subjects"
)

// BenchmarkErasureFanout measures the time from HQ's erasure (Notify)
// until every connected store has read its notice: N stores (env
// OMNI_FANOUT_STORES, default 200), each a real connection under its own
// store account reading its own keys of the erasure bucket with an
// ordered consumer, as an agent does. One op is one erasure to all N.
func BenchmarkErasureFanout(b *testing.B) {
	n := 200
	if v, err := strconv.Atoi(os.Getenv("OMNI_FANOUT_STORES")); err == nil && v > 0 {
		n = v
	}
	stores := make([]string, n)
	for i := range stores {
		stores[i] = fmt.Sprintf("S%04d", i)
	}
	setup := time.Now()
	h := startHub(b, time.Hour, stores...)
	var got atomic.Int64
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	for _, s := range stores {
		nc, _ := h.w.Store(b, s, "")
		js, err := jetstream.New(nc)
		if err != nil {
			b.Fatal(err)
		}
		cons, err := js.OrderedConsumer(ctx, downsync.ErasureStream, jetstream.OrderedConsumerConfig{
			FilterSubjects: []string{downsync.ErasureFilter(s)}, DeliverPolicy: jetstream.DeliverNewPolicy,
		})
		if err != nil {
			b.Fatal(err)
		}
		cc, err := cons.Consume(func(jetstream.Msg) { got.Add(1) })
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(cc.Stop)
	}
	b.Logf("%d stores connected and reading in %v", n, time.Since(setup).Round(time.Millisecond))
	b.ResetTimer()
	var worst time.Duration
	for i := 0; i < b.N; i++ {
		start := time.Now()
		h.m.erase(b, fmt.Sprintf("E%d", i), "C1", stores)
		h.svc.Notify()
		want := int64(n * (i + 1))
		for got.Load() < want {
			if time.Since(start) > 60*time.Second {
				b.Fatalf("after 60s %d of %d stores have the notice", got.Load()-int64(n*i), n)
			}
			time.Sleep(time.Millisecond)
		}
		worst = max(worst, time.Since(start))
	}
	b.ReportMetric(float64(n), "stores")
	b.ReportMetric(worst.Seconds(), "worst_s")
}

// BenchmarkCard measures a store's card request answered by the
// service (the customer store in memory): the NATS round trip under the
// store's account, decoding, dispatch and the reply. It reports p50 and
// p99.
func BenchmarkCard(b *testing.B) {
	h := startHub(b, time.Hour, "S1")
	for i := range 1000 {
		h.m.identify(b, "S1", Card{Customer: fmt.Sprintf("C%d", i), FirstName: "Ada", Tier: "gold", Consent: map[string]bool{"sms": true}},
			fmt.Sprintf("loyalty:LC-%d", i))
	}
	s1, _ := h.w.Store(b, "S1", "")
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		body := fmt.Sprintf(`{"identifiers":{"loyalty":"LC-%d"}}`, i%1000)
		start := time.Now()
		m, err := s1.Request(subjects.Cust("S1", subjects.CustCard), []byte(body), 2*time.Second)
		lat = append(lat, time.Since(start))
		if err != nil || !bytes.Contains(m.Data, []byte(`"first_name":"Ada"`)) {
			b.Fatalf("request %d: %v %v", i, m, err)
		}
	}
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50_us")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99_us")
}
