package streamerase_test

import (
	"context"
	"encoding/json"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/omnisync/omnisync/cloud/internal/pii"
	"github.com/omnisync/omnisync/cloud/internal/store"
	"github.com/omnisync/omnisync/cloud/internal/streamerase"
	"github.com/omnisync/omnisync/shared/events"
	"github.com/omnisync/omnisync/shared/hlc"
	"github.com/omnisync/omnisync/shared/ids"
	"github.com/omnisync/omnisync/shared/testkit"
)

// fixture is a real JetStream stream and a real store holding one erased
// customer's two messages (gone) and an unrelated one (kept).
type fixture struct {
	st      *store.Store
	js      jetstream.JetStream
	cfg     jetstream.StreamConfig
	stream  jetstream.Stream
	erasure string
	gone    []uint64
	kept    uint64
	ctx     context.Context
	publish func(k events.Kind, body string) store.Item
}

func newFixture(t *testing.T, dsn string, denyDelete bool) *fixture {
	t.Helper()
	ctx := context.Background()
	ns := testkit.StartNATS(t)
	nc, err := nats.Connect(ns.URL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, _ := jetstream.New(nc)
	cfg := jetstream.StreamConfig{Name: "EV", Subjects: []string{"ev.>"}, DenyDelete: denyDelete}
	stream, err := js.CreateStream(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(ctx, dsn, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	keys, _ := pii.New(pii.Generate())
	st.SetCustomerKeys(keys)
	f := &fixture{st: st, js: js, cfg: cfg, stream: stream, ctx: ctx}
	var seq uint64
	f.publish = func(k events.Kind, body string) store.Item {
		seq++
		env := events.Envelope{V: events.CurrentVersion, ID: ids.NewEventID(time.Now()),
			Origin: events.Origin{Store: "S1", Device: "pos-1", Epoch: 1, Seq: seq},
			HLC:    hlc.Timestamp{Wall: time.Now().UnixMilli()}, Kind: k, Data: json.RawMessage(body)}
		b, _ := json.Marshal(env)
		ack, err := js.Publish(ctx, "ev.S1", b)
		if err != nil {
			t.Fatal(err)
		}
		return store.Item{Env: env, Raw: b, StreamSeq: ack.Sequence}
	}
	items := []store.Item{
		f.publish(events.KindIdentify, `{"identifiers":{"loyalty":"LC-1","email":"ann@shop.test"}}`),
		f.publish(events.KindConsent, `{"customer":{"email":"ann@shop.test"},"purpose":"marketing_email","granted":true,"source":"till"}`),
		f.publish(events.KindIdentify, `{"identifiers":{"loyalty":"LC-2"}}`),
	}
	if _, err := st.ApplyBatch(ctx, items); err != nil {
		t.Fatal(err)
	}
	cust, err := st.FindCustomer(ctx, "loyalty:LC-1", "")
	if err != nil {
		t.Fatal(err)
	}
	if f.erasure, err = st.EraseCustomer(ctx, cust, "hq-dpo", ""); err != nil {
		t.Fatal(err)
	}
	f.gone, f.kept = []uint64{items[0].StreamSeq, items[1].StreamSeq}, items[2].StreamSeq
	return f
}

func (f *fixture) eraser(t *testing.T, owner string, now func() time.Time) *streamerase.Eraser {
	t.Helper()
	e, err := streamerase.New(streamerase.Options{Store: f.st, Stream: f.stream, Owner: owner, Poll: 20 * time.Millisecond, Now: now, Logger: testkit.Logger(t)})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func (f *fixture) state(t *testing.T) store.ErasureStream {
	t.Helper()
	s, err := f.st.ErasureStatus(f.ctx, f.erasure)
	if err != nil {
		t.Fatal(err)
	}
	return s.Stream
}

func forEachDB(t *testing.T, fn func(t *testing.T, dsn string)) {
	t.Run("sqlite", func(t *testing.T) {
		t.Parallel()
		fn(t, "sqlite:"+filepath.Join(t.TempDir(), "hub.db"))
	})
	t.Run("postgres", func(t *testing.T) { t.Parallel(); fn(t, testkit.Postgres(t)) })
}

// Ensure that deletions a replica claimed and never finished (it died)
// are deleted by a replica started later, once the lease ends; that a
// message already gone from the stream counts as deleted; and that the
// unrelated message stays.
func TestEraser_PicksUpAfterRestart(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, dsn string) {
		f := newFixture(t, dsn, false)
		// The replica that claimed them died.
		if ds, err := f.st.ClaimStreamDeletions(f.ctx, "dead", time.Now(), time.Minute, 10); err != nil || len(ds) != 2 {
			t.Fatalf("claim: %v %v", ds, err)
		}
		// One message went already (an operator, an earlier attempt).
		if err := f.stream.DeleteMsg(f.ctx, f.gone[0]); err != nil {
			t.Fatal(err)
		}
		if got := f.state(t); got.State != "pending" || got.Pending != 2 {
			t.Fatalf("before: %+v", got)
		}
		later := func() time.Time { return time.Now().Add(2 * time.Minute) }
		e := f.eraser(t, "restarted", later)
		done := make(chan error, 1)
		go func() { done <- e.Run(f.ctx) }()
		testkit.Eventually(t, 10*time.Second, func() bool { return f.state(t).State == "done" }, "the deletions done")
		if err := e.Close(); err != nil {
			t.Fatal(err)
		}
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		if got := f.state(t); got.Deleted != 2 {
			t.Fatalf("after: %+v", got)
		}
		for _, s := range f.gone {
			if _, err := f.stream.GetMsg(f.ctx, s); !errors.Is(err, jetstream.ErrMsgNotFound) {
				t.Fatalf("message %d: %v", s, err)
			}
		}
		if _, err := f.stream.GetMsg(f.ctx, f.kept); err != nil {
			t.Fatalf("unrelated message: %v", err)
		}
	})
}

// Ensure that a stream refusing deletions (DenyDelete) leaves them
// pending, with an error, and deletes nothing.
func TestEraser_DenyDeleteStaysPending(t *testing.T) {
	t.Parallel()
	f := newFixture(t, "sqlite:"+filepath.Join(t.TempDir(), "hub.db"), true)
	clock := time.Now()
	e := f.eraser(t, "hub-a", func() time.Time { return clock })
	if n, err := e.Once(f.ctx); n != 2 || err == nil {
		t.Fatalf("Once on a DenyDelete stream: %d %v", n, err)
	}
	if got := f.state(t); got.State != "pending" || got.Pending != 2 {
		t.Fatalf("state: %+v", got)
	}
	if _, err := f.stream.GetMsg(f.ctx, f.gone[0]); err != nil {
		t.Fatalf("message deleted despite DenyDelete: %v", err)
	}
	// The server never lifts DenyDelete, which is why EnsureStream leaves
	// it unset: a hub's stream update that would lift it fails, so a hub
	// never runs on a stream its erasures cannot reach.
	f.cfg.DenyDelete = false
	if _, err := f.js.UpdateStream(f.ctx, f.cfg); err == nil {
		t.Fatal("the server lifted DenyDelete")
	}
}

// Ensure that Gone recognises the server's answers for a message that is
// not in the stream: deleted before, never written, or aged out (purged).
func TestGone_ServerAnswers(t *testing.T) {
	t.Parallel()
	f := newFixture(t, "sqlite:"+filepath.Join(t.TempDir(), "hub.db"), false)
	if err := f.stream.SecureDeleteMsg(f.ctx, f.gone[0]); err != nil {
		t.Fatal(err)
	}
	err := f.stream.SecureDeleteMsg(f.ctx, f.gone[0])
	t.Logf("deleted before: %v", err)
	if !streamerase.Gone(err) {
		t.Fatalf("deleted before: %v", err)
	}
	err = f.stream.SecureDeleteMsg(f.ctx, 1_000_000)
	t.Logf("never written: %v", err)
	if !streamerase.Gone(err) {
		t.Fatalf("never written: %v", err)
	}
	if err := f.stream.Purge(f.ctx); err != nil {
		t.Fatal(err)
	}
	err = f.stream.SecureDeleteMsg(f.ctx, f.kept)
	t.Logf("aged out: %v", err)
	if !streamerase.Gone(err) {
		t.Fatalf("aged out: %v", err)
	}
}

// Ensure that a stream deleted and created again, whose new messages
// carry the sequences of the erased customer's, keeps them: only the
// queued event's message is ever deleted.
func TestEraser_StreamCreatedAgain(t *testing.T) {
	t.Parallel()
	f := newFixture(t, "sqlite:"+filepath.Join(t.TempDir(), "hub.db"), false)
	if err := f.js.DeleteStream(f.ctx, f.cfg.Name); err != nil {
		t.Fatal(err)
	}
	stream, err := f.js.CreateStream(f.ctx, f.cfg)
	if err != nil {
		t.Fatal(err)
	}
	f.stream = stream
	var seqs []uint64
	for range 3 {
		seqs = append(seqs, f.publish(events.KindSale, `{"location":"S1","lines":[{"sku":"A","qty":1}]}`).StreamSeq)
	}
	if seqs[0] != f.gone[0] {
		t.Fatalf("the new stream numbers from %d", seqs[0])
	}
	if n, err := f.eraser(t, "hub-a", time.Now).Once(f.ctx); n != 2 || err != nil {
		t.Fatalf("Once: %d %v", n, err)
	}
	for _, s := range seqs {
		if _, err := f.stream.GetMsg(f.ctx, s); err != nil {
			t.Fatalf("another event's message %d: %v", s, err)
		}
	}
	if got := f.state(t); got.State != "done" {
		t.Fatalf("state: %+v", got)
	}
}
