package uplink

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/omnisync/omnisync/edge/internal/outbox"
	"github.com/omnisync/omnisync/shared/events"
	"github.com/omnisync/omnisync/shared/subjects"
	"github.com/omnisync/omnisync/shared/syncproto"
	"github.com/omnisync/omnisync/shared/testkit"
)

// rig is a real outbox, a real JetStream server with the events stream, and
// a scripted hub peer answering heartbeats over NATS.
type rig struct {
	t   *testing.T
	ns  *testkit.NATS
	nc  *nats.Conn
	js  jetstream.JetStream
	ob  *outbox.Outbox
	up  *Uplink
	mu  sync.Mutex    // guards up while the reconnect handler may read it
	hub atomic.Uint64 // the watermark the scripted hub reports
}

func (r *rig) uplink() *Uplink {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.up
}

func newRig(t *testing.T, resendAfter time.Duration) *rig {
	t.Helper()
	return newRigBatch(t, resendAfter, 0)
}

// newRigBatch is newRig with the uplink sending at most batch events per
// message (0: the default).
func newRigBatch(t *testing.T, resendAfter time.Duration, batch int) *rig {
	t.Helper()
	r := &rig{t: t, ns: testkit.StartNATS(t)}
	var err error
	// Connect as the agent does: a reconnect is reported to the uplink.
	r.nc, err = nats.Connect(r.ns.URL(), nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond),
		nats.ReconnectHandler(func(*nats.Conn) {
			if up := r.uplink(); up != nil {
				up.NotifyReconnected()
			}
		}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.nc.Close)
	r.js, _ = jetstream.New(r.nc)
	ctx := context.Background()
	if _, err := r.js.CreateStream(ctx, jetstream.StreamConfig{Name: subjects.StreamEvents, Subjects: []string{subjects.EventsAll}, Duplicates: time.Second}); err != nil {
		t.Fatal(err)
	}
	r.ob, err = outbox.Open(outbox.Options{Path: filepath.Join(t.TempDir(), "outbox.db"), Store: "S1", Device: "pos-1", MinFreeDisk: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.ob.Close() })
	// The scripted hub: answers heartbeats with the watermark the test sets.
	sub, err := r.nc.Subscribe(subjects.HubSync("S1", "pos-1"), func(m *nats.Msg) {
		rep := syncproto.HeartbeatReply{HubTimeMS: time.Now().UnixMilli(),
			Watermarks: []syncproto.Watermark{{Epoch: r.ob.Epoch(), Seq: r.hub.Load()}}}
		b, _ := json.Marshal(rep)
		_ = m.Respond(b)
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sub.Unsubscribe() })
	up, err := New(Options{Store: "S1", Device: "pos-1", Conn: r.nc, HeartbeatEvery: 100 * time.Millisecond,
		ResendAfter: resendAfter, MaxResendAfter: resendAfter, BatchEvents: batch}, r.ob)
	if err != nil {
		t.Fatal(err)
	}
	r.mu.Lock()
	r.up = up
	r.mu.Unlock()
	runCtx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.up.Run(runCtx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	return r
}

func (r *rig) append(n int) {
	r.t.Helper()
	drafts := make([]events.Draft, n)
	for i := range drafts {
		drafts[i] = events.Draft{Kind: events.KindSale, Data: json.RawMessage(fmt.Sprintf(`{"location":"S1","lines":[{"sku":"A","qty":%d}]}`, i+1))}
	}
	if _, err := r.ob.Append(context.Background(), drafts); err != nil {
		r.t.Fatal(err)
	}
}

func (r *rig) streamMsgs() uint64 {
	s, err := r.js.Stream(context.Background(), subjects.StreamEvents)
	if err != nil {
		return 0
	}
	info, err := s.Info(context.Background())
	if err != nil {
		return 0
	}
	return info.State.Msgs
}

// streamed is one event as found in the stream: its envelope and the
// message that carried it.
type streamed struct {
	env     events.Envelope
	msgID   string
	subject string
	batch   int    // events in its message
	header  string // its message's Omni-Batch header
}

// streamEvents lists every event in the stream, splitting batch messages.
func (r *rig) streamEvents() []streamed {
	s, err := r.js.Stream(context.Background(), subjects.StreamEvents)
	if err != nil {
		return nil
	}
	info, err := s.Info(context.Background())
	if err != nil {
		return nil
	}
	var out []streamed
	for i := info.State.FirstSeq; i <= info.State.LastSeq && info.State.Msgs > 0; i++ {
		m, err := s.GetMsg(context.Background(), i)
		if err != nil {
			continue
		}
		elems := []json.RawMessage{m.Data}
		if events.IsBatch(m.Data) {
			if elems, err = events.SplitBatch(m.Data); err != nil {
				r.t.Fatalf("stream msg %d: %v", i, err)
			}
		}
		for _, raw := range elems {
			var e events.Envelope
			if err := json.Unmarshal(raw, &e); err != nil {
				r.t.Fatalf("stream msg %d: %v", i, err)
			}
			out = append(out, streamed{env: e, msgID: m.Header.Get("Nats-Msg-Id"), subject: m.Subject, batch: len(elems),
				header: m.Header.Get(events.HeaderBatch)})
		}
	}
	return out
}

// distinctSeqs counts the distinct outbox seqs present in the stream.
func (r *rig) distinctSeqs() int {
	seen := map[uint64]bool{}
	for _, e := range r.streamEvents() {
		seen[e.env.Origin.Seq] = true
	}
	return len(seen)
}

// Ensure that events are published in seq order, alone (Nats-Msg-Id = the
// event id) or in batch messages of consecutive events (Nats-Msg-Id = the
// first event id and the count), and stay in the outbox until the hub's
// watermark says otherwise — a PubAck alone deletes nothing.
func TestUplink_PublishesInOrderAndKeepsUntilHubAck(t *testing.T) {
	for _, tc := range []struct {
		name      string
		batch     int
		wantMsgs  uint64
		wantBatch int
	}{
		{"one event per message", 1, 250, 1},
		{"batches of 7", 7, 36, 7},
		{"default batches", 0, 2, 128},
	} {
		t.Run(tc.name, func(t *testing.T) { testPublishInOrder(t, tc.batch, tc.wantMsgs, tc.wantBatch) })
	}
}

func testPublishInOrder(t *testing.T, batch int, wantMsgs uint64, wantBatch int) {
	r := newRigBatch(t, time.Hour, batch)
	r.append(250)
	testkit.Eventually(t, 10*time.Second, func() bool { return r.distinctSeqs() == 250 }, "250 events in the stream, have %d", r.distinctSeqs())
	testkit.Eventually(t, 5*time.Second, func() bool { return r.up.Status().PublishedSeq == 250 }, "published seq")
	if d := r.ob.Stats().Depth; d != 250 {
		t.Fatalf("outbox depth %d after PubAcks; nothing may leave before the hub acks", d)
	}
	if n := r.streamMsgs(); n != wantMsgs {
		t.Fatalf("%d messages in the stream, want %d", n, wantMsgs)
	}
	evs := r.streamEvents()
	first := ""
	for i, e := range evs {
		if e.env.Origin.Seq != uint64(i+1) || e.subject != subjects.Event("S1", "pos-1") {
			t.Fatalf("event %d: origin seq %d, subject %s", i, e.env.Origin.Seq, e.subject)
		}
		if i == 0 || evs[i-1].msgID != e.msgID {
			first = e.env.ID
		}
		want := e.env.ID
		if e.batch > 1 {
			want = fmt.Sprintf("%s+%d", first, e.batch)
		}
		if e.msgID != want {
			t.Fatalf("event %d: Nats-Msg-Id %q, want %q", i, e.msgID, want)
		}
		if h := e.header; (e.batch > 1) != (h == strconv.Itoa(e.batch)) {
			t.Fatalf("event %d: %s header %q in a message of %d events", i, events.HeaderBatch, h, e.batch)
		}
	}
	if evs[0].batch != wantBatch {
		t.Fatalf("first message carries %d events, want %d", evs[0].batch, wantBatch)
	}

	// A pushed ack deletes up to its seq.
	b, _ := json.Marshal(syncproto.Watermark{Epoch: r.ob.Epoch(), Seq: 100})
	_ = r.nc.Publish(subjects.Ack("S1", "pos-1"), b)
	testkit.Eventually(t, 5*time.Second, func() bool { return r.ob.Stats().Depth == 150 }, "depth after ack 100: %d", r.ob.Stats().Depth)
	// An ack for another epoch changes nothing.
	b, _ = json.Marshal(syncproto.Watermark{Epoch: r.ob.Epoch() + 1, Seq: 250})
	_ = r.nc.Publish(subjects.Ack("S1", "pos-1"), b)
	// The heartbeat reply carries the watermark too.
	r.hub.Store(250)
	testkit.Eventually(t, 5*time.Second, func() bool { return r.ob.Stats().Depth == 0 }, "depth after heartbeat watermark: %d", r.ob.Stats().Depth)
	if st := r.up.Status(); st.HubSeq != 250 || st.LastSync.IsZero() {
		t.Fatalf("status %+v", st)
	}
}

// Ensure that when the hub answers but its watermark stands still behind
// what was published (the broker lost acknowledged messages), the uplink
// publishes the unconfirmed events again.
func TestUplink_RepublishesWhenHubStalls(t *testing.T) {
	r := newRig(t, 300*time.Millisecond)
	r.append(20)
	testkit.Eventually(t, 5*time.Second, func() bool { return r.up.Status().PublishedSeq == 20 }, "published")
	// Simulate loss: purge the stream and let the dedup window pass.
	s, _ := r.js.Stream(context.Background(), subjects.StreamEvents)
	if err := s.Purge(context.Background()); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1100 * time.Millisecond)
	testkit.Eventually(t, 10*time.Second, func() bool { return r.up.Status().Rewinds > 0 && r.distinctSeqs() == 20 },
		"republished after stall")
	if d := r.ob.Stats().Depth; d != 20 {
		t.Fatalf("depth %d, want 20 (still unconfirmed)", d)
	}
}

// Ensure that appends keep working and nothing is lost while NATS is down,
// and everything is published after it comes back.
func TestUplink_Outage(t *testing.T) {
	r := newRig(t, time.Hour)
	r.append(10)
	testkit.Eventually(t, 5*time.Second, func() bool { return r.up.Status().PublishedSeq == 10 }, "published")
	r.ns.Stop()
	var wg sync.WaitGroup
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func() { defer wg.Done(); r.append(25) }()
	}
	wg.Wait()
	if d := r.ob.Stats().Depth; d != 110 {
		t.Fatalf("depth while offline %d", d)
	}
	r.ns.Restart()
	deadline := time.Now().Add(20 * time.Second)
	// Republishing after the reconnect may put some events in the stream
	// twice (the hub deduplicates exactly); what matters is that every one
	// of them is there.
	for !(r.up.Status().PublishedSeq == 110 && r.distinctSeqs() == 110) {
		if time.Now().After(deadline) {
			t.Fatalf("not published after reconnect: %+v, stream %d messages, %d distinct seqs, conn %v",
				r.up.Status(), r.streamMsgs(), r.distinctSeqs(), r.nc.Status())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestEnvelopeID(t *testing.T) {
	e := events.Envelope{V: 1, ID: "0190b6a2-7c1e-7b3a-9f00-1234567890ab", Kind: "sale", Data: json.RawMessage(`{}`)}
	b, _ := json.Marshal(e)
	if got := envelopeID(b); got != e.ID {
		t.Fatalf("fast path: %q", got)
	}
	if got := envelopeID([]byte(`{"kind":"sale","id":"0190b6a2-7c1e-7b3a-9f00-1234567890ab"}`)); got != e.ID {
		t.Fatalf("fallback: %q", got)
	}
}

// Ensure that a watermark relayed onto the ack subject by a JetStream push
// consumer (which any client allowed to create consumers could aim there)
// deletes nothing: only the hub's own acknowledgement counts.
func TestUplink_IgnoresRelayedAcks(t *testing.T) {
	r := newRig(t, time.Hour)
	r.append(5)
	ctx := context.Background()
	if _, err := r.js.CreateStream(ctx, jetstream.StreamConfig{Name: "RELAY", Subjects: []string{"relay.>"}}); err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(syncproto.Watermark{Epoch: r.ob.Epoch(), Seq: 5})
	if _, err := r.js.Publish(ctx, "relay.x", b); err != nil {
		t.Fatal(err)
	}
	got, err := r.nc.SubscribeSync(subjects.Ack("S1", "pos-1"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.js.CreatePushConsumer(ctx, "RELAY", jetstream.ConsumerConfig{
		DeliverSubject: subjects.Ack("S1", "pos-1"), AckPolicy: jetstream.AckNonePolicy,
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := got.NextMsg(5 * time.Second); err != nil {
		t.Fatalf("the relay never delivered: %v", err)
	}
	time.Sleep(300 * time.Millisecond)
	if d := r.ob.Stats().Depth; d != 5 {
		t.Fatalf("outbox depth %d after a relayed watermark, want 5", d)
	}
}
