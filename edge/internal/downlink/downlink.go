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
// it follows like any other start. Within a session the ordered
// consumer delivers every matching message exactly once and in order,
// recreating its server-side consumer on gaps, missed heartbeats and
// reconnects from the last message it handed over; whenever that happens
// (or the connection reconnects, or the consumer fails) the downlink
// applies what it holds and starts a new session from the cache's
// sequence, after checking the stream again.
//
// A recreated stream (another creation time, or a last sequence below the
// cache's) empties the cache and bootstraps it again. The agent may not
// create the stream (store credentials forbid it): until the hub has, the
// downlink waits and retries with backoff, as it does while NATS is
// unreachable. Lookups keep answering from the cache meanwhile.
//
// Latency: a batch is applied as soon as the consumer has nothing more
// pending (a live stock change is in the cache milliseconds after it is
// delivered), or at MaxBatch messages, or MaxDelay after its first message,
// whichever comes first.
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
	"github.com/omnisync/omnisync/shared/retry"
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
	if o.MaxDelay <= 0 {
		o.MaxDelay = 50 * time.Millisecond
	}
	if o.MinBackoff <= 0 {
		o.MinBackoff = 250 * time.Millisecond
	}
	if o.MaxBackoff < o.MinBackoff {
		o.MaxBackoff = max(30*time.Second, o.MinBackoff)
	}
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
	js  jetstream.JetStream
	log *slog.Logger

	quit      chan struct{}
	done      chan struct{}
	started   atomic.Bool
	closeOnce sync.Once

	msgs, bytes, resets, sessions atomic.Uint64

	mu            sync.Mutex
	reading       int // readers running: a consumer is delivering
	bootstrapping bool
	pending       uint64
	lastErr       string
}

// New prepares a downlink; nothing runs until Run.
func New(o Options) (*Downlink, error) {
	if err := o.defaults(); err != nil {
		return nil, err
	}
	js, err := jetstream.New(o.Conn)
	if err != nil {
		return nil, fmt.Errorf("downlink: jetstream: %w", err)
	}
	return &Downlink{o: o, js: js, log: o.Logger, quit: make(chan struct{}), done: make(chan struct{})}, nil
}

// Status returns a snapshot of the downlink and the cache.
func (d *Downlink) Status() Status {
	cs := d.o.Cache.Stats()
	d.mu.Lock()
	s := Status{
		Connected: d.reading > 0 && d.o.Conn.IsConnected(), Bootstrapping: d.bootstrapping,
		Pending: d.pending, LastError: d.lastErr,
	}
	d.mu.Unlock()
	s.LastSeq, s.SyncedAt, s.HubTick = cs.LastSeq, cs.SyncedAt, cs.HubTick
	s.SyncedAgeSeconds = -1
	if !cs.SyncedAt.IsZero() {
		s.SyncedAgeSeconds = max(0, time.Since(cs.SyncedAt).Seconds())
	}
	s.MessagesReceived, s.BytesReceived = d.msgs.Load(), d.bytes.Load()
	s.StreamResets, s.Sessions = d.resets.Load(), d.sessions.Load()
	s.Products, s.Variants, s.StockPositions, s.Reviews = cs.Products, cs.Variants, cs.StockPositions, cs.Reviews
	s.CacheBytes, s.Locations, s.Missing, s.Rejected = cs.Bytes, cs.Locations, cs.Missing, cs.Rejected
	return s
}

// Run follows the bucket until ctx ends or Close is called, and returns
// nil then. It returns an error only when the cache is closed under it.
// Run may be called once.
func (d *Downlink) Run(ctx context.Context) error {
	if !d.started.CompareAndSwap(false, true) {
		return errors.New("downlink: Run called twice")
	}
	defer close(d.done)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-d.quit:
			cancel()
		case <-ctx.Done():
		}
	}()

	backoff := retry.Backoff{Min: d.o.MinBackoff, Max: d.o.MaxBackoff}
	var lastLogged string
	for {
		progressed, err := d.session(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if errors.Is(err, productcache.ErrClosed) {
			return fmt.Errorf("downlink: %w", err)
		}
		if progressed {
			backoff.Reset()
		}
		if err != nil {
			d.mu.Lock()
			d.lastErr = err.Error()
			d.mu.Unlock()
			// Say it once; while it repeats (an outage), quietly.
			switch msg := err.Error(); {
			case msg == lastLogged:
				d.log.Debug("down-sync: retrying", "err", err, "in", backoff.Current())
			case errors.Is(err, jetstream.ErrStreamNotFound):
				d.log.Info("down-sync: waiting for the hub to create the bucket", "stream", downsync.Stream)
				lastLogged = msg
			case errors.Is(err, errRestart):
				d.log.Debug("down-sync: new session", "reason", err)
			default:
				d.log.Warn("down-sync interrupted; the cache keeps answering", "err", err, "retry_in", backoff.Current())
				lastLogged = msg
			}
		}
		if errors.Is(err, errRestart) && progressed {
			// The session was working: start the next one at once.
			continue
		}
		if backoff.Wait(ctx) != nil {
			return nil
		}
	}
}

// Close stops Run and waits for it to return. It is idempotent and safe to
// call when Run never ran.
func (d *Downlink) Close() error {
	d.closeOnce.Do(func() { close(d.quit) })
	if d.started.Load() {
		<-d.done
	}
	return nil
}

// errRestart ends a session that is fine but must start again from the
// cache's sequence: the stream must be checked again (a reconnect, the
// ordered consumer recreated itself), or it changed.
var errRestart = errors.New("down-sync restart")

// session checks the stream, bootstraps an empty cache, reads the stock
// of newly configured locations, and then follows the bucket until
// something interrupts it. progressed reports whether it applied anything.
func (d *Downlink) session(ctx context.Context) (progressed bool, err error) {
	if err := retry.WaitConnected(ctx, d.o.Conn); err != nil {
		return false, err
	}
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
		n, err := d.readFilter(ctx, f, from, upTo, func(batch []productcache.Update, seq uint64) error {
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
		_, err := d.readFilter(ctx, f, 0, st.LastSeq, func(batch []productcache.Update, _ uint64) error {
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
	apply func([]productcache.Update, uint64) error) (int, error) {
	cfg := jetstream.OrderedConsumerConfig{FilterSubjects: []string{filter}, DeliverPolicy: jetstream.DeliverAllPolicy}
	if from > 0 {
		cfg.DeliverPolicy, cfg.OptStartSeq = jetstream.DeliverByStartSequencePolicy, from+1
	}
	r, err := d.consume(ctx, cfg)
	if err != nil {
		return 0, err
	}
	defer d.stopReader(r)
	if r.pending == 0 {
		return 0, nil
	}
	var (
		batch    = make([]productcache.Update, 0, d.o.MaxBatch)
		last     = from
		applied  = 0
		consumer string
		idle     = time.NewTimer(d.o.RequestTimeout)
	)
	defer idle.Stop()
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		err := apply(batch, last)
		if err == nil {
			applied += len(batch)
		}
		batch = batch[:0]
		return err
	}
	for {
		select {
		case <-ctx.Done():
			return applied, errors.Join(ctx.Err(), flush())
		case err := <-r.failed:
			return applied, errors.Join(fmt.Errorf("%w: consumer: %w", errRestart, err), flush())
		case <-idle.C:
			return applied, errors.Join(fmt.Errorf("downlink: reading %s: no message for %v", filter, d.o.RequestTimeout), flush())
		case m := <-r.msgs:
			md, err := m.Metadata()
			if err != nil {
				return applied, errors.Join(fmt.Errorf("%w: message metadata: %w", errRestart, err), flush())
			}
			if consumer != "" && md.Consumer != consumer {
				return applied, errors.Join(fmt.Errorf("%w: consumer recreated", errRestart), flush())
			}
			consumer = md.Consumer
			seq := md.Sequence.Stream
			if seq > upTo {
				return applied, flush()
			}
			if seq <= last {
				continue
			}
			d.received(m, md.NumPending)
			batch = append(batch, toUpdate(m))
			last = seq
			done := seq == upTo || md.NumPending == 0
			if done || len(batch) >= d.o.MaxBatch {
				if err := flush(); err != nil || done {
					return applied, err
				}
			}
			idle.Reset(d.o.RequestTimeout)
		}
	}
}

// follow reads the bucket from the cache's sequence on, applying batches,
// until ctx ends or the session must restart.
func (d *Downlink) follow(ctx context.Context) (progressed bool, err error) {
	st := d.o.Cache.Stats()
	cfg := jetstream.OrderedConsumerConfig{
		FilterSubjects: downsync.Filters(d.o.Cache.Locations()...),
		DeliverPolicy:  jetstream.DeliverAllPolicy,
	}
	if st.LastSeq > 0 {
		cfg.DeliverPolicy, cfg.OptStartSeq = jetstream.DeliverByStartSequencePolicy, st.LastSeq+1
	}
	r, err := d.consume(ctx, cfg)
	if err != nil {
		return false, err
	}
	defer d.stopReader(r)

	last := st.LastSeq
	// Until it has caught up once, a cache is still bootstrapping.
	d.setBootstrapping(st.SyncedAt.IsZero())
	defer d.setBootstrapping(false)
	if r.pending == 0 {
		// Nothing to read: the cache is as current as the bucket.
		if err := d.o.Cache.Apply(ctx, nil, last, true); err != nil {
			return false, err
		}
		d.setBootstrapping(false)
	}

	var (
		batch    = make([]productcache.Update, 0, d.o.MaxBatch)
		consumer string
		delay    = time.NewTimer(time.Hour)
		check    = time.NewTicker(time.Second)
		verified = time.Now()
		reconn   = d.o.Conn.Stats().Reconnects
	)
	delay.Stop()
	defer delay.Stop()
	defer check.Stop()
	flush := func(caughtUp bool) error {
		delay.Stop()
		if len(batch) == 0 && !caughtUp {
			return nil
		}
		// What was delivered is applied even when ctx has just ended: it
		// is correct, and saves reading it again.
		err := d.o.Cache.Apply(context.WithoutCancel(ctx), batch, last, caughtUp)
		batch = batch[:0]
		if err == nil && caughtUp {
			d.setBootstrapping(false)
		}
		return err
	}
	for {
		select {
		case <-ctx.Done():
			return progressed, errors.Join(ctx.Err(), flush(false))
		case err := <-r.failed:
			return progressed, errors.Join(fmt.Errorf("%w: consumer: %w", errRestart, err), flush(false))
		case <-delay.C:
			if err := flush(false); err != nil {
				return progressed, err
			}
		case <-check.C:
			if n := d.o.Conn.Stats().Reconnects; n != reconn {
				return progressed, errors.Join(fmt.Errorf("%w: reconnected", errRestart), flush(false))
			}
			if time.Since(verified) >= d.o.VerifyEvery {
				if err := flush(false); err != nil {
					return progressed, err
				}
				info, err := d.streamInfo(ctx)
				if err != nil {
					return progressed, err
				}
				if recreated(d.o.Cache.Stats(), info) {
					return progressed, fmt.Errorf("%w: the stream was recreated", errRestart)
				}
				verified = time.Now()
			}
		case m := <-r.msgs:
			md, err := m.Metadata()
			if err != nil {
				return progressed, errors.Join(fmt.Errorf("%w: message metadata: %w", errRestart, err), flush(false))
			}
			if consumer != "" && md.Consumer != consumer {
				// The ordered consumer recreated itself (a gap, a
				// reconnect): go on from the cache, after checking the
				// stream.
				return progressed, errors.Join(fmt.Errorf("%w: consumer recreated", errRestart), flush(false))
			}
			consumer = md.Consumer
			if md.Sequence.Stream <= last {
				continue // already applied
			}
			d.received(m, md.NumPending)
			batch = append(batch, toUpdate(m))
			last, progressed = md.Sequence.Stream, true
			switch {
			case md.NumPending == 0, len(batch) >= d.o.MaxBatch:
				if err := flush(md.NumPending == 0); err != nil {
					return progressed, err
				}
			case len(batch) == 1:
				delay.Reset(d.o.MaxDelay)
			}
		}
	}
}

// reader hands an ordered consumer's messages over on msgs, and its
// failures on failed, until stopped with stopReader.
type reader struct {
	msgs    chan jetstream.Msg
	failed  chan error
	stop    chan struct{}
	cc      jetstream.ConsumeContext
	pending uint64 // what the consumer had to deliver when created
}

// consume creates an ordered consumer and starts reading it.
func (d *Downlink) consume(ctx context.Context, cfg jetstream.OrderedConsumerConfig) (*reader, error) {
	cctx, cancel := context.WithTimeout(ctx, d.o.RequestTimeout)
	cons, err := d.js.OrderedConsumer(cctx, downsync.Stream, cfg)
	cancel()
	if err != nil {
		return nil, fmt.Errorf("downlink: consumer: %w", err)
	}
	d.sessions.Add(1)
	r := &reader{
		msgs:   make(chan jetstream.Msg, d.o.MaxBatch),
		failed: make(chan error, 1),
		stop:   make(chan struct{}),
	}
	if info := cons.CachedInfo(); info != nil {
		r.pending = info.NumPending
		d.setPending(info.NumPending)
	}
	r.cc, err = cons.Consume(func(m jetstream.Msg) {
		select {
		case r.msgs <- m:
		case <-r.stop:
		}
	}, jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
		select {
		case r.failed <- err:
		default:
		}
	}), jetstream.PullMaxMessages(d.o.MaxBatch))
	if err != nil {
		return nil, fmt.Errorf("downlink: consume: %w", err)
	}
	d.setReading(true)
	return r, nil
}

// stopReader stops a reader without waiting long: an ordered consumer busy
// recreating itself (offline) holds its lock until its current attempt
// ends, and the agent's shutdown must not wait for that. The attempt ends
// by itself (it sees the consumer stopped, or the connection closed), and
// the goroutine with it.
func (d *Downlink) stopReader(r *reader) {
	d.setReading(false)
	close(r.stop)
	stopped := make(chan struct{})
	go func() {
		r.cc.Stop()
		close(stopped)
	}()
	select {
	case <-stopped:
	case <-time.After(time.Second):
		d.log.Debug("down-sync consumer still recreating itself; leaving it to stop")
	}
}

// received counts a delivered message.
func (d *Downlink) received(m jetstream.Msg, pending uint64) {
	d.msgs.Add(1)
	d.bytes.Add(uint64(wireSize(m)))
	d.setPending(pending)
}

func (d *Downlink) setReading(on bool) {
	d.mu.Lock()
	if on {
		d.reading++
		d.lastErr = ""
	} else {
		d.reading--
	}
	d.mu.Unlock()
}

func (d *Downlink) setBootstrapping(on bool) {
	d.mu.Lock()
	d.bootstrapping = on
	d.mu.Unlock()
}

func (d *Downlink) setPending(n uint64) {
	d.mu.Lock()
	d.pending = n
	d.mu.Unlock()
}

// toUpdate turns a bucket message into a cache update.
func toUpdate(m jetstream.Msg) productcache.Update {
	u := productcache.Update{Key: m.Subject(), Value: m.Data()}
	switch m.Headers().Get("KV-Operation") {
	case "DEL", "PURGE":
		u.Deleted, u.Value = true, nil
	}
	return u
}

// wireSize is about what a message took on the wire: subject, reply,
// headers and payload.
func wireSize(m jetstream.Msg) int {
	n := len(m.Subject()) + len(m.Reply()) + len(m.Data())
	if h := m.Headers(); len(h) > 0 {
		n += len("NATS/1.0\r\n\r\n")
		for k, vs := range h {
			for _, v := range vs {
				n += len(k) + len(": \r\n") + len(v)
			}
		}
	}
	return n
}
