package store

import (
	"cmp"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/omnisync/omnisync/cloud/internal/inventory"
	"github.com/omnisync/omnisync/shared/events"
	"github.com/omnisync/omnisync/shared/retry"
)

// ApplyBatch applies items exactly once, in one transaction: dedup by
// origin, the effects on every aggregate of the books, dead letters and
// device progress commit together or not at all. An item already
// processed (by any replica, at any time) is a duplicate and changes
// nothing; an item rejected by the caller, from a future schema version,
// of an unknown kind or with a body an aggregate's rules cannot apply is
// kept in the dead letters and counts as processed. Items too far ahead of
// their device's watermark are deferred.
//
// The frame: dedup and device ordering, then each applied item is handed
// to the appliers of the aggregates it concerns (appliers.go), in their
// fixed order, then dead letters and device progress, then one commit.
//
// Items may come in any order, from any devices, with repeats; the result
// does not depend on how a log is split into batches or ordered. On
// PostgreSQL a transaction that loses a deadlock or serialization conflict
// to another replica is retried from the start; the error returned is the
// last one. When ApplyBatch returns an error nothing was committed and the
// whole batch may be redelivered.
func (s *Store) ApplyBatch(ctx context.Context, items []Item) (BatchResult, error) {
	return s.ApplyPrepared(ctx, s.Prepare(items))
}

// Prepared is a batch read and sorted for ApplyPrepared: the part of
// applying that needs no database (decoding every event's body into its
// aggregates' terms, grouping by device). A hub prepares the next batch
// while the previous one commits.
type Prepared struct {
	p *plan
}

// Prepare reads items for ApplyPrepared. It does no I/O and may run
// concurrently with ApplyPrepared of another batch. items must not change
// until the batch is applied.
func (s *Store) Prepare(items []Item) *Prepared {
	if len(items) == 0 {
		return &Prepared{}
	}
	return &Prepared{p: s.plan(items)}
}

// Items are the items b was prepared from.
func (b *Prepared) Items() []Item {
	if b == nil || b.p == nil {
		return nil
	}
	return b.p.items
}

// ApplyPrepared is ApplyBatch of a prepared batch.
func (s *Store) ApplyPrepared(ctx context.Context, b *Prepared) (BatchResult, error) {
	if b == nil || b.p == nil {
		return BatchResult{}, nil
	}
	p := b.p
	var res BatchResult
	err := s.retry(ctx, "apply batch", func() error {
		for {
			var err error
			res, err = s.applyOnce(ctx, p)
			switch {
			case errors.Is(err, errLedgerSeen) && !p.ledgerSeen:
				p.ledgerSeen = true
			case errors.Is(err, errUnknownRow) && !p.ensureAll:
				s.known.reset()
				p.ensureAll = true
			case errors.Is(err, errStaleStock) && !p.lockStock:
				// Another replica changed a position this one had
				// cached: redo the batch reading every position locked.
				s.stockRedos.Add(1)
				s.stockMode.stale()
				p.lockStock = true
			default:
				return err
			}
		}
	})
	if err != nil {
		return BatchResult{}, err
	}
	return res, nil
}

// retry runs fn (one whole transaction) until it succeeds, fails with an
// error that is not a transient conflict, or maxRetries retries are spent.
func (s *Store) retry(ctx context.Context, what string, fn func() error) error {
	bo := retry.Backoff{Min: 2 * time.Millisecond, Max: 128 * time.Millisecond}
	for attempt := 0; ; attempt++ {
		err := fn()
		if err == nil || !s.d.retryable(err) || attempt >= s.maxRetries {
			return err
		}
		s.log.Warn("store: transaction conflict, retrying", "op", what, "attempt", attempt+1, "backoff", bo.Current(), "err", err)
		if bo.Wait(ctx) != nil {
			return err
		}
	}
}

// plan is the part of a batch worked out once, outside the (retried)
// transaction: which device each item belongs to, why it must be
// dead-lettered if it must, and what each aggregate reads in it.
type plan struct {
	items  []Item
	dev    []int    // index into devs; -1 when the origin cannot be deduplicated
	devs   []devKey // sorted, unique: the device lock order
	order  []int    // items with a usable origin, by (device, seq): dedup order
	reason []string // non-empty: dead-letter with this reason
	// read[a][i] is what applier a reads in item i (nil: nothing);
	// read[a] is nil when applier a reads none of the items.
	read [][]any
	// ledgerSeen: some line of the batch may already be in the ledger, so the
	// ledger insert must say which lines went in.
	ledgerSeen bool
	// ensureAll: insert every row the batch locks if missing, known or
	// not (a row taken as known was not there: errUnknownRow).
	ensureAll bool
	// lockStock: read every position the batch touches locked, none
	// from the store's cache (a cached one was stale: errStaleStock).
	lockStock bool
}

func (s *Store) plan(items []Item) *plan {
	n := len(items)
	p := &plan{items: items, dev: make([]int, n), reason: make([]string, n), read: make([][]any, len(s.appliers))}
	usable := make([]bool, n)
	seen := map[devKey]bool{}
	for i, it := range items {
		e := &it.Env
		o := e.Origin
		usable[i] = it.replay == nil && o.Store != "" && o.Device != "" && o.Epoch != 0 && o.Seq != 0 && o.Epoch <= math.MaxInt64 && o.Seq <= math.MaxInt64
		switch {
		case it.Reject != "":
			p.reason[i] = it.Reject
		case e.V > events.CurrentVersion:
			p.reason[i] = fmt.Sprintf("%v: version %d, this hub reads up to %d", events.ErrUnsupportedVersion, e.V, events.CurrentVersion)
		case !usable[i] && it.replay == nil:
			p.reason[i] = fmt.Sprintf("origin %+v cannot be deduplicated", o)
		case !events.Known(e.Kind):
			p.reason[i] = fmt.Sprintf("unknown kind %q", e.Kind)
		default:
			// Several appliers read a stock move's body (ledger,
			// exceptions, purchases): decoded once, here, when the
			// envelope does not keep it from events.Decode already. e is
			// this loop's copy of the item: the caller's is not touched.
			e.KeepBody()
			for a, ap := range s.appliers {
				v, err := ap.read(s, e)
				if err != nil {
					p.reason[i] = err.Error()
					break
				}
				if v == nil {
					continue
				}
				if p.read[a] == nil {
					p.read[a] = make([]any, n)
				}
				p.read[a][i] = v
			}
		}
		if usable[i] {
			seen[devKey{o.Store, o.Device, o.Epoch}] = true
		} else if it.replay == nil {
			s.log.Warn("store: item without a usable origin is dead-lettered without dedup", "event_id", e.ID, "store", o.Store, "device", o.Device)
		}
	}
	for k := range seen {
		p.devs = append(p.devs, k)
	}
	slices.SortFunc(p.devs, devKey.compare)
	for i, it := range items {
		p.dev[i] = -1
		if !usable[i] {
			continue
		}
		o := it.Env.Origin
		p.dev[i], _ = slices.BinarySearchFunc(p.devs, devKey{o.Store, o.Device, o.Epoch}, devKey.compare)
		p.order = append(p.order, i)
	}
	slices.SortFunc(p.order, func(a, b int) int {
		if c := cmp.Compare(p.dev[a], p.dev[b]); c != 0 {
			return c
		}
		if c := cmp.Compare(items[a].Env.Origin.Seq, items[b].Env.Origin.Seq); c != 0 {
			return c
		}
		return cmp.Compare(a, b)
	})
	return p
}

func (s *Store) applyOnce(ctx context.Context, p *plan) (BatchResult, error) {
	var res BatchResult
	s.stepStart()
	nowMS := s.now().UnixMilli()
	// A connection of its own, so the ledger can be copied over it in the
	// transaction.
	conn, err := s.w.Conn(ctx)
	if err != nil {
		return res, fmt.Errorf("store: connection: %w", err)
	}
	defer conn.Close()
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		return res, fmt.Errorf("store: begin: %w", err)
	}
	defer tx.Rollback()

	step := s.stepTimer()
	t := newApplyTx(s, conn, tx, p, nowMS, nil)
	devs, err := s.lockDevices(ctx, t, p.devs)
	if err != nil {
		return res, err
	}
	process := make([]bool, len(p.items))
	for _, i := range p.order {
		d := devs[p.dev[i]]
		switch seq := p.items[i].Env.Origin.Seq; d.check(seq) {
		case seqDuplicate:
			res.Duplicates++
		case seqDeferred:
			res.Deferred = append(res.Deferred, i)
		default:
			d.mark(seq)
			d.dirty = true
			process[i] = true
		}
	}
	slices.Sort(res.Deferred)
	var candidates []int
	for i := range p.items {
		if p.dev[i] < 0 {
			process[i] = true
		}
		if process[i] && p.reason[i] == "" {
			candidates = append(candidates, i)
		}
	}
	// Gates may refuse items on what the database holds (a rule the
	// items' bodies alone cannot decide), before any aggregate applies
	// them; a refused item is dead-lettered like any other.
	t.applied = onceByID(p, candidates)
	step("dedup")
	for _, ap := range s.appliers {
		if g, ok := ap.(gate); ok {
			if err := g.gate(ctx, t); err != nil {
				return res, fmt.Errorf("store: %s: %w", ap.name(), err)
			}
			step(ap.name() + "-gate")
		}
	}
	if len(t.rejected)+len(t.diverted) > 0 {
		t.applied = slices.DeleteFunc(t.applied, func(i int) bool { return t.rejected[i] != "" || t.diverted[i] })
	}
	var apply, dead []int
	reason := func(i int) string {
		if r := p.reason[i]; r != "" {
			return r
		}
		return t.rejected[i]
	}
	for i := range p.items {
		if !process[i] {
			continue
		}
		var d *devRow
		if p.dev[i] >= 0 {
			d = devs[p.dev[i]]
			d.lastAppliedMS = nowMS
		}
		if t.diverted[i] {
			// Held in the exception queue (or a replay already settled):
			// processed, neither applied nor dead.
			continue
		}
		if reason(i) != "" {
			dead = append(dead, i)
			if d != nil {
				d.deadLettered++
			}
			continue
		}
		apply = append(apply, i)
		if d != nil {
			d.applied++
			d.lastEventHLC = max(d.lastEventHLC, p.items[i].Env.HLC.Pack())
		}
	}
	res.Applied, res.DeadLettered, res.Held = len(apply), len(dead), t.out.held
	res.HeldStores = slices.Sorted(slices.Values(t.out.heldStores))

	defer t.settleLedger()
	for a, ap := range s.appliers {
		if _, ok := ap.(awaitsLedger); !ok {
			if err := t.awaitLedger(ctx); err != nil {
				return res, fmt.Errorf("store: ledger: %w", err)
			}
		}
		if err := ap.apply(ctx, t, t.readBy(a)); err != nil {
			return res, fmt.Errorf("store: %s: %w", ap.name(), err)
		}
		step(ap.name())
	}
	if err := t.awaitLedger(ctx); err != nil {
		return res, fmt.Errorf("store: ledger: %w", err)
	}
	if err := s.insertBatchDeadLetters(ctx, tx, p, dead, reason, nowMS); err != nil {
		return res, err
	}
	if err := s.updateDevices(ctx, tx, p.devs, devs); err != nil {
		return res, err
	}
	if s.beforeCommit != nil {
		if err := s.beforeCommit(); err != nil {
			return res, err
		}
	}
	step("devices")
	if err := tx.Commit(); err != nil {
		t.commitFailed()
		return res, fmt.Errorf("store: commit: %w", err)
	}
	step("commit")
	t.committed()
	res.Positions, res.Reservations, res.ReviewedProducts = t.out.positions, t.out.reservations, t.out.reviewedProducts
	res.Carts = t.out.carts
	if len(t.cust.customers) > 0 {
		res.Customers = sortedUnique(t.cust.customers)
	}
	res.RecProducts = t.out.recProducts
	for i := range t.rejected {
		res.Refused = append(res.Refused, i)
	}
	slices.Sort(res.Refused)
	res.Watermarks = make([]Watermark, len(p.devs))
	for i, k := range p.devs {
		res.Watermarks[i] = Watermark{Store: k.store, Device: k.device, Epoch: k.epoch, Seq: devs[i].watermark}
	}
	return res, nil
}

// onceByID keeps the first of the items sharing an event id: one event
// delivered under two origins (a broken agent) takes effect once within a
// batch; across batches the ledger's key and each aggregate's own rules
// (idempotent operations, earliest review wins) see to it.
func onceByID(p *plan, items []int) []int {
	out := make([]int, 0, len(items))
	once := make(map[string]bool, len(items))
	for _, i := range items {
		if id := p.items[i].Env.ID; !once[id] {
			once[id] = true
			out = append(out, i)
		}
	}
	return out
}

func (s *Store) insertBatchDeadLetters(ctx context.Context, tx *sql.Tx, p *plan, dead []int, reason func(int) string, nowMS int64) error {
	if len(dead) == 0 {
		return nil
	}
	dls := make([]DeadLetter, 0, len(dead))
	for _, i := range dead {
		it := p.items[i]
		if it.replay != nil {
			// A replay the rules still refuse stays where it was, with
			// the new reason.
			if err := s.refusedAgain(ctx, tx, it.replay, reason(i)); err != nil {
				return err
			}
			continue
		}
		payload := it.Raw
		if len(payload) == 0 {
			payload, _ = json.Marshal(it.Env)
		}
		o := it.Env.Origin
		dls = append(dls, DeadLetter{
			EventID: it.Env.ID, Store: o.Store, Device: o.Device, Epoch: o.Epoch, Seq: o.Seq,
			Kind: string(it.Env.Kind), Subject: it.Subject, Reason: reason(i), Payload: payload, At: time.UnixMilli(nowMS),
		})
		s.log.Warn("store: dead-lettered", "event_id", it.Env.ID, "store", o.Store, "device", o.Device, "seq", o.Seq, "kind", it.Env.Kind, "reason", reason(i))
	}
	return s.insertDeadLetters(ctx, tx, dls)
}

// positionsOut sorts and deduplicates the positions a batch wrote.
func positionsOut(keys []inventory.Key) []inventory.Key {
	slices.SortFunc(keys, inventory.Key.Compare)
	return slices.Compact(keys)
}

// ApplyObserver is told how long each step of a batch's transaction took:
// "dedup" (begin, device rows), each gate ("<aggregate>-gate"), each
// aggregate by name, "devices" (dead letters and device progress) and
// "commit"; the identity applier's parts are steps of their own before
// its name: "identity.load" (the batch's clusters), "identity.graph" (the
// rules), and on PostgreSQL's copy "identity.observations",
// "identity.identifiers" and "identity.masters". It runs on the applying
// goroutine and must be quick.
type ApplyObserver func(step string, d time.Duration)

// ObserveApply sets the observer (nil: none). Set it before applying.
func (s *Store) ObserveApply(o ApplyObserver) { s.observer = o }

func (s *Store) stepStart() {
	if s.observer != nil {
		s.stepAt = time.Now()
	}
}

// stepTimer returns a function reporting the time since the previous step.
func (s *Store) stepTimer() func(string) {
	if s.observer == nil {
		return func(string) {}
	}
	return func(name string) {
		now := time.Now()
		s.observer(name, now.Sub(s.stepAt))
		s.stepAt = now
	}
}
