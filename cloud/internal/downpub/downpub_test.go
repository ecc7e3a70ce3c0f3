package downpub

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/omnisync/omnisync/cloud/internal/catalog"
	"github.com/omnisync/omnisync/cloud/internal/inventory"
	"github.com/omnisync/omnisync/cloud/internal/reviews"
	"github.com/omnisync/omnisync/cloud/internal/store"
	"github.com/omnisync/omnisync/shared/downsync"
	"github.com/omnisync/omnisync/shared/events"
	"github.com/omnisync/omnisync/shared/hlc"
	"github.com/omnisync/omnisync/shared/ids"
	"github.com/omnisync/omnisync/shared/testkit"
)

type env struct {
	st   *store.Store
	js   jetstream.JetStream
	kv   jetstream.KeyValue
	pkv  jetstream.KeyValue
	ns   *testkit.NATS
	seqs map[string]uint64 // per origin store
	mu   sync.Mutex
	// now, if set, is the publishers' clock.
	now func() time.Time
}

func newEnv(t testing.TB) *env {
	t.Helper()
	ns := testkit.StartNATS(t)
	nc, err := nats.Connect(ns.URL(), nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	kv, err := downsync.EnsureBucket(context.Background(), js, 1)
	if err != nil {
		t.Fatal(err)
	}
	pkv, err := downsync.EnsurePickupBucket(context.Background(), js, 1)
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(context.Background(), "sqlite:"+filepath.Join(t.TempDir(), "hub.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return &env{st: st, js: js, kv: kv, pkv: pkv, ns: ns}
}

// start runs a publisher over s until the test ends.
func (e *env) start(t *testing.T, s Store, hub string) *Publisher {
	t.Helper()
	p, err := New(Options{JS: e.js, KV: e.kv, PickupKV: e.pkv, Store: s, Hub: hub, FlushEvery: 20 * time.Millisecond,
		SweepEvery: 300 * time.Millisecond, SweepLookback: time.Minute, TickEvery: 200 * time.Millisecond, Page: 50, Now: e.now, Logger: testkit.Logger(t)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = p.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return p
}

// apply applies one event of kind k and returns the result. It comes from
// the store at the location the body names (a store speaks only for its
// own location), else from S1.
func (e *env) apply(t *testing.T, k events.Kind, body any) store.BatchResult {
	t.Helper()
	data, _ := json.Marshal(body)
	var named struct {
		Location string `json:"location"`
	}
	_ = json.Unmarshal(data, &named)
	from := "S1"
	if named.Location != "" && k != events.KindReserve {
		from = named.Location
	}
	e.mu.Lock()
	if e.seqs == nil {
		e.seqs = map[string]uint64{}
	}
	e.seqs[from]++
	seq := e.seqs[from]
	e.mu.Unlock()
	env := events.Envelope{V: events.CurrentVersion, ID: ids.NewEventID(time.Now()),
		Origin: events.Origin{Store: from, Device: "pos-1", Epoch: 1, Seq: seq},
		HLC:    hlc.Timestamp{Wall: time.Now().UnixMilli(), Logical: uint32(seq)}, Kind: k, Data: data}
	res, err := e.st.ApplyBatch(context.Background(), []store.Item{{Env: env}})
	if err != nil || res.Applied != 1 {
		t.Fatalf("apply %s: %+v %v", k, res, err)
	}
	return res
}

func (e *env) stockDoc(t *testing.T, loc, sku string) (downsync.StockDoc, bool) {
	t.Helper()
	ent, err := e.kv.Get(context.Background(), downsync.StockKey(loc, sku))
	if err != nil {
		return downsync.StockDoc{}, false
	}
	var d downsync.StockDoc
	if err := json.Unmarshal(ent.Value(), &d); err != nil {
		t.Fatal(err)
	}
	return d, true
}

func move(loc string, lines ...events.Line) events.StockMove {
	return events.StockMove{Location: loc, Lines: lines}
}

// Ensure that a committed stock change reaches the bucket with the store's
// version, and changes made before the publisher started are published by
// its start-up comparison.
func TestPublishesStock(t *testing.T) {
	e := newEnv(t)
	e.apply(t, events.KindReceipt, move("S1", events.Line{SKU: "A", Qty: 10}))
	p := e.start(t, e.st, "h1")
	testkit.Eventually(t, 5*time.Second, func() bool { d, ok := e.stockDoc(t, "S1", "A"); return ok && d.OnHand == 10 }, "start-up publish of S1/A")

	res := e.apply(t, events.KindSale, move("S1", events.Line{SKU: "A", Qty: 3}, events.Line{SKU: "B", Qty: 1}))
	p.Stock(res.Positions)
	testkit.Eventually(t, 5*time.Second, func() bool { d, ok := e.stockDoc(t, "S1", "A"); return ok && d.OnHand == 7 }, "S1/A after a sale")
	d, _ := e.stockDoc(t, "S1", "A")
	docs, err := e.st.StockDocs(context.Background(), []inventory.Key{{SKU: "A", Location: "S1"}})
	if err != nil || len(docs) != 1 || docs[0].Version != d.Version {
		t.Fatalf("bucket version %d, store %+v %v", d.Version, docs, err)
	}
	if b, ok := e.stockDoc(t, "S1", "B"); !ok || b.OnHand != -1 || b.Available != -1 {
		t.Fatalf("S1/B = %+v %v", b, ok)
	}
	// Nothing changed: nothing more is published. (The counter follows the
	// acknowledgements, which the bucket may show first.)
	testkit.Eventually(t, 5*time.Second, func() bool { return p.Stats().Published >= 3 }, "S1/A twice and S1/B counted")
	before := p.Stats().Published
	p.Stock(res.Positions)
	time.Sleep(200 * time.Millisecond)
	if got := p.Stats().Published; got != before {
		t.Fatalf("republished unchanged documents: %d -> %d", before, got)
	}
}

// Ensure that a change whose publisher died before publishing is found by
// another replica's sweep.
func TestSweepPublishesUnmarkedChanges(t *testing.T) {
	e := newEnv(t)
	e.start(t, e.st, "h1")
	time.Sleep(100 * time.Millisecond)
	// Applied, but nobody is told (as if the applying replica died).
	e.apply(t, events.KindReceipt, move("S2", events.Line{SKU: "C", Qty: 4}))
	testkit.Eventually(t, 5*time.Second, func() bool { d, ok := e.stockDoc(t, "S2", "C"); return ok && d.OnHand == 4 }, "sweep publish of S2/C")
}

// staleStore answers stock documents one version behind, as a replica that
// read just before another replica's commit would.
type staleStore struct{ *store.Store }

func (s staleStore) StockDocs(ctx context.Context, keys []inventory.Key) ([]downsync.StockDoc, error) {
	docs, err := s.Store.StockDocs(ctx, keys)
	for i := range docs {
		docs[i].Version--
		docs[i].OnHand = -999
	}
	return docs, err
}

// Ensure that replicas publishing concurrently, one of them always late,
// leave every key at the store's version and never move a key backwards.
func TestReplicasNeverRegress(t *testing.T) {
	e := newEnv(t)
	// Watch every stock write: versions per key must only grow.
	w, err := e.kv.Watch(context.Background(), "stk.>")
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	var wmu sync.Mutex
	seen := map[string]int64{}
	var regress []string
	go func() {
		for ent := range w.Updates() {
			if ent == nil {
				continue
			}
			var d downsync.StockDoc
			_ = json.Unmarshal(ent.Value(), &d)
			wmu.Lock()
			if d.Version < seen[ent.Key()] {
				regress = append(regress, fmt.Sprintf("%s: v%d after v%d", ent.Key(), d.Version, seen[ent.Key()]))
			}
			seen[ent.Key()] = max(seen[ent.Key()], d.Version)
			wmu.Unlock()
		}
	}()
	pubs := []*Publisher{e.start(t, e.st, "h1"), e.start(t, e.st, "h2"), e.start(t, staleStore{e.st}, "late")}
	var keys []inventory.Key
	for i := 0; i < 300; i++ {
		sku := fmt.Sprintf("SKU-%d", rand.IntN(40))
		res := e.apply(t, events.KindReceipt, move("S1", events.Line{SKU: sku, Qty: 1}))
		keys = append(keys, res.Positions...)
		pubs[rand.IntN(len(pubs))].Stock(res.Positions)
		pubs[rand.IntN(len(pubs))].Stock(res.Positions)
	}
	docs, err := e.st.StockDocs(context.Background(), keys)
	if err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, 10*time.Second, func() bool {
		for _, d := range docs {
			got, ok := e.stockDoc(t, d.Location, d.SKU)
			if !ok || got.Version != d.Version || got.OnHand != d.OnHand {
				return false
			}
		}
		return true
	}, "every key at the store's version")
	wmu.Lock()
	defer wmu.Unlock()
	if len(regress) > 0 {
		t.Fatalf("keys moved backwards: %v", regress)
	}
	var conflicts uint64
	for _, p := range pubs {
		conflicts += p.Stats().Conflicts
	}
	t.Logf("%d keys, conflicts resolved: %d", len(docs), conflicts)
}

// Ensure that reviews are summarised with moderation applied: a blocked
// word keeps a review out, a second review from one session is ignored.
func TestPublishesReviewSummary(t *testing.T) {
	e := newEnv(t)
	// Published at once unless a blocked word holds them.
	if err := e.st.SetReviewPolicy(context.Background(), reviews.Policy{BlockedWords: reviews.DefaultBlockedWords, AutoPublish: true}); err != nil {
		t.Fatal(err)
	}
	p := e.start(t, e.st, "h1")
	var products []string
	for _, r := range []events.Review{
		{ProductID: "P1", Rating: 5, Text: "lovely fit", Session: "s1"},
		{ProductID: "P1", Rating: 1, Text: "second try from the same visit", Session: "s1"},
		{ProductID: "P1", Rating: 4, Title: "good", Session: "s2"},
		{ProductID: "P1", Rating: 1, Text: "what a load of shit", Session: "s3"},
	} {
		res := e.apply(t, events.KindReview, r)
		products = append(products, res.ReviewedProducts...)
	}
	p.Reviews(products)
	var sum downsync.ReviewSummary
	testkit.Eventually(t, 5*time.Second, func() bool {
		ent, err := e.kv.Get(context.Background(), downsync.ReviewKey("P1"))
		if err != nil {
			return false
		}
		_ = json.Unmarshal(ent.Value(), &sum)
		return sum.Version == 4
	}, "review summary v4")
	if sum.Count != 2 || sum.Average != 4.5 || sum.Distribution != [5]int64{0, 0, 0, 1, 1} || len(sum.Latest) != 2 || sum.Latest[0].Title != "good" {
		t.Fatalf("summary = %+v", sum)
	}
	recs, err := e.st.Reviews(context.Background(), "P1", 10)
	if err != nil || len(recs) != 3 {
		t.Fatalf("records = %+v %v", recs, err)
	}
	for _, r := range recs {
		if r.Session == "s3" && (r.Status != store.ReviewRejected || r.Reason == "") {
			t.Fatalf("blocked review = %+v", r)
		}
	}
}

// Ensure that an imported catalog is published, one document per product
// with its variants, and a re-import that changes nothing publishes
// nothing.
func TestPublishesCatalog(t *testing.T) {
	e := newEnv(t)
	p := e.start(t, e.st, "h1")
	vs := catalog.Sample(7, 20)
	res, err := e.st.ImportCatalog(context.Background(), vs, store.ImportOptions{Source: "test", Mode: catalog.AllOrNothing})
	if err != nil {
		t.Fatal(err)
	}
	p.Products(res.ProductsChanged)
	first := vs[0]
	testkit.Eventually(t, 5*time.Second, func() bool {
		ent, err := e.kv.Get(context.Background(), downsync.ProductKey(first.ProductID))
		if err != nil {
			return false
		}
		var d downsync.ProductDoc
		return json.Unmarshal(ent.Value(), &d) == nil && d.Name == first.Name && len(d.Variants) >= 3
	}, "product document published")
	testkit.Eventually(t, 5*time.Second, func() bool { return p.Stats().Dirty == 0 && p.Stats().Published >= 20 }, "all products published")
	before := p.Stats().Published
	res, err = e.st.ImportCatalog(context.Background(), vs, store.ImportOptions{Source: "again", Mode: catalog.AllOrNothing})
	if err != nil || len(res.ProductsChanged) != 0 {
		t.Fatalf("re-import: %+v %v", res, err)
	}
	time.Sleep(200 * time.Millisecond)
	if p.Stats().Published != before {
		t.Fatalf("re-import published %d documents", p.Stats().Published-before)
	}
}

// BenchmarkPublishCatalog measures how long a 100k-variant catalog takes
// to reach the bucket after its import commits, and how many bytes that is.
func BenchmarkPublishCatalog(b *testing.B) {
	vs := catalog.Sample(11, 25000)
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		e := newEnv(b)
		res, err := e.st.ImportCatalog(context.Background(), vs, store.ImportOptions{Source: "bench", Mode: catalog.AllOrNothing})
		if err != nil {
			b.Fatal(err)
		}
		p, err := New(Options{JS: e.js, KV: e.kv, PickupKV: e.pkv, Store: e.st, Hub: "bench"})
		if err != nil {
			b.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		b.StartTimer()
		start := time.Now()
		go func() { defer close(done); _ = p.Run(ctx) }()
		p.Products(res.ProductsChanged)
		for p.Stats().Published < uint64(len(res.ProductsChanged)) {
			time.Sleep(5 * time.Millisecond)
		}
		el := time.Since(start)
		b.StopTimer()
		cancel()
		<-done
		info, _ := e.kv.Status(context.Background())
		b.ReportMetric(float64(len(vs)), "variants")
		b.ReportMetric(float64(len(res.ProductsChanged))/el.Seconds(), "products/s")
		b.ReportMetric(float64(info.Bytes())/(1<<20), "bucket-MiB")
	}
}

// TestFlushWait: a flush that published many documents is followed by a
// longer wait, which coalesces a catching-up store's stock changes; a
// quiet hub keeps publishing within FlushEvery.
func TestFlushWait(t *testing.T) {
	e := newEnv(t)
	p, err := New(Options{JS: e.js, KV: e.kv, PickupKV: e.pkv, Store: e.st, Hub: "hub-1"})
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		n    uint64
		want time.Duration
	}{{0, 100 * time.Millisecond}, {249, 100 * time.Millisecond}, {250, time.Second}, {2000, time.Second}} {
		if got := p.flushWait(tt.n); got != tt.want {
			t.Errorf("after %d documents: wait %v, want %v", tt.n, got, tt.want)
		}
	}
	if p.o.BusyFlushEvery > time.Second {
		t.Fatalf("busy flushes %v apart: a stock change could take over two seconds to reach the stores", p.o.BusyFlushEvery)
	}
}
