package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/omnisync/omnisync/cloud/internal/transfers"
	"github.com/omnisync/omnisync/shared/events"
)

// transfersApplier pairs transfer_out and transfer_in by transfer_id:
// it keeps each transfer's events and folds them again (transfers.Fold)
// whenever one is new, so order and repeats do not matter. The ledger
// moves the stock at both ends on its own; a transfer half without a
// transfer_id is only that. Lock order: transfers rows by id, after the
// conflicts (LOCKS.md).
type transfersApplier struct{}

func (transfersApplier) name() string { return "transfers" }

type transferRead struct {
	id string
	op transfers.Op
}

func (transfersApplier) read(_ *Store, env *events.Envelope) (any, error) {
	id, op, ok := transfers.OpOf(*env)
	if !ok {
		return nil, nil
	}
	return &transferRead{id: id, op: op}, nil
}

func (transfersApplier) apply(ctx context.Context, t *applyTx, reads []itemRead) error {
	if len(reads) == 0 {
		return nil
	}
	ids := make([]string, 0, len(reads))
	evs := newRowset(text("tid"), text("eid"), text("kind"), text("location"), text("counterpart"), text("lines"), integer("at"))
	for _, r := range reads {
		tr := r.v.(*transferRead)
		ids = append(ids, tr.id)
		lines, err := json.Marshal(tr.op.Lines)
		if err != nil {
			return err
		}
		evs.add(tr.id, tr.op.EventID, string(tr.op.Kind), tr.op.Location, tr.op.Counterpart, string(lines), tr.op.At.UnixMilli())
	}
	slices.Sort(ids)
	ids = slices.Compact(ids)
	idset := newRowset(text("id"))
	for _, id := range ids {
		idset.add(id)
	}
	s := t.s
	if s.d.rowLocks() {
		// Every transfer gets its row, then the rows are locked in id
		// order: replicas folding the same transfer take turns.
		err := s.execRows(ctx, t.tx, idset, "k", func(a *args, k string) string {
			return `INSERT INTO transfers (transfer_id, source, destination, state, shipped, received, shipped_ms, received_ms, updated_ms)
SELECT id, '', '', '', 0, 0, 0, 0, 0 FROM ` + k + ` ORDER BY id COLLATE "C" ON CONFLICT DO NOTHING`
		})
		if err != nil {
			return fmt.Errorf("ensure transfers: %w", err)
		}
		err = s.queryRows(ctx, t.tx, idset, "k", func(a *args, k string) string {
			return `SELECT r.transfer_id FROM transfers r JOIN ` + k + ` ON r.transfer_id = k.id ORDER BY r.transfer_id` + s.d.forUpdate("r")
		}, func(*sql.Rows) error { return nil })
		if err != nil {
			return fmt.Errorf("lock transfers: %w", err)
		}
	}
	err := s.execRows(ctx, t.tx, evs, "e", func(a *args, e string) string {
		return `INSERT INTO transfer_events (transfer_id, event_id, kind, location, counterpart, lines, at_ms)
SELECT tid, eid, kind, location, counterpart, lines, at FROM ` + e + ` WHERE true ON CONFLICT DO NOTHING`
	})
	if err != nil {
		return fmt.Errorf("transfer events: %w", err)
	}
	ops := map[string][]transfers.Op{}
	err = s.queryRows(ctx, t.tx, idset, "k", func(a *args, k string) string {
		return `SELECT e.transfer_id, e.event_id, e.kind, e.location, e.counterpart, e.lines, e.at_ms FROM transfer_events e JOIN ` + k + ` ON e.transfer_id = k.id`
	}, func(rows *sql.Rows) error {
		var id, kind, lines string
		var op transfers.Op
		var at int64
		if err := rows.Scan(&id, &op.EventID, &kind, &op.Location, &op.Counterpart, &lines, &at); err != nil {
			return err
		}
		op.Kind, op.At = events.Kind(kind), time.UnixMilli(at)
		if err := json.Unmarshal([]byte(lines), &op.Lines); err != nil {
			return fmt.Errorf("transfer %s event %s: %w", id, op.EventID, err)
		}
		ops[id] = append(ops[id], op)
		return nil
	})
	if err != nil {
		return fmt.Errorf("load transfer events: %w", err)
	}
	head := newRowset(text("id"), text("source"), text("destination"), text("state"), integer("shipped"), integer("received"), integer("shipped_ms"), integer("received_ms"))
	lines := newRowset(text("id"), text("sku"), text("destination"), integer("shipped"), integer("received"), integer("in_transit"))
	for _, id := range ids {
		tr := transfers.Fold(id, ops[id])
		var shipped, received int64
		for _, l := range tr.Lines {
			shipped += l.Shipped
			received += l.Received
			transit := int64(0)
			if tr.Open() {
				transit = l.InTransit()
			}
			lines.add(id, l.SKU, tr.Destination, l.Shipped, l.Received, transit)
		}
		head.add(id, tr.Source, tr.Destination, tr.State, shipped, received, msOf(tr.ShippedAt), msOf(tr.ReceivedAt))
	}
	err = s.execRows(ctx, t.tx, head, "u", func(a *args, u string) string {
		return `INSERT INTO transfers (transfer_id, source, destination, state, shipped, received, shipped_ms, received_ms, updated_ms)
SELECT id, source, destination, state, shipped, received, shipped_ms, received_ms, ` + a.add(t.nowMS) + ` FROM ` + u + ` WHERE true
ON CONFLICT (transfer_id) DO UPDATE SET source = excluded.source, destination = excluded.destination, state = excluded.state,
	shipped = excluded.shipped, received = excluded.received, shipped_ms = excluded.shipped_ms,
	received_ms = excluded.received_ms, updated_ms = excluded.updated_ms`
	})
	if err != nil {
		return fmt.Errorf("write transfers: %w", err)
	}
	err = s.execRows(ctx, t.tx, idset, "k", func(a *args, k string) string {
		return "DELETE FROM transfer_lines WHERE transfer_id IN (SELECT id FROM " + k + ")"
	})
	if err != nil {
		return fmt.Errorf("replace transfer lines: %w", err)
	}
	err = s.execRows(ctx, t.tx, lines, "l", func(a *args, l string) string {
		return `INSERT INTO transfer_lines (transfer_id, sku, destination, shipped, received, in_transit)
SELECT id, sku, destination, shipped, received, in_transit FROM ` + l + ` WHERE true`
	})
	if err != nil {
		return fmt.Errorf("write transfer lines: %w", err)
	}
	return nil
}
