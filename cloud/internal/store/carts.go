package store

import (
	"context"
	"database/sql"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/omnisync/omnisync/cloud/internal/carts"
	"github.com/omnisync/omnisync/shared/downsync"
	"github.com/omnisync/omnisync/shared/events"
	"github.com/omnisync/omnisync/shared/hlc"
)

// Cart reads cart id as the rules see it; ok is false when the books have
// never heard of it.
func (s *Store) Cart(ctx context.Context, id string) (c carts.Cart, ok bool, err error) {
	cs, err := s.loadCarts(ctx, `c.cart_id = $1`, id)
	if err != nil || len(cs) == 0 {
		return carts.Cart{}, false, err
	}
	return *cs[0], true, nil
}

// CustomerCarts reads the open carts (not checked out) of a customer.
func (s *Store) CustomerCarts(ctx context.Context, customer string) ([]*carts.Cart, error) {
	if customer == "" {
		return nil, nil
	}
	return s.loadCarts(ctx, `c.customer = $1 AND c.checkouts = 0`, customer)
}

// CartsAndCustomers reads, in a few queries whatever their number, the
// carts ids (those the books know) and the open carts of customers and of
// every customer owning one of those carts: what the hub's cart service
// reads once for a whole group of requests. Each query reads carts with
// their lines; checkouts are read only for the carts that have any.
func (s *Store) CartsAndCustomers(ctx context.Context, ids, customers []string) ([]*carts.Cart, error) {
	var out []*carts.Cart
	seen := map[string]bool{}
	add := func(cs []*carts.Cart) {
		for _, c := range cs {
			if !seen[c.ID] {
				seen[c.ID] = true
				out = append(out, c)
			}
		}
	}
	if len(ids) > 0 {
		ids = slices.Compact(slices.Sorted(slices.Values(ids)))
		rs := newRowset(text("id"))
		for _, id := range ids {
			rs.add(id)
		}
		cs, err := s.cartsWithLines(ctx, rs, `c.cart_id = k.id`)
		if err != nil {
			return nil, err
		}
		add(cs)
	}
	owners := map[string]bool{}
	for _, c := range customers {
		if c != "" {
			owners[c] = true
		}
	}
	for _, c := range out {
		if c.Customer != "" {
			owners[c.Customer] = true
		}
	}
	if len(owners) > 0 {
		rs := newRowset(text("id"))
		for _, c := range slices.Sorted(maps.Keys(owners)) {
			rs.add(c)
		}
		cs, err := s.cartsWithLines(ctx, rs, `c.customer = k.id AND c.checkouts = 0`)
		if err != nil {
			return nil, err
		}
		add(cs)
	}
	return out, s.cartCheckouts(ctx, out)
}

// cartsWithLines reads the carts rows joined to rs (alias k) on join,
// with their lines (one row per line, in one query), without their
// checkouts (closedMark until cartCheckouts reads them).
func (s *Store) cartsWithLines(ctx context.Context, rs *rowset, join string) ([]*carts.Cart, error) {
	var out []*carts.Cart
	byID := map[string]*carts.Cart{}
	err := s.queryRows(ctx, s.r, rs, "k", func(a *args, k string) string {
		return `SELECT c.cart_id, c.customer, c.claim_hlc, c.claim_event, c.version, c.updated_hlc, c.updated_event, c.checkouts,
	l.sku, l.qty, l.price, l.hlc, l.event_id
FROM carts c JOIN ` + k + ` ON ` + join + ` LEFT JOIN cart_lines l ON l.cart_id = c.cart_id
WHERE (c.version > 0 OR c.customer <> '' OR c.checkouts > 0)`
	}, func(rows *sql.Rows) error {
		c := &carts.Cart{}
		var claimHLC, updHLC, checkouts int64
		var sku, event sql.NullString
		var qty, price, lineHLC sql.NullInt64
		if err := rows.Scan(&c.ID, &c.Customer, &claimHLC, &c.ClaimStamp.ID, &c.Version, &updHLC, &c.Updated.ID, &checkouts,
			&sku, &qty, &price, &lineHLC, &event); err != nil {
			return err
		}
		if prev := byID[c.ID]; prev != nil {
			c = prev
		} else {
			c.Lines = map[string]carts.Line{}
			c.ClaimStamp.HLC, c.Updated.HLC = hlc.Unpack(claimHLC), hlc.Unpack(updHLC)
			if checkouts > 0 {
				c.Checkouts = closedMark
			}
			byID[c.ID] = c
			out = append(out, c)
		}
		if sku.Valid {
			l := carts.Line{SKU: sku.String, Qty: qty.Int64, Price: price.Int64, Stamp: events.Stamp{HLC: hlc.Unpack(lineHLC.Int64), ID: event.String}}
			if l.Priced = l.Price >= 0; !l.Priced {
				l.Price = 0
			}
			c.Lines[l.SKU] = l
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("store: carts: %w", err)
	}
	return out, nil
}

// closedMark is set on a head's Checkouts until cartCheckouts reads them:
// the cart has checkouts to read.
var closedMark = []carts.Checkout{{}}

func scanCartHead(rows *sql.Rows) (*carts.Cart, error) {
	c := &carts.Cart{Lines: map[string]carts.Line{}}
	var claimHLC, updHLC, checkouts int64
	if err := rows.Scan(&c.ID, &c.Customer, &claimHLC, &c.ClaimStamp.ID, &c.Version, &updHLC, &c.Updated.ID, &checkouts); err != nil {
		return nil, err
	}
	c.ClaimStamp.HLC, c.Updated.HLC = hlc.Unpack(claimHLC), hlc.Unpack(updHLC)
	if checkouts > 0 {
		c.Checkouts = closedMark
	}
	return c, nil
}

// loadCarts reads the carts where holds, with their lines and checkouts.
func (s *Store) loadCarts(ctx context.Context, where string, arg any) ([]*carts.Cart, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT c.cart_id, c.customer, c.claim_hlc, c.claim_event, c.version, c.updated_hlc, c.updated_event, c.checkouts
FROM carts c WHERE `+where+` AND (c.version > 0 OR c.customer <> '' OR c.checkouts > 0) ORDER BY c.cart_id LIMIT 100`, arg)
	if err != nil {
		return nil, fmt.Errorf("store: carts: %w", err)
	}
	var out []*carts.Cart
	for rows.Next() {
		c, err := scanCartHead(rows)
		if err != nil {
			rows.Close()
			return nil, fmt.Errorf("store: carts: %w", err)
		}
		out = append(out, c)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	return out, s.cartDetails(ctx, out)
}

// cartDetails reads the lines of the carts cs, and the checkouts of those
// that have any.
func (s *Store) cartDetails(ctx context.Context, cs []*carts.Cart) error {
	if len(cs) == 0 {
		return nil
	}
	byID := map[string]*carts.Cart{}
	ids := newRowset(text("id"))
	for _, c := range cs {
		byID[c.ID] = c
		ids.add(c.ID)
	}
	err := s.queryRows(ctx, s.r, ids, "k", func(a *args, k string) string {
		return `SELECT l.cart_id, l.sku, l.qty, l.price, l.hlc, l.event_id FROM cart_lines l JOIN ` + k + ` ON l.cart_id = k.id`
	}, func(rows *sql.Rows) error {
		var id string
		var l carts.Line
		var h int64
		if err := rows.Scan(&id, &l.SKU, &l.Qty, &l.Price, &h, &l.Stamp.ID); err != nil {
			return err
		}
		l.Stamp.HLC = hlc.Unpack(h)
		if l.Priced = l.Price >= 0; !l.Priced {
			l.Price = 0
		}
		byID[id].Lines[l.SKU] = l
		return nil
	})
	if err != nil {
		return fmt.Errorf("store: cart lines: %w", err)
	}
	return s.cartCheckouts(ctx, cs)
}

// cartCheckouts reads the checkouts of the carts of cs that have any
// (closedMark): most carts are open, and theirs are not asked for.
func (s *Store) cartCheckouts(ctx context.Context, cs []*carts.Cart) error {
	byID := map[string]*carts.Cart{}
	closed := newRowset(text("id"))
	for _, c := range cs {
		if len(c.Checkouts) > 0 {
			c.Checkouts = nil
			closed.add(c.ID)
			byID[c.ID] = c
		}
	}
	err := s.queryRows(ctx, s.r, closed, "k", func(a *args, k string) string {
		return `SELECT o.cart_id, o.hlc, o.event_id, o.version, o.store, o.location, o.sale_id, o.order_id FROM cart_checkouts o JOIN ` + k + ` ON o.cart_id = k.id ORDER BY o.cart_id, o.hlc, o.event_id`
	}, func(rows *sql.Rows) error {
		var id string
		var co carts.Checkout
		var h int64
		if err := rows.Scan(&id, &h, &co.Stamp.ID, &co.Version, &co.Store, &co.Location, &co.SaleID, &co.OrderID); err != nil {
			return err
		}
		co.Stamp.HLC = hlc.Unpack(h)
		byID[id].Checkouts = append(byID[id].Checkouts, co)
		return nil
	})
	if err != nil {
		return fmt.Errorf("store: cart checkouts: %w", err)
	}
	return nil
}

// CartHold is a reservation a cart holds (reserve on cart), with its
// reservation's state.
type CartHold struct {
	ReservationID string
	CartID        string
	Location      string
	ExpiresAt     time.Time
	// Released: the hub applied a release or fulfil of it.
	Released bool
	// Active: the reservation holds stock now.
	Active bool
	Lines  []events.Line
}

// CartHolds reads the holds of the carts ids, newest reservation last.
func (s *Store) CartHolds(ctx context.Context, ids []string) ([]CartHold, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	rs := newRowset(text("id"))
	for _, id := range ids {
		rs.add(id)
	}
	var out []CartHold
	err := s.queryRows(ctx, s.r, rs, "k", func(a *args, k string) string {
		return `SELECT h.reservation_id, h.cart_id, h.location, h.expires_ms, h.released, COALESCE(r.active, 0), l.sku, l.qty
FROM cart_holds h JOIN ` + k + ` ON h.cart_id = k.id LEFT JOIN reservations r ON r.reservation_id = h.reservation_id
LEFT JOIN reservation_lines l ON l.reservation_id = h.reservation_id
ORDER BY h.cart_id, h.reservation_id, l.sku`
	}, func(rows *sql.Rows) error {
		var h CartHold
		var exp, released, active int64
		var sku sql.NullString
		var qty sql.NullInt64
		if err := rows.Scan(&h.ReservationID, &h.CartID, &h.Location, &exp, &released, &active, &sku, &qty); err != nil {
			return err
		}
		if n := len(out); n == 0 || out[n-1].ReservationID != h.ReservationID {
			h.ExpiresAt, h.Released, h.Active = time.UnixMilli(exp), released != 0, active != 0
			out = append(out, h)
		}
		if sku.Valid {
			last := &out[len(out)-1]
			last.Lines = append(last.Lines, events.Line{SKU: sku.String, Qty: qty.Int64})
		}
		return nil
	})
	return out, err
}

// ExpiredCartHolds lists up to limit holds no release has closed yet whose
// time is up or whose cart was checked out (at a till, say): what the hub
// must release. Several replicas may list the same hold; releasing one
// twice changes nothing.
func (s *Store) ExpiredCartHolds(ctx context.Context, now time.Time, limit int) ([]CartHold, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT reservation_id, cart_id, location, expires_ms FROM cart_holds
WHERE released = 0 AND (expires_ms <= $1 OR cart_id IN (SELECT cart_id FROM carts WHERE checkouts > 0))
ORDER BY expires_ms, reservation_id LIMIT $2`, now.UnixMilli(), limit)
	if err != nil {
		return nil, fmt.Errorf("store: expired cart holds: %w", err)
	}
	defer rows.Close()
	var out []CartHold
	for rows.Next() {
		var h CartHold
		var exp int64
		if err := rows.Scan(&h.ReservationID, &h.CartID, &h.Location, &exp); err != nil {
			return nil, err
		}
		h.ExpiresAt = time.UnixMilli(exp)
		out = append(out, h)
	}
	return out, rows.Err()
}

// AbandonedCart is a cart found abandoned: what the automation's
// conditions read of it (no personal data beyond its owner's master id).
type AbandonedCart struct {
	CartID, Customer string
	LastChange       time.Time
	// Value is the sum of its lines at their cart price, or the catalog's
	// for a line the cart has no price for (minor units of Currency).
	// Currency is the catalog's currency of its SKUs ("" when the catalog
	// does not know them, or names several).
	Value    int64
	Currency string
	// Lines counts its lines (quantity above 0); SKUs are theirs, sorted.
	Lines int
	SKUs  []string
}

// MarkAbandonedCarts finds up to limit open carts of known customers that
// have lines and no edit for idle (by their newest edit's HLC wall time),
// marks them abandoned at now and returns them with their value and
// lines: each once, whichever replica asks (the update is the claim). An
// edit or checkout clears the mark. A claimed cart emptied to no lines is
// not abandoned (carts.Abandoned): it stays unmarked, and counts once
// she puts something in it again and leaves it.
func (s *Store) MarkAbandonedCarts(ctx context.Context, now time.Time, idle time.Duration, limit int) ([]AbandonedCart, error) {
	var out []AbandonedCart
	err := s.retry(ctx, "abandoned carts", func() error {
		out = out[:0]
		rows, err := s.w.QueryContext(ctx, `UPDATE carts SET abandoned_ms = $1 WHERE cart_id IN (
	SELECT c.cart_id FROM carts c WHERE c.checkouts = 0 AND c.customer <> '' AND c.abandoned_ms = 0 AND c.updated_wall > 0 AND c.updated_wall <= $2
		AND EXISTS (SELECT 1 FROM cart_lines l WHERE l.cart_id = c.cart_id AND l.qty > 0)
	ORDER BY c.updated_wall LIMIT $3) AND abandoned_ms = 0
RETURNING cart_id, customer, updated_wall`, now.UnixMilli(), now.Add(-idle).UnixMilli(), limit)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var a AbandonedCart
			var wall int64
			if err := rows.Scan(&a.CartID, &a.Customer, &wall); err != nil {
				return err
			}
			a.LastChange = time.UnixMilli(wall)
			out = append(out, a)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("store: abandoned carts: %w", err)
	}
	if err := s.abandonedContents(ctx, out); err != nil {
		// Marked already: the carts are handed on with what is known.
		return out, fmt.Errorf("store: abandoned carts' lines: %w", err)
	}
	return out, nil
}

// abandonedContents fills the value, currency and lines of carts.
func (s *Store) abandonedContents(ctx context.Context, cs []AbandonedCart) error {
	if len(cs) == 0 {
		return nil
	}
	byID := make(map[string]*AbandonedCart, len(cs))
	rs := newRowset(text("id"))
	for i := range cs {
		byID[cs[i].CartID] = &cs[i]
		rs.add(cs[i].CartID)
	}
	currencies := map[string]map[string]bool{}
	err := s.queryRows(ctx, s.r, rs, "k", func(a *args, k string) string {
		return `SELECT l.cart_id, l.sku, l.qty, l.price, COALESCE(v.price_minor, -1), COALESCE(v.currency, '')
FROM cart_lines l JOIN ` + k + ` ON l.cart_id = k.id LEFT JOIN variants v ON v.sku = l.sku WHERE l.qty > 0`
	}, func(rows *sql.Rows) error {
		var id, sku, currency string
		var qty, price, catalog int64
		if err := rows.Scan(&id, &sku, &qty, &price, &catalog, &currency); err != nil {
			return err
		}
		c := byID[id]
		c.Lines++
		c.SKUs = append(c.SKUs, sku)
		if price < 0 {
			price = catalog
		}
		if price > 0 {
			c.Value += price * qty
		}
		if currencies[id] == nil {
			currencies[id] = map[string]bool{}
		}
		currencies[id][currency] = true
		return nil
	})
	if err != nil {
		return err
	}
	for i := range cs {
		c := &cs[i]
		slices.Sort(c.SKUs)
		if cur := currencies[c.CartID]; len(cur) == 1 {
			for k := range cur {
				c.Currency = k
			}
		}
	}
	return nil
}

// CartConflicts lists up to limit carts checked out more than once, each
// with every checkout (the first one closed the cart).
func (s *Store) CartConflicts(ctx context.Context, limit int) ([]*carts.Cart, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT cart_id FROM carts WHERE checkouts > 1 ORDER BY cart_id LIMIT $1`, limit)
	if err != nil {
		return nil, fmt.Errorf("store: cart conflicts: %w", err)
	}
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return nil, err
		}
		ids = append(ids, id)
	}
	rows.Close()
	var out []*carts.Cart
	for _, id := range ids {
		c, ok, err := s.Cart(ctx, id)
		if err != nil {
			return nil, err
		}
		if ok {
			out = append(out, &c)
		}
	}
	return out, nil
}

// ClosedCart is a checked-out cart as the stores are told of it: its id
// (the publisher keys it by digest) and its down-sync document, without
// ExpiresMS (the publisher's retention sets it).
type ClosedCart struct {
	ID  string
	Doc downsync.ClosedCartDoc
}

// ClosedCartDocs returns the carts of ids that are checked out, each with
// the checkout that closed it (the earliest by stamp), in id order; open
// and unknown carts are left out. The document's version is the number of
// checkouts recorded, so a late checkout with an earlier stamp (which
// changes the closing one) republishes it.
func (s *Store) ClosedCartDocs(ctx context.Context, ids []string) ([]ClosedCart, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	rs := newRowset(text("id"))
	for _, id := range slices.Compact(slices.Sorted(slices.Values(ids))) {
		rs.add(id)
	}
	var out []ClosedCart
	err := s.queryRows(ctx, s.r, rs, "k", func(a *args, k string) string {
		return `SELECT c.cart_id, c.checkouts, o.hlc, o.version, o.store FROM carts c JOIN ` + k + ` ON c.cart_id = k.id
JOIN cart_checkouts o ON o.cart_id = c.cart_id WHERE c.checkouts > 0 ORDER BY c.cart_id, o.hlc, o.event_id`
	}, func(rows *sql.Rows) error {
		var cc ClosedCart
		var h int64
		if err := rows.Scan(&cc.ID, &cc.Doc.Version, &h, &cc.Doc.CartVersion, &cc.Doc.Where); err != nil {
			return err
		}
		// A cart's rows come in stamp order, together (a large rowset is
		// read chunk by chunk, and a cart is in one chunk): the first is
		// the closing checkout, the others are conflicts.
		if n := len(out); n > 0 && out[n-1].ID == cc.ID {
			return nil
		}
		cc.Doc.Cart, cc.Doc.State = downsync.CartDigest(cc.ID), downsync.ClosedCheckedOut
		cc.Doc.ClosedMS = max(hlc.Unpack(h).Wall, 1)
		cc.Doc.Online = s.rules.Online != "" && cc.Doc.Where == s.rules.Online
		out = append(out, cc)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("store: closed carts: %w", err)
	}
	return out, nil
}

// ClosedCartsSince lists the carts a checkout was recorded for at or
// after sinceMS (hub time): what the down-sync compares with the bucket
// at start-up and now and then, for closures whose publishing a replica's
// crash lost. A range of cart_checkouts_by_recorded, read in one pass.
func (s *Store) ClosedCartsSince(ctx context.Context, sinceMS int64) ([]string, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT DISTINCT cart_id FROM cart_checkouts WHERE recorded_ms >= $1`, sinceMS)
	if err != nil {
		return nil, fmt.Errorf("store: closed carts since: %w", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		out = append(out, id)
	}
	return out, rows.Err()
}
