package pickups

import (
	"context"
	"encoding/json"
	"log/slog"
	"maps"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/omnisync/omnisync/shared/subjects"
	"github.com/omnisync/omnisync/shared/testkit"
)

// agent is the pickup part of store S1's agent: its cache file, its
// connection (with the store's inbox prefix) and its follower. start may
// be called again after stop, on the same file.
type agent struct {
	t     testing.TB
	url   string
	path  string
	opts  []nats.Option
	cache *Cache
	f     *Follower
	nc    *nats.Conn
	done  chan error
}

func newAgent(t testing.TB, url string, opts ...nats.Option) *agent {
	a := &agent{t: t, url: url, path: filepath.Join(t.TempDir(), "pickups.db"), opts: opts}
	t.Cleanup(a.stop)
	return a
}

func (a *agent) start() *agent {
	a.t.Helper()
	var err error
	if a.cache, err = Open(Options{Path: a.path, Store: "S1", Logger: testkit.Logger(a.t)}); err != nil {
		a.t.Fatal(err)
	}
	opts := append([]nats.Option{nats.MaxReconnects(-1), nats.ReconnectWait(50 * time.Millisecond),
		nats.RetryOnFailedConnect(true), nats.CustomInboxPrefix(subjects.InboxPrefix("S1"))}, a.opts...)
	if a.nc, err = nats.Connect(a.url, opts...); err != nil {
		a.t.Fatal(err)
	}
	a.f, err = NewFollower(FollowerOptions{
		Conn: a.nc, Cache: a.cache, MaxBatch: 10,
		MinBackoff: 20 * time.Millisecond, MaxBackoff: 200 * time.Millisecond, RequestTimeout: 2 * time.Second,
		Logger: testkit.LoggerAt(a.t, slog.LevelInfo),
	})
	if err != nil {
		a.t.Fatal(err)
	}
	a.done = make(chan error, 1)
	go func() { a.done <- a.f.Run(context.Background()) }()
	return a
}

// stop stops the follower and closes the connection and the cache
// (idempotent).
func (a *agent) stop() {
	a.t.Helper()
	if a.done == nil {
		return
	}
	a.f.Close()
	if err := <-a.done; err != nil {
		a.t.Errorf("follower: %v", err)
	}
	a.done = nil
	a.nc.Close()
	a.cache.Close()
}

// waitSynced waits until a session has caught up.
func (a *agent) waitSynced() {
	a.t.Helper()
	testkit.Eventually(a.t, 10*time.Second, func() bool { return a.f.Status().Synced }, "synced")
}

// waitMissingBucket waits until the follower reports that the bucket
// does not exist.
func (a *agent) waitMissingBucket() {
	a.t.Helper()
	testkit.Eventually(a.t, 5*time.Second, func() bool {
		return strings.Contains(a.f.Status().LastError, "stream not found")
	}, "the follower reports the missing bucket")
}

// states is what the cache holds: reservation id -> state@version.
func (a *agent) states() map[string]string {
	a.t.Helper()
	docs, err := a.cache.List(Query{})
	if err != nil {
		a.t.Fatal(err)
	}
	out := map[string]string{}
	for _, d := range docs {
		out[d.ReservationID] = d.State + "@" + strconv.FormatInt(d.Version, 10)
	}
	return out
}

// waitFor waits until the follower is synced and the cache holds exactly
// want.
func (a *agent) waitFor(want map[string]string) {
	a.t.Helper()
	var got map[string]string
	var st Status
	var open int64
	for _, s := range want {
		if strings.HasPrefix(s, "open@") {
			open++
		}
	}
	testkit.Eventually(a.t, 10*time.Second, func() bool {
		got, st = a.states(), a.f.Status()
		// The counts follow a commit, a moment after readers see it, and
		// may still be those of the commit before (with as many orders).
		return st.Synced && maps.Equal(got, want) && st.Orders == int64(len(want)) && st.Open == open
	}, "cache holds %v; it holds %v, status %+v", want, &got, &st)
}

func mustJSON(t testing.TB, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
