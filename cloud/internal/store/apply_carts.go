package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/omnisync/omnisync/cloud/internal/carts"
	"github.com/omnisync/omnisync/shared/events"
)

// cartsApplier keeps shoppers' carts by the rules of package carts: each
// line last-writer-wins by stamp (the guard is in SQL, as carts.NewerLine),
// the earliest claim owns the cart (carts.EarlierClaim), every checkout
// recorded (the first closed the cart). It also follows the reservations a
// cart holds (reserve events naming a cart_id and an expires_ms), which
// the hub releases when they expire.
//
// As a gate it refuses a checkout from the online channel (the web shop,
// through the hub) of a cart already checked out: the hub answers such a
// checkout 409 and takes no second order. A store's checkout is never
// refused: its sale happened, so it is recorded, and a second one is a
// conflict for HQ (CartConflicts).
type cartsApplier struct{}

func (cartsApplier) name() string { return "carts" }

// cartRead is what the carts applier reads in an event: a cart operation,
// or a cart's hold being reserved or closed.
type cartRead struct {
	op       *carts.Op
	hold     *cartHold
	holdDone string // reservation id of a release or fulfil of a cart hold
	// order is the order id of an online order's reserve: it stands or
	// falls with the order's checkout in the same batch.
	order   string
	channel string
	online  bool
}

type cartHold struct {
	reservation, cart, location string
	expiresMS                   int64
}

// CartHoldPrefix starts the reservation id of a cart's hold:
// CartHoldPrefix + cart id + "-" + n.
const CartHoldPrefix = "cart-"

func (cartsApplier) read(s *Store, env *events.Envelope) (any, error) {
	switch env.Kind {
	case events.KindLineSet, events.KindClaim, events.KindCheckout:
		// One decoding of the body gives the operation and its channel.
		var (
			body    any
			channel string
			err     error
		)
		switch env.Kind {
		case events.KindLineSet:
			var b events.LineSet
			err = json.Unmarshal(env.Data, &b)
			body, channel = b, b.Channel
		case events.KindCheckout:
			var b events.Checkout
			err = json.Unmarshal(env.Data, &b)
			body, channel = b, b.Channel
		default:
			var b struct {
				events.Claim
				Channel string `json:"channel"`
			}
			err = json.Unmarshal(env.Data, &b)
			body, channel = b.Claim, b.Channel
		}
		if err != nil {
			return nil, fmt.Errorf("carts: %s: %w", env.Kind, err)
		}
		op, err := carts.OpFrom(env, body)
		if err != nil {
			return nil, err
		}
		return &cartRead{op: &op, channel: channel, online: s.rules.Online != "" && env.Origin.Store == s.rules.Online}, nil
	case events.KindReserve, events.KindRelease, events.KindFulfil:
		var b struct {
			ReservationID string `json:"reservation_id"`
			Location      string `json:"location"`
			CartID        string `json:"cart_id"`
			ExpiresMS     int64  `json:"expires_ms"`
			OrderID       string `json:"order_id"`
		}
		if err := json.Unmarshal(env.Data, &b); err != nil {
			return nil, nil
		}
		if !strings.HasPrefix(b.ReservationID, CartHoldPrefix) {
			if env.Kind == events.KindReserve && b.OrderID != "" && s.rules.Online != "" && env.Origin.Store == s.rules.Online {
				return &cartRead{order: b.OrderID}, nil
			}
			return nil, nil
		}
		if env.Kind != events.KindReserve {
			return &cartRead{holdDone: b.ReservationID}, nil
		}
		if events.ValidCartID(b.CartID) != nil || b.ExpiresMS <= 0 {
			return nil, nil
		}
		return &cartRead{hold: &cartHold{reservation: b.ReservationID, cart: b.CartID, location: b.Location, expiresMS: b.ExpiresMS}}, nil
	}
	return nil, nil
}

// cartIDs are the carts the reads touch, sorted (the lock order).
func cartIDs(reads []itemRead) []string {
	var ids []string
	for _, r := range reads {
		if cr := r.v.(*cartRead); cr.op != nil {
			ids = append(ids, cr.op.CartID)
		}
	}
	slices.Sort(ids)
	return slices.Compact(ids)
}

func (a cartsApplier) gate(ctx context.Context, t *applyTx) error {
	reads := t.readsOf(a)
	ids := cartIDs(reads)
	if len(ids) == 0 {
		return nil
	}
	rs := newRowset(text("id"))
	known := make([]string, len(ids))
	for i, id := range ids {
		rs.add(id)
		known[i] = knownKey("carts", id)
	}
	// Lock every cart of the batch now, in id order (LOCKS.md), so the
	// decision below holds until commit and the writes later wait for
	// nothing. Carts all known to be there (knownRows) are only locked.
	ensure := t.mustEnsure(known)
	if ensure {
		err := t.s.execRows(ctx, t.tx, rs, "k", func(a *args, k string) string {
			return "INSERT INTO carts (cart_id) SELECT id FROM " + k + ` ORDER BY id COLLATE "C" ON CONFLICT DO NOTHING`
		})
		if err != nil {
			return fmt.Errorf("ensure carts: %w", err)
		}
	}
	closed := map[string]bool{}
	err := t.s.queryRows(ctx, t.tx, rs, "k", func(a *args, k string) string {
		return `SELECT c.cart_id, c.checkouts FROM carts c JOIN ` + k + ` ON c.cart_id = k.id ORDER BY c.cart_id` + t.s.d.forUpdate("c")
	}, func(rows *sql.Rows) error {
		var id string
		var n int64
		if err := rows.Scan(&id, &n); err != nil {
			return err
		}
		closed[id] = n > 0
		return nil
	})
	if err != nil {
		return fmt.Errorf("lock carts: %w", err)
	}
	if t.s.d.rowLocks() && len(closed) < len(ids) {
		return fmt.Errorf("lock carts: %d of %d rows missing: %w", len(ids)-len(closed), len(ids), errUnknownRow)
	}
	// Checkouts in stamp order: the first one of an open cart goes through
	// (a store's always do, and close it too).
	var cos []itemRead
	for _, r := range reads {
		if cr := r.v.(*cartRead); cr.op != nil && cr.op.Kind == events.KindCheckout {
			cos = append(cos, r)
		}
	}
	slices.SortFunc(cos, func(x, y itemRead) int { return x.v.(*cartRead).op.Stamp.Compare(y.v.(*cartRead).op.Stamp) })
	refused := map[int]bool{}
	for _, r := range cos {
		cr := r.v.(*cartRead)
		if cr.online && closed[cr.op.CartID] {
			t.reject(r.item, "cart "+cr.op.CartID+" already checked out")
			refused[r.item] = true
			continue
		}
		closed[cr.op.CartID] = true
	}
	// An online order is its first checkout in the batch (its primary
	// cart's): its reservation is refused with it.
	orderRefused := map[string]bool{}
	for _, r := range reads {
		cr := r.v.(*cartRead)
		if cr.op == nil || cr.op.Kind != events.KindCheckout || !cr.online || cr.op.Checkout.OrderID == "" {
			continue
		}
		if _, seen := orderRefused[cr.op.Checkout.OrderID]; !seen {
			orderRefused[cr.op.Checkout.OrderID] = refused[r.item]
		}
	}
	for _, r := range reads {
		if cr := r.v.(*cartRead); cr.order != "" && orderRefused[cr.order] {
			t.reject(r.item, "order "+cr.order+" refused: its cart was already checked out")
		}
	}
	return nil
}

func (cartsApplier) apply(ctx context.Context, t *applyTx, reads []itemRead) error {
	if len(reads) == 0 {
		return nil
	}
	type cartAgg struct {
		c        carts.Cart // version and checkouts counted from zero
		channel  string
		checkout int64
	}
	agg := map[string]*cartAgg{}
	type lineKey struct{ cart, sku string }
	lines := map[lineKey]carts.Line{}
	var checkouts []carts.Op
	holds := map[string]*cartHold{}
	var done []string
	for _, r := range reads {
		cr := r.v.(*cartRead)
		switch {
		case cr.hold != nil:
			if h := holds[cr.hold.reservation]; h == nil || cr.hold.expiresMS > h.expiresMS {
				holds[cr.hold.reservation] = cr.hold
			}
			continue
		case cr.holdDone != "":
			done = append(done, cr.holdDone)
			continue
		case cr.order != "":
			// The reservations applier holds the stock.
			continue
		}
		op := cr.op
		g := agg[op.CartID]
		if g == nil {
			g = &cartAgg{}
			agg[op.CartID] = g
		}
		if g.channel == "" {
			g.channel = cr.channel
		}
		// The rules fold the batch's operations on an empty cart: what
		// the batch adds (version, checkouts) and its newest edit and
		// earliest claim, which SQL then weighs against the stored row.
		g.c = carts.Apply(g.c, *op)
		if op.Kind == events.KindLineSet {
			for _, l := range op.Lines {
				k := lineKey{op.CartID, l.SKU}
				old, ok := lines[k]
				if carts.NewerLine(old, ok, op.Stamp) {
					nl := carts.Line{SKU: l.SKU, Qty: l.Qty, Price: -1, Stamp: op.Stamp}
					if l.UnitPrice != nil {
						nl.Price = *l.UnitPrice
					}
					lines[k] = nl
				}
			}
		}
		if op.Kind == events.KindCheckout {
			checkouts = append(checkouts, *op)
		}
	}
	ids := make([]string, 0, len(agg))
	for id := range agg {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	cs := newRowset(text("cart_id"), text("customer"), integer("claim_hlc"), text("claim_event"), integer("version"),
		integer("updated_hlc"), text("updated_event"), integer("updated_wall"), integer("checkouts"), text("channel"))
	for _, id := range ids {
		g := agg[id]
		cs.add(id, g.c.Customer, g.c.ClaimStamp.HLC.Pack(), g.c.ClaimStamp.ID, g.c.Version,
			g.c.Updated.HLC.Pack(), g.c.Updated.ID, g.c.Updated.HLC.Wall, int64(len(g.c.Checkouts)), g.channel)
	}
	// The carts, their lines, checkouts and holds are four tables: one
	// statement writes them all (execAll).
	parts := []writePart{{"carts", cs, "r", func(a *args, r string) string {
		now := a.add(t.nowMS)
		earlierClaim := `excluded.customer <> '' AND (carts.customer = '' OR excluded.claim_hlc < carts.claim_hlc OR (excluded.claim_hlc = carts.claim_hlc AND excluded.claim_event < carts.claim_event))`
		newerEdit := `excluded.version > 0 AND (excluded.updated_hlc > carts.updated_hlc OR (excluded.updated_hlc = carts.updated_hlc AND excluded.updated_event > carts.updated_event))`
		return `INSERT INTO carts (cart_id, customer, claim_hlc, claim_event, version, updated_hlc, updated_event, updated_wall, checkouts, channel, created_ms, changed_ms)
SELECT cart_id, customer, claim_hlc, claim_event, version, updated_hlc, updated_event, updated_wall, checkouts, channel, ` + now + `, ` + now + ` FROM ` + r + t.s.d.inOrder() + `
ON CONFLICT (cart_id) DO UPDATE SET
	customer = CASE WHEN ` + earlierClaim + ` THEN excluded.customer ELSE carts.customer END,
	claim_hlc = CASE WHEN ` + earlierClaim + ` THEN excluded.claim_hlc ELSE carts.claim_hlc END,
	claim_event = CASE WHEN ` + earlierClaim + ` THEN excluded.claim_event ELSE carts.claim_event END,
	updated_hlc = CASE WHEN ` + newerEdit + ` THEN excluded.updated_hlc ELSE carts.updated_hlc END,
	updated_event = CASE WHEN ` + newerEdit + ` THEN excluded.updated_event ELSE carts.updated_event END,
	updated_wall = CASE WHEN ` + newerEdit + ` THEN excluded.updated_wall ELSE carts.updated_wall END,
	version = carts.version + excluded.version,
	checkouts = carts.checkouts + excluded.checkouts,
	channel = CASE WHEN carts.channel = '' THEN excluded.channel ELSE carts.channel END,
	created_ms = CASE WHEN carts.created_ms = 0 THEN excluded.created_ms ELSE carts.created_ms END,
	changed_ms = excluded.changed_ms,
	abandoned_ms = CASE WHEN excluded.version > 0 OR excluded.checkouts > 0 THEN 0 ELSE carts.abandoned_ms END`
	}}}
	if len(lines) > 0 {
		keys := make([]lineKey, 0, len(lines))
		for k := range lines {
			keys = append(keys, k)
		}
		slices.SortFunc(keys, func(x, y lineKey) int {
			if c := strings.Compare(x.cart, y.cart); c != 0 {
				return c
			}
			return strings.Compare(x.sku, y.sku)
		})
		ls := newRowset(text("cart_id"), text("sku"), integer("qty"), integer("price"), integer("hlc"), text("event_id"))
		for _, k := range keys {
			l := lines[k]
			ls.add(k.cart, k.sku, l.Qty, l.Price, l.Stamp.HLC.Pack(), l.Stamp.ID)
		}
		// The guard is carts.NewerLine in SQL.
		parts = append(parts, writePart{"cart lines", ls, "l", func(a *args, l string) string {
			return `INSERT INTO cart_lines (cart_id, sku, qty, price, hlc, event_id)
SELECT cart_id, sku, qty, price, hlc, event_id FROM ` + l + t.s.d.inOrder() + `
ON CONFLICT (cart_id, sku) DO UPDATE SET qty = excluded.qty, price = excluded.price, hlc = excluded.hlc, event_id = excluded.event_id
WHERE excluded.hlc > cart_lines.hlc OR (excluded.hlc = cart_lines.hlc AND excluded.event_id > cart_lines.event_id)`
		}})
	}
	if len(checkouts) > 0 {
		co := newRowset(text("cart_id"), integer("hlc"), text("event_id"), integer("version"), text("store"), text("location"), text("sale_id"), text("order_id"))
		for _, op := range checkouts {
			co.add(op.CartID, op.Stamp.HLC.Pack(), op.Stamp.ID, op.Checkout.Version, op.Store, op.Checkout.Location, op.Checkout.SaleID, op.Checkout.OrderID)
		}
		parts = append(parts, writePart{"cart checkouts", co, "c", func(a *args, c string) string {
			return `INSERT INTO cart_checkouts (cart_id, hlc, event_id, version, store, location, sale_id, order_id, recorded_ms)
SELECT cart_id, hlc, event_id, version, store, location, sale_id, order_id, ` + a.add(t.nowMS) + ` FROM ` + c + t.s.d.inOrder() + `
ON CONFLICT DO NOTHING`
		}})
	}
	if len(holds) > 0 {
		hids := make([]string, 0, len(holds))
		for id := range holds {
			hids = append(hids, id)
		}
		slices.Sort(hids)
		hs := newRowset(text("reservation_id"), text("cart_id"), text("location"), integer("expires_ms"))
		for _, id := range hids {
			h := holds[id]
			hs.add(id, h.cart, h.location, h.expiresMS)
		}
		parts = append(parts, writePart{"cart holds", hs, "h", func(a *args, h string) string {
			return `INSERT INTO cart_holds (reservation_id, cart_id, location, expires_ms)
SELECT reservation_id, cart_id, location, expires_ms FROM ` + h + t.s.d.inOrder() + `
ON CONFLICT (reservation_id) DO UPDATE SET expires_ms = ` + t.s.d.greatest("cart_holds.expires_ms", "excluded.expires_ms")
		}})
	}
	if err := t.s.execAll(ctx, t.tx, parts...); err != nil {
		return err
	}
	// Releases after, in a statement of their own: a hold reserved and
	// released in one batch is one row written twice.
	if len(done) > 0 {
		slices.Sort(done)
		done = slices.Compact(done)
		ds := newRowset(text("reservation_id"))
		for _, id := range done {
			ds.add(id)
		}
		err := t.s.execRows(ctx, t.tx, ds, "d", func(a *args, d string) string {
			return `UPDATE cart_holds SET released = 1 WHERE released = 0 AND reservation_id IN (SELECT reservation_id FROM ` + d + `)`
		})
		if err != nil {
			return fmt.Errorf("cart holds: %w", err)
		}
	}
	t.out.carts = ids
	return nil
}
