// Package staffq is the store associates' queue of shoppers' requests from
// the fitting rooms ("another size", "another colour", "help"), served to
// a handheld at /staff/.
//
// It exists because a request a shopper makes at the mirror is only worth
// something if somebody on the floor sees it at once, and knows what to
// fetch: each request names the room, the item she is trying, and the
// exact variant to bring (SKU, GTIN, how many the store has), from the
// agent's own product cache, and where in the store it was last seen
// (the area a stock sweep read it in, and which units) when the agent
// knows (edge/internal/whereabouts). An associate claims it and marks it done; a
// request nobody claims within EscalateAfter (3 minutes) is escalated on
// the page and reported to HQ as an assist event with escalated set.
//
// Requests come from the kiosk through Tap, which wraps the agent's outbox:
// every assist event appended (and so durable) becomes a request. The
// queue keeps its state in its own bbolt file, so it works with the store
// offline and survives a restart. The page follows it live (Server-Sent
// Events, with polling as the fallback).
//
// A store has several agents (the one reading the fitting rooms' RFID
// readers, the tills', a handheld's): Link shares the queue among them
// over the store's NATS subjects (a store leaf node keeps them on the
// store's network), so every agent's /staff/ page shows the whole
// store's requests and a claim made on one is seen on all. Each request
// is a record that merges the same whatever the order (merge.go); an
// agent that joins late or comes back from an outage asks the others for
// their queues. Without NATS each agent's queue goes on alone.
//
// Sharp edges: a request is recorded after its event is durable; an agent
// killed between the two loses the request from the queue (the event still
// reaches HQ). Claim and done stay in the store: HQ sees requests and
// escalations, not who fetched what. Only the agent that recorded a
// request escalates it to HQ (one event per request), so a request whose
// agent is down is shown overdue on the other pages but reaches HQ as
// escalated only when that agent is back.
package staffq

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/omnisync/omnisync/edge/internal/posapi"
	"github.com/omnisync/omnisync/edge/internal/whereabouts"
	"github.com/omnisync/omnisync/shared/downsync"
	"github.com/omnisync/omnisync/shared/events"
	"github.com/omnisync/omnisync/shared/hlc"
	"github.com/omnisync/omnisync/shared/ids"
)

// Request states.
const (
	StateOpen    = "open"
	StateClaimed = "claimed"
	StateDone    = "done"
)

// Errors callers branch on.
var (
	// ErrNotFound: no request has that id.
	ErrNotFound = errors.New("staffq: no such request")
	// ErrState: the request is not in a state that allows the change
	// (claiming a done request).
	ErrState = errors.New("staffq: request cannot change that way now")
	// errUnchanged: a change that leaves the request as it was.
	errUnchanged = errors.New("staffq: unchanged")
)

// Products looks variants up in the agent's cache.
type Products interface {
	Lookup(ctx context.Context, code string) (downsync.View, error)
}

// Places looks up where the units of a variant (any of its GTINs) were
// last seen (edge/internal/whereabouts.Book).
type Places interface {
	Where(gtins ...string) (whereabouts.Place, bool)
}

// Options configures a Queue.
type Options struct {
	// Path is the queue's bbolt file.
	Path string
	// Device is this agent's device: the origin of the requests it
	// records and the author of its changes, when the queue is shared.
	Device string
	// Outbox receives escalation events.
	Outbox posapi.Appender
	// Products describes items and the stock to fetch from.
	Products Products
	// Places says where in the store an item was last seen; may be nil.
	Places Places
	// EscalateAfter: an unclaimed request this old is escalated (default
	// 3 minutes). KeepDone: done requests are dropped after this (default
	// 12 hours).
	EscalateAfter, KeepDone time.Duration
	// Now is the clock (tests move it); Logger receives what happened.
	Now    func() time.Time
	Logger *slog.Logger
}

// Item is a variant as the associate needs it.
type Item struct {
	SKU     string `json:"sku"`
	GTIN    string `json:"gtin,omitempty"`
	Name    string `json:"name,omitempty"`
	Variant string `json:"variant,omitempty"` // "M · Black"
	// Here is the available stock in this store (nil: unknown).
	Here *int64 `json:"here,omitempty"`
	// Location is where in the store it was last seen (nil: unknown), on
	// the item to fetch only, as the recording agent knew it then: every
	// agent shows the same request, and a later sweep does not change it.
	Location *Location `json:"location,omitempty"`
}

// Location is where in the store an item was last seen by an RFID sweep.
type Location struct {
	Area   string `json:"area"`
	SeenMS int64  `json:"seen_ms"`
	// Units are serials of units read there (at most maxUnits), so the
	// associate can fetch the very unit.
	Units []string `json:"units,omitempty"`
}

// Request is one shopper's request.
type Request struct {
	ID    string `json:"id"`
	Event string `json:"event_id"`
	// Origin is the device whose agent recorded the request (and
	// escalates it).
	Origin string `json:"origin,omitempty"`
	Zone   string `json:"zone"`
	Reason string `json:"reason"`
	Note   string `json:"note,omitempty"`
	// Trying is what she has in the room; Fetch what to bring.
	Trying    *Item  `json:"trying,omitempty"`
	Fetch     Item   `json:"fetch"`
	State     string `json:"state"`
	CreatedMS int64  `json:"created_ms"`
	ClaimedMS int64  `json:"claimed_ms,omitempty"`
	ClaimedBy string `json:"claimed_by,omitempty"`
	DoneMS    int64  `json:"done_ms,omitempty"`
	// EscalatedMS is when it was escalated (unclaimed for EscalateAfter).
	EscalatedMS int64 `json:"escalated_ms,omitempty"`
}

// Snapshot is the queue as the page shows it.
type Snapshot struct {
	NowMS           int64     `json:"now_ms"`
	EscalateAfterMS int64     `json:"escalate_after_ms"`
	Version         uint64    `json:"version"`
	Requests        []Request `json:"requests"`
}

var bucketRequests = []byte("requests")

// Queue is the store's request queue.
type Queue struct {
	o   Options
	log *slog.Logger
	db  *bolt.DB

	// clock stamps this agent's changes; it observes every stamp merged,
	// so a change made after seeing another agent's orders after it.
	clock *hlc.Clock

	mu      sync.Mutex
	version uint64
	changed chan struct{}  // closed and replaced on every change
	share   func([]record) // the Link's publisher while it runs
}

// Open opens (creating) the queue's file.
func Open(o Options) (*Queue, error) {
	if o.Path == "" {
		return nil, errors.New("staffq: Path is required")
	}
	if o.EscalateAfter <= 0 {
		o.EscalateAfter = 3 * time.Minute
	}
	if o.KeepDone <= 0 {
		o.KeepDone = 12 * time.Hour
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	db, err := bolt.Open(o.Path, 0o600, &bolt.Options{Timeout: 5 * time.Second})
	if err != nil {
		return nil, fmt.Errorf("staffq: open %s: %w", o.Path, err)
	}
	// The clock starts above every stamp kept, so a change made after a
	// restart (or a step of the wall clock back) still orders last.
	var floor hlc.Timestamp
	if err := db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(bucketRequests)
		if err != nil {
			return err
		}
		return b.ForEach(func(_, raw []byte) error {
			if r, ok := decode(raw, o.Device); ok {
				for _, s := range []*Stamp{&r.CreatedAt, r.ClaimedAt, r.DoneAt, r.EscalatedAt} {
					if s != nil && s.HLC.Compare(floor) > 0 {
						floor = s.HLC
					}
				}
			}
			return nil
		})
	}); err != nil {
		db.Close()
		return nil, fmt.Errorf("staffq: %w", err)
	}
	return &Queue{o: o, log: o.Logger, db: db, clock: hlc.New(o.Now, floor), changed: make(chan struct{})}, nil
}

// decode reads a stored record (one written before sharing gets its
// stamps as device's own).
func decode(raw []byte, device string) (record, bool) {
	var r record
	if err := json.Unmarshal(raw, &r); err != nil || r.ID == "" {
		return r, false // unreadable: skipped, never fatal
	}
	r.upgrade(device)
	return r, true
}

// stamp is a new stamp of this agent's.
func (q *Queue) stamp() Stamp { return Stamp{HLC: q.clock.Now(), Device: q.o.Device} }

// publish hands changed records to the Link, if one runs.
func (q *Queue) publish(rs ...record) {
	q.mu.Lock()
	share := q.share
	q.mu.Unlock()
	if share != nil && len(rs) > 0 {
		share(rs)
	}
}

// records reads every record.
func (q *Queue) records() ([]record, error) {
	var out []record
	err := q.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketRequests).ForEach(func(_, raw []byte) error {
			if r, ok := decode(raw, q.o.Device); ok {
				out = append(out, r)
			}
			return nil
		})
	})
	return out, err
}

// Close closes the file.
func (q *Queue) Close() error { return q.db.Close() }

// notify wakes the live pages.
func (q *Queue) notify() {
	q.mu.Lock()
	q.version++
	close(q.changed)
	q.changed = make(chan struct{})
	q.mu.Unlock()
}

// watch returns the current version and a channel closed at the next change.
func (q *Queue) watch() (uint64, <-chan struct{}) {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.version, q.changed
}

// Snapshot lists the requests: open and escalated first (oldest first),
// then claimed, then done (newest first).
func (q *Queue) Snapshot() (Snapshot, error) {
	v, _ := q.watch()
	s := Snapshot{NowMS: q.o.Now().UnixMilli(), EscalateAfterMS: q.o.EscalateAfter.Milliseconds(), Version: v, Requests: []Request{}}
	rs, err := q.records()
	for _, r := range rs {
		s.Requests = append(s.Requests, r.Request)
	}
	rank := map[string]int{StateOpen: 0, StateClaimed: 1, StateDone: 2}
	slices.SortFunc(s.Requests, func(a, b Request) int {
		if rank[a.State] != rank[b.State] {
			return rank[a.State] - rank[b.State]
		}
		if a.State == StateDone && a.DoneMS != b.DoneMS {
			return cmp.Compare(b.DoneMS, a.DoneMS)
		}
		if a.CreatedMS != b.CreatedMS {
			return cmp.Compare(a.CreatedMS, b.CreatedMS)
		}
		return cmp.Compare(a.ID, b.ID)
	})
	return s, err
}

// add records a request, created now by this agent, unless one with its
// id is there already.
func (q *Queue) add(r Request) (bool, error) {
	rec := record{Request: r, CreatedAt: q.stamp()}
	rec.Origin = q.o.Device
	rec.settle()
	added := false
	err := q.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketRequests)
		if b.Get([]byte(r.ID)) != nil {
			return nil
		}
		raw, err := json.Marshal(rec)
		if err != nil {
			return err
		}
		added = true
		return b.Put([]byte(r.ID), raw)
	})
	if added {
		q.notify()
		q.publish(rec)
	}
	return added, err
}

// change applies fn to request id in one transaction; fn returning
// errUnchanged leaves it as it is.
func (q *Queue) change(id string, fn func(r *record) error) (Request, error) {
	var r record
	err := q.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketRequests)
		raw := b.Get([]byte(id))
		if raw == nil {
			return ErrNotFound
		}
		var ok bool
		if r, ok = decode(raw, q.o.Device); !ok {
			return fmt.Errorf("staffq: request %s unreadable", id)
		}
		if err := fn(&r); err != nil {
			return err
		}
		r.settle()
		out, err := json.Marshal(r)
		if err != nil {
			return err
		}
		return b.Put([]byte(id), out)
	})
	switch {
	case errors.Is(err, errUnchanged):
		return r.Request, nil
	case err == nil:
		q.notify()
		q.publish(r)
	}
	return r.Request, err
}

// Claim marks a request taken by an associate (by may be empty). Claiming
// a request already claimed is allowed (another associate takes over).
func (q *Queue) Claim(id, by string) (Request, error) {
	return q.change(id, func(r *record) error {
		if r.DoneAt != nil {
			return ErrState
		}
		at := q.stamp()
		r.ClaimedAt, r.ClaimedBy = &at, by
		return nil
	})
}

// Finish marks a request done. Finishing a done request changes nothing.
func (q *Queue) Finish(id string) (Request, error) {
	return q.change(id, func(r *record) error {
		if r.DoneAt != nil {
			return errUnchanged
		}
		at := q.stamp()
		r.DoneAt = &at
		return nil
	})
}

// Run escalates requests left unclaimed for EscalateAfter and drops done
// ones after KeepDone, every second, until ctx ends.
func (q *Queue) Run(ctx context.Context) error {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		if err := q.Sweep(ctx); err != nil && ctx.Err() == nil {
			q.log.Warn("staffq: sweep failed", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// Sweep escalates and expires once (Run calls it every second).
func (q *Queue) Sweep(ctx context.Context) error {
	now := q.o.Now()
	var due []Request
	var stale [][]byte
	err := q.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketRequests).ForEach(func(k, raw []byte) error {
			r, ok := decode(raw, q.o.Device)
			if !ok {
				return nil
			}
			switch {
			// Only the agent that recorded a request tells HQ: one
			// escalation per request however many agents share it.
			case r.State == StateOpen && r.EscalatedAt == nil && r.Origin == q.o.Device && now.Sub(time.UnixMilli(r.CreatedMS)) >= q.o.EscalateAfter:
				due = append(due, r.Request)
			case q.expired(r):
				stale = append(stale, slices.Clone(k))
			}
			return nil
		})
	})
	if err != nil {
		return err
	}
	for _, r := range due {
		// The event first: an escalation HQ never hears of must be tried
		// again at the next sweep.
		body := events.Assist{Zone: r.Zone, SKU: r.Fetch.SKU, Reason: r.Reason, Request: r.ID, Escalated: true,
			WaitedMS: now.UnixMilli() - r.CreatedMS}
		if r.Trying != nil {
			body.From = r.Trying.SKU
		}
		data, _ := json.Marshal(body)
		if q.o.Outbox != nil {
			if _, _, err := q.o.Outbox.AppendOnce(ctx, "staffq-escalate-"+r.ID, []events.Draft{{Kind: events.KindAssist, Data: data}}); err != nil {
				return fmt.Errorf("staffq: escalation of %s: %w", r.ID, err)
			}
		}
		if _, err := q.change(r.ID, func(x *record) error {
			if x.EscalatedAt != nil {
				return errUnchanged
			}
			at := q.stamp()
			x.EscalatedAt = &at
			return nil
		}); err != nil {
			return err
		}
		q.log.Warn("staffq: request unanswered, escalated", "request", r.ID, "zone", r.Zone, "waited", now.Sub(time.UnixMilli(r.CreatedMS)).Round(time.Second))
	}
	if len(stale) > 0 {
		err := q.db.Update(func(tx *bolt.Tx) error {
			b := tx.Bucket(bucketRequests)
			for _, k := range stale {
				if err := b.Delete(k); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
		q.notify()
	}
	return nil
}

// expired reports whether r is a done request older than KeepDone: the
// queue drops it, and refuses it from another agent.
func (q *Queue) expired(r record) bool {
	return r.DoneAt != nil && q.o.Now().Sub(time.UnixMilli(r.DoneMS)) >= q.o.KeepDone
}

// Tap wraps the agent's outbox: assist events appended through it become
// requests on the queue (once durable). It fills a missing request id
// (derived from the idempotency key, so a retried form is the same
// request) and reason (size, colour or help, from the catalog).
func (q *Queue) Tap(next posapi.Appender) posapi.Appender { return tap{q: q, next: next} }

type tap struct {
	q    *Queue
	next posapi.Appender
}

func (t tap) Append(ctx context.Context, drafts []events.Draft) ([]events.Envelope, error) {
	drafts = t.q.prepare(ctx, drafts, "")
	envs, err := t.next.Append(ctx, drafts)
	if err == nil {
		t.q.record(ctx, envs)
	}
	return envs, err
}

func (t tap) AppendOnce(ctx context.Context, key string, drafts []events.Draft) ([]events.Envelope, bool, error) {
	drafts = t.q.prepare(ctx, drafts, key)
	envs, replayed, err := t.next.AppendOnce(ctx, key, drafts)
	if err == nil {
		t.q.record(ctx, envs)
	}
	return envs, replayed, err
}

// prepare fills request ids and reasons of assist drafts.
func (q *Queue) prepare(ctx context.Context, drafts []events.Draft, key string) []events.Draft {
	var out []events.Draft
	for i, d := range drafts {
		if d.Kind != events.KindAssist {
			continue
		}
		var a events.Assist
		if json.Unmarshal(d.Data, &a) != nil {
			continue
		}
		changed := false
		if a.Request == "" {
			if key != "" {
				h := sha256.Sum256([]byte(fmt.Sprintf("%s#%d", key, i)))
				a.Request = hex.EncodeToString(h[:8])
			} else {
				a.Request = ids.NewEventID(q.o.Now())
			}
			changed = true
		}
		if a.Reason == "" {
			a.Reason = q.reasonOf(ctx, a)
			changed = true
		}
		if !changed {
			continue
		}
		data, err := setFields(d.Data, map[string]any{"request": a.Request, "reason": a.Reason})
		if err != nil {
			continue
		}
		if out == nil {
			out = slices.Clone(drafts)
		}
		out[i].Data = data
	}
	if out == nil {
		return drafts
	}
	return out
}

// reasonOf tells a size from a colour request: another colour of the
// product tried is a colour request, the item itself a call for help.
func (q *Queue) reasonOf(ctx context.Context, a events.Assist) string {
	if a.From == "" || a.From == a.SKU {
		return events.AssistHelp
	}
	if q.o.Products != nil {
		if v, err := q.o.Products.Lookup(ctx, a.SKU); err == nil {
			var want, from *downsync.VariantView
			for i := range v.Variants {
				switch v.Variants[i].SKU {
				case a.SKU:
					want = &v.Variants[i]
				case a.From:
					from = &v.Variants[i]
				}
			}
			if want != nil && from != nil && want.Colour != from.Colour {
				return events.AssistColour
			}
		}
	}
	return events.AssistSize
}

// setFields sets keys of a JSON object, keeping the rest as written.
func setFields(data json.RawMessage, kv map[string]any) (json.RawMessage, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, err
	}
	for k, v := range kv {
		b, err := json.Marshal(v)
		if err != nil {
			return nil, err
		}
		m[k] = b
	}
	return json.Marshal(m)
}

// record adds the assist events' requests to the queue.
func (q *Queue) record(ctx context.Context, envs []events.Envelope) {
	for _, e := range envs {
		if e.Kind != events.KindAssist {
			continue
		}
		var a events.Assist
		if json.Unmarshal(e.Data, &a) != nil || a.Request == "" || a.Escalated {
			continue
		}
		r := Request{ID: a.Request, Event: e.ID, Zone: a.Zone, Reason: a.Reason, Note: a.Note, Fetch: q.item(ctx, a.SKU, a.Reason != events.AssistHelp)}
		if a.From != "" && a.From != a.SKU {
			it := q.item(ctx, a.From, false)
			r.Trying = &it
		} else if a.Reason == events.AssistHelp && a.SKU != "" {
			// Help with the item she holds; a call from the room
			// itself names none, and the page shows just the room.
			it := r.Fetch
			r.Trying = &it
		}
		added, err := q.add(r)
		if err != nil {
			q.log.Error("staffq: request not recorded", "request", r.ID, "event", e.ID, "err", err)
			continue
		}
		if added {
			q.log.Info("staffq: request", "request", r.ID, "zone", r.Zone, "reason", r.Reason, "sku", r.Fetch.SKU)
		}
	}
}

// item describes a SKU from the cache (just the SKU when unknown), and
// where it was last seen when it is to be fetched (locate).
func (q *Queue) item(ctx context.Context, sku string, locate bool) Item {
	it := Item{SKU: sku}
	if q.o.Products == nil {
		return it
	}
	v, err := q.o.Products.Lookup(ctx, sku)
	if err != nil {
		return it
	}
	it.Name = v.Product.Name
	for _, vv := range v.Variants {
		if vv.SKU != sku {
			continue
		}
		if len(vv.GTINs) > 0 {
			it.GTIN = vv.GTINs[0]
		}
		switch {
		case vv.Size != "" && vv.Colour != "":
			it.Variant = vv.Size + " · " + vv.Colour
		case vv.Size != "":
			it.Variant = vv.Size
		default:
			it.Variant = vv.Colour
		}
		if h := vv.Stock.Here; h != nil {
			n := h.Available
			it.Here = &n
		}
		if locate && q.o.Places != nil && len(vv.GTINs) > 0 {
			if p, ok := q.o.Places.Where(vv.GTINs...); ok && p.Area != "" {
				it.Location = &Location{Area: p.Area, SeenMS: p.Seen.UnixMilli(), Units: p.Units[:min(len(p.Units), maxUnits)]}
			}
		}
	}
	return it
}
