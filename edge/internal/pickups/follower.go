package pickups

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/omnisync/omnisync/shared/downsync"
	"github.com/omnisync/omnisync/shared/kvfollow"
)

// FollowerOptions configures a Follower.
type FollowerOptions struct {
	// Conn is the agent's connection (with its per-store inbox prefix); the
	// follower does not close it.
	Conn *nats.Conn
	// JSDomain is the hub's JetStream domain when Conn is to a store's
	// leaf node (see kvfollow.Options.Domain); empty when it is to the
	// hub's NATS.
	JSDomain string
	// Cache is where the orders are kept; the follower does not close it.
	Cache *Cache
	// MaxBatch bounds the live changes applied in one transaction (default
	// 100); MaxDelay how long a change may wait for more to share it
	// (default 50ms).
	MaxBatch int
	MaxDelay time.Duration
	// MinBackoff and MaxBackoff bound the wait before a new session after
	// a failed one (defaults 250ms and 30s; doubling, with jitter).
	MinBackoff, MaxBackoff time.Duration
	// RequestTimeout bounds creating the consumer, and how long a session
	// that has not caught up yet waits for its next message (default 10s).
	RequestTimeout time.Duration
	Logger         *slog.Logger
}

func (o *FollowerOptions) defaults() error {
	if o.Conn == nil || o.Cache == nil {
		return fmt.Errorf("%w: FollowerOptions.Conn and FollowerOptions.Cache are required", ErrInvalidOption)
	}
	// The batching, backoff and timeout defaults are kvfollow's.
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return nil
}

// Status is a snapshot for the agent's /v1/status and metrics.
type Status struct {
	// Connected: a session is reading the bucket over a live connection.
	Connected bool `json:"connected"`
	// Synced: that session has caught up, so the cache is current.
	Synced bool `json:"synced"`
	// Orders and Open count the orders held, and those still to collect.
	Orders int64 `json:"orders"`
	Open   int64 `json:"open"`
	// SyncedAt is when a session last caught up with the hub.
	SyncedAt time.Time `json:"synced_at,omitzero"`
	// Sessions counts the consumers created to read the bucket.
	Sessions uint64 `json:"sessions"`
	// Rejected counts the messages skipped as unreadable (each delivery:
	// a bad key that stays in the bucket counts again every session).
	// Ignored counts documents older than the one held.
	Rejected  uint64 `json:"rejected"`
	Ignored   uint64 `json:"ignored"`
	LastError string `json:"last_error,omitempty"`
}

// Follower keeps a Cache in step with the store's pickup orders. Create
// with NewFollower, run with Run, stop with Close or by cancelling Run's
// context.
type Follower struct {
	o     FollowerOptions
	kf    *kvfollow.Follower
	log   *slog.Logger
	store string

	rejected, ignored atomic.Uint64

	mu     sync.Mutex
	synced bool
	warned map[string]bool // keys whose rejection was logged
}

// maxWarned bounds the keys remembered as logged: past it, the memory is
// cleared and each bad key is logged once more.
const maxWarned = 1000

// NewFollower prepares a follower; nothing runs until Run.
func NewFollower(o FollowerOptions) (*Follower, error) {
	if err := o.defaults(); err != nil {
		return nil, err
	}
	f := &Follower{o: o, log: o.Logger, store: o.Cache.Store(), warned: map[string]bool{}}
	kf, err := kvfollow.New(kvfollow.Options{
		Conn: o.Conn, Domain: o.JSDomain, Name: "pickups", Session: f.session, Fatal: []error{ErrClosed},
		MaxBatch: o.MaxBatch, MaxDelay: o.MaxDelay, MinBackoff: o.MinBackoff, MaxBackoff: o.MaxBackoff,
		RequestTimeout: o.RequestTimeout, Logger: o.Logger,
	})
	if err != nil {
		return nil, fmt.Errorf("pickups: %w", err)
	}
	f.kf = kf
	return f, nil
}

// Status returns a snapshot of the follower and the cache.
func (f *Follower) Status() Status {
	cs := f.o.Cache.Stats()
	ks := f.kf.Status()
	up := f.o.Conn.IsConnected()
	f.mu.Lock()
	s := Status{Connected: ks.Reading, Synced: f.synced && up, LastError: ks.LastError}
	f.mu.Unlock()
	s.Orders, s.Open, s.SyncedAt = cs.Orders, cs.Open, cs.SyncedAt
	s.Sessions, s.Rejected, s.Ignored = ks.Consumers, f.rejected.Load(), f.ignored.Load()
	return s
}

// Run follows the store's orders until ctx ends or Close is called, and
// returns nil then. It returns an error only when the cache is closed under
// it. Run may be called once.
func (f *Follower) Run(ctx context.Context) error {
	if err := f.kf.Run(ctx); err != nil {
		return fmt.Errorf("pickups: %w", err)
	}
	return nil
}

// Close stops Run and waits for it to return. It is idempotent and safe to
// call when Run never ran.
func (f *Follower) Close() error { return f.kf.Close() }

// session reads the store's orders from the start of the stream, replaces
// the cache with them once the consumer has nothing pending, then applies
// live changes until something interrupts it (a reconnect, a consumer
// failure: the next session reads the orders whole again, so a deletion
// missed meanwhile is not kept). caughtUp reports whether it got as far
// as replacing the cache.
//
// One filter subject and nothing else (no stream info, no gets): what the
// store's credentials allow on the pickup stream.
func (f *Follower) session(ctx context.Context) (caughtUp bool, err error) {
	defer f.setSynced(false)
	// gathered holds the documents read until the consumer has caught up;
	// nil after, when changes are applied as they come.
	gathered := map[string]downsync.PickupDoc{}
	c := kvfollow.Config{Stream: downsync.PickupStream, Filters: []string{downsync.PickupFilter(f.store)}}
	err = f.kf.Read(ctx, c, func(_ context.Context, b kvfollow.Batch) error {
		changes := make([]change, 0, len(b.Entries))
		for _, e := range b.Entries {
			if ch, ok := f.read(e); ok {
				changes = append(changes, ch)
			}
		}
		if gathered == nil {
			n, err := f.o.Cache.apply(changes)
			f.ignored.Add(uint64(n))
			return err
		}
		for _, ch := range changes {
			f.gather(gathered, ch)
		}
		if !b.CaughtUp {
			return nil
		}
		if err := f.o.Cache.replace(gathered, time.Now()); err != nil {
			return err
		}
		gathered, caughtUp = nil, true
		f.setSynced(true)
		f.log.Debug("pickups: caught up", "orders", f.o.Cache.Stats().Orders)
		return nil
	})
	return caughtUp, err
}

// gather adds a change to the set read so far, in stream order, keeping a
// document older than the one read before for its key out.
func (f *Follower) gather(set map[string]downsync.PickupDoc, ch change) {
	if ch.doc == nil {
		delete(set, ch.id)
		return
	}
	if held, ok := set[ch.id]; ok && ch.doc.Version < held.Version {
		f.ignored.Add(1)
		return
	}
	set[ch.id] = *ch.doc
}

// read turns a bucket entry into a change, or counts and logs it as
// rejected (ok false).
func (f *Follower) read(e kvfollow.Entry) (ch change, ok bool) {
	ch, err := parse(f.store, e.Subject, e.Header.Get("KV-Operation"), e.Value)
	f.mu.Lock()
	first := err != nil && !f.warned[e.Subject]
	switch {
	case err == nil:
		delete(f.warned, e.Subject) // a key fixed and broken again is logged again
	case first:
		if len(f.warned) >= maxWarned {
			clear(f.warned)
		}
		f.warned[e.Subject] = true
	}
	f.mu.Unlock()
	if err != nil {
		f.rejected.Add(1)
		if first {
			f.log.Warn("pickups: skipping an order the agent cannot read", "subject", e.Subject, "reason", err)
		}
		return change{}, false
	}
	return ch, true
}

// parse reads the message of subject: a deletion marker (operation DEL or
// PURGE) or a document that must agree with its key and the store.
func parse(store, subject, operation string, data []byte) (change, error) {
	keyStore, id, err := downsync.ParsePickupKey(subject)
	if err != nil {
		return change{}, err
	}
	if keyStore != store {
		return change{}, fmt.Errorf("key of store %q, not %q", keyStore, store)
	}
	if operation == "DEL" || operation == "PURGE" {
		return change{id: id}, nil
	}
	var d downsync.PickupDoc
	if err := json.Unmarshal(data, &d); err != nil {
		return change{}, fmt.Errorf("malformed value: %w", err)
	}
	switch {
	case d.Store != keyStore:
		return change{}, fmt.Errorf("document of store %q under a key of store %q", d.Store, keyStore)
	case d.ReservationID != id:
		return change{}, fmt.Errorf("document of reservation %q under a key of reservation %q", d.ReservationID, id)
	case d.State == "":
		return change{}, errors.New("document without a state")
	}
	return change{id: id, doc: &d}, nil
}

func (f *Follower) setSynced(on bool) {
	f.mu.Lock()
	f.synced = on
	f.mu.Unlock()
}
