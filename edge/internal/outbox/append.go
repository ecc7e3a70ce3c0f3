package outbox

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"runtime"
	"strconv"
	"syscall"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/omnisync/omnisync/shared/events"
	"github.com/omnisync/omnisync/shared/hlc"
	"github.com/omnisync/omnisync/shared/ids"
)

// appendReq is one Append call on its way through the committer.
type appendReq struct {
	ctx    context.Context
	drafts []events.Draft
	ids    []string
	tails  [][]byte // `"kind":...,"data":...}` per draft, see encoder
	// values holds each draft's sale value, -1 for drafts that are not
	// sales (see sales.go).
	values []int64
	size   int    // encoded size estimate, for batch sizing
	key    string // idempotency key, "" for none
	hash   []byte // requestHash, when keyed

	// Set by the committer before it closes done.
	replayed bool       // answered from an earlier request's record
	sameAs   *appendReq // an earlier request of the same batch with the same key

	envs []events.Envelope
	err  error
	done chan struct{}
}

// Append stamps the drafts into envelopes and returns them once they are
// durable: written and fsync'd in one bbolt transaction, possibly shared
// with other callers' events (group commit). It is all or nothing: either
// every draft of the call is committed, with contiguous seqs, or none is and
// the error says why (ErrFull, ErrTooLarge, ErrClosed, events.ErrInvalid, a
// disk error).
//
// If ctx ends first, Append returns ctx.Err() and the events may or may not
// have been committed: a call that was already inside the transaction being
// fsync'd cannot be taken back. A call still queued when the committer gets
// to it with its ctx done is dropped unwritten.
func (o *Outbox) Append(ctx context.Context, drafts []events.Draft) ([]events.Envelope, error) {
	if len(drafts) == 0 {
		return nil, nil
	}
	if o.closing.Load() {
		return nil, ErrClosed
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	r, err := o.prepare(ctx, drafts)
	if err != nil {
		return nil, err
	}
	return o.submit(ctx, r)
}

// submit queues a prepared request for the committer and waits for its
// answer.
func (o *Outbox) submit(ctx context.Context, r *appendReq) ([]events.Envelope, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	select {
	case o.reqs <- r:
	case <-ctx.Done():
		return nil, ctx.Err() // never queued: nothing written
	case <-o.quit:
		return nil, ErrClosed
	}
	select {
	case <-r.done:
		return r.envs, r.err
	case <-ctx.Done():
		select {
		case <-r.done:
			return r.envs, r.err
		default:
			return nil, ctx.Err()
		}
	case <-o.done:
		// The committer has exited; it answers everything it dequeued
		// before closing done, so a request still unanswered never will be.
		select {
		case <-r.done:
			return r.envs, r.err
		default:
			return nil, ErrClosed
		}
	}
}

// kindData is the tail of an envelope: json.Marshal of it, minus the
// opening brace, is byte for byte how json.Marshal(events.Envelope) ends.
type kindData struct {
	Kind events.Kind     `json:"kind"`
	Data json.RawMessage `json:"data"`
}

// prepare does the caller's share of the work, in the caller's goroutine:
// event ids and the JSON encoding of kind and body, which is also where
// invalid JSON is caught. Only seq and stamp are left for the committer.
func (o *Outbox) prepare(ctx context.Context, drafts []events.Draft) (*appendReq, error) {
	now := o.opts.Now()
	r := &appendReq{
		ctx:    ctx,
		drafts: drafts,
		ids:    make([]string, len(drafts)),
		tails:  make([][]byte, len(drafts)),
		values: make([]int64, len(drafts)),
		done:   make(chan struct{}),
	}
	for i, d := range drafts {
		if !events.Known(d.Kind) {
			return nil, &events.FieldError{Field: fmt.Sprintf("[%d].kind", i), Reason: fmt.Sprintf("unknown kind %q", string(d.Kind))}
		}
		b, err := json.Marshal(kindData{Kind: d.Kind, Data: d.Data})
		if err != nil {
			return nil, &events.FieldError{Field: fmt.Sprintf("[%d].data", i), Reason: "not valid JSON: " + err.Error()}
		}
		r.tails[i] = b[1:]
		r.values[i] = -1
		if v, ok := saleValue(d.Kind, d.Data); ok {
			r.values[i] = v
		}
		r.ids[i] = ids.NewEventID(now)
		r.size += len(b) + o.enc.overhead()
	}
	return r, nil
}

// run is the committer: it takes the first queued request, drains whatever
// else is already queued (up to MaxBatch events), commits them all in one
// transaction and answers each. It never waits for more requests to arrive:
// the batch is whatever queued up while the previous fsync ran.
func (o *Outbox) run() {
	defer close(o.done)
	batch := make([]*appendReq, 0, 256)
	var carry *appendReq // dequeued but did not fit the previous batch
	for {
		first := carry
		carry = nil
		if first == nil {
			select {
			case first = <-o.reqs:
			case <-o.quit:
				o.failQueued()
				return
			}
		}
		select {
		case <-o.quit:
			answer(first, nil, ErrClosed)
			o.failQueued()
			return
		default:
		}
		batch = append(batch[:0], first)
		n, size := len(first.drafts), first.size
	drain:
		for n < o.opts.MaxBatch && size < maxBatchBytes {
			select {
			case r := <-o.reqs:
				if n+len(r.drafts) > o.opts.MaxBatch || size+r.size > maxBatchBytes {
					carry = r
					break drain
				}
				batch = append(batch, r)
				n += len(r.drafts)
				size += r.size
			default:
				break drain
			}
		}
		o.commit(batch)
		clear(batch)
		// Let the callers just answered run before the next drain. In a
		// closed loop (a device pumping events, a POS sending its next sale
		// at once, the benchmark) they come straight back; without this the
		// committer would take only those who queued during the fsync, the
		// callers would split into two alternating half-size batches and
		// throughput would halve (measured: 28-32 instead of ~46 events per
		// transaction with 64 callers). This is not a delay: Gosched returns
		// at once when nothing else is runnable, and we yield again only
		// while each yield brought in new requests (at most 4 times).
		for i, queued := 0, -1; i < 4 && len(o.reqs) != queued; i++ {
			queued = len(o.reqs)
			runtime.Gosched()
		}
	}
}

// failQueued answers every request still queued with ErrClosed.
func (o *Outbox) failQueued() {
	for {
		select {
		case r := <-o.reqs:
			answer(r, nil, ErrClosed)
		default:
			return
		}
	}
}

func answer(r *appendReq, envs []events.Envelope, err error) {
	r.envs, r.err = envs, err
	close(r.done)
}

// commit writes the admitted requests of one batch in one transaction.
//
// Seqs are assigned here, in batch order, from the in-memory next seq; a
// request refused at admission gives its seqs back to the next one, and a
// failed transaction leaves the in-memory state untouched, so seqs stay
// contiguous. Clock stamps are never given back (the clock only moves
// forward; a gap in stamps is harmless, a repeated one is not).
func (o *Outbox) commit(batch []*appendReq) {
	o.writeMu.Lock()
	st := o.st // consistent: every writer of st holds writeMu
	diskErr := o.disk.check(time.Now())

	var keyed map[string]idemRecord
	var keyErr error
	hasKeys := false
	for _, r := range batch {
		hasKeys = hasKeys || r.key != ""
	}
	if hasKeys {
		keyed, keyErr = o.lookupKeys(batch)
	}
	byKey := map[string]*appendReq{}

	first := st.nextSeq
	seq := first
	buf, ents := o.buf[:0], o.ents[:0]
	var added int64
	var firstWall int64
	var sales []pendingSale
	for _, r := range batch {
		if err := r.ctx.Err(); err != nil {
			r.err = err
			continue
		}
		if r.key != "" {
			if keyErr != nil {
				r.err = keyErr
				continue
			}
			if rec, ok := keyed[r.key]; ok {
				o.replay(r, rec)
				continue
			}
			if prev, ok := byKey[r.key]; ok {
				r.sameAs = prev // answered after the commit, from prev
				continue
			}
			byKey[r.key] = r
		}
		if diskErr != nil {
			r.err = diskErr
			continue
		}
		bufMark, entMark, seqMark, addedMark, salesMark := len(buf), len(ents), seq, added, len(sales)
		envs := make([]events.Envelope, len(r.drafts))
		for i, d := range r.drafts {
			ts := o.clock.Now()
			off := len(buf)
			buf = o.enc.append(buf, r.ids[i], seq, ts, r.tails[i])
			size := int64(len(buf) - off)
			if size > events.MaxEventBytes {
				r.err = fmt.Errorf("%w: draft %d encodes to %d bytes, the limit is %d", ErrTooLarge, i, size, events.MaxEventBytes)
				break
			}
			class := events.ClassOf(d.Kind)
			if st.pendingBytes+added+size > o.limitOf(class) {
				r.err = o.fullErr(class, st.pendingBytes+added, size)
				break
			}
			if seq == first {
				firstWall = ts.Wall
			}
			ents = append(ents, entry{off: off, end: len(buf)})
			envs[i] = events.Envelope{
				V:      events.CurrentVersion,
				ID:     r.ids[i],
				Origin: events.Origin{Store: o.opts.Store, Device: o.opts.Device, Epoch: o.epoch, Seq: seq},
				HLC:    ts,
				Kind:   d.Kind,
				Data:   d.Data,
			}
			if r.values != nil && r.values[i] >= 0 {
				sales = append(sales, pendingSale{seq: seq, value: r.values[i], wall: ts.Wall})
			}
			added += size
			seq++
		}
		if r.err != nil {
			buf, ents, seq, added, sales = buf[:bufMark], ents[:entMark], seqMark, addedMark, sales[:salesMark]
			continue
		}
		r.envs = envs
	}

	var err error
	if len(ents) > 0 {
		last := o.clock.Last()
		keys := o.keys[:0]
		for i := range ents {
			keys = seqKey(keys, first+uint64(i))
		}
		err = o.update(func(tx *bolt.Tx) error {
			if o.testHookCommit != nil {
				if err := o.testHookCommit(); err != nil {
					return err
				}
			}
			eb := tx.Bucket([]byte(bucketEvents))
			eb.FillPercent = 1.0 // keys only ever grow: fill pages completely
			for i, e := range ents {
				if err := eb.Put(keys[i*8:i*8+8], buf[e.off:e.end]); err != nil {
					return err
				}
			}
			if hasKeys {
				if err := o.putKeys(tx, batch, o.opts.Now()); err != nil {
					return err
				}
			}
			return writeAppendState(tx.Bucket([]byte(bucketMeta)), seq, last, st.pendingCount+int64(len(ents)), st.pendingBytes+added)
		})
		if err == nil {
			o.mu.Lock()
			o.st.nextSeq = seq
			o.st.pendingCount += int64(len(ents))
			o.st.pendingBytes += added
			if st.pendingCount == 0 {
				o.st.oldest = time.UnixMilli(firstWall)
			}
			o.st.appends += uint64(len(ents))
			o.st.batches++
			o.addSales(sales)
			o.mu.Unlock()
		} else {
			if errors.Is(err, syscall.ENOSPC) {
				err = fmt.Errorf("%w: %w", ErrFull, err)
			}
			err = fmt.Errorf("outbox: commit of %d events failed, none written: %w", len(ents), err)
			o.log.Error("outbox commit failed", "events", len(ents), "err", err)
		}
		o.keys = keys
	}
	o.writeMu.Unlock()

	// Keep the buffers for the next batch unless one huge batch grew them.
	if cap(buf) <= 2*maxBatchBytes {
		o.buf = buf[:0]
	} else {
		o.buf = nil
	}
	o.ents = ents[:0]

	if err == nil && len(ents) > 0 {
		select {
		case o.changed <- struct{}{}:
		default:
		}
	}
	for _, r := range batch {
		if p := r.sameAs; p != nil {
			// A retry that raced its original into the same batch.
			switch {
			case p.err != nil:
				r.err = p.err
			case err != nil:
				r.err = err
			default:
				o.replay(r, idemRecord{Hash: p.hash, Epoch: o.epoch, First: p.envs[0].Origin.Seq, IDs: p.ids, HLCs: stamps(p.envs)})
			}
		}
		switch {
		case r.replayed && r.err == nil:
			answer(r, r.envs, nil)
		case r.err != nil:
			answer(r, nil, r.err)
		case err != nil:
			answer(r, nil, err)
		default:
			answer(r, r.envs, nil)
		}
	}
	// Each commit reads the tail of the tree through the mapping, and the
	// kernel maps the freshly written pages around each one it faults in
	// (fault-around): an outbox filling up offline would keep about a
	// third of its backlog resident.
	if err == nil && o.dueRelease(added) {
		o.release()
	}
}

// entry locates one encoded envelope in the committer's buffer.
type entry struct{ off, end int }

// limitOf is the pending-byte level a class may fill the outbox to.
func (o *Outbox) limitOf(c events.Class) int64 {
	if c < 0 || int(c) >= len(o.limit) {
		return o.limit[events.ClassCritical]
	}
	return o.limit[c]
}

func (o *Outbox) fullErr(c events.Class, pending, size int64) error {
	lim := o.limitOf(c)
	return fmt.Errorf("%w: a %s event of %d bytes would take pending bytes from %d past %d (%d%% of the %d-byte budget); ack some events first",
		ErrFull, c, size, pending, lim, lim*100/o.opts.BudgetBytes, o.opts.BudgetBytes)
}

// encoder writes an envelope exactly as json.Marshal(events.Envelope) does,
// from the parts prepare encoded, so the committer's share per event is a
// few appends and three integers.
type encoder struct {
	head   []byte // {"v":1,"id":"
	origin []byte // ","origin":{"store":"S","device":"D","epoch":E,"seq":
}

func newEncoder(store, device string, epoch uint64) encoder {
	s, _ := json.Marshal(store) // a string always marshals
	d, _ := json.Marshal(device)
	head := []byte(`{"v":` + strconv.Itoa(events.CurrentVersion) + `,"id":"`)
	origin := []byte(`","origin":{"store":` + string(s) + `,"device":` + string(d) +
		`,"epoch":` + strconv.FormatUint(epoch, 10) + `,"seq":`)
	return encoder{head: head, origin: origin}
}

// overhead estimates the bytes an envelope adds around its tail.
func (e *encoder) overhead() int { return len(e.head) + 36 + len(e.origin) + 60 }

func (e *encoder) append(dst []byte, id string, seq uint64, ts hlc.Timestamp, tail []byte) []byte {
	dst = append(dst, e.head...)
	dst = append(dst, id...) // a UUID: hex digits and dashes, nothing to escape
	dst = append(dst, e.origin...)
	dst = strconv.AppendUint(dst, seq, 10)
	dst = append(dst, `},"hlc":{"wall":`...)
	dst = strconv.AppendInt(dst, ts.Wall, 10)
	dst = append(dst, `,"logical":`...)
	dst = strconv.AppendUint(dst, uint64(ts.Logical), 10)
	dst = append(dst, "},"...)
	return append(dst, tail...)
}
