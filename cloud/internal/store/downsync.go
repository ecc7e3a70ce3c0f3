package store

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/omnisync/omnisync/cloud/internal/inventory"
	"github.com/omnisync/omnisync/shared/downsync"
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
	rows, err := s.r.QueryContext(ctx, `SELECT sku, location, updated_ms FROM stock
WHERE updated_ms > $1 OR (updated_ms = $1 AND (sku > $2 OR (sku = $2 AND location > $3)))
ORDER BY updated_ms, sku, location LIMIT `+fmt.Sprint(max(limit, 1)), since.MS, since.Key, since.Key2)
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
	return s.changedIDs(ctx, "products", since, limit)
}

// ChangedReviews is ChangedStock for review summaries.
func (s *Store) ChangedReviews(ctx context.Context, since Cursor, limit int) ([]string, Cursor, error) {
	return s.changedIDs(ctx, "review_stats", since, limit)
}

func (s *Store) changedIDs(ctx context.Context, table string, since Cursor, limit int) ([]string, Cursor, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT product_id, updated_ms FROM `+table+`
WHERE updated_ms > $1 OR (updated_ms = $1 AND product_id > $2)
ORDER BY updated_ms, product_id LIMIT `+fmt.Sprint(max(limit, 1)), since.MS, since.Key)
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
