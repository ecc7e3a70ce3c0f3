package store

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/omnisync/omnisync/cloud/internal/inventory"
	"github.com/omnisync/omnisync/shared/downsync"
	"github.com/omnisync/omnisync/shared/events"
	"github.com/omnisync/omnisync/shared/hlc"
)

func hlcMillis(packed int64) int64 { return hlc.Unpack(packed).Wall }

// StockDocs returns the down-sync documents of the positions asked for
// that exist, in (sku, location) order.
func (s *Store) StockDocs(ctx context.Context, keys []inventory.Key) ([]downsync.StockDoc, error) {
	out := make([]downsync.StockDoc, 0, len(keys))
	if len(keys) == 0 {
		return out, nil
	}
	rs := newRowset(text("sku"), text("location"))
	for _, k := range keys {
		rs.add(k.SKU, k.Location)
	}
	err := s.queryRows(ctx, s.r, rs, "k", func(a *args, k string) string {
		return `SELECT s.sku, s.location, s.on_hand, s.reserved, s.available, s.version, s.updated_ms
FROM stock s JOIN ` + k + ` ON s.sku = k.sku AND s.location = k.location ORDER BY s.sku, s.location`
	}, func(rows *sql.Rows) error {
		var d downsync.StockDoc
		if err := rows.Scan(&d.SKU, &d.Location, &d.OnHand, &d.Reserved, &d.Available, &d.Version, &d.UpdatedMS); err != nil {
			return err
		}
		out = append(out, d)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("store: stock docs: %w", err)
	}
	return out, nil
}

// Cursor is a position in the change order (updated_ms, then key) of one
// of ChangedStock, ChangedProducts and ChangedReviews; the zero Cursor is
// the beginning.
type Cursor struct {
	MS        int64
	Key, Key2 string
}

// ChangedStock lists stock positions changed at or after since.MS, in
// change order after the cursor, at most limit; it returns the cursor to
// continue from. A hub replica uses it to republish what another replica
// changed (and may have died before publishing), and to publish everything
// when it starts.
func (s *Store) ChangedStock(ctx context.Context, since Cursor, limit int) ([]inventory.Key, Cursor, error) {
	// changed_min is updated_ms in minutes (its index is what the sweep
	// reads; schema.go).
	rows, err := s.r.QueryContext(ctx, `SELECT sku, location, updated_ms FROM stock
WHERE changed_min >= $4 AND (updated_ms > $1 OR (updated_ms = $1 AND (sku > $2 OR (sku = $2 AND location > $3))))
ORDER BY updated_ms, sku, location LIMIT `+fmt.Sprint(max(limit, 1)), since.MS, since.Key, since.Key2, since.MS/60000)
	if err != nil {
		return nil, since, fmt.Errorf("store: changed stock: %w", err)
	}
	defer rows.Close()
	var out []inventory.Key
	for rows.Next() {
		var k inventory.Key
		if err := rows.Scan(&k.SKU, &k.Location, &since.MS); err != nil {
			return nil, since, err
		}
		since.Key, since.Key2 = k.SKU, k.Location
		out = append(out, k)
	}
	return out, since, rows.Err()
}

// ChangedProducts is ChangedStock for catalog products.
func (s *Store) ChangedProducts(ctx context.Context, since Cursor, limit int) ([]string, Cursor, error) {
	return s.changedIDs(ctx, "products", "product_id", since, limit)
}

// ChangedReviews is ChangedStock for review summaries.
func (s *Store) ChangedReviews(ctx context.Context, since Cursor, limit int) ([]string, Cursor, error) {
	return s.changedIDs(ctx, "review_stats", "product_id", since, limit)
}

// ChangedReservations is ChangedStock for reservations (pickup documents).
func (s *Store) ChangedReservations(ctx context.Context, since Cursor, limit int) ([]string, Cursor, error) {
	return s.changedIDs(ctx, "reservations", "reservation_id", since, limit)
}

// changedIDs is ChangedStock for a table keyed by one column; each such
// table has changed_min, the minute of updated_ms, with an index
// (schema.go).
func (s *Store) changedIDs(ctx context.Context, table, col string, since Cursor, limit int) ([]string, Cursor, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT `+col+`, updated_ms FROM `+table+`
WHERE changed_min >= $3 AND (updated_ms > $1 OR (updated_ms = $1 AND `+col+` > $2))
ORDER BY updated_ms, `+col+` LIMIT `+fmt.Sprint(max(limit, 1)), since.MS, since.Key, since.MS/60000)
	if err != nil {
		return nil, since, fmt.Errorf("store: changed %s: %w", table, err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id, &since.MS); err != nil {
			return nil, since, err
		}
		since.Key = id
		out = append(out, id)
	}
	return out, since, rows.Err()
}

// PickupDocs returns the pickup documents of the reservations asked for
// that have been reserved (a release that arrived before its reserve has
// no location yet), in reservation id order.
func (s *Store) PickupDocs(ctx context.Context, ids []string) ([]downsync.PickupDoc, error) {
	out := make([]downsync.PickupDoc, 0, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	rs := newRowset(text("id"))
	for _, id := range ids {
		rs.add(id)
	}
	at := map[string]int{}
	err := s.queryRows(ctx, s.r, rs, "k", func(a *args, k string) string {
		return `SELECT r.reservation_id, r.location, r.reserve_hlc, r.closed, r.closed_hlc, r.closed_kind, r.version, r.updated_ms
FROM reservations r JOIN ` + k + ` ON r.reservation_id = k.id WHERE r.reserved = 1 ORDER BY r.reservation_id`
	}, func(rows *sql.Rows) error {
		var d downsync.PickupDoc
		var reserveHLC, closed, closedHLC int64
		var closedKind string
		if err := rows.Scan(&d.ReservationID, &d.Store, &reserveHLC, &closed, &closedHLC, &closedKind, &d.Version, &d.UpdatedMS); err != nil {
			return err
		}
		d.ReservedMS = hlcMillis(reserveHLC)
		d.State = downsync.PickupOpen
		if closed != 0 {
			d.ClosedMS = hlcMillis(closedHLC)
			d.State = downsync.PickupCancelled
			if closedKind == string(events.KindFulfil) {
				d.State = downsync.PickupCollected
			}
		}
		d.Lines = []downsync.PickupLine{}
		at[d.ReservationID] = len(out)
		out = append(out, d)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("store: pickup docs: %w", err)
	}
	// The lines are read after the rows, not in their snapshot: a document
	// may carry a newer change's lines under the older version, and that
	// change, marked for publishing after its commit, follows with both.
	err = s.reservationLines(ctx, s.r, rs, func(id string, l events.Line) {
		if i, ok := at[id]; ok {
			out[i].Lines = append(out[i].Lines, downsync.PickupLine{SKU: l.SKU, Qty: l.Qty})
		}
	})
	if err != nil {
		return nil, fmt.Errorf("store: pickup lines: %w", err)
	}
	return out, nil
}
