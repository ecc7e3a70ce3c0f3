package store

import (
	"cmp"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/omnisync/omnisync/cloud/internal/inventory"
	"github.com/omnisync/omnisync/shared/events"
	"github.com/omnisync/omnisync/shared/hlc"
)

// ApplyBatch applies items exactly once, in one transaction: dedup by
// origin, inventory effects, dead letters and device progress commit
// together or not at all. An item already processed (by any replica, at
// any time) is a duplicate and changes nothing; an item rejected by the
// caller, from a future schema version, of an unknown kind or with a body
// the rules cannot apply is kept in the dead letters and counts as
// processed. Items too far ahead of their device's watermark are deferred.
//
// Items may come in any order, from any devices, with repeats; the result
// does not depend on how a log is split into batches or ordered. On
// PostgreSQL a transaction that loses a deadlock or serialization conflict
// to another replica is retried from the start; the error returned is the
// last one. When ApplyBatch returns an error nothing was committed and the
// whole batch may be redelivered.
func (s *Store) ApplyBatch(ctx context.Context, items []Item) (BatchResult, error) {
	if len(items) == 0 {
		return BatchResult{}, nil
	}
	p := s.plan(items)
	var res BatchResult
	err := s.retry(ctx, "apply batch", func() error {
		var err error
		res, err = s.applyOnce(ctx, p)
		if errors.Is(err, errLedgerSeen) && !p.ledgerSeen {
			p.ledgerSeen = true
			res, err = s.applyOnce(ctx, p)
		}
		return err
	})
	if err != nil {
		return BatchResult{}, err
	}
	return res, nil
}

// retry runs fn (one whole transaction) until it succeeds, fails with an
// error that is not a transient conflict, or maxRetries retries are spent.
func (s *Store) retry(ctx context.Context, what string, fn func() error) error {
	for attempt := 0; ; attempt++ {
		err := fn()
		if err == nil || !s.d.retryable(err) || attempt >= s.maxRetries {
			return err
		}
		backoff := time.Duration(1<<min(attempt, 6))*time.Millisecond + time.Duration(rand.Int64N(int64(2*time.Millisecond)))
		s.log.Warn("store: transaction conflict, retrying", "op", what, "attempt", attempt+1, "backoff", backoff, "err", err)
		select {
		case <-ctx.Done():
			return err
		case <-time.After(backoff):
		}
	}
}

type devKey struct {
	store, device string
	epoch         uint64
}

func (k devKey) compare(o devKey) int {
	if c := strings.Compare(k.store, o.store); c != 0 {
		return c
	}
	if c := strings.Compare(k.device, o.device); c != 0 {
		return c
	}
	return cmp.Compare(k.epoch, o.epoch)
}

// plan is the part of a batch worked out once, outside the (retried)
// transaction: which device each item belongs to, why it must be
// dead-lettered if it must, and its inventory effect.
type plan struct {
	items  []Item
	dev    []int    // index into devs; -1 when the origin cannot be deduplicated
	devs   []devKey // sorted, unique: the device lock order
	order  []int    // items with a usable origin, by (device, seq): dedup order
	reason []string // non-empty: dead-letter with this reason
	eff    []inventory.Effect
	// ledgerSeen: some line of the batch may already be in the ledger, so the
	// ledger insert must say which lines went in.
	ledgerSeen bool
}

func (s *Store) plan(items []Item) *plan {
	n := len(items)
	p := &plan{items: items, dev: make([]int, n), reason: make([]string, n), eff: make([]inventory.Effect, n)}
	usable := make([]bool, n)
	seen := map[devKey]bool{}
	for i, it := range items {
		e := &it.Env
		o := e.Origin
		usable[i] = o.Store != "" && o.Device != "" && o.Epoch != 0 && o.Seq != 0 && o.Epoch <= math.MaxInt64 && o.Seq <= math.MaxInt64
		switch {
		case it.Reject != "":
			p.reason[i] = it.Reject
		case e.V > events.CurrentVersion:
			p.reason[i] = fmt.Sprintf("%v: version %d, this hub reads up to %d", events.ErrUnsupportedVersion, e.V, events.CurrentVersion)
		case !usable[i]:
			p.reason[i] = fmt.Sprintf("origin %+v cannot be deduplicated", o)
		case !events.Known(e.Kind):
			p.reason[i] = fmt.Sprintf("unknown kind %q", e.Kind)
		default:
			eff, err := inventory.EffectOf(*e)
			if err != nil {
				p.reason[i] = err.Error()
			}
			p.eff[i] = eff
		}
		if usable[i] {
			seen[devKey{o.Store, o.Device, o.Epoch}] = true
		} else {
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

// devRow is a device_progress row loaded for update.
type devRow struct {
	seqSet
	applied, deadLettered int64
	lastEventHLC          int64
	lastAppliedMS         int64
	dirty                 bool
}

func (s *Store) applyOnce(ctx context.Context, p *plan) (BatchResult, error) {
	var res BatchResult
	nowMS := s.now().UnixMilli()
	// A connection of its own, so the ledger can be copied over it in the
	// transaction (insertLedger).
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

	devs, err := s.lockDevices(ctx, tx, p.devs)
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
	var apply, dead []int
	for i := range p.items {
		if p.dev[i] < 0 {
			process[i] = true
		}
		if !process[i] {
			continue
		}
		var d *devRow
		if p.dev[i] >= 0 {
			d = devs[p.dev[i]]
			d.lastAppliedMS = nowMS
		}
		if p.reason[i] != "" {
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
	res.Applied, res.DeadLettered = len(apply), len(dead)

	positions, reservations, err := s.applyInventory(ctx, conn, tx, p, apply, nowMS)
	if err != nil {
		return res, err
	}
	reviewed, err := s.applyReviews(ctx, tx, p, apply, nowMS)
	if err != nil {
		return res, err
	}
	if err := s.insertBatchDeadLetters(ctx, tx, p, dead, nowMS); err != nil {
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
	if err := tx.Commit(); err != nil {
		return res, fmt.Errorf("store: commit: %w", err)
	}
	res.Positions, res.Reservations, res.ReviewedProducts = positions, reservations, reviewed
	res.Watermarks = make([]Watermark, len(p.devs))
	for i, k := range p.devs {
		res.Watermarks[i] = Watermark{Store: k.store, Device: k.device, Epoch: k.epoch, Seq: devs[i].watermark}
	}
	return res, nil
}

// lockDevices makes sure every device epoch of the batch has a row, then
// locks them in (store, device, epoch) order and loads their dedup state.
func (s *Store) lockDevices(ctx context.Context, tx *sql.Tx, keys []devKey) ([]*devRow, error) {
	out := make([]*devRow, len(keys))
	if len(keys) == 0 {
		return out, nil
	}
	rs := newRowset(text("store"), text("device"), integer("epoch"))
	for _, k := range keys {
		rs.add(k.store, k.device, int64(k.epoch))
	}
	if s.d.rowLocks() {
		err := s.execRows(ctx, tx, rs, "k", func(a *args, k string) string {
			return "INSERT INTO device_progress (store, device, epoch) SELECT store, device, epoch FROM " + k +
				` ORDER BY store COLLATE "C", device COLLATE "C", epoch ON CONFLICT DO NOTHING`
		})
		if err != nil {
			return nil, fmt.Errorf("store: ensure devices: %w", err)
		}
	}
	err := s.queryRows(ctx, tx, rs, "k", func(a *args, k string) string {
		return `SELECT d.store, d.device, d.epoch, d.watermark, d.above, d.events_applied, d.dead_lettered, d.last_event_hlc, d.last_applied_ms
FROM device_progress d JOIN ` + k + ` ON d.store = k.store AND d.device = k.device AND d.epoch = k.epoch
ORDER BY d.store, d.device, d.epoch` + s.d.forUpdate("d")
	}, func(rows *sql.Rows) error {
		var k devKey
		var epoch, wm int64
		var above string
		d := &devRow{}
		if err := rows.Scan(&k.store, &k.device, &epoch, &wm, &above, &d.applied, &d.deadLettered, &d.lastEventHLC, &d.lastAppliedMS); err != nil {
			return err
		}
		k.epoch, d.watermark = uint64(epoch), uint64(wm)
		var err error
		if d.above, err = decodeAbove(above); err != nil {
			return fmt.Errorf("device %s/%s epoch %d: %w", k.store, k.device, k.epoch, err)
		}
		i, ok := slices.BinarySearchFunc(keys, k, devKey.compare)
		if !ok {
			return fmt.Errorf("unexpected row %+v", k)
		}
		out[i] = d
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("store: lock devices: %w", err)
	}
	for i, d := range out {
		if d == nil {
			if s.d.rowLocks() {
				return nil, fmt.Errorf("store: lock devices: row %+v missing", keys[i])
			}
			out[i] = &devRow{dirty: true} // first seen: write its row even if nothing is processed
		}
	}
	return out, nil
}

func (s *Store) updateDevices(ctx context.Context, tx *sql.Tx, keys []devKey, devs []*devRow) error {
	rs := newRowset(text("store"), text("device"), integer("epoch"), integer("watermark"), text("above"),
		integer("applied"), integer("dead"), integer("last_hlc"), integer("last_ms"))
	for i, d := range devs {
		if d.dirty {
			k := keys[i]
			rs.add(k.store, k.device, int64(k.epoch), int64(d.watermark), d.encodeAbove(), d.applied, d.deadLettered, d.lastEventHLC, d.lastAppliedMS)
		}
	}
	if rs.len() == 0 {
		return nil
	}
	err := s.execRows(ctx, tx, rs, "u", func(a *args, u string) string {
		return `INSERT INTO device_progress (store, device, epoch, watermark, above, events_applied, dead_lettered, last_event_hlc, last_applied_ms)
SELECT store, device, epoch, watermark, above, applied, dead, last_hlc, last_ms FROM ` + u + ` WHERE true
ON CONFLICT (store, device, epoch) DO UPDATE SET watermark = excluded.watermark, above = excluded.above,
	events_applied = excluded.events_applied, dead_lettered = excluded.dead_lettered,
	last_event_hlc = excluded.last_event_hlc, last_applied_ms = excluded.last_applied_ms`
	})
	if err != nil {
		return fmt.Errorf("store: update devices: %w", err)
	}
	return nil
}

// resRow is a reservation loaded for update: as loaded and as changed.
type resRow struct {
	orig, cur inventory.Reservation
}

// stockRow is a stock position loaded for update.
type stockRow struct {
	pos        inventory.Position
	conflictID int64
}

// posChange is a locked position and its new state.
type posChange struct {
	key  inventory.Key
	row  *stockRow
	next inventory.Position
}

// ledgerLine is a move with the store it came from.
type ledgerLine struct {
	inventory.Move
	store string
}

type lineID struct {
	event string
	line  int
}

// applyInventory applies the effects of the apply items: reservations, then
// the ledger, then stock positions and their conflicts.
func (s *Store) applyInventory(ctx context.Context, conn *sql.Conn, tx *sql.Tx, p *plan, items []int, nowMS int64) ([]inventory.Key, []string, error) {
	// One event id under two origins (a broken agent) takes effect once:
	// within the batch here, across batches through the ledger's key.
	apply := make([]int, 0, len(items))
	once := make(map[string]bool, len(items))
	for _, i := range items {
		if id := p.items[i].Env.ID; !once[id] {
			once[id] = true
			apply = append(apply, i)
		}
	}
	var rids []string
	var lines []ledgerLine
	for _, i := range apply {
		if op := p.eff[i].Reservation; op != nil {
			rids = append(rids, op.ID)
		}
		for _, m := range p.eff[i].Moves {
			lines = append(lines, ledgerLine{Move: m, store: p.items[i].Env.Origin.Store})
		}
	}
	if len(rids) == 0 && len(lines) == 0 {
		return nil, nil, nil
	}
	slices.Sort(rids)
	rids = slices.Compact(rids)
	resv, err := s.lockReservations(ctx, tx, rids)
	if err != nil {
		return nil, nil, err
	}
	held := map[inventory.Key]int64{}
	heldAt := map[inventory.Key]hlc.Timestamp{}
	for _, i := range apply {
		op := p.eff[i].Reservation
		if op == nil {
			continue
		}
		r := resv[op.ID]
		next := r.cur.Apply(*op)
		for k, d := range inventory.HoldChange(r.cur, next) {
			held[k] += d
			if op.Stamp.HLC.Compare(heldAt[k]) > 0 {
				heldAt[k] = op.Stamp.HLC
			}
		}
		r.cur = next
	}

	// The ledger comes first: only the lines it did not hold yet take
	// effect, and which those are decides how each position is written.
	lines = sortLedgerLines(lines)
	fresh, err := s.insertLedger(ctx, conn, tx, lines, p.ledgerSeen)
	if err != nil {
		return nil, nil, err
	}
	ps := positionsOf(lines, fresh, held, heldAt)

	// A position whose new moves are all deltas, with no hold change, is
	// added to blindly when every one of them is stamped after its count
	// (the database checks that); the others are locked, loaded and
	// recomputed.
	for i := range ps {
		ps[i].classify()
	}
	if err := s.addStock(ctx, tx, ps, nowMS); err != nil {
		return nil, nil, err
	}

	var slow []inventory.Key
	for i := range ps {
		if !ps[i].added {
			slow = append(slow, ps[i].key)
		}
	}
	// On PostgreSQL addStock has already created and locked every position
	// of the batch, in order.
	rows, err := s.lockStock(ctx, tx, slow, false)
	if err != nil {
		return nil, nil, err
	}
	counts := map[inventory.Key]events.Stamp{}
	for i := range ps {
		if p := &ps[i]; !p.added {
			if c, ok := rows[p.key].pos.NewCount(p.moves); ok {
				counts[p.key] = c.Stamp
			}
		}
	}
	after, err := s.deltasAfter(ctx, tx, counts)
	if err != nil {
		return nil, nil, err
	}
	changes := make([]posChange, 0, len(slow))
	states := make([]conflictState, 0, len(ps))
	for i := range ps {
		p := &ps[i]
		if p.added {
			states = append(states, conflictState{key: p.key, id: p.row.conflictID, was: p.row.available - p.fast.delta, is: p.row.available})
			continue
		}
		row := rows[p.key]
		next := row.pos.Apply(p.moves, after[p.key])
		if p.held != 0 {
			next.Reserved += p.held
			next = next.Touch(p.heldAt)
		}
		changes = append(changes, posChange{key: p.key, row: row, next: next})
		states = append(states, conflictState{key: p.key, id: row.conflictID, was: row.pos.Available(), is: next.Available()})
	}
	conflictID, err := s.syncConflicts(ctx, tx, states, nowMS)
	if err != nil {
		return nil, nil, err
	}
	put, err := s.putStock(ctx, tx, changes, conflictID, nowMS)
	if err != nil {
		return nil, nil, err
	}
	if err := s.fixAdded(ctx, tx, ps, conflictID); err != nil {
		return nil, nil, err
	}
	// Both lists are in key order.
	written := make([]inventory.Key, 0, len(ps))
	for i := range ps {
		switch {
		case ps[i].added:
			written = append(written, ps[i].key)
		case len(put) > 0 && put[0] == ps[i].key:
			written = append(written, put[0])
			put = put[1:]
		}
	}
	changed, err := s.writeReservations(ctx, tx, rids, resv, nowMS)
	return written, changed, err
}

// lockReservations makes sure every reservation id has a row, locks them in
// id order and loads them with their lines.
func (s *Store) lockReservations(ctx context.Context, tx *sql.Tx, ids []string) (map[string]*resRow, error) {
	out := make(map[string]*resRow, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	rs := newRowset(text("id"))
	for _, id := range ids {
		rs.add(id)
	}
	if s.d.rowLocks() {
		err := s.execRows(ctx, tx, rs, "k", func(a *args, k string) string {
			return "INSERT INTO reservations (reservation_id) SELECT id FROM " + k + ` ORDER BY id COLLATE "C" ON CONFLICT DO NOTHING`
		})
		if err != nil {
			return nil, fmt.Errorf("store: ensure reservations: %w", err)
		}
	}
	err := s.queryRows(ctx, tx, rs, "k", func(a *args, k string) string {
		return `SELECT r.reservation_id, r.location, r.reserved, r.reserve_hlc, r.reserve_id, r.closed, r.closed_hlc, r.closed_id, r.closed_kind
FROM reservations r JOIN ` + k + ` ON r.reservation_id = k.id
ORDER BY r.reservation_id` + s.d.forUpdate("r")
	}, func(rows *sql.Rows) error {
		var r inventory.Reservation
		var reserved, closed int64
		var reserveHLC, closedHLC int64
		var closedKind string
		if err := rows.Scan(&r.ID, &r.Location, &reserved, &reserveHLC, &r.ReserveStamp.ID, &closed, &closedHLC, &r.ClosedStamp.ID, &closedKind); err != nil {
			return err
		}
		r.Reserved, r.Closed, r.ClosedBy = reserved != 0, closed != 0, events.Kind(closedKind)
		r.ReserveStamp.HLC, r.ClosedStamp.HLC = hlc.Unpack(reserveHLC), hlc.Unpack(closedHLC)
		out[r.ID] = &resRow{orig: r, cur: r}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("store: lock reservations: %w", err)
	}
	err = s.reservationLines(ctx, tx, rs, func(id string, l events.Line) {
		if r := out[id]; r != nil {
			r.orig.Lines = append(r.orig.Lines, l)
			r.cur.Lines = r.orig.Lines
		}
	})
	if err != nil {
		return nil, fmt.Errorf("store: load reservation lines: %w", err)
	}
	for _, id := range ids {
		if out[id] == nil {
			if s.d.rowLocks() {
				return nil, fmt.Errorf("store: lock reservations: row %q missing", id)
			}
			out[id] = &resRow{orig: inventory.Reservation{ID: id}, cur: inventory.Reservation{ID: id}}
		}
	}
	return out, nil
}

// reservationLines hands each line of the reservations in ids (a rowset of
// one text column, id) to fn, in (reservation, SKU) order.
func (s *Store) reservationLines(ctx context.Context, db querier, ids *rowset, fn func(id string, l events.Line)) error {
	return s.queryRows(ctx, db, ids, "k", func(a *args, k string) string {
		return `SELECT l.reservation_id, l.sku, l.qty FROM reservation_lines l JOIN ` + k + ` ON l.reservation_id = k.id
ORDER BY l.reservation_id, l.sku`
	}, func(rows *sql.Rows) error {
		var id string
		var l events.Line
		if err := rows.Scan(&id, &l.SKU, &l.Qty); err != nil {
			return err
		}
		fn(id, l)
		return nil
	})
}

func sameReservation(a, b inventory.Reservation) bool {
	return a.Reserved == b.Reserved && a.Location == b.Location && a.ReserveStamp == b.ReserveStamp &&
		a.Closed == b.Closed && a.ClosedStamp == b.ClosedStamp && a.ClosedBy == b.ClosedBy && slices.Equal(a.Lines, b.Lines)
}

// writeReservations writes the reservations that changed and returns their
// ids.
func (s *Store) writeReservations(ctx context.Context, tx *sql.Tx, ids []string, resv map[string]*resRow, nowMS int64) ([]string, error) {
	head := newRowset(text("id"), text("location"), integer("reserved"), integer("reserve_hlc"), text("reserve_id"),
		integer("closed"), integer("closed_hlc"), text("closed_id"), text("closed_kind"), integer("active"))
	relined := newRowset(text("id"))
	lines := newRowset(text("id"), text("sku"), text("location"), integer("qty"))
	var changed []string
	for _, id := range ids {
		r := resv[id]
		if sameReservation(r.orig, r.cur) {
			continue
		}
		c := r.cur
		changed = append(changed, c.ID)
		head.add(c.ID, c.Location, b2i(c.Reserved), c.ReserveStamp.HLC.Pack(), c.ReserveStamp.ID,
			b2i(c.Closed), c.ClosedStamp.HLC.Pack(), c.ClosedStamp.ID, string(c.ClosedBy), b2i(c.Active()))
		if c.Location != r.orig.Location || !slices.Equal(c.Lines, r.orig.Lines) {
			relined.add(c.ID)
			for _, l := range c.Lines {
				lines.add(c.ID, l.SKU, c.Location, l.Qty)
			}
		}
	}
	err := s.execRows(ctx, tx, head, "u", func(a *args, u string) string {
		return `INSERT INTO reservations (reservation_id, location, reserved, reserve_hlc, reserve_id, closed, closed_hlc, closed_id, closed_kind, active, updated_ms, version)
SELECT id, location, reserved, reserve_hlc, reserve_id, closed, closed_hlc, closed_id, closed_kind, active, ` + a.add(nowMS) + `, 1 FROM ` + u + ` WHERE true
ON CONFLICT (reservation_id) DO UPDATE SET location = excluded.location, reserved = excluded.reserved,
	reserve_hlc = excluded.reserve_hlc, reserve_id = excluded.reserve_id, closed = excluded.closed,
	closed_hlc = excluded.closed_hlc, closed_id = excluded.closed_id, closed_kind = excluded.closed_kind,
	active = excluded.active, updated_ms = excluded.updated_ms, version = reservations.version + 1`
	})
	if err != nil {
		return nil, fmt.Errorf("store: update reservations: %w", err)
	}
	err = s.execRows(ctx, tx, relined, "k", func(a *args, k string) string {
		return "DELETE FROM reservation_lines WHERE reservation_id IN (SELECT id FROM " + k + ")"
	})
	if err != nil {
		return nil, fmt.Errorf("store: replace reservation lines: %w", err)
	}
	err = s.execRows(ctx, tx, lines, "k", func(a *args, k string) string {
		return "INSERT INTO reservation_lines (reservation_id, sku, location, qty) SELECT id, sku, location, qty FROM " + k
	})
	if err != nil {
		return nil, fmt.Errorf("store: insert reservation lines: %w", err)
	}
	return changed, nil
}

// lockStock locks positions in (sku, location) order and loads them. With
// ensure it first makes sure every position has a row; without, the caller
// has made sure of that.
func (s *Store) lockStock(ctx context.Context, tx *sql.Tx, keys []inventory.Key, ensure bool) (map[inventory.Key]*stockRow, error) {
	out := make(map[inventory.Key]*stockRow, len(keys))
	if len(keys) == 0 {
		return out, nil
	}
	rs := newRowset(text("sku"), text("location"))
	for _, k := range keys {
		rs.add(k.SKU, k.Location)
	}
	if ensure && s.d.rowLocks() {
		err := s.execRows(ctx, tx, rs, "k", func(a *args, k string) string {
			return "INSERT INTO stock (sku, location) SELECT k.sku, k.location FROM " + k +
				" WHERE NOT EXISTS (SELECT 1 FROM stock s WHERE s.sku = k.sku AND s.location = k.location)" +
				` ORDER BY k.sku COLLATE "C", k.location COLLATE "C" ON CONFLICT DO NOTHING`
		})
		if err != nil {
			return nil, fmt.Errorf("store: ensure stock: %w", err)
		}
	}
	err := s.queryRows(ctx, tx, rs, "k", func(a *args, k string) string {
		return `SELECT s.sku, s.location, s.on_hand, s.reserved, s.safety, s.has_count, s.count_qty, s.count_hlc, s.count_id, s.last_hlc, s.conflict_id
FROM stock s JOIN ` + k + ` ON s.sku = k.sku AND s.location = k.location
ORDER BY s.sku, s.location` + s.d.forUpdate("s")
	}, func(rows *sql.Rows) error {
		var k inventory.Key
		r := &stockRow{}
		var hasCount, countHLC, lastHLC int64
		if err := rows.Scan(&k.SKU, &k.Location, &r.pos.OnHand, &r.pos.Reserved, &r.pos.Safety, &hasCount, &r.pos.CountQty,
			&countHLC, &r.pos.CountStamp.ID, &lastHLC, &r.conflictID); err != nil {
			return err
		}
		r.pos.HasCount = hasCount != 0
		r.pos.CountStamp.HLC = hlc.Unpack(countHLC)
		r.pos.LastStamp = hlc.Unpack(lastHLC)
		out[k] = r
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("store: lock stock: %w", err)
	}
	for _, k := range keys {
		if out[k] == nil {
			if s.d.rowLocks() {
				return nil, fmt.Errorf("store: lock stock: row %v missing", k)
			}
			out[k] = &stockRow{}
		}
	}
	return out, nil
}

// sortLedgerLines returns lines sorted by the ledger's key. It sorts
// indices, not the (large) lines themselves.
func sortLedgerLines(lines []ledgerLine) []ledgerLine {
	idx := make([]int32, len(lines))
	for i := range idx {
		idx[i] = int32(i)
	}
	slices.SortFunc(idx, func(i, j int32) int {
		a, b := &lines[i], &lines[j]
		if c := a.Key.Compare(b.Key); c != 0 {
			return c
		}
		if c := cmp.Compare(a.Stamp.HLC.Pack(), b.Stamp.HLC.Pack()); c != 0 {
			return c
		}
		if c := strings.Compare(a.Stamp.ID, b.Stamp.ID); c != 0 {
			return c
		}
		return cmp.Compare(a.Line, b.Line)
	})
	out := make([]ledgerLine, len(lines))
	for i, j := range idx {
		out[i] = lines[j]
	}
	return out
}

// errLedgerSeen reports that a line of the batch was already in the
// ledger: the transaction is abandoned and redone with insertLedger told
// to find out which (see plan.ledgerSeen).
var errLedgerSeen = errors.New("store: a ledger line of the batch is already recorded")

// insertLedger records lines and returns which ones were not already in the
// ledger (nil: all of them): a second line of defence, so an event id is
// applied once even if it arrived under two origins. Lines go in in key
// order, which on PostgreSQL is the order in which a transaction waits for
// another one inserting the same line (see LOCKS.md); it also keeps the
// B-tree writes local. lines must be sorted by that key (sortLedgerLines);
// tx is a transaction on conn.
//
// A line already recorded is rare (a broken agent), so unless precise the
// lines go in without finding out which ones were new, which is cheaper:
// on PostgreSQL copied (COPY, which fails on a duplicate key), on SQLite
// inserted with a count of the rows that went in. If any was already
// there, it returns errLedgerSeen.
func (s *Store) insertLedger(ctx context.Context, conn *sql.Conn, tx *sql.Tx, lines []ledgerLine, precise bool) (map[lineID]bool, error) {
	if len(lines) == 0 {
		return nil, nil
	}
	if !precise && s.d.pg() {
		err := conn.Raw(func(dc any) error {
			c, ok := dc.(*stdlib.Conn)
			if !ok {
				return fmt.Errorf("unexpected driver connection %T", dc)
			}
			row := make([]any, 9)
			next := 0
			n, err := c.Conn().CopyFrom(ctx, pgx.Identifier{"stock_ledger"},
				[]string{"sku", "location", "hlc", "event_id", "line_no", "kind", "qty", "delta", "store"},
				pgx.CopyFromFunc(func() ([]any, error) {
					if next == len(lines) {
						return nil, nil
					}
					l := &lines[next]
					next++
					row[0], row[1], row[2], row[3], row[4] = l.SKU, l.Location, l.Stamp.HLC.Pack(), l.Stamp.ID, int64(l.Line)
					row[5], row[6], row[7], row[8] = string(l.Kind), l.Qty, l.Delta, l.store
					return row, nil
				}))
			if err == nil && n != int64(len(lines)) {
				err = fmt.Errorf("copied %d of %d rows", n, len(lines))
			}
			return err
		})
		if pe := (*pgconn.PgError)(nil); errors.As(err, &pe) && pe.Code == "23505" { // unique_violation
			return nil, errLedgerSeen
		}
		if err != nil {
			return nil, fmt.Errorf("store: copy ledger: %w", err)
		}
		return nil, nil
	}
	rs := newRowset(text("event_id"), integer("line_no"), text("sku"), text("location"), integer("hlc"),
		text("kind"), integer("qty"), integer("delta"), text("store"))
	for _, l := range lines {
		rs.add(l.Stamp.ID, int64(l.Line), l.SKU, l.Location, l.Stamp.HLC.Pack(), string(l.Kind), l.Qty, l.Delta, l.store)
	}
	insert := func(returning string) func(a *args, k string) string {
		return func(a *args, k string) string {
			return `INSERT INTO stock_ledger (sku, location, hlc, event_id, line_no, kind, qty, delta, store)
SELECT sku, location, hlc, event_id, line_no, kind, qty, delta, store FROM ` + k + s.d.inOrder() + ` ON CONFLICT DO NOTHING` + returning
		}
	}
	if !precise {
		n, err := s.execRowsN(ctx, tx, rs, "k", insert(""))
		if err != nil {
			return nil, fmt.Errorf("store: insert ledger: %w", err)
		}
		if n != int64(len(lines)) {
			return nil, errLedgerSeen
		}
		return nil, nil
	}
	fresh := make(map[lineID]bool, len(lines))
	err := s.queryRows(ctx, tx, rs, "k", insert(" RETURNING event_id, line_no"), func(rows *sql.Rows) error {
		var id lineID
		var line int64
		if err := rows.Scan(&id.event, &line); err != nil {
			return err
		}
		id.line = int(line)
		fresh[id] = true
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("store: insert ledger: %w", err)
	}
	return fresh, nil
}

// deltasAfter sums, for each position, the ledger deltas stamped after the
// given count stamp: one indexed range scan per position.
func (s *Store) deltasAfter(ctx context.Context, tx *sql.Tx, counts map[inventory.Key]events.Stamp) (map[inventory.Key]int64, error) {
	out := make(map[inventory.Key]int64, len(counts))
	if len(counts) == 0 {
		return out, nil
	}
	rs := newRowset(text("sku"), text("location"), integer("hlc"), text("eid"))
	for k, st := range counts {
		rs.add(k.SKU, k.Location, st.HLC.Pack(), st.ID)
	}
	err := s.queryRows(ctx, tx, rs, "k", func(a *args, k string) string {
		return `SELECT k.sku, k.location, CAST(SUM(l.delta) AS BIGINT) FROM ` + k + `
JOIN stock_ledger l ON l.sku = k.sku AND l.location = k.location AND (l.hlc, l.event_id) > (k.hlc, k.eid)
GROUP BY k.sku, k.location`
	}, func(rows *sql.Rows) error {
		var k inventory.Key
		var sum int64
		if err := rows.Scan(&k.SKU, &k.Location, &sum); err != nil {
			return err
		}
		out[k] = sum
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("store: deltas after count: %w", err)
	}
	return out, nil
}

// position is a stock position the batch touches: its new moves (those
// the ledger did not hold yet) and the change to its holds.
type position struct {
	key    inventory.Key
	moves  []inventory.Move
	held   int64
	heldAt hlc.Timestamp
	// isFast: the moves are all deltas and the holds do not change (see
	// addStock); fast sums them up.
	isFast bool
	fast   fastPos
	// added: addStock wrote the position, as row says.
	added bool
	row   addedRow
}

// fastPos is what addStock needs of a fast position's deltas: their sum,
// the oldest of their stamps and the newest of their HLCs (packed).
type fastPos struct {
	delta  int64
	min    events.Stamp
	maxHLC int64
}

// addedRow is a position addStock wrote, as it wrote it.
type addedRow struct {
	available  int64
	conflictID int64
	// inserted: the row is new, and its count_hlc and count_id still hold
	// the guard's operands (fixAdded clears them).
	inserted bool
}

// positionsOf groups the new moves of lines (sorted by key; fresh as
// insertLedger returned it) by position and adds the positions whose holds
// change, in key order.
func positionsOf(lines []ledgerLine, fresh map[lineID]bool, held map[inventory.Key]int64, heldAt map[inventory.Key]hlc.Timestamp) []position {
	ps := make([]position, 0, len(lines)+len(held))
	moves := make([]inventory.Move, 0, len(lines))
	start := 0
	for i := range lines {
		l := &lines[i]
		if fresh != nil && !fresh[lineID{l.Stamp.ID, l.Line}] {
			continue
		}
		if len(ps) == 0 || ps[len(ps)-1].key != l.Key {
			if len(ps) > 0 {
				ps[len(ps)-1].moves = moves[start:len(moves):len(moves)]
			}
			start = len(moves)
			ps = append(ps, position{key: l.Key})
		}
		moves = append(moves, l.Move)
	}
	if len(ps) > 0 {
		ps[len(ps)-1].moves = moves[start:len(moves):len(moves)]
	}
	n := len(ps)
	for k, d := range held {
		if d == 0 {
			continue
		}
		if i, ok := slices.BinarySearchFunc(ps[:n], k, func(p position, k inventory.Key) int { return p.key.Compare(k) }); ok {
			ps[i].held, ps[i].heldAt = d, heldAt[k]
		} else {
			ps = append(ps, position{key: k, held: d, heldAt: heldAt[k]})
		}
	}
	if len(ps) > n {
		slices.SortFunc(ps, func(a, b position) int { return a.key.Compare(b.key) })
	}
	return ps
}

// classify decides whether p can take the fast path.
func (p *position) classify() {
	if p.held != 0 || len(p.moves) == 0 {
		return
	}
	var f fastPos
	for i, m := range p.moves {
		if m.IsCount() {
			return
		}
		if i == 0 || m.Stamp.Compare(f.min) < 0 {
			f.min = m.Stamp
		}
		f.delta += m.Delta
		f.maxHLC = max(f.maxHLC, m.Stamp.HLC.Pack())
	}
	// A zero sum that advances nothing leaves the position as it was; the
	// locked path knows not to write it.
	p.isFast, p.fast = f.delta != 0 || f.maxHLC > 0, f
}

// addStock adds the deltas of the fast positions to their rows in one
// upsert, where the database checks what the locked path would otherwise
// load and check: that the position's count (if any) is older than every
// delta, so they all count, and that the position changes at all. It marks
// the positions it wrote; the others (refused, or not fast) are left to the
// locked path.
//
// The operands of that check travel in the proposed row, the only values
// ON CONFLICT DO UPDATE can see besides the stored row: on_hand is the sum
// of the deltas, last_hlc their newest HLC, (count_hlc, count_id) the
// oldest of their stamps, and version is 1 for a fast position. A proposed
// row is only stored as such when the position is new; fixAdded then
// clears the count columns before the transaction commits.
//
// On PostgreSQL every position of the batch goes through the upsert, fast
// or not, in (sku, location) order: it creates the missing ones (version 0,
// like the insert-if-missing step of lockStock) and locks them all in the
// global lock order, the refused ones included.
func (s *Store) addStock(ctx context.Context, tx *sql.Tx, ps []position, nowMS int64) error {
	rs := newRowset(text("sku"), text("location"), integer("delta"), integer("min_hlc"), text("min_id"),
		integer("max_hlc"), integer("fast"), integer("at"))
	for i := range ps {
		p := &ps[i]
		if p.isFast {
			f := &p.fast
			rs.add(p.key.SKU, p.key.Location, f.delta, f.min.HLC.Pack(), f.min.ID, f.maxHLC, int64(1), nowMS)
		} else if s.d.rowLocks() {
			rs.add(p.key.SKU, p.key.Location, int64(0), int64(0), "", int64(0), int64(0), int64(0))
		}
	}
	err := s.queryRows(ctx, tx, rs, "k", func(a *args, k string) string {
		return `INSERT INTO stock (sku, location, on_hand, available, count_hlc, count_id, last_hlc, version, updated_ms)
SELECT sku, location, delta, delta, min_hlc, min_id, max_hlc, fast, at FROM ` + k + s.d.inOrder() + `
ON CONFLICT (sku, location) DO UPDATE SET on_hand = stock.on_hand + excluded.on_hand,
	available = stock.on_hand + excluded.on_hand - stock.reserved - stock.safety,
	last_hlc = ` + s.d.greatest("stock.last_hlc", "excluded.last_hlc") + `,
	version = stock.version + 1, updated_ms = excluded.updated_ms
WHERE excluded.version = 1
	AND (stock.has_count = 0 OR (stock.count_hlc, stock.count_id) < (excluded.count_hlc, excluded.count_id))
	AND (excluded.on_hand <> 0 OR excluded.last_hlc > stock.last_hlc)
RETURNING sku, location, available, conflict_id,
	CASE WHEN has_count = 0 AND (count_hlc <> 0 OR count_id <> '') THEN 1 ELSE 0 END`
	}, func(rows *sql.Rows) error {
		var k inventory.Key
		var r addedRow
		var inserted int64
		if err := rows.Scan(&k.SKU, &k.Location, &r.available, &r.conflictID, &inserted); err != nil {
			return err
		}
		i, ok := slices.BinarySearchFunc(ps, k, func(p position, k inventory.Key) int { return p.key.Compare(k) })
		if !ok {
			return fmt.Errorf("unexpected row %v", k)
		}
		if !ps[i].isFast {
			return nil // a position created for the locked path
		}
		// A stored row without a count has a zero count stamp, so such a
		// row with a non-zero one was just inserted from the proposed row.
		r.inserted = inserted != 0
		ps[i].added, ps[i].row = true, r
		return nil
	})
	if err != nil {
		return fmt.Errorf("store: add stock: %w", err)
	}
	return nil
}

// fixAdded stores the conflict ids of the positions addStock wrote whose
// conflict was opened or resolved, and clears the count columns of those
// it created.
func (s *Store) fixAdded(ctx context.Context, tx *sql.Tx, ps []position, conflictID map[inventory.Key]int64) error {
	rs := newRowset(text("sku"), text("location"), integer("conflict_id"))
	for i := range ps {
		p := &ps[i]
		if !p.added {
			continue
		}
		if id := conflictID[p.key]; p.row.inserted || id != p.row.conflictID {
			rs.add(p.key.SKU, p.key.Location, id)
		}
	}
	err := s.execRows(ctx, tx, rs, "u", func(a *args, u string) string {
		return `UPDATE stock SET conflict_id = u.conflict_id,
	count_hlc = CASE WHEN stock.has_count = 0 THEN 0 ELSE stock.count_hlc END,
	count_id = CASE WHEN stock.has_count = 0 THEN '' ELSE stock.count_id END
FROM ` + u + ` WHERE stock.sku = u.sku AND stock.location = u.location`
	})
	if err != nil {
		return fmt.Errorf("store: fix added stock: %w", err)
	}
	return nil
}

// conflictState is a written position as its oversell conflict sees it:
// the open conflict (0: none) and the available stock before and after.
type conflictState struct {
	key     inventory.Key
	id      int64
	was, is int64
}

// syncConflicts opens, updates or resolves the oversell conflicts of
// written positions and returns each position's open conflict id (0:
// none). The caller holds the positions' locks, which also guard their
// conflicts.
func (s *Store) syncConflicts(ctx context.Context, tx *sql.Tx, states []conflictState, nowMS int64) (map[inventory.Key]int64, error) {
	opened := newRowset(text("sku"), text("location"), integer("available"))
	updated := newRowset(integer("id"), integer("available"), integer("resolved"))
	conflictID := make(map[inventory.Key]int64, len(states))
	for _, c := range states {
		was, is := c.id != 0, c.is < 0
		conflictID[c.key] = c.id
		switch {
		case !was && is:
			opened.add(c.key.SKU, c.key.Location, c.is)
		case was && !is:
			updated.add(c.id, c.is, nowMS)
			conflictID[c.key] = 0
		case was && is && c.is != c.was:
			updated.add(c.id, c.is, int64(0))
		}
	}
	err := s.queryRows(ctx, tx, opened, "k", func(a *args, k string) string {
		return `INSERT INTO conflicts (sku, location, kind, available, opened_ms, updated_ms)
SELECT sku, location, ` + a.add(inventory.KindOversell) + `, available, ` + a.add(nowMS) + `, ` + a.add(nowMS) + `
FROM ` + k + ` WHERE true RETURNING id, sku, location`
	}, func(rows *sql.Rows) error {
		var id int64
		var k inventory.Key
		if err := rows.Scan(&id, &k.SKU, &k.Location); err != nil {
			return err
		}
		conflictID[k] = id
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("store: open conflicts: %w", err)
	}
	err = s.execRows(ctx, tx, updated, "u", func(a *args, u string) string {
		return `UPDATE conflicts SET available = u.available, resolved_ms = u.resolved, updated_ms = ` + a.add(nowMS) + `
FROM ` + u + ` WHERE conflicts.id = u.id`
	})
	if err != nil {
		return nil, fmt.Errorf("store: update conflicts: %w", err)
	}
	return conflictID, nil
}

// writeStock stores the new state of locked positions and opens, updates or
// resolves their oversell conflicts.
func (s *Store) writeStock(ctx context.Context, tx *sql.Tx, changes []posChange, nowMS int64) ([]inventory.Key, error) {
	states := make([]conflictState, len(changes))
	for i, c := range changes {
		states[i] = conflictState{key: c.key, id: c.row.conflictID, was: c.row.pos.Available(), is: c.next.Available()}
	}
	conflictID, err := s.syncConflicts(ctx, tx, states, nowMS)
	if err != nil {
		return nil, err
	}
	return s.putStock(ctx, tx, changes, conflictID, nowMS)
}

// putStock stores the new state of the locked positions that changed, with
// their open conflict ids, and returns them.
func (s *Store) putStock(ctx context.Context, tx *sql.Tx, changes []posChange, conflictID map[inventory.Key]int64, nowMS int64) ([]inventory.Key, error) {
	rs := newRowset(text("sku"), text("location"), integer("on_hand"), integer("reserved"), integer("safety"), integer("available"),
		integer("has_count"), integer("count_qty"), integer("count_hlc"), text("count_id"), integer("last_hlc"), integer("conflict_id"))
	var written []inventory.Key
	for _, c := range changes {
		id := conflictID[c.key]
		if c.next == c.row.pos && id == c.row.conflictID {
			continue
		}
		n := c.next
		written = append(written, c.key)
		rs.add(c.key.SKU, c.key.Location, n.OnHand, n.Reserved, n.Safety, n.Available(),
			b2i(n.HasCount), n.CountQty, n.CountStamp.HLC.Pack(), n.CountStamp.ID, n.LastStamp.Pack(), id)
	}
	err := s.execRows(ctx, tx, rs, "u", func(a *args, u string) string {
		return `INSERT INTO stock (sku, location, on_hand, reserved, safety, available, has_count, count_qty, count_hlc, count_id, last_hlc, conflict_id, version, updated_ms)
SELECT sku, location, on_hand, reserved, safety, available, has_count, count_qty, count_hlc, count_id, last_hlc, conflict_id, 1, ` + a.add(nowMS) + ` FROM ` + u + ` WHERE true
ON CONFLICT (sku, location) DO UPDATE SET on_hand = excluded.on_hand, reserved = excluded.reserved, safety = excluded.safety,
	available = excluded.available, has_count = excluded.has_count, count_qty = excluded.count_qty, count_hlc = excluded.count_hlc,
	count_id = excluded.count_id, last_hlc = excluded.last_hlc, conflict_id = excluded.conflict_id,
	version = stock.version + 1, updated_ms = excluded.updated_ms`
	})
	if err != nil {
		return nil, fmt.Errorf("store: update stock: %w", err)
	}
	return written, nil
}

func (s *Store) insertBatchDeadLetters(ctx context.Context, tx *sql.Tx, p *plan, dead []int, nowMS int64) error {
	if len(dead) == 0 {
		return nil
	}
	dls := make([]DeadLetter, 0, len(dead))
	for _, i := range dead {
		it := p.items[i]
		payload := it.Raw
		if len(payload) == 0 {
			payload, _ = json.Marshal(it.Env)
		}
		o := it.Env.Origin
		dls = append(dls, DeadLetter{
			EventID: it.Env.ID, Store: o.Store, Device: o.Device, Epoch: o.Epoch, Seq: o.Seq,
			Kind: string(it.Env.Kind), Subject: it.Subject, Reason: p.reason[i], Payload: payload, At: time.UnixMilli(nowMS),
		})
		s.log.Warn("store: dead-lettered", "event_id", it.Env.ID, "store", o.Store, "device", o.Device, "seq", o.Seq, "kind", it.Env.Kind, "reason", p.reason[i])
	}
	return s.insertDeadLetters(ctx, tx, dls)
}

type execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// execRows runs the statement stmt builds around the derived table of r
// (named alias) once per chunk of r; nothing when r is empty. stmt may add
// parameters of its own to a.
func (s *Store) execRows(ctx context.Context, db execer, r *rowset, alias string, stmt func(a *args, from string) string) error {
	if r.len() == 0 {
		return nil
	}
	for _, part := range s.d.chunks(r) {
		var a args
		from := s.d.from(&a, part, alias)
		if _, err := db.ExecContext(ctx, stmt(&a, from), a...); err != nil {
			return err
		}
	}
	return nil
}

// execRowsN is execRows that also returns the number of rows affected.
func (s *Store) execRowsN(ctx context.Context, db execer, r *rowset, alias string, stmt func(a *args, from string) string) (int64, error) {
	var n int64
	if r.len() == 0 {
		return 0, nil
	}
	for _, part := range s.d.chunks(r) {
		var a args
		from := s.d.from(&a, part, alias)
		res, err := db.ExecContext(ctx, stmt(&a, from), a...)
		if err != nil {
			return n, err
		}
		m, err := res.RowsAffected()
		if err != nil {
			return n, err
		}
		n += m
	}
	return n, nil
}

// queryRows is execRows for statements returning rows: scan is called on
// each result row of each chunk.
func (s *Store) queryRows(ctx context.Context, db querier, r *rowset, alias string, stmt func(a *args, from string) string, scan func(*sql.Rows) error) error {
	if r.len() == 0 {
		return nil
	}
	for _, part := range s.d.chunks(r) {
		var a args
		from := s.d.from(&a, part, alias)
		rows, err := db.QueryContext(ctx, stmt(&a, from), a...)
		if err != nil {
			return err
		}
		for rows.Next() {
			if err := scan(rows); err != nil {
				rows.Close()
				return err
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
	}
	return nil
}

func (s *Store) insertDeadLetters(ctx context.Context, db execer, dls []DeadLetter) error {
	rs := newRowset(text("event_id"), text("store"), text("device"), integer("epoch"), integer("seq"), text("kind"),
		text("subject"), text("reason"), blob("payload"), integer("at_ms"))
	for _, d := range dls {
		rs.add(clean(d.EventID), clean(d.Store), clean(d.Device), clampInt(d.Epoch), clampInt(d.Seq), clean(d.Kind),
			clean(d.Subject), clean(d.Reason), nonNil(d.Payload), d.At.UnixMilli())
	}
	err := s.execRows(ctx, db, rs, "k", func(a *args, k string) string {
		return `INSERT INTO dead_letters (event_id, store, device, epoch, seq, kind, subject, reason, payload, at_ms)
SELECT event_id, store, device, epoch, seq, kind, subject, reason, payload, at_ms FROM ` + k
	})
	if err != nil {
		return fmt.Errorf("store: insert dead letters: %w", err)
	}
	return nil
}

// clean makes s storable as text on both databases: valid UTF-8, no NUL.
func clean(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	return strings.ReplaceAll(s, "\x00", "\uFFFD")
}

func nonNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

func clampInt(v uint64) int64 {
	if v > math.MaxInt64 {
		return math.MaxInt64
	}
	return int64(v)
}

func b2i(b bool) int64 {
	if b {
		return 1
	}
	return 0
}
