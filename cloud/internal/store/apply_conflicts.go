package store

import (
	"context"
	"fmt"

	"github.com/omnisync/omnisync/cloud/internal/inventory"
	"github.com/omnisync/omnisync/shared/events"
)

// conflictsApplier follows the oversell conflicts of the positions the
// stock applier wrote, as inventory.ConflictChange decides: a position has
// an open conflict exactly while its available stock is below zero. The
// stock rows' locks guard their conflicts (LOCKS.md).
type conflictsApplier struct{}

func (conflictsApplier) name() string { return "conflicts" }

func (conflictsApplier) read(*Store, *events.Envelope) (any, error) { return nil, nil }

func (conflictsApplier) apply(ctx context.Context, t *applyTx, _ []itemRead) error {
	return t.s.syncConflicts(ctx, t, t.changed)
}

func (s *Store) syncConflicts(ctx context.Context, t *applyTx, changes []positionChange) error {
	opened := newRowset(text("sku"), text("location"), integer("available"))
	updated := newRowset(text("sku"), text("location"), integer("available"), integer("resolved"))
	for _, c := range changes {
		switch inventory.ConflictChange(c.was, c.is) {
		case inventory.ConflictOpen:
			opened.add(c.key.SKU, c.key.Location, c.is)
		case inventory.ConflictUpdate:
			updated.add(c.key.SKU, c.key.Location, c.is, int64(0))
		case inventory.ConflictResolve:
			updated.add(c.key.SKU, c.key.Location, c.is, t.nowMS)
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
		return `UPDATE conflicts SET available = u.available, resolved_ms = u.resolved, updated_ms = ` + a.add(t.nowMS) + `
FROM ` + u + ` WHERE conflicts.sku = u.sku AND conflicts.location = u.location AND conflicts.resolved_ms = 0`
	})
	if err != nil {
		return fmt.Errorf("update conflicts: %w", err)
	}
	return nil
}
