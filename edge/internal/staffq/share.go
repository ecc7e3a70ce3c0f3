package staffq

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	bolt "go.etcd.io/bbolt"

	"github.com/omnisync/omnisync/shared/events"
	"github.com/omnisync/omnisync/shared/hlc"
	"github.com/omnisync/omnisync/shared/ids"
	"github.com/omnisync/omnisync/shared/subjects"
)

// merge merges records from another agent into the queue and reports how
// many changed it. A record that fails check, carries a stamp too far
// ahead of this agent's clock, or is a done request past KeepDone is
// skipped (and counted in the error), never half-applied.
func (q *Queue) merge(in []record) (int, error) {
	var skipped []error
	ok := in[:0:0]
	for _, r := range in {
		if err := r.check(); err != nil {
			skipped = append(skipped, fmt.Errorf("request %.64q: %w", r.ID, err))
			continue
		}
		r.settle()
		if q.expired(r) {
			continue
		}
		if err := q.observe(r); err != nil {
			skipped = append(skipped, fmt.Errorf("request %s: %w", r.ID, err))
			continue
		}
		ok = append(ok, r)
	}
	changed := 0
	err := q.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketRequests)
		changed = 0
		for _, r := range ok {
			next := r
			raw := b.Get([]byte(r.ID))
			if raw != nil {
				cur, readable := decode(raw, q.o.Device)
				if readable {
					next = merge(cur, r)
				}
			}
			out, err := json.Marshal(next)
			if err != nil {
				return err
			}
			if string(out) == string(raw) {
				continue
			}
			if err := b.Put([]byte(r.ID), out); err != nil {
				return err
			}
			changed++
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("staffq: merge: %w", err)
	}
	if changed > 0 {
		q.notify()
	}
	return changed, errors.Join(skipped...)
}

// maxPeerSkew bounds how far ahead of this agent's clock a stamp may be
// and still move it. The stamps give the page's times and the
// escalation's start, and the clock keeps the largest it has seen across
// restarts, so one handheld with its clock hours fast would otherwise push
// every later request's time into the future and hold back every
// escalation. Such a stamp is still merged (the queues converge), but only
// its own request carries the fast clock. Fifteen minutes is three times
// where the hub flags a device's clock skew (OmniClockSkew).
const maxPeerSkew = 15 * time.Minute

// observe moves the clock past r's stamps (refusing one too far ahead;
// not moved by one beyond maxPeerSkew).
func (q *Queue) observe(r record) error {
	now := q.o.Now().UnixMilli()
	for _, s := range []*Stamp{&r.CreatedAt, r.ClaimedAt, r.DoneAt, r.EscalatedAt} {
		if s == nil {
			continue
		}
		// Up to MaxForwardJump it is merged without moving the clock;
		// beyond, Observe refuses it.
		if ahead := time.Duration(s.HLC.Wall-now) * time.Millisecond; ahead > maxPeerSkew && ahead <= hlc.MaxForwardJump {
			continue
		}
		if err := q.clock.Observe(s.HLC); err != nil {
			return err
		}
	}
	return nil
}

// LinkOptions configures a Link.
type LinkOptions struct {
	// Conn is the agent's NATS connection (it may be down, or never have
	// come up: the queue goes on alone meanwhile). Nil: no sharing, Run
	// waits for its context.
	Conn *nats.Conn
	// Store is this agent's store: the store's subjects carry the queue.
	Store string
	// ResyncEvery: how often the agent sends its whole queue to the
	// others, which heals a message lost on the way (default 1 minute).
	ResyncEvery time.Duration
}

// Link shares the queue with the store's other agents over NATS core
// subjects (see shared/subjects: StaffChanges, StaffSync, StaffReply):
// each change this agent makes is published at once; what the others
// publish is merged; and whenever the connection (re)opens the agent
// sends its whole queue and asks the others for theirs, so one that
// started late or was cut off catches up. Core NATS and no JetStream: the
// queues are the store's memory, NATS only carries them between agents.
type Link struct {
	q     *Queue
	o     LinkOptions
	log   *slog.Logger
	inst  string // this process: its own messages come back and are skipped
	reply string
}

// maxChunk bounds one message of a queue sent whole (NATS's default
// payload limit is 1 MB).
const maxChunk = 128 << 10

// wire is one message on the staff subjects: requests, or (with none) a
// request for the sender's peers' queues.
type wire struct {
	Device   string   `json:"device"`
	Inst     string   `json:"inst"`
	Requests []record `json:"requests,omitempty"`
}

// NewLink makes the queue's link to the store's other agents (one per
// queue; Run starts it).
func (q *Queue) NewLink(o LinkOptions) (*Link, error) {
	if err := events.ValidToken(o.Store); err != nil {
		return nil, fmt.Errorf("staffq: store: %w", err)
	}
	if err := events.ValidToken(q.o.Device); err != nil {
		return nil, fmt.Errorf("staffq: a shared queue needs its device: %w", err)
	}
	if o.ResyncEvery <= 0 {
		o.ResyncEvery = time.Minute
	}
	inst := strings.ReplaceAll(ids.NewEventID(time.Now()), "-", "")
	return &Link{q: q, o: o, log: q.log, inst: inst, reply: subjects.StaffReply(o.Store, inst)}, nil
}

// Run shares the queue until ctx ends.
func (l *Link) Run(ctx context.Context) error {
	nc := l.o.Conn
	if nc == nil {
		<-ctx.Done()
		return nil
	}
	in := make(chan *nats.Msg, 512)
	for _, subj := range []string{subjects.StaffChanges(l.o.Store), subjects.StaffSync(l.o.Store), l.reply} {
		sub, err := nc.ChanSubscribe(subj, in)
		if err != nil {
			return fmt.Errorf("staffq: subscribe %s: %w", subj, err)
		}
		defer func() { _ = sub.Unsubscribe() }()
	}
	up := nc.StatusChanged(nats.CONNECTED)
	defer nc.RemoveStatusListener(up)
	l.q.mu.Lock()
	l.q.share = func(rs []record) { l.send(subjects.StaffChanges(l.o.Store), rs) }
	l.q.mu.Unlock()
	defer func() {
		l.q.mu.Lock()
		l.q.share = nil
		l.q.mu.Unlock()
	}()
	if nc.IsConnected() {
		l.resync()
	}
	t := time.NewTicker(l.o.ResyncEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case m := <-in:
			l.handle(m)
		case <-up:
			l.resync()
		case <-t.C:
			if nc.IsConnected() {
				l.sendAll(subjects.StaffChanges(l.o.Store))
			}
		}
	}
}

// resync sends the whole queue to the others and asks for theirs: on
// every (re)connection, since what changed meanwhile on either side
// never crossed.
func (l *Link) resync() {
	l.sendAll(subjects.StaffChanges(l.o.Store))
	b, _ := json.Marshal(wire{Device: l.q.o.Device, Inst: l.inst})
	if err := l.o.Conn.PublishMsg(&nats.Msg{Subject: subjects.StaffSync(l.o.Store), Reply: l.reply, Data: b}); err != nil {
		l.log.Debug("staffq: asking the store's agents for their queues failed", "err", err)
	}
}

// handle merges another agent's requests, or answers its sync.
func (l *Link) handle(m *nats.Msg) {
	var w wire
	if err := json.Unmarshal(m.Data, &w); err != nil || events.ValidToken(w.Device) != nil {
		l.log.Warn("staffq: unreadable message from the store's agents", "subject", m.Subject, "bytes", len(m.Data))
		return
	}
	if w.Inst == l.inst {
		return
	}
	if m.Subject == subjects.StaffSync(l.o.Store) {
		// Answers go to the asker's reply subject in the store's staff
		// space, and nowhere else.
		if strings.HasPrefix(m.Reply, subjects.StaffReply(l.o.Store, "")) {
			l.sendAll(m.Reply)
		}
		return
	}
	if len(w.Requests) == 0 {
		return
	}
	n, err := l.q.merge(w.Requests)
	if err != nil {
		l.log.Warn("staffq: requests from another agent refused", "from", w.Device, "err", err)
	}
	if n > 0 {
		l.log.Debug("staffq: merged requests from another agent", "from", w.Device, "changed", n)
	}
}

// sendAll sends the whole queue (done requests too: the pages show them).
func (l *Link) sendAll(subj string) {
	rs, err := l.q.records()
	if err != nil {
		l.log.Warn("staffq: the queue cannot be read to share it", "err", err)
		return
	}
	l.send(subj, rs)
}

// send publishes rs on subj in messages of at most maxChunk bytes.
func (l *Link) send(subj string, rs []record) {
	flush := func(chunk []json.RawMessage) {
		if len(chunk) == 0 {
			return
		}
		b, err := json.Marshal(struct {
			Device   string            `json:"device"`
			Inst     string            `json:"inst"`
			Requests []json.RawMessage `json:"requests"`
		}{l.q.o.Device, l.inst, chunk})
		if err == nil {
			err = l.o.Conn.Publish(subj, b)
		}
		if err != nil {
			// Offline: the next (re)connection sends the whole queue.
			l.log.Debug("staffq: sharing requests failed", "subject", subj, "err", err)
		}
	}
	var chunk []json.RawMessage
	size := 0
	for _, r := range rs {
		b, err := json.Marshal(r)
		if err != nil {
			continue
		}
		if size+len(b) > maxChunk {
			flush(chunk)
			chunk, size = nil, 0
		}
		chunk = append(chunk, b)
		size += len(b) + 1
	}
	flush(chunk)
}
