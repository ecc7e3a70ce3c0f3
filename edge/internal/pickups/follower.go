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
	"github.com/nats-io/nats.go/jetstream"

	"github.com/omnisync/omnisync/shared/downsync"
	"github.com/omnisync/omnisync/shared/retry"
)

// FollowerOptions configures a Follower.
type FollowerOptions struct {
	// Conn is the agent's connection (with its per-store inbox prefix); the
	// follower does not close it.
	Conn *nats.Conn
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
	if o.MaxBatch <= 0 {
		o.MaxBatch = 100
	}
	if o.MaxDelay <= 0 {
		o.MaxDelay = 50 * time.Millisecond
	}
	if o.MinBackoff <= 0 {
		o.MinBackoff = 250 * time.Millisecond
	}
	if o.MaxBackoff < o.MinBackoff {
		o.MaxBackoff = max(30*time.Second, o.MinBackoff)
	}
	if o.RequestTimeout <= 0 {
		o.RequestTimeout = 10 * time.Second
	}
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
	js    jetstream.JetStream
	log   *slog.Logger
	store string

	// closing ends when Close is called; done when Run has returned.
	closing  context.Context
	closeNow context.CancelFunc
	done     chan struct{}
	started  atomic.Bool

	sessions, rejected, ignored atomic.Uint64

	mu      sync.Mutex
	reading bool
	synced  bool
	lastErr string
	warned  map[string]bool // keys whose rejection was logged
}

// maxWarned bounds the keys remembered as logged: past it, the memory is
// cleared and each bad key is logged once more.
const maxWarned = 1000

// NewFollower prepares a follower; nothing runs until Run.
func NewFollower(o FollowerOptions) (*Follower, error) {
	if err := o.defaults(); err != nil {
		return nil, err
	}
	js, err := jetstream.New(o.Conn)
	if err != nil {
		return nil, fmt.Errorf("pickups: jetstream: %w", err)
	}
	f := &Follower{o: o, js: js, log: o.Logger, store: o.Cache.Store(), done: make(chan struct{}), warned: map[string]bool{}}
	f.closing, f.closeNow = context.WithCancel(context.Background())
	return f, nil
}

// Status returns a snapshot of the follower and the cache.
func (f *Follower) Status() Status {
	cs := f.o.Cache.Stats()
	up := f.o.Conn.IsConnected()
	f.mu.Lock()
	s := Status{Connected: f.reading && up, Synced: f.synced && up, LastError: f.lastErr}
	f.mu.Unlock()
	s.Orders, s.Open, s.SyncedAt = cs.Orders, cs.Open, cs.SyncedAt
	s.Sessions, s.Rejected, s.Ignored = f.sessions.Load(), f.rejected.Load(), f.ignored.Load()
	return s
}

// Run follows the store's orders until ctx ends or Close is called, and
// returns nil then. It returns an error only when the cache is closed under
// it. Run may be called once.
func (f *Follower) Run(ctx context.Context) error {
	if !f.started.CompareAndSwap(false, true) {
		return errors.New("pickups: Run called twice")
	}
	defer close(f.done)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer context.AfterFunc(f.closing, cancel)()

	backoff := retry.Backoff{Min: f.o.MinBackoff, Max: f.o.MaxBackoff}
	for {
		caughtUp, err := f.session(ctx)
		switch {
		case ctx.Err() != nil:
			return nil
		case errors.Is(err, ErrClosed):
			return fmt.Errorf("pickups: %w", err)
		case caughtUp:
			backoff.Reset()
			if errors.Is(err, errRestart) {
				f.log.Debug("pickups: reading the orders again", "reason", err)
				continue // the session was working: no reason to wait
			}
		}
		if err != nil {
			f.failed(err, backoff.Current())
		}
		if backoff.Wait(ctx) != nil {
			return nil
		}
	}
}

// failed records why a session ended, and logs it once: while the same
// error repeats (an outage, a bucket the hub has not created yet) the
// cache quietly keeps answering.
func (f *Follower) failed(err error, retryIn time.Duration) {
	f.mu.Lock()
	repeated := err.Error() == f.lastErr
	f.lastErr = err.Error()
	f.mu.Unlock()
	switch {
	case repeated || errors.Is(err, errRestart):
		f.log.Debug("pickups: retrying", "err", err, "in", retryIn)
	case errors.Is(err, jetstream.ErrStreamNotFound):
		f.log.Info("pickups: waiting for the hub to create the pickup bucket", "stream", downsync.PickupStream)
	default:
		f.log.Warn("pickups: follow interrupted; the cache keeps answering", "err", err, "retry_in", retryIn)
	}
}

// Close stops Run and waits for it to return. It is idempotent and safe to
// call when Run never ran.
func (f *Follower) Close() error {
	f.closeNow()
	if f.started.Load() {
		<-f.done
	}
	return nil
}

// errRestart ends a session that was fine but must read the bucket again
// from the start: the connection came back, or the consumer failed or
// recreated itself (and may have missed a deletion meanwhile).
var errRestart = errors.New("pickups: restart")

// session reads the store's orders from the start of the stream, replaces
// the cache with them once the consumer has nothing pending, then applies
// live changes until something interrupts it. caughtUp reports whether it
// got as far as replacing the cache.
func (f *Follower) session(ctx context.Context) (caughtUp bool, err error) {
	if err := retry.WaitConnected(ctx, f.o.Conn); err != nil {
		return false, err
	}
	r, err := f.consume(ctx)
	if err != nil {
		return false, err
	}
	defer f.stop(r)

	var (
		// gathered holds the documents read until the consumer has caught
		// up; nil after, when changes go to batch instead.
		gathered   = map[string]downsync.PickupDoc{}
		batch      []change
		consumer   string
		reconnects = f.o.Conn.Stats().Reconnects
		idle       = time.NewTimer(f.o.RequestTimeout)
		delay      = time.NewTimer(f.o.MaxDelay)
		check      = time.NewTicker(time.Second)
	)
	delay.Stop()
	defer idle.Stop()
	defer delay.Stop()
	defer check.Stop()
	catchUp := func() error {
		if err := f.o.Cache.replace(gathered, time.Now()); err != nil {
			return err
		}
		gathered, caughtUp = nil, true
		idle.Stop()
		f.setSynced(true)
		f.log.Debug("pickups: caught up", "orders", f.o.Cache.Stats().Orders)
		return nil
	}
	flush := func() error {
		delay.Stop()
		n, err := f.o.Cache.apply(batch)
		f.ignored.Add(uint64(n))
		batch = batch[:0]
		return err
	}
	if r.pending == 0 {
		if err := catchUp(); err != nil {
			return false, err
		}
	}
	for {
		select {
		case <-ctx.Done():
			return caughtUp, errors.Join(ctx.Err(), flush())
		case err := <-r.failed:
			return caughtUp, errors.Join(fmt.Errorf("%w: consumer: %w", errRestart, err), flush())
		case <-check.C:
			if n := f.o.Conn.Stats().Reconnects; n != reconnects {
				return caughtUp, errors.Join(fmt.Errorf("%w: reconnected", errRestart), flush())
			}
		case <-idle.C:
			if gathered == nil {
				continue // stopped as it fired
			}
			return caughtUp, fmt.Errorf("pickups: catching up: no message for %v", f.o.RequestTimeout)
		case <-delay.C:
			if err := flush(); err != nil {
				return caughtUp, err
			}
		case m := <-r.msgs:
			md, err := m.Metadata()
			if err != nil {
				return caughtUp, errors.Join(fmt.Errorf("%w: message metadata: %w", errRestart, err), flush())
			}
			if consumer != "" && md.Consumer != consumer {
				return caughtUp, errors.Join(fmt.Errorf("%w: consumer recreated", errRestart), flush())
			}
			consumer = md.Consumer
			ch, ok := f.read(m)
			if gathered != nil {
				if ok {
					f.gather(gathered, ch)
				}
				if md.NumPending > 0 {
					idle.Reset(f.o.RequestTimeout)
				} else if err := catchUp(); err != nil {
					return false, err
				}
				continue
			}
			if ok {
				batch = append(batch, ch)
			}
			switch {
			case md.NumPending == 0, len(batch) >= f.o.MaxBatch:
				if err := flush(); err != nil {
					return caughtUp, err
				}
			case len(batch) == 1:
				delay.Reset(f.o.MaxDelay)
			}
		}
	}
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

// read turns a bucket message into a change, or counts and logs it as
// rejected (ok false).
func (f *Follower) read(m jetstream.Msg) (ch change, ok bool) {
	ch, err := parse(f.store, m.Subject(), m.Headers().Get("KV-Operation"), m.Data())
	f.mu.Lock()
	first := err != nil && !f.warned[m.Subject()]
	switch {
	case err == nil:
		delete(f.warned, m.Subject()) // a key fixed and broken again is logged again
	case first:
		if len(f.warned) >= maxWarned {
			clear(f.warned)
		}
		f.warned[m.Subject()] = true
	}
	f.mu.Unlock()
	if err != nil {
		f.rejected.Add(1)
		if first {
			f.log.Warn("pickups: skipping an order the agent cannot read", "subject", m.Subject(), "reason", err)
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

// reader is one session's consumer: its messages arrive on msgs and its
// failures on failed until stop.
type reader struct {
	cc      jetstream.ConsumeContext
	msgs    chan jetstream.Msg
	failed  chan error
	halt    chan struct{}
	pending uint64 // what the consumer had to deliver when it was created
}

// consume creates an ordered consumer on the store's filter, from the
// start of the stream, and starts reading it. One filter subject, so that
// the client puts it in the create request's subject, where the store's
// permissions check it.
func (f *Follower) consume(ctx context.Context) (*reader, error) {
	cctx, cancel := context.WithTimeout(ctx, f.o.RequestTimeout)
	defer cancel()
	cons, err := f.js.OrderedConsumer(cctx, downsync.PickupStream, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{downsync.PickupFilter(f.store)},
		DeliverPolicy:  jetstream.DeliverAllPolicy,
		// A consumer that fails is replaced by a new session, which
		// reads from the start; retrying it in the background would only
		// delay that.
		MaxResetAttempts: 1,
	})
	if err != nil {
		return nil, fmt.Errorf("pickups: consumer: %w", err)
	}
	f.sessions.Add(1)
	r := &reader{msgs: make(chan jetstream.Msg, f.o.MaxBatch), failed: make(chan error, 1), halt: make(chan struct{})}
	if info := cons.CachedInfo(); info != nil {
		r.pending = info.NumPending
	}
	r.cc, err = cons.Consume(func(m jetstream.Msg) {
		select {
		case r.msgs <- m:
		case <-r.halt:
		}
	}, jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
		select {
		case r.failed <- err:
		default:
		}
	}), jetstream.PullMaxMessages(f.o.MaxBatch))
	if err != nil {
		return nil, fmt.Errorf("pickups: consume: %w", err)
	}
	f.mu.Lock()
	f.reading = true
	f.mu.Unlock()
	return r, nil
}

// stop ends a session's consumer. Stopping an ordered consumer waits for a
// recreation attempt in progress (up to the client's request timeout, when
// offline); the agent's shutdown waits a second at most, and the attempt
// ends on its own.
func (f *Follower) stop(r *reader) {
	f.mu.Lock()
	f.reading, f.synced = false, false
	f.mu.Unlock()
	close(r.halt)
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		r.cc.Stop()
	}()
	select {
	case <-stopped:
	case <-time.After(time.Second):
	}
}

func (f *Follower) setSynced(on bool) {
	f.mu.Lock()
	f.synced = on
	if on {
		f.lastErr = ""
	}
	f.mu.Unlock()
}
