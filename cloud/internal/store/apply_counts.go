package store

import (
	"context"
	"database/sql"
	"fmt"
	"slices"

	"github.com/omnisync/omnisync/shared/events"
)

// countsApplier records a variance for every count line that set a
// position (the stock applier hands them on in applyTx.counted): what the
// books expected at the count's snapshot, what was counted, and what the
// difference is worth at the catalog price. A count that changed nothing
// because a newer one had already set the position (a late arrival, or a
// newer count of the same position in the same batch) records none: it
// was not the shelf's last word.
type countsApplier struct{}

func (countsApplier) name() string { return "counts" }

// read returns the origin of a count, which its variances name.
func (countsApplier) read(_ *Store, env *events.Envelope) (any, error) {
	if env.Kind != events.KindCount {
		return nil, nil
	}
	return &env.Origin, nil
}

func (countsApplier) apply(ctx context.Context, t *applyTx, reads []itemRead) error {
	if len(t.counted) == 0 {
		return nil
	}
	origins := make(map[string]*events.Origin, len(reads))
	for _, r := range reads {
		origins[t.p.items[r.item].Env.ID] = r.v.(*events.Origin)
	}
	var skus []string
	for _, c := range t.counted {
		skus = append(skus, c.key.SKU)
	}
	slices.Sort(skus)
	skus = slices.Compact(skus)
	prices, err := t.s.pricesOf(ctx, t, skus)
	if err != nil {
		return err
	}
	rs := newRowset(text("event_id"), integer("line_no"), text("sku"), text("location"), text("store"), text("device"),
		text("method"), integer("snapshot_hlc"), integer("expected"), integer("counted"), integer("variance"),
		integer("unit_price"), text("currency"), integer("value"), integer("at_ms"))
	rs.grow(len(t.counted))
	for _, c := range t.counted {
		o := origins[c.count.Stamp.ID]
		if o == nil {
			// A count not read as one (SetSafetyStock has no items): no
			// origin to name.
			return fmt.Errorf("count %s has no origin in the batch", c.count.Stamp.ID)
		}
		v := c.count.Qty - c.expected
		price := prices[c.key.SKU]
		rs.add(c.count.Stamp.ID, int64(c.count.Line), c.key.SKU, c.key.Location, o.Store, o.Device,
			c.count.Method, c.count.Stamp.HLC.Pack(), c.expected, c.count.Qty, v, price.minor, price.currency, v*price.minor, t.nowMS)
	}
	err = t.s.execRows(ctx, t.tx, rs, "k", func(a *args, k string) string {
		return `INSERT INTO count_variances (event_id, line_no, sku, location, store, device, method, snapshot_hlc,
	expected, counted, variance, unit_price, currency, value, at_ms)
SELECT event_id, line_no, sku, location, store, device, method, snapshot_hlc, expected, counted, variance, unit_price, currency, value, at_ms FROM ` + k
	})
	if err != nil {
		return fmt.Errorf("insert count variances: %w", err)
	}
	return nil
}

// catalogPrice is a catalog price.
type catalogPrice struct {
	minor    int64
	currency string
}

// pricesOf returns the catalog price of each of skus that has one.
func (s *Store) pricesOf(ctx context.Context, t *applyTx, skus []string) (map[string]catalogPrice, error) {
	out := make(map[string]catalogPrice, len(skus))
	rs := newRowset(text("sku"))
	for _, sku := range skus {
		rs.add(sku)
	}
	err := s.queryRows(ctx, t.tx, rs, "k", func(a *args, k string) string {
		return `SELECT v.sku, v.price_minor, v.currency FROM variants v JOIN ` + k + ` ON v.sku = k.sku`
	}, func(rows *sql.Rows) error {
		var sku string
		var p catalogPrice
		if err := rows.Scan(&sku, &p.minor, &p.currency); err != nil {
			return err
		}
		out[sku] = p
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("count prices: %w", err)
	}
	return out, nil
}
