package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"unicode"

	"github.com/omnisync/omnisync/shared/downsync"
	"github.com/omnisync/omnisync/shared/events"
)

// Review statuses.
const (
	ReviewPublished = "published"
	ReviewRejected  = "rejected"
)

// DefaultBlockedWords is the moderation list a hub starts with; HQ replaces
// it with its own (omni-hub --review-blocked-words). Matching is by whole
// word, ignoring case.
var DefaultBlockedWords = []string{"fuck", "fucking", "shit", "cunt", "bitch", "bastard", "asshole", "nigger", "faggot", "retard", "viagra", "casino"}

type reviewPolicy struct {
	mu      sync.RWMutex
	blocked map[string]bool
}

// SetBlockedWords replaces the words that keep a review from being
// published. Reviews already applied keep their status.
func (s *Store) SetBlockedWords(words []string) {
	m := make(map[string]bool, len(words))
	for _, w := range words {
		if w = strings.ToLower(strings.TrimSpace(w)); w != "" {
			m[w] = true
		}
	}
	s.reviews.mu.Lock()
	s.reviews.blocked = m
	s.reviews.mu.Unlock()
}

// moderate returns why a review may not be published, or "".
func (s *Store) moderate(r events.Review) string {
	s.reviews.mu.RLock()
	defer s.reviews.mu.RUnlock()
	for _, f := range []string{r.Title, r.Text, r.Nickname} {
		for _, w := range strings.FieldsFunc(strings.ToLower(f), func(c rune) bool { return !unicode.IsLetter(c) && !unicode.IsDigit(c) }) {
			if s.reviews.blocked[w] {
				return fmt.Sprintf("blocked word %q", w)
			}
		}
	}
	return ""
}

type reviewKey struct{ product, store, device, session string }

// applyReviews stores the batch's review events: one per (product, store,
// device, session), the earliest by HLC (then event id) winning whatever
// order they arrive in, and bumps the version of each product touched. It
// returns those products, sorted.
func (s *Store) applyReviews(ctx context.Context, tx *sql.Tx, p *plan, apply []int, nowMS int64) ([]string, error) {
	type row struct {
		events.Review
		eventID, status, reason string
		hlc                     int64
	}
	best := map[reviewKey]row{}
	for _, i := range apply {
		e := &p.items[i].Env
		if e.Kind != events.KindReview {
			continue
		}
		var r events.Review
		if err := json.Unmarshal(e.Data, &r); err != nil {
			continue // validated by the caller; unreachable
		}
		k := reviewKey{r.ProductID, e.Origin.Store, e.Origin.Device, r.Session}
		nr := row{Review: r, eventID: e.ID, hlc: e.HLC.Pack(), status: ReviewPublished}
		if why := s.moderate(r); why != "" {
			nr.status, nr.reason = ReviewRejected, why
		}
		if old, ok := best[k]; ok && (old.hlc < nr.hlc || old.hlc == nr.hlc && old.eventID < nr.eventID) {
			continue
		}
		best[k] = nr
	}
	if len(best) == 0 {
		return nil, nil
	}
	keys := make([]reviewKey, 0, len(best))
	for k := range best {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b reviewKey) int {
		return strings.Compare(a.product+"\x00"+a.store+"\x00"+a.device+"\x00"+a.session, b.product+"\x00"+b.store+"\x00"+b.device+"\x00"+b.session)
	})
	rs := newRowset(text("product_id"), text("store"), text("device"), text("session"), text("event_id"), integer("hlc"),
		text("sku"), integer("rating"), text("title"), text("body"), text("nickname"), text("status"), text("reason"))
	var products []string
	for _, k := range keys {
		r := best[k]
		rs.add(k.product, k.store, k.device, k.session, r.eventID, r.hlc, r.SKU, int64(r.Rating), r.Title, r.Text, r.Nickname, r.status, r.reason)
		if len(products) == 0 || products[len(products)-1] != k.product {
			products = append(products, k.product)
		}
	}
	err := s.execRows(ctx, tx, rs, "r", func(a *args, r string) string {
		return `INSERT INTO reviews (product_id, store, device, session, event_id, hlc, sku, rating, title, body, nickname, status, reason)
SELECT product_id, store, device, session, event_id, hlc, sku, rating, title, body, nickname, status, reason FROM ` + r + ` WHERE true
ON CONFLICT (product_id, store, device, session) DO UPDATE SET event_id = excluded.event_id, hlc = excluded.hlc, sku = excluded.sku,
	rating = excluded.rating, title = excluded.title, body = excluded.body, nickname = excluded.nickname, status = excluded.status, reason = excluded.reason
WHERE excluded.hlc < reviews.hlc OR (excluded.hlc = reviews.hlc AND excluded.event_id < reviews.event_id)`
	})
	if err != nil {
		return nil, fmt.Errorf("store: reviews: %w", err)
	}
	ps := newRowset(text("product_id"))
	for _, id := range products {
		ps.add(id)
	}
	err = s.execRows(ctx, tx, ps, "p", func(a *args, p string) string {
		return `INSERT INTO review_stats (product_id, version, updated_ms) SELECT product_id, 1, ` + a.add(nowMS) + ` FROM ` + p + ` WHERE true
ON CONFLICT (product_id) DO UPDATE SET version = review_stats.version + 1, updated_ms = excluded.updated_ms`
	})
	if err != nil {
		return nil, fmt.Errorf("store: review stats: %w", err)
	}
	return products, nil
}

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
