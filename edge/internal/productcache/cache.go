package productcache

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/omnisync/omnisync/shared/events"
)

// DefaultStaleAfter is how old the last catch-up with the hub may be before
// a lookup says its stock may be stale (Options.StaleAfter).
const DefaultStaleAfter = 30 * time.Second

const (
	// format is the file layout's version; a file of another format is
	// emptied at Open (it is a cache: the down-sync fills it again).
	format = 1
	// lockTimeout is how long Open waits for bbolt's file lock.
	lockTimeout = time.Second
	// mmapSize is the address space reserved up front on 64-bit Unix, so
	// that a growing file rarely makes Apply wait for every running Lookup
	// to remap. A 100k-variant catalog with stock of four locations takes
	// well under half of it.
	mmapSize = 256 << 20
)

// Buckets of the file.
var (
	// bucketProducts: product id -> version (8 bytes) + ProductDoc JSON.
	bucketProducts = []byte("products")
	// bucketGTINs: GTIN-14 -> product id, 0x00, SKU.
	bucketGTINs = []byte("gtins")
	// bucketSKUs: SKU -> product id.
	bucketSKUs = []byte("skus")
	// bucketStock: stockKey(location, SKU) -> encodeStock.
	bucketStock = []byte("stock")
	// bucketReviews: product id -> version (8 bytes) + ReviewSummary JSON.
	bucketReviews = []byte("reviews")
	// bucketCartKeys: key id -> CartKeyDoc JSON: the public keys of cart
	// codes. Made when the first one arrives (caches older than it lack it).
	bucketCartKeys = []byte("cartkeys")
	// bucketRecs: product id -> version (8 bytes) + RecsDoc JSON (its
	// complements). Added after format 1's first release: load creates it
	// in a cache that lacks it.
	bucketRecs = []byte("recs")
	// bucketSurveys: survey id -> version (8 bytes) + SurveyDoc JSON: HQ's
	// survey definitions. Made when the first one arrives.
	bucketSurveys = []byte("surveys")
	// bucketMeta: the keys below.
	bucketMeta = []byte("meta")

	dataBuckets = [][]byte{bucketProducts, bucketGTINs, bucketSKUs, bucketStock, bucketReviews, bucketCartKeys, bucketRecs, bucketSurveys,
		bucketClosedCarts}
)

// Keys of bucketMeta.
var (
	keyFormat        = []byte("format")         // uint64
	keyLastSeq       = []byte("last_seq")       // uint64: the last stream sequence applied
	keyStreamCreated = []byte("stream_created") // int64 unix ns: the stream's creation time
	keySyncedAt      = []byte("synced_at")      // int64 unix ns: last known caught up with the hub
	keyTickAt        = []byte("tick_at")        // int64 unix ms: the hub's last tick applied
	keyLocations     = []byte("locations")      // JSON []string: locations whose stock is complete
	keyCounts        = []byte("counts")         // 5 x uint64: see counts
	keyBootstrap     = []byte("bootstrap")      // JSON bootstrap: a bootstrap's progress
)

// Options configures a cache.
type Options struct {
	// Path of the bbolt file, created 0600 (with its parent directories,
	// 0700) if missing.
	Path string
	// Store is this store's location id: its stock is "here".
	Store string
	// Nearby lists the stores whose stock a shopper is shown as "nearby".
	Nearby []string
	// Online is the online warehouse's location id ("" for none).
	Online string
	// StaleAfter is how old the last catch-up may be before lookups are
	// marked Stale; 0 means DefaultStaleAfter.
	StaleAfter time.Duration
	// Now is the wall clock (nil = time.Now). For tests.
	Now func() time.Time
	// Logger receives warnings about documents that cannot be read; nil
	// discards.
	Logger *slog.Logger

	lockTimeout time.Duration // 0 = lockTimeout; for tests
}

func (o Options) withDefaults() (Options, error) {
	if o.Path == "" {
		return o, fmt.Errorf("%w: path is required", ErrInvalidOption)
	}
	if err := events.ValidToken(o.Store); err != nil {
		return o, fmt.Errorf("%w: store %q: %v", ErrInvalidOption, o.Store, err)
	}
	switch {
	case o.StaleAfter < 0:
		return o, fmt.Errorf("%w: stale-after must be >= 0, got %v", ErrInvalidOption, o.StaleAfter)
	case o.StaleAfter == 0:
		o.StaleAfter = DefaultStaleAfter
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.lockTimeout <= 0 {
		o.lockTimeout = lockTimeout
	}
	// Nearby as the view needs it: no repeats, not here, not online.
	var nearby []string
	for _, n := range o.Nearby {
		if n != "" && n != o.Store && n != o.Online && !slices.Contains(nearby, n) {
			nearby = append(nearby, n)
		}
	}
	o.Nearby = nearby
	return o, nil
}

// Cache is a store agent's product cache. It is safe for concurrent use.
//
// Locks: writeMu before mu. writeMu is held across every write transaction
// and the update of st that follows it, so st changes in commit order; mu
// guards st for quick readers (Stats). Lookup takes neither.
type Cache struct {
	db   *bolt.DB
	opts Options
	log  *slog.Logger
	// locations are Store, Nearby and Online: the stock the cache keeps.
	locations []string
	inScope   map[string]bool

	writeMu sync.Mutex
	mu      sync.Mutex
	st      state

	applied, ignored, rejected atomic.Uint64
	closed                     atomic.Bool
	closeOnce                  sync.Once
	closeErr                   error

	// pruned is when Apply last dropped expired closed carts (unix ns).
	pruned atomic.Int64
}

// state mirrors bucketMeta.
type state struct {
	lastSeq  uint64
	created  time.Time
	syncedAt time.Time
	tickAt   time.Time
	held     []string // locations whose stock is complete up to lastSeq, sorted
	n        counts
	bytes    int64
	boot     bootstrap
}

// bootstrap is the progress of an empty cache's first reading of the
// stream, one subject filter at a time, up to UpTo (see ApplyPass).
type bootstrap struct {
	UpTo uint64            `json:"up_to,omitempty"`
	Read map[string]uint64 `json:"read,omitempty"`
}

// counts are the number of keys in each data bucket, kept in the same
// transactions that change them.
type counts struct {
	products, skus, gtins, stock, reviews int64
}

// Stats is a snapshot of a cache.
type Stats struct {
	// Products, Variants (SKUs), GTINs, StockPositions and Reviews count
	// what the cache holds.
	Products, Variants, GTINs, StockPositions, Reviews int64
	// LastSeq is the stream sequence of the last message applied; the
	// down-sync resumes after it. 0 for an empty cache.
	LastSeq uint64
	// StreamCreated identifies the stream the cache was filled from (its
	// creation time); zero until SetStream.
	StreamCreated time.Time
	// SyncedAt is when the cache was last known to be caught up with the
	// hub (zero: never since it was created or reset).
	SyncedAt time.Time
	// HubTick is the time of the hub's last liveness tick applied.
	HubTick time.Time
	// BootstrapUpTo and BootstrapRead are the progress of a bootstrap
	// (LastSeq 0): the stream sequence it reads up to, and how far each
	// subject filter has been read (see ApplyPass). Zero and nil otherwise.
	BootstrapUpTo uint64
	BootstrapRead map[string]uint64
	// Bytes is the size of the file's data.
	Bytes int64
	// Locations are the locations whose stock the cache holds completely;
	// Missing are configured ones that still need reading from the start
	// of the stream (see MissingLocations).
	Locations, Missing []string
	// Applied, Ignored and Rejected count, since Open, the messages
	// applied, ignored as older than the document held, and rejected as
	// unreadable (bad key or document).
	Applied, Ignored, Rejected uint64
}

// Open opens (or creates) the cache file.
func Open(opts Options) (*Cache, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(opts.Path), 0o700); err != nil {
		return nil, fmt.Errorf("productcache: create directory: %w", err)
	}
	bo := &bolt.Options{Timeout: opts.lockTimeout}
	if runtime.GOOS != "windows" && strconv.IntSize == 64 {
		bo.InitialMmapSize = mmapSize
	}
	db, err := bolt.Open(opts.Path, 0o600, bo)
	switch {
	case errors.Is(err, bolt.ErrTimeout):
		return nil, fmt.Errorf("%w: %s: no lock after %s; is another omni-edge running with this data dir?",
			ErrLocked, opts.Path, opts.lockTimeout)
	case err != nil:
		return nil, fmt.Errorf("productcache: open %s: %w (the file may be deleted: it is rebuilt from the hub)", opts.Path, err)
	}
	c := &Cache{db: db, opts: opts, log: opts.Logger, inScope: map[string]bool{}}
	for _, l := range append(append([]string{opts.Store}, opts.Nearby...), opts.Online) {
		if l != "" && !c.inScope[l] {
			c.inScope[l] = true
			c.locations = append(c.locations, l)
		}
	}
	if err := c.load(); err != nil {
		db.Close()
		return nil, fmt.Errorf("productcache: %s: %w", opts.Path, err)
	}
	return c, nil
}

// load reads the meta bucket, creating or emptying the file when it is new
// or of another format, and drops the stock of locations no longer
// configured.
func (c *Cache) load() error {
	return c.db.Update(func(tx *bolt.Tx) error {
		mb := tx.Bucket(bucketMeta)
		if mb == nil || getU64(mb, keyFormat) != format {
			if mb != nil {
				c.log.Warn("product cache has another format: emptying it", "format", getU64(mb, keyFormat), "want", format)
			}
			st, err := c.reset(tx)
			c.st = st
			return err
		}
		st, err := readState(mb)
		if err != nil {
			return err
		}
		if _, err := tx.CreateBucketIfNotExists(bucketRecs); err != nil {
			return err
		}
		if st.lastSeq == 0 && st.n.stock == 0 {
			// Nothing read yet: the bootstrap brings every location.
			st.held = slices.Sorted(slices.Values(c.locations))
		}
		var keep []string
		for _, l := range st.held {
			if c.inScope[l] {
				keep = append(keep, l)
				continue
			}
			n, err := dropLocation(tx.Bucket(bucketStock), l)
			if err != nil {
				return err
			}
			st.n.stock -= n
			c.log.Info("dropped the stock of a location no longer configured", "location", l, "positions", n)
		}
		st.held = keep
		st.bytes = tx.Size()
		c.st = st
		return writeState(mb, &st)
	})
}

// reset empties every bucket and writes a fresh meta. Used by load and Reset.
func (c *Cache) reset(tx *bolt.Tx) (state, error) {
	for _, name := range append(slices.Clone(dataBuckets), bucketMeta) {
		if tx.Bucket(name) != nil {
			if err := tx.DeleteBucket(name); err != nil {
				return state{}, err
			}
		}
		if _, err := tx.CreateBucket(name); err != nil {
			return state{}, err
		}
	}
	mb := tx.Bucket(bucketMeta)
	if err := putU64(mb, keyFormat, format); err != nil {
		return state{}, err
	}
	st := state{held: slices.Sorted(slices.Values(c.locations)), bytes: tx.Size()}
	return st, writeState(mb, &st)
}

// dropLocation deletes every stock position of location.
func dropLocation(b *bolt.Bucket, location string) (int64, error) {
	prefix := stockPrefix(location)
	var keys [][]byte
	c := b.Cursor()
	for k, _ := c.Seek(prefix); k != nil && hasPrefix(k, prefix); k, _ = c.Next() {
		keys = append(keys, slices.Clone(k))
	}
	for _, k := range keys {
		if err := b.Delete(k); err != nil {
			return 0, err
		}
	}
	return int64(len(keys)), nil
}

// update runs fn in a write transaction on a copy of the state, and makes
// the copy current once the transaction has committed.
func (c *Cache) update(ctx context.Context, fn func(tx *bolt.Tx, st *state) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if c.closed.Load() {
		return ErrClosed
	}
	c.writeMu.Lock()
	defer c.writeMu.Unlock()
	c.mu.Lock()
	st := c.st
	st.held = slices.Clone(st.held)
	st.boot.Read = maps.Clone(st.boot.Read)
	c.mu.Unlock()
	err := c.db.Update(func(tx *bolt.Tx) error {
		if err := fn(tx, &st); err != nil {
			return err
		}
		st.bytes = tx.Size()
		return writeState(tx.Bucket(bucketMeta), &st)
	})
	if err != nil {
		return closedErr(err)
	}
	c.mu.Lock()
	c.st = st
	c.mu.Unlock()
	return nil
}

// Reset empties the cache: every document, the stream sequence and
// identity, and synced_at. The down-sync calls it when the stream it was
// filled from is gone (recreated), then bootstraps again.
func (c *Cache) Reset(ctx context.Context) error {
	return c.update(ctx, func(tx *bolt.Tx, st *state) error {
		fresh, err := c.reset(tx)
		*st = fresh
		return err
	})
}

// SetStream records the identity (creation time) of the stream the cache
// is filled from. The down-sync compares it with the stream's before it
// resumes: another identity means the stream was recreated and the cache
// must be Reset.
func (c *Cache) SetStream(ctx context.Context, created time.Time) error {
	return c.update(ctx, func(_ *bolt.Tx, st *state) error {
		st.created = created
		return nil
	})
}

// Locations are the locations whose stock the cache keeps: Options.Store,
// Nearby and Online, in that order. The down-sync reads exactly these.
func (c *Cache) Locations() []string { return slices.Clone(c.locations) }

// MissingLocations are configured locations whose stock the cache does not
// hold completely: they were added to the configuration after the cache had
// been filled, so their positions older than Stats().LastSeq were never
// read. The down-sync reads their stock from the start of the stream and
// then calls MarkLocationsComplete. Empty for a new or reset cache.
func (c *Cache) MissingLocations() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.missing()
}

func (c *Cache) missing() []string {
	var out []string
	for _, l := range c.locations {
		if !slices.Contains(c.st.held, l) {
			out = append(out, l)
		}
	}
	return out
}

// MarkLocationsComplete records that the stock of locations has been read
// up to Stats().LastSeq.
func (c *Cache) MarkLocationsComplete(ctx context.Context, locations []string) error {
	return c.update(ctx, func(_ *bolt.Tx, st *state) error {
		for _, l := range locations {
			if c.inScope[l] && !slices.Contains(st.held, l) {
				st.held = append(st.held, l)
			}
		}
		slices.Sort(st.held)
		return nil
	})
}

// Stats returns a snapshot of the cache's counters; it reads no file.
func (c *Cache) Stats() Stats {
	c.mu.Lock()
	defer c.mu.Unlock()
	st := c.st
	return Stats{
		Products: st.n.products, Variants: st.n.skus, GTINs: st.n.gtins,
		StockPositions: st.n.stock, Reviews: st.n.reviews,
		LastSeq: st.lastSeq, StreamCreated: st.created, SyncedAt: st.syncedAt, HubTick: st.tickAt,
		BootstrapUpTo: st.boot.UpTo, BootstrapRead: maps.Clone(st.boot.Read),
		Bytes:     st.bytes,
		Locations: slices.Clone(st.held), Missing: c.missing(),
		Applied: c.applied.Load(), Ignored: c.ignored.Load(), Rejected: c.rejected.Load(),
	}
}

// Close waits for running transactions and closes the file. It is
// idempotent; later calls return the first call's result.
func (c *Cache) Close() error {
	c.closeOnce.Do(func() {
		c.closed.Store(true)
		c.writeMu.Lock()
		defer c.writeMu.Unlock()
		c.closeErr = c.db.Close()
	})
	return c.closeErr
}

// closedErr maps bbolt's "database not open" (a call racing Close) to
// ErrClosed.
func closedErr(err error) error {
	if errors.Is(err, bolt.ErrDatabaseNotOpen) {
		return ErrClosed
	}
	return err
}

func readState(mb *bolt.Bucket) (state, error) {
	st := state{
		lastSeq:  getU64(mb, keyLastSeq),
		created:  fromUnixNano(int64(getU64(mb, keyStreamCreated))),
		syncedAt: fromUnixNano(int64(getU64(mb, keySyncedAt))),
	}
	if ms := int64(getU64(mb, keyTickAt)); ms != 0 {
		st.tickAt = time.UnixMilli(ms)
	}
	if v := mb.Get(keyLocations); v != nil {
		if err := json.Unmarshal(v, &st.held); err != nil {
			return st, fmt.Errorf("meta %s: %w", keyLocations, err)
		}
	}
	if v := mb.Get(keyBootstrap); v != nil {
		if err := json.Unmarshal(v, &st.boot); err != nil {
			return st, fmt.Errorf("meta %s: %w", keyBootstrap, err)
		}
	}
	if v := mb.Get(keyCounts); len(v) == 5*8 {
		n := []*int64{&st.n.products, &st.n.skus, &st.n.gtins, &st.n.stock, &st.n.reviews}
		for i, p := range n {
			*p = int64(binary.BigEndian.Uint64(v[i*8:]))
		}
	}
	return st, nil
}

func writeState(mb *bolt.Bucket, st *state) error {
	held, err := json.Marshal(st.held)
	if err != nil {
		return err
	}
	boot, err := json.Marshal(st.boot)
	if err != nil {
		return err
	}
	cnt := make([]byte, 0, 5*8)
	for _, n := range []int64{st.n.products, st.n.skus, st.n.gtins, st.n.stock, st.n.reviews} {
		cnt = binary.BigEndian.AppendUint64(cnt, uint64(n))
	}
	var tick int64
	if !st.tickAt.IsZero() {
		tick = st.tickAt.UnixMilli()
	}
	return errors.Join(
		putU64(mb, keyLastSeq, st.lastSeq),
		putU64(mb, keyStreamCreated, uint64(unixNano(st.created))),
		putU64(mb, keySyncedAt, uint64(unixNano(st.syncedAt))),
		putU64(mb, keyTickAt, uint64(tick)),
		mb.Put(keyLocations, held),
		mb.Put(keyBootstrap, boot),
		mb.Put(keyCounts, cnt),
	)
}

func getU64(b *bolt.Bucket, k []byte) uint64 {
	v := b.Get(k)
	if len(v) != 8 {
		return 0
	}
	return binary.BigEndian.Uint64(v)
}

func putU64(b *bolt.Bucket, k []byte, v uint64) error {
	return b.Put(k, binary.BigEndian.AppendUint64(nil, v))
}

func unixNano(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func fromUnixNano(ns int64) time.Time {
	if ns == 0 {
		return time.Time{}
	}
	return time.Unix(0, ns).UTC()
}

func hasPrefix(b, prefix []byte) bool {
	return len(b) >= len(prefix) && string(b[:len(prefix)]) == string(prefix)
}
