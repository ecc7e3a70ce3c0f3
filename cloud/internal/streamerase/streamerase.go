// Package streamerase deletes an erased customer's messages from the
// events stream.
//
// The hub's books, every store's cache and outbox and the dead letters
// forget an erased customer at once; the events stream still holds the raw
// messages (identify events with e-mails and phones, sales naming a
// loyalty card) for its retention. The store queues, in each erasure's
// transaction, the stream messages naming the customer's identifiers
// (store/stream_erase.go); an Eraser, run by every hub replica, claims
// them under a lease (store.ClaimStreamDeletions) and deletes them from the stream the hub
// consumes (and owns) with SecureDeleteMsg, which overwrites the message
// on disk, on every replica of an R3 stream.
//
// Guarantees: each queued message is deleted at least once; a deletion is
// idempotent (a message already deleted, or aged out of the stream, is
// done); replicas never work the same deletion at the same time while its
// lease holds; a deletion the stream refuses (the server down or electing
// a leader, a stream configured with DenyDelete) stays pending, retried
// with backoff, and the erasure shows it (GET /v1/erasures/{id}: stream
// pending). ingest.EnsureStream keeps deletes allowed.
//
// Sharp edge: a store's batch message carries several events in one stream
// message; deleting it deletes the others' raw copies too. They were
// applied already, and the hub's database is the system of record; the
// stream only serves audits and replays.
package streamerase

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/omnisync/omnisync/cloud/internal/rounds"
	"github.com/omnisync/omnisync/cloud/internal/store"
	"github.com/omnisync/omnisync/shared/retry"
)

// Store is what the eraser needs from the hub's store.
type Store interface {
	ClaimStreamDeletions(ctx context.Context, owner string, now time.Time, lease time.Duration, limit int) ([]store.StreamDeletion, error)
	FinishStreamDeletions(ctx context.Context, done []store.StreamDeletion, at time.Time) error
}

var _ Store = (*store.Store)(nil)

// Stream is the part of the events stream the eraser deletes from
// (jetstream.Stream).
type Stream interface {
	GetMsg(ctx context.Context, seq uint64, opts ...jetstream.GetMsgOpt) (*jetstream.RawStreamMsg, error)
	SecureDeleteMsg(ctx context.Context, seq uint64) error
}

// Options configures an Eraser.
type Options struct {
	Store  Store
	Stream Stream
	// Owner names this replica in leases (required, unique per replica).
	Owner string
	// Lease is how long a claimed deletion is this replica's [1m]: a
	// replica that dies holding one leaves it to another after Lease.
	Lease time.Duration
	// Batch is the most deletions claimed at once [100].
	Batch int
	// Poll is how often pending deletions are looked for when there were
	// none [2s].
	Poll time.Duration
	// Backoff paces retries after the stream or the database failed
	// [100ms..30s].
	Backoff retry.Backoff
	Logger  *slog.Logger
	Now     func() time.Time
}

// Eraser works the pending stream deletions until Close or its context
// ends.
type Eraser struct {
	o    Options
	log  *slog.Logger
	loop *rounds.Loop
}

// New checks the options.
func New(o Options) (*Eraser, error) {
	if o.Store == nil || o.Stream == nil || o.Owner == "" {
		return nil, errors.New("streamerase: Store, Stream and Owner are required")
	}
	if o.Lease <= 0 {
		o.Lease = time.Minute
	}
	if o.Batch <= 0 {
		o.Batch = 100
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Eraser{o: o, log: o.Logger, loop: rounds.New("streamerase", o.Poll, o.Backoff, o.Logger)}, nil
}

// Run deletes pending messages until ctx ends or Close is called; it
// returns nil then. Call it once.
func (e *Eraser) Run(ctx context.Context) error {
	return e.loop.Run(ctx, "deleting stream messages", func(ctx context.Context) (bool, error) {
		n, err := e.Once(ctx)
		return n > 0, err
	})
}

// Notify tells Run that deletions may be pending (an erasure committed
// here), so it looks before its next poll. It never blocks.
func (e *Eraser) Notify() { e.loop.Notify() }

// Close stops Run and waits for it to return. Safe to call more than once,
// and before or without Run only if Run is never called afterwards.
func (e *Eraser) Close() error { return e.loop.Close() }

// Once claims one batch of pending deletions and works it: it returns how
// many were claimed. The messages the stream deleted (or no longer had)
// are recorded done even when another failed; the failed ones stay
// claimed until their lease ends, then are claimed again.
func (e *Eraser) Once(ctx context.Context) (int, error) {
	ds, err := e.o.Store.ClaimStreamDeletions(ctx, e.o.Owner, e.o.Now(), e.o.Lease, e.o.Batch)
	if err != nil || len(ds) == 0 {
		return 0, err
	}
	var (
		done  []store.StreamDeletion
		first error
	)
	deleted := map[uint64]bool{}
	for _, d := range ds {
		if deleted[d.Seq] {
			done = append(done, d)
			continue
		}
		if err := e.delete(ctx, d); err != nil {
			if first == nil {
				first = err
			}
			continue
		}
		deleted[d.Seq] = true
		done = append(done, d)
	}
	if err := e.o.Store.FinishStreamDeletions(ctx, done, e.o.Now()); err != nil {
		return len(ds), err
	}
	if len(done) > 0 {
		e.log.Info("streamerase: erased customers' messages deleted from the stream", "messages", len(done))
	}
	return len(ds), first
}

// delete deletes d's message if it is still the one queued: it carries
// d's event. A stream deleted and created again numbers other messages
// with the same sequences; those are not the erased customer's and stay.
func (e *Eraser) delete(ctx context.Context, d store.StreamDeletion) error {
	m, err := e.o.Stream.GetMsg(ctx, d.Seq)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("streamerase: read message %d: %w", d.Seq, err)
	}
	if d.EventID != "" && !bytes.Contains(bytes.ToLower(m.Data), []byte(strings.ToLower(d.EventID))) {
		e.log.Warn("streamerase: stream message is not the erased event any more (stream created again?); left alone", "seq", d.Seq, "erasure", d.Erasure)
		return nil
	}
	if err := e.o.Stream.SecureDeleteMsg(ctx, d.Seq); err != nil && !Gone(err) {
		return fmt.Errorf("streamerase: delete message %d: %w", d.Seq, err)
	}
	return nil
}

// Gone reports whether err from a delete says the message is not in the
// stream (deleted before, aged out, or past the stream's end): the
// deletion is done. The server answers a delete of a missing message with
// an unsuccessful reply whose text says which (nats.go wraps it as
// ErrMsgDeleteUnsuccessful, losing the code, and the code, 10057, is the
// one of every failed delete).
func Gone(err error) bool {
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return true
	}
	if !errors.Is(err, jetstream.ErrMsgDeleteUnsuccessful) {
		return false
	}
	msg := strings.ToLower(err.Error())
	for _, gone := range []string{"no message found", "stream store eof", "not found"} {
		if strings.Contains(msg, gone) {
			return true
		}
	}
	return false
}
