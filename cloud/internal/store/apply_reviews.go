package store

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"

	"github.com/omnisync/omnisync/cloud/internal/reviews"
	"github.com/omnisync/omnisync/shared/events"
)

// reviewsApplier keeps shoppers' reviews by the rules of package reviews:
// one per (product, store, device, session), the earliest winning whatever
// the arrival order, screened by the hub's stored moderation policy. It
// bumps the version of each product whose reviews changed (its down-sync
// summary).
type reviewsApplier struct{}

func (reviewsApplier) name() string { return "reviews" }

// reviewRead is a review event as the rules see it.
type reviewRead struct {
	key    reviews.Key
	stamp  reviews.Stamp
	review events.Review
}

func (reviewsApplier) read(_ *Store, env *events.Envelope) (any, error) {
	if env.Kind != events.KindReview {
		return nil, nil
	}
	var r events.Review
	if err := json.Unmarshal(env.Data, &r); err != nil {
		return nil, fmt.Errorf("review: %w", err)
	}
	if r.ProductID == "" || r.Session == "" {
		return nil, fmt.Errorf("review: product_id and session are required")
	}
	return &reviewRead{key: reviews.KeyOf(env, r), stamp: reviews.Stamp{HLC: env.HLC.Pack(), EventID: env.ID}, review: r}, nil
}

func (reviewsApplier) apply(ctx context.Context, t *applyTx, reads []itemRead) error {
	if len(reads) == 0 {
		return nil
	}
	best := map[reviews.Key]*reviewRead{}
	for _, r := range reads {
		rr := r.v.(*reviewRead)
		if old, ok := best[rr.key]; !ok || rr.stamp.Before(old.stamp) {
			best[rr.key] = rr
		}
	}
	screen, err := t.s.reviewScreener(ctx, t.tx)
	if err != nil {
		return err
	}
	keys := make([]reviews.Key, 0, len(best))
	for k := range best {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, reviews.Key.Compare)
	rs := newRowset(text("product_id"), text("store"), text("device"), text("session"), text("event_id"), integer("hlc"),
		text("sku"), integer("rating"), text("title"), text("body"), text("nickname"), text("status"), text("reason"))
	var products []string
	for _, k := range keys {
		r := best[k]
		status, reason := screen.Screen(r.review)
		rs.add(k.Product, k.Store, k.Device, k.Session, r.stamp.EventID, r.stamp.HLC, r.review.SKU, int64(r.review.Rating),
			r.review.Title, r.review.Text, r.review.Nickname, status, reason)
		if len(products) == 0 || products[len(products)-1] != k.Product {
			products = append(products, k.Product)
		}
	}
	// The guard is reviews.Stamp.Before in SQL.
	err = t.s.execRows(ctx, t.tx, rs, "r", func(a *args, r string) string {
		return `INSERT INTO reviews (product_id, store, device, session, event_id, hlc, sku, rating, title, body, nickname, status, reason)
SELECT product_id, store, device, session, event_id, hlc, sku, rating, title, body, nickname, status, reason FROM ` + r + t.s.d.inOrder() + `
ON CONFLICT (product_id, store, device, session) DO UPDATE SET event_id = excluded.event_id, hlc = excluded.hlc, sku = excluded.sku,
	rating = excluded.rating, title = excluded.title, body = excluded.body, nickname = excluded.nickname, status = excluded.status, reason = excluded.reason,
	moderated_by = '', moderated_ms = 0
WHERE excluded.hlc < reviews.hlc OR (excluded.hlc = reviews.hlc AND excluded.event_id < reviews.event_id)`
	})
	if err != nil {
		return fmt.Errorf("reviews: %w", err)
	}
	ps := newRowset(text("product_id"))
	for _, id := range products {
		ps.add(id)
	}
	err = t.s.execRows(ctx, t.tx, ps, "p", func(a *args, p string) string {
		return `INSERT INTO review_stats (product_id, version, updated_ms) SELECT product_id, 1, ` + a.add(t.nowMS) + ` FROM ` + p + t.s.d.inOrder() + `
ON CONFLICT (product_id) DO UPDATE SET version = review_stats.version + 1, updated_ms = excluded.updated_ms`
	})
	if err != nil {
		return fmt.Errorf("review stats: %w", err)
	}
	t.out.reviewedProducts = products
	return nil
}
