package store

import (
	"context"
	"database/sql"
	"fmt"
	"strings"

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
	// HLC is the review's packed HLC: with EventID, the queue's cursor.
	HLC int64
	// ModeratedBy and ModeratedMS say who decided the status and when
	// (empty and 0 when the policy did).
	ModeratedBy string
	ModeratedMS int64
}

const reviewCols = `product_id, store, device, session, event_id, sku, title, body, nickname, status, reason, rating, hlc, moderated_by, moderated_ms`

func scanReviews(rows *sql.Rows) ([]ReviewRecord, error) {
	defer rows.Close()
	out := []ReviewRecord{}
	for rows.Next() {
		var r ReviewRecord
		var h int64
		if err := rows.Scan(&r.ProductID, &r.Store, &r.Device, &r.Session, &r.EventID, &r.SKU, &r.Title, &r.Text, &r.Nickname,
			&r.Status, &r.Reason, &r.Rating, &h, &r.ModeratedBy, &r.ModeratedMS); err != nil {
			return nil, err
		}
		r.AtMS, r.HLC = hlcMillis(h), h
		out = append(out, r)
	}
	return out, rows.Err()
}

// ModerateReview applies a moderator's decision to the review of event
// eventID (reviews.Moderate says which statuses allow which action) and
// bumps its product's review version, so the stores' summary follows. It
// returns the review as decided. ErrNotFound: no such review (or a
// shopper's earlier review of the same visit replaced it); an error
// wrapping reviews.ErrTransition: the action does not fit its status.
func (s *Store) ModerateReview(ctx context.Context, eventID string, action reviews.Action, moderator, note string) (ReviewRecord, error) {
	var out ReviewRecord
	err := s.retry(ctx, "moderate review", func() error {
		tx, err := s.w.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		defer tx.Rollback()
		rows, err := tx.QueryContext(ctx, "SELECT "+reviewCols+" FROM reviews WHERE event_id = $1"+s.d.forUpdate("reviews"), eventID)
		if err != nil {
			return fmt.Errorf("store: review: %w", err)
		}
		rs, err := scanReviews(rows)
		if err != nil {
			return err
		}
		if len(rs) == 0 {
			return fmt.Errorf("%w: review %s", ErrNotFound, eventID)
		}
		r := rs[0]
		next, err := reviews.Moderate(r.Status, action)
		if err != nil {
			return err
		}
		reason := ""
		if next == reviews.Rejected {
			reason = "moderator: " + strings.TrimSpace(note)
			if strings.TrimSpace(note) == "" {
				reason = "moderator: " + string(action)
			}
		}
		now := s.now().UnixMilli()
		if _, err := tx.ExecContext(ctx, `UPDATE reviews SET status = $1, reason = $2, moderated_by = $3, moderated_ms = $4
WHERE product_id = $5 AND store = $6 AND device = $7 AND session = $8`, next, reason, moderator, now, r.ProductID, r.Store, r.Device, r.Session); err != nil {
			return fmt.Errorf("store: moderate review: %w", err)
		}
		if _, err := tx.ExecContext(ctx, `UPDATE review_stats SET version = version + 1, updated_ms = $1 WHERE product_id = $2`, now, r.ProductID); err != nil {
			return fmt.Errorf("store: review stats: %w", err)
		}
		if err := tx.Commit(); err != nil {
			return err
		}
		r.Status, r.Reason, r.ModeratedBy, r.ModeratedMS = next, reason, moderator, now
		out = r
		return nil
	})
	return out, err
}

// ReviewQuery selects reviews for the moderation queue.
type ReviewQuery struct {
	// Status keeps one status ("" every one).
	Status string
	// BeforeHLC and BeforeEventID are a keyset cursor: only reviews
	// before this (HLC, event id), the last row of the previous page.
	BeforeHLC     int64
	BeforeEventID string
	// Limit bounds the rows: default 50, at most 500.
	Limit int
}

// ReviewQueue lists reviews across products, newest first.
func (s *Store) ReviewQueue(ctx context.Context, q ReviewQuery) ([]ReviewRecord, error) {
	limit := q.Limit
	if limit <= 0 {
		limit = 50
	}
	limit = min(limit, 500)
	var a args
	var where []string
	if q.Status != "" {
		where = append(where, "status = "+a.add(q.Status))
	}
	if q.BeforeHLC > 0 {
		where = append(where, "(hlc, event_id) < ("+a.add(q.BeforeHLC)+", "+a.add(q.BeforeEventID)+")")
	}
	stmt := "SELECT " + reviewCols + " FROM reviews"
	if len(where) > 0 {
		stmt += " WHERE " + strings.Join(where, " AND ")
	}
	stmt += " ORDER BY hlc DESC, event_id DESC LIMIT " + a.add(int64(limit))
	rows, err := s.r.QueryContext(ctx, stmt, a...)
	if err != nil {
		return nil, fmt.Errorf("store: review queue: %w", err)
	}
	return scanReviews(rows)
}

// Reviews lists a product's reviews, newest first, published and rejected
// (for moderators); limit <= 0 means 100.
func (s *Store) Reviews(ctx context.Context, productID string, limit int) ([]ReviewRecord, error) {
	if limit <= 0 || limit > 1000 {
		limit = 100
	}
	rows, err := s.r.QueryContext(ctx, "SELECT "+reviewCols+" FROM reviews WHERE product_id = $1 ORDER BY hlc DESC, event_id DESC LIMIT "+fmt.Sprint(limit), productID)
	if err != nil {
		return nil, fmt.Errorf("store: reviews: %w", err)
	}
	return scanReviews(rows)
}
