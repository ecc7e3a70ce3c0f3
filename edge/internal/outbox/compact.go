package outbox

import (
	"fmt"
	"os"
	"path/filepath"
	"time"

	bolt "go.etcd.io/bbolt"
)

// compactSuffix names the copy a compaction writes before it replaces the
// outbox file.
const compactSuffix = ".compact"

// compactEvery spaces compactions: a store that drains to empty now and
// then with a large file should not rewrite it at every Ack.
const compactEvery = 10 * time.Minute

// view and update run a bbolt transaction on the current file.
func (o *Outbox) view(fn func(*bolt.Tx) error) error {
	o.dbMu.RLock()
	defer o.dbMu.RUnlock()
	return o.db.View(fn)
}

func (o *Outbox) update(fn func(*bolt.Tx) error) error {
	o.dbMu.RLock()
	defer o.dbMu.RUnlock()
	return o.db.Update(fn)
}

// maybeCompact rewrites the file when the outbox is empty, the file holds
// more than CompactAbove and at least three quarters of that are free
// pages. A backlog of a million events leaves a file of hundreds of
// megabytes that bbolt never shrinks (and, where releaseMapped is a no-op,
// pages the drain touched that stay mapped until the kernel reclaims
// them); the copy holds only the meta and the idempotency keys.
func (o *Outbox) maybeCompact() {
	if o.opts.CompactAbove < 0 || o.closing.Load() {
		return
	}
	o.mu.Lock()
	empty, recent := o.st.pendingCount == 0, time.Since(o.lastCompact) < o.opts.compactEvery
	o.mu.Unlock()
	if !empty || recent {
		return
	}
	// What the file holds up to its high-water mark; beyond it the file is
	// sparse (bbolt grows it in steps), costing neither disk nor memory.
	var size int64
	o.dbMu.RLock()
	// Pages the drain just freed are still "pending" until the next write
	// transaction releases them; they count as free.
	st := o.db.Stats()
	free := int64(st.FreePageN+st.PendingPageN) * int64(o.db.Info().PageSize)
	_ = o.db.View(func(tx *bolt.Tx) error { size = tx.Size(); return nil })
	o.dbMu.RUnlock()
	if size < o.opts.CompactAbove || free*4 < size*3 {
		return
	}
	start := time.Now()
	after, err := o.compact()
	if err != nil {
		o.log.Error("outbox compaction failed", "err", err)
		return
	}
	o.log.Info("outbox compacted", "from_bytes", size, "to_bytes", after, "took", time.Since(start).Round(time.Millisecond))
}

// compact copies the live data into a fresh file and puts it in place of
// the outbox file, holding every writer and reader off meanwhile. It is
// crash-safe: until the rename the original is untouched (Open removes a
// leftover copy), and the copy is fsync'd before it replaces the original.
func (o *Outbox) compact() (int64, error) {
	o.writeMu.Lock()
	defer o.writeMu.Unlock()
	o.dbMu.Lock()
	defer o.dbMu.Unlock()
	o.mu.Lock()
	o.lastCompact = time.Now()
	empty := o.st.pendingCount == 0
	o.mu.Unlock()
	if !empty || o.closing.Load() {
		return 0, nil // an Append won the race; next time
	}
	tmp := o.opts.Path + compactSuffix
	_ = os.Remove(tmp)
	dst, err := bolt.Open(tmp, 0o600, &bolt.Options{Timeout: o.opts.lockTimeout})
	if err != nil {
		return 0, fmt.Errorf("outbox: compact: %w", err)
	}
	// bolt.Compact commits every txMaxSize bytes and the final Close
	// fsyncs; the copy is whole once Close returns.
	if err := bolt.Compact(dst, o.db, 16<<20); err != nil {
		dst.Close()
		os.Remove(tmp)
		return 0, fmt.Errorf("outbox: compact: %w", err)
	}
	if err := dst.Sync(); err != nil {
		dst.Close()
		os.Remove(tmp)
		return 0, fmt.Errorf("outbox: compact: sync: %w", err)
	}
	if err := dst.Close(); err != nil {
		os.Remove(tmp)
		return 0, fmt.Errorf("outbox: compact: %w", err)
	}
	if err := o.db.Close(); err != nil {
		return 0, fmt.Errorf("outbox: compact: close: %w", err)
	}
	renameErr := os.Rename(tmp, o.opts.Path)
	if renameErr == nil {
		syncDir(filepath.Dir(o.opts.Path))
	}
	// Whether or not the rename happened, the file at Path is a whole
	// outbox (the original or its copy): open it again.
	db, err := bolt.Open(o.opts.Path, 0o600, boltOptions(o.opts))
	if err != nil {
		// Nothing can be written without a file; every call now fails
		// rather than pretending.
		return 0, fmt.Errorf("%w: outbox: reopen after compaction: %w", ErrCorrupt, err)
	}
	o.db = db
	o.releaseAll(db) // Open walked the new file's pages
	if renameErr != nil {
		os.Remove(tmp)
		return 0, fmt.Errorf("outbox: compact: %w", renameErr)
	}
	return fileSize(o.opts.Path), nil
}

func fileSize(path string) int64 {
	fi, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return fi.Size()
}

// syncDir makes a rename in dir durable (where the platform allows it).
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
}
