package outbox

import (
	"bytes"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Ack removes every event with seq <= upTo: the hub has durably applied
// them. This is the only way an event leaves the outbox, so the uplink must
// call it only with what the hub reported as durably applied, never on a
// bare publish.
//
// An Ack for another epoch does nothing and returns ErrEpochMismatch.
// Acking an already-acked range is a no-op. An upTo beyond the last seq
// committed is clamped to it (and logged: the hub claims more than this
// outbox sent). Large acks are deleted in chunks of 10,000 events per
// transaction; each chunk is durable on its own, so an Ack interrupted by a
// crash or by Close has removed a prefix of the range and can be repeated.
// removed counts the events this call deleted.
func (o *Outbox) Ack(epoch, upTo uint64) (removed int, err error) {
	if o.closing.Load() {
		return 0, ErrClosed
	}
	if epoch != o.epoch {
		return 0, fmt.Errorf("%w: ack for epoch %d up to %d, this outbox is epoch %d", ErrEpochMismatch, epoch, upTo, o.epoch)
	}
	warned := false
	for {
		if o.closing.Load() {
			return removed, ErrClosed
		}
		n, done, err := o.ackChunk(upTo, &warned)
		removed += n
		if err != nil {
			return removed, err
		}
		if done {
			if removed > 0 {
				o.maybeCompact()
			}
			return removed, nil
		}
	}
}

// ackChunk deletes up to ackChunk events of the range and reports whether
// the range is done.
func (o *Outbox) ackChunk(upTo uint64, warned *bool) (int, bool, error) {
	o.writeMu.Lock()
	defer o.writeMu.Unlock()
	st := o.st
	target := upTo
	if last := st.nextSeq - 1; target > last {
		if !*warned {
			o.log.Warn("outbox ack beyond the last seq sent; clamping", "epoch", o.epoch, "ack", upTo, "last_seq", last)
			*warned = true
		}
		target = last
	}
	if target <= st.ackedSeq {
		return 0, true, nil
	}
	end := min(target, st.ackedSeq+ackChunk)
	var freed int64
	var oldest time.Time
	err := o.update(func(tx *bolt.Tx) error {
		eb := tx.Bucket([]byte(bucketEvents))
		// One cursor for the whole chunk, positioned afresh on each key:
		// Bucket.Get and Bucket.Delete would each build a cursor and search
		// from the root (two allocations and two searches per event), and
		// Next after Cursor.Delete skips the element that moved into the
		// deleted one's place.
		c := eb.Cursor()
		key := make([]byte, 8)
		for seq := st.ackedSeq + 1; seq <= end; seq++ {
			key = seqKey(key[:0], seq)
			k, v := c.Seek(key)
			if !bytes.Equal(k, key) || v == nil {
				return fmt.Errorf("%w: pending seq %d is missing from the events bucket", ErrCorrupt, seq)
			}
			freed += int64(len(v))
			if err := c.Delete(); err != nil {
				return err
			}
		}
		if end < st.nextSeq-1 {
			_, v := c.First()
			if v == nil {
				return fmt.Errorf("%w: seqs %d..%d are pending but the events bucket is empty", ErrCorrupt, end+1, st.nextSeq-1)
			}
			var err error
			if oldest, err = wallOf(v); err != nil {
				return err
			}
		}
		count := st.pendingCount - int64(end-st.ackedSeq)
		return writeAckState(tx.Bucket([]byte(bucketMeta)), end, count, st.pendingBytes-freed)
	})
	if err != nil {
		return 0, false, closedErr(fmt.Errorf("outbox: ack up to %d: %w", end, err))
	}
	// The deleted events' pages are free now, and this chunk faulted them
	// all in (every value was read for its size, every leaf rewritten).
	o.release()
	n := int(end - st.ackedSeq)
	o.mu.Lock()
	o.st.ackedSeq = end
	o.st.pendingCount -= int64(n)
	o.st.pendingBytes -= freed
	o.st.oldest = oldest
	o.ackSales(end)
	o.mu.Unlock()
	return n, end == target, nil
}
