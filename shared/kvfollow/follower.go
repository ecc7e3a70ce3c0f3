package kvfollow

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/omnisync/omnisync/shared/retry"
)

// Errors callers branch on.
var (
	// ErrRestart wraps the end of a read (or a session) that was working
	// but must start again from the owner's position: the consumer failed
	// or recreated itself, or the connection reconnected. Owners wrap it
	// for their own reasons (the stream was recreated).
	ErrRestart = errors.New("kvfollow: restart")
	// ErrInvalidOption is returned by New for options it cannot use, and
	// by Read for a Config it cannot read.
	ErrInvalidOption = errors.New("kvfollow: invalid option")
	// ErrRunning is returned by a second call of Run.
	ErrRunning = errors.New("kvfollow: Run called twice")
)

// Session is one session of a Follower: it reads the bucket (Read) from
// where it chooses until something interrupts it. progressed reports
// whether it got anywhere (applied entries, caught up): it decides whether
// the next session waits.
type Session func(ctx context.Context) (progressed bool, err error)

// Options configures a Follower.
type Options struct {
	// Conn is the connection to read over; the follower does not close it.
	// It may be left nil when JS is set (JS's connection is used).
	Conn *nats.Conn
	// JS is the JetStream context to read through (default: jetstream.New
	// on Conn, or jetstream.NewWithDomain when Domain is set).
	JS jetstream.JetStream
	// Domain is the JetStream domain that holds the bucket when it is not
	// the one Conn's server answers for: the hub's ("hub") when Conn is to
	// a store's leaf node, whose own JetStream answers $JS.API. Ignored
	// when JS is set.
	Domain string
	// Name names the follower in logs ("down-sync", "pickups").
	Name string
	// Session is run by Run, again and again; required.
	Session Session
	// Fatal lists the errors (matched with errors.Is) after which Run
	// returns instead of starting another session: the owner's store was
	// closed under it, say.
	Fatal []error
	// MaxBatch bounds the entries handed over at once, and what the
	// consumer pulls ahead (default 100); MaxDelay how long an entry may
	// wait for more to share its batch (default 50ms).
	MaxBatch int
	MaxDelay time.Duration
	// MinBackoff and MaxBackoff bound the wait before a session after a
	// failed one (defaults 250ms and 30s; doubling, with jitter).
	MinBackoff, MaxBackoff time.Duration
	// RequestTimeout bounds creating a consumer, and how long a read that
	// has not caught up yet waits for its next message (default 10s).
	RequestTimeout time.Duration
	Logger         *slog.Logger
}

func (o *Options) defaults() error {
	if o.JS == nil && o.Conn == nil {
		return fmt.Errorf("%w: Options.Conn or Options.JS is required", ErrInvalidOption)
	}
	if o.Session == nil {
		return fmt.Errorf("%w: Options.Session is required", ErrInvalidOption)
	}
	if o.JS == nil {
		js, err := jetstream.New(o.Conn)
		if o.Domain != "" {
			js, err = jetstream.NewWithDomain(o.Conn, o.Domain)
		}
		if err != nil {
			return fmt.Errorf("kvfollow: jetstream: %w", err)
		}
		o.JS = js
	}
	if o.Conn == nil {
		o.Conn = o.JS.Conn()
	}
	if o.Name == "" {
		o.Name = "kvfollow"
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

// Status is a snapshot of a Follower, for its owner's status and metrics.
type Status struct {
	// Reading: a consumer is delivering over a live connection.
	Reading bool
	// Consumers counts the consumers created (one per read).
	Consumers uint64
	// Messages and Bytes count the entries handed over (bytes: subject,
	// reply, headers and payload, about what went over the wire).
	Messages, Bytes uint64
	// Pending is how many messages the consumer had yet to deliver, as of
	// the last one delivered (or its creation).
	Pending uint64
	// LastError says why the last session ended; it is cleared when a
	// consumer is created.
	LastError string
}

// Follower runs sessions over a bucket. Create with New, run with Run,
// stop with Close or by cancelling Run's context.
type Follower struct {
	o   Options
	log *slog.Logger

	// closing ends when Close is called; done when Run has returned.
	closing  context.Context
	closeNow context.CancelFunc
	done     chan struct{}
	started  atomic.Bool

	consumers, messages, bytes atomic.Uint64

	mu         sync.Mutex
	reading    int // reads with a consumer delivering
	pending    uint64
	lastErr    string
	lastLogged string // the failure logged last, until a session progresses
}

// New prepares a follower; nothing runs until Run.
func New(o Options) (*Follower, error) {
	if err := o.defaults(); err != nil {
		return nil, err
	}
	f := &Follower{o: o, log: o.Logger, done: make(chan struct{})}
	f.closing, f.closeNow = context.WithCancel(context.Background())
	return f, nil
}

// JS is the JetStream context the follower reads through.
func (f *Follower) JS() jetstream.JetStream { return f.o.JS }

// Status returns a snapshot.
func (f *Follower) Status() Status {
	up := f.o.Conn.IsConnected()
	f.mu.Lock()
	s := Status{Reading: f.reading > 0 && up, Pending: f.pending, LastError: f.lastErr}
	f.mu.Unlock()
	s.Consumers, s.Messages, s.Bytes = f.consumers.Load(), f.messages.Load(), f.bytes.Load()
	return s
}

// Run runs sessions until ctx ends or Close is called, and returns nil
// then, or the first session error listed in Options.Fatal. Run may be
// called once.
func (f *Follower) Run(ctx context.Context) error {
	if !f.started.CompareAndSwap(false, true) {
		return ErrRunning
	}
	defer close(f.done)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer context.AfterFunc(f.closing, cancel)()

	backoff := retry.Backoff{Min: f.o.MinBackoff, Max: f.o.MaxBackoff}
	for {
		progressed, err := f.session(ctx)
		if ctx.Err() != nil {
			return nil
		}
		for _, fatal := range f.o.Fatal {
			if errors.Is(err, fatal) {
				return err
			}
		}
		if progressed {
			backoff.Reset()
			f.mu.Lock()
			f.lastLogged = ""
			f.mu.Unlock()
		}
		// A session that ends by itself was working: the next one starts at
		// once if it got anywhere.
		restart := err == nil || errors.Is(err, ErrRestart)
		if restart && progressed {
			if err != nil {
				f.failed(err, 0)
			}
			continue
		}
		wait := backoff.Next()
		if err != nil {
			f.failed(err, wait)
		}
		if retry.Sleep(ctx, wait) != nil {
			return nil
		}
	}
}

func (f *Follower) session(ctx context.Context) (bool, error) {
	if err := retry.WaitConnected(ctx, f.o.Conn); err != nil {
		return false, err
	}
	return f.o.Session(ctx)
}

// failed records why a session ended, and logs it once: while the same
// error repeats (an outage, a stream not created yet), quietly.
func (f *Follower) failed(err error, retryIn time.Duration) {
	msg := err.Error()
	f.mu.Lock()
	f.lastErr = msg
	repeated := msg == f.lastLogged
	if !errors.Is(err, ErrRestart) {
		f.lastLogged = msg
	}
	f.mu.Unlock()
	switch {
	case errors.Is(err, ErrRestart):
		f.log.Debug(f.o.Name+": new session", "reason", err, "in", retryIn)
	case repeated:
		f.log.Debug(f.o.Name+": retrying", "err", err, "in", retryIn)
	case errors.Is(err, jetstream.ErrStreamNotFound):
		f.log.Info(f.o.Name+": waiting for the stream to be created", "err", err)
	default:
		f.log.Warn(f.o.Name+": interrupted; retrying", "err", err, "retry_in", retryIn)
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
