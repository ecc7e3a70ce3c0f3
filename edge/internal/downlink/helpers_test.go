package downlink

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/omnisync/omnisync/edge/internal/productcache"
	"github.com/omnisync/omnisync/edge/internal/productcache/cachetest"
	"github.com/omnisync/omnisync/shared/downsync"
	"github.com/omnisync/omnisync/shared/subjects"
	"github.com/omnisync/omnisync/shared/testkit"
)

// hub plays the hub's part: it owns the bucket and writes documents.
type hub struct {
	t  testing.TB
	nc *nats.Conn
	js jetstream.JetStream
	kv jetstream.KeyValue
}

func startHub(t testing.TB, ns *testkit.NATS) *hub {
	t.Helper()
	nc, err := nats.Connect(ns.URL(), nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	h := &hub{t: t, nc: nc, js: js}
	h.createBucket()
	return h
}

// createBucket creates the bucket, retrying for a while: right after a
// delete the server may still be removing the old stream's files.
func (h *hub) createBucket() {
	h.t.Helper()
	var err error
	for range 50 {
		var kv jetstream.KeyValue
		if kv, err = downsync.EnsureBucket(context.Background(), h.js, 1); err == nil {
			h.kv = kv
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	h.t.Fatal(err)
}

// put writes one document and returns its stream sequence.
func (h *hub) put(key string, doc any) uint64 {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	seq, err := h.kv.Put(ctx, key, cachetest.JSON(doc))
	if err != nil {
		h.t.Fatalf("put %s: %v", key, err)
	}
	return seq
}

func (h *hub) product(i int, version int64) {
	h.put(downsync.ProductKey(cachetest.Product(i)), cachetest.ProductDoc(i, version))
}

func (h *hub) review(i int, version int64) {
	h.put(downsync.ReviewKey(cachetest.Product(i)), cachetest.ReviewSummary(i, version))
}

func (h *hub) stock(location, sku string, available, version int64) {
	h.put(downsync.StockKey(location, sku), cachetest.StockDoc(location, sku, available, version))
}

// catalog writes products 0..n-1 with their reviews and stock of every
// variant at each location (available 10+i), and returns how many of
// those messages a store reading the locations in readBy receives.
func (h *hub) catalog(n int, locations []string, readBy []string) int {
	h.t.Helper()
	want := 0
	for i := range n {
		h.product(i, 1)
		h.review(i, 1)
		want += 2
	}
	for _, l := range locations {
		for i := range n {
			for v := range cachetest.Variants {
				h.stock(l, cachetest.SKU(i, v), int64(10+i), 1)
			}
			for _, r := range readBy {
				if r == l {
					want += cachetest.Variants
				}
			}
		}
	}
	return want
}

// lastSeq is the stream's last sequence.
func (h *hub) lastSeq() uint64 {
	h.t.Helper()
	s, err := h.js.Stream(context.Background(), downsync.Stream)
	if err != nil {
		h.t.Fatal(err)
	}
	return s.CachedInfo().State.LastSeq
}

// agent is the store agent's down-sync part: its connection (with the
// store's inbox prefix), cache and downlink.
type agent struct {
	t      testing.TB
	url    string
	o      productcache.Options
	nc     *nats.Conn
	cache  *productcache.Cache
	dl     *Downlink
	cancel context.CancelFunc
	done   chan error
	// wrap, when set, wraps the cache the downlink is given.
	wrap func(Cache) Cache
	// tune, when set, changes the downlink's options.
	tune func(*Options)
}

// newAgent prepares an agent of store S1 with nearby S2 and the online
// warehouse; start runs it.
func newAgent(t testing.TB, ns *testkit.NATS) *agent {
	return &agent{t: t, url: ns.URL(), o: productcache.Options{
		Path:  filepath.Join(t.TempDir(), "cache.db"),
		Store: "S1", Nearby: []string{"S2"}, Online: "online",
		StaleAfter: 300 * time.Millisecond,
	}}
}

func (a *agent) start() *agent {
	a.t.Helper()
	c, err := productcache.Open(a.o)
	if err != nil {
		a.t.Fatal(err)
	}
	a.cache = c
	a.nc, err = nats.Connect(a.url, nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond),
		nats.RetryOnFailedConnect(true), nats.CustomInboxPrefix(subjects.InboxPrefix("S1")))
	if err != nil {
		a.t.Fatal(err)
	}
	var cache Cache = c
	if a.wrap != nil {
		cache = a.wrap(c)
	}
	o := Options{
		Conn: a.nc, Cache: cache, MaxBatch: 100,
		MinBackoff: 20 * time.Millisecond, MaxBackoff: 200 * time.Millisecond, RequestTimeout: 2 * time.Second,
		Logger: testLogger(a.t),
	}
	if a.tune != nil {
		a.tune(&o)
	}
	a.dl, err = New(o)
	if err != nil {
		a.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	a.cancel, a.done = cancel, make(chan error, 1)
	go func() { a.done <- a.dl.Run(ctx) }()
	a.t.Cleanup(a.stop)
	return a
}

// stop stops the downlink, closes the cache and the connection
// (idempotent).
func (a *agent) stop() {
	a.t.Helper()
	if a.cancel == nil {
		return
	}
	a.cancel()
	a.dl.Close()
	if err := <-a.done; err != nil {
		a.t.Errorf("downlink: %v", err)
	}
	a.cancel = nil
	a.cache.Close()
	a.nc.Close()
}

// waitCaughtUp waits until the cache holds everything up to the stream's
// last sequence and knows it is caught up.
func (a *agent) waitCaughtUp(h *hub) {
	a.t.Helper()
	want := h.lastSeq()
	testkit.Eventually(a.t, 10*time.Second, func() bool {
		st := a.cache.Stats()
		return st.LastSeq >= want && !st.SyncedAt.IsZero() && !a.dl.Status().Bootstrapping
	}, "cache caught up to seq %d: %+v", want, a.dl.Status())
}

func (a *agent) lookup(code string) downsync.View {
	a.t.Helper()
	v, err := a.cache.Lookup(context.Background(), code)
	if err != nil {
		a.t.Fatalf("lookup %q: %v", code, err)
	}
	return v
}

// levels returns the stock of sku shown here, at S2 and online (-1: none).
func levels(v downsync.View, sku string) (here, s2, online int64) {
	here, s2, online = -1, -1, -1
	for _, vv := range v.Variants {
		if vv.SKU != sku {
			continue
		}
		if vv.Stock.Here != nil {
			here = vv.Stock.Here.Available
		}
		for _, l := range vv.Stock.Nearby {
			if l.Location == "S2" {
				s2 = l.Available
			}
		}
		if vv.Stock.Online != nil {
			online = vv.Stock.Online.Available
		}
	}
	return here, s2, online
}

// mirrors fails the test unless the cache holds exactly what the bucket
// holds for the agent's locations: every product and stock position at
// its current version, nothing else.
func mirrors(t testing.TB, h *hub, c *productcache.Cache) {
	t.Helper()
	ctx := context.Background()
	keys, err := h.kv.ListKeys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	inScope := map[string]bool{}
	for _, l := range c.Locations() {
		inScope[l] = true
	}
	var products, stock int64
	for key := range keys.Keys() {
		e, err := h.kv.Get(ctx, key)
		if err != nil {
			t.Fatalf("get %s: %v", key, err)
		}
		k, _ := downsync.ParseKey(key)
		switch k.Kind {
		case downsync.KindProduct:
			products++
			var p downsync.ProductDoc
			mustUnmarshal(t, e.Value(), &p)
			v, err := c.Lookup(ctx, p.Variants[0].SKU)
			if err != nil || v.Product.Version != p.Version {
				t.Errorf("product %s: cached version %d (%v), bucket %d", p.ID, v.Product.Version, err, p.Version)
			}
		case downsync.KindStock:
			if !inScope[k.Location] {
				continue
			}
			stock++
			var d downsync.StockDoc
			mustUnmarshal(t, e.Value(), &d)
			v, err := c.Lookup(ctx, d.SKU)
			if err != nil {
				t.Errorf("stock %s/%s: %v", k.Location, k.SKU, err)
				continue
			}
			if l := levelAt(v, d.SKU, k.Location); l == nil || l.Available != max(d.Available, 0) {
				t.Errorf("stock %s/%s: cached %+v, bucket %d", k.Location, k.SKU, l, d.Available)
			}
		}
	}
	if st := c.Stats(); st.Products != products || st.StockPositions != stock {
		t.Errorf("cache holds %d products and %d positions, the bucket %d and %d", st.Products, st.StockPositions, products, stock)
	}
}

func levelAt(v downsync.View, sku, location string) *downsync.Level {
	for _, vv := range v.Variants {
		if vv.SKU != sku {
			continue
		}
		ls := append([]downsync.Level(nil), vv.Stock.Nearby...)
		for _, p := range []*downsync.Level{vv.Stock.Here, vv.Stock.Online} {
			if p != nil {
				ls = append(ls, *p)
			}
		}
		for _, l := range ls {
			if l.Location == location {
				return &l
			}
		}
	}
	return nil
}

// crashingCache is a real cache that "crashes" at its n-th Apply or
// ApplyPass: it cancels the downlink and refuses that call and every later
// one, as if the agent had been killed before the transaction committed.
// applied counts the messages of the calls that went through.
type crashingCache struct {
	Cache
	mu      sync.Mutex
	n       int
	applied int
	crashed bool
	crash   func()
}

var errCrash = errors.New("crashed")

func (c *crashingCache) before() error {
	if c.crashed {
		return errCrash
	}
	if c.n--; c.n <= 0 {
		c.crashed = true
		c.crash()
		return errCrash
	}
	return nil
}

func (c *crashingCache) Apply(ctx context.Context, batch []productcache.Update, lastSeq uint64, caughtUp bool) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.before(); err != nil {
		return err
	}
	err := c.Cache.Apply(ctx, batch, lastSeq, caughtUp)
	if err == nil {
		c.applied += len(batch)
	}
	return err
}

func (c *crashingCache) ApplyPass(ctx context.Context, batch []productcache.Update, upTo uint64, filter string, seq uint64) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.before(); err != nil {
		return err
	}
	err := c.Cache.ApplyPass(ctx, batch, upTo, filter, seq)
	if err == nil {
		c.applied += len(batch)
	}
	return err
}

func mustUnmarshal(t testing.TB, b []byte, v any) {
	t.Helper()
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatal(err)
	}
}

// testLogger sends the downlink's log to the test log until the test ends.
func testLogger(t testing.TB) *slog.Logger { return testkit.LoggerAt(t, slog.LevelInfo) }
