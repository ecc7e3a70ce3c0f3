package kvfollow

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Config says what a read reads.
type Config struct {
	// Stream is the bucket's stream (KV_<bucket>).
	Stream string
	// Filters are the subjects to read (at least one). With exactly one,
	// the consumer create request carries it in its subject, which is what
	// permissions scoped to a filter check.
	Filters []string
	// After is the stream sequence the read starts after: the position the
	// owner stored. 0 reads from the start of the stream.
	After uint64
	// LastPerSubject reads only the last message of each subject, what the
	// bucket holds now, instead of every message from the start (After must
	// be 0). The entries still come in stream order.
	LastPerSubject bool
	// HeadersOnly leaves values out (Entry.Value is empty): for readers
	// that need revisions and headers only.
	HeadersOnly bool
	// UpTo, if not 0, bounds the read: it never hands over an entry after
	// UpTo, and returns nil once it has handed over the message at UpTo or
	// caught up.
	UpTo uint64
	// Check, if set, is called about once a second while the read runs,
	// between deliveries; an error ends the read with it (wrap ErrRestart
	// for a session that should start again at once).
	Check func(context.Context) error
}

func (c *Config) validate() error {
	switch {
	case c.Stream == "" || len(c.Filters) == 0:
		return fmt.Errorf("%w: Config.Stream and Config.Filters are required", ErrInvalidOption)
	case c.LastPerSubject && c.After > 0:
		return fmt.Errorf("%w: Config.LastPerSubject reads from the start, not after %d", ErrInvalidOption, c.After)
	case c.UpTo > 0 && c.UpTo <= c.After:
		return fmt.Errorf("%w: Config.UpTo %d is not after %d", ErrInvalidOption, c.UpTo, c.After)
	}
	return nil
}

// Entry is one message of the bucket's stream: a key's new value, or its
// deletion (Op KeyValueDelete or KeyValuePurge, Value empty).
type Entry struct {
	// Subject is the key's subject: the bucket's prefix and the key.
	Subject string
	Op      jetstream.KeyValueOp
	Value   []byte
	Header  nats.Header
	// Revision is the message's stream sequence: the key's revision, and
	// the position to resume after once the entry is applied.
	Revision uint64
	// Time is when the server stored the message.
	Time time.Time
}

// Deleted reports whether the entry removes its key.
func (e Entry) Deleted() bool { return e.Op != jetstream.KeyValuePut }

// Batch is what a read hands over at once, in stream order.
type Batch struct {
	Entries []Entry
	// CaughtUp: after the last entry (or at the start of the read, for an
	// empty batch) the consumer had nothing more pending, so whoever applied
	// every batch so far holds what the stream had for the filters.
	CaughtUp bool
}

// Last is the revision of the batch's last entry, or 0 for an empty batch.
func (b Batch) Last() uint64 {
	if len(b.Entries) == 0 {
		return 0
	}
	return b.Entries[len(b.Entries)-1].Revision
}

// Read reads the stream as c says, handing batches to apply on the
// caller's goroutine, until ctx ends, apply or Check fails, the consumer
// must be restarted (ErrRestart), a read that has not caught up stalls
// for RequestTimeout, or a read with UpTo is done (nil). apply may keep
// the batch's entries.
func (f *Follower) Read(ctx context.Context, c Config, apply func(context.Context, Batch) error) error {
	if err := c.validate(); err != nil {
		return err
	}
	reconnects := f.o.Conn.Stats().Reconnects
	r, err := f.consume(ctx, c)
	if err != nil {
		return err
	}
	defer f.stopReader(r)

	var (
		batch    []Entry
		last     = c.After
		consumer string
		caughtUp = r.pending == 0
		// lastDone: the consumer had nothing pending after the last entry.
		lastDone bool
		idle     = time.NewTimer(f.o.RequestTimeout)
		delay    = time.NewTimer(f.o.MaxDelay)
		check    = time.NewTicker(time.Second)
	)
	delay.Stop()
	defer idle.Stop()
	defer delay.Stop()
	defer check.Stop()
	flush := func(ctx context.Context, done bool) error {
		delay.Stop()
		if len(batch) == 0 && !done {
			return nil
		}
		b := Batch{Entries: batch, CaughtUp: done}
		batch = nil
		return apply(ctx, b)
	}
	// end ends the read with err, handing over what it holds first.
	end := func(err error) error { return errors.Join(err, flush(ctx, false)) }

	if caughtUp {
		idle.Stop()
		if err := flush(ctx, true); err != nil || c.UpTo > 0 {
			return err
		}
	}
	for {
		select {
		case <-ctx.Done():
			// What was delivered is handed over even now: it is correct,
			// and saves reading it again.
			return errors.Join(ctx.Err(), flush(context.WithoutCancel(ctx), false))
		case err := <-r.failed:
			return end(fmt.Errorf("%w: consumer: %w", ErrRestart, err))
		case <-idle.C:
			if caughtUp {
				continue // stopped as it fired
			}
			return end(fmt.Errorf("kvfollow: reading %s: no message for %v while catching up", c.Stream, f.o.RequestTimeout))
		case <-delay.C:
			if err := flush(ctx, lastDone && len(batch) > 0); err != nil {
				return err
			}
			if !caughtUp {
				idle.Reset(f.o.RequestTimeout) // apply's time is not the consumer's
			}
		case <-check.C:
			if f.o.Conn.Stats().Reconnects != reconnects {
				return end(fmt.Errorf("%w: reconnected", ErrRestart))
			}
			if c.Check != nil {
				if err := c.Check(ctx); err != nil {
					return end(err)
				}
			}
		case m := <-r.msgs:
			md, err := m.Metadata()
			if err != nil {
				return end(fmt.Errorf("%w: message metadata: %w", ErrRestart, err))
			}
			if consumer != "" && md.Consumer != consumer {
				// The ordered consumer recreated itself (a gap, a
				// reconnect): the owner goes on from what it applied.
				return end(fmt.Errorf("%w: consumer recreated", ErrRestart))
			}
			consumer = md.Consumer
			seq := md.Sequence.Stream
			if c.UpTo > 0 && seq > c.UpTo {
				return flush(ctx, false)
			}
			if seq <= last {
				continue // handed over already
			}
			f.received(m, md.NumPending)
			batch = append(batch, entryOf(m, md))
			last = seq
			done := md.NumPending == 0
			lastDone = done
			first := done && !caughtUp
			if first {
				caughtUp = true
				idle.Stop()
			}
			finished := c.UpTo > 0 && (seq == c.UpTo || done)
			switch {
			case first, finished, len(batch) >= f.o.MaxBatch:
				if err := flush(ctx, done); err != nil || finished {
					return err
				}
			case len(batch) == 1:
				// Once caught up, nothing pending is the usual state:
				// live changes arrive one by one, and a writer's burst
				// (a hub publishing a thousand stock positions) would
				// otherwise cost the owner a transaction each.
				delay.Reset(f.o.MaxDelay)
			}
			if !caughtUp {
				idle.Reset(f.o.RequestTimeout)
			}
		}
	}
}

func entryOf(m jetstream.Msg, md *jetstream.MsgMetadata) Entry {
	e := Entry{Subject: m.Subject(), Value: m.Data(), Header: m.Headers(), Revision: md.Sequence.Stream, Time: md.Timestamp}
	switch m.Headers().Get(kvOperation) {
	case "DEL":
		e.Op, e.Value = jetstream.KeyValueDelete, nil
	case "PURGE":
		e.Op, e.Value = jetstream.KeyValuePurge, nil
	}
	return e
}

// kvOperation is the header a KV delete or purge marker carries.
const kvOperation = "KV-Operation"

// reader hands an ordered consumer's messages over on msgs, and its
// failures on failed, until stopped with stopReader.
type reader struct {
	cc      jetstream.ConsumeContext
	msgs    chan jetstream.Msg
	failed  chan error
	halt    chan struct{}
	pending uint64 // what the consumer had to deliver when it was created
}

// consume creates an ordered consumer and starts reading it.
func (f *Follower) consume(ctx context.Context, c Config) (*reader, error) {
	cfg := jetstream.OrderedConsumerConfig{
		FilterSubjects: c.Filters,
		DeliverPolicy:  jetstream.DeliverAllPolicy,
		HeadersOnly:    c.HeadersOnly,
		// A consumer that cannot be recreated at once ends the read, and
		// the owner's next session starts from what it applied; retrying
		// in the background would only delay that.
		MaxResetAttempts: 1,
	}
	switch {
	case c.LastPerSubject:
		cfg.DeliverPolicy = jetstream.DeliverLastPerSubjectPolicy
	case c.After > 0:
		cfg.DeliverPolicy, cfg.OptStartSeq = jetstream.DeliverByStartSequencePolicy, c.After+1
	}
	cctx, cancel := context.WithTimeout(ctx, f.o.RequestTimeout)
	cons, err := f.o.JS.OrderedConsumer(cctx, c.Stream, cfg)
	cancel()
	if err != nil {
		return nil, fmt.Errorf("%s: consumer on %s: %w", f.o.Name, c.Stream, err)
	}
	f.consumers.Add(1)
	r := &reader{
		msgs:   make(chan jetstream.Msg, f.o.MaxBatch),
		failed: make(chan error, 1),
		halt:   make(chan struct{}),
	}
	if info := cons.CachedInfo(); info != nil {
		r.pending = info.NumPending
	}
	r.cc, err = cons.Consume(func(m jetstream.Msg) {
		select {
		case r.msgs <- m:
		case <-r.halt:
		}
	}, jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
		select {
		case r.failed <- err:
		default:
		}
	}), jetstream.PullMaxMessages(f.o.MaxBatch))
	if err != nil {
		return nil, fmt.Errorf("%s: consume %s: %w", f.o.Name, c.Stream, err)
	}
	f.mu.Lock()
	f.reading++
	f.pending = r.pending
	f.lastErr = ""
	f.mu.Unlock()
	return r, nil
}

// stopReader stops a reader without waiting long: an ordered consumer busy
// recreating itself (offline) holds its lock until its current attempt
// ends, and the owner's shutdown must not wait for that. The attempt ends
// by itself (it sees the consumer stopped, or the connection closed), and
// the goroutine with it.
func (f *Follower) stopReader(r *reader) {
	f.mu.Lock()
	f.reading--
	f.mu.Unlock()
	close(r.halt)
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		r.cc.Stop()
	}()
	select {
	case <-stopped:
	case <-time.After(time.Second):
		f.log.Debug(f.o.Name + ": consumer still recreating itself; leaving it to stop")
	}
}

// received counts a delivered message.
func (f *Follower) received(m jetstream.Msg, pending uint64) {
	f.messages.Add(1)
	f.bytes.Add(uint64(wireSize(m)))
	f.mu.Lock()
	f.pending = pending
	f.mu.Unlock()
}

// wireSize is about what a message took on the wire: subject, reply,
// headers and payload.
func wireSize(m jetstream.Msg) int {
	n := len(m.Subject()) + len(m.Reply()) + len(m.Data())
	if h := m.Headers(); len(h) > 0 {
		n += len("NATS/1.0\r\n\r\n")
		for k, vs := range h {
			for _, v := range vs {
				n += len(k) + len(": \r\n") + len(v)
			}
		}
	}
	return n
}
