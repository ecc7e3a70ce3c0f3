// Package downpub publishes what stores need to know into the down-sync
// buckets (see shared/downsync): catalog products, review summaries, stock
// positions and a liveness tick into the bucket every store reads, and each
// store's pickup orders into the pickup bucket, where only that store may
// read them.
//
// It exists because the hub's books are in SQL and the stores read
// JetStream: something must carry every committed change across, promptly
// (a stock change reaches a connected store within a second; while a
// backlog is applied, see BusyFlushEvery, within about two) and without
// ever letting an older value win.
//
// How it stays correct with several hub replicas and crashes:
//
//   - Every document has a version from the store that grows with each
//     change. Each replica mirrors the bucket's (key → revision, version)
//     through a headers-only ordered consumer, and publishes a document only
//     when its version is newer than the bucket's, with the bucket revision
//     it saw as the expected last sequence of the key (compare-and-set). A
//     conflict means another replica wrote the key meanwhile: the publisher
//     rereads it and retries only if its own version is still newer.
//   - Changes are marked dirty by the ingest path after each commit and
//     flushed every FlushEvery, coalesced (a hot SKU is published once per
//     flush, not once per sale). After a flush of BusyDocs documents or
//     more (a store catching up on a backlog moves most of its SKUs in
//     every batch the hub commits) the next one waits BusyFlushEvery
//     instead: each document costs a read, a compare-and-set publish, a
//     stream write and a bbolt write at every store that reads it, spent
//     on values the next commit replaces.
//   - A replica that dies between its commit and its publish leaves the
//     change unpublished; every replica therefore sweeps the store for
//     changes of the last SweepLookback every SweepEvery, and at start-up
//     compares everything. The mirror makes both cheap: only real
//     differences are published.
//   - A pickup order is published under its location; if a newer reserve
//     moves it to another store, the old store's key is deleted (with the
//     same compare-and-set). A closed order stays visible PickupRetention
//     after it closed, then its key is deleted, and the delete marker
//     itself is purged from the stream a day later, so the bucket holds
//     open and recent orders only. An agent drops an order at the marker,
//     or, if it missed the marker, at its next session, which rereads its
//     store's orders whole.
//   - A checked-out cart is published (by the digest of its id) so tills
//     refuse its code; it is deleted ClosedCartRetention after it closed,
//     and its marker purged a day later, like a closed pickup order (an
//     agent that missed the marker drops it at its expiry). The carts a
//     batch changed are marked after its commit; the comparison with the
//     store that catches what a crash lost reads the closures of the
//     retention at start-up and those of the last two ClosedCartSweepEvery
//     every ClosedCartSweepEvery (a range of cart_checkouts by the time
//     recorded), not at every sweep.
package downpub

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/sync/errgroup"

	"github.com/omnisync/omnisync/cloud/internal/inventory"
	"github.com/omnisync/omnisync/cloud/internal/store"
	"github.com/omnisync/omnisync/shared/downsync"
	"github.com/omnisync/omnisync/shared/kvfollow"
	"github.com/omnisync/omnisync/shared/retry"
)

// VersionHeader carries a document's version on its message, so mirrors can
// read versions without payloads; ClosedHeader, on a closed pickup order,
// when it closed (hub time, Unix milliseconds), so they know when to delete
// it.
const (
	VersionHeader = "Omni-Version"
	ClosedHeader  = "Omni-Closed-MS"
)

// Store is what the publisher reads.
type Store interface {
	StockDocs(ctx context.Context, keys []inventory.Key) ([]downsync.StockDoc, error)
	ProductDocs(ctx context.Context, ids []string) ([]downsync.ProductDoc, error)
	ReviewSummaries(ctx context.Context, ids []string) ([]downsync.ReviewSummary, error)
	ChangedStock(ctx context.Context, since store.Cursor, limit int) ([]inventory.Key, store.Cursor, error)
	ChangedProducts(ctx context.Context, since store.Cursor, limit int) ([]string, store.Cursor, error)
	ChangedReviews(ctx context.Context, since store.Cursor, limit int) ([]string, store.Cursor, error)
	PickupDocs(ctx context.Context, ids []string) ([]downsync.PickupDoc, error)
	ChangedReservations(ctx context.Context, since store.Cursor, limit int) ([]string, store.Cursor, error)
	RecsDocs(ctx context.Context, ids []string) ([]downsync.RecsDoc, error)
	ChangedRecs(ctx context.Context, since store.Cursor, limit int) ([]string, store.Cursor, error)
	ClosedCartDocs(ctx context.Context, ids []string) ([]store.ClosedCart, error)
	ClosedCartsSince(ctx context.Context, sinceMS int64) ([]string, error)
}

// Options configures a Publisher.
type Options struct {
	JS jetstream.JetStream
	// KV is the down-sync bucket (downsync.Bucket), PickupKV the pickup
	// bucket (downsync.PickupBucket); the caller creates both. Documents
	// are written through JS, with compare-and-set, ticks through KV.
	KV, PickupKV jetstream.KeyValue
	Store        Store
	// Hub names this replica in ticks.
	Hub    string
	Logger *slog.Logger
	// FlushEvery is how long a change may wait to be coalesced (default
	// 100ms); SweepEvery and SweepLookback tune the sweep (30s, 2m).
	FlushEvery, SweepEvery, SweepLookback time.Duration
	// BusyFlushEvery is the wait after a flush that published BusyDocs
	// documents or more (defaults 1s and 250). A store catching up on a
	// backlog has the hub commit a new version of most of its positions
	// every half second or so; publishing each at most once a second
	// halves what its catch-up costs in down-sync (measured: 6.6 of the
	// 29 CPU-s of draining 1M events went into it), while a position still
	// reaches connected stores within about two seconds (the wait, plus
	// the flushes before and after it).
	BusyFlushEvery time.Duration
	BusyDocs       int
	// TickEvery is how often the tick is written (downsync.TickInterval).
	TickEvery time.Duration
	// Page bounds the documents read and published at once (default 1000).
	Page int
	// PickupRetention is how long a closed pickup order stays in the
	// bucket (default 7 days); its delete marker is purged a day later.
	PickupRetention time.Duration
	// ClosedCartRetention is how long a checked-out cart stays in the
	// bucket after its closing checkout [downsync.ClosedCartRetention];
	// ClosedCartSweepEvery how often the closures recorded lately are
	// compared with the bucket [10m].
	ClosedCartRetention, ClosedCartSweepEvery time.Duration
	// Now is the hub's clock (tests move it).
	Now func() time.Time
}

// Stats counts what the publisher did.
type Stats struct {
	Published, Skipped, Conflicts, Errors uint64
	// Dirty is how many changes wait to be published.
	Dirty int
	// MirrorKeys is how many keys the buckets hold, as mirrored.
	MirrorKeys int
	// Expired counts closed pickup orders deleted after PickupRetention
	// and Relocated old keys of orders moved to another store; Purged the
	// delete markers removed from the pickup stream.
	Expired, Relocated, Purged uint64
	// ClosedCartsExpired counts checked-out carts deleted from the bucket
	// after ClosedCartRetention.
	ClosedCartsExpired uint64
	// Resyncs counts the times the mirrors were rebuilt (Resync).
	Resyncs uint64
	// Synced is false until the start-up comparison is done.
	Synced bool
}

type entry struct {
	rev     uint64
	version int64
	// deleted: the key's latest message is a delete marker, written at;
	// version is then that of the document whose publishing deleted it.
	deleted bool
	at      time.Time
	// closedMS: a closed pickup order, closed (by the hub's clock) then.
	closedMS int64
}

// bucket is one bucket the publisher writes, with its mirror: what every
// key holds, as far as this replica has seen.
type bucket struct {
	stream string
	prefix string
	// group, if set, names the keys that hold the same document (a
	// reservation under its old and new store) so the old one can be
	// deleted.
	group func(key string) string

	mu     sync.Mutex
	mirror map[string]entry
	groups map[string]map[string]struct{}
	// read is the last stream sequence the mirror's reads handed over:
	// where a read that had to start over resumes.
	read      uint64
	ready     chan struct{}
	readyOnce sync.Once
}

func newBucket(stream, prefix string, group func(string) string) *bucket {
	return &bucket{stream: stream, prefix: prefix, group: group,
		mirror: map[string]entry{}, groups: map[string]map[string]struct{}{}, ready: make(chan struct{})}
}

func (b *bucket) known(key string) entry {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.mirror[key]
}

// learn records what key holds if it is newer than what the mirror has.
func (b *bucket) learn(key string, e entry) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if cur, ok := b.mirror[key]; ok && e.rev <= cur.rev {
		return
	}
	b.mirror[key] = e
	if b.group != nil {
		g := b.group(key)
		if b.groups[g] == nil {
			b.groups[g] = map[string]struct{}{}
		}
		b.groups[g][key] = struct{}{}
	}
}

// forget drops a key whose messages were purged from the stream.
func (b *bucket) forget(key string, rev uint64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if cur, ok := b.mirror[key]; !ok || cur.rev > rev {
		return
	}
	delete(b.mirror, key)
	if b.group != nil {
		g := b.group(key)
		delete(b.groups[g], key)
		if len(b.groups[g]) == 0 {
			delete(b.groups, g)
		}
	}
}

// others lists the live keys of key's group other than key.
func (b *bucket) others(key string) map[string]entry {
	if b.group == nil {
		return nil
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	var out map[string]entry
	for k := range b.groups[b.group(key)] {
		if e := b.mirror[k]; k != key && !e.deleted {
			if out == nil {
				out = map[string]entry{}
			}
			out[k] = e
		}
	}
	return out
}

// reset empties the mirror; only while nothing reads or writes the bucket.
func (b *bucket) reset() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.mirror = map[string]entry{}
	b.groups = map[string]map[string]struct{}{}
	b.read = 0
	b.ready = make(chan struct{})
	b.readyOnce = sync.Once{}
}

func (b *bucket) size() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.mirror)
}

// Publisher publishes down-sync documents. Mark changes with Stock,
// Products and Reviews; Run does the rest.
type Publisher struct {
	o   Options
	log *slog.Logger

	mu       sync.Mutex
	stock    map[inventory.Key]struct{}
	products map[string]struct{}
	reviews  map[string]struct{}
	recs     map[string]struct{}
	pickups  map[string]struct{}
	carts    map[string]struct{}
	wake     chan struct{}
	resync   chan struct{}

	down, pick *bucket

	published, skipped, conflicts, errs atomic.Uint64
	expired, relocated, purged, resyncs atomic.Uint64
	cartsExpired                        atomic.Uint64
	synced                              atomic.Bool
}

// New checks the options; nothing runs until Run.
func New(o Options) (*Publisher, error) {
	if o.JS == nil || o.KV == nil || o.PickupKV == nil || o.Store == nil {
		return nil, errors.New("downpub: JS, KV, PickupKV and Store are required")
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.FlushEvery <= 0 {
		o.FlushEvery = 100 * time.Millisecond
	}
	if o.BusyFlushEvery <= 0 {
		o.BusyFlushEvery = time.Second
	}
	o.BusyFlushEvery = max(o.BusyFlushEvery, o.FlushEvery)
	if o.BusyDocs <= 0 {
		o.BusyDocs = 250
	}
	if o.SweepEvery <= 0 {
		o.SweepEvery = 30 * time.Second
	}
	if o.SweepLookback <= 0 {
		o.SweepLookback = 2 * time.Minute
	}
	if o.TickEvery <= 0 {
		o.TickEvery = downsync.TickInterval
	}
	if o.Page <= 0 {
		o.Page = 1000
	}
	if o.PickupRetention <= 0 {
		o.PickupRetention = 7 * 24 * time.Hour
	}
	if o.ClosedCartRetention <= 0 {
		o.ClosedCartRetention = downsync.ClosedCartRetention
	}
	if o.ClosedCartSweepEvery <= 0 {
		o.ClosedCartSweepEvery = 10 * time.Minute
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Publisher{
		o: o, log: o.Logger,
		stock: map[inventory.Key]struct{}{}, products: map[string]struct{}{}, reviews: map[string]struct{}{}, recs: map[string]struct{}{},
		pickups: map[string]struct{}{}, carts: map[string]struct{}{}, wake: make(chan struct{}, 1), resync: make(chan struct{}, 1),
		down: newBucket(downsync.Stream, downsync.SubjectPrefix, nil),
		pick: newBucket(downsync.PickupStream, downsync.PickupSubjectPrefix, reservationOf),
	}, nil
}

// reservationOf groups pickup keys by reservation.
func reservationOf(key string) string {
	_, id, _ := strings.Cut(key, ".")
	return id
}

// markerRetention is how long a delete marker stays in the pickup stream:
// long enough for every connected agent to have read it (one that has not
// drops the order when it next reads its store's orders whole).
const markerRetention = 24 * time.Hour

// Stock marks positions changed.
func (p *Publisher) Stock(keys []inventory.Key) {
	if len(keys) == 0 {
		return
	}
	p.mu.Lock()
	for _, k := range keys {
		p.stock[k] = struct{}{}
	}
	p.mu.Unlock()
}

// Products marks catalog products changed; they are published at once.
// Their complements are republished with them: a new product's come from
// its category and brand until it has history of its own.
func (p *Publisher) Products(ids []string) {
	p.mark(p.recs, ids)
	if p.mark(p.products, ids) {
		p.poke()
	}
}

// Recs marks products' complements changed.
func (p *Publisher) Recs(ids []string) { p.mark(p.recs, ids) }

// Reviews marks review summaries changed.
func (p *Publisher) Reviews(ids []string) { p.mark(p.reviews, ids) }

// Pickups marks reservations changed; their pickup orders are published
// at once (a store waits for them).
func (p *Publisher) Pickups(ids []string) {
	if p.mark(p.pickups, ids) {
		p.poke()
	}
}

// Carts marks carts changed: those checked out are published (their
// digests), so stores refuse their codes.
func (p *Publisher) Carts(ids []string) { p.mark(p.carts, ids) }

func (p *Publisher) mark(set map[string]struct{}, ids []string) bool {
	if len(ids) == 0 {
		return false
	}
	p.mu.Lock()
	for _, id := range ids {
		set[id] = struct{}{}
	}
	p.mu.Unlock()
	return true
}

func (p *Publisher) poke() {
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// Stats reports counters.
func (p *Publisher) Stats() Stats {
	p.mu.Lock()
	dirty := len(p.stock) + len(p.products) + len(p.reviews) + len(p.pickups) + len(p.recs) + len(p.carts)
	p.mu.Unlock()
	return Stats{
		Published: p.published.Load(), Skipped: p.skipped.Load(), Conflicts: p.conflicts.Load(), Errors: p.errs.Load(),
		Dirty: dirty, MirrorKeys: p.down.size() + p.pick.size(), Synced: p.synced.Load(),
		Expired: p.expired.Load(), Relocated: p.relocated.Load(), Purged: p.purged.Load(), Resyncs: p.resyncs.Load(),
		ClosedCartsExpired: p.cartsExpired.Load(),
	}
}

// Run mirrors the buckets, writes ticks and publishes changes until ctx
// ends.
func (p *Publisher) Run(ctx context.Context) error {
	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error { return p.runTicks(ctx) })
	g.Go(func() error { return p.runSessions(ctx) })
	err := g.Wait()
	if ctx.Err() != nil {
		return nil
	}
	return err
}

// Resync makes the publisher forget what it believes the buckets hold,
// mirror them again from scratch and compare everything with the store,
// as at start-up. Call it when the connection to NATS comes back: a
// single JetStream server acknowledges a write before it reaches its disk,
// so a server that was killed may have come back without the last writes
// the mirror saw, and a stale mirror would never publish them again.
func (p *Publisher) Resync() {
	select {
	case p.resync <- struct{}{}:
	default:
	}
}

// runSessions runs the mirrors and the publish loop, starting them over
// with empty mirrors at every Resync. Dirty marks survive.
func (p *Publisher) runSessions(ctx context.Context) error {
	for {
		sctx, cancel := context.WithCancel(ctx)
		g, gctx := errgroup.WithContext(sctx)
		g.Go(func() error { return p.runMirror(gctx, p.down) })
		g.Go(func() error { return p.runMirror(gctx, p.pick) })
		g.Go(func() error { return p.runPublish(gctx) })
		done := make(chan error, 1)
		go func() { done <- g.Wait() }()
		select {
		case <-ctx.Done():
			cancel()
			<-done
			return nil
		case err := <-done:
			cancel()
			if ctx.Err() != nil {
				return nil
			}
			return err
		case <-p.resync:
			cancel()
			<-done
		}
		p.synced.Store(false)
		p.down.reset()
		p.pick.reset()
		p.resyncs.Add(1)
		p.log.Info("downpub: mirroring the buckets again and comparing everything")
	}
}

func (p *Publisher) runTicks(ctx context.Context) error {
	t := time.NewTicker(p.o.TickEvery)
	defer t.Stop()
	for {
		b, _ := json.Marshal(downsync.Tick{AtMS: time.Now().UnixMilli(), Hub: p.o.Hub})
		pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		// A plain publish to the key's subject, as KeyValue.Put would do
		// without an API prefix: the hub reaches a bucket in another
		// account (shared/natsacct) through an import of its $KV subjects,
		// while KeyValue.Put would put the API prefix in front of them.
		if _, err := p.o.JS.Publish(pctx, downsync.Subject(downsync.TickKey), b); err != nil && ctx.Err() == nil {
			p.log.Debug("downpub: tick not written", "err", err)
		}
		cancel()
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// runMirror keeps b's mirror equal to the bucket's (key → revision,
// version), reading the bucket's headers through kvfollow: first the last
// message of every key, then every change after it. A read that has to
// start over (a consumer that failed or recreated itself, a reconnect)
// resumes after the last message it handed over; Resync is what starts a
// mirror from nothing.
func (p *Publisher) runMirror(ctx context.Context, b *bucket) error {
	var f *kvfollow.Follower
	f, err := kvfollow.New(kvfollow.Options{
		JS: p.o.JS, Name: "downpub: mirror of " + b.stream, MaxBatch: 2000,
		MinBackoff: 250 * time.Millisecond, MaxBackoff: 10 * time.Second, Logger: p.log,
		Session: func(ctx context.Context) (bool, error) { return p.mirrorSession(ctx, f, b) },
	})
	if err != nil {
		return fmt.Errorf("downpub: %w", err)
	}
	return f.Run(ctx)
}

// mirrorSession reads b's stream into its mirror until the read must start
// over. Its reads watch ctx (kvfollow never blocks past it), so a Resync
// right after a NATS restart cannot leave one stuck.
func (p *Publisher) mirrorSession(ctx context.Context, f *kvfollow.Follower, b *bucket) (progressed bool, err error) {
	b.mu.Lock()
	after := b.read
	b.mu.Unlock()
	c := kvfollow.Config{
		Stream: b.stream, Filters: []string{b.prefix + ">"}, HeadersOnly: true,
		After: after, LastPerSubject: after == 0,
	}
	err = f.Read(ctx, c, func(_ context.Context, batch kvfollow.Batch) error {
		for _, e := range batch.Entries {
			b.learn(e.Subject[len(b.prefix):], entryOf(e.Revision, e.Time, e.Header))
		}
		if n := batch.Last(); n > 0 {
			b.mu.Lock()
			b.read = n
			b.mu.Unlock()
		}
		if batch.CaughtUp {
			b.readyOnce.Do(func() { close(b.ready) })
		}
		progressed = true
		return nil
	})
	return progressed, err
}

func (p *Publisher) runPublish(ctx context.Context) error {
	for _, b := range []*bucket{p.down, p.pick} {
		select {
		case <-ctx.Done():
			return nil
		case <-b.ready:
		}
	}
	// Start-up: compare everything the store has with the bucket, until it
	// works (the database may be down).
	backoff := retry.Backoff{Min: 2 * time.Second, Max: 10 * time.Second}
	for {
		err := p.sweep(ctx, store.Cursor{})
		if err == nil {
			err = p.sweepClosedCarts(ctx, p.o.Now().Add(-p.o.ClosedCartRetention))
		}
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			return nil
		}
		d := backoff.Next()
		p.log.Warn("downpub: start-up comparison failed; retrying", "err", err, "in", d)
		if retry.Sleep(ctx, d) != nil {
			return nil
		}
	}
	p.synced.Store(true)
	p.log.Info("downpub: bucket in step with the store", "keys", p.Stats().MirrorKeys)

	flush := time.NewTimer(p.o.FlushEvery)
	defer flush.Stop()
	sweep := time.NewTicker(p.o.SweepEvery)
	defer sweep.Stop()
	cartSweep := time.NewTicker(p.o.ClosedCartSweepEvery)
	defer cartSweep.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-flush.C:
		case <-p.wake:
		case <-cartSweep.C:
			if err := p.sweepClosedCarts(ctx, p.o.Now().Add(-2*p.o.ClosedCartSweepEvery)); err != nil && ctx.Err() == nil {
				p.log.Warn("downpub: closed carts sweep failed", "err", err)
			}
		case <-sweep.C:
			since := store.Cursor{MS: time.Now().Add(-p.o.SweepLookback).UnixMilli()}
			if err := p.sweep(ctx, since); err != nil && ctx.Err() == nil {
				p.log.Warn("downpub: sweep failed", "err", err)
			}
			if err := p.expire(ctx); err != nil && ctx.Err() == nil {
				p.log.Warn("downpub: expiring pickup orders and closed carts failed", "err", err)
			}
		}
		before := p.published.Load()
		if err := p.flush(ctx); err != nil && ctx.Err() == nil {
			p.log.Warn("downpub: publish failed; will retry", "err", err)
		}
		flush.Reset(p.flushWait(p.published.Load() - before))
	}
}

// flushWait is how long to coalesce changes after a flush that published
// n documents: longer after a large one (see BusyFlushEvery).
func (p *Publisher) flushWait(n uint64) time.Duration {
	if n >= uint64(p.o.BusyDocs) {
		return p.o.BusyFlushEvery
	}
	return p.o.FlushEvery
}

// sweep marks everything changed since the cursor and publishes it, page by
// page; the mirror filters out what the bucket already has.
func (p *Publisher) sweep(ctx context.Context, since store.Cursor) error {
	for c := since; ; {
		keys, next, err := p.o.Store.ChangedStock(ctx, c, p.o.Page)
		if err != nil {
			return err
		}
		p.Stock(keys)
		if err := p.flush(ctx); err != nil {
			return err
		}
		if len(keys) < p.o.Page {
			break
		}
		c = next
	}
	kinds := []struct {
		changed func(context.Context, store.Cursor, int) ([]string, store.Cursor, error)
		mark    func([]string)
	}{{p.o.Store.ChangedProducts, p.Products}, {p.o.Store.ChangedReviews, p.Reviews}, {p.o.Store.ChangedReservations, p.Pickups},
		{p.o.Store.ChangedRecs, p.Recs}}
	for _, k := range kinds {
		for c := since; ; {
			ids, next, err := k.changed(ctx, c, p.o.Page)
			if err != nil {
				return err
			}
			k.mark(ids)
			if err := p.flush(ctx); err != nil {
				return err
			}
			if len(ids) < p.o.Page {
				break
			}
			c = next
		}
	}
	return nil
}

// sweepClosedCarts marks the carts a checkout was recorded for since
// and publishes them; the mirror filters out what the bucket has.
func (p *Publisher) sweepClosedCarts(ctx context.Context, since time.Time) error {
	ids, err := p.o.Store.ClosedCartsSince(ctx, since.UnixMilli())
	if err != nil {
		return err
	}
	for start := 0; start < len(ids); start += p.o.Page {
		p.Carts(ids[start:min(start+p.o.Page, len(ids))])
		if err := p.flush(ctx); err != nil {
			return err
		}
	}
	return nil
}

// doc is one document ready to publish, or a key to delete.
type doc struct {
	b       *bucket
	key     string
	version int64
	data    []byte
	// del deletes the key if it holds version or older; expiry and moved
	// say why (counted in Expired and Relocated once written).
	del, expiry, moved bool
	// cartExpiry: the delete of a checked-out cart past its retention.
	cartExpiry bool
	// closedMS marks a closed pickup order (ClosedHeader).
	closedMS int64
	// remark puts the change back in the dirty set if publishing fails.
	remark func()
}

// flush publishes the changes dirty when it starts, at most Page
// documents of each kind per round. A change that cannot be published now
// stays dirty, and so do changes marked while it runs: they wait for the
// next flush, to be coalesced. (Flushing until nothing was dirty never
// ended while a store caught up: each commit marked most of its SKUs
// again, and every new version went out as soon as it was committed, the
// wait between flushes never coming.)
func (p *Publisher) flush(ctx context.Context) error {
	p.mu.Lock()
	rounds := max(len(p.stock), len(p.products), len(p.reviews), len(p.pickups), len(p.recs), len(p.carts))
	p.mu.Unlock()
	rounds = (rounds + p.o.Page - 1) / p.o.Page
	for range rounds {
		p.mu.Lock()
		var keys []inventory.Key
		for k := range p.stock {
			if len(keys) == p.o.Page {
				break
			}
			keys = append(keys, k)
			delete(p.stock, k)
		}
		products := take(p.products, p.o.Page)
		reviews := take(p.reviews, p.o.Page)
		pickups := take(p.pickups, p.o.Page)
		recs := take(p.recs, p.o.Page)
		closed := take(p.carts, p.o.Page)
		p.mu.Unlock()
		if len(keys)+len(products)+len(reviews)+len(pickups)+len(recs)+len(closed) == 0 {
			return nil
		}
		docs, err := p.load(ctx, keys, products, reviews, pickups)
		if err == nil {
			var more []doc
			more, err = p.loadRecs(ctx, recs)
			docs = append(docs, more...)
		}
		if err == nil {
			var more []doc
			more, err = p.loadClosedCarts(ctx, closed)
			docs = append(docs, more...)
		}
		if err != nil {
			p.Stock(keys)
			p.mark(p.products, products)
			p.mark(p.reviews, reviews)
			p.mark(p.pickups, pickups)
			p.mark(p.recs, recs)
			p.mark(p.carts, closed)
			return err
		}
		if err := p.publish(ctx, docs); err != nil {
			return err
		}
	}
	return nil
}

func take(m map[string]struct{}, n int) []string {
	var out []string
	for k := range m {
		if len(out) == n {
			break
		}
		out = append(out, k)
		delete(m, k)
	}
	return out
}

func (p *Publisher) load(ctx context.Context, keys []inventory.Key, products, reviews, pickups []string) ([]doc, error) {
	var docs []doc
	stock, err := p.o.Store.StockDocs(ctx, keys)
	if err != nil {
		return nil, err
	}
	for _, d := range stock {
		b, _ := json.Marshal(d)
		k := inventory.Key{SKU: d.SKU, Location: d.Location}
		docs = append(docs, doc{b: p.down, key: downsync.StockKey(d.Location, d.SKU), version: d.Version, data: b,
			remark: func() { p.Stock([]inventory.Key{k}) }})
	}
	prods, err := p.o.Store.ProductDocs(ctx, products)
	if err != nil {
		return nil, err
	}
	for _, d := range prods {
		b, _ := json.Marshal(d)
		ids := []string{d.ID}
		docs = append(docs, doc{b: p.down, key: downsync.ProductKey(d.ID), version: d.Version, data: b,
			remark: func() { p.mark(p.products, ids) }})
	}
	sums, err := p.o.Store.ReviewSummaries(ctx, reviews)
	if err != nil {
		return nil, err
	}
	for _, d := range sums {
		b, _ := json.Marshal(d)
		ids := []string{d.ProductID}
		docs = append(docs, doc{b: p.down, key: downsync.ReviewKey(d.ProductID), version: d.Version, data: b,
			remark: func() { p.mark(p.reviews, ids) }})
	}
	orders, err := p.o.Store.PickupDocs(ctx, pickups)
	if err != nil {
		return nil, err
	}
	for _, d := range orders {
		docs = append(docs, p.pickupDocs(d)...)
	}
	return docs, nil
}

// loadRecs reads the complements documents of products.
func (p *Publisher) loadRecs(ctx context.Context, ids []string) ([]doc, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	recs, err := p.o.Store.RecsDocs(ctx, ids)
	if err != nil {
		return nil, err
	}
	docs := make([]doc, 0, len(recs))
	for _, d := range recs {
		b, _ := json.Marshal(d)
		ids := []string{d.ProductID}
		docs = append(docs, doc{b: p.down, key: downsync.RecsKey(d.ProductID), version: d.Version, data: b,
			remark: func() { p.mark(p.recs, ids) }})
	}
	return docs, nil
}

// loadClosedCarts reads the carts of ids that are checked out: each is
// published under its digest until ClosedCartRetention after it closed,
// and deleted (if the bucket has it) once past. Open carts make nothing.
func (p *Publisher) loadClosedCarts(ctx context.Context, ids []string) ([]doc, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	closed, err := p.o.Store.ClosedCartDocs(ctx, ids)
	if err != nil {
		return nil, err
	}
	now := p.o.Now()
	docs := make([]doc, 0, len(closed))
	for _, c := range closed {
		d := c.Doc
		d.ExpiresMS = d.ClosedMS + p.o.ClosedCartRetention.Milliseconds()
		ids := []string{c.ID}
		one := doc{b: p.down, key: downsync.ClosedCartKey(c.ID), version: d.Version, closedMS: d.ClosedMS,
			remark: func() { p.mark(p.carts, ids) }}
		if now.UnixMilli() >= d.ExpiresMS {
			// Too old to matter to any till: deleted if the bucket still
			// has it, never written again.
			if e := p.down.known(one.key); e.rev == 0 || e.deleted {
				continue
			}
			one.del, one.cartExpiry = true, true
		} else {
			one.data, _ = json.Marshal(d)
		}
		docs = append(docs, one)
	}
	return docs, nil
}

// pickupDocs is what publishing reservation d takes: its document under
// its store (or, once it has been closed for PickupRetention, deleting
// it), and deleting it under any store it was reserved at before.
func (p *Publisher) pickupDocs(d downsync.PickupDoc) []doc {
	ids := []string{d.ReservationID}
	remark := func() { p.mark(p.pickups, ids) }
	key := downsync.PickupKey(d.Store, d.ReservationID)
	one := doc{b: p.pick, key: key, version: d.Version, remark: remark}
	if d.State != downsync.PickupOpen {
		one.closedMS = max(d.UpdatedMS, 1)
		one.del = p.o.Now().Sub(time.UnixMilli(one.closedMS)) > p.o.PickupRetention
		one.expiry = one.del
	}
	if !one.del {
		one.data, _ = json.Marshal(d)
	}
	out := []doc{one}
	for k := range p.pick.others(key) {
		out = append(out, doc{b: p.pick, key: k, version: d.Version, del: true, moved: true, remark: remark})
	}
	return out
}

// entryOf is the mirror entry of the message at rev with headers h.
func entryOf(rev uint64, at time.Time, h nats.Header) entry {
	e := entry{rev: rev, at: at}
	e.version, _ = strconv.ParseInt(h.Get(VersionHeader), 10, 64)
	switch h.Get("KV-Operation") {
	case "DEL", "PURGE":
		e.deleted = true
	default:
		e.closedMS, _ = strconv.ParseInt(h.Get(ClosedHeader), 10, 64)
	}
	return e
}

// stale reports whether d need not be written over e: a document no newer
// than the bucket's (delete markers carry the version that deleted the key,
// so an order moved away is not brought back by a replica that read it
// before it moved), or a delete of a key already deleted or holding a
// newer document.
func stale(d doc, e entry) bool {
	if d.del {
		return e.rev == 0 || e.deleted || e.version > d.version
	}
	return e.version >= d.version
}

// publish sends the documents newer than the buckets', asynchronously, each
// with the revision it replaces as the key's expected last sequence, then
// settles every acknowledgement.
func (p *Publisher) publish(ctx context.Context, docs []doc) error {
	type sent struct {
		d   doc
		fut jetstream.PubAckFuture
	}
	var out []sent
	var firstErr error
	for _, d := range docs {
		e := d.b.known(d.key)
		if stale(d, e) {
			p.skipped.Add(1)
			continue
		}
		fut, err := p.o.JS.PublishMsgAsync(p.msg(d), jetstream.WithExpectLastSequencePerSubject(e.rev))
		if err != nil {
			p.errs.Add(1)
			d.remark()
			firstErr = cmpErr(firstErr, err)
			continue
		}
		out = append(out, sent{d, fut})
	}
	for _, s := range out {
		select {
		case ack := <-s.fut.Ok():
			p.wrote(s.d, ack.Sequence)
		case err := <-s.fut.Err():
			if isConflict(err) {
				p.conflicts.Add(1)
				if err := p.resolve(ctx, s.d); err != nil {
					p.errs.Add(1)
					s.d.remark()
					firstErr = cmpErr(firstErr, err)
				}
				continue
			}
			p.errs.Add(1)
			s.d.remark()
			firstErr = cmpErr(firstErr, err)
		case <-ctx.Done():
			s.d.remark()
			return ctx.Err()
		}
	}
	return firstErr
}

// wrote records that the bucket has d at rev.
func (p *Publisher) wrote(d doc, rev uint64) {
	d.b.learn(d.key, d.written(rev))
	p.published.Add(1)
	if d.expiry {
		p.expired.Add(1)
	}
	if d.moved {
		p.relocated.Add(1)
	}
	if d.cartExpiry {
		p.cartsExpired.Add(1)
	}
}

// written is the mirror entry of d once the bucket has it at rev.
func (d doc) written(rev uint64) entry {
	if d.del {
		return entry{rev: rev, version: d.version, deleted: true, at: time.Now()}
	}
	return entry{rev: rev, version: d.version, closedMS: d.closedMS}
}

// resolve handles a compare-and-set conflict: another replica wrote the key
// since the mirror saw it. Write only if ours still needs writing.
func (p *Publisher) resolve(ctx context.Context, d doc) error {
	for attempt := 0; attempt < 5; attempt++ {
		// The stream's last message of the key, delete markers included
		// (KeyValue.Get hides a marker's revision, which the
		// compare-and-set needs).
		var e entry
		m, err := p.lastMsg(ctx, d.b, d.key)
		switch {
		case errors.Is(err, jetstream.ErrMsgNotFound):
			// Never written, or purged.
		case err != nil:
			return err
		default:
			e = entryOf(m.Sequence, m.Time, m.Header)
		}
		d.b.learn(d.key, e)
		if stale(d, e) {
			p.skipped.Add(1)
			return nil
		}
		ack, err := p.o.JS.PublishMsg(ctx, p.msg(d), jetstream.WithExpectLastSequencePerSubject(e.rev))
		if err == nil {
			p.wrote(d, ack.Sequence)
			return nil
		}
		if !isConflict(err) {
			return err
		}
		p.conflicts.Add(1)
	}
	return fmt.Errorf("downpub: %s: still conflicting after retries", d.key)
}

// lastMsg reads the last message of key in b's stream.
func (p *Publisher) lastMsg(ctx context.Context, b *bucket, key string) (*jetstream.RawStreamMsg, error) {
	st, err := p.o.JS.Stream(ctx, b.stream)
	if err != nil {
		return nil, fmt.Errorf("downpub: stream %s: %w", b.stream, err)
	}
	return st.GetLastMsgForSubject(ctx, b.prefix+key)
}

func (p *Publisher) msg(d doc) *nats.Msg {
	m := nats.NewMsg(d.b.prefix + d.key)
	m.Header.Set(VersionHeader, strconv.FormatInt(d.version, 10))
	if d.del {
		// What KeyValue.Delete sends: readers drop the key at this marker.
		m.Header.Set("KV-Operation", "DEL")
		return m
	}
	m.Data = d.data
	if d.closedMS > 0 {
		m.Header.Set(ClosedHeader, strconv.FormatInt(d.closedMS, 10))
	}
	return m
}

// expire deletes the pickup orders closed more than PickupRetention ago,
// and the checked-out carts closed more than ClosedCartRetention ago, and
// purges their delete markers older than markerRetention, as the mirrors
// see them. Every replica may do it; the compare-and-set and the purge's
// sequence bound make doing it twice harmless.
func (p *Publisher) expire(ctx context.Context) error {
	return errors.Join(
		p.expireIn(ctx, p.pick, p.o.PickupRetention, nil),
		// Only closed carts' markers are purged from the bucket every
		// store reads: an agent that missed one drops the cart at its
		// expiry, while other keys' markers must reach every agent.
		p.expireIn(ctx, p.down, p.o.ClosedCartRetention, downsync.IsClosedCartKey))
}

// expireIn is expire in bucket b, for the keys ours accepts (nil: all).
func (p *Publisher) expireIn(ctx context.Context, b *bucket, retention time.Duration, ours func(string) bool) error {
	now := p.o.Now()
	var dels []doc
	type marker struct {
		key string
		rev uint64
	}
	var markers []marker
	b.mu.Lock()
	for k, e := range b.mirror {
		// Only a deleted or closed entry can be due: most of the shared
		// bucket's keys (stock, products, reviews) are neither, and pass
		// here without their key being parsed.
		if !e.deleted && e.closedMS == 0 || ours != nil && !ours(k) {
			continue
		}
		switch {
		case e.deleted && now.Sub(e.at) > markerRetention:
			markers = append(markers, marker{k, e.rev})
		case !e.deleted && e.closedMS > 0 && now.Sub(time.UnixMilli(e.closedMS)) > retention:
			d := doc{b: b, key: k, version: e.version, del: true, remark: func() {}}
			if b == p.pick {
				d.expiry = true
			} else {
				d.cartExpiry = true
			}
			dels = append(dels, d)
		}
	}
	b.mu.Unlock()
	for start := 0; start < len(dels); start += p.o.Page {
		if err := p.publish(ctx, dels[start:min(start+p.o.Page, len(dels))]); err != nil {
			return err
		}
	}
	if len(markers) == 0 {
		return nil
	}
	st, err := p.o.JS.Stream(ctx, b.stream)
	if err != nil {
		return fmt.Errorf("downpub: stream %s: %w", b.stream, err)
	}
	for _, m := range markers {
		// Up to and including the marker: a document written after it
		// (the key reused) stays.
		err := st.Purge(ctx, jetstream.WithPurgeSubject(b.prefix+m.key), jetstream.WithPurgeSequence(m.rev+1))
		if err != nil {
			return fmt.Errorf("downpub: purge %s: %w", m.key, err)
		}
		b.forget(m.key, m.rev)
		if b == p.pick {
			p.purged.Add(1)
		}
	}
	return nil
}

func isConflict(err error) bool {
	var je jetstream.JetStreamError
	if errors.As(err, &je) && je.APIError() != nil {
		c := je.APIError().ErrorCode
		return c == jetstream.JSErrCodeStreamWrongLastSequence || c == jetstream.JSErrCodeStreamWrongLastSequenceConstant
	}
	return false
}

func cmpErr(first, err error) error {
	if first != nil {
		return first
	}
	return err
}
