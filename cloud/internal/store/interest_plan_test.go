package store

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/omnisync/omnisync/cloud/internal/catalog"
	"github.com/omnisync/omnisync/shared/events"
)

// TestInterestStatementPlans checks on PostgreSQL the statements of
// shoppers' interests (the web shop's write, the expiry it runs, the
// back-in-stock trigger's read of carts and interests) against 20,000
// interests, cart lines and identifiers: none may read a whole table of
// 10,000 rows or more under the generic plan, analyzed or before
// statistics (plan_guard_test.go). The trigger reads once per SKU back in
// stock, thousands of times in a store's catch-up.
func TestInterestStatementPlans(t *testing.T) {
	s := withKeys(openPostgres(t))
	ctx := context.Background()
	importOK(t, s, []catalog.Variant{variant("A", "P1", 1)})
	pos := newDevice("S1", "pos-1", 1)
	apply(t, s, pos.ev(1000, events.KindIdentify, identify(map[string]string{"loyalty": "LC-1"})))
	ann := find(t, s, "loyalty:LC-1")
	now := time.Now().UnixMilli()
	// 20,000 of each, over 2,000 SKUs: shoppers' identifiers, their
	// interests (half of them expired), carts and cart lines.
	for _, q := range []string{
		`INSERT INTO cust_identifiers (digest, type, value_enc, customer, cluster)
SELECT 'v1:' || md5(i::text) || md5((i + 1)::text), 'email', '\x00'::bytea, 'c-' || i, 'k-' || i FROM generate_series(1, 20000) i`,
		`INSERT INTO cust_interests (subject, sku, kind, seen_ms)
SELECT 'v1:' || md5(i::text) || md5((i + 1)::text), 'SKU-' || (i % 2000), 'viewed', $1 - ((i / 2000) % 2) * 40 * 86400000::bigint FROM generate_series(1, 20000) i`,
		`INSERT INTO carts (cart_id, customer, updated_wall) SELECT 'cart-' || i, 'b-' || i, $1 FROM generate_series(1, 20000) i`,
		`INSERT INTO cart_lines (cart_id, sku, qty, hlc, event_id) SELECT 'cart-' || i, 'SKU-' || (i % 2000), 1, 0, 'e' FROM generate_series(1, 20000) i`,
	} {
		var args []any
		if strings.Contains(q, "$1") {
			args = append(args, now)
		}
		if _, err := s.w.ExecContext(ctx, q, args...); err != nil {
			t.Fatal(err)
		}
	}
	big := bigTables(t, s, "")
	for _, name := range []string{"cust_identifiers", "cust_interests", "carts", "cart_lines"} {
		if !big[name] {
			t.Fatalf("%s was not filled: %v", name, big)
		}
	}
	guardPlans(t, s, []string{"cust_interests"}, big, func(t *testing.T, c int) {
		if err := s.AddInterest(ctx, ann, "A", InterestViewed); err != nil {
			t.Fatal(err)
		}
		got, err := s.InterestedIn(ctx, "SKU-42", time.UnixMilli(now).Add(-InterestWindow))
		if err != nil {
			t.Fatal(err)
		}
		// SKU-42: 10 carts, and 10 interests of which 5 are live
		// (c-42, c-4042, ...).
		if len(got) != 15 {
			t.Fatalf("interested in SKU-42: %d customers, want 15", len(got))
		}
	})
}
