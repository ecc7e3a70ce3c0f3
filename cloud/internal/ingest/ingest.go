// Package ingest consumes store events from JetStream and applies each one to
// the hub's books exactly once.
//
// It fetches batches from the durable consumer shared by every hub replica,
// decodes and checks them, and hands them to the store, which deduplicates
// by (store, device, epoch, seq) and applies them in one transaction. Only
// after that commit are the messages acknowledged to JetStream and the
// device's new watermark pushed to its agent (subjects.Ack), which is what
// lets the agent delete the events from its outbox.
//
// Bad input never stalls the stream: an undecodable message, or one whose
// claimed store does not match the subject it came on, goes to the dead
// letter with its reason; an event the store cannot apply is isolated by
// bisecting its batch and dead-lettered. A database outage is not bad input:
// the batch is retried (and redelivered by JetStream) until it commits.
// Nor does a stalled or lost event stream stop the hub: a hub that was
// paused past its pull heartbeats, or a consumer the server lost, is
// recovered from (reader.go); only a closed connection ends Run.
package ingest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/omnisync/omnisync/cloud/internal/inventory"
	"github.com/omnisync/omnisync/cloud/internal/store"
	"github.com/omnisync/omnisync/shared/events"
	"github.com/omnisync/omnisync/shared/retry"
	"github.com/omnisync/omnisync/shared/subjects"
	"github.com/omnisync/omnisync/shared/syncproto"
)

// Store is what ingest needs from the hub's store.
type Store interface {
	ApplyBatch(ctx context.Context, items []store.Item) (store.BatchResult, error)
	// Prepare and ApplyPrepared split ApplyBatch in two, so that the next
	// batch is read (its bodies decoded) while the previous one commits.
	Prepare(items []store.Item) *store.Prepared
	ApplyPrepared(ctx context.Context, b *store.Prepared) (store.BatchResult, error)
	AddDeadLetter(ctx context.Context, d store.DeadLetter) error
	// Ping tells a database that is down from an event that cannot be
	// applied: an item that fails alone is dead-lettered only while Ping
	// succeeds.
	Ping(ctx context.Context) error
}

var _ Store = (*store.Store)(nil)

// Metrics receives counts; nil fields are skipped.
type Metrics struct {
	Applied, Duplicates, DeadLettered, Deferred func(n int)
	// Held counts events held in the exception queue (store.BatchResult.Held).
	Held         func(n int)
	BatchSeconds func(s float64)
	// Recovered is told about each failure of the event stream that was
	// recovered from, by cause (CauseNoHeartbeat and the other Cause
	// constants).
	Recovered func(cause string)
	// ApplyFailed is told about each ApplyBatch that failed (and was
	// retried, bisected or waited out): the database down, a constraint
	// broken by one event.
	ApplyFailed func()
}

// Options configures a Consumer.
type Options struct {
	Consumer jetstream.Consumer
	// Reopen, when set, creates the durable consumer (and its stream)
	// again after the server lost it, and returns it; the hub passes
	// EnsureStream. Without it, a lost consumer is waited for.
	Reopen func(ctx context.Context) (jetstream.Consumer, error)
	// Conn publishes watermarks to agents.
	Conn  *nats.Conn
	Store Store
	// Batch is the most events applied in one transaction (default 1000);
	// a batch message is never split, so a batch may exceed it by one
	// message.
	Batch int
	// MaxWait bounds how long a fetch waits to fill a batch (default 100ms).
	MaxWait time.Duration
	Metrics Metrics
	Logger  *slog.Logger
	// Applied, when set, is told about every committed batch (down-sync
	// publishes the positions and reviews it changed). It must not block.
	Applied func(store.BatchResult)
}

// Consumer applies events from the stream to the store.
type Consumer struct {
	o   Options
	log *slog.Logger
	// held counts the messages taken from the stream and not yet settled
	// (gathered, prepared or being applied); see Busy.
	held atomic.Int64
	// free holds the item slices of settled batches for the next ones:
	// a catch-up's batches are thousands of items, which grown by append
	// anew for each batch cost copies and garbage for every event.
	free chan pendings
}

// Busy reports whether the consumer holds messages it has not settled
// yet: a batch is being gathered, prepared or committed. During a store's
// catch-up it holds through each commit and between them, which a clock
// of the last commit does not tell when one big batch takes over a second.
func (c *Consumer) Busy() bool { return c.held.Load() > 0 }

// New checks the options.
func New(o Options) (*Consumer, error) {
	if o.Consumer == nil || o.Conn == nil || o.Store == nil {
		return nil, errors.New("ingest: Consumer, Conn and Store are required")
	}
	if o.Batch <= 0 {
		o.Batch = 1000
	}
	if o.MaxWait <= 0 {
		o.MaxWait = 100 * time.Millisecond
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return &Consumer{o: o, log: o.Logger, free: make(chan pendings, 4)}, nil
}

// Run consumes until ctx ends (then it returns nil), or until the stream
// fails in a way nothing can recover from (a closed NATS connection, a
// pull request the server refuses as malformed). Everything else — a hub
// that was paused past its heartbeats, a reconnect, a consumer the server
// lost — is logged, counted and recovered from; see read.
func (c *Consumer) Run(ctx context.Context) error {
	msgs := make(chan jetstream.Msg, c.o.Batch)
	errc := make(chan error, 1)
	rctx, stopReading := context.WithCancel(ctx)
	readDone := make(chan struct{})
	go func() {
		defer close(readDone)
		defer close(msgs)
		if err := c.read(rctx, msgs); err != nil {
			errc <- err
		}
	}()
	defer func() { stopReading(); <-readDone }()
	defer c.held.Store(0)
	// Three stages, so that decoding and the database work use both
	// cores: one goroutine gathers and decodes messages into the next
	// batch, another has the store read that batch's bodies (Prepare),
	// while this loop commits the one before.
	gathered := make(chan preparedBatch)
	prepared := make(chan preparedBatch)
	gctx, cancel := context.WithCancel(ctx)
	defer cancel()
	gatherDone, prepareDone := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(gatherDone)
		defer close(gathered)
		c.gather(gctx, msgs, gathered)
	}()
	go func() {
		defer close(prepareDone)
		defer close(prepared)
		for pb := range gathered {
			if pb.ready.len() > 0 {
				pb.prep = c.o.Store.Prepare(pb.ready.items)
			}
			select {
			case prepared <- pb:
			case <-gctx.Done():
				return
			}
		}
	}()
	defer func() { cancel(); <-gatherDone; <-prepareDone }()
	for {
		select {
		case <-ctx.Done():
			return nil
		case err := <-errc:
			return err
		case pb, ok := <-prepared:
			if !ok {
				if ctx.Err() != nil {
					return nil
				}
				select {
				case err := <-errc:
					return err
				default:
				}
				return ErrStopped
			}
			if err := c.process(ctx, pb); err != nil {
				if ctx.Err() != nil {
					return nil
				}
				return err
			}
			// Settled: nothing refers to the batch's items any more.
			select {
			case c.free <- pb.ready.reset():
			default:
			}
		}
	}
}

// gather decodes messages as they arrive into the next batch and hands
// the batch over as soon as the apply loop is free to take it. So an idle
// hub applies each event at once, and a busy one applies in batches that
// grow (up to Batch) while it commits the previous one.
func (c *Consumer) gather(ctx context.Context, msgs <-chan jetstream.Msg, out chan<- preparedBatch) {
	pb := preparedBatch{}
	for {
		in, send := msgs, out
		if pb.ready.len()+len(pb.dead) >= c.o.Batch {
			in = nil // full: wait for the apply loop
		}
		if pb.ready.len()+len(pb.dead) == 0 {
			send = nil // nothing to hand over yet
		}
		select {
		case <-ctx.Done():
			return
		case m, open := <-in:
			if !open {
				if pb.ready.len()+len(pb.dead) > 0 {
					select {
					case out <- pb:
					case <-ctx.Done():
					}
				}
				return
			}
			if pb.start.IsZero() {
				pb.start = time.Now()
				select {
				case pb.ready = <-c.free:
				default:
				}
			}
			c.held.Add(1)
			pb.msgs++
			if n := pb.ready.len(); n >= 1024 && cap(pb.ready.items) < c.o.Batch {
				// A catch-up: grow to a whole batch at once rather than by
				// doubling, each step a copy of every event so far.
				pb.ready.grow(c.o.Batch + 1024 - n)
			}
			pb.add(m)
		case send <- pb:
			pb = preparedBatch{}
		}
	}
}

// preparedBatch is a decoded batch: items to apply and messages to
// dead-letter.
type preparedBatch struct {
	ready pendings
	dead  []deadMsg
	start time.Time
	// msgs counts the messages the batch came in.
	msgs int
	// prep is ready read by the store (nil until the prepare stage).
	prep *store.Prepared
}

type deadMsg struct {
	msg jetstream.Msg
	dl  store.DeadLetter
}

// pendings are decoded items and, index for index, the messages they
// came in. Two slices rather than one of pairs, so that the items go to
// the store as they are, not copied out of the pairs.
type pendings struct {
	items []store.Item
	msgs  []*inMsg
}

func (ps pendings) len() int { return len(ps.items) }

func (ps pendings) slice(i, j int) pendings {
	return pendings{items: ps.items[i:j:j], msgs: ps.msgs[i:j:j]}
}

func (ps *pendings) add(im *inMsg, it store.Item) {
	ps.items = append(ps.items, it)
	ps.msgs = append(ps.msgs, im)
}

func (ps *pendings) grow(n int) {
	ps.items = slices.Grow(ps.items, n)
	ps.msgs = slices.Grow(ps.msgs, n)
}

func (ps *pendings) truncate(n int) {
	clear(ps.items[n:])
	clear(ps.msgs[n:])
	ps.items, ps.msgs = ps.items[:n], ps.msgs[:n]
}

// reset empties ps for reuse, dropping what it referred to.
func (ps pendings) reset() pendings {
	ps.truncate(0)
	return ps
}

// inMsg is a message whose events are being applied. A batch message
// carries several; it is acknowledged once all of them are settled, and
// asked for again if any of them was deferred.
type inMsg struct {
	m         jetstream.Msg
	remaining int
	deferred  bool
}

// settle records that one of the message's events is settled, and acks or
// naks the message when it was the last.
func (im *inMsg) settle(deferred bool) {
	im.deferred = im.deferred || deferred
	if im.remaining--; im.remaining > 0 {
		return
	}
	if im.deferred {
		_ = im.m.NakWithDelay(2 * time.Second)
		return
	}
	// A lost ack only means a redelivery, which dedup absorbs.
	_ = im.m.Ack()
}

func (pb *preparedBatch) add(m jetstream.Msg) {
	// The message's place in the stream, so the store can find it again
	// to delete it when a customer it names is erased.
	var seq uint64
	if md, err := m.Metadata(); err == nil {
		seq = md.Sequence.Stream
	}
	if events.IsBatch(m.Data()) {
		base := pb.ready.len()
		im := &inMsg{m: m}
		if dl := appendBatch(&pb.ready, im, m.Subject(), m.Data()); dl != nil {
			pb.dead = append(pb.dead, deadMsg{m, *dl})
			return
		}
		im.remaining = pb.ready.len() - base
		for i := base; i < pb.ready.len(); i++ {
			pb.ready.items[i].StreamSeq = seq
		}
		return
	}
	item, dl := decode(m.Subject(), m.Data())
	if dl != nil {
		pb.dead = append(pb.dead, deadMsg{m, *dl})
		return
	}
	item.StreamSeq = seq
	pb.ready.add(&inMsg{m: m, remaining: 1}, item)
}

func (c *Consumer) process(ctx context.Context, pb preparedBatch) error {
	defer c.held.Add(-int64(pb.msgs))
	for _, d := range pb.dead {
		if err := c.deadLetter(ctx, d.msg, d.dl); err != nil {
			return err
		}
	}
	if pb.ready.len() > 0 {
		if err := c.apply(ctx, pb.ready, pb.prep); err != nil {
			return err
		}
	}
	if c.o.Metrics.BatchSeconds != nil {
		c.o.Metrics.BatchSeconds(time.Since(pb.start).Seconds())
	}
	return nil
}

// decode turns a message body into a store item, or into a dead letter
// when it has no trustworthy origin to deduplicate on.
func decode(subj string, data []byte) (store.Item, *store.DeadLetter) {
	subStore, subDevice, ok := subjects.ParseEvent(subj)
	// A dead letter is filed under the store and device of the subject it
	// came on (NATS permissions make that the sender), never under the
	// origin it claims: a forgery must not show up in another store's list.
	dl := func(reason string, env *events.Envelope) *store.DeadLetter {
		d := &store.DeadLetter{Subject: subj, Reason: reason, Payload: append([]byte(nil), data...), Store: subStore, Device: subDevice}
		if env != nil {
			d.EventID, d.Kind = env.ID, string(env.Kind)
			if env.Origin.Store == subStore && env.Origin.Device == subDevice {
				d.Epoch, d.Seq = env.Origin.Epoch, env.Origin.Seq
			}
		}
		return d
	}
	if !ok {
		return store.Item{}, dl("subject is not omni.ev.<store>.<device>", nil)
	}
	env, err := events.Decode(data)
	if err != nil && !errors.Is(err, events.ErrUnsupportedVersion) {
		// Keep it with its origin if the origin itself is sound, so the
		// device's watermark can move past it; otherwise dead-letter alone.
		var probe events.Envelope
		if json.Unmarshal(data, &probe) != nil || !originUsable(probe.Origin) {
			return store.Item{}, dl("undecodable event: "+err.Error(), nil)
		}
		env = probe
	}
	if env.Origin.Store != subStore || env.Origin.Device != subDevice {
		// A store must not speak for another: never let a forged origin
		// touch the claimed device's dedup state.
		return store.Item{}, dl(fmt.Sprintf("origin %s/%s does not match subject %s", env.Origin.Store, env.Origin.Device, subj), &env)
	}
	if env.Origin.Store == inventory.HQ {
		// HQ's events are written by the hub itself, never received: a
		// device claiming HQ's origin would claim HQ's rights.
		return store.Item{}, dl("origin store "+inventory.HQ+" is reserved for HQ's actions", &env)
	}
	// Event ids are UUIDs, whose case carries nothing: the hub reads them
	// in lowercase, so one id is one event and orders one way whatever
	// case a device wrote it in.
	env.ID = strings.ToLower(env.ID)
	// Raw shares data, the message's own buffer (a batch's element is a
	// part of it): nothing writes to it, and the item lives only until its
	// batch is settled, so a copy per event would only make garbage.
	item := store.Item{Env: env, Raw: data, Subject: subj}
	if err != nil {
		item.Reject = err.Error()
	}
	return item, nil
}

// decodeBatch turns a batch message into one store item per event. An
// event that would be dead-lettered on its own becomes an item the store
// dead-letters in the batch's transaction, under the subject's store and
// device and without an origin to deduplicate on, so the message is acked
// only once every event in it is settled. A body that is not a batch at
// all is one dead letter.
func decodeBatch(subj string, data []byte) ([]store.Item, *store.DeadLetter) {
	var ps pendings
	if dl := appendBatch(&ps, nil, subj, data); dl != nil {
		return nil, dl
	}
	return ps.items, nil
}

// decodeBatchChecked is decodeBatch splitting the body with its syntax
// checked (events.SplitBatch).
func decodeBatchChecked(subj string, data []byte) ([]store.Item, *store.DeadLetter) {
	var ps pendings
	if dl := appendBatchChecked(&ps, nil, subj, data); dl != nil {
		return nil, dl
	}
	return ps.items, nil
}

// appendBatch is decodeBatch adding the items to ps, as events of im: the
// hub decodes a catch-up's events straight into its batch, since a slice
// of them per message, copied over, was as much memory again.
func appendBatch(ps *pendings, im *inMsg, subj string, data []byte) *store.DeadLetter {
	// Cut without checking first, since every element is decoded anyway;
	// only a body with an element that is not JSON at all needs the
	// checked split to decide.
	if _, _, ok := subjects.ParseEvent(subj); ok {
		if elems, ok := events.CutBatch(data); ok {
			base := ps.len()
			if appendElems(ps, im, subj, elems) {
				return nil
			}
			ps.truncate(base)
		}
	}
	return appendBatchChecked(ps, im, subj, data)
}

// appendBatchChecked is appendBatch splitting the body with its syntax
// checked.
func appendBatchChecked(ps *pendings, im *inMsg, subj string, data []byte) *store.DeadLetter {
	subStore, subDevice, ok := subjects.ParseEvent(subj)
	elems, err := events.SplitBatch(data)
	if !ok || err != nil {
		reason := "subject is not omni.ev.<store>.<device>"
		if ok {
			reason = err.Error()
		}
		return &store.DeadLetter{Subject: subj, Reason: reason, Payload: append([]byte(nil), data...), Store: subStore, Device: subDevice}
	}
	appendElems(ps, im, subj, elems)
	return nil
}

// appendElems decodes a batch's elements into items added to ps; it
// reports false when one of them is not valid JSON.
func appendElems(ps *pendings, im *inMsg, subj string, elems []json.RawMessage) (ok bool) {
	ok = true
	for _, raw := range elems {
		item, dl := decode(subj, raw)
		if dl != nil {
			ok = ok && json.Valid(raw)
			item = store.Item{
				Env: events.Envelope{ID: dl.EventID, Kind: events.Kind(dl.Kind),
					Origin: events.Origin{Store: dl.Store, Device: dl.Device}},
				Raw: dl.Payload, Subject: subj, Reject: dl.Reason,
			}
		} else if item.Reject != "" {
			ok = ok && json.Valid(raw)
		}
		ps.add(im, item)
	}
	return ok
}

func originUsable(o events.Origin) bool {
	return events.ValidToken(o.Store) == nil && events.ValidToken(o.Device) == nil && o.Epoch > 0 && o.Seq > 0
}

func (c *Consumer) deadLetter(ctx context.Context, m jetstream.Msg, d store.DeadLetter) error {
	bo := newBackoff()
	for attempt := 0; ; attempt++ {
		err := c.o.Store.AddDeadLetter(ctx, d)
		if err == nil {
			c.log.Warn("event dead-lettered", "subject", d.Subject, "reason", d.Reason)
			if c.o.Metrics.DeadLettered != nil {
				c.o.Metrics.DeadLettered(1)
			}
			if err := m.Ack(); err != nil {
				// Not worth stopping for: the message comes back and is
				// dead-lettered again, a second row for the same message.
				c.log.Warn("dead letter not acknowledged; it will be redelivered", "subject", d.Subject, "err", err)
			}
			return nil
		}
		c.log.Error("dead letter write failed; retrying", "err", err, "attempt", attempt)
		if err := bo.Wait(ctx); err != nil {
			return err
		}
	}
}

// apply commits the items (prep, when not nil, is them prepared),
// retrying transient failures and isolating an item the store cannot
// apply.
func (c *Consumer) apply(ctx context.Context, ps pendings, prep *store.Prepared) error {
	bo := newBackoff()
	for attempt := 0; ; attempt++ {
		var res store.BatchResult
		var err error
		if prep != nil {
			res, err = c.o.Store.ApplyPrepared(ctx, prep)
		} else {
			res, err = c.o.Store.ApplyBatch(ctx, ps.items)
		}
		if err == nil {
			c.settle(ps, res)
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if c.o.Metrics.ApplyFailed != nil {
			c.o.Metrics.ApplyFailed()
		}
		c.log.Error("apply failed", "err", err, "events", ps.len(), "attempt", attempt)
		if attempt < 2 {
			if err := bo.Wait(ctx); err != nil {
				return err
			}
			continue
		}
		if n := ps.len(); n > 1 {
			// Bisect: one bad event must not hold up the rest.
			mid := n / 2
			if err := c.apply(ctx, ps.slice(0, mid), nil); err != nil {
				return err
			}
			return c.apply(ctx, ps.slice(mid, n), nil)
		}
		// One event that will not apply. It is the event's fault only if
		// the database is demonstrably up and the event still fails; then it
		// is dead-lettered (which also moves its device's watermark past it).
		// Otherwise the database is down: wait, never drop anything.
		if c.healthy(ctx) {
			res, err := c.o.Store.ApplyBatch(ctx, ps.items)
			if err == nil {
				c.settle(ps, res)
				return nil
			}
			if c.healthy(ctx) {
				it := ps.items[0]
				it.Reject = "hub could not apply: " + err.Error()
				if res, derr := c.o.Store.ApplyBatch(ctx, []store.Item{it}); derr == nil {
					c.log.Warn("event dead-lettered", "store", it.Env.Origin.Store, "device", it.Env.Origin.Device,
						"seq", it.Env.Origin.Seq, "reason", it.Reject)
					c.settle(ps, res)
					return nil
				}
			}
		}
		if err := bo.Wait(ctx); err != nil {
			return err
		}
	}
}

// healthy reports whether the store answers at all.
func (c *Consumer) healthy(ctx context.Context) bool {
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	return c.o.Store.Ping(pctx) == nil
}

// settle acknowledges what was committed, asks for deferred items again
// later, and tells each device how far the hub has got.
func (c *Consumer) settle(ps pendings, res store.BatchResult) {
	if c.o.Applied != nil {
		c.o.Applied(res)
	}
	deferred := make(map[int]bool, len(res.Deferred))
	for _, i := range res.Deferred {
		deferred[i] = true
	}
	for i, im := range ps.msgs {
		im.settle(deferred[i])
	}
	for _, w := range res.Watermarks {
		b, _ := json.Marshal(syncproto.Watermark{Epoch: w.Epoch, Seq: w.Seq})
		_ = c.o.Conn.Publish(subjects.Ack(w.Store, w.Device), b)
	}
	m := c.o.Metrics
	if m.Applied != nil {
		m.Applied(res.Applied)
	}
	if m.Duplicates != nil {
		m.Duplicates(res.Duplicates)
	}
	if m.DeadLettered != nil {
		m.DeadLettered(res.DeadLettered)
	}
	if m.Deferred != nil {
		m.Deferred(len(res.Deferred))
	}
	if m.Held != nil {
		m.Held(res.Held)
	}
}

// newBackoff is the wait between attempts at something the database or
// NATS must come back for: from 100ms, doubling to 5s, jittered.
func newBackoff() *retry.Backoff {
	return &retry.Backoff{Min: 100 * time.Millisecond, Max: 5 * time.Second}
}
