// Package natsaccttest runs, for tests, an embedded NATS server with the
// chain's real accounts (shared/natsacct): the hub's account, the buckets'
// account and one account per store with its own nkey, so a test sees
// exactly what a store's credentials may and may not do. Only tests import
// it.
package natsaccttest

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/omnisync/omnisync/shared/natsacct"
	"github.com/omnisync/omnisync/shared/natsembed"
	"github.com/omnisync/omnisync/shared/subjects"
)

// World is a running server with the hub's account and stores' accounts.
type World struct {
	Server *natsembed.Server
	// URL is the server's client URL.
	URL      string
	hubCreds string
	creds    map[string]string
}

// Start starts the server with an account for each of stores (closed
// when the test ends).
func Start(t testing.TB, stores ...string) *World {
	t.Helper()
	dir := t.TempDir()
	w := &World{creds: map[string]string{}}
	seed, pub, err := natsacct.NewUserKey()
	if err != nil {
		t.Fatal(err)
	}
	w.hubCreds = filepath.Join(dir, "hub.nk")
	if err := natsacct.WriteSeed(w.hubCreds, "the hub", seed); err != nil {
		t.Fatal(err)
	}
	var blocks strings.Builder
	for _, s := range stores {
		seed, spub, err := natsacct.NewUserKey()
		if err != nil {
			t.Fatal(err)
		}
		w.creds[s] = filepath.Join(dir, s+".nk")
		if err := natsacct.WriteSeed(w.creds[s], "store "+s, seed); err != nil {
			t.Fatal(err)
		}
		b, err := natsacct.StoreBlock(s, natsacct.User{NKey: spub}, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		blocks.WriteString(b)
	}
	if err := os.WriteFile(filepath.Join(dir, natsacct.StoresFile), []byte(blocks.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	accounts := filepath.Join(dir, "accounts.conf")
	if err := os.WriteFile(accounts, []byte(natsacct.Accounts("{nkey: "+pub+"}")), 0o600); err != nil {
		t.Fatal(err)
	}
	srv, err := natsembed.Start(natsembed.Options{Listen: "127.0.0.1:0", StoreDir: filepath.Join(dir, "js"), AccountsFile: accounts})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	w.Server, w.URL = srv, srv.ClientURL()
	return w
}

// HubOptions are the hub's connection options.
func (w *World) HubOptions(t testing.TB) []nats.Option {
	t.Helper()
	opt, err := nats.NkeyOptionFromSeed(w.hubCreds)
	if err != nil {
		t.Fatal(err)
	}
	return []nats.Option{opt, nats.MaxReconnects(-1), nats.ReconnectWait(50 * time.Millisecond)}
}

// Hub connects as the hub (closed when the test ends).
func (w *World) Hub(t testing.TB) *nats.Conn {
	t.Helper()
	nc, err := nats.Connect(w.URL, w.HubOptions(t)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// DownJS is the hub's JetStream of the buckets' account, on nc (a hub
// connection).
func DownJS(t testing.TB, nc *nats.Conn) jetstream.JetStream {
	t.Helper()
	js, err := jetstream.NewWithAPIPrefix(nc, natsacct.DownAPIPrefix)
	if err != nil {
		t.Fatal(err)
	}
	return js
}

// Creds is the path of store's credentials file (an nkey seed), as
// agents take it (--nats-creds).
func (w *World) Creds(t testing.TB, store string) string {
	t.Helper()
	c, ok := w.creds[store]
	if !ok {
		t.Fatalf("natsaccttest: no store %s", store)
	}
	return c
}

// StoreOptions are store's connection options, as its agents have them:
// its credentials and its inbox prefix.
func (w *World) StoreOptions(t testing.TB, store string) []nats.Option {
	t.Helper()
	c, ok := w.creds[store]
	if !ok {
		t.Fatalf("natsaccttest: no store %s", store)
	}
	opt, err := nats.NkeyOptionFromSeed(c)
	if err != nil {
		t.Fatal(err)
	}
	return []nats.Option{opt, nats.CustomInboxPrefix(subjects.InboxPrefix(store))}
}

// Store connects as store to url ("" for the server's own URL; a proxy's
// for a store that goes offline), closed when the test ends, and returns
// a function listing the permission errors the server sent it so far.
func (w *World) Store(t testing.TB, store, url string, opts ...nats.Option) (*nats.Conn, func() []string) {
	t.Helper()
	if url == "" {
		url = w.URL
	}
	var mu sync.Mutex
	var errs []string
	opts = append(append(w.StoreOptions(t, store), opts...), nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
		mu.Lock()
		errs = append(errs, err.Error())
		mu.Unlock()
	}))
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		t.Fatal(fmt.Errorf("store %s: %w", store, err))
	}
	t.Cleanup(nc.Close)
	return nc, func() []string {
		_ = nc.Flush()
		time.Sleep(100 * time.Millisecond)
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), errs...)
	}
}
