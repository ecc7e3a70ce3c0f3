// Package basketfold folds the baskets of applied sales into the
// products' "bought together" counts, in the background.
//
// A sale's apply transaction only records its lines in the stock ledger
// and its batch's sales in the folder's inbox; what it says about
// products that go together is analytics, which may lag the sale by
// seconds. A Folder, run by every hub replica, calls store.FoldBaskets
// until the sales are folded, then waits for the next applied batch
// (Notify) or its poll. The store makes each basket count once: the
// counts and the deletion of the inbox rows they came from commit in one
// transaction, and one replica folds at a time (store/baskets.go). The products whose
// complements changed are handed to Folded, which republishes them to the
// stores.
package basketfold

import (
	"context"
	"errors"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/omnisync/omnisync/cloud/internal/rounds"
	"github.com/omnisync/omnisync/cloud/internal/store"
	"github.com/omnisync/omnisync/shared/retry"
)

// Store is what the folder needs from the hub's store.
type Store interface {
	FoldBaskets(ctx context.Context, lines int) (store.FoldResult, error)
}

var _ Store = (*store.Store)(nil)

// Options configures a Folder.
type Options struct {
	Store Store
	// Lines bounds the sale lines one fold reads [store.DefaultFoldLines].
	Lines int
	// Poll is how often sales are looked for without a Notify [2s]: a
	// sale applied by another replica.
	Poll time.Duration
	// Backoff paces retries after the database failed [100ms..30s].
	Backoff retry.Backoff
	// Folded is told the products whose complements a fold changed
	// (optional).
	Folded func(products []string)
	// Busy reports that the hub is applying events now (optional). Apply
	// comes first: a fold takes the same database (on SQLite its only
	// writer) and as much work per sale as applying it, so while Busy
	// holds the folder folds at most BusyLines per Poll, lagging behind a
	// store's catch-up and catching up once the hub is idle.
	Busy func() bool
	// BusyLines bounds a fold while Busy [10,000 lines].
	BusyLines int
	Logger    *slog.Logger
}

// DefaultBusyLines is Options.BusyLines' default: 5,000 sale lines a
// second at the default Poll, above any chain's sustained sales.
const DefaultBusyLines = 10_000

// Folder folds applied sales' baskets until Close or its context ends.
type Folder struct {
	o    Options
	log  *slog.Logger
	loop *rounds.Loop
	// last is when Run last folded while the hub was busy, and gap how
	// long it waits after that fold before the next (see busyShare).
	last time.Time
	gap  time.Duration

	baskets, lines atomic.Int64
	caughtUp       atomic.Int64 // unix ms; 0 until the first fold that left nothing ready
}

// Stats are what this replica's folder has done, for the hub's metrics.
type Stats struct {
	// Baskets and Lines count what this replica folded.
	Baskets, Lines int64
	// CaughtUp is when a fold of this replica last found no more sales
	// ready (zero before the first). Replicas take turns, so the fleet's
	// lag is the newest CaughtUp of all replicas: recommendations lag
	// the sales by at most the time since.
	CaughtUp time.Time
}

// Stats reads the folder's counters. Safe for concurrent use.
func (f *Folder) Stats() Stats {
	st := Stats{Baskets: f.baskets.Load(), Lines: f.lines.Load()}
	if ms := f.caughtUp.Load(); ms > 0 {
		st.CaughtUp = time.UnixMilli(ms)
	}
	return st
}

// busyShare bounds the time the folder takes while the hub is busy: after
// a fold that took d, the next waits busyShare*d (and at least a Poll), so
// folding holds the database (on SQLite its only writer) at most a tenth
// of the time. BusyLines alone does not bound it: a fold takes at least
// one whole applied batch, and a catch-up applies batches of up to the
// hub's --batch events, each sale one ledger line per basket line.
const busyShare = 9

// New checks the options.
func New(o Options) (*Folder, error) {
	if o.Store == nil {
		return nil, errors.New("basketfold: Store is required")
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Poll <= 0 {
		o.Poll = rounds.DefaultPoll
	}
	if o.BusyLines <= 0 {
		o.BusyLines = DefaultBusyLines
	}
	return &Folder{o: o, log: o.Logger, loop: rounds.New("basketfold", o.Poll, o.Backoff, o.Logger)}, nil
}

// Run folds until ctx ends or Close is called; it returns nil then. Call
// it once.
func (f *Folder) Run(ctx context.Context) error {
	return f.loop.Run(ctx, "folding baskets", func(ctx context.Context) (bool, error) {
		if f.o.Busy == nil || !f.o.Busy() {
			res, err := f.Once(ctx)
			return res.More, err
		}
		// Busy: one small fold per Poll, however often Notify wakes Run,
		// and spaced by busyShare times the last one's duration.
		if since := time.Since(f.last); since < f.o.Poll || since < f.gap {
			return false, nil
		}
		start := time.Now()
		_, err := f.fold(ctx, f.o.BusyLines)
		f.last = time.Now()
		f.gap = busyShare * f.last.Sub(start)
		return false, err
	})
}

// Once folds one round of baskets and hands the changed products to
// Folded.
func (f *Folder) Once(ctx context.Context) (store.FoldResult, error) {
	return f.fold(ctx, f.o.Lines)
}

func (f *Folder) fold(ctx context.Context, lines int) (store.FoldResult, error) {
	res, err := f.o.Store.FoldBaskets(ctx, lines)
	if err != nil {
		return res, err
	}
	f.baskets.Add(int64(res.Baskets))
	f.lines.Add(int64(res.Lines))
	if !res.More && !res.Busy {
		f.caughtUp.Store(time.Now().UnixMilli())
	}
	if res.Baskets > 0 {
		f.log.Debug("basketfold: folded", "baskets", res.Baskets, "lines", res.Lines, "products", len(res.Products), "more", res.More)
	}
	if len(res.Products) > 0 && f.o.Folded != nil {
		f.o.Folded(res.Products)
	}
	return res, nil
}

// Notify tells Run that sales were applied, so it folds before its next
// poll. It never blocks.
func (f *Folder) Notify() { f.loop.Notify() }

// Close stops Run and waits for it to return. Safe to call more than
// once, and before or without Run only if Run is never called afterwards.
func (f *Folder) Close() error { return f.loop.Close() }
