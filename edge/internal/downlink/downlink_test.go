package downlink

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/omnisync/omnisync/edge/internal/productcache/cachetest"
	"github.com/omnisync/omnisync/shared/downsync"
	"github.com/omnisync/omnisync/shared/epc"
	"github.com/omnisync/omnisync/shared/testkit"
)

// Ensure that a new agent bootstraps from the bucket: every way of writing
// a code finds its product with stock here, nearby and online, and stock
// of stores it was not configured with is neither received nor cached.
func TestBootstrap(t *testing.T) {
	ns := testkit.StartNATS(t)
	h := startHub(t, ns)
	const n = 12
	want := h.catalog(n, []string{"S1", "S2", "S3", "online"}, []string{"S1", "S2", "online"})
	a := newAgent(t, ns).start()
	a.waitCaughtUp(h)

	const i, v = 5, 1
	sku, gtin := cachetest.SKU(i, v), cachetest.GTIN(i*cachetest.Variants+v)
	sg, err := epc.SGTINFromGTIN(gtin, cachetest.CompanyPrefixLen, "4711")
	if err != nil {
		t.Fatal(err)
	}
	epcHex, err := sg.Encode(epc.SGTIN96, 1)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct{ name, code, by string }{
		{"sku", sku, downsync.BySKU},
		{"gtin13", gtin[1:], downsync.ByGTIN},
		{"gtin14", gtin, downsync.ByGTIN},
		{"element string", "(01)" + gtin + "(21)4711", downsync.ByElementString},
		{"digital link", "https://id.example.com/01/" + gtin + "/21/4711", downsync.ByDigitalLink},
		{"epc sgtin-96", epcHex, downsync.ByEPC},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := a.lookup(tc.code)
			if got.Product.ID != cachetest.Product(i) || got.Selected != sku || got.Match.By != tc.by {
				t.Fatalf("product %q selected %q match %+v", got.Product.ID, got.Selected, got.Match)
			}
			if here, s2, online := levels(got, sku); here != 10+i || s2 != 10+i || online != 10+i {
				t.Errorf("stock here %d S2 %d online %d, want %d each", here, s2, online, 10+i)
			}
			if got.Reviews.Count != 3 || got.Stale || got.AsOf.IsZero() {
				t.Errorf("reviews %+v stale %v as_of %v", got.Reviews, got.Stale, got.AsOf)
			}
		})
	}
	st := a.dl.Status()
	if st.MessagesReceived != uint64(want) {
		t.Errorf("received %d messages, want %d (S3's stock is not the store's business)", st.MessagesReceived, want)
	}
	if st.StockPositions != n*cachetest.Variants*3 || st.Products != n || st.Reviews != n || !st.Connected || st.BytesReceived == 0 {
		t.Errorf("status = %+v", st)
	}
	mirrors(t, h, a.cache)
}

// Ensure that while connected a changed, deleted or purged key reaches the
// cache promptly (the contract says within a second).
func TestLiveUpdates(t *testing.T) {
	ns := testkit.StartNATS(t)
	h := startHub(t, ns)
	h.catalog(3, []string{"S1", "S2", "online"}, nil)
	a := newAgent(t, ns).start()
	a.waitCaughtUp(h)
	sku := cachetest.SKU(1, 2)
	ctx := context.Background()

	steps := []struct {
		name  string
		do    func()
		check func(downsync.View) bool
	}{
		{"stock here changes", func() { h.stock("S1", sku, 2, 2) },
			func(v downsync.View) bool { here, _, _ := levels(v, sku); return here == 2 }},
		{"nearby stock oversold", func() { h.stock("S2", sku, -3, 2) },
			func(v downsync.View) bool { _, s2, _ := levels(v, sku); return s2 == 0 }},
		{"online stock deleted", func() { _ = h.kv.Delete(ctx, downsync.StockKey("online", sku)) },
			func(v downsync.View) bool { _, _, online := levels(v, sku); return online == -1 }},
		{"reviews purged", func() { _ = h.kv.Purge(ctx, downsync.ReviewKey(cachetest.Product(1))) },
			func(v downsync.View) bool { return v.Reviews.Count == 0 }},
		{"product renamed", func() {
			p := cachetest.ProductDoc(1, 2)
			p.Name = "Renamed"
			h.put(downsync.ProductKey(p.ID), p)
		}, func(v downsync.View) bool { return v.Product.Name == "Renamed" }},
	}
	for _, s := range steps {
		start := time.Now()
		s.do()
		testkit.Eventually(t, time.Second, func() bool { return s.check(a.lookup(sku)) }, "%s: not in the cache", s.name)
		t.Logf("%s: in the cache after %v", s.name, time.Since(start).Round(time.Millisecond))
	}
	a.waitCaughtUp(h)
	mirrors(t, h, a.cache)
}

// Ensure that lookups keep answering from the cache, with the old as_of,
// while NATS is down; that the agent resumes by itself when NATS is back;
// and that an agent away for "a week" receives each key that changed once,
// from where it stopped, not the bucket again.
func TestOutage(t *testing.T) {
	ns := testkit.StartNATS(t)
	h := startHub(t, ns)
	h.catalog(20, []string{"S1", "S2", "online"}, nil)
	a := newAgent(t, ns).start()
	a.waitCaughtUp(h)
	sku := cachetest.SKU(3, 0)
	before := a.lookup(sku)

	// NATS down.
	ns.Stop()
	testkit.Eventually(t, 5*time.Second, func() bool { return !a.dl.Status().Connected }, "agent noticed the outage")
	testkit.Eventually(t, 5*time.Second, func() bool { return a.lookup(sku).Stale }, "lookups say stale")
	during := a.lookup(sku)
	if !during.AsOf.Equal(before.AsOf) || during.Product.ID != before.Product.ID {
		t.Fatalf("offline lookup: as_of %v (before %v), product %q", during.AsOf, before.AsOf, during.Product.ID)
	}

	// NATS back: the agent resumes on its own and sees new changes.
	ns.Restart()
	testkit.Eventually(t, 10*time.Second, h.nc.IsConnected, "hub reconnected")
	h.stock("S1", sku, 1, 2)
	testkit.Eventually(t, 10*time.Second, func() bool {
		v := a.lookup(sku)
		here, _, _ := levels(v, sku)
		return here == 1 && !v.Stale && v.AsOf.After(before.AsOf)
	}, "change after the restart reached the cache")
	a.waitCaughtUp(h)
	mirrors(t, h, a.cache)

	// The agent is away while 5 keys change 20 times each.
	a.stop()
	seqBefore := a.cache.Stats().LastSeq
	changed := []string{cachetest.SKU(0, 0), cachetest.SKU(4, 1), cachetest.SKU(9, 2), cachetest.SKU(15, 3), cachetest.SKU(19, 0)}
	for version := int64(2); version <= 21; version++ {
		for j, s := range changed {
			h.stock([]string{"S1", "S2", "online"}[j%3], s, 100+version, version)
		}
	}
	b := newAgent(t, ns)
	b.o = a.o
	b.start()
	b.waitCaughtUp(h)
	if got := b.dl.Status().MessagesReceived; got != uint64(len(changed)) {
		t.Errorf("catch-up received %d messages for %d changed keys (100 changes, %d keys in the bucket)", got, len(changed), h.lastSeq())
	}
	if got := b.cache.Stats().LastSeq; got <= seqBefore {
		t.Errorf("sequence did not move: %d", got)
	}
	for j, s := range changed {
		here, s2, online := levels(b.lookup(s), s)
		if got := []int64{here, s2, online}[j%3]; got != 121 {
			t.Errorf("%s: stock %d, want the last version's 121", s, got)
		}
	}
	mirrors(t, h, b.cache)
}

// Ensure that an agent killed in the middle of its bootstrap, or of a
// catch-up, resumes exactly where its cache stopped: it receives only the
// messages it had not applied, and ends up with the whole bucket.
func TestCrashResume(t *testing.T) {
	cases := []struct {
		name string
		// crashAt is the Apply (or ApplyPass) that does not happen.
		crashAt int
		// catchUp: the crash happens catching up with changes, after a
		// complete bootstrap.
		catchUp bool
	}{
		{"mid-bootstrap, first filter", 2, false},
		{"mid-bootstrap, later filter", 5, false},
		{"mid-catch-up", 2, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ns := testkit.StartNATS(t)
			h := startHub(t, ns)
			total := h.catalog(60, []string{"S1", "S2", "online"}, []string{"S1", "S2", "online"})
			a := newAgent(t, ns)
			if tc.catchUp {
				a.start()
				a.waitCaughtUp(h)
				a.stop()
				for i := range 60 {
					h.stock("S2", cachetest.SKU(i, 0), 1, 2)
					h.stock("online", cachetest.SKU(i, 1), 1, 2)
				}
				total = 120
			}
			b := newAgent(t, ns)
			crashing := &crashingCache{n: tc.crashAt, crash: func() { b.cancel() }}
			b.o = a.o
			b.wrap = func(c Cache) Cache { crashing.Cache = c; return crashing }
			b.start()
			select {
			case err := <-b.done:
				b.done <- err
			case <-time.After(10 * time.Second):
				t.Fatal("the crash did not happen")
			}
			b.stop()
			st := b.cache.Stats()
			if crashing.applied == 0 || crashing.applied >= total {
				t.Fatalf("crashed with %d of %d applied: not mid-way", crashing.applied, total)
			}
			if !tc.catchUp && (st.LastSeq != 0 || st.BootstrapUpTo == 0) {
				t.Fatalf("not mid-bootstrap: %+v", st)
			}

			c := newAgent(t, ns)
			c.o = a.o
			c.start()
			c.waitCaughtUp(h)
			if got, want := c.dl.Status().MessagesReceived, uint64(total-crashing.applied); got != want {
				t.Errorf("after a crash with %d of %d messages applied, received %d, want %d", crashing.applied, total, got, want)
			}
			if st := c.cache.Stats(); st.BootstrapUpTo != 0 || st.BootstrapRead != nil {
				t.Errorf("bootstrap progress left behind: %+v", st)
			}
			mirrors(t, h, c.cache)
		})
	}
}

// Ensure that a stream recreated by the hub, while the agent runs or while
// it is away, empties the cache and bootstraps it again from the new one.
func TestRecreatedStream(t *testing.T) {
	for _, whileAway := range []bool{false, true} {
		name := map[bool]string{false: "while running", true: "while away"}[whileAway]
		t.Run(name, func(t *testing.T) {
			ns := testkit.StartNATS(t)
			h := startHub(t, ns)
			h.catalog(10, []string{"S1", "S2", "online"}, nil)
			a := newAgent(t, ns).start()
			a.waitCaughtUp(h)
			old := a.cache.Stats()
			if whileAway {
				a.stop()
			}

			// The new stream holds fewer keys: its sequences stay below the
			// cache's, and its products are others.
			if err := h.js.DeleteKeyValue(context.Background(), downsync.Bucket); err != nil {
				t.Fatal(err)
			}
			h.createBucket()
			for i := 100; i < 103; i++ {
				h.product(i, 1)
				h.stock("S1", cachetest.SKU(i, 0), 4, 1)
			}
			if whileAway {
				b := newAgent(t, ns)
				b.o = a.o
				a = b.start()
			}
			testkit.Eventually(t, 15*time.Second, func() bool {
				st := a.cache.Stats()
				return a.dl.Status().StreamResets == 1 && st.Products == 3 && !st.SyncedAt.IsZero()
			}, "cache reset and bootstrapped from the new stream: %+v", a.dl.Status())
			if _, err := a.cache.Lookup(context.Background(), cachetest.SKU(1, 0)); !errors.Is(err, downsync.ErrNotFound) {
				t.Errorf("a product of the old stream: %v", err)
			}
			if st := a.cache.Stats(); st.StreamCreated.Equal(old.StreamCreated) || st.LastSeq != h.lastSeq() {
				t.Errorf("stats = %+v", st)
			}
			mirrors(t, h, a.cache)
		})
	}
}

// Ensure that when the server-side consumer disappears under the agent (a
// gap the ordered consumer must recover from), nothing is lost or skipped.
func TestConsumerLost(t *testing.T) {
	ns := testkit.StartNATS(t)
	h := startHub(t, ns)
	h.catalog(10, []string{"S1", "S2", "online"}, nil)
	a := newAgent(t, ns).start()
	a.waitCaughtUp(h)
	ctx := context.Background()

	for round := range 3 {
		s, err := h.js.Stream(ctx, downsync.Stream)
		if err != nil {
			t.Fatal(err)
		}
		names := s.ConsumerNames(ctx)
		for name := range names.Name() {
			if err := s.DeleteConsumer(ctx, name); err != nil {
				t.Fatal(err)
			}
		}
		// Changes made right after, while the agent recovers.
		for i := range 10 {
			h.stock("S2", cachetest.SKU(i, round), int64(50+round), int64(2+round))
		}
		a.waitCaughtUp(h)
		mirrors(t, h, a.cache)
	}
	if st := a.dl.Status(); st.Sessions < 2 || st.StreamResets != 0 {
		t.Errorf("status = %+v", st)
	}
}

// Ensure that an agent started before the hub has created the bucket
// waits for it, and that a location added to the configuration later gets
// its stock from the start of the stream without the rest being read again.
func TestWaitForBucketAndNewLocation(t *testing.T) {
	ns := testkit.StartNATS(t)
	a := newAgent(t, ns).start()
	testkit.Eventually(t, 5*time.Second, func() bool { return a.dl.Status().LastError != "" }, "agent reports the missing bucket")
	if st := a.dl.Status(); st.Connected || st.LastSeq != 0 {
		t.Fatalf("status without a bucket: %+v", st)
	}
	h := startHub(t, ns)
	h.catalog(8, []string{"S1", "S2", "S3", "online"}, nil)
	a.waitCaughtUp(h)
	if st := a.cache.Stats(); st.StockPositions != 8*cachetest.Variants*3 {
		t.Fatalf("positions = %d", st.StockPositions)
	}

	// S3 becomes a nearby store.
	a.stop()
	b := newAgent(t, ns)
	b.o = a.o
	b.o.Nearby = []string{"S2", "S3"}
	b.start()
	testkit.Eventually(t, 10*time.Second, func() bool {
		st := b.cache.Stats()
		return len(st.Missing) == 0 && st.StockPositions == 8*cachetest.Variants*4
	}, "S3's stock read: %+v", b.dl.Status())
	b.waitCaughtUp(h)
	if got := b.dl.Status().MessagesReceived; got != 8*cachetest.Variants {
		t.Errorf("received %d messages, want S3's %d positions only", got, 8*cachetest.Variants)
	}
	mirrors(t, h, b.cache)
}
