package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/omnisync/omnisync/cloud/internal/inventory"
	"github.com/omnisync/omnisync/shared/events"
	"github.com/omnisync/omnisync/shared/hlc"
)

// stockApplier keeps the stock positions: for every position the batch
// touches (new ledger lines, changed holds, a new safety stock) it loads
// the row, runs inventory.Position.Step once, and writes the row back if
// it changed. The rules decide; this file only reads and writes rows.
type stockApplier struct{}

func (stockApplier) name() string { return "stock" }

// awaitsLedger: the positions' new states are worked out from the cache
// while PostgreSQL takes the ledger's COPY.
func (stockApplier) awaitsLedger() {}

// read: the stock applier reads no event itself; its input is what the
// reservations and ledger appliers hand on.
func (stockApplier) read(*Store, *events.Envelope) (any, error) { return nil, nil }

func (stockApplier) apply(ctx context.Context, t *applyTx, _ []itemRead) error {
	var keys []inventory.Key
	for k, d := range t.held {
		if d != 0 {
			keys = append(keys, k)
		}
	}
	for k := range t.safety {
		keys = append(keys, k)
	}
	if err := t.resolve(ctx, keys); err != nil {
		return err
	}
	for k, d := range t.held {
		if d != 0 {
			c := &t.workOn(t.ids[k], k).change
			c.Held, c.HeldAt = d, t.heldAt[k]
		}
	}
	for k, q := range t.safety {
		t.workOn(t.ids[k], k).change.Safety = &q
	}
	if len(t.work) == 0 {
		return nil
	}
	ids := make([]int64, 0, len(t.work))
	for id := range t.work {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	optimistic := t.s.stockOptimistic(t)
	loaded, cached, err := t.s.loadStock(ctx, t, ids, optimistic)
	if err != nil {
		return err
	}
	counts := map[int64]events.Stamp{}
	newCounts := map[int64]inventory.Move{}
	for i, id := range ids {
		if c, ok := loaded[i].pos.NewCount(t.works[t.work[id]].change.Moves); ok {
			counts[id] = c.Stamp
			newCounts[id] = c
		}
	}
	// Each position's next state: those no new count sets first, from
	// what the hub holds alone (while the ledger's COPY may still run),
	// then the counted ones, which need the deltas the ledger holds after
	// their counts.
	changes := make([]inventory.Change, len(ids))
	das := make([]int64, len(ids))
	nexts := make([]inventory.Position, len(ids))
	var after map[int64]int64
	step := func(i int) {
		change, da := t.works[t.work[ids[i]]].change, after[ids[i]]
		if t.s.mutate != nil {
			t.s.mutate(&change, &da)
		}
		changes[i], das[i], nexts[i] = change, da, loaded[i].pos.Step(change, da)
	}
	for i, id := range ids {
		if _, ok := counts[id]; !ok {
			step(i)
		}
	}
	if err := t.awaitLedger(ctx); err != nil {
		return err
	}
	if after, err = t.s.deltasAfter(ctx, t.tx, counts); err != nil {
		return err
	}
	for i, id := range ids {
		if _, ok := counts[id]; ok {
			step(i)
		}
	}
	written := make([]stockWrite, 0, len(ids))
	// Positions taken from the cache and left as they were: nothing is
	// written to them, but what the batch decided rests on their state
	// too, so on PostgreSQL their versions are checked.
	var unchanged []stockState
	var unchangedIDs []int64
	// Sized for the batch's positions at once: a busy batch writes tens
	// of thousands.
	if len(t.states) == 0 {
		t.states = make(map[int64]stockState, len(ids))
	}
	t.changed = slices.Grow(t.changed, len(ids))
	t.out.positions = slices.Grow(t.out.positions, len(ids))
	t.counted = slices.Grow(t.counted, len(newCounts))
	for i, id := range ids {
		w := &t.works[t.work[id]]
		was, next := loaded[i].pos, nexts[i]
		if c, ok := newCounts[id]; ok {
			t.counted = append(t.counted, countedAt{key: w.key, count: c, expected: expectedAt(was, changes[i], das[i])})
		}
		if next == was {
			t.states[id] = loaded[i]
			if cached[i] && t.s.d.pg() {
				unchanged = append(unchanged, loaded[i])
				unchangedIDs = append(unchangedIDs, id)
			}
			continue
		}
		t.states[id] = stockState{pos: next, ver: loaded[i].ver + 1}
		written = append(written, stockWrite{id: id, ver: loaded[i].ver, was: was, pos: next})
		t.changed = append(t.changed, positionChange{key: w.key, was: was.Available(), is: next.Available()})
		t.out.positions = append(t.out.positions, w.key)
	}
	if err := t.s.putStock(ctx, t.conn, t.tx, written, unchangedIDs, unchanged, t.nowMS, optimistic); err != nil {
		return err
	}
	if optimistic {
		t.s.stockMode.held()
	}
	t.out.positions = positionsOut(t.out.positions)
	return nil
}

// countedAt is a count that set a position, for the counts applier: the
// count's move and what the books expected at its snapshot.
type countedAt struct {
	key      inventory.Key
	count    inventory.Move
	expected int64
}

// expectedAt is what position p's books said at the snapshot of the count
// that c brings (deltasAfter: the deltas stamped after it, c's own
// included): on_hand as the batch would leave it without its counts,
// less what moved after the snapshot.
func expectedAt(p inventory.Position, c inventory.Change, deltasAfter int64) int64 {
	c.Moves = slices.DeleteFunc(slices.Clone(c.Moves), inventory.Move.IsCount)
	return p.Step(c, 0).OnHand - deltasAfter
}

// errStaleStock reports that a position's state the batch took from the
// store's cache is not the stored one any more (another replica changed
// it): the attempt is rolled back and the batch redone reading every
// position locked (LOCKS.md, level 5).
var errStaleStock = errors.New("store: a cached position changed in the database")

// stockOptimistic reports whether the stock applier may take positions'
// states from the store's cache in this attempt, writing them back only
// where the rows' versions are still the cached ones. Not in a batch
// redone after such a write found a stale state (it locks every
// position), nor in SetSafetyStock's one-position transactions, nor for a
// while after a stale cache was met (stockMode).
func (s *Store) stockOptimistic(t *applyTx) bool {
	return s.states != nil && t.p != nil && !t.p.lockStock && s.stockMode.optimistic()
}

// stockMode paces the optimistic stock step on PostgreSQL. Where several
// replicas apply batches of the same positions, cached states go stale
// often and each stale batch is applied twice; so after a stale batch the
// next ones lock their positions, 1, 2, 4, ... up to 64 batches after
// successive stale ones, and the cache is tried again after that. One
// replica writing its own positions never pays it.
type stockMode struct {
	mu            sync.Mutex
	skip, backoff int
}

// optimistic reports whether the next batch may use the cache.
func (m *stockMode) optimistic() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.skip > 0 {
		m.skip--
		return false
	}
	return true
}

// stale records a batch that met a stale cached state.
func (m *stockMode) stale() {
	m.mu.Lock()
	m.backoff = min(max(1, 2*m.backoff), 64)
	m.skip = m.backoff
	m.mu.Unlock()
}

// held records a batch whose cached states all held.
func (m *stockMode) held() {
	m.mu.Lock()
	m.backoff = 0
	m.mu.Unlock()
}

// StockRedos is how many batches this store has redone because a
// position's state it had cached had been changed by another replica.
func (s *Store) StockRedos() int64 { return s.stockRedos.Load() }

// loadStock returns the state of the positions ids (sorted) and which of
// them came from the store's cache. Optimistic: from the cache where it
// has them, else read from the table without a lock (the write checks
// the versions). Otherwise every one is read from the table, locked
// (PostgreSQL).
func (s *Store) loadStock(ctx context.Context, t *applyTx, ids []int64, optimistic bool) ([]stockState, []bool, error) {
	cached := make([]bool, len(ids))
	if !optimistic {
		if err := t.awaitLedger(ctx); err != nil {
			return nil, nil, err
		}
		out, err := s.readStock(ctx, t.tx, ids, true)
		return out, cached, err
	}
	out := make([]stockState, len(ids))
	var missing []int64
	var at []int
	for i, id := range ids {
		if p, ok := s.states.get(id); ok {
			out[i], cached[i] = p, true
		} else {
			missing = append(missing, id)
			at = append(at, i)
		}
	}
	if len(missing) == 0 {
		return out, cached, nil
	}
	if err := t.awaitLedger(ctx); err != nil {
		return nil, nil, err
	}
	loaded, err := s.readStock(ctx, t.tx, missing, false)
	if err != nil {
		return nil, nil, err
	}
	for j, i := range at {
		out[i] = loaded[j]
	}
	return out, cached, nil
}

// readStock loads the positions ids (sorted, each existing: resolve
// created the missing ones) with their rows' versions; with lock, it
// locks them in id order on PostgreSQL (LOCKS.md, level 5). The result is
// aligned with ids.
func (s *Store) readStock(ctx context.Context, tx *sql.Tx, ids []int64, lock bool) ([]stockState, error) {
	out := make([]stockState, len(ids))
	found := make([]bool, len(ids))
	rs := newRowset(integer("id"))
	rs.grow(len(ids))
	for _, id := range ids {
		rs.add(id)
	}
	forUpdate := ""
	if lock {
		forUpdate = s.d.forUpdate("s")
	}
	err := s.queryRows(ctx, tx, rs, "k", func(a *args, k string) string {
		return `SELECT s.id, s.on_hand, s.reserved, s.safety, s.has_count, s.count_qty, s.count_hlc, s.count_id, s.count_method, s.last_hlc, s.version
FROM stock s JOIN ` + k + ` ON s.id = k.id ORDER BY s.id` + forUpdate
	}, func(rows *sql.Rows) error {
		var id, hasCount, countHLC, lastHLC, ver int64
		var p inventory.Position
		if err := rows.Scan(&id, &p.OnHand, &p.Reserved, &p.Safety, &hasCount, &p.CountQty, &countHLC, &p.CountStamp.ID, &p.CountMethod, &lastHLC, &ver); err != nil {
			return err
		}
		i, ok := slices.BinarySearch(ids, id)
		if !ok {
			return fmt.Errorf("unexpected position %d", id)
		}
		p.HasCount = hasCount != 0
		p.CountStamp.HLC = hlc.Unpack(countHLC)
		p.LastStamp = hlc.Unpack(lastHLC)
		out[i], found[i] = stockState{pos: p, ver: ver}, true
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read stock: %w", err)
	}
	for i, ok := range found {
		if !ok {
			return nil, fmt.Errorf("read stock: position %d missing", ids[i])
		}
	}
	return out, nil
}

// stockWrite is a position's state as loaded (and its row's version then)
// and as it must be stored.
type stockWrite struct {
	id       int64
	ver      int64
	was, pos inventory.Position
}

// putStock stores the new state of positions (ws in id order), each only
// where its row's version is still the one it was loaded at, and checks
// that the rows uncheckedIDs (cached states the batch left as they were)
// are still at theirs. It returns errStaleStock when a row is not.
//
// Most writes of a busy batch only move on_hand (sales, receipts): those
// go in a narrow statement of five values a row, the others (counts,
// holds, safety stock) in a full one.
//
// With nowait (the optimistic attempt, on PostgreSQL) no statement waits
// for a row another transaction holds: such a row is being changed, so
// the cached state is stale anyway, and not waiting is what keeps these
// writes, whose rows PostgreSQL locks in whatever order its plan visits
// them, from closing a cycle with another transaction (LOCKS.md).
func (s *Store) putStock(ctx context.Context, conn *sql.Conn, tx *sql.Tx, ws []stockWrite, uncheckedIDs []int64, unchecked []stockState, nowMS int64, nowait bool) error {
	if len(ws) == 0 && len(uncheckedIDs) == 0 {
		return nil
	}
	narrow := newRowset(integer("id"), integer("ver"), integer("on_hand"), integer("available"), integer("last_hlc"))
	full := newRowset(integer("id"), integer("ver"), integer("on_hand"), integer("reserved"), integer("safety"), integer("available"),
		integer("has_count"), integer("count_qty"), integer("count_hlc"), text("count_id"), text("count_method"), integer("last_hlc"))
	narrow.grow(len(ws))
	for _, w := range ws {
		n, o := w.pos, w.was
		if n.Reserved == o.Reserved && n.Safety == o.Safety && n.HasCount == o.HasCount && n.CountQty == o.CountQty && n.CountStamp == o.CountStamp && n.CountMethod == o.CountMethod {
			narrow.add(w.id, w.ver, n.OnHand, n.Available(), n.LastStamp.Pack())
			continue
		}
		full.add(w.id, w.ver, n.OnHand, n.Reserved, n.Safety, n.Available(),
			b2i(n.HasCount), n.CountQty, n.CountStamp.HLC.Pack(), n.CountStamp.ID, n.CountMethod, n.LastStamp.Pack())
	}
	narrowStmt := func(a *args, u string) string {
		return `UPDATE stock SET on_hand = u.on_hand, available = u.available, last_hlc = u.last_hlc,
	version = stock.version + 1, updated_ms = ` + a.add(nowMS) + `
FROM ` + u + ` WHERE stock.id = u.id AND stock.version = u.ver`
	}
	fullStmt := func(a *args, u string) string {
		return `UPDATE stock SET on_hand = u.on_hand, reserved = u.reserved, safety = u.safety, available = u.available,
	has_count = u.has_count, count_qty = u.count_qty, count_hlc = u.count_hlc, count_id = u.count_id, count_method = u.count_method, last_hlc = u.last_hlc,
	version = stock.version + 1, updated_ms = ` + a.add(nowMS) + `
FROM ` + u + ` WHERE stock.id = u.id AND stock.version = u.ver`
	}
	if s.d.pg() {
		check := newRowset(integer("id"), integer("ver"))
		check.grow(len(uncheckedIDs))
		for i, id := range uncheckedIDs {
			check.add(id, unchecked[i].ver)
		}
		return s.putStockPG(ctx, conn, narrow, full, check, narrowStmt, fullStmt, nowait)
	}
	n, err := s.execRowsConn(ctx, conn, tx, narrow, "u", narrowStmt)
	if err != nil {
		return fmt.Errorf("update stock: %w", err)
	}
	m, err := s.execRowsConn(ctx, conn, tx, full, "u", fullStmt)
	if err != nil {
		return fmt.Errorf("update stock: %w", err)
	}
	if n+m != int64(len(ws)) {
		return fmt.Errorf("update stock: %d of %d positions at their loaded version: %w", n+m, len(ws), errStaleStock)
	}
	return nil
}

// putStockPG runs putStock's statements on PostgreSQL in one round trip:
// the updates, the check of the unchanged positions' versions and, with
// nowait, the lock timeout that keeps them from waiting (set for these
// statements only, then back to the session's).
func (s *Store) putStockPG(ctx context.Context, conn *sql.Conn, narrow, full, check *rowset, narrowStmt, fullStmt func(*args, string) string, nowait bool) error {
	var b pgconn.Batch
	add := func(q string, a args) {
		vals := make([][]byte, len(a))
		for i, v := range a {
			switch v := v.(type) {
			case string:
				vals[i] = []byte(v)
			case int64:
				vals[i] = strconv.AppendInt(nil, v, 10)
			default:
				panic(fmt.Sprintf("store: putStock parameter %T", v))
			}
		}
		b.ExecParams(q, vals, nil, nil, nil)
	}
	if nowait {
		add("SET LOCAL lock_timeout = 1", nil)
	}
	// What each result of the batch is.
	const (
		resSet = iota
		resUpdate
		resCheck
	)
	var kinds []int
	if nowait {
		kinds = append(kinds, resSet)
	}
	for _, p := range []struct {
		r    *rowset
		stmt func(*args, string) string
	}{{narrow, narrowStmt}, {full, fullStmt}} {
		if p.r.len() == 0 {
			continue
		}
		var a args
		q := p.stmt(&a, s.d.from(&a, p.r, "u"))
		add(q, a)
		kinds = append(kinds, resUpdate)
	}
	if check.len() > 0 {
		var a args
		add(`SELECT count(*) FROM stock s JOIN `+s.d.from(&a, check, "k")+` ON s.id = k.id AND s.version = k.ver`, a)
		kinds = append(kinds, resCheck)
	}
	if nowait {
		add("SET LOCAL lock_timeout TO DEFAULT", nil)
		kinds = append(kinds, resSet)
	}
	var results []*pgconn.Result
	err := conn.Raw(func(dc any) error {
		pc, ok := dc.(*stdlib.Conn)
		if !ok {
			return fmt.Errorf("unexpected driver connection %T", dc)
		}
		var err error
		results, err = pc.Conn().PgConn().ExecBatch(ctx, &b).ReadAll()
		return err
	})
	if pe := (*pgconn.PgError)(nil); errors.As(err, &pe) && pe.Code == "55P03" { // lock_not_available
		return fmt.Errorf("update stock: a position is being changed by another transaction: %w", errStaleStock)
	}
	if err != nil {
		return fmt.Errorf("update stock: %w", err)
	}
	if len(results) != len(kinds) {
		return fmt.Errorf("update stock: %d results for %d statements", len(results), len(kinds))
	}
	var updated int64
	for i, r := range results {
		switch kinds[i] {
		case resUpdate:
			updated += r.CommandTag.RowsAffected()
		case resCheck:
			if len(r.Rows) != 1 || len(r.Rows[0]) != 1 {
				return fmt.Errorf("update stock: check returned %d rows", len(r.Rows))
			}
			n, err := strconv.ParseInt(string(r.Rows[0][0]), 10, 64)
			if err != nil {
				return fmt.Errorf("update stock: check: %w", err)
			}
			if n != int64(check.len()) {
				return fmt.Errorf("update stock: %d of %d unchanged positions at their loaded version: %w", n, check.len(), errStaleStock)
			}
		}
	}
	if want := int64(narrow.len() + full.len()); updated != want {
		return fmt.Errorf("update stock: %d of %d positions at their loaded version: %w", updated, want, errStaleStock)
	}
	return nil
}
