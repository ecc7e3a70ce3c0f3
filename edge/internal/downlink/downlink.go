// Package downlink keeps the agent's product cache in step with the hub's
// down-sync bucket (shared/downsync): the catalog, review summaries, the
// hub's tick, and the stock of this store, its nearby stores and the online
// warehouse. It is the uplink's counterpart: the uplink carries the store's
// events up, the downlink brings what the store must show shoppers down.
//
// How it stays exact: the cache is the cursor. Every batch of messages is
// applied together with the stream sequence of its last message (see
// productcache.Cache.Apply), and every (re)start reads an ordered consumer
// (filtered to the store's subjects) from that sequence + 1. Because the
// bucket keeps only the latest value of a key, an agent that was away for
// a week receives each key that changed once, not every change.
//
// An empty cache bootstraps from the bucket itself (history 1: it is the
// snapshot), up to the stream's last sequence, one subject filter at a
// time with its progress recorded per filter (productcache.ApplyPass):
// JetStream reads one filter from the start of a long-lived bucket many
// times faster than several at once (BenchmarkBootstrapAndCatchUp). Then
// it follows like any other start. The reading itself is kvfollow's:
// within a session the ordered consumer delivers every matching message
// exactly once and in order; whenever it recreates itself (gaps, missed
// heartbeats), fails, or the connection reconnects, the downlink applies
// what it holds and starts a new session from the cache's sequence, after
// checking the stream again.
//
// A recreated stream (another creation time, or a last sequence below the
// cache's) empties the cache and bootstraps it again. The agent may not
// create the stream (store credentials forbid it): until the hub has, the
// downlink waits and retries with backoff, as it does while NATS is
// unreachable. Lookups keep answering from the cache meanwhile.
//
// Latency: a batch is applied at MaxBatch messages or MaxDelay (50ms)
// after its first message, whichever comes first, and at once when the
// consumer first catches up (a live stock change is in the cache within
// MaxDelay of its delivery; the hub's burst of a thousand positions costs a
// few transactions, not one each).
package downlink

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/omnisync/omnisync/edge/internal/productcache"
	"github.com/omnisync/omnisync/shared/downsync"
	"github.com/omnisync/omnisync/shared/kvfollow"
)

// Cache is what the downlink needs from the product cache.
type Cache interface {
	Apply(ctx context.Context, batch []productcache.Update, lastSeq uint64, caughtUp bool) error
	ApplyPass(ctx context.Context, batch []productcache.Update, upTo uint64, filter string, seq uint64) error
	Reset(ctx context.Context) error
	SetStream(ctx context.Context, created time.Time) error
	Locations() []string
	MissingLocations() []string
	MarkLocationsComplete(ctx context.Context, locations []string) error
	Stats() productcache.Stats
}

var _ Cache = (*productcache.Cache)(nil)

// Options configures a Downlink.
type Options struct {
	// Conn is the agent's connection (with its per-store inbox prefix); the
	// downlink does not close it.
	Conn *nats.Conn
	// JSDomain is the hub's JetStream domain when Conn is to a store's
	// leaf node (see kvfollow.Options.Domain); empty when it is to the
	// hub's NATS.
	JSDomain string
	// Cache is where the bucket is kept; the downlink does not close it.
	Cache Cache
	// MaxBatch bounds the messages applied in one transaction (default
	// 1000); MaxDelay how long a message may wait for more to share its
	// transaction (default 50ms).
	MaxBatch int
	MaxDelay time.Duration
	// MinBackoff and MaxBackoff bound the wait before a new session after
	// a failed one (defaults 250ms and 30s; doubling, with jitter).
	MinBackoff, MaxBackoff time.Duration
	// VerifyEvery is how often a running session checks that the stream is
	// still the one the cache was filled from (default 1m). Reconnects and
	// consumer failures check it at once.
	VerifyEvery time.Duration
	// RequestTimeout bounds each JetStream API request (default 10s).
	RequestTimeout time.Duration
	Logger         *slog.Logger
}

func (o *Options) defaults() error {
	if o.Conn == nil || o.Cache == nil {
		return errors.New("downlink: Options.Conn and Options.Cache are required")
	}
	if o.MaxBatch <= 0 {
		o.MaxBatch = 1000
	}
	// MaxDelay and the backoff's defaults are kvfollow's.
	if o.VerifyEvery <= 0 {
		o.VerifyEvery = time.Minute
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
	// Bootstrapping: the cache is being filled from the start of the
	// stream (new, reset, or a newly configured location) and has not
	// caught up yet.
	Bootstrapping bool `json:"bootstrapping"`
	// LastSeq is the stream sequence the cache holds everything up to.
	LastSeq uint64 `json:"last_seq"`
	// Pending is how many messages the consumer had yet to deliver, as of
	// the last one delivered.
	Pending uint64 `json:"pending"`
	// SyncedAt is when the cache was last known caught up with the hub;
	// shoppers see it as as_of.
	SyncedAt time.Time `json:"synced_at,omitzero"`
	// SyncedAgeSeconds is how long ago that was (-1: never).
	SyncedAgeSeconds float64 `json:"synced_age_seconds"`
	// HubTick is the hub's time in the last tick applied.
	HubTick time.Time `json:"hub_tick,omitzero"`
	// MessagesReceived and BytesReceived count what the consumer
	// delivered since start (bytes: subject, reply, headers and payload,
	// about what went over the wire).
	MessagesReceived uint64 `json:"messages_received"`
	BytesReceived    uint64 `json:"bytes_received"`
	// StreamResets counts the times the stream was found recreated (and
	// the cache emptied); Sessions the consumers created.
	StreamResets uint64 `json:"stream_resets"`
	Sessions     uint64 `json:"sessions"`
	// What the cache holds.
	Products       int64    `json:"products"`
	Variants       int64    `json:"variants"`
	StockPositions int64    `json:"stock_positions"`
	Reviews        int64    `json:"reviews"`
	CacheBytes     int64    `json:"cache_bytes"`
	Locations      []string `json:"locations"`
	Missing        []string `json:"missing_locations,omitempty"`
	// Rejected counts messages the cache could not read (and skipped).
	Rejected  uint64 `json:"rejected"`
	LastError string `json:"last_error,omitempty"`
}

// Downlink follows the down-sync bucket into the cache. Create with New,
// run with Run, stop with Close or by cancelling Run's context.
type Downlink struct {
	o   Options
	kf  *kvfollow.Follower
	js  jetstream.JetStream
	log *slog.Logger

	resets atomic.Uint64

	mu            sync.Mutex
	bootstrapping bool
}

// New prepares a downlink; nothing runs until Run.
func New(o Options) (*Downlink, error) {
	if err := o.defaults(); err != nil {
		return nil, err
	}
	d := &Downlink{o: o, log: o.Logger}
	var err error
	d.kf, err = kvfollow.New(kvfollow.Options{
		Conn: o.Conn, Domain: o.JSDomain, Name: "down-sync", Session: d.session, Fatal: []error{productcache.ErrClosed},
		MaxBatch: o.MaxBatch, MaxDelay: o.MaxDelay, MinBackoff: o.MinBackoff, MaxBackoff: o.MaxBackoff,
		RequestTimeout: o.RequestTimeout, Logger: o.Logger,
	})
	if err != nil {
		return nil, fmt.Errorf("downlink: %w", err)
	}
	d.js = d.kf.JS()
	return d, nil
}

// Status returns a snapshot of the downlink and the cache.
func (d *Downlink) Status() Status {
	cs := d.o.Cache.Stats()
	ks := d.kf.Status()
	d.mu.Lock()
	s := Status{Connected: ks.Reading, Bootstrapping: d.bootstrapping, Pending: ks.Pending, LastError: ks.LastError}
	d.mu.Unlock()
	s.LastSeq, s.SyncedAt, s.HubTick = cs.LastSeq, cs.SyncedAt, cs.HubTick
	s.SyncedAgeSeconds = -1
	if !cs.SyncedAt.IsZero() {
		s.SyncedAgeSeconds = max(0, time.Since(cs.SyncedAt).Seconds())
	}
	s.MessagesReceived, s.BytesReceived = ks.Messages, ks.Bytes
	s.StreamResets, s.Sessions = d.resets.Load(), ks.Consumers
	s.Products, s.Variants, s.StockPositions, s.Reviews = cs.Products, cs.Variants, cs.StockPositions, cs.Reviews
	s.CacheBytes, s.Locations, s.Missing, s.Rejected = cs.Bytes, cs.Locations, cs.Missing, cs.Rejected
	return s
}

// Run follows the bucket until ctx ends or Close is called, and returns
// nil then. It returns an error only when the cache is closed under it.
// Run may be called once.
func (d *Downlink) Run(ctx context.Context) error {
	if err := d.kf.Run(ctx); err != nil {
		return fmt.Errorf("downlink: %w", err)
	}
	return nil
}

// Close stops Run and waits for it to return. It is idempotent and safe to
// call when Run never ran.
func (d *Downlink) Close() error { return d.kf.Close() }

// session checks the stream, bootstraps an empty cache, reads the stock
// of newly configured locations, and then follows the bucket until
// something interrupts it. progressed reports whether it applied anything.
func (d *Downlink) session(ctx context.Context) (progressed bool, err error) {
	info, err := d.streamInfo(ctx)
	if err != nil {
		return false, err
	}
	if err := d.checkStream(ctx, info); err != nil {
		return false, err
	}
	if st := d.o.Cache.Stats(); st.LastSeq == 0 {
		n, err := d.bootstrap(ctx, info.State.LastSeq)
		if err != nil {
			return n > 0, err
		}
	}
	if missing := d.o.Cache.MissingLocations(); len(missing) > 0 {
		if err := d.readLocations(ctx, missing); err != nil {
			return false, err
		}
	}
	return d.follow(ctx)
}

func (d *Downlink) streamInfo(ctx context.Context) (*jetstream.StreamInfo, error) {
	rctx, cancel := context.WithTimeout(ctx, d.o.RequestTimeout)
	defer cancel()
	s, err := d.js.Stream(rctx, downsync.Stream)
	if err != nil {
		return nil, fmt.Errorf("downlink: stream %s: %w", downsync.Stream, err)
	}
	return s.CachedInfo(), nil
}

// recreated reports whether info is another stream than the one the cache
// was filled from.
func recreated(st productcache.Stats, info *jetstream.StreamInfo) bool {
	return !st.StreamCreated.Equal(info.Created) || info.State.LastSeq < max(st.LastSeq, st.BootstrapUpTo)
}

// checkStream binds a new cache to the stream, and empties a cache filled
// from a stream that is no longer there.
func (d *Downlink) checkStream(ctx context.Context, info *jetstream.StreamInfo) error {
	st := d.o.Cache.Stats()
	if st.StreamCreated.IsZero() && st.LastSeq == 0 && st.BootstrapUpTo == 0 {
		return d.o.Cache.SetStream(ctx, info.Created)
	}
	if !recreated(st, info) {
		return nil
	}
	d.log.Warn("down-sync stream recreated: emptying the cache to bootstrap again",
		"cached_stream_created", st.StreamCreated, "stream_created", info.Created,
		"cached_seq", max(st.LastSeq, st.BootstrapUpTo), "stream_last_seq", info.State.LastSeq)
	d.resets.Add(1)
	if err := d.o.Cache.Reset(ctx); err != nil {
		return err
	}
	return d.o.Cache.SetStream(ctx, info.Created)
}

// bootstrap fills an empty cache with everything the stream holds up to
// its last sequence, one subject filter at a time (see
// productcache.Cache.ApplyPass for why), resuming an interrupted bootstrap
// where each filter stopped. It ends by setting the cache's sequence, from
// which follow goes on. It returns how many messages it applied.
func (d *Downlink) bootstrap(ctx context.Context, streamLast uint64) (int, error) {
	st := d.o.Cache.Stats()
	upTo := st.BootstrapUpTo
	if upTo == 0 {
		upTo = streamLast
	}
	if upTo == 0 {
		return 0, nil // an empty stream: follow reads it from the start
	}
	d.setBootstrapping(true)
	defer d.setBootstrapping(false)
	d.log.Info("down-sync: bootstrapping the product cache", "up_to_seq", upTo, "resumed", st.BootstrapUpTo != 0)
	applied := 0
	for _, f := range downsync.Filters(d.o.Cache.Locations()...) {
		from := st.BootstrapRead[f]
		if from >= upTo {
			continue
		}
		n, err := d.readFilter(ctx, f, from, upTo, func(ctx context.Context, batch []productcache.Update, seq uint64) error {
			return d.o.Cache.ApplyPass(ctx, batch, upTo, f, seq)
		})
		applied += n
		if err != nil {
			return applied, err
		}
	}
	if err := d.o.Cache.Apply(ctx, nil, upTo, false); err != nil {
		return applied, err
	}
	// Every configured location's stock has been read, including one
	// configured since the bootstrap began.
	return applied, d.o.Cache.MarkLocationsComplete(ctx, d.o.Cache.Locations())
}

// readLocations reads the stock of newly configured locations from the
// start of the stream up to the cache's sequence (what follows, follow
// reads with every other key), then marks them complete.
func (d *Downlink) readLocations(ctx context.Context, locations []string) error {
	st := d.o.Cache.Stats()
	if st.LastSeq == 0 {
		return d.o.Cache.MarkLocationsComplete(ctx, locations)
	}
	d.log.Info("down-sync: reading the stock of newly configured locations", "locations", locations, "up_to_seq", st.LastSeq)
	d.setBootstrapping(true)
	defer d.setBootstrapping(false)
	base := downsync.Filters()
	for _, f := range downsync.Filters(locations...) {
		if slices.Contains(base, f) {
			continue
		}
		// lastSeq 0: the cache's sequence stays, the other keys up to it
		// are read already and those after it are not.
		_, err := d.readFilter(ctx, f, 0, st.LastSeq, func(ctx context.Context, batch []productcache.Update, _ uint64) error {
			return d.o.Cache.Apply(ctx, batch, 0, false)
		})
		if err != nil {
			return err
		}
	}
	return d.o.Cache.MarkLocationsComplete(ctx, locations)
}

// readFilter reads the messages of one subject filter with sequences in
// (from, upTo], handing them to apply in batches with the sequence of each
// batch's last message, and returns how many it applied. It returns once
// it has reached upTo or the filter has nothing more.
func (d *Downlink) readFilter(ctx context.Context, filter string, from, upTo uint64,
	apply func(context.Context, []productcache.Update, uint64) error) (int, error) {
	applied := 0
	c := kvfollow.Config{Stream: downsync.Stream, Filters: []string{filter}, After: from, UpTo: upTo}
	err := d.kf.Read(ctx, c, func(ctx context.Context, b kvfollow.Batch) error {
		if len(b.Entries) == 0 {
			return nil
		}
		if err := apply(ctx, updates(b.Entries), b.Last()); err != nil {
			return err
		}
		applied += len(b.Entries)
		return nil
	})
	return applied, err
}

// follow reads the bucket from the cache's sequence on, applying batches,
// until ctx ends or the session must restart. Every VerifyEvery it checks
// that the stream is still the one the cache was filled from.
func (d *Downlink) follow(ctx context.Context) (progressed bool, err error) {
	st := d.o.Cache.Stats()
	last := st.LastSeq
	// Until it has caught up once, a cache is still bootstrapping.
	d.setBootstrapping(st.SyncedAt.IsZero())
	defer d.setBootstrapping(false)
	verified := time.Now()
	c := kvfollow.Config{
		Stream: downsync.Stream, Filters: downsync.Filters(d.o.Cache.Locations()...), After: st.LastSeq,
		Check: func(ctx context.Context) error {
			if time.Since(verified) < d.o.VerifyEvery {
				return nil
			}
			info, err := d.streamInfo(ctx)
			if err != nil {
				return err
			}
			if recreated(d.o.Cache.Stats(), info) {
				return fmt.Errorf("%w: the stream was recreated", kvfollow.ErrRestart)
			}
			verified = time.Now()
			return nil
		},
	}
	err = d.kf.Read(ctx, c, func(ctx context.Context, b kvfollow.Batch) error {
		if len(b.Entries) > 0 {
			last, progressed = b.Last(), true
		}
		// A batch that was delivered is applied even when ctx has just
		// ended (kvfollow hands it over without the cancellation): it is
		// correct, and saves reading it again.
		if err := d.o.Cache.Apply(ctx, updates(b.Entries), last, b.CaughtUp); err != nil {
			return err
		}
		if b.CaughtUp {
			d.setBootstrapping(false)
		}
		return nil
	})
	return progressed, err
}

func (d *Downlink) setBootstrapping(on bool) {
	d.mu.Lock()
	d.bootstrapping = on
	d.mu.Unlock()
}

// updates turns bucket entries into cache updates.
func updates(entries []kvfollow.Entry) []productcache.Update {
	if len(entries) == 0 {
		return nil
	}
	out := make([]productcache.Update, len(entries))
	for i, e := range entries {
		out[i] = productcache.Update{Key: e.Subject, Value: e.Value, Deleted: e.Deleted()}
	}
	return out
}
