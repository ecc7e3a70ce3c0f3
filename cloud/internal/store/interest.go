package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/omnisync/omnisync/shared/events"
)

// Shoppers' interest in items: what the automation's back_in_stock
// trigger means by a customer who looked at an item. Two records name a
// known shopper's interest: a cart holding the item, and what the web
// shop reports of a signed-in shopper (AddInterest: an item page viewed,
// a "notify me" asked). Fitting-room visits and kiosk scans name no one,
// by design, and stay out of it.
//
// An interest is kept per subject identifier, SKU and kind with the time
// it was last seen, attributed to the anchor of the master id the shop
// named, as consent given through the API is (AddConsent): a merge shows
// it on the surviving customer, an unmerge leaves it with its side, an
// erasure deletes it with the rest of her data (eraseTx). Rows older than
// InterestWindow are deleted as new ones are written.

// Interest kinds the web shop reports.
const (
	// InterestViewed: the shopper looked at the item's page.
	InterestViewed = "viewed"
	// InterestNotifyMe: the shopper asked to hear when the item is back.
	InterestNotifyMe = "notify_me"
)

// InterestWindow is how long an interest counts (the back-in-stock
// trigger looks no further back) and is kept.
const InterestWindow = 30 * 24 * time.Hour

// ErrUnknownSKU is returned (wrapping ErrInvalid) for an interest in a SKU
// the catalog does not hold: the web shop sells the catalog, so such a
// SKU is a mistake, and an interest in it could never be acted on by
// name.
var ErrUnknownSKU = fmt.Errorf("%w: sku not in the catalog", ErrInvalid)

// interestExpireBatch bounds the expired rows one write deletes: writes
// outnumber the rows that expire (a refreshed row does not expire), so a
// few per write keep up without making any write slow.
const interestExpireBatch = 100

// ValidInterestKind reports whether kind is one AddInterest takes.
func ValidInterestKind(kind string) bool {
	return kind == InterestViewed || kind == InterestNotifyMe
}

// AddInterest records that the customer master id id (an older id of a
// merged customer redirects) showed interest of kind in sku now.
// ErrNotFound for an unknown or erased customer (nothing is stored);
// ErrUnknownSKU for a SKU the catalog lacks; ErrInvalid for a malformed
// SKU or kind. Seen again, the interest's time moves forward.
func (s *Store) AddInterest(ctx context.Context, id, sku, kind string) error {
	if !ValidInterestKind(kind) {
		return fmt.Errorf("%w: interest kind %q (viewed or notify_me)", ErrInvalid, kind)
	}
	if err := events.ValidSKU(sku); err != nil {
		return fmt.Errorf("%w: sku: %v", ErrInvalid, err)
	}
	var one int
	err := s.r.QueryRowContext(ctx, "SELECT 1 FROM variants WHERE sku = $1", sku).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return ErrUnknownSKU
	}
	if err != nil {
		return fmt.Errorf("store: interest: catalog: %w", err)
	}
	now := s.now()
	err = s.retry(ctx, "interest", func() error {
		tx, err := s.w.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		defer tx.Rollback()
		// The anchor's identifier row, share-locked on PostgreSQL: an
		// erasure deletes it before it deletes her interests, so it
		// either waits for this row and deletes it too, or has deleted
		// the identifier already and nothing is written (LOCKS.md).
		lock := ""
		if s.d.pg() {
			lock = " FOR SHARE OF i"
		}
		var anchor string
		err = tx.QueryRowContext(ctx, `SELECT m.anchor FROM cust_masters m JOIN cust_identifiers i ON `+s.d.identKey("i.digest")+` = `+s.d.identKey("m.anchor")+
			` WHERE m.id = $1 AND i.customer <> ''`+lock, id).Scan(&anchor)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("%w: customer %s", ErrNotFound, id)
		}
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO cust_interests (subject, sku, kind, seen_ms) VALUES ($1, $2, $3, $4)
ON CONFLICT (subject, sku, kind) DO UPDATE SET seen_ms = excluded.seen_ms WHERE excluded.seen_ms > cust_interests.seen_ms`,
			anchor, sku, kind, now.UnixMilli()); err != nil {
			return err
		}
		return tx.Commit()
	})
	if err != nil {
		return fmt.Errorf("store: interest: %w", err)
	}
	// In a statement of its own, holding nothing else: rows another
	// writer is deleting are skipped, not waited for. At most once a
	// minute, so views do not each cost a second write (the hub's
	// retention pass deletes the rest).
	if last, ms := s.interestsExpired.Load(), now.UnixMilli(); (ms-last >= time.Minute.Milliseconds() || ms < last) && s.interestsExpired.CompareAndSwap(last, ms) {
		if _, err := s.ExpireInterests(ctx, now, interestExpireBatch); err != nil && ctx.Err() == nil {
			s.log.Warn("store: expiring interests failed; the next write tries again", "err", err)
		}
	}
	return nil
}

// ExpireAllInterests deletes every interest past its window, a batch at
// a time (the hub's retention pass).
func (s *Store) ExpireAllInterests(ctx context.Context) error {
	for {
		n, err := s.ExpireInterests(ctx, s.now(), 1000)
		if err != nil || n < 1000 {
			return err
		}
	}
}

// ExpireInterests deletes up to limit interests last seen more than
// InterestWindow before now, oldest first, and returns how many it
// deleted.
func (s *Store) ExpireInterests(ctx context.Context, now time.Time, limit int) (int64, error) {
	// The oldest rows by the index of times, then each by its key:
	// PostgreSQL by the row's address (a join on the key was planned as a
	// scan of the whole table), rows it locked and so cannot move.
	q := `DELETE FROM cust_interests WHERE (subject, sku, kind) IN (
	SELECT subject, sku, kind FROM cust_interests WHERE seen_ms < $1 ORDER BY seen_ms LIMIT $2)`
	if s.d.pg() {
		q = `DELETE FROM cust_interests WHERE ctid = ANY(ARRAY(
	SELECT ctid FROM cust_interests WHERE seen_ms < $1 ORDER BY seen_ms LIMIT $2 FOR UPDATE SKIP LOCKED))`
	}
	res, err := s.w.ExecContext(ctx, q, now.Add(-InterestWindow).UnixMilli(), int64(limit))
	if err != nil {
		return 0, fmt.Errorf("store: expire interests: %w", err)
	}
	return res.RowsAffected()
}

// InterestedIn returns the customers interested in sku since since, once
// each, in order (at most 10,000): those who put it in a cart changed
// since then and still hold it there (master ids as their carts name
// them), and those the web shop saw look at it or ask to be told
// (AddInterest; the customer their interest's identifier belongs to now,
// so a merged customer is reached by the surviving id and an erased one
// not at all). Both parts are probes by SKU.
func (s *Store) InterestedIn(ctx context.Context, sku string, since time.Time) ([]string, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT c.customer FROM cart_lines l JOIN carts c ON c.cart_id = l.cart_id
WHERE l.sku = $1 AND l.qty > 0 AND c.customer <> '' AND c.updated_wall >= $2
UNION
SELECT i.customer FROM cust_interests n JOIN cust_identifiers i ON `+s.d.identKey("i.digest")+` = `+s.d.identKey("n.subject")+`
WHERE n.sku = $1 AND n.seen_ms >= $2 AND i.customer <> ''
ORDER BY 1 LIMIT 10000`, sku, since.UnixMilli())
	if err != nil {
		return nil, fmt.Errorf("store: interested in %s: %w", sku, err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var c string
		if err := rows.Scan(&c); err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

// Interest is one interest of a customer, as her 360 shows it.
type Interest struct {
	SKU  string    `json:"sku"`
	Kind string    `json:"kind"`
	Seen time.Time `json:"seen_at"`
}

// interestsOf returns the interests attributed to subjects seen since
// since, newest first (one per SKU and kind: two identifiers of a merged
// customer may hold the same one).
func (s *Store) interestsOf(ctx context.Context, q dbq, subjects []string, since time.Time) ([]Interest, error) {
	rs := newRowset(text("subject"))
	for _, d := range sortedUnique(subjects) {
		rs.add(d)
	}
	newest := map[[2]string]int64{}
	err := s.queryRows(ctx, q, rs, "r", func(a *args, r string) string {
		return `SELECT n.sku, n.kind, n.seen_ms FROM ` + s.probe(r, "cust_interests", "n", "subject", "r.subject") +
			` WHERE n.seen_ms >= ` + a.add(since.UnixMilli())
	}, func(rows *sql.Rows) error {
		var (
			k  [2]string
			ms int64
		)
		if err := rows.Scan(&k[0], &k[1], &ms); err != nil {
			return err
		}
		newest[k] = max(newest[k], ms)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("interests: %w", err)
	}
	out := make([]Interest, 0, len(newest))
	for k, ms := range newest {
		out = append(out, Interest{SKU: k[0], Kind: k[1], Seen: time.UnixMilli(ms).UTC()})
	}
	slices.SortFunc(out, func(a, b Interest) int {
		if c := b.Seen.Compare(a.Seen); c != 0 {
			return c
		}
		if c := strings.Compare(a.SKU, b.SKU); c != 0 {
			return c
		}
		return strings.Compare(a.Kind, b.Kind)
	})
	return out, nil
}
