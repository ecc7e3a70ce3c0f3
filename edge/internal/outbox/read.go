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
	type span struct {
		seq      uint64
		off, end int
	}
	var spans []span
	var arena []byte
	err := o.view(func(tx *bolt.Tx) error {
		c := tx.Bucket([]byte(bucketEvents)).Cursor()
		start := seqKey(make([]byte, 0, 8), after+1)
		for k, v := c.Seek(start); k != nil; k, v = c.Next() {
			if len(spans) > 0 && (max > 0 && len(spans) >= max || maxBytes > 0 && len(arena)+len(v) > maxBytes) {
				break
			}
			seq := seqOf(k)
			if seq == 0 {
				return fmt.Errorf("%w: malformed key %x in the events bucket", ErrCorrupt, k)
			}
			off := len(arena)
			arena = append(arena, v...)
			spans = append(spans, span{seq: seq, off: off, end: len(arena)})
		}
		// The records are copies now; the pages they came from need not
		// stay resident (the uplink will not read them again, Ack faults
		// in what it deletes and releases it too).
		if o.unreleased.Add(int64(len(arena))) >= releaseEvery {
			o.unreleased.Store(0)
			o.releaseMapped(o.db, tx)
		}
		return nil
	})
	if err != nil {
		return nil, closedErr(err)
	}
	recs := make([]Record, len(spans))
	for i, s := range spans {
		recs[i] = Record{Seq: s.seq, Data: arena[s.off:s.end:s.end]}
	}
	return recs, nil
}
