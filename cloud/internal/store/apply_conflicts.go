package store

import (
	"context"
	"fmt"

	"github.com/omnisync/omnisync/cloud/internal/inventory"
	"github.com/omnisync/omnisync/shared/events"
)

// conflictsApplier follows the oversell conflicts of the positions the
// stock applier wrote, as inventory.ConflictChange decides: a position has
// an open conflict exactly while its available stock is below zero, and
// one that closes records what closed it (inventory.CauseOf). It also
// closes the conflicts HQ acted on when the events of the action apply
// (their origin epoch is the action's row, ActOnConflict). The stock
// rows' locks guard their conflicts (LOCKS.md).
type conflictsApplier struct{}

func (conflictsApplier) name() string { return "conflicts" }

func (conflictsApplier) read(*Store, *events.Envelope) (any, error) { return nil, nil }

func (conflictsApplier) apply(ctx context.Context, t *applyTx, _ []itemRead) error {
	if err := t.s.syncConflicts(ctx, t, t.changed); err != nil {
		return err
	}
	return t.s.closeActedConflicts(ctx, t)
}

func (s *Store) syncConflicts(ctx context.Context, t *applyTx, changes []positionChange) error {
	opened := newRowset(text("sku"), text("location"), integer("available"))
	updated := newRowset(text("sku"), text("location"), integer("available"), integer("resolved"), text("cause"))
	var hqEvents map[string]bool
	for _, c := range changes {
		switch inventory.ConflictChange(c.was, c.is) {
		case inventory.ConflictOpen:
			opened.add(c.key.SKU, c.key.Location, c.is)
		case inventory.ConflictUpdate:
			updated.add(c.key.SKU, c.key.Location, c.is, int64(0), "")
		case inventory.ConflictResolve:
			if hqEvents == nil {
				hqEvents = t.hqEventIDs()
			}
			updated.add(c.key.SKU, c.key.Location, c.is, t.nowMS, t.causeAt(c.key, hqEvents))
		}
	}
	err := s.execRows(ctx, t.tx, opened, "k", func(a *args, k string) string {
		return `INSERT INTO conflicts (sku, location, kind, available, opened_ms, updated_ms)
SELECT sku, location, ` + a.add(inventory.KindOversell) + `, available, ` + a.add(t.nowMS) + `, ` + a.add(t.nowMS) + `
FROM ` + k + ` WHERE true`
	})
	if err != nil {
		return fmt.Errorf("open conflicts: %w", err)
	}
	err = s.execRows(ctx, t.tx, updated, "u", func(a *args, u string) string {
		return `UPDATE conflicts SET available = u.available, resolved_ms = u.resolved, resolved_by = u.cause,
	updated_ms = ` + a.add(t.nowMS) + `, version = conflicts.version + 1
FROM ` + u + ` WHERE conflicts.sku = u.sku AND conflicts.location = u.location AND conflicts.resolved_ms = 0`
	})
	if err != nil {
		return fmt.Errorf("update conflicts: %w", err)
	}
	return nil
}

// hqEventIDs are the ids of the batch's applied events that HQ sent.
func (t *applyTx) hqEventIDs() map[string]bool {
	out := map[string]bool{}
	if t.p == nil {
		return out
	}
	for _, i := range t.applied {
		if e := &t.p.items[i].Env; e.Origin.Store == inventory.HQ {
			out[e.ID] = true
		}
	}
	return out
}

// causeAt names what closed the conflict at k in this batch: the kinds
// of the moves new at k and of the reservation operations that changed
// its holds, HQ's hand in any of them, a new safety stock.
func (t *applyTx) causeAt(k inventory.Key, hqEvents map[string]bool) string {
	kinds := t.heldBy[k]
	hq := t.heldHQ[k]
	safety := false
	if i, ok := t.work[t.ids[k]]; ok {
		w := &t.works[i]
		for _, m := range w.change.Moves {
			kinds = append(kinds, m.Kind)
			hq = hq || hqEvents[m.Stamp.ID]
		}
		safety = w.change.Safety != nil
	}
	return inventory.CauseOf(kinds, hq, safety)
}

// closeActedConflicts closes, as resolved by HQ, the open conflicts whose
// action's events this batch applies: HQ took charge of the shortfall
// (stock on its way, the order moved or cancelled), even while the
// position is still short until the stock arrives.
func (s *Store) closeActedConflicts(ctx context.Context, t *applyTx) error {
	if t.p == nil {
		return nil
	}
	actions := newRowset(integer("id"))
	seen := map[uint64]bool{}
	for _, i := range t.applied {
		o := t.p.items[i].Env.Origin
		if o.Store == inventory.HQ && o.Device == HQActionDevice && !seen[o.Epoch] {
			seen[o.Epoch] = true
			actions.add(int64(o.Epoch))
		}
	}
	err := s.execRows(ctx, t.tx, actions, "k", func(a *args, k string) string {
		return `UPDATE conflicts SET resolved_ms = ` + a.add(t.nowMS) + `, resolved_by = ` + a.add(inventory.CauseHQAction) + `,
	updated_ms = ` + a.add(t.nowMS) + `, version = conflicts.version + 1
WHERE resolved_ms = 0 AND id IN (SELECT c.conflict_id FROM conflict_actions c JOIN ` + k + ` ON c.id = k.id)`
	})
	if err != nil {
		return fmt.Errorf("close acted conflicts: %w", err)
	}
	return nil
}
