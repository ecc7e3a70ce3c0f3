package store

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/omnisync/omnisync/cloud/internal/reviews"
	"github.com/omnisync/omnisync/shared/downsync"
)

// Review statuses, as stored (package reviews decides them).
const (
	ReviewPublished = reviews.Published
	ReviewPending   = reviews.Pending
	ReviewRejected  = reviews.Rejected
)

// ReviewSummaries returns the summary of each product asked for that has
// any review (published or not), in the order asked.
func (s *Store) ReviewSummaries(ctx context.Context, productIDs []string) ([]downsync.ReviewSummary, error) {
	out := make([]downsync.ReviewSummary, 0, len(productIDs))
	for _, id := range productIDs {
		sum, ok, err := s.reviewSummary(ctx, id)
		if err != nil {
			return nil, err
		}
		if ok {
			out = append(out, sum)
		}
	}
	return out, nil
}

func (s *Store) reviewSummary(ctx context.Context, id string) (downsync.ReviewSummary, bool, error) {
	sum := downsync.ReviewSummary{ProductID: id}
	err := s.r.QueryRowContext(ctx, "SELECT version, updated_ms FROM review_stats WHERE product_id = $1", id).Scan(&sum.Version, &sum.UpdatedMS)
	if err == sql.ErrNoRows {
		return sum, false, nil
	}
	if err != nil {
		return sum, false, fmt.Errorf("store: review stats: %w", err)
	}
	rows, err := s.r.QueryContext(ctx, "SELECT rating, count(*) FROM reviews WHERE product_id = $1 AND status = $2 GROUP BY rating", id, ReviewPublished)
	if err != nil {
		return sum, false, fmt.Errorf("store: review counts: %w", err)
	}
	var total int64
	for rows.Next() {
		var rating, n int64
		if err := rows.Scan(&rating, &n); err != nil {
			rows.Close()
			return sum, false, err
		}
		if rating >= 1 && rating <= 5 {
			sum.Distribution[rating-1] = n
			sum.Count += n
			total += rating * n
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return sum, false, err
	}
	if sum.Count > 0 {
		// Rounded to two places: the page shows one, and the document
		// stays the same bytes on every replica.
		sum.Average = float64(total*100/sum.Count) / 100
	}
	rows, err = s.r.QueryContext(ctx, `SELECT rating, title, body, nickname, sku, store, hlc FROM reviews
WHERE product_id = $1 AND status = $2 ORDER BY hlc DESC, event_id DESC LIMIT `+fmt.Sprint(downsync.MaxLatestReviews), id, ReviewPublished)
	if err != nil {
		return sum, false, fmt.Errorf("store: latest reviews: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var r downsync.Review
		var h int64
		if err := rows.Scan(&r.Rating, &r.Title, &r.Text, &r.Nickname, &r.SKU, &r.Store, &h); err != nil {
			return sum, false, err
		}
		r.AtMS = hlcMillis(h)
		sum.Latest = append(sum.Latest, r)
	}
	return sum, true, rows.Err()
}

// ReviewRecord is one stored review with its moderation outcome.
type ReviewRecord struct {
	ProductID, Store, Device, Session, EventID string
	SKU, Title, Text, Nickname, Status, Reason string
	Rating                                     int
	AtMS                                       int64
}

// Reviews lists a product's reviews, newest first, published and rejected
// (for moderators); limit <= 0 means 100.
func (s *Store) Reviews(ctx context.Context, productID string, limit int) ([]ReviewRecord, error) {
	if limit <= 0 || limit > 1000 {
		limit = 100
	}
	rows, err := s.r.QueryContext(ctx, `SELECT product_id, store, device, session, event_id, sku, title, body, nickname, status, reason, rating, hlc
FROM reviews WHERE product_id = $1 ORDER BY hlc DESC, event_id DESC LIMIT `+fmt.Sprint(limit), productID)
	if err != nil {
		return nil, fmt.Errorf("store: reviews: %w", err)
	}
	defer rows.Close()
	out := []ReviewRecord{}
	for rows.Next() {
		var r ReviewRecord
		var h int64
		if err := rows.Scan(&r.ProductID, &r.Store, &r.Device, &r.Session, &r.EventID, &r.SKU, &r.Title, &r.Text, &r.Nickname,
			&r.Status, &r.Reason, &r.Rating, &h); err != nil {
			return nil, err
		}
		r.AtMS = hlcMillis(h)
		out = append(out, r)
	}
	return out, rows.Err()
}
