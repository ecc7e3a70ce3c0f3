package outbox

import (
	"bytes"
	"encoding/json"
	"fmt"

	bolt "go.etcd.io/bbolt"

	"github.com/omnisync/omnisync/shared/events"
)

// ScrubFunc decides what becomes of one pending event's body: it returns
// the new body and true to rewrite it, or false to keep it as it is. It
// must be quick and must not call the outbox: appends wait while Scrub
// runs.
type ScrubFunc func(kind events.Kind, data json.RawMessage) (json.RawMessage, bool)

// Scrub rewrites the bodies of pending events, in one bbolt transaction:
// after an erasure the agent removes a person's identifiers from what has
// not reached the hub yet. Everything else of an event stays as it was
// committed (its id, origin, seq and HLC stamp, its kind), so the seq
// order, the hub's deduplication and idempotency keys are untouched, and
// the event still syncs, without what was scrubbed. It returns how many
// events it rewrote. Either every rewrite is durable or none is: a crash
// during Scrub leaves the outbox as it was, and Scrub may simply run
// again (a ScrubFunc that already scrubbed changes nothing).
//
// Sharp edges: an event the uplink has already published keeps its
// published form in JetStream and at the hub, and a republish within
// JetStream's duplicate window is dropped as a duplicate of it; only the
// hub's scrubbing on apply (erasure tombstones) covers those. Appends and
// acks wait for the transaction, which reads every pending event.
func (o *Outbox) Scrub(fn ScrubFunc) (int, error) {
	if o.closing.Load() {
		return 0, ErrClosed
	}
	o.writeMu.Lock()
	defer o.writeMu.Unlock()
	st := o.st
	type rewrite struct{ key, val []byte }
	var (
		rewrites []rewrite
		delta    int64
	)
	err := o.update(func(tx *bolt.Tx) error {
		eb := tx.Bucket([]byte(bucketEvents))
		c := eb.Cursor()
		for k, v := c.Seek(seqKey(nil, st.ackedSeq+1)); k != nil; k, v = c.Next() {
			var env events.Envelope
			if err := json.Unmarshal(v, &env); err != nil {
				return fmt.Errorf("%w: seq %d: %v", ErrCorrupt, seqOf(k), err)
			}
			data, ok := fn(env.Kind, env.Data)
			if !ok || bytes.Equal(data, env.Data) {
				continue
			}
			if !json.Valid(data) {
				return fmt.Errorf("outbox: scrub of seq %d gave a body that is not JSON", env.Origin.Seq)
			}
			env.Data = data
			b, err := json.Marshal(env)
			if err != nil {
				return fmt.Errorf("outbox: scrub of seq %d: %w", env.Origin.Seq, err)
			}
			if bytes.Equal(b, v) {
				continue
			}
			if len(b) > events.MaxEventBytes {
				return fmt.Errorf("%w: scrubbed seq %d is %d bytes", ErrTooLarge, env.Origin.Seq, len(b))
			}
			rewrites = append(rewrites, rewrite{key: bytes.Clone(k), val: b})
			delta += int64(len(b) - len(v))
		}
		// Put after the walk: a cursor is not to be walked over a bucket
		// it is being changed under.
		for _, r := range rewrites {
			if err := eb.Put(r.key, r.val); err != nil {
				return err
			}
		}
		if len(rewrites) == 0 {
			return nil
		}
		return writePending(tx.Bucket([]byte(bucketMeta)), st.pendingCount, st.pendingBytes+delta)
	})
	if err != nil {
		return 0, closedErr(fmt.Errorf("outbox: scrub: %w", err))
	}
	o.mu.Lock()
	o.st.pendingBytes += delta
	o.mu.Unlock()
	o.release()
	return len(rewrites), nil
}
