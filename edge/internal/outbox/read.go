package outbox

import (
	"fmt"
	"math"

	bolt "go.etcd.io/bbolt"
)

// Record is one pending event as stored.
type Record struct {
	Seq uint64
	// Data is the encoded envelope (JSON), a copy that is safe to keep.
	Data []byte
}

// Read returns pending events with seq > after, in seq order, from one read
// transaction. It stops after max records (max <= 0: no limit) or before
// the data would exceed maxBytes (maxBytes <= 0: no limit), but returns at
// least one record whenever one exists, so a record larger than maxBytes
// cannot wedge the reader. Read does not block appends.
func (o *Outbox) Read(after uint64, max int, maxBytes int) ([]Record, error) {
	if o.closing.Load() {
		return nil, ErrClosed
	}
	if after == math.MaxUint64 {
		return nil, nil
	}
	var recs []Record
	err := o.view(func(tx *bolt.Tx) error {
		c := tx.Bucket([]byte(bucketEvents)).Cursor()
		start := seqKey(make([]byte, 0, 8), after+1)
		// Two passes over the same transaction: the first finds how many
		// records and bytes this Read returns, so that one allocation of
		// exactly that size holds them all. Growing a buffer by append
		// instead allocates about five times the data (byte slices grow
		// by a quarter at a time), in blocks large enough to linger in the
		// heap while a backlog drains.
		n, size := 0, 0
		for k, v := c.Seek(start); k != nil; k, v = c.Next() {
			if n > 0 && (max > 0 && n >= max || maxBytes > 0 && size+len(v) > maxBytes) {
				break
			}
			n++
			size += len(v)
		}
		if n == 0 {
			return nil
		}
		arena := make([]byte, 0, size)
		recs = make([]Record, 0, n)
		for k, v := c.Seek(start); k != nil && len(recs) < n; k, v = c.Next() {
			seq := seqOf(k)
			if seq == 0 {
				return fmt.Errorf("%w: malformed key %x in the events bucket", ErrCorrupt, k)
			}
			off := len(arena)
			arena = append(arena, v...) // within capacity: never moves
			recs = append(recs, Record{Seq: seq, Data: arena[off:len(arena):len(arena)]})
		}
		// The records are copies now; the pages they came from need not
		// stay resident (the uplink will not read them again, Ack faults
		// in what it deletes and releases it too).
		if o.dueRelease(int64(size)) {
			o.releaseMapped(o.db, tx)
		}
		return nil
	})
	if err != nil {
		return nil, closedErr(err)
	}
	return recs, nil
}
