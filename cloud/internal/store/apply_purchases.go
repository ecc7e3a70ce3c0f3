package store

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/omnisync/omnisync/shared/events"
)

// purchasesApplier attributes sales and returns that name a customer
// ("customer": {"loyalty": "LC-1"}) to their subject identifier: a store
// sale and a web shop order (its location the online warehouse) alike.
// The stock effect is the inventory appliers'; this only records whose
// purchase it was, once per event. An erased customer's purchases lose
// this row and stay in the books, anonymous.
type purchasesApplier struct{}

func (purchasesApplier) name() string { return "purchases" }

func (purchasesApplier) read(_ *Store, env *events.Envelope) (any, error) { return nil, nil }

// purchaseRead is what a purchase keeps of its event.
type purchaseRead struct {
	location, channel, orderID string
	amount, items              int64
	lines                      string
}

// PurchaseLine is one line of a customer's purchase.
type PurchaseLine struct {
	SKU       string `json:"sku"`
	Qty       int64  `json:"qty"`
	UnitPrice *int64 `json:"unit_price,omitempty"`
}

func readPurchase(env *events.Envelope) (*purchaseRead, error) {
	m, err := env.StockMove()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", env.Kind, err)
	}
	p := &purchaseRead{location: m.Location, channel: m.Channel, orderID: m.OrderID}
	lines := make([]PurchaseLine, len(m.Lines))
	for i, l := range m.Lines {
		lines[i] = PurchaseLine{SKU: l.SKU, Qty: l.Qty, UnitPrice: l.UnitPrice}
		p.items += l.Qty
		if l.UnitPrice != nil {
			p.amount += l.Qty * *l.UnitPrice
		}
	}
	b, err := json.Marshal(lines)
	if err != nil {
		return nil, err
	}
	p.lines = string(b)
	return p, nil
}

func (purchasesApplier) apply(ctx context.Context, t *applyTx, _ []itemRead) error {
	rs := newRowset(text("event_id"), text("subject"), text("kind"), text("store"), text("location"), text("channel"), text("order_id"),
		integer("hlc"), integer("amount"), integer("items"), text("lines"))
	var subjects []string
	for _, r := range t.custLive(events.KindSale, events.KindReturn) {
		if r.subject == "" || r.purchase == nil {
			continue
		}
		subjects = append(subjects, r.subject)
		p := r.purchase
		rs.add(r.stamp.ID, r.subject, string(r.kind), r.store, p.location, p.channel, p.orderID, r.stamp.HLC.Pack(), p.amount, p.items, p.lines)
	}
	err := t.s.execRows(ctx, t.tx, rs, "r", func(a *args, r string) string {
		return `INSERT INTO cust_purchases (event_id, subject, kind, store, location, channel, order_id, hlc, amount, items, lines)
SELECT event_id, subject, kind, store, location, channel, order_id, hlc, amount, items, lines FROM ` + r + t.s.d.inOrder() + ` ON CONFLICT (event_id) DO NOTHING`
	})
	if err != nil {
		return fmt.Errorf("purchases: %w", err)
	}
	// The customer analytics' log (purchase_feed.go).
	// A purchase changes its customer's view: the batch names them.
	named, err := t.s.syncPurchaseFeed(ctx, t.tx, subjects, false)
	if err != nil {
		return fmt.Errorf("purchases: %w", err)
	}
	t.cust.customers = append(t.cust.customers, named...)
	return nil
}
