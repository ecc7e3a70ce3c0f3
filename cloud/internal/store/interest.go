package store

import (
	"context"
	"fmt"
	"time"
)

// InterestedIn returns the customers (master ids as their carts name
// them) who put sku in a cart changed since since and still hold it
// there: what the automation's back_in_stock trigger means by a customer
// who looked at an item. Fitting-room visits are anonymous and kiosk
// scans name no one, so a cart is the one record of a known shopper's
// interest the books keep.
func (s *Store) InterestedIn(ctx context.Context, sku string, since time.Time) ([]string, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT DISTINCT c.customer FROM cart_lines l JOIN carts c ON c.cart_id = l.cart_id
WHERE l.sku = $1 AND l.qty > 0 AND c.customer <> '' AND c.updated_wall >= $2 ORDER BY c.customer LIMIT 10000`, sku, since.UnixMilli())
	if err != nil {
		return nil, fmt.Errorf("store: interested in %s: %w", sku, err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var c string
		if err := rows.Scan(&c); err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, rows.Err()
}
