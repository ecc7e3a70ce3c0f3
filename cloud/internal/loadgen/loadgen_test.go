package loadgen

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/omnisync/omnisync/cloud/internal/catalog"
	"github.com/omnisync/omnisync/cloud/internal/inventory"
	"github.com/omnisync/omnisync/shared/events"
	"github.com/omnisync/omnisync/shared/hlc"
	"github.com/omnisync/omnisync/shared/ids"
)

// fault is what the stand-in agent does to one attempt.
type fault int

const (
	faultNone     fault = iota
	fault503            // answer 503, write nothing
	faultDrop           // write the events, then drop the connection unanswered
	faultTruncate       // write the events, answer 202 with half a body
	fault507            // refuse: disk budget
	fault400            // refuse: bad input
)

// standIn speaks the agent's POST /v1/events protocol (idempotency keys
// included) with the shared events package's own parsing, so the client's
// retry logic can be driven through faults a real agent only shows when
// killed at the right instant. The real agent is exercised in run_test.go.
type standIn struct {
	store, device string
	fault         func(key string, attempt int) fault

	mu       sync.Mutex
	epoch    uint64
	clock    *hlc.Clock
	stored   []events.Envelope
	answers  map[string][]byte // key -> first 202 body
	bodies   map[string][]byte // key -> request body
	attempts map[string]int
	times    []time.Duration // of each POST since start
	start    time.Time
}

func newStandIn(t *testing.T, store, device string) (*standIn, string) {
	a := &standIn{store: store, device: device, epoch: 1234, clock: hlc.New(time.Now, hlc.Timestamp{}),
		answers: map[string][]byte{}, bodies: map[string][]byte{}, attempts: map[string]int{}, start: time.Now()}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/events", a.post)
	mux.HandleFunc("GET /v1/status", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, `{"store":%q,"device":%q,"epoch":%d}`, a.store, a.device, a.epoch)
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return a, srv.URL
}

func (a *standIn) post(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	key := r.Header.Get("Idempotency-Key")
	a.mu.Lock()
	a.times = append(a.times, time.Since(a.start))
	a.attempts[key]++
	f := faultNone
	if a.fault != nil {
		f = a.fault(key, a.attempts[key])
	}
	if prev, ok := a.bodies[key]; ok && !bytes.Equal(prev, body) {
		a.mu.Unlock()
		http.Error(w, `{"error":"key reused"}`, http.StatusUnprocessableEntity)
		return
	}
	drafts, err := events.ParseDrafts(body, a.store)
	switch {
	case err != nil || key == "":
		a.mu.Unlock()
		http.Error(w, fmt.Sprintf(`{"error":%q}`, fmt.Sprint(err)), http.StatusBadRequest)
		return
	case f == fault503:
		a.mu.Unlock()
		http.Error(w, `{"error":"shutting down"}`, http.StatusServiceUnavailable)
		return
	case f == fault507:
		a.mu.Unlock()
		http.Error(w, `{"error":"full"}`, http.StatusInsufficientStorage)
		return
	case f == fault400:
		a.mu.Unlock()
		http.Error(w, `{"error":"bad","field":"data"}`, http.StatusBadRequest)
		return
	}
	replayed := false
	ans, ok := a.answers[key]
	if ok {
		replayed = true
	} else {
		var acc answer
		acc.Epoch = a.epoch
		for _, d := range drafts {
			e := events.Envelope{V: 1, ID: ids.NewEventID(time.Now()), Kind: d.Kind, Data: d.Data, HLC: a.clock.Now(),
				Origin: events.Origin{Store: a.store, Device: a.device, Epoch: a.epoch, Seq: uint64(len(a.stored) + 1)}}
			a.stored = append(a.stored, e)
			acc.IDs, acc.Seqs, acc.HLCs = append(acc.IDs, e.ID), append(acc.Seqs, e.Origin.Seq), append(acc.HLCs, e.HLC)
		}
		ans, _ = json.Marshal(acc)
		a.answers[key], a.bodies[key] = ans, body
	}
	a.mu.Unlock()
	switch f {
	case faultDrop:
		conn, _, err := http.NewResponseController(w).Hijack()
		if err == nil {
			conn.Close()
		}
		return
	case faultTruncate:
		w.WriteHeader(http.StatusAccepted)
		_, _ = w.Write(ans[:len(ans)/2])
		return
	}
	if replayed {
		w.Header().Set("Idempotent-Replayed", "true")
	}
	w.WriteHeader(http.StatusAccepted)
	_, _ = w.Write(ans)
}

func (a *standIn) envelopes() []events.Envelope {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]events.Envelope(nil), a.stored...)
}

func testOptions(urls ...string) Options {
	o := Options{Seed: 7, RunID: "t1", Backoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond}
	for _, u := range urls {
		o.Targets = append(o.Targets, Target{URL: u})
	}
	o.UseCatalog(catalog.Sample(3, 30))
	return o
}

// sameEnvelopes fails unless got (the generator's record) is exactly what
// the agent stored, in any order.
func sameEnvelopes(t *testing.T, got, stored []events.Envelope) {
	t.Helper()
	if len(got) != len(stored) {
		t.Fatalf("recorded %d envelopes, the agent stored %d", len(got), len(stored))
	}
	byID := map[string]events.Envelope{}
	for _, e := range stored {
		byID[e.ID] = e
	}
	for _, e := range got {
		s, ok := byID[e.ID]
		if !ok {
			t.Fatalf("recorded %s, which the agent never stored", e.ID)
		}
		delete(byID, e.ID)
		if e.V != s.V || e.Origin != s.Origin || e.HLC != s.HLC || e.Kind != s.Kind || !bytes.Equal(e.Data, s.Data) {
			t.Fatalf("recorded\n %+v\nthe agent stored\n %+v", e, s)
		}
	}
}

// Ensure that a request without a definitive answer (503, a dropped
// connection after the write, a cut-off 202) is retried with the same key
// and body until answered, and that each event is recorded once, exactly as
// the agent stored it.
func TestSend_RetriesWithTheSameKey(t *testing.T) {
	a, u := newStandIn(t, "S1", "pos-1")
	a.fault = func(key string, attempt int) fault {
		switch attempt {
		case 1:
			return []fault{fault503, faultDrop, faultTruncate, faultNone}[len(key)%4]
		case 2:
			return []fault{faultDrop, faultNone, fault503, faultNone}[len(key)%4]
		}
		return faultNone
	}
	o := testOptions(u)
	o.Events, o.Workers = 300, 3
	var rec bytes.Buffer
	o.Record = &rec
	rep, err := Run(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	s := rep.Total
	if !rep.OK() || s.Requests != 300 || s.Accepted != 300 || s.Retried == 0 || s.Replayed == 0 || s.Refused != 0 {
		t.Fatalf("report %+v, rejected %v", s, rep.Rejected)
	}
	for key, n := range a.attempts {
		if n < 2 && len(key)%4 != 3 {
			t.Fatalf("key %s: %d attempts", key, n)
		}
	}
	sameEnvelopes(t, rep.Accepted, a.envelopes())
	back, err := ReadRecord(&rec)
	if err != nil {
		t.Fatal(err)
	}
	sameEnvelopes(t, back, a.envelopes())
}

// Ensure that 507 counts as refused, another 4xx as an error listed in the
// report, and neither is retried or recorded.
func TestSend_RefusedAndRejected(t *testing.T) {
	a, u := newStandIn(t, "S1", "pos-1")
	var n int
	a.fault = func(key string, attempt int) fault {
		n++
		switch n % 10 {
		case 3:
			return fault507
		case 7:
			return fault400
		}
		return faultNone
	}
	o := testOptions(u)
	o.Events, o.Workers = 100, 1
	rep, err := Run(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	s := rep.Total
	if s.Refused != 10 || s.Errors != 10 || len(rep.Rejected) != 10 || s.Accepted != 80 || s.Retried != 0 || rep.OK() {
		t.Fatalf("report %+v, %d rejected", s, len(rep.Rejected))
	}
	if r := rep.Rejected[0]; r.Status != 400 || !strings.Contains(r.Answer, "bad") || !json.Valid(r.Body) {
		t.Fatalf("rejection %+v", r)
	}
	sameEnvelopes(t, rep.Accepted, a.envelopes())
}

// Ensure that a request still unanswered when the run is over is reported
// unresolved, and that Resolve gets its answer later with the same key.
func TestResolve(t *testing.T) {
	a, u := newStandIn(t, "S1", "pos-1")
	var down sync.Mutex
	isDown := false
	a.fault = func(key string, attempt int) fault {
		down.Lock()
		defer down.Unlock()
		if isDown {
			return faultDrop
		}
		return faultNone
	}
	o := testOptions(u)
	o.Events, o.Workers, o.Settle = 40, 2, 50*time.Millisecond
	g, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	down.Lock()
	isDown = true // every write is cut off before its answer
	down.Unlock()
	go func() { time.Sleep(100 * time.Millisecond); cancel() }()
	rep, err := g.Run(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Unresolved) == 0 || rep.Total.Unresolved != int64(len(rep.Unresolved)) || rep.Total.Accepted != 0 || rep.OK() {
		t.Fatalf("report %+v, %d unresolved", rep.Total, len(rep.Unresolved))
	}
	down.Lock()
	isDown = false
	down.Unlock()
	rep, err = g.Resolve(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK() || rep.Total.Unresolved != 0 || rep.Total.Accepted == 0 || rep.Total.Replayed != rep.Total.Accepted {
		t.Fatalf("after Resolve: %+v", rep.Total)
	}
	sameEnvelopes(t, rep.Accepted, a.envelopes())
}

// Ensure that nothing is sent to a target during its offline window, while
// the other target keeps going, and that the pacing holds the rate.
func TestOfflineWindowAndRate(t *testing.T) {
	a, u1 := newStandIn(t, "S1", "pos-1")
	b, u2 := newStandIn(t, "S2", "pos-1")
	o := testOptions(u1, u2)
	o.Rate, o.Duration = 400, 900*time.Millisecond
	o.Offline = []Window{{Target: 0, Start: 200 * time.Millisecond, End: 600 * time.Millisecond}}
	rep, err := Run(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	in := func(s *standIn, from, to time.Duration) (n int) {
		s.mu.Lock()
		defer s.mu.Unlock()
		for _, d := range s.times {
			if d >= from && d < to {
				n++
			}
		}
		return n
	}
	// The stand-ins started a moment before the run: allow 50ms of slack.
	if n := in(a, 260*time.Millisecond, 600*time.Millisecond); n != 0 {
		t.Fatalf("%d requests to the closed store", n)
	}
	if in(a, 0, 200*time.Millisecond) == 0 || in(a, 650*time.Millisecond, time.Second) == 0 || in(b, 250*time.Millisecond, 600*time.Millisecond) == 0 {
		t.Fatal("no traffic where there should be")
	}
	// 200/s per store for 0.9s (S1 0.5s): ~180 + ~100, plus the burst.
	if s1, s2 := rep.Targets[0].Accepted, rep.Targets[1].Accepted; s2 < 150 || s2 > 200 || s1 < 80 || s1 > 125 {
		t.Fatalf("paced counts %d and %d", s1, s2)
	}
}

// Ensure that the traffic follows the Mix, that SKU popularity is Zipf
// (the bestseller far ahead of the median SKU), that counts name only
// SKUs received here and returns only SKUs sold here, and that the same
// seed gives the same traffic.
func TestTraffic_MixPopularityAndDeterminism(t *testing.T) {
	run := func() []events.Envelope {
		_, u := newStandIn(t, "S1", "pos-1")
		o := testOptions(u)
		o.Events, o.Workers = 4000, 1
		rep, err := Run(context.Background(), o)
		if err != nil || !rep.OK() {
			t.Fatalf("%v %+v", err, rep)
		}
		return rep.Accepted
	}
	envs := run()
	kinds := map[events.Kind]float64{}
	skuLines := map[string]int{}
	received, sold := map[string]bool{}, map[string]bool{}
	for _, e := range envs {
		kinds[e.Kind]++
		switch e.Kind {
		case events.KindSale, events.KindReceipt, events.KindReturn, events.KindCount:
			m, _ := events.DecodeStockMove(e.Data)
			if m.Location != "S1" {
				t.Fatalf("location %q not filled in: %s", m.Location, e.Data)
			}
			for _, l := range m.Lines {
				switch e.Kind {
				case events.KindSale:
					sold[l.SKU] = true
					skuLines[l.SKU]++
				case events.KindReceipt:
					received[l.SKU] = true
				case events.KindCount:
					if !received[l.SKU] {
						t.Fatalf("count of %s, never received", l.SKU)
					}
				case events.KindReturn:
					if !sold[l.SKU] {
						t.Fatalf("return of %s, never sold", l.SKU)
					}
				}
			}
		}
	}
	n := float64(len(envs))
	mix := DefaultMix()
	want := map[events.Kind]float64{
		events.KindSale: mix.Sale, events.KindReceipt: mix.Receipt, events.KindScan: mix.Scan,
		events.KindReview: mix.Review, events.KindAdjust: mix.Adjust, events.KindCount: mix.Count,
		events.KindReserve: mix.Reservation / 2, events.KindReturn: mix.Return,
	}
	for k, w := range want {
		if got := 100 * kinds[k] / n; math.Abs(got-w) > 1.5+w/6 {
			t.Errorf("%s: %.1f%% of events, want about %.1f%%", k, got, w)
		}
	}
	counts := make([]int, 0, len(skuLines))
	for _, c := range skuLines {
		counts = append(counts, c)
	}
	slicesSortDesc(counts)
	if counts[0] < 5*counts[len(counts)/2] {
		t.Errorf("popularity too flat: top %d, median %d", counts[0], counts[len(counts)/2])
	}
	again := run()
	for i := range envs {
		if envs[i].Kind != again[i].Kind || !bytes.Equal(envs[i].Data, again[i].Data) {
			t.Fatalf("event %d differs with the same seed:\n%s\n%s", i, envs[i].Data, again[i].Data)
		}
	}
}

func slicesSortDesc(xs []int) {
	for i := 1; i < len(xs); i++ {
		for j := i; j > 0 && xs[j] > xs[j-1]; j-- {
			xs[j], xs[j-1] = xs[j-1], xs[j]
		}
	}
}

// Ensure that with Diurnal the pacing follows the day: a run over the
// first half of a compressed day sends what the curve integrates to.
func TestDiurnalPacing(t *testing.T) {
	_, u := newStandIn(t, "S1", "pos-1")
	o := testOptions(u)
	// A rate any machine sustains, shared or not: what is checked is the
	// shape of the pacing, not the machine's speed.
	o.Rate, o.Diurnal, o.Duration = 200, 2*time.Second, time.Second
	rep, err := Run(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	c, want := newDayCurve(), 0.0
	for i := 0; i < 1000; i++ {
		want += float64(o.Rate) / 1000 * c.at((float64(i)+0.5)/2000) // 1ms steps over half the day
	}
	t.Logf("%d events, the curve says %.0f", rep.Total.Accepted, want)
	if got := float64(rep.Total.Accepted); math.Abs(got-want) > 0.15*want {
		t.Fatalf("%v events in the first half of the day, the curve says %.0f", got, want)
	}
}

// Ensure that the day curve peaks at 1 in the evening and is quiet at night.
func TestDayCurve(t *testing.T) {
	c := newDayCurve()
	at := func(hour float64) float64 { return c.at(math.Mod(hour-8+24, 24) / 24) }
	if p := at(17.5); p < 0.99 || p > 1 {
		t.Fatalf("evening peak %v", p)
	}
	if n := at(3); n > 0.05 {
		t.Fatalf("night %v", n)
	}
	if l, m := at(12.75), at(10); l <= m {
		t.Fatalf("no lunch rush: 12:45 %v, 10:00 %v", l, m)
	}
	for i := 0; i < 1000; i++ {
		if v := c.at(float64(i) / 1000); v <= 0 || v > 1 {
			t.Fatalf("curve at %v = %v", float64(i)/1000, v)
		}
	}
}

func TestHistogram(t *testing.T) {
	var h histogram
	for i := 1; i <= 1000; i++ {
		h.add(time.Duration(i) * 10 * time.Microsecond)
	}
	for _, c := range []struct {
		q    float64
		want time.Duration
	}{{0.5, 5 * time.Millisecond}, {0.99, 9900 * time.Microsecond}} {
		if got := h.quantile(c.q); math.Abs(float64(got-c.want)) > 0.07*float64(c.want) {
			t.Errorf("q%v = %v, want about %v", c.q, got, c.want)
		}
	}
	for us := uint64(0); us < 1<<20; us += 7 {
		d := time.Duration(us) * time.Microsecond
		if v := histValue(histBucket(d)); math.Abs(float64(v-d)) > 0.07*float64(d)+float64(time.Microsecond) {
			t.Fatalf("%v lands in a bucket of %v", d, v)
		}
	}
}

func env(id string, wall int64, store, device string, seq uint64, k events.Kind, body string) events.Envelope {
	return events.Envelope{V: 1, ID: fmt.Sprintf("00000000-0000-7000-8000-%012s", id), HLC: hlc.Timestamp{Wall: wall},
		Origin: events.Origin{Store: store, Device: device, Epoch: 9, Seq: seq}, Kind: k, Data: json.RawMessage(body)}
}

// Ensure that Expected applies the rules (a count supersedes older deltas,
// reservations hold stock), Compare names every differing position, and
// Tally finds lost and double-applied events per device.
func TestExpectedCompareTally(t *testing.T) {
	envs := []events.Envelope{
		env("1", 10, "S1", "pos-1", 1, events.KindReceipt, `{"location":"S1","lines":[{"sku":"A","qty":10},{"sku":"B","qty":5}]}`),
		env("2", 11, "S1", "pos-1", 2, events.KindSale, `{"location":"S1","lines":[{"sku":"A","qty":2}]}`),
		env("3", 13, "S1", "pos-2", 1, events.KindCount, `{"location":"S1","lines":[{"sku":"A","qty":4}]}`),
		env("4", 12, "S1", "pos-1", 3, events.KindSale, `{"location":"S1","lines":[{"sku":"A","qty":1}]}`), // before the count
		env("5", 14, "S1", "pos-1", 4, events.KindReserve, `{"reservation_id":"r1","location":"S1","lines":[{"sku":"B","qty":2}]}`),
		env("6", 15, "S2", "pos-1", 1, events.KindScan, `{"code":"A"}`),
	}
	want, err := Expected(append(envs, envs[1])) // a duplicate counts once
	if err != nil {
		t.Fatal(err)
	}
	a, b := inventory.Key{SKU: "A", Location: "S1"}, inventory.Key{SKU: "B", Location: "S1"}
	if len(want) != 2 || want[a] != (Stock{OnHand: 4}) || want[b] != (Stock{OnHand: 5, Reserved: 2}) {
		t.Fatalf("expected %v", want)
	}
	got := Books{a: {OnHand: 4}, b: {OnHand: 5, Reserved: 1}, {SKU: "C", Location: "S1"}: {OnHand: 1}, {SKU: "D", Location: "S1"}: {}}
	diffs := Compare(want, got)
	if len(diffs) != 2 || diffs[0].Key != b || diffs[0].Got.Reserved != 1 || diffs[1].Key.SKU != "C" || diffs[1].Want != (Stock{}) {
		t.Fatalf("differences %v", diffs)
	}
	if !strings.Contains(diffs[0].String(), "B at S1: want on_hand 5 reserved 2, got on_hand 5 reserved 1") {
		t.Fatalf("String: %s", diffs[0])
	}
	hub := map[DeviceKey]DeviceProgress{
		{"S1", "pos-1"}: {Applied: 4, Epoch: 9, Watermark: 4},
		{"S1", "pos-2"}: {Applied: 2, Epoch: 9, Watermark: 1},
		{"S2", "pos-1"}: {Applied: 0, Epoch: 9, Watermark: 0},
	}
	tally := Tally(append(envs, envs[0]), hub)
	wantTally := []DeviceCount{
		{DeviceKey: DeviceKey{"S1", "pos-1"}, Accepted: 4, Applied: 4},
		{DeviceKey: DeviceKey{"S1", "pos-2"}, Accepted: 1, Applied: 2, DoubleApplied: 1},
		{DeviceKey: DeviceKey{"S2", "pos-1"}, Accepted: 1, Applied: 0, Lost: 1, Pending: true},
	}
	if !reflect.DeepEqual(tally, wantTally) {
		t.Fatalf("tally\n %+v\nwant\n %+v", tally, wantTally)
	}
}

// Ensure that a record reads back, a torn last line is dropped and a bad
// line in the middle is an error naming it.
func TestReadRecord(t *testing.T) {
	e := env("1", 10, "S1", "pos-1", 1, events.KindScan, `{"code":"A"}`)
	b, _ := json.Marshal(e)
	line := string(b) + "\n"
	got, err := ReadRecord(strings.NewReader(line + line + line[:20]))
	if err != nil || len(got) != 2 || got[1].ID != e.ID {
		t.Fatalf("%v %v", got, err)
	}
	if _, err := ReadRecord(strings.NewReader(line + "{oops\n" + line)); err == nil || !strings.Contains(err.Error(), "line 2") {
		t.Fatalf("err %v", err)
	}
}

func TestOptionsValidate(t *testing.T) {
	bad := []Options{
		{},
		{Targets: []Target{{URL: "localhost:7070"}}, SKUs: []string{"A"}},
		{Targets: []Target{{URL: "http://x"}}, SKUs: []string{"A", "A"}},
		{Targets: []Target{{URL: "http://x"}}, SKUs: []string{"A"}, Zipf: 1},
		{Targets: []Target{{URL: "http://x"}}, SKUs: []string{"A"}, Offline: []Window{{Target: 1, End: 1}}},
		{Targets: []Target{{URL: "http://x"}}, SKUs: []string{"A"}, Mix: Mix{Review: 1}},
	}
	for i, o := range bad {
		if _, err := New(o); !errors.Is(err, ErrInvalidOption) {
			t.Errorf("options %d: %v", i, err)
		}
	}
	if _, err := New(Options{Targets: []Target{{URL: "http://x/"}}, SKUs: []string{"A"}}); err != nil {
		t.Fatal(err)
	}
}
