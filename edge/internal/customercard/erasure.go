package customercard

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

	"github.com/omnisync/omnisync/edge/internal/outbox"
	"github.com/omnisync/omnisync/shared/downsync"
	"github.com/omnisync/omnisync/shared/events"
	"github.com/omnisync/omnisync/shared/kvfollow"
	"github.com/omnisync/omnisync/shared/retry"
	"github.com/omnisync/omnisync/shared/subjects"
	"github.com/omnisync/omnisync/shared/syncproto"
)

// Outbox is what the eraser needs of the agent's outbox.
type Outbox interface {
	Read(after uint64, max int, maxBytes int) ([]outbox.Record, error)
	Scrub(fn outbox.ScrubFunc) (int, error)
}

var _ Outbox = (*outbox.Outbox)(nil)

// EraserOptions configures an Eraser.
type EraserOptions struct {
	Store, Device string
	// Conn is the agent's connection; the eraser does not close it.
	Conn *nats.Conn
	// JSDomain is the hub's JetStream domain behind a store's leaf node
	// (see kvfollow.Options.Domain).
	JSDomain string
	Cache    *Cache
	Outbox   Outbox
	// RequestTimeout bounds each request to the hub and the bucket's
	// consumer creation (default 10s).
	RequestTimeout time.Duration
	// MinBackoff and MaxBackoff bound the wait before retrying an erasure
	// that failed (default 500ms and 1 minute).
	MinBackoff, MaxBackoff time.Duration
	// Sweep is how often expired cards are deleted (default one minute).
	Sweep time.Duration
	// Now is the wall clock for receipts (tests).
	Now    func() time.Time
	Logger *slog.Logger
}

// EraserStatus is a snapshot for the agent's status.
type EraserStatus struct {
	// Following: a session is reading the store's erasure notices.
	Following bool `json:"following"`
	// Pending erasures not carried out yet; Done carried out and receipted.
	Pending   int    `json:"pending"`
	Done      int    `json:"done"`
	Cards     int    `json:"cards"`
	Rejected  uint64 `json:"rejected"`
	LastError string `json:"last_error,omitempty"`
}

// Eraser follows the store's erasure notices and carries each out (see
// the package comment), and sweeps expired cards. Run it with Run, stop
// it with Close or Run's context.
type Eraser struct {
	o    EraserOptions
	log  *slog.Logger
	kf   *kvfollow.Follower
	poke chan struct{}

	rejected atomic.Uint64
	mu       sync.Mutex
	lastErr  string

	stopOnce sync.Once
	stop     chan struct{}
	runOnce  sync.Once
	done     chan struct{}
}

// NewEraser checks the options; nothing runs until Run.
func NewEraser(o EraserOptions) (*Eraser, error) {
	if o.Store == "" || o.Device == "" || o.Conn == nil || o.Cache == nil || o.Outbox == nil {
		return nil, fmt.Errorf("%w: Store, Device, Conn, Cache and Outbox are required", ErrInvalidOption)
	}
	if o.RequestTimeout <= 0 {
		o.RequestTimeout = 10 * time.Second
	}
	if o.MinBackoff <= 0 {
		o.MinBackoff = 500 * time.Millisecond
	}
	if o.MaxBackoff < o.MinBackoff {
		o.MaxBackoff = max(time.Minute, o.MinBackoff)
	}
	if o.Sweep <= 0 {
		o.Sweep = time.Minute
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	e := &Eraser{o: o, log: o.Logger, poke: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
	kf, err := kvfollow.New(kvfollow.Options{
		Conn: o.Conn, Domain: o.JSDomain, Name: "erasures", Session: e.session, Fatal: []error{ErrClosed},
		MinBackoff: o.MinBackoff, MaxBackoff: o.MaxBackoff, RequestTimeout: o.RequestTimeout, Logger: o.Logger,
	})
	if err != nil {
		return nil, fmt.Errorf("customercard: %w", err)
	}
	e.kf = kf
	return e, nil
}

// Status returns a snapshot.
func (e *Eraser) Status() EraserStatus {
	st := e.o.Cache.Stats()
	e.mu.Lock()
	last := e.lastErr
	e.mu.Unlock()
	return EraserStatus{
		Following: e.kf.Status().Reading, Pending: st.ErasuresPending, Done: st.ErasuresDone, Cards: st.Cards,
		Rejected: e.rejected.Load(), LastError: last,
	}
}

// Run follows the notices and carries erasures out until ctx ends or
// Close is called (nil then); erasures recorded before a restart are
// carried on with at once. It returns an error only when the cache is
// closed under it. Run may be called once.
func (e *Eraser) Run(ctx context.Context) error {
	first := false
	e.runOnce.Do(func() { first = true })
	if !first {
		return errors.New("customercard: Run called twice")
	}
	defer close(e.done)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-e.stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	errc := make(chan error, 1)
	go func() { errc <- e.kf.Run(ctx) }()
	werr := e.work(ctx)
	cancel()
	ferr := <-errc
	if werr != nil {
		return werr
	}
	if ferr != nil {
		return fmt.Errorf("customercard: %w", ferr)
	}
	return nil
}

// Close stops Run and waits for it (idempotent; safe when Run never ran).
func (e *Eraser) Close() error {
	e.stopOnce.Do(func() { close(e.stop) })
	ran := true
	e.runOnce.Do(func() { ran = false; close(e.done) })
	if ran {
		<-e.done
	}
	return nil
}

func (e *Eraser) wake() {
	select {
	case e.poke <- struct{}{}:
	default:
	}
}

// session reads the store's notices from the start of the bucket (a
// notice is small and kept for months; reading them all again after an
// outage is what makes a missed one impossible) and records each.
func (e *Eraser) session(ctx context.Context) (bool, error) {
	progressed := false
	c := kvfollow.Config{Stream: downsync.ErasureStream, Filters: []string{downsync.ErasureFilter(e.o.Store)}}
	err := e.kf.Read(ctx, c, func(_ context.Context, b kvfollow.Batch) error {
		todo := false
		for _, en := range b.Entries {
			if en.Deleted() {
				continue
			}
			n, err := parseNotice(e.o.Store, en.Subject, en.Value)
			if err != nil {
				e.rejected.Add(1)
				e.log.Warn("customercard: skipping an erasure notice the agent cannot read", "subject", en.Subject, "reason", err)
				continue
			}
			t, err := e.o.Cache.NoteErasure(n)
			if err != nil {
				return err
			}
			todo = todo || t
		}
		if len(b.Entries) > 0 || b.CaughtUp {
			progressed = true
		}
		if todo {
			e.wake()
		}
		return nil
	})
	return progressed, err
}

// parseNotice reads the notice under subject, which must be store's and
// agree with its key.
func parseNotice(store, subject string, data []byte) (syncproto.ErasureNotice, error) {
	var n syncproto.ErasureNotice
	keyStore, id, err := downsync.ParseErasureKey(subject)
	if err != nil {
		return n, err
	}
	if err := json.Unmarshal(data, &n); err != nil {
		return n, fmt.Errorf("malformed notice: %w", err)
	}
	if err := n.Validate(); err != nil {
		return n, err
	}
	if keyStore != store || n.Store != store || n.Erasure != id {
		return n, fmt.Errorf("notice of store %q, erasure %q under a key of store %q, erasure %q", n.Store, n.Erasure, keyStore, id)
	}
	return n, nil
}

// work carries out the recorded erasures, oldest first, whenever one is
// noted, and retries failures with a backoff; it sweeps expired cards
// meanwhile.
func (e *Eraser) work(ctx context.Context) error {
	back := retry.Backoff{Min: e.o.MinBackoff, Max: e.o.MaxBackoff}
	sweep := time.NewTicker(e.o.Sweep)
	defer sweep.Stop()
	var retryC <-chan time.Time
	e.wake() // what a restart left to do
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-sweep.C:
			if n, err := e.o.Cache.Sweep(); err != nil {
				if errors.Is(err, ErrClosed) {
					return err
				}
				e.log.Warn("customercard: sweeping expired cards", "err", err)
			} else if n > 0 {
				e.log.Debug("customercard: expired cards deleted", "cards", n)
			}
			continue
		case <-e.poke:
		case <-retryC:
		}
		retryC = nil
		err := e.carryOut(ctx)
		switch {
		case err == nil:
			back.Reset()
			e.setErr("")
		case errors.Is(err, ErrClosed):
			return err
		case ctx.Err() != nil:
			return nil
		default:
			e.setErr(err.Error())
			d := back.Next()
			e.log.Warn("customercard: erasure not carried out yet; retrying", "err", err, "retry_in", d.Round(time.Millisecond))
			retryC = time.After(d)
		}
	}
}

func (e *Eraser) setErr(s string) {
	e.mu.Lock()
	e.lastErr = s
	e.mu.Unlock()
}

// carryOut takes every erasure not done through its remaining steps.
func (e *Eraser) carryOut(ctx context.Context) error {
	list, err := e.o.Cache.Erasures()
	if err != nil {
		return err
	}
	for _, er := range list {
		if err := e.one(ctx, er); err != nil {
			return fmt.Errorf("erasure %s: %w", er.ID, err)
		}
	}
	return nil
}

// one takes erasure er from its state to done; each step is recorded
// before the next starts, so a crash redoes at most one step, and every
// step may be redone.
func (e *Eraser) one(ctx context.Context, er Erasure) error {
	var err error
	if er.State == StatePending {
		if er, err = e.o.Cache.purgeFor(er.ID); err != nil {
			return err
		}
	}
	if er.State == StatePurged {
		n, err := e.scrub(ctx, er)
		if err != nil {
			return err
		}
		if er, err = e.o.Cache.markScrubbed(er.ID, n); err != nil {
			return err
		}
	}
	if er.State == StateScrubbed {
		if err := e.receipt(ctx, er); err != nil {
			return err
		}
		if _, err := e.o.Cache.markDone(er.ID); err != nil {
			return err
		}
		e.log.Info("customercard: erasure carried out", "erasure", er.ID, "cards_purged", er.CardsPurged, "events_scrubbed", er.EventsScrubbed)
	}
	return nil
}

// idKey identifies a raw identifier exactly, as events carry it.
type idKey struct{ t, v string }

// scrub finds the erased person's pending events and scrubs them.
func (e *Eraser) scrub(ctx context.Context, er Erasure) (int, error) {
	// Every distinct identifier pending events name.
	var (
		ids   []syncproto.Identifier
		seen  = map[idKey]bool{}
		after uint64
	)
	for {
		recs, err := e.o.Outbox.Read(after, 4096, 8<<20)
		if err != nil {
			return 0, fmt.Errorf("reading the outbox: %w", err)
		}
		if len(recs) == 0 {
			break
		}
		for _, r := range recs {
			after = r.Seq
			var env struct {
				Data json.RawMessage `json:"data"`
			}
			if json.Unmarshal(r.Data, &env) != nil {
				continue
			}
			for _, id := range Identifiers(env.Data) {
				if k := (idKey{id.Type, id.Value}); !seen[k] {
					seen[k] = true
					ids = append(ids, id)
				}
			}
		}
	}
	if len(ids) == 0 {
		return 0, nil
	}
	erased := map[idKey]bool{}
	purged := map[string]bool{}
	for _, k := range er.PurgedKeys {
		purged[k] = true
	}
	var ask []syncproto.Identifier
	for _, id := range ids {
		if purged[e.o.Cache.Key(id)] {
			erased[idKey{id.Type, id.Value}] = true
		} else {
			ask = append(ask, id)
		}
	}
	for start := 0; start < len(ask); start += syncproto.MaxMatchIdentifiers {
		chunk := ask[start:min(start+syncproto.MaxMatchIdentifiers, len(ask))]
		matches, err := e.match(ctx, er.ID, chunk)
		if err != nil {
			return 0, err
		}
		for _, i := range matches {
			if i >= 0 && i < len(chunk) {
				erased[idKey{chunk[i].Type, chunk[i].Value}] = true
			}
		}
	}
	if len(erased) == 0 {
		return 0, nil
	}
	return e.o.Outbox.Scrub(func(kind events.Kind, data json.RawMessage) (json.RawMessage, bool) {
		for _, id := range Identifiers(data) {
			if erased[idKey{id.Type, id.Value}] {
				return ScrubBody(kind, data, er.ID)
			}
		}
		return nil, false
	})
}

// request sends a customer request op to the hub and decodes its reply
// into r.
func (e *Eraser) request(ctx context.Context, op string, body any, r any) error {
	b, err := json.Marshal(body)
	if err != nil {
		return err
	}
	rctx, cancel := context.WithTimeout(ctx, e.o.RequestTimeout)
	defer cancel()
	m, err := e.o.Conn.RequestWithContext(rctx, subjects.Cust(e.o.Store, op), b)
	if err != nil {
		return fmt.Errorf("%s request: %w", op, err)
	}
	if err := json.Unmarshal(m.Data, r); err != nil {
		return fmt.Errorf("%s reply: %w", op, err)
	}
	return nil
}

func (e *Eraser) match(ctx context.Context, erasure string, ids []syncproto.Identifier) ([]int, error) {
	var r syncproto.MatchReply
	if err := e.request(ctx, subjects.CustMatch, syncproto.MatchRequest{Erasure: erasure, Identifiers: ids}, &r); err != nil {
		return nil, err
	}
	switch r.Code {
	case "":
		return r.Matches, nil
	case syncproto.CodeNotFound:
		// The hub never asked this store: nothing of ours to match.
		return nil, nil
	}
	return nil, fmt.Errorf("match: the hub said %s: %s", r.Code, r.Error)
}

func (e *Eraser) receipt(ctx context.Context, er Erasure) error {
	rc := syncproto.Receipt{
		Erasure: er.ID, Device: e.o.Device, AtMS: e.o.Now().UnixMilli(),
		CardsPurged: er.CardsPurged, EventsScrubbed: er.EventsScrubbed,
	}
	var r syncproto.Reply
	if err := e.request(ctx, subjects.CustReceipt, rc, &r); err != nil {
		return err
	}
	switch r.Code {
	case "", syncproto.CodeNotFound:
		// Not found: the hub never asked this store; nothing to report.
		return nil
	}
	return fmt.Errorf("receipt: the hub said %s: %s", r.Code, r.Error)
}
