// Package downpub publishes what stores need to know into the down-sync
// bucket (see shared/downsync): catalog products, review summaries, stock
// positions and a liveness tick.
//
// It exists because the hub's books are in SQL and the stores read
// JetStream: something must carry every committed change across, promptly
// (a stock change reaches a connected store within a second) and without
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
//     flush, not once per sale).
//   - A replica that dies between its commit and its publish leaves the
//     change unpublished; every replica therefore sweeps the store for
//     changes of the last SweepLookback every SweepEvery, and at start-up
//     compares everything. The mirror makes both cheap: only real
//     differences are published.
package downpub

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/sync/errgroup"

	"github.com/omnisync/omnisync/cloud/internal/inventory"
	"github.com/omnisync/omnisync/cloud/internal/store"
	"github.com/omnisync/omnisync/shared/downsync"
)

// VersionHeader carries a document's version on its message, so mirrors can
// read versions without payloads.
const VersionHeader = "Omni-Version"

// Store is what the publisher reads.
type Store interface {
	StockDocs(ctx context.Context, keys []inventory.Key) ([]downsync.StockDoc, error)
	ProductDocs(ctx context.Context, ids []string) ([]downsync.ProductDoc, error)
	ReviewSummaries(ctx context.Context, ids []string) ([]downsync.ReviewSummary, error)
	ChangedStock(ctx context.Context, since store.Cursor, limit int) ([]inventory.Key, store.Cursor, error)
	ChangedProducts(ctx context.Context, since store.Cursor, limit int) ([]string, store.Cursor, error)
	ChangedReviews(ctx context.Context, since store.Cursor, limit int) ([]string, store.Cursor, error)
}

// Options configures a Publisher.
type Options struct {
	JS    jetstream.JetStream
	KV    jetstream.KeyValue
	Store Store
	// Hub names this replica in ticks.
	Hub    string
	Logger *slog.Logger
	// FlushEvery is how long a change may wait to be coalesced (default
	// 100ms); SweepEvery and SweepLookback tune the sweep (30s, 2m).
	FlushEvery, SweepEvery, SweepLookback time.Duration
	// TickEvery is how often the tick is written (downsync.TickInterval).
	TickEvery time.Duration
	// Page bounds the documents read and published at once (default 1000).
	Page int
}

// Stats counts what the publisher did.
type Stats struct {
	Published, Skipped, Conflicts, Errors uint64
	// Dirty is how many changes wait to be published.
	Dirty int
	// MirrorKeys is how many keys the bucket holds, as mirrored.
	MirrorKeys int
	// Synced is false until the start-up comparison is done.
	Synced bool
}

type entry struct {
	rev     uint64
	version int64
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
	wake     chan struct{}

	mmu         sync.Mutex
	mirror      map[string]entry
	mirrorReady chan struct{}
	readyOnce   sync.Once

	published, skipped, conflicts, errs atomic.Uint64
	synced                              atomic.Bool
}

// New checks the options; nothing runs until Run.
func New(o Options) (*Publisher, error) {
	if o.JS == nil || o.KV == nil || o.Store == nil {
		return nil, errors.New("downpub: JS, KV and Store are required")
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.FlushEvery <= 0 {
		o.FlushEvery = 100 * time.Millisecond
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
	return &Publisher{
		o: o, log: o.Logger,
		stock: map[inventory.Key]struct{}{}, products: map[string]struct{}{}, reviews: map[string]struct{}{},
		wake: make(chan struct{}, 1), mirror: map[string]entry{}, mirrorReady: make(chan struct{}),
	}, nil
}

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
func (p *Publisher) Products(ids []string) {
	if len(ids) == 0 {
		return
	}
	p.mu.Lock()
	for _, id := range ids {
		p.products[id] = struct{}{}
	}
	p.mu.Unlock()
	p.poke()
}

// Reviews marks review summaries changed.
func (p *Publisher) Reviews(ids []string) {
	if len(ids) == 0 {
		return
	}
	p.mu.Lock()
	for _, id := range ids {
		p.reviews[id] = struct{}{}
	}
	p.mu.Unlock()
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
	dirty := len(p.stock) + len(p.products) + len(p.reviews)
	p.mu.Unlock()
	p.mmu.Lock()
	keys := len(p.mirror)
	p.mmu.Unlock()
	return Stats{
		Published: p.published.Load(), Skipped: p.skipped.Load(), Conflicts: p.conflicts.Load(), Errors: p.errs.Load(),
		Dirty: dirty, MirrorKeys: keys, Synced: p.synced.Load(),
	}
}

// Run mirrors the bucket, writes ticks and publishes changes until ctx
// ends.
func (p *Publisher) Run(ctx context.Context) error {
	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error { return p.runMirror(ctx) })
	g.Go(func() error { return p.runTicks(ctx) })
	g.Go(func() error { return p.runPublish(ctx) })
	err := g.Wait()
	if ctx.Err() != nil {
		return nil
	}
	return err
}

func (p *Publisher) runTicks(ctx context.Context) error {
	t := time.NewTicker(p.o.TickEvery)
	defer t.Stop()
	for {
		b, _ := json.Marshal(downsync.Tick{AtMS: time.Now().UnixMilli(), Hub: p.o.Hub})
		pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		if _, err := p.o.KV.Put(pctx, downsync.TickKey, b); err != nil && ctx.Err() == nil {
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

// runMirror keeps p.mirror equal to the bucket's (key → revision,
// version). The ordered consumer recreates itself after disconnects, from
// where it was; if it fails outright the mirror starts over.
func (p *Publisher) runMirror(ctx context.Context) error {
	backoff := 250 * time.Millisecond
	for ctx.Err() == nil {
		err := p.mirrorOnce(ctx)
		if ctx.Err() != nil {
			return nil
		}
		p.log.Warn("downpub: bucket mirror stopped; restarting", "err", err, "in", backoff)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 10*time.Second)
	}
	return nil
}

func (p *Publisher) mirrorOnce(ctx context.Context) error {
	cons, err := p.o.JS.OrderedConsumer(ctx, downsync.Stream, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{downsync.SubjectPrefix + ">"},
		DeliverPolicy:  jetstream.DeliverLastPerSubjectPolicy,
		HeadersOnly:    true,
	})
	if err != nil {
		return fmt.Errorf("mirror consumer: %w", err)
	}
	info, err := cons.Info(ctx)
	if err != nil {
		return fmt.Errorf("mirror consumer info: %w", err)
	}
	if info.NumPending == 0 {
		p.readyOnce.Do(func() { close(p.mirrorReady) })
	}
	it, err := cons.Messages(jetstream.PullMaxMessages(2000))
	if err != nil {
		return fmt.Errorf("mirror messages: %w", err)
	}
	defer it.Stop()
	go func() { <-ctx.Done(); it.Stop() }()
	for {
		msg, err := it.Next()
		if err != nil {
			return err
		}
		md, err := msg.Metadata()
		if err != nil {
			continue
		}
		key := msg.Subject()[len(downsync.SubjectPrefix):]
		op := msg.Headers().Get("KV-Operation")
		v, _ := strconv.ParseInt(msg.Headers().Get(VersionHeader), 10, 64)
		p.mmu.Lock()
		if e, ok := p.mirror[key]; !ok || md.Sequence.Stream > e.rev {
			if op == "DEL" || op == "PURGE" {
				p.mirror[key] = entry{rev: md.Sequence.Stream}
			} else {
				p.mirror[key] = entry{rev: md.Sequence.Stream, version: v}
			}
		}
		p.mmu.Unlock()
		if md.NumPending == 0 {
			p.readyOnce.Do(func() { close(p.mirrorReady) })
		}
	}
}

func (p *Publisher) runPublish(ctx context.Context) error {
	select {
	case <-ctx.Done():
		return nil
	case <-p.mirrorReady:
	}
	// Start-up: compare everything the store has with the bucket.
	for ctx.Err() == nil {
		if err := p.sweep(ctx, store.Cursor{}); err != nil {
			p.log.Warn("downpub: start-up comparison failed; retrying", "err", err)
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(2 * time.Second):
			}
			continue
		}
		break
	}
	p.synced.Store(true)
	p.log.Info("downpub: bucket in step with the store", "keys", p.Stats().MirrorKeys)

	flush := time.NewTicker(p.o.FlushEvery)
	defer flush.Stop()
	sweep := time.NewTicker(p.o.SweepEvery)
	defer sweep.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-flush.C:
		case <-p.wake:
		case <-sweep.C:
			since := store.Cursor{MS: time.Now().Add(-p.o.SweepLookback).UnixMilli()}
			if err := p.sweep(ctx, since); err != nil && ctx.Err() == nil {
				p.log.Warn("downpub: sweep failed", "err", err)
			}
		}
		if err := p.flush(ctx); err != nil && ctx.Err() == nil {
			p.log.Warn("downpub: publish failed; will retry", "err", err)
		}
	}
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
	}{{p.o.Store.ChangedProducts, p.Products}, {p.o.Store.ChangedReviews, p.Reviews}}
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

// doc is one document ready to publish.
type doc struct {
	key     string
	version int64
	data    []byte
	// remark puts the change back in the dirty set if publishing fails.
	remark func()
}

// flush publishes the dirty changes, at most Page documents of each kind
// per round, until nothing is dirty. A change that cannot be published now
// stays dirty.
func (p *Publisher) flush(ctx context.Context) error {
	for {
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
		p.mu.Unlock()
		if len(keys)+len(products)+len(reviews) == 0 {
			return nil
		}
		docs, err := p.load(ctx, keys, products, reviews)
		if err != nil {
			p.Stock(keys)
			p.remarkIDs(products, reviews)
			return err
		}
		if err := p.publish(ctx, docs); err != nil {
			return err
		}
	}
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

func (p *Publisher) remarkIDs(products, reviews []string) {
	p.mu.Lock()
	for _, id := range products {
		p.products[id] = struct{}{}
	}
	for _, id := range reviews {
		p.reviews[id] = struct{}{}
	}
	p.mu.Unlock()
}

func (p *Publisher) load(ctx context.Context, keys []inventory.Key, products, reviews []string) ([]doc, error) {
	var docs []doc
	stock, err := p.o.Store.StockDocs(ctx, keys)
	if err != nil {
		return nil, err
	}
	for _, d := range stock {
		b, _ := json.Marshal(d)
		k := inventory.Key{SKU: d.SKU, Location: d.Location}
		docs = append(docs, doc{downsync.StockKey(d.Location, d.SKU), d.Version, b, func() { p.Stock([]inventory.Key{k}) }})
	}
	prods, err := p.o.Store.ProductDocs(ctx, products)
	if err != nil {
		return nil, err
	}
	for _, d := range prods {
		b, _ := json.Marshal(d)
		id := d.ID
		docs = append(docs, doc{downsync.ProductKey(d.ID), d.Version, b, func() { p.remarkIDs([]string{id}, nil) }})
	}
	sums, err := p.o.Store.ReviewSummaries(ctx, reviews)
	if err != nil {
		return nil, err
	}
	for _, d := range sums {
		b, _ := json.Marshal(d)
		id := d.ProductID
		docs = append(docs, doc{downsync.ReviewKey(d.ProductID), d.Version, b, func() { p.remarkIDs(nil, []string{id}) }})
	}
	return docs, nil
}

// publish sends the documents newer than the bucket's, asynchronously, each
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
		e := p.known(d.key)
		if e.version >= d.version {
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
			p.learn(s.d.key, entry{rev: ack.Sequence, version: s.d.version})
			p.published.Add(1)
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

// resolve handles a compare-and-set conflict: another replica wrote the key
// since the mirror saw it. Publish only if ours is still newer.
func (p *Publisher) resolve(ctx context.Context, d doc) error {
	for attempt := 0; attempt < 5; attempt++ {
		cur, err := p.o.KV.Get(ctx, d.key)
		var e entry
		switch {
		case errors.Is(err, jetstream.ErrKeyNotFound):
			// Deleted (a marker remains) or never written.
			if cur != nil {
				e.rev = cur.Revision()
			}
		case err != nil:
			return err
		default:
			var v struct {
				Version int64 `json:"version"`
			}
			_ = json.Unmarshal(cur.Value(), &v)
			e = entry{rev: cur.Revision(), version: v.Version}
		}
		p.learn(d.key, e)
		if e.version >= d.version {
			p.skipped.Add(1)
			return nil
		}
		ack, err := p.o.JS.PublishMsg(ctx, p.msg(d), jetstream.WithExpectLastSequencePerSubject(e.rev))
		if err == nil {
			p.learn(d.key, entry{rev: ack.Sequence, version: d.version})
			p.published.Add(1)
			return nil
		}
		if !isConflict(err) {
			return err
		}
		p.conflicts.Add(1)
	}
	return fmt.Errorf("downpub: %s: still conflicting after retries", d.key)
}

func (p *Publisher) msg(d doc) *nats.Msg {
	m := nats.NewMsg(downsync.Subject(d.key))
	m.Data = d.data
	m.Header.Set(VersionHeader, strconv.FormatInt(d.version, 10))
	return m
}

func (p *Publisher) known(key string) entry {
	p.mmu.Lock()
	defer p.mmu.Unlock()
	return p.mirror[key]
}

func (p *Publisher) learn(key string, e entry) {
	p.mmu.Lock()
	if cur, ok := p.mirror[key]; !ok || e.rev > cur.rev {
		p.mirror[key] = e
	}
	p.mmu.Unlock()
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
