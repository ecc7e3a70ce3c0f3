package customercard

import (
	"context"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/omnisync/omnisync/edge/internal/customercard/custtest"
	"github.com/omnisync/omnisync/edge/internal/outbox"
	"github.com/omnisync/omnisync/shared/events"
	"github.com/omnisync/omnisync/shared/testkit"
)

// agent is the customer part of store S1's agent pos-1: the cache file,
// the outbox file, a connection through a proxy the test can cut, the
// client and the eraser.
type agent struct {
	t       testing.TB
	h       *custtest.Hub
	store   string
	dir     string
	proxy   *testkit.Proxy
	nc      *nats.Conn
	cache   *Cache
	ob      *outbox.Outbox
	client  *Client
	eraser  *Eraser
	done    chan error
	now     func() time.Time
	nowMu   sync.Mutex
	offset  time.Duration
	running bool
}

func newAgent(t testing.TB, h *custtest.Hub, store string) *agent {
	a := &agent{t: t, h: h, store: store, dir: t.TempDir()}
	a.proxy = testkit.StartProxy(t, strings.TrimPrefix(h.W.URL, "nats://"))
	a.now = func() time.Time { a.nowMu.Lock(); defer a.nowMu.Unlock(); return time.Now().Add(a.offset) }
	t.Cleanup(a.stop)
	return a
}

// advance moves the agent's clock.
func (a *agent) advance(d time.Duration) { a.nowMu.Lock(); a.offset += d; a.nowMu.Unlock() }

// start opens the files and connects (in the background: the proxy may
// be cut).
func (a *agent) start() *agent {
	a.t.Helper()
	var err error
	if a.cache, err = Open(Options{Path: filepath.Join(a.dir, "customers.db"), Now: a.now, Logger: testkit.Logger(a.t)}); err != nil {
		a.t.Fatal(err)
	}
	if a.ob, err = outbox.Open(outbox.Options{Path: filepath.Join(a.dir, "outbox.db"), Store: a.store, Device: "pos-1"}); err != nil {
		a.t.Fatal(err)
	}
	opts := append(a.h.W.StoreOptions(a.t, a.store), nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond),
		nats.RetryOnFailedConnect(true), nats.Timeout(500*time.Millisecond))
	if a.nc, err = nats.Connect("nats://"+a.proxy.Addr(), opts...); err != nil {
		a.t.Fatal(err)
	}
	if a.client, err = NewClient(ClientOptions{Store: a.store, Device: "pos-1", Conn: a.nc, Cache: a.cache, HubTimeout: 500 * time.Millisecond}); err != nil {
		a.t.Fatal(err)
	}
	if a.eraser, err = NewEraser(EraserOptions{
		Store: a.store, Device: "pos-1", Conn: a.nc, Cache: a.cache, Outbox: a.ob, RequestTimeout: 2 * time.Second,
		MinBackoff: 20 * time.Millisecond, MaxBackoff: 200 * time.Millisecond, Now: a.now, Logger: testkit.Logger(a.t),
	}); err != nil {
		a.t.Fatal(err)
	}
	a.done = make(chan error, 1)
	go func() { a.done <- a.eraser.Run(context.Background()) }()
	a.running = true
	return a
}

// stop stops the eraser and closes everything (idempotent).
func (a *agent) stop() {
	if !a.running {
		return
	}
	a.running = false
	a.eraser.Close()
	if err := <-a.done; err != nil {
		a.t.Errorf("eraser: %v", err)
	}
	a.nc.Close()
	a.cache.Close()
	a.ob.Close()
}

// sell appends a sale of sku to the outbox naming customer ("" for none).
func (a *agent) sell(sku, customer string) events.Envelope {
	a.t.Helper()
	body := `{"kind":"sale","data":{"lines":[{"sku":"` + sku + `","qty":1,"unit_price":1000}]`
	if customer != "" {
		body += `,"customer":"` + customer + `"`
	}
	d, err := events.ParseDrafts([]byte(body+`}}`), a.store)
	if err != nil {
		a.t.Fatal(err)
	}
	envs, err := a.ob.Append(context.Background(), d)
	if err != nil {
		a.t.Fatal(err)
	}
	return envs[0]
}

// pending returns the outbox's pending envelopes.
func (a *agent) pending() []events.Envelope {
	a.t.Helper()
	recs, err := a.ob.Read(0, 0, 0)
	if err != nil {
		a.t.Fatal(err)
	}
	out := make([]events.Envelope, len(recs))
	for i, r := range recs {
		if out[i], err = events.Decode(r.Data); err != nil {
			a.t.Fatal(err)
		}
	}
	return out
}

func (a *agent) waitConnected(on bool) {
	a.t.Helper()
	testkit.Eventually(a.t, 10*time.Second, func() bool { return a.nc.IsConnected() == on }, "connected = %v", on)
}
