package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver

	"github.com/omnisync/omnisync/cloud/internal/identity"
	"github.com/omnisync/omnisync/cloud/internal/inventory"
	"github.com/omnisync/omnisync/cloud/internal/pii"
	"github.com/omnisync/omnisync/shared/events"
)

// Errors callers branch on.
var (
	// ErrInvalid is returned (wrapped) when an argument cannot be stored:
	// an empty SKU or location, a negative safety stock, a bad DSN.
	ErrInvalid = errors.New("store: invalid argument")
)

// MaxAhead bounds the dedup state of one (store, device, epoch): at most
// this many seqs above the contiguous watermark are remembered. An item
// whose seq is beyond watermark+MaxAhead is deferred (BatchResult.Deferred),
// not processed, until the gap below it fills.
const MaxAhead = 16384

// Store is the hub's SQL store. It is safe for concurrent use, and several
// Stores (hub replicas) may share one PostgreSQL database.
type Store struct {
	// custDigests is this replica's filter of the identifier digests the
	// hub may hold (customer_digests.go).
	custDigests digestFilter
	// interestsExpired is when AddInterest last expired interests (Unix
	// ms; interest.go).
	interestsExpired atomic.Int64
	d                dialect
	w                *sql.DB // writes; on SQLite a single connection
	r                *sql.DB // reads; on SQLite read-only connections, on PostgreSQL w
	pool             *pgxpool.Pool
	log              *slog.Logger
	now              func() time.Time
	// maxRetries bounds the retries of a transaction that lost a deadlock
	// or serialization conflict.
	maxRetries int
	// beforeCommit, when set (tests only), runs just before ApplyBatch
	// commits; an error aborts the transaction as a database error would.
	beforeCommit func() error
	// beforeFoldCommit, when set (tests only), runs when FoldBaskets has
	// read its baskets and written their counts, before it commits; an
	// error aborts the fold as a crash or a lost connection would.
	beforeFoldCommit func() error
	// mutate, when set (tests only), changes what the stock applier hands
	// the rules for a position: a deliberate bug, to show the property
	// tests catch it.
	mutate func(c *inventory.Change, deltasAfter *int64)
	// appliers keep the aggregates of the books, in the order they run.
	appliers []applier
	// rules are the chain's inventory rules (SetOnlineLocation).
	rules     inventory.Rules
	positions positionCache
	// known are the keys of rows seen committed in the tables batches
	// insert into if missing (known.go).
	known knownRows
	// states caches positions' states (positions.go); nil on a SQLite
	// store without its lock file. stockMode paces writing from it on
	// PostgreSQL, and stockRedos counts the batches redone because a
	// cached state was stale (apply_stock.go).
	states     *stateCache
	stockMode  stockMode
	stockRedos atomic.Int64
	settings   settingsCache
	// unlock releases the SQLite lock file.
	unlock func()
	// stopCheckpoints ends the SQLite store's checkpoints (openSQLite).
	stopCheckpoints func()
	// importing is set while this process holds the catalog import lock
	// (LockCatalog).
	importing atomic.Bool
	// catalogSeen is set once a catalog has been seen imported: the
	// exceptions gate's checks apply from then on.
	catalogSeen atomic.Bool
	// variants caches the SKUs known to be in the catalog.
	variants variantCache
	// observer, when set, times the steps of ApplyBatch; stepAt is when
	// the current step began (ApplyBatch calls come from one goroutine at
	// a time per Store when observed).
	observer ApplyObserver
	stepAt   time.Time
	// custKeys index and seal customers' personal data (SetCustomerKeys);
	// custPolicy is the identity graph's policy.
	custKeys   *pii.Keyring
	custPolicy identity.Policy
	// custOrderedSince is identity.Policy.OrderedSince, the hub's own
	// (cust_master_ids): the graphs it loads mint master ids with it.
	custOrderedSince int64
	// custHooks are called with the subjects of a customer view
	// (AddCustomerHook).
	custHooks []CustomerHook
	custErase []CustomerEraser
}

// Open opens (creating and migrating as needed) the store named by dsn:
// "postgres://..." or "postgresql://..." for PostgreSQL (pgx pool settings
// such as pool_max_conns and search_path may be given in the DSN), and
// "sqlite:PATH" or a plain file path for SQLite. logger may be nil.
//
// SQLite runs in WAL mode with synchronous=FULL (a committed batch survives
// power loss, since committing is how the hub acknowledges events), a busy
// timeout, one writer connection and a few read-only ones. ":memory:" is
// not supported: every connection would see its own database.
func Open(ctx context.Context, dsn string, logger *slog.Logger) (*Store, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	s := &Store{log: logger, now: time.Now, maxRetries: 8, appliers: newAppliers(),
		rules: inventory.Rules{Online: inventory.DefaultOnline}, custPolicy: identity.DefaultPolicy()}
	var err error
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		err = s.openPostgres(ctx, dsn)
	} else {
		err = s.openSQLite(ctx, dsn)
	}
	if err != nil {
		s.Close()
		return nil, err
	}
	if err := s.migrate(ctx); err != nil {
		s.Close()
		return nil, fmt.Errorf("store: migrate %s: %w", s.d.name, err)
	}
	if err := s.loadMasterIDs(ctx); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

func (s *Store) openPostgres(ctx context.Context, dsn string) error {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return fmt.Errorf("%w: postgres dsn: %v", ErrInvalid, err)
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return fmt.Errorf("store: postgres pool: %w", err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return fmt.Errorf("store: postgres: %w", err)
	}
	s.d, s.pool = postgres, pool
	s.states = newStateCache(maxCachedPositions)
	s.w = stdlib.OpenDBFromPool(pool)
	s.r = s.w
	return nil
}

func (s *Store) openSQLite(ctx context.Context, dsn string) error {
	path := strings.TrimPrefix(dsn, "sqlite:")
	if strings.HasPrefix(path, "//") {
		path = path[2:]
	}
	if path == "" || path == ":memory:" || strings.ContainsRune(path, '?') {
		return fmt.Errorf("%w: sqlite path %q (a file path without '?')", ErrInvalid, path)
	}
	s.d = sqlite
	unlock, err := lockSQLite(path)
	if err != nil {
		return err
	}
	if unlock != nil {
		s.unlock = unlock
		s.states = newStateCache(maxCachedPositions)
	}
	// mmap_size: the ledger outgrows any page cache during a large
	// catch-up, and every cache miss was a pread through the pure-Go
	// SQLite's libc layer; reading the file through a mapping shares the
	// OS page cache instead (a 1M-event catch-up went from 25.6 to 20.6 s).
	// The price, as SQLite documents, is that an I/O error while reading
	// becomes a crash instead of an error; the hub restarts and resumes
	// from JetStream, losing nothing. temp_store(MEMORY): a multi-row
	// INSERT keeps a statement journal of every page it changes, and on a
	// large ledger that is thousands of pages a batch written to a temp
	// file (a profile at a 3M-event ledger showed those writes among the
	// top syscalls).
	//
	// The mapping is as large as this SQLite allows (sqliteMaxMmap) and
	// the writer's cache 1 GiB: a batch writes about one ledger page per
	// position it touches, the newest of that position, so at a ledger of
	// some millions of events a 20,000-event batch dirties some 20,000
	// pages (80 MB). With 64 MB of cache those spilled in the middle of
	// the transaction and were read again, and with a 1 GB mapping the
	// part of a 1.1 GB ledger past it was read through pread: at a
	// 10M-event ledger (BenchmarkApplyHistory) the ledger insert took
	// about half the time with these (145 against 77 µs an event, side by
	// side on a busy machine). The cache is a bound, not an allocation: it
	// holds the pages the writer touched, at most the database's size.
	w, err := sql.Open("sqlite", path+"?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_pragma=synchronous(FULL)&_pragma=cache_size(-1048576)&_pragma=temp_store(MEMORY)&_pragma=wal_autocheckpoint(65536)&_pragma=mmap_size("+sqliteMaxMmap+")&_txlock=immediate")
	if err != nil {
		return fmt.Errorf("store: sqlite: %w", err)
	}
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxLifetime(0)
	w.SetConnMaxIdleTime(0)
	if err := w.PingContext(ctx); err != nil {
		w.Close()
		return fmt.Errorf("store: sqlite %s: %w", path, err)
	}
	r, err := sql.Open("sqlite", path+"?_pragma=busy_timeout(10000)&_pragma=cache_size(-16384)&_pragma=mmap_size("+sqliteMaxMmap+")&_pragma=query_only(1)")
	if err != nil {
		w.Close()
		return fmt.Errorf("store: sqlite: %w", err)
	}
	r.SetMaxOpenConns(4)
	r.SetMaxIdleConns(4)
	s.w, s.r = w, r
	// Checkpoints run beside the writer, not in its commits: at a large
	// ledger a batch's commit wrote its ~20,000 pages to the WAL and then,
	// the WAL past wal_autocheckpoint, again to their places in the file,
	// inside the apply. A PASSIVE checkpoint on a connection of its own
	// never blocks the writer; the writer's autocheckpoint (65536 pages,
	// 256 MB) is only the bound on the WAL should this one fall behind.
	// At a 10M-event ledger, side by side, the commit fell from 107 to
	// 60 µs an event and the rate rose by a third (BenchmarkApplyHistory).
	c, err := sql.Open("sqlite", path+"?_pragma=busy_timeout(10000)&_pragma=mmap_size("+sqliteMaxMmap+")")
	if err != nil {
		return fmt.Errorf("store: sqlite: %w", err)
	}
	c.SetMaxOpenConns(1)
	stop, done := make(chan struct{}), make(chan struct{})
	var once sync.Once // Close may be called more than once
	s.stopCheckpoints = func() {
		once.Do(func() {
			close(stop)
			<-done
			c.Close()
		})
	}
	go func() {
		defer close(done)
		// An idle WAL makes a checkpoint a few reads of its index.
		t := time.NewTicker(50 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				// A failed checkpoint is retried at the next tick, and the
				// writer's autocheckpoint bounds the WAL meanwhile.
				_, _ = c.Exec("PRAGMA wal_checkpoint(PASSIVE)")
			}
		}
	}()
	return nil
}

// sqliteMaxMmap is the largest mapping the SQLite build allows
// (SQLITE_MAX_MMAP_SIZE of modernc.org/sqlite, 0x7fff0000): SQLite lowers a
// larger mmap_size to it anyway.
const sqliteMaxMmap = "2147418112"

// Close releases the store's connections.
func (s *Store) Close() error {
	var err error
	if s.stopCheckpoints != nil {
		s.stopCheckpoints()
	}
	if s.r != nil && s.r != s.w {
		err = s.r.Close()
	}
	if s.w != nil {
		err = errors.Join(err, s.w.Close())
	}
	if s.pool != nil {
		s.pool.Close()
	}
	if s.unlock != nil {
		s.unlock()
	}
	return err
}

// maxCachedPositions bounds a store's cache of positions: about 150 bytes
// each, so some 40 MB at most. A chain with more positions than this
// reads the others from the table as it applies.
const maxCachedPositions = 1 << 18

// Dialect names the database: "sqlite" or "postgres".
func (s *Store) Dialect() string { return s.d.name }

// Item is one message for ApplyBatch.
type Item struct {
	// Env is the decoded envelope; Env.Origin must be usable for dedup.
	Env events.Envelope
	// Raw is the message as received, kept verbatim in dead letters (the
	// envelope re-encoded when empty).
	Raw []byte
	// Reject, when not empty, says the item must not be applied: it goes to
	// the dead letters with this reason, and still counts as processed for
	// dedup and the watermark.
	Reject string
	// Subject is where the message arrived (optional, kept in dead letters).
	Subject string
	// StreamSeq is the events stream's sequence of the message the item
	// came in (0: not from the stream). An item naming a customer records
	// it, so that the customer's erasure deletes the raw message from the
	// stream too (stream_erase.go).
	StreamSeq uint64
	// replay, when set, says the item is a held event or dead letter being
	// replayed (exceptions.go): it is not deduplicated by origin (its
	// origin was processed when it first came) but claimed, once, in the
	// transaction that applies it.
	replay *replaySource
}

// BatchResult says what ApplyBatch did.
type BatchResult struct {
	// Applied counts items applied now; Duplicates items already processed
	// before (or earlier in the batch); DeadLettered items parked in the
	// dead letters now.
	Applied, Duplicates, DeadLettered int
	// Held counts items held in the exception queue now (naming an
	// unknown SKU, GTIN or location).
	Held int
	// HeldStores are the stores whose exceptions those items joined (the
	// stores that sent them), sorted.
	HeldStores []string
	// Deferred lists (ascending) the indexes of items not processed because
	// their seq is more than MaxAhead above their device's watermark; the
	// caller redelivers them later. Not an error.
	Deferred []int
	// Watermarks holds, for every (store, device, epoch) in the batch, the
	// contiguous watermark after commit, sorted by store, device, epoch.
	Watermarks []Watermark
	// Positions lists the stock positions this batch changed, and
	// ReviewedProducts the products whose reviews it changed: what
	// down-sync must republish.
	Positions        []inventory.Key
	ReviewedProducts []string
	// RecProducts lists the products whose complements it changed (their
	// down-sync recommendations).
	RecProducts []string
	// Reservations lists the reservations it changed (their pickup
	// documents).
	Reservations []string
	// Carts lists the carts it changed.
	Carts []string
	// Customers lists the customers (master ids) whose views it changed:
	// the stores' customer cards to refresh. Sorted.
	Customers []string
	// Refused lists (ascending) the indexes of the items a gate refused
	// (dead-lettered, counted in DeadLettered): an online checkout of a
	// cart already checked out, say.
	Refused []int
}

// Watermark is how far one device epoch has been processed without gaps:
// every seq <= Seq is durably processed.
type Watermark struct {
	Store, Device string
	Epoch, Seq    uint64
}

// DeadLetter is a message the hub kept but could not apply.
type DeadLetter struct {
	ID                                            int64
	EventID, Store, Device, Kind, Subject, Reason string
	Epoch, Seq                                    uint64
	Payload                                       []byte
	At                                            time.Time
	// ReplayedAt is when a replay applied it (zero: not replayed), by
	// ReplayedBy.
	ReplayedAt time.Time
	ReplayedBy string
	// Sealed: the message may carry personal data and is kept sealed
	// (Payload is empty); only a replay opens it.
	Sealed bool
}

// Stock is one stock position.
type Stock struct {
	SKU, Location                       string
	OnHand, Reserved, Safety, Available int64
	// AsOf is the HLC wall time of the newest event applied to the
	// position (zero when none has been).
	AsOf time.Time
	// CountedAt is the stamp of the newest stock count of the position
	// (zero when it was never counted): its snapshot.
	CountedAt time.Time
	// CountMethod is how that count was taken (events.CountMethods; ""
	// unknown).
	CountMethod string
}

// StockQuery selects stock positions for ListStock.
type StockQuery struct {
	// Location, when set, keeps only that location; Locations, when not
	// nil, only those (a store manager's stores; empty keeps nothing).
	Location  string
	Locations []string
	// Below, when set, keeps only positions with available < *Below.
	Below *int64
	// AfterSKU and AfterLocation are a keyset cursor: only positions after
	// (AfterSKU, AfterLocation) in (sku, location) order. Pass the last row
	// of the previous page.
	AfterSKU, AfterLocation string
	// Limit bounds the rows returned: default 100, at most 10000.
	Limit int
	// Carried also lists, as positions at zero, the catalog variants a
	// location carries but holds no stock row for (never received, or
	// its row never written): a location carries every variant of a
	// product it has a position of, any size or colour. So a store
	// stocking a shirt in M and L shows its S as out of stock, the size
	// gap a merchandiser refills, while a product the store never had
	// any of stays off its lists.
	Carried bool
}

// Heartbeat is a device's periodic report of its sync state.
type Heartbeat struct {
	Store, Device, Version      string
	Epoch                       uint64
	Backlog                     int64
	OldestUnackedAge, ClockSkew time.Duration
	Connected                   bool
	// Unsynced are the sales the device holds unconfirmed.
	Unsynced UnsyncedSales
	// At is the hub's time of receipt (now when zero). An older heartbeat
	// than the one stored is ignored.
	At time.Time
}

// UnsyncedSales are the sales a device holds that the hub has not
// confirmed: the money a store would lose track of if the device died.
type UnsyncedSales struct {
	// Count of sales, their Value (minor units; lines without a price
	// count 0) and the age of the oldest, as of the heartbeat.
	Count, Value int64
	OldestAge    time.Duration
}

// AgeAt is the age at now of the oldest unsynced sale reported in a
// heartbeat received at heartbeat: it keeps ageing while the device is
// silent. 0 when there is none.
func (u UnsyncedSales) AgeAt(heartbeat, now time.Time) time.Duration {
	if u.Count == 0 {
		return 0
	}
	return u.OldestAge + max(0, now.Sub(heartbeat))
}

// Add returns u plus o (the oldest age the larger).
func (u UnsyncedSales) Add(o UnsyncedSales) UnsyncedSales {
	return UnsyncedSales{Count: u.Count + o.Count, Value: u.Value + o.Value, OldestAge: max(u.OldestAge, o.OldestAge)}
}

// DeviceStatus is what the hub knows of one device.
type DeviceStatus struct {
	Store, Device, Version string
	// Epoch is the device's current outbox epoch (from its latest
	// heartbeat, else the newest epoch it sent events from); Watermark is
	// that epoch's watermark.
	Epoch, Watermark uint64
	// EventsApplied counts the device's applied events over all epochs.
	EventsApplied, Backlog      int64
	OldestUnackedAge, ClockSkew time.Duration
	// Connected is as of the latest heartbeat.
	Connected bool
	// Unsynced are the sales the device held unconfirmed at its latest
	// heartbeat.
	Unsynced UnsyncedSales
	// LastHeartbeat is the hub time of the latest heartbeat; LastEventAt the
	// HLC wall of the newest applied event; LastAppliedAt the hub time of
	// the last batch that processed one of its events.
	LastHeartbeat, LastEventAt, LastAppliedAt time.Time
	// Peripherals are the device's scanners and readers as its
	// device_status events report them, by name.
	Peripherals []Peripheral
}

// Conflict is a reconciliation conflict for HQ to resolve.
type Conflict struct {
	ID            int64
	SKU, Location string
	// Kind is "oversell".
	Kind string
	// Available is the position's available stock: now for an open
	// conflict, at resolution for a resolved one.
	Available int64
	// Reservations (ids of the active reservations at the position) and
	// Suggestions (up to 3 other locations with the most available stock of
	// the SKU) are computed from the current books for open conflicts and
	// left empty for resolved ones.
	Reservations []string
	Suggestions  []Stock
	OpenedAt     time.Time
	ResolvedAt   *time.Time
	// ResolvedBy is what closed a resolved conflict (inventory.Cause*).
	ResolvedBy string
	// Version grows at every change; an action names the version its
	// operator saw.
	Version int64
	// Action, ActedBy, ActedAt and ActionDetail (JSON) are HQ's action on
	// the conflict, if one was taken.
	Action, ActedBy, ActionDetail string
	ActedAt                       time.Time
}

func msTime(ms int64) time.Time {
	if ms == 0 {
		return time.Time{}
	}
	return time.UnixMilli(ms).UTC()
}
