package outbox

import (
	bolt "go.etcd.io/bbolt"
)

// releaseEvery is how many bytes of events may be read or appended between
// two releases of the mapped file: often enough that a drain, or a backlog
// filling up offline, keeps only about this much of the file resident;
// rarely enough that the pages every transaction needs (meta, branches, the
// tail leaf) are not faulted back in for every small Read or Append of live
// traffic.
const releaseEvery = 1 << 20

// releaseMapped drops the outbox file's pages from this process's resident
// set; the file and the kernel's page cache keep them. It must be called
// inside a transaction of db, which is what makes it safe:
//
//   - bbolt maps the file read-only and shared (PROT_READ, MAP_SHARED, no
//     extra MmapFlags here) and writes only through the file descriptor
//     (pwrite), never through the mapping. Dropping the page-table entries
//     of such a mapping discards nothing: the next access faults the page
//     back in from the page cache (a minor fault), or from disk if the
//     kernel evicted it meanwhile, with the file's current contents, which
//     is exactly what a read through the mapping would have returned. A
//     read transaction or the committer touching a page concurrently sees
//     the same bytes, only a little later. (On an anonymous or private
//     mapping MADV_DONTNEED would zero the pages; bbolt's is neither.)
//   - A transaction pins the mapping: a read transaction holds bbolt's
//     mmap lock shared from begin to end, and bbolt remaps (munmap + mmap,
//     when the file outgrows it) only under that lock held exclusively, so
//     db.Info().Data is the live mapping's address for as long as tx is
//     open, never an address that was unmapped and perhaps reused for
//     something else. The caller also holds dbMu (shared or exclusive),
//     so compaction cannot close db meanwhile.
//   - The range stops at tx.Size(), the file's high-water mark, which is
//     never past the end of the mapping (bbolt remaps before handing out a
//     page beyond it).
//
// Why: bbolt's Open walks every page of the file (NoFreelistSync rebuilds
// the freelist from the reachable pages), a drain reads every event twice
// (Read, then Ack's delete), and each page fault maps up to 64 KiB of its
// neighbours that are in the page cache (fault-around, which MADV_RANDOM
// does not turn off), so without this the backlog file ends up resident in
// the agent, counted in its RSS and in its cgroup's memory until the kernel
// gets around to reclaiming it. Only pages behind the reader and pages Ack
// freed are ever worth keeping out; releasing the whole mapped range is
// simpler than tracking them, and costs a handful of minor faults for the
// pages that are hot (meta, branches, the tail leaf).
//
// It is a no-op where releasePages is not implemented (see
// release_linux.go); an error only costs memory, so it is logged once.
func (o *Outbox) releaseMapped(db *bolt.DB, tx *bolt.Tx) {
	if !canRelease {
		return
	}
	if err := releasePages(db.Info().Data, tx.Size()); err != nil && o.releaseWarned.CompareAndSwap(false, true) {
		o.log.Warn("outbox: cannot release the file's mapped pages; they stay resident until the kernel reclaims them", "err", err)
	}
}

// dueRelease counts n more bytes read or appended through the mapping and
// reports whether they make a release due (and if so starts the count
// again).
func (o *Outbox) dueRelease(n int64) bool {
	if !canRelease || o.unreleased.Add(n) < releaseEvery {
		return false
	}
	o.unreleased.Store(0)
	return true
}

// release releases the current file's mapped pages; the caller holds no
// dbMu.
func (o *Outbox) release() {
	o.dbMu.RLock()
	defer o.dbMu.RUnlock()
	o.releaseAll(o.db)
}

// releaseAll releases db's mapped pages from a read transaction of its own.
// The caller holds dbMu (shared or exclusive).
func (o *Outbox) releaseAll(db *bolt.DB) {
	if !canRelease {
		return
	}
	_ = db.View(func(tx *bolt.Tx) error {
		o.releaseMapped(db, tx)
		return nil
	})
}
