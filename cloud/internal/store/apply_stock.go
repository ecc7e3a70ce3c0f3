package store

import (
	"context"
	"database/sql"
	"fmt"
	"slices"

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
	was, err := t.s.loadStock(ctx, t, ids)
	if err != nil {
		return err
	}
	counts := map[int64]events.Stamp{}
	newCounts := map[int64]inventory.Move{}
	for i, id := range ids {
		if c, ok := was[i].NewCount(t.works[t.work[id]].change.Moves); ok {
			counts[id] = c.Stamp
			newCounts[id] = c
		}
	}
	after, err := t.s.deltasAfter(ctx, t.tx, counts)
	if err != nil {
		return err
	}
	written := make([]stockWrite, 0, len(ids))
	// Sized for the batch's positions at once: a busy batch writes tens
	// of thousands.
	if len(t.states) == 0 {
		t.states = make(map[int64]inventory.Position, len(ids))
	}
	t.changed = slices.Grow(t.changed, len(ids))
	t.out.positions = slices.Grow(t.out.positions, len(ids))
	t.counted = slices.Grow(t.counted, len(newCounts))
	for i, id := range ids {
		w := &t.works[t.work[id]]
		change, da := w.change, after[id]
		if t.s.mutate != nil {
			t.s.mutate(&change, &da)
		}
		next := was[i].Step(change, da)
		t.states[id] = next
		if c, ok := newCounts[id]; ok {
			t.counted = append(t.counted, countedAt{key: w.key, count: c, expected: expectedAt(was[i], change, da)})
		}
		if next == was[i] {
			continue
		}
		written = append(written, stockWrite{id: id, was: was[i], pos: next})
		t.changed = append(t.changed, positionChange{key: w.key, was: was[i].Available(), is: next.Available()})
		t.out.positions = append(t.out.positions, w.key)
	}
	if err := t.s.putStock(ctx, t.conn, t.tx, written, t.nowMS); err != nil {
		return err
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

// loadStock returns the state of the positions ids (sorted): from the
// store's cache of positions where it has one (SQLite, whose one writer is
// this process), else from the table (lockStock).
func (s *Store) loadStock(ctx context.Context, t *applyTx, ids []int64) ([]inventory.Position, error) {
	if s.states == nil {
		return s.lockStock(ctx, t.tx, ids)
	}
	out := make([]inventory.Position, len(ids))
	var missing []int64
	var at []int
	for i, id := range ids {
		if p, ok := s.states.get(id); ok {
			out[i] = p
		} else {
			missing = append(missing, id)
			at = append(at, i)
		}
	}
	if len(missing) == 0 {
		return out, nil
	}
	loaded, err := s.lockStock(ctx, t.tx, missing)
	if err != nil {
		return nil, err
	}
	for j, i := range at {
		out[i] = loaded[j]
	}
	return out, nil
}

// lockStock loads the positions ids (sorted, each existing: resolve
// created the missing ones), locking them in id order on PostgreSQL
// (LOCKS.md, level 4). The result is aligned with ids.
func (s *Store) lockStock(ctx context.Context, tx *sql.Tx, ids []int64) ([]inventory.Position, error) {
	out := make([]inventory.Position, len(ids))
	found := make([]bool, len(ids))
	rs := newRowset(integer("id"))
	rs.grow(len(ids))
	for _, id := range ids {
		rs.add(id)
	}
	err := s.queryRows(ctx, tx, rs, "k", func(a *args, k string) string {
		return `SELECT s.id, s.on_hand, s.reserved, s.safety, s.has_count, s.count_qty, s.count_hlc, s.count_id, s.count_method, s.last_hlc
FROM stock s JOIN ` + k + ` ON s.id = k.id ORDER BY s.id` + s.d.forUpdate("s")
	}, func(rows *sql.Rows) error {
		var id, hasCount, countHLC, lastHLC int64
		var p inventory.Position
		if err := rows.Scan(&id, &p.OnHand, &p.Reserved, &p.Safety, &hasCount, &p.CountQty, &countHLC, &p.CountStamp.ID, &p.CountMethod, &lastHLC); err != nil {
			return err
		}
		i, ok := slices.BinarySearch(ids, id)
		if !ok {
			return fmt.Errorf("unexpected position %d", id)
		}
		p.HasCount = hasCount != 0
		p.CountStamp.HLC = hlc.Unpack(countHLC)
		p.LastStamp = hlc.Unpack(lastHLC)
		out[i], found[i] = p, true
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("lock stock: %w", err)
	}
	for i, ok := range found {
		if !ok {
			return nil, fmt.Errorf("lock stock: position %d missing", ids[i])
		}
	}
	return out, nil
}

// stockWrite is a position's state as loaded and as it must be stored.
type stockWrite struct {
	id       int64
	was, pos inventory.Position
}

// putStock stores the new state of locked positions (ws in id order). Most
// writes of a busy batch only move on_hand (sales, receipts): those go in
// a narrow statement of four values a row, the others (counts, holds,
// safety stock) in a full one.
func (s *Store) putStock(ctx context.Context, conn *sql.Conn, tx *sql.Tx, ws []stockWrite, nowMS int64) error {
	if len(ws) == 0 {
		return nil
	}
	narrow := newRowset(integer("id"), integer("on_hand"), integer("available"), integer("last_hlc"))
	full := newRowset(integer("id"), integer("on_hand"), integer("reserved"), integer("safety"), integer("available"),
		integer("has_count"), integer("count_qty"), integer("count_hlc"), text("count_id"), text("count_method"), integer("last_hlc"))
	narrow.grow(len(ws))
	for _, w := range ws {
		n, o := w.pos, w.was
		if n.Reserved == o.Reserved && n.Safety == o.Safety && n.HasCount == o.HasCount && n.CountQty == o.CountQty && n.CountStamp == o.CountStamp && n.CountMethod == o.CountMethod {
			narrow.add(w.id, n.OnHand, n.Available(), n.LastStamp.Pack())
			continue
		}
		full.add(w.id, n.OnHand, n.Reserved, n.Safety, n.Available(),
			b2i(n.HasCount), n.CountQty, n.CountStamp.HLC.Pack(), n.CountStamp.ID, n.CountMethod, n.LastStamp.Pack())
	}
	_, err := s.execRowsConn(ctx, conn, tx, narrow, "u", func(a *args, u string) string {
		return `UPDATE stock SET on_hand = u.on_hand, available = u.available, last_hlc = u.last_hlc,
	version = stock.version + 1, updated_ms = ` + a.add(nowMS) + `
FROM ` + u + ` WHERE stock.id = u.id`
	})
	if err != nil {
		return fmt.Errorf("update stock: %w", err)
	}
	_, err = s.execRowsConn(ctx, conn, tx, full, "u", func(a *args, u string) string {
		return `UPDATE stock SET on_hand = u.on_hand, reserved = u.reserved, safety = u.safety, available = u.available,
	has_count = u.has_count, count_qty = u.count_qty, count_hlc = u.count_hlc, count_id = u.count_id, count_method = u.count_method, last_hlc = u.last_hlc,
	version = stock.version + 1, updated_ms = ` + a.add(nowMS) + `
FROM ` + u + ` WHERE stock.id = u.id`
	})
	if err != nil {
		return fmt.Errorf("update stock: %w", err)
	}
	return nil
}
