// Package uplink drains a store device's outbox to NATS JetStream and deletes
// events only when the hub confirms it has durably applied them.
//
// The contract it owns: an event leaves the outbox only through an
// end-to-end acknowledgement (a hub watermark, pushed on subjects.Ack or
// returned by the heartbeat), never on a bare PubAck, because a single
// JetStream server acknowledges before it fsyncs. Events are published in
// seq order with a bounded in-flight window. Consecutive events travel
// together in batch messages (events.AppendBatch, up to BatchEvents events
// or BatchBytes), because the broker's cost is per message: a store
// draining a day's backlog would otherwise spend it on message overhead.
// A message's Nats-Msg-Id is its event id, or for a batch the first event
// id and the count, so an identical republish is dropped by JetStream's
// window and a regrouped one by the hub's exact dedup. A failed or lost publish rewinds the cursor and publishes again; the
// hub deduplicates exactly, so republishing is always safe.
//
// When it republishes: after a publish error, after reconnecting to a
// different server (it may have lost unsynced messages), and when the hub is
// answering heartbeats but its watermark has not moved for ResendAfter
// (backing off up to MaxResendAfter), which covers a broker that lost
// acknowledged data without restarting visibly.
package uplink

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/omnisync/omnisync/edge/internal/outbox"
	"github.com/omnisync/omnisync/shared/events"
	"github.com/omnisync/omnisync/shared/retry"
	"github.com/omnisync/omnisync/shared/subjects"
	"github.com/omnisync/omnisync/shared/syncproto"
)

// Source is what the uplink needs from the outbox.
type Source interface {
	Read(after uint64, max int, maxBytes int) ([]outbox.Record, error)
	Ack(epoch, upTo uint64) (int, error)
	Stats() outbox.Stats
	Changed() <-chan struct{}
	Epoch() uint64
}

var _ Source = (*outbox.Outbox)(nil)

// Options configures an Uplink.
type Options struct {
	Store, Device string
	// Conn is an established connection; the uplink does not close it.
	Conn   *nats.Conn
	Window int
	// Window bounds the events in messages awaiting a PubAck (default 2048).
	// ReadBatch is how many records are read from the outbox at once (default 1024).
	ReadBatch int
	// BatchEvents and BatchBytes bound one message: at most this many
	// events (default 128; 1 sends every event alone) and, beyond its first
	// event, this many bytes (default 256 KiB, under JetStream's 1 MiB).
	BatchEvents, BatchBytes int
	// HeartbeatEvery is the heartbeat period (default 5s).
	HeartbeatEvery time.Duration
	// ResendAfter is how long the hub's watermark may stand still behind
	// what was published, while the hub answers, before republishing
	// (default 30s, doubling up to MaxResendAfter, default 5m).
	ResendAfter, MaxResendAfter time.Duration
	// Version is reported in heartbeats.
	Version string
	// Now is the wall clock (nil = time.Now).
	Now func() time.Time
	// HLCSkew reports the outbox clock's skew for heartbeats (optional).
	HLCSkew func() time.Duration
	Logger  *slog.Logger
}

func (o *Options) defaults() error {
	if o.Conn == nil {
		return errors.New("uplink: Options.Conn is required")
	}
	if o.Store == "" || o.Device == "" {
		return errors.New("uplink: Options.Store and Options.Device are required")
	}
	if o.Window <= 0 {
		o.Window = 2048
	}
	if o.ReadBatch <= 0 {
		o.ReadBatch = 1024
	}
	if o.BatchEvents <= 0 {
		o.BatchEvents = 128
	}
	o.BatchEvents = min(o.BatchEvents, events.MaxBatchEvents)
	if o.BatchBytes <= 0 {
		o.BatchBytes = 256 << 10
	}
	if o.HeartbeatEvery <= 0 {
		o.HeartbeatEvery = 5 * time.Second
	}
	if o.ResendAfter <= 0 {
		o.ResendAfter = 30 * time.Second
	}
	if o.MaxResendAfter < o.ResendAfter {
		o.MaxResendAfter = 5 * time.Minute
		if o.MaxResendAfter < o.ResendAfter {
			o.MaxResendAfter = o.ResendAfter
		}
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return nil
}

// Status is a snapshot for the agent's /v1/status.
type Status struct {
	Connected bool `json:"connected"`
	// PublishedSeq: every event up to it has a PubAck from JetStream.
	PublishedSeq uint64 `json:"published_seq"`
	// HubSeq: the hub's durable watermark for this epoch.
	HubSeq uint64 `json:"hub_seq"`
	// LastSync is when the hub last answered (heartbeat reply or ack).
	LastSync time.Time `json:"last_sync,omitzero"`
	// HubClockOffset is hub time minus agent time at the last heartbeat,
	// corrected for half the round trip.
	HubClockOffset time.Duration `json:"hub_clock_offset_ns"`
	Rewinds        uint64        `json:"rewinds"`
	Published      uint64        `json:"published"`
	LastError      string        `json:"last_error,omitempty"`
}

// Uplink drains one outbox. Create with New, run with Run.
type Uplink struct {
	opts Options
	src  Source
	js   jetstream.JetStream
	log  *slog.Logger

	acks      chan syncproto.Watermark // latest hub watermarks, coalesced
	reconnect chan string              // server id after a reconnect

	mu        sync.Mutex
	status    Status
	lastHubID string
}

// New prepares an uplink; nothing runs until Run.
func New(opts Options, src Source) (*Uplink, error) {
	if err := opts.defaults(); err != nil {
		return nil, err
	}
	js, err := jetstream.New(opts.Conn,
		jetstream.WithPublishAsyncMaxPending(opts.Window+64),
		jetstream.WithPublishAsyncTimeout(15*time.Second),
	)
	if err != nil {
		return nil, fmt.Errorf("uplink: jetstream: %w", err)
	}
	u := &Uplink{
		opts:      opts,
		src:       src,
		js:        js,
		log:       opts.Logger.With("store", opts.Store, "device", opts.Device),
		acks:      make(chan syncproto.Watermark, 1),
		reconnect: make(chan string, 1),
	}
	u.lastHubID = opts.Conn.ConnectedServerId()
	return u, nil
}

// Status returns a snapshot of the uplink's state.
func (u *Uplink) Status() Status {
	u.mu.Lock()
	defer u.mu.Unlock()
	s := u.status
	s.Connected = u.opts.Conn.IsConnected()
	return s
}

// NotifyReconnected must be called from the connection's reconnect handler;
// the uplink republishes unconfirmed events if the server changed.
func (u *Uplink) NotifyReconnected() {
	id := u.opts.Conn.ConnectedServerId()
	select {
	case u.reconnect <- id:
	default:
		select {
		case <-u.reconnect:
		default:
		}
		select {
		case u.reconnect <- id:
		default:
		}
	}
}

// Run drains the outbox until ctx ends. It returns nil on cancellation and
// an error only for failures it cannot recover from (the outbox failing).
func (u *Uplink) Run(ctx context.Context) error {
	sub, err := u.opts.Conn.Subscribe(subjects.Ack(u.opts.Store, u.opts.Device), u.onAckMsg)
	if err != nil {
		return fmt.Errorf("uplink: subscribe acks: %w", err)
	}
	defer sub.Unsubscribe()

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		u.heartbeatLoop(ctx)
	}()
	err = u.publishLoop(ctx)
	cancel()
	wg.Wait()
	if errors.Is(err, context.Canceled) && ctx.Err() != nil {
		return nil
	}
	return err
}

func (u *Uplink) onAckMsg(m *nats.Msg) {
	// Only the hub's own publish on this subject counts. A JetStream push
	// consumer that another client aimed at our subject relays stream
	// messages here under their original subject with a $JS.ACK reply; a
	// watermark is a promise to delete events, so those are ignored.
	if m.Subject != subjects.Ack(u.opts.Store, u.opts.Device) || strings.HasPrefix(m.Reply, "$JS.ACK.") {
		u.log.Warn("ignoring a relayed message on the ack subject", "subject", m.Subject, "reply", m.Reply)
		return
	}
	var w syncproto.Watermark
	if err := json.Unmarshal(m.Data, &w); err != nil {
		u.log.Warn("ignoring malformed hub ack", "err", err)
		return
	}
	u.offerWatermark(w)
}

// offerWatermark hands a watermark to the publish loop, keeping only the
// highest pending one.
func (u *Uplink) offerWatermark(w syncproto.Watermark) {
	for {
		select {
		case u.acks <- w:
			return
		default:
		}
		select {
		case old := <-u.acks:
			if old.Epoch == w.Epoch && old.Seq > w.Seq {
				w = old
			}
		default:
		}
	}
}

// inflight is a published message awaiting its PubAck: its last event's
// seq and how many events it carries.
type inflight struct {
	seq uint64
	n   int
	fut jetstream.PubAckFuture
}

// frame takes the longest prefix of recs that fits one message and returns
// how many records it took, the message body and its Nats-Msg-Id. A lone
// event goes as itself, so its Msg-Id is its event id as before batching.
func (u *Uplink) frame(recs []outbox.Record) (int, []byte, string) {
	n, size := 1, len(recs[0].Data)
	for n < len(recs) && n < u.opts.BatchEvents && size+len(recs[n].Data)+1 <= u.opts.BatchBytes {
		size += len(recs[n].Data) + 1
		n++
	}
	id := envelopeID(recs[0].Data)
	if n == 1 {
		return 1, recs[0].Data, id
	}
	envs := make([][]byte, n)
	for i, r := range recs[:n] {
		envs[i] = r.Data
	}
	// A fresh buffer each time: the client keeps the message to resend it
	// while the publish is unanswered.
	return n, events.AppendBatch(make([]byte, 0, size+2), envs...), id + "+" + strconv.Itoa(n)
}

// publishLoop is the single goroutine that owns the cursor state.
func (u *Uplink) publishLoop(ctx context.Context) error {
	epoch := u.src.Epoch()
	st := u.src.Stats()
	hubSeq := st.AckedSeq // confirmed by the hub (events <= it are gone)
	published := hubSeq   // contiguous PubAck'd prefix
	sent := hubSeq        // highest seq handed to PublishAsync
	var queue []inflight  // in seq order
	pending := 0          // events in the messages of queue
	subject := subjects.Event(u.opts.Store, u.opts.Device)
	resendAfter := u.opts.ResendAfter
	lastProgress := u.opts.Now() // last time hubSeq moved (or nothing was pending)
	var lastHeard time.Time      // last time the hub spoke
	// After a failed or refused publish: 50ms doubling to 2s, jittered so
	// a fleet of stores does not retry in step.
	backoff := retry.Backoff{Min: 50 * time.Millisecond, Max: 2 * time.Second}

	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()

	rewind := func(reason string) {
		// Give in-flight publishes a moment to settle before resending, so
		// the order on the stream stays the outbox's as far as possible.
		// The wait is bounded as a whole: after a reconnect some futures
		// only resolve at the publish timeout, and their results no longer
		// matter, since everything after hubSeq is sent again.
		settle := time.NewTimer(2 * time.Second)
		defer settle.Stop()
	wait:
		for _, f := range queue {
			select {
			case <-f.fut.Ok():
			case <-f.fut.Err():
			case <-ctx.Done():
				return
			case <-settle.C:
				break wait
			}
		}
		queue, pending = queue[:0], 0
		if sent > hubSeq {
			u.log.Info("republishing unconfirmed events", "reason", reason, "from_seq", hubSeq+1, "to_seq", sent)
		}
		published, sent = hubSeq, hubSeq
		u.mu.Lock()
		u.status.Rewinds++
		u.status.PublishedSeq = published
		u.mu.Unlock()
	}

	applyWatermark := func(w syncproto.Watermark) error {
		if w.Epoch != epoch {
			return nil
		}
		u.mu.Lock()
		u.status.LastSync = u.opts.Now()
		u.mu.Unlock()
		lastHeard = u.opts.Now()
		if w.Seq <= hubSeq {
			return nil
		}
		if _, err := u.src.Ack(epoch, w.Seq); err != nil && !errors.Is(err, outbox.ErrEpochMismatch) {
			return fmt.Errorf("uplink: outbox ack: %w", err)
		}
		hubSeq = min(w.Seq, u.src.Stats().LastSeq)
		if published < hubSeq {
			published = hubSeq
		}
		if sent < hubSeq {
			sent = hubSeq
			// Anything still in flight below the watermark is moot.
			for len(queue) > 0 && queue[0].seq <= hubSeq {
				pending -= queue[0].n
				queue = queue[1:]
			}
		}
		lastProgress = u.opts.Now()
		resendAfter = u.opts.ResendAfter
		u.mu.Lock()
		u.status.HubSeq = hubSeq
		u.status.PublishedSeq = published
		u.mu.Unlock()
		return nil
	}

	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		// 1. Settle completed publishes at the head of the window.
		failed := false
		for len(queue) > 0 {
			head := queue[0]
			select {
			case <-head.fut.Ok():
				published = max(published, head.seq)
				pending -= head.n
				queue = queue[1:]
				continue
			case err := <-head.fut.Err():
				u.setErr(fmt.Sprintf("publish seq %d: %v", head.seq, err))
				u.log.Warn("publish failed", "seq", head.seq, "err", err)
				failed = true
			default:
			}
			break
		}
		u.mu.Lock()
		u.status.PublishedSeq = published
		u.mu.Unlock()
		if failed {
			rewind("publish failed")
			if err := backoff.Wait(ctx); err != nil {
				return err
			}
			continue
		}

		// 2. Fill the window while connected.
		// Refill in chunks: topping up one record per PubAck would cost a
		// read transaction per event.
		if u.opts.Conn.IsConnected() && (len(queue) == 0 || u.opts.Window-pending >= min(64, u.opts.Window)) {
			room := min(u.opts.Window-pending, u.opts.ReadBatch)
			recs, err := u.src.Read(sent, room, 4<<20)
			if err != nil {
				return fmt.Errorf("uplink: outbox read: %w", err)
			}
			read := len(recs)
			stalled := false
			for len(recs) > 0 {
				n, data, id := u.frame(recs)
				msg := &nats.Msg{Subject: subject, Data: data}
				if n > 1 {
					msg.Header = nats.Header{events.HeaderBatch: []string{strconv.Itoa(n)}}
				}
				fut, err := u.js.PublishMsgAsync(msg,
					jetstream.WithMsgID(id), jetstream.WithStallWait(200*time.Millisecond))
				if err != nil {
					// ErrTooManyStalledMsgs and friends: back off and retry
					// from this record, never drop it.
					u.setErr(fmt.Sprintf("publish seq %d: %v", recs[0].Seq, err))
					stalled = true
					break
				}
				last := recs[n-1].Seq
				queue = append(queue, inflight{seq: last, n: n, fut: fut})
				pending += n
				sent = last
				recs = recs[n:]
				u.mu.Lock()
				u.status.Published += uint64(n)
				u.mu.Unlock()
			}
			if stalled {
				if err := backoff.Wait(ctx); err != nil {
					return err
				}
				continue
			}
			if read > 0 {
				backoff.Reset()
				if read == room {
					// More may be waiting: loop without blocking, but let
					// acks and cancellations through first.
					select {
					case w := <-u.acks:
						if err := applyWatermark(w); err != nil {
							return err
						}
					case <-ctx.Done():
						return ctx.Err()
					default:
					}
					continue
				}
			}
		}

		// 3. Wait for something to happen.
		var headOk <-chan *jetstream.PubAck
		var headErr <-chan error
		if len(queue) > 0 {
			headOk, headErr = queue[0].fut.Ok(), queue[0].fut.Err()
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-u.src.Changed():
		case <-headOk:
			published = max(published, queue[0].seq)
			pending -= queue[0].n
			queue = queue[1:]
		case err := <-headErr:
			u.setErr(fmt.Sprintf("publish seq %d: %v", queue[0].seq, err))
			u.log.Warn("publish failed", "seq", queue[0].seq, "err", err)
			rewind("publish failed")
		case w := <-u.acks:
			if err := applyWatermark(w); err != nil {
				return err
			}
		case id := <-u.reconnect:
			if id != u.lastHubID {
				u.log.Info("reconnected to a different server", "server_id", id)
				u.lastHubID = id
				rewind("reconnected to a different server")
			}
		case <-tick.C:
			now := u.opts.Now()
			if sent <= hubSeq {
				lastProgress = now
				continue
			}
			hubAlive := !lastHeard.IsZero() && now.Sub(lastHeard) < 3*u.opts.HeartbeatEvery
			if hubAlive && len(queue) == 0 && now.Sub(lastProgress) > resendAfter {
				rewind(fmt.Sprintf("hub watermark stood at %d for %v", hubSeq, now.Sub(lastProgress).Round(time.Second)))
				lastProgress = now
				resendAfter = min(2*resendAfter, u.opts.MaxResendAfter)
			}
		}
	}
}

func (u *Uplink) setErr(s string) {
	u.mu.Lock()
	u.status.LastError = s
	u.mu.Unlock()
}

// heartbeatLoop reports the agent's state to the hub and feeds the hub's
// watermark back into the publish loop.
func (u *Uplink) heartbeatLoop(ctx context.Context) {
	t := time.NewTicker(u.opts.HeartbeatEvery)
	defer t.Stop()
	for {
		if u.opts.Conn.IsConnected() {
			u.heartbeat(ctx)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (u *Uplink) heartbeat(ctx context.Context) {
	st := u.src.Stats()
	now := u.opts.Now()
	hb := syncproto.Heartbeat{
		Store:        u.opts.Store,
		Device:       u.opts.Device,
		Epoch:        st.Epoch,
		Version:      u.opts.Version,
		Backlog:      st.Depth,
		PublishedSeq: u.Status().PublishedSeq,
		AgentTimeMS:  now.UnixMilli(),
	}
	if !st.OldestUnacked.IsZero() {
		hb.OldestUnackedMS = max(0, now.Sub(st.OldestUnacked).Milliseconds())
	}
	hb.UnsyncedSales, hb.UnsyncedSalesValue = st.UnsyncedSales, st.UnsyncedValue
	if !st.OldestUnsyncedSale.IsZero() {
		hb.OldestUnsyncedSaleMS = max(0, now.Sub(st.OldestUnsyncedSale).Milliseconds())
	}
	if u.opts.HLCSkew != nil {
		hb.HLCSkewMS = u.opts.HLCSkew().Milliseconds()
	}
	body, _ := json.Marshal(hb)
	rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	sent := time.Now()
	msg, err := u.opts.Conn.RequestWithContext(rctx, subjects.HubSync(u.opts.Store, u.opts.Device), body)
	if err != nil {
		if ctx.Err() == nil {
			u.log.Debug("heartbeat unanswered", "err", err)
		}
		return
	}
	rtt := time.Since(sent)
	var rep syncproto.HeartbeatReply
	if err := json.Unmarshal(msg.Data, &rep); err != nil || rep.Error != "" {
		u.log.Warn("bad heartbeat reply", "err", err, "hub_error", rep.Error)
		return
	}
	offset := time.Duration(rep.HubTimeMS-now.UnixMilli())*time.Millisecond - rtt/2
	u.mu.Lock()
	u.status.HubClockOffset = offset
	u.status.LastSync = u.opts.Now()
	u.mu.Unlock()
	found := false
	for _, w := range rep.Watermarks {
		if w.Epoch == st.Epoch {
			u.offerWatermark(w)
			found = true
		}
	}
	if !found {
		// The hub has nothing of this epoch yet: still proof it is alive.
		u.offerWatermark(syncproto.Watermark{Epoch: st.Epoch, Seq: 0})
	}
}

// envelopeID extracts the event id from an encoded envelope. Envelopes are
// written by encoding/json in field order, so the id is found right after
// `"id":"`; anything unusual falls back to a full decode.
func envelopeID(data []byte) string {
	const key = `"id":"`
	if i := bytes.Index(data, []byte(key)); i >= 0 && i < 32 {
		rest := data[i+len(key):]
		if j := bytes.IndexByte(rest, '"'); j == 36 {
			return string(rest[:j])
		}
	}
	var e struct {
		ID string `json:"id"`
	}
	_ = json.Unmarshal(data, &e)
	return e.ID
}
