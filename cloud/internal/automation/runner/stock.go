package runner

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/omnisync/omnisync/cloud/internal/automation"
	"github.com/omnisync/omnisync/cloud/internal/store"
)

// Interest answers who showed interest in an item: *store.Store, whose
// record of it is what names a known shopper (her carts, and what the web
// shop saw her view or ask to be told about; fitting-room visits and
// kiosk scans are anonymous).
type Interest interface {
	// InterestedIn returns the master ids of the customers who showed
	// interest in sku since the given time.
	InterestedIn(ctx context.Context, sku string, since time.Time) ([]string, error)
}

// StockReader reads SKUs' positions: *store.Store.
type StockReader interface {
	// StockForSKUs returns every position of the SKUs, ordered by SKU
	// and location.
	StockForSKUs(ctx context.Context, skus []string) ([]store.Stock, error)
}

var (
	_ StockReader = (*store.Store)(nil)
	_ Interest    = (*store.Store)(nil)
)

// interestWindow is how far back an interest counts: as long as the
// store keeps the web shop's.
const interestWindow = store.InterestWindow

// StockChanged tells the runner which SKUs' stock changed (the hub calls
// it after a batch commits). It never blocks: when the queue is full the
// SKUs are dropped, and a later change of theirs is seen again. A no-op
// without Interest. The watch reads positions when it gets to them, so a
// position sold out and refilled before it was read is not seen coming
// back.
func (r *Runner) StockChanged(skus ...string) {
	if r.cfg.Interest == nil || r.cfg.Stock == nil {
		return
	}
	for _, sku := range skus {
		select {
		case r.stock <- sku:
		default:
			return
		}
	}
}

// watchStock reads the changed SKUs' positions and, for each position back
// in stock, makes a back_in_stock event per interested customer. Its id is
// the position and the stamp of the event that refilled it, the same on
// every replica that sees it. The SKUs queued meanwhile are read with one
// query (a store's catch-up changes thousands per batch).
func (r *Runner) watchStock(ctx context.Context) {
	w := automation.NewStockWatch()
	for {
		var sku string
		select {
		case <-ctx.Done():
			return
		case sku = <-r.stock:
		}
		skus := []string{sku}
	more:
		for len(skus) < stockReadMax {
			select {
			case sku = <-r.stock:
				skus = append(skus, sku)
			default:
				break more
			}
		}
		slices.Sort(skus)
		skus = slices.Compact(skus)
		if err := r.checkStock(ctx, w, skus); err != nil && ctx.Err() == nil {
			r.cfg.Logger.Warn("automation: back in stock", "skus", len(skus), "err", err)
		}
		r.stockChecked.Add(int64(len(skus)))
	}
}

// stockReadMax bounds the SKUs watchStock reads at once.
const stockReadMax = 1000

func (r *Runner) checkStock(ctx context.Context, w *automation.StockWatch, skus []string) error {
	pos, err := r.cfg.Stock.StockForSKUs(ctx, skus)
	if err != nil {
		return err
	}
	// One SKU that fails (its interest unreadable, say) does not keep
	// the others from being acted on.
	var errs []error
	for len(pos) > 0 {
		n := 1
		for n < len(pos) && pos[n].SKU == pos[0].SKU {
			n++
		}
		if err := r.checkSKU(ctx, w, pos[0].SKU, pos[:n]); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", pos[0].SKU, err))
		}
		pos = pos[n:]
	}
	return errors.Join(errs...)
}

// checkSKU observes one SKU's positions and acts on those back in stock.
func (r *Runner) checkSKU(ctx context.Context, w *automation.StockWatch, sku string, pos []store.Stock) error {
	var back []store.Stock
	for _, p := range pos {
		if w.Observe(p.SKU, p.Location, p.Available) {
			back = append(back, p)
		}
	}
	if len(back) == 0 {
		return nil
	}
	customers, err := r.cfg.Interest.InterestedIn(ctx, sku, r.cfg.Now().Add(-interestWindow))
	if err != nil {
		return err
	}
	slices.Sort(customers)
	customers = slices.Compact(customers)
	var evs []automation.Event
	for _, p := range back {
		for _, c := range customers {
			evs = append(evs, automation.Event{
				ID:      fmt.Sprintf("stock:%s:%s:%d:%s", p.SKU, p.Location, p.AsOf.UnixMilli(), c),
				Trigger: automation.BackInStock, At: r.cfg.Now(), Customer: c, Store: p.Location, SKU: p.SKU,
				Attrs: map[string]string{"available": fmt.Sprint(p.Available)},
			})
		}
	}
	_, err = r.Handle(ctx, evs...)
	return err
}
