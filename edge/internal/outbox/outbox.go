package outbox

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/omnisync/omnisync/shared/events"
	"github.com/omnisync/omnisync/shared/hlc"
	"github.com/omnisync/omnisync/shared/ids"
)

// Defaults for the zero values of Options.
const (
	DefaultBudgetBytes = 1 << 30
	DefaultMinFreeDisk = 64 << 20
	DefaultMaxBatch    = 4096
	// DefaultCompactAbove is the file size from which a drained outbox is
	// compacted.
	DefaultCompactAbove = 64 << 20
)

// Tuning that is not worth an option.
const (
	// lockTimeout is how long Open waits for bbolt's file lock.
	lockTimeout = time.Second
	// maxBatchBytes softly caps one append transaction: the committer stops
	// draining the queue once the batch holds this much (a single larger
	// Append still goes through, alone).
	maxBatchBytes = 8 << 20
	// ackChunk bounds the deletes of one Ack transaction, so that acking a
	// million events neither builds a giant transaction nor holds appends
	// up for long: the committer gets a turn between chunks.
	ackChunk = 10_000
	// queueLen is the capacity of the committer's request queue; callers
	// beyond it wait to enqueue (backpressure), which is fine: the queue is
	// drained a whole batch at a time.
	queueLen = 1024
)

// Options configures an outbox.
type Options struct {
	// Path of the bbolt file, created 0600 (with its parent directories,
	// 0700) if missing.
	Path string
	// Store and Device are stamped into every envelope's origin and recorded
	// in the file; reopening a file with a different identity fails with
	// ErrWrongIdentity.
	Store, Device string
	// BudgetBytes bounds the logical bytes (encoded envelopes) of pending,
	// unacked events; 0 means 1 GiB. Compactable events are refused once
	// they would take pending bytes past 70% of it, normal ones past 90%,
	// critical ones (sales, counts, reservations) past 100%.
	BudgetBytes int64
	// MinFreeDisk refuses every append while the filesystem holding Path
	// has less free space than this (checked at most every 250ms); 0 means
	// 64 MiB, negative disables the check.
	MinFreeDisk int64
	// MaxBatch is the most events one bbolt transaction carries; 0 means
	// 4096. One Append larger than that is still committed, alone.
	MaxBatch int
	// Now is the wall clock for HLC stamps, event ids and epochs; nil means
	// time.Now. For tests.
	Now func() time.Time
	// Logger receives warnings (acks beyond what was sent, statfs
	// failures); nil discards.
	Logger *slog.Logger
	// KeyTTL is how long AppendOnce remembers an idempotency key; 0 means
	// DefaultKeyTTL.
	KeyTTL time.Duration

	// CompactAbove: when the outbox is empty after an Ack and its file is
	// larger than this and mostly free pages (a drained backlog), the file
	// is rewritten compactly, which returns the disk its free pages held.
	// 0 means DefaultCompactAbove; negative disables.
	CompactAbove int64

	// Test hooks.
	lockTimeout  time.Duration                   // 0 = lockTimeout
	compactEvery time.Duration                   // 0 = compactEvery
	freeSpace    func(dir string) (int64, error) // nil = the platform's statfs
}

func (opts Options) withDefaults() (Options, error) {
	if opts.Path == "" {
		return opts, fmt.Errorf("%w: path is required", ErrInvalidOption)
	}
	if err := events.ValidToken(opts.Store); err != nil {
		return opts, fmt.Errorf("%w: store %q: %v", ErrInvalidOption, opts.Store, err)
	}
	if err := events.ValidToken(opts.Device); err != nil {
		return opts, fmt.Errorf("%w: device %q: %v", ErrInvalidOption, opts.Device, err)
	}
	switch {
	case opts.BudgetBytes < 0:
		return opts, fmt.Errorf("%w: budget bytes must be >= 0, got %d", ErrInvalidOption, opts.BudgetBytes)
	case opts.BudgetBytes == 0:
		opts.BudgetBytes = DefaultBudgetBytes
	}
	switch {
	case opts.MaxBatch < 0:
		return opts, fmt.Errorf("%w: max batch must be >= 0, got %d", ErrInvalidOption, opts.MaxBatch)
	case opts.MaxBatch == 0:
		opts.MaxBatch = DefaultMaxBatch
	}
	if opts.MinFreeDisk == 0 {
		opts.MinFreeDisk = DefaultMinFreeDisk
	}
	switch {
	case opts.KeyTTL < 0:
		return opts, fmt.Errorf("%w: key TTL must be >= 0, got %v", ErrInvalidOption, opts.KeyTTL)
	case opts.KeyTTL == 0:
		opts.KeyTTL = DefaultKeyTTL
	}
	if opts.CompactAbove == 0 {
		opts.CompactAbove = DefaultCompactAbove
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.lockTimeout <= 0 {
		opts.lockTimeout = lockTimeout
	}
	if opts.compactEvery <= 0 {
		opts.compactEvery = compactEvery
	}
	if opts.freeSpace == nil {
		opts.freeSpace = freeSpace
	}
	return opts, nil
}

// Outbox is one device's durable outbox. It is safe for concurrent use.
//
// Locks: writeMu before dbMu before mu. writeMu is held across every write
// transaction and the in-memory update that follows it, so the in-memory
// state changes in commit order and always equals what the file says
// between transactions; mu guards that state for quick readers (Stats,
// Ack's clamp). dbMu guards the db handle itself: every transaction holds
// it shared (through view and update), compaction exclusively while it
// swaps the file.
type Outbox struct {
	dbMu  sync.RWMutex
	db    *bolt.DB
	opts  Options
	log   *slog.Logger
	clock *hlc.Clock
	epoch uint64
	enc   encoder
	limit [3]int64 // pending-byte limit per events.Class

	reqs    chan *appendReq
	quit    chan struct{} // closed by Close
	done    chan struct{} // closed when the committer has exited
	changed chan struct{}
	closing atomic.Bool

	closeOnce sync.Once
	closeErr  error

	writeMu sync.Mutex
	mu      sync.Mutex
	st      state // guarded by mu for reads, writeMu+mu for writes
	// lastCompact is when the file was last compacted (guarded by mu).
	lastCompact time.Time
	// sales are the pending sales in seq order, salesValue their total
	// value (guarded like st; see sales.go).
	sales      []pendingSale
	salesValue int64

	// unreleased counts the bytes read or appended since the mapped file
	// was last released (see releaseMapped); releaseWarned makes a failing
	// release log once.
	unreleased    atomic.Int64
	releaseWarned atomic.Bool

	// Owned by the committer goroutine.
	disk diskGuard
	buf  []byte
	keys []byte
	ents []entry
	// lastPrune and prunedKeys pace the pruning of expired idempotency keys.
	lastPrune  time.Time
	prunedKeys uint64

	testHookCommit func() error // called inside each append transaction
}

// state is the in-memory mirror of the meta bucket, plus counters.
type state struct {
	nextSeq      uint64
	ackedSeq     uint64
	pendingCount int64
	pendingBytes int64
	oldest       time.Time // HLC wall time of the first pending event
	appends      uint64
	batches      uint64
}

// Stats is a snapshot of an outbox.
type Stats struct {
	Epoch uint64
	// LastSeq is the highest seq committed; AckedSeq the highest removed by
	// Ack. Pending events are AckedSeq+1 .. LastSeq.
	LastSeq, AckedSeq uint64
	// Depth is the number of pending events, Bytes their encoded size.
	Depth              int64
	Bytes, BudgetBytes int64
	// OldestUnacked is the HLC wall time of the first pending event; zero
	// when nothing is pending.
	OldestUnacked time.Time
	// Appends counts events and Batches transactions committed since Open:
	// Appends/Batches is the mean group-commit size.
	Appends, Batches uint64
	// UnsyncedSales is the number of sales pending, UnsyncedValue their
	// value (Σ qty × unit_price, minor units; lines without a price count
	// 0), OldestUnsyncedSale the HLC wall time of the first (zero: none).
	UnsyncedSales, UnsyncedValue int64
	OldestUnsyncedSale           time.Time
}

// Open opens (or creates) the outbox file and starts its committer
// goroutine; Close stops it. A new file gets a new epoch. An existing file
// must carry the same store and device as opts.
func Open(opts Options) (*Outbox, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	dir := filepath.Dir(opts.Path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("outbox: create directory: %w", err)
	}
	// A compaction that crashed before its rename left a partial copy;
	// the original is whole.
	_ = os.Remove(opts.Path + compactSuffix)
	db, err := bolt.Open(opts.Path, 0o600, boltOptions(opts))
	switch {
	case errors.Is(err, bolt.ErrTimeout):
		return nil, fmt.Errorf("%w: %s: no lock after %s; is another omni-edge running with this data dir?",
			ErrLocked, opts.Path, opts.lockTimeout)
	case errors.Is(err, bolt.ErrInvalid), errors.Is(err, bolt.ErrVersionMismatch), errors.Is(err, bolt.ErrChecksum):
		return nil, fmt.Errorf("%w: %s: %w", ErrCorrupt, opts.Path, err)
	case err != nil:
		return nil, fmt.Errorf("outbox: open %s: %w", opts.Path, err)
	}
	o := &Outbox{
		db:      db,
		opts:    opts,
		log:     opts.Logger.With("store", opts.Store, "device", opts.Device),
		reqs:    make(chan *appendReq, queueLen),
		quit:    make(chan struct{}),
		done:    make(chan struct{}),
		changed: make(chan struct{}, 1),
	}
	m, oldest, err := o.load()
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("outbox: %s: %w", opts.Path, err)
	}
	o.epoch = m.epoch
	o.clock = hlc.New(opts.Now, m.last)
	o.enc = newEncoder(opts.Store, opts.Device, m.epoch)
	o.limit = [3]int64{
		events.ClassCritical:    opts.BudgetBytes,
		events.ClassNormal:      opts.BudgetBytes / 10 * 9,
		events.ClassCompactable: opts.BudgetBytes / 10 * 7,
	}
	o.st = state{
		nextSeq:      m.nextSeq,
		ackedSeq:     m.ackedSeq,
		pendingCount: m.pendingCount,
		pendingBytes: m.pendingBytes,
		oldest:       oldest,
	}
	if m.pendingCount > 0 {
		if err := o.loadSales(); err != nil {
			db.Close()
			return nil, fmt.Errorf("outbox: %s: pending sales: %w", opts.Path, err)
		}
	}
	o.disk = diskGuard{dir: dir, min: opts.MinFreeDisk, free: opts.freeSpace, log: o.log}
	// bbolt's Open has just read every page of the file to rebuild its
	// freelist: none of it needs to stay resident.
	o.releaseAll(db)
	o.log.Debug("outbox open", "path", opts.Path, "epoch", m.epoch, "next_seq", m.nextSeq,
		"pending", m.pendingCount, "pending_bytes", m.pendingBytes)
	go o.run()
	return o, nil
}

// boltOptions chooses how the file is opened.
//
//   - NoSync stays false: fsync on every commit is the whole point.
//   - NoFreelistSync with the hash-map freelist: the outbox deletes from the
//     front and appends at the back, so after a backlog drains most of the
//     file is free pages, and a synced freelist would be rewritten (8 bytes
//     per free page, megabytes for a drained gigabyte) by every commit. Not
//     syncing it makes each commit write only the pages it touched; the map
//     freelist keeps allocation O(1) when it is large. The price is paid at
//     Open: bbolt rebuilds the freelist by walking every reachable page, so
//     opening takes time proportional to the pending backlog (bounded by
//     BudgetBytes), not to the file size. This is etcd's configuration too.
//   - Timeout: a second agent on the same file fails fast with ErrLocked
//     instead of hanging forever (bbolt's default).
//   - InitialMmapSize (64-bit Unix only): a write transaction that grows the
//     file past the mapping must wait for every open read transaction to
//     remap, which would stall appends behind the uplink's Reads. Reserving
//     address space for twice the budget (64 MiB..8 GiB) up front avoids
//     remaps in normal operation. On Unix it is only address space; bbolt
//     then grows the file in 16 MiB steps (sparse, one truncate+fsync per
//     step) instead of doubling it. On Windows it would preallocate the
//     file, so not there.
func boltOptions(opts Options) *bolt.Options {
	bo := &bolt.Options{
		Timeout:        opts.lockTimeout,
		NoFreelistSync: true,
		FreelistType:   bolt.FreelistMapType,
	}
	if runtime.GOOS != "windows" && strconv.IntSize == 64 {
		bo.InitialMmapSize = int(min(max(opts.BudgetBytes*2, 64<<20), 8<<30))
	}
	return bo
}

// load reads the meta bucket, creating it (and a new epoch) in a new file.
// It returns the meta and the wall time of the first pending event.
func (o *Outbox) load() (meta, time.Time, error) {
	var m meta
	var oldest time.Time
	err := o.update(func(tx *bolt.Tx) error {
		mb := tx.Bucket([]byte(bucketMeta))
		eb := tx.Bucket([]byte(bucketEvents))
		if mb == nil {
			if eb != nil {
				return fmt.Errorf("%w: events bucket without a meta bucket", ErrCorrupt)
			}
			now := o.opts.Now()
			m = meta{
				store:   o.opts.Store,
				device:  o.opts.Device,
				epoch:   ids.NewEpoch(now),
				nextSeq: 1,
			}
			var err error
			if mb, err = tx.CreateBucket([]byte(bucketMeta)); err != nil {
				return err
			}
			if _, err = tx.CreateBucket([]byte(bucketEvents)); err != nil {
				return err
			}
			if err := createKeyBuckets(tx); err != nil {
				return err
			}
			return m.writeAll(mb)
		}
		if eb == nil {
			return fmt.Errorf("%w: meta bucket without an events bucket", ErrCorrupt)
		}
		var err error
		if m, err = readMeta(mb); err != nil {
			return err
		}
		// Files written before idempotency keys existed lack their buckets.
		if err := createKeyBuckets(tx); err != nil {
			return err
		}
		if m.store != o.opts.Store || m.device != o.opts.Device {
			return fmt.Errorf("%w: the file is store %q device %q, options say store %q device %q",
				ErrWrongIdentity, m.store, m.device, o.opts.Store, o.opts.Device)
		}
		// Cheap consistency checks (no scan): the first and last keys must
		// be exactly the pending range the meta describes.
		c := eb.Cursor()
		fk, fv := c.First()
		lk, _ := c.Last()
		if m.pendingCount == 0 {
			if fk != nil {
				return fmt.Errorf("%w: meta says nothing is pending, the events bucket starts at key %x", ErrCorrupt, fk)
			}
			return nil
		}
		if seqOf(fk) != m.ackedSeq+1 || seqOf(lk) != m.nextSeq-1 {
			return fmt.Errorf("%w: meta says seqs %d..%d are pending, the events bucket holds %d..%d",
				ErrCorrupt, m.ackedSeq+1, m.nextSeq-1, seqOf(fk), seqOf(lk))
		}
		oldest, err = wallOf(fv)
		return err
	})
	return m, oldest, err
}

// Epoch returns the outbox's epoch, fixed when its file was created.
func (o *Outbox) Epoch() uint64 { return o.epoch }

// Clock returns the clock that stamps events; the agent reports its Skew and
// may Observe the hub's time through it.
func (o *Outbox) Clock() *hlc.Clock { return o.clock }

// Changed receives (without blocking the committer; capacity 1) after each
// commit that added events: the uplink's cue to Read again.
func (o *Outbox) Changed() <-chan struct{} { return o.changed }

// Stats returns a snapshot of the outbox's counters.
func (o *Outbox) Stats() Stats {
	o.mu.Lock()
	defer o.mu.Unlock()
	st := Stats{
		Epoch:         o.epoch,
		LastSeq:       o.st.nextSeq - 1,
		AckedSeq:      o.st.ackedSeq,
		Depth:         o.st.pendingCount,
		Bytes:         o.st.pendingBytes,
		BudgetBytes:   o.opts.BudgetBytes,
		OldestUnacked: o.st.oldest,
		Appends:       o.st.appends,
		Batches:       o.st.batches,
	}
	o.unsynced(&st)
	return st
}

// Close answers every queued Append with ErrClosed, waits for the committer
// to finish the transaction it is in (those Appends get their real answer),
// and closes the file. It is idempotent; later calls return the first
// call's result.
func (o *Outbox) Close() error {
	o.closeOnce.Do(func() {
		o.closing.Store(true)
		close(o.quit)
		<-o.done
		// bbolt's Close waits for a running Ack or Read transaction.
		o.dbMu.RLock()
		o.closeErr = o.db.Close()
		o.dbMu.RUnlock()
	})
	return o.closeErr
}

// closedErr maps bbolt's "database not open" (a Read or Ack racing Close)
// to ErrClosed.
func closedErr(err error) error {
	if errors.Is(err, bolt.ErrDatabaseNotOpen) {
		return ErrClosed
	}
	return err
}
