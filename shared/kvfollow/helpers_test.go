package kvfollow

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/omnisync/omnisync/shared/testkit"
)

// bucket and stream of the tests; prefix is its subjects' prefix.
const (
	bucket = "follow"
	stream = "KV_follow"
	prefix = "$KV.follow."
)

// writer plays the owner of the bucket: it writes, deletes and purges
// keys over its own connection.
type writer struct {
	t  testing.TB
	nc *nats.Conn
	js jetstream.JetStream
	kv jetstream.KeyValue
}

// newWriter connects to url and creates the bucket with history values
// per key.
func newWriter(t testing.TB, url string, history uint8, opts ...nats.Option) *writer {
	t.Helper()
	nc, err := nats.Connect(url, append([]nats.Option{nats.MaxReconnects(-1), nats.ReconnectWait(20 * time.Millisecond)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	kv, err := js.CreateKeyValue(context.Background(), jetstream.KeyValueConfig{Bucket: bucket, History: history})
	if err != nil {
		t.Fatal(err)
	}
	return &writer{t: t, nc: nc, js: js, kv: kv}
}

// restart restarts ns and waits until the writer is connected to the new
// server. A write sent in the moment between the server's shutdown and
// the client noticing it goes to the closed socket and is lost; it would
// wait out its whole timeout for an answer that cannot come.
func (w *writer) restart(ns *testkit.NATS) {
	w.t.Helper()
	before := w.nc.Stats().Reconnects
	ns.Restart()
	testkit.Eventually(w.t, 10*time.Second, func() bool {
		return w.nc.Stats().Reconnects > before && w.nc.IsConnected()
	}, "the writer reconnected")
}

// ctx bounds a write: a server that was just restarted answers once the
// writer has reconnected.
func (w *writer) ctx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), 10*time.Second)
}

func (w *writer) put(key, value string) uint64 {
	w.t.Helper()
	ctx, cancel := w.ctx()
	defer cancel()
	rev, err := w.kv.PutString(ctx, key, value)
	if err != nil {
		w.t.Fatalf("put %s: %v", key, err)
	}
	return rev
}

func (w *writer) del(key string) {
	w.t.Helper()
	ctx, cancel := w.ctx()
	defer cancel()
	if err := w.kv.Delete(ctx, key); err != nil {
		w.t.Fatalf("delete %s: %v", key, err)
	}
}

func (w *writer) purge(key string) {
	w.t.Helper()
	ctx, cancel := w.ctx()
	defer cancel()
	if err := w.kv.Purge(ctx, key); err != nil {
		w.t.Fatalf("purge %s: %v", key, err)
	}
}

// lastSeq is the stream's last sequence.
func (w *writer) lastSeq() uint64 {
	w.t.Helper()
	ctx, cancel := w.ctx()
	defer cancel()
	s, err := w.js.Stream(ctx, stream)
	if err != nil {
		w.t.Fatal(err)
	}
	return s.CachedInfo().State.LastSeq
}

// deleteConsumers deletes every consumer of the stream, as an operator or a
// server losing them would.
func (w *writer) deleteConsumers() {
	w.t.Helper()
	ctx, cancel := w.ctx()
	defer cancel()
	s, err := w.js.Stream(ctx, stream)
	if err != nil {
		w.t.Fatal(err)
	}
	names := s.ConsumerNames(ctx)
	for name := range names.Name() {
		if err := s.DeleteConsumer(ctx, name); err != nil {
			w.t.Fatal(err)
		}
	}
}

// connect is a reader's connection to url, retrying for ever.
func connect(t testing.TB, url string, opts ...nats.Option) *nats.Conn {
	t.Helper()
	nc, err := nats.Connect(url, append([]nats.Option{nats.MaxReconnects(-1), nats.ReconnectWait(20 * time.Millisecond),
		nats.RetryOnFailedConnect(true)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// newFollower is a follower over nc with the tests' short timings; o's
// other fields are kept.
func newFollower(t testing.TB, nc *nats.Conn, o Options) *Follower {
	t.Helper()
	o.Conn = nc
	if o.Session == nil {
		o.Session = func(ctx context.Context) (bool, error) { <-ctx.Done(); return false, ctx.Err() }
	}
	if o.MinBackoff == 0 {
		o.MinBackoff, o.MaxBackoff = 20*time.Millisecond, 200*time.Millisecond
	}
	if o.RequestTimeout == 0 {
		o.RequestTimeout = 2 * time.Second
	}
	o.Logger = testkit.Logger(t)
	f, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

// run runs f until the test ends (Close waits for Run); the channel gets
// what Run returned.
func run(t testing.TB, f *Follower) <-chan error {
	done := make(chan error, 1)
	go func() { done <- f.Run(context.Background()) }()
	t.Cleanup(func() { f.Close() })
	return done
}

// log keeps what reads handed over.
type log struct {
	mu      sync.Mutex
	batches []Batch
}

func (l *log) apply(_ context.Context, b Batch) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.batches = append(l.batches, b)
	return nil
}

func (l *log) snapshot() []Batch {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.batches)
}

// entries is every entry handed over, as "key op@revision".
func (l *log) entries() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, b := range l.batches {
		for _, e := range b.Entries {
			out = append(out, describe(e))
		}
	}
	return out
}

// caughtUp reports whether the last batch was caught up.
func (l *log) caughtUp() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.batches) > 0 && l.batches[len(l.batches)-1].CaughtUp
}

func describe(e Entry) string {
	op := map[jetstream.KeyValueOp]string{jetstream.KeyValuePut: "put", jetstream.KeyValueDelete: "del", jetstream.KeyValuePurge: "purge"}[e.Op]
	s := fmt.Sprintf("%s %s@%d", strings.TrimPrefix(e.Subject, prefix), op, e.Revision)
	if len(e.Value) > 0 {
		s += "=" + string(e.Value)
	}
	return s
}
