package hub

import (
	"context"
	"log/slog"
	"time"

	"github.com/omnisync/omnisync/cloud/internal/automation/runner"
	"github.com/omnisync/omnisync/cloud/internal/insights"
	"github.com/omnisync/omnisync/cloud/internal/store"
)

// The customer analytics of this replica (package insights) follow the
// customer books' purchase feed (store.PurchasesAfter); the hub tells
// them when a batch changed customers, so a sale shows up at once rather
// than at the next poll. Their post-purchase and at-risk triggers go to
// the automation runner, whose segment conditions ask them back.

// storeFeed is the store's purchase feed as insights reads it.
type storeFeed struct{ st *store.Store }

func (f storeFeed) PurchasesAfter(ctx context.Context, cursor int64, limit int) ([]insights.Purchase, error) {
	es, err := f.st.PurchasesAfter(ctx, cursor, limit)
	if err != nil {
		return nil, err
	}
	out := make([]insights.Purchase, len(es))
	for i, e := range es {
		out[i] = insights.Purchase{
			Cursor: e.Pos, EventID: e.EventID, Customer: e.Customer, At: e.At, Amount: e.Amount,
			Store: e.Store, Channel: e.Channel,
			Refund: e.Op == store.FeedReturn || e.Op == store.FeedMovedReturn,
			Moved:  e.Op == store.FeedMovedSale || e.Op == store.FeedMovedReturn,
			Reset:  e.Op == store.FeedReset,
		}
	}
	return out, nil
}

// hubFacts answers the automation's conditions: segments from the
// analytics (set once they are built: the two need each other), profile
// attributes from the customer books.
type hubFacts struct {
	st  *store.Store
	ins *insights.Service
	log *slog.Logger
}

func (f *hubFacts) Segment(customer string) string {
	if f.ins == nil {
		return ""
	}
	return f.ins.Segment(customer)
}

func (f *hubFacts) Profile(customer, attribute string) (string, bool) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	v, err := f.st.Customer(ctx, customer, nil)
	if err != nil {
		f.log.Debug("automation: profile fact", "err", err)
		return "", false
	}
	val, ok := v.Profile[attribute]
	return val, ok
}

// newInsights builds the analytics on st's purchase feed, their triggers
// going to auto, and makes them facts' segments.
func newInsights(st *store.Store, auto *runner.Runner, facts *hubFacts, log *slog.Logger) (*insights.Service, error) {
	ins, err := insights.New(insights.Config{Feed: storeFeed{st}, Triggers: auto.Handle, Logger: log})
	if err != nil {
		return nil, err
	}
	facts.ins = ins
	return ins, nil
}
