package outbox

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/omnisync/omnisync/shared/events"
	"github.com/omnisync/omnisync/shared/hlc"
)

// Idempotency keys let a POS retry a request whose answer it never got (the
// agent was killed mid-request, the connection dropped) without selling
// twice: the key is stored in the same transaction as the events, so a retry
// either finds it, and gets the first answer back, or finds nothing because
// nothing was written.
//
// Bucket "idem": key = the client's key, value = idemRecord as JSON.
// Bucket "idem_by_time": key = written-at ms (8 bytes BE) + client key,
// value empty; it lets expired keys be pruned in order without a scan.
const (
	bucketIdem       = "idem"
	bucketIdemByTime = "idem_by_time"

	// MaxKeyLen bounds an idempotency key.
	MaxKeyLen = 255
	// DefaultKeyTTL is how long a key is remembered.
	DefaultKeyTTL = 24 * time.Hour
	// pruneEvery is how often expired keys are pruned (inside a commit).
	pruneEvery = time.Minute
	// pruneMax bounds the keys one commit prunes, to keep commits short.
	pruneMax = 2000
)

// idemRecord is the first answer given for a key.
type idemRecord struct {
	Hash  []byte   `json:"hash"` // sha256 of the request's kinds and bodies
	Epoch uint64   `json:"epoch"`
	First uint64   `json:"first_seq"`
	IDs   []string `json:"ids"`
	// HLCs are the events' stamps, so that a replayed answer is the whole
	// first answer. Records written before stamps were kept have none.
	HLCs []hlc.Timestamp `json:"hlcs,omitempty"`
	At   int64           `json:"at_ms"`
}

// AppendOnce is Append with an idempotency key: the first call with key
// appends the drafts; any later call with the same key and the same drafts
// (within the key's TTL) appends nothing and returns the first call's
// envelopes (ID, Origin and HLC as first answered; Kind and Data as the
// retry sent them, which the key guarantees are the same) with replayed
// true. A key recorded by a build that did not keep stamps replays with a
// zero HLC. The same key with different drafts is ErrKeyReused.
func (o *Outbox) AppendOnce(ctx context.Context, key string, drafts []events.Draft) (envs []events.Envelope, replayed bool, err error) {
	if err := validKey(key); err != nil {
		return nil, false, err
	}
	if len(drafts) == 0 {
		return nil, false, nil
	}
	if o.closing.Load() {
		return nil, false, ErrClosed
	}
	r, err := o.prepare(ctx, drafts)
	if err != nil {
		return nil, false, err
	}
	r.key, r.hash = key, requestHash(r)
	envs, err = o.submit(ctx, r)
	return envs, r.replayed, err
}

func validKey(key string) error {
	if key == "" || len(key) > MaxKeyLen {
		return fmt.Errorf("%w: idempotency key must be 1 to %d bytes", ErrInvalidKey, MaxKeyLen)
	}
	for i := 0; i < len(key); i++ {
		if key[i] < 0x21 || key[i] > 0x7e {
			return fmt.Errorf("%w: idempotency key must be printable ASCII without spaces", ErrInvalidKey)
		}
	}
	return nil
}

// requestHash identifies what a request asks for, independent of the ids
// and stamps the agent would mint for it.
func requestHash(r *appendReq) []byte {
	h := sha256.New()
	for _, t := range r.tails {
		var n [8]byte
		binary.BigEndian.PutUint64(n[:], uint64(len(t)))
		h.Write(n[:])
		h.Write(t)
	}
	return h.Sum(nil)
}

// lookupKeys finds the records of the keyed requests of a batch. Only the
// committer writes keys, so what it reads here cannot change before its
// own transaction.
func (o *Outbox) lookupKeys(batch []*appendReq) (map[string]idemRecord, error) {
	var found map[string]idemRecord
	err := o.view(func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte(bucketIdem))
		for _, r := range batch {
			if r.key == "" {
				continue
			}
			v := b.Get([]byte(r.key))
			if v == nil {
				continue
			}
			var rec idemRecord
			if err := json.Unmarshal(v, &rec); err != nil {
				return fmt.Errorf("%w: idempotency record for %q: %v", ErrCorrupt, r.key, err)
			}
			if found == nil {
				found = make(map[string]idemRecord)
			}
			found[r.key] = rec
		}
		return nil
	})
	return found, err
}

// replay answers r from an earlier record of its key.
func (o *Outbox) replay(r *appendReq, rec idemRecord) {
	if !bytes.Equal(rec.Hash, r.hash) || len(rec.IDs) != len(r.drafts) {
		r.err = fmt.Errorf("%w: key %q was first used for a different request", ErrKeyReused, r.key)
		return
	}
	envs := make([]events.Envelope, len(r.drafts))
	for i, d := range r.drafts {
		envs[i] = events.Envelope{
			V:      events.CurrentVersion,
			ID:     rec.IDs[i],
			Origin: events.Origin{Store: o.opts.Store, Device: o.opts.Device, Epoch: rec.Epoch, Seq: rec.First + uint64(i)},
			Kind:   d.Kind,
			Data:   d.Data,
		}
	}
	if len(rec.HLCs) == len(envs) {
		for i := range envs {
			envs[i].HLC = rec.HLCs[i]
		}
	}
	r.envs, r.replayed = envs, true
}

// stamps returns the HLCs of envs.
func stamps(envs []events.Envelope) []hlc.Timestamp {
	out := make([]hlc.Timestamp, len(envs))
	for i, e := range envs {
		out[i] = e.HLC
	}
	return out
}

// putKeys records the keys of the requests committed in this transaction
// and prunes expired ones now and then.
func (o *Outbox) putKeys(tx *bolt.Tx, batch []*appendReq, now time.Time) error {
	ib, tb := tx.Bucket([]byte(bucketIdem)), tx.Bucket([]byte(bucketIdemByTime))
	for _, r := range batch {
		if r.key == "" || r.err != nil || r.replayed || r.sameAs != nil || len(r.envs) == 0 {
			continue
		}
		rec := idemRecord{Hash: r.hash, Epoch: o.epoch, First: r.envs[0].Origin.Seq, IDs: r.ids, HLCs: stamps(r.envs), At: now.UnixMilli()}
		v, err := json.Marshal(rec)
		if err != nil {
			return err
		}
		if err := ib.Put([]byte(r.key), v); err != nil {
			return err
		}
		if err := tb.Put(timeKey(rec.At, r.key), nil); err != nil {
			return err
		}
	}
	if now.Sub(o.lastPrune) < pruneEvery {
		return nil
	}
	o.lastPrune = now
	cutoff := now.Add(-o.opts.KeyTTL).UnixMilli()
	c := tb.Cursor()
	for k, _ := c.First(); k != nil && len(k) >= 8; k, _ = c.First() {
		if int64(binary.BigEndian.Uint64(k[:8])) > cutoff {
			break
		}
		if err := ib.Delete(k[8:]); err != nil {
			return err
		}
		if err := c.Delete(); err != nil {
			return err
		}
		o.prunedKeys++
		if o.prunedKeys%pruneMax == 0 {
			break
		}
	}
	return nil
}

func timeKey(ms int64, key string) []byte {
	b := make([]byte, 8+len(key))
	binary.BigEndian.PutUint64(b, uint64(ms))
	copy(b[8:], key)
	return b
}

func createKeyBuckets(tx *bolt.Tx) error {
	if _, err := tx.CreateBucketIfNotExists([]byte(bucketIdem)); err != nil {
		return err
	}
	_, err := tx.CreateBucketIfNotExists([]byte(bucketIdemByTime))
	return err
}
