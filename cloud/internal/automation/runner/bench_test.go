package runner

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/omnisync/omnisync/cloud/internal/automation"
)

// timed records the duration of every round trip.
type timed struct {
	mu sync.Mutex
	ds []time.Duration
	rt http.RoundTripper
}

func (t *timed) RoundTrip(r *http.Request) (*http.Response, error) {
	start := time.Now()
	resp, err := t.rt.RoundTrip(r)
	t.mu.Lock()
	t.ds = append(t.ds, time.Since(start))
	t.mu.Unlock()
	return resp, err
}

// BenchmarkWebhookDelivery is the delivery of due jobs to a real HTTP
// receiver from a SQLite hub store: claim, consent, signature, POST,
// outcome. It reports deliveries/s and the p99 of the POSTs.
//
//	go test -run '^$' -bench WebhookDelivery -benchtime 5000x ./cloud/internal/automation/runner/
func BenchmarkWebhookDelivery(b *testing.B) {
	ctx := context.Background()
	s := openStore(b, "")
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) })}
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	go srv.Serve(ln)
	defer srv.Close()
	if err := s.PutRule(ctx, webhookRule("carts", "http://"+ln.Addr().String()+"/hook")); err != nil {
		b.Fatal(err)
	}
	c := &consents{allow: map[string]bool{}}
	evs := make([]automation.Event, b.N)
	at := time.Now().Add(-time.Minute)
	for i := range evs {
		cust := fmt.Sprint("C", i)
		c.allow[cust] = true
		evs[i] = automation.Event{ID: fmt.Sprint("e", i), Trigger: automation.CartAbandoned, At: at, Customer: cust}
	}
	base := loopbackOnly.Transport()
	base.MaxIdleConnsPerHost = 64
	tr := &timed{rt: base}
	r, err := New(Config{Queue: s, Consent: c, Owner: "bench", Egress: loopbackOnly, HTTP: &http.Client{Transport: tr, Timeout: 10 * time.Second}, Workers: 16})
	if err != nil {
		b.Fatal(err)
	}
	for i := 0; i < len(evs); i += 1000 {
		if _, err := r.Handle(ctx, evs[i:min(i+1000, len(evs))]...); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	for {
		n, _, err := r.Tick(ctx)
		if err != nil {
			b.Fatal(err)
		}
		if n == 0 {
			break
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "deliveries/s")
	slices.Sort(tr.ds)
	if len(tr.ds) > 0 {
		b.ReportMetric(float64(tr.ds[len(tr.ds)*99/100].Microseconds())/1000, "p99-ms")
	}
	if n := len(tr.ds); n != b.N {
		b.Fatalf("%d posts for %d jobs", n, b.N)
	}
}

// BenchmarkHandle is rule evaluation with its scheduling: batches of 1,000
// events through 5 rules (3 of them matching each event) into a SQLite hub
// store, one statement per batch.
//
//	go test -run '^$' -bench Handle -benchtime 20x ./cloud/internal/automation/runner/
func BenchmarkHandle(b *testing.B) {
	ctx := context.Background()
	s := openStore(b, "")
	for i := range 5 {
		rl := webhookRule(fmt.Sprint("r", i), "http://127.0.0.1:9/hook")
		if i >= 3 {
			rl.Conditions = []automation.Condition{{Field: "cart.value", Op: automation.OpGte, Value: "1000000"}}
		}
		if err := s.PutRule(ctx, rl); err != nil {
			b.Fatal(err)
		}
	}
	r, err := New(Config{Queue: s, Consent: &consents{allow: map[string]bool{}}, Owner: "bench"})
	if err != nil {
		b.Fatal(err)
	}
	at := time.Now()
	n := 0
	b.ResetTimer()
	for b.Loop() {
		evs := make([]automation.Event, 1000)
		for i := range evs {
			n++
			evs[i] = automation.Event{ID: fmt.Sprint("e", n), Trigger: automation.CartAbandoned, At: at, Customer: fmt.Sprint("C", n%5000),
				Attrs: map[string]string{"cart.value": "4200"}}
		}
		if _, err := r.Handle(ctx, evs...); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "events/s")
	b.ReportMetric(float64(3*n)/b.Elapsed().Seconds(), "jobs/s")
}
