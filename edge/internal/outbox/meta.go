package outbox

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/omnisync/omnisync/shared/hlc"
)

// File layout.
//
// Bucket "events": key = seq as 8 bytes big-endian, value = the envelope as
// json.Marshal(events.Envelope) writes it.
//
// Bucket "meta": the state below, each number 8 bytes big-endian, updated
// in the same transaction as the events it describes.
const (
	bucketMeta   = "meta"
	bucketEvents = "events"

	keyFormat       = "format"        // layout version, formatVersion
	keyStore        = "store"         // identity, fixed at creation
	keyDevice       = "device"        // identity, fixed at creation
	keyEpoch        = "epoch"         // fixed at creation
	keyNextSeq      = "next_seq"      // seq the next event gets
	keyAckedSeq     = "acked_seq"     // every seq <= this has been acked and removed
	keyHLC          = "hlc"           // last stamp handed out: wall (8) + logical (4)
	keyPendingCount = "pending_count" // next_seq-1-acked_seq, kept as a check
	keyPendingBytes = "pending_bytes" // sum of the pending values' lengths

	formatVersion = 1
)

// meta is the decoded meta bucket.
type meta struct {
	store, device string
	epoch         uint64
	nextSeq       uint64
	ackedSeq      uint64
	last          hlc.Timestamp
	pendingCount  int64
	pendingBytes  int64
}

func (m meta) writeAll(b *bolt.Bucket) error {
	if err := putU64(b, keyFormat, formatVersion); err != nil {
		return err
	}
	if err := b.Put([]byte(keyStore), []byte(m.store)); err != nil {
		return err
	}
	if err := b.Put([]byte(keyDevice), []byte(m.device)); err != nil {
		return err
	}
	if err := putU64(b, keyEpoch, m.epoch); err != nil {
		return err
	}
	if err := putU64(b, keyAckedSeq, m.ackedSeq); err != nil {
		return err
	}
	return writeAppendState(b, m.nextSeq, m.last, m.pendingCount, m.pendingBytes)
}

// writeAppendState records what an append transaction changes.
func writeAppendState(b *bolt.Bucket, nextSeq uint64, last hlc.Timestamp, count, size int64) error {
	if err := putU64(b, keyNextSeq, nextSeq); err != nil {
		return err
	}
	var ts [12]byte
	binary.BigEndian.PutUint64(ts[:8], uint64(last.Wall))
	binary.BigEndian.PutUint32(ts[8:], last.Logical)
	if err := b.Put([]byte(keyHLC), ts[:]); err != nil {
		return err
	}
	return writePending(b, count, size)
}

// writeAckState records what an ack transaction changes.
func writeAckState(b *bolt.Bucket, acked uint64, count, size int64) error {
	if err := putU64(b, keyAckedSeq, acked); err != nil {
		return err
	}
	return writePending(b, count, size)
}

func writePending(b *bolt.Bucket, count, size int64) error {
	if err := putU64(b, keyPendingCount, uint64(count)); err != nil {
		return err
	}
	return putU64(b, keyPendingBytes, uint64(size))
}

func putU64(b *bolt.Bucket, key string, v uint64) error {
	var buf [8]byte
	binary.BigEndian.PutUint64(buf[:], v)
	return b.Put([]byte(key), buf[:])
}

// readMeta decodes and checks the meta bucket.
func readMeta(b *bolt.Bucket) (meta, error) {
	var m meta
	u64 := func(key string) (uint64, error) {
		v := b.Get([]byte(key))
		if len(v) != 8 {
			return 0, fmt.Errorf("%w: meta %q is missing or not 8 bytes", ErrCorrupt, key)
		}
		return binary.BigEndian.Uint64(v), nil
	}
	format, err := u64(keyFormat)
	if err != nil {
		return m, err
	}
	if format != formatVersion {
		return m, fmt.Errorf("%w: layout version %d, this build reads %d", ErrCorrupt, format, formatVersion)
	}
	m.store = string(b.Get([]byte(keyStore)))
	m.device = string(b.Get([]byte(keyDevice)))
	if m.store == "" || m.device == "" {
		return m, fmt.Errorf("%w: meta store or device is missing", ErrCorrupt)
	}
	if m.epoch, err = u64(keyEpoch); err != nil {
		return m, err
	}
	if m.nextSeq, err = u64(keyNextSeq); err != nil {
		return m, err
	}
	if m.ackedSeq, err = u64(keyAckedSeq); err != nil {
		return m, err
	}
	count, err := u64(keyPendingCount)
	if err != nil {
		return m, err
	}
	size, err := u64(keyPendingBytes)
	if err != nil {
		return m, err
	}
	m.pendingCount, m.pendingBytes = int64(count), int64(size)
	ts := b.Get([]byte(keyHLC))
	if len(ts) != 12 {
		return m, fmt.Errorf("%w: meta %q is missing or not 12 bytes", ErrCorrupt, keyHLC)
	}
	m.last = hlc.Timestamp{Wall: int64(binary.BigEndian.Uint64(ts[:8])), Logical: binary.BigEndian.Uint32(ts[8:])}

	switch {
	case m.epoch == 0:
		return m, fmt.Errorf("%w: epoch is 0", ErrCorrupt)
	case m.nextSeq == 0 || m.ackedSeq >= m.nextSeq:
		return m, fmt.Errorf("%w: next seq %d, acked seq %d", ErrCorrupt, m.nextSeq, m.ackedSeq)
	case m.pendingCount != int64(m.nextSeq-1-m.ackedSeq):
		return m, fmt.Errorf("%w: pending count %d, but seqs %d..%d are pending", ErrCorrupt, m.pendingCount, m.ackedSeq+1, m.nextSeq-1)
	case m.pendingBytes < 0 || (m.pendingCount == 0) != (m.pendingBytes == 0):
		return m, fmt.Errorf("%w: %d pending events of %d bytes", ErrCorrupt, m.pendingCount, m.pendingBytes)
	}
	return m, nil
}

// seqKey writes seq as an events key.
func seqKey(dst []byte, seq uint64) []byte {
	return binary.BigEndian.AppendUint64(dst, seq)
}

// seqOf decodes an events key (0 for a malformed one, which no seq is).
func seqOf(k []byte) uint64 {
	if len(k) != 8 {
		return 0
	}
	return binary.BigEndian.Uint64(k)
}

// wallOf returns the HLC wall time of an encoded envelope.
func wallOf(v []byte) (time.Time, error) {
	var e struct {
		HLC hlc.Timestamp `json:"hlc"`
	}
	if err := json.Unmarshal(v, &e); err != nil {
		return time.Time{}, fmt.Errorf("%w: undecodable event: %v", ErrCorrupt, err)
	}
	return e.HLC.Time(), nil
}
