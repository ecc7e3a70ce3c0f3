package staffq

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/omnisync/omnisync/edge/internal/outbox"
	"github.com/omnisync/omnisync/edge/internal/productcache"
	"github.com/omnisync/omnisync/edge/internal/productcache/cachetest"
	"github.com/omnisync/omnisync/shared/downsync"
	"github.com/omnisync/omnisync/shared/events"
)

type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) Add(d time.Duration) { c.mu.Lock(); c.now = c.now.Add(d); c.mu.Unlock() }

type rig struct {
	q     *Queue
	ob    *outbox.Outbox
	cache *productcache.Cache
	clock *clock
	dir   string
	// places, when set, is the queue's Options.Places.
	places Places
}

// newRig opens a real outbox, a real product cache with product 0 (sizes
// S, M, L, XL; M has 3 in store, L none) and a queue.
func newRig(t *testing.T) *rig {
	t.Helper()
	dir := t.TempDir()
	ob, err := outbox.Open(outbox.Options{Path: filepath.Join(dir, "outbox.db"), Store: "S1", Device: "mirror-1", MinFreeDisk: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ob.Close() })
	cache, err := productcache.Open(productcache.Options{Path: filepath.Join(dir, "cache.db"), Store: "S1"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cache.Close() })
	var us []productcache.Update
	add := func(key string, v any) {
		b, _ := json.Marshal(v)
		us = append(us, productcache.Update{Key: key, Value: b})
	}
	p := cachetest.ProductDoc(0, 1)
	add(downsync.ProductKey(p.ID), p)
	add(downsync.StockKey("S1", cachetest.SKU(0, 1)), cachetest.StockDoc("S1", cachetest.SKU(0, 1), 3, 1))
	add(downsync.StockKey("S1", cachetest.SKU(0, 2)), cachetest.StockDoc("S1", cachetest.SKU(0, 2), 0, 1))
	if err := cache.Apply(context.Background(), us, 3, true); err != nil {
		t.Fatal(err)
	}
	r := &rig{ob: ob, cache: cache, clock: &clock{now: time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)}, dir: dir}
	r.q = r.open(t)
	return r
}

func (r *rig) open(t *testing.T) *Queue {
	t.Helper()
	q, err := Open(Options{Path: filepath.Join(r.dir, "staff.db"), Outbox: r.ob, Products: r.cache, Places: r.places, Now: r.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { q.Close() })
	return q
}

func (r *rig) ask(t *testing.T, key string, a events.Assist) []events.Envelope {
	t.Helper()
	data, _ := json.Marshal(a)
	envs, _, err := r.q.Tap(r.ob).AppendOnce(context.Background(), key, []events.Draft{{Kind: events.KindAssist, Data: data}})
	if err != nil {
		t.Fatal(err)
	}
	return envs
}

// Ensure that an assist event appended through the tap becomes a request
// naming the room, the item tried and the exact variant to fetch with the
// store's stock; that a retried form is one request; and that the queue
// survives a restart.
func TestTap_RecordsRequests(t *testing.T) {
	r := newRig(t)
	envs := r.ask(t, "k1", events.Assist{Zone: "room-1", SKU: cachetest.SKU(0, 1), From: cachetest.SKU(0, 0)})
	r.ask(t, "k1", events.Assist{Zone: "room-1", SKU: cachetest.SKU(0, 1), From: cachetest.SKU(0, 0)})
	var body events.Assist
	_ = json.Unmarshal(envs[0].Data, &body)
	if body.Request == "" || body.Reason != events.AssistSize {
		t.Fatalf("event body %s", envs[0].Data)
	}
	s, _ := r.q.Snapshot()
	if len(s.Requests) != 1 {
		t.Fatalf("%d requests", len(s.Requests))
	}
	q := s.Requests[0]
	if q.ID != body.Request || q.Zone != "room-1" || q.State != StateOpen || q.Fetch.SKU != cachetest.SKU(0, 1) || q.Fetch.Variant != "M · navy" ||
		q.Fetch.Here == nil || *q.Fetch.Here != 3 || q.Fetch.GTIN != cachetest.GTIN(1) || q.Trying == nil || q.Trying.Variant != "S · navy" {
		t.Fatalf("request %+v", q)
	}
	r.clock.Add(time.Second)
	r.ask(t, "k2", events.Assist{Zone: "room-2", SKU: cachetest.SKU(0, 0), From: cachetest.SKU(0, 0)})
	r.q.Close()
	r.q = r.open(t)
	s, _ = r.q.Snapshot()
	if len(s.Requests) != 2 || s.Requests[1].Reason != events.AssistHelp {
		t.Fatalf("after restart: %+v", s.Requests)
	}
	// A call from the room itself names no item: the request is the room.
	r.clock.Add(time.Second)
	r.ask(t, "k3", events.Assist{Zone: "room-3", Reason: events.AssistHelp})
	s, _ = r.q.Snapshot()
	if len(s.Requests) != 3 || s.Requests[2].Zone != "room-3" || s.Requests[2].Reason != events.AssistHelp || s.Requests[2].Trying != nil {
		t.Fatalf("room call: %+v", s.Requests)
	}
}

// Ensure that a request nobody claims is escalated once, after 3 minutes,
// with an assist event for HQ, and a claimed one is not.
func TestSweep_Escalates(t *testing.T) {
	r := newRig(t)
	r.ask(t, "a", events.Assist{Zone: "room-1", SKU: cachetest.SKU(0, 1), From: cachetest.SKU(0, 0)})
	r.ask(t, "b", events.Assist{Zone: "room-2", SKU: cachetest.SKU(0, 2), From: cachetest.SKU(0, 0)})
	s, _ := r.q.Snapshot()
	for _, q := range s.Requests {
		if q.Zone == "room-2" {
			if _, err := r.q.Claim(q.ID, "ana"); err != nil {
				t.Fatal(err)
			}
		}
	}
	r.clock.Add(2*time.Minute + 59*time.Second)
	if err := r.q.Sweep(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := r.ob.Stats().LastSeq; n != 2 {
		t.Fatalf("escalated early: %d events", n)
	}
	r.clock.Add(time.Second)
	for range 2 {
		if err := r.q.Sweep(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	if n := r.ob.Stats().LastSeq; n != 3 {
		t.Fatalf("%d events, want the 2 requests and 1 escalation", n)
	}
	s, _ = r.q.Snapshot()
	var esc *Request
	for i := range s.Requests {
		if s.Requests[i].EscalatedMS != 0 {
			esc = &s.Requests[i]
		}
	}
	if esc == nil || esc.Zone != "room-1" {
		t.Fatalf("requests %+v", s.Requests)
	}
	if _, err := r.q.Finish(esc.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := r.q.Claim(esc.ID, ""); err != ErrState {
		t.Fatalf("claiming a done request: %v", err)
	}
	if _, err := r.q.Claim("nope", ""); err != ErrNotFound {
		t.Fatalf("claiming an unknown request: %v", err)
	}
}

// Ensure that the stream sends the queue at once and at each change, and
// that claim and done work over HTTP, refusing bad bodies.
func TestHTTP_StreamClaimDone(t *testing.T) {
	r := newRig(t)
	mux := http.NewServeMux()
	r.q.Register(mux)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", srv.URL+"/staff/stream", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	snaps := make(chan Snapshot, 16)
	go func() {
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			if d, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
				var s Snapshot
				_ = json.Unmarshal([]byte(d), &s)
				snaps <- s
			}
		}
	}()
	next := func() Snapshot {
		select {
		case s := <-snaps:
			return s
		case <-time.After(5 * time.Second):
			t.Fatal("no snapshot")
		}
		return Snapshot{}
	}
	if s := next(); len(s.Requests) != 0 {
		t.Fatalf("first snapshot %+v", s)
	}
	r.ask(t, "a", events.Assist{Zone: "room-1", SKU: cachetest.SKU(0, 1), From: cachetest.SKU(0, 0)})
	s := next()
	if len(s.Requests) != 1 {
		t.Fatalf("snapshot %+v", s)
	}
	id := s.Requests[0].ID
	post := func(path, body string) int {
		resp, err := http.Post(srv.URL+path, "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if c := post("/staff/requests/"+id+"/claim", `{"by": 1}`); c != http.StatusBadRequest {
		t.Fatalf("bad body: %d", c)
	}
	if c := post("/staff/requests/"+id+"/claim", `{"by":"ana"}`); c != http.StatusOK {
		t.Fatalf("claim: %d", c)
	}
	if s := next(); s.Requests[0].State != StateClaimed || s.Requests[0].ClaimedBy != "ana" {
		t.Fatalf("after claim %+v", s.Requests)
	}
	if c := post("/staff/requests/"+id+"/done", ""); c != http.StatusOK {
		t.Fatalf("done: %d", c)
	}
	if s := next(); s.Requests[0].State != StateDone {
		t.Fatalf("after done %+v", s.Requests)
	}
	if c := post("/staff/requests/nope/done", ""); c != http.StatusNotFound {
		t.Fatalf("unknown: %d", c)
	}
}

// TestLatency_RequestToStaffStream measures how long a request takes from
// the mirror's append to the staff page's stream, over 200 requests, and
// reports the p50 and p99 (a figure, not a limit).
func TestLatency_RequestToStaffStream(t *testing.T) {
	r := newRig(t)
	r.q.o.Now = time.Now
	mux := http.NewServeMux()
	r.q.Register(mux)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", srv.URL+"/staff/stream", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	seen := make(chan int, 1024)
	go func() {
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(nil, 8<<20)
		for sc.Scan() {
			if d, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
				var s Snapshot
				_ = json.Unmarshal([]byte(d), &s)
				seen <- len(s.Requests)
			}
		}
	}()
	<-seen
	var lat []time.Duration
	for i := range 200 {
		start := time.Now()
		r.ask(t, fmt.Sprintf("lat-%d", i), events.Assist{Zone: "room-1", SKU: cachetest.SKU(0, 1), From: cachetest.SKU(0, 0)})
		for n := range seen {
			if n >= i+1 {
				break
			}
		}
		lat = append(lat, time.Since(start))
	}
	slices.Sort(lat)
	t.Logf("request to staff stream (append fsync'd + stream): p50 %v p99 %v max %v", lat[len(lat)/2], lat[len(lat)*99/100], lat[len(lat)-1])
}
