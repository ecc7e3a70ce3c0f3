package store

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/omnisync/omnisync/cloud/internal/catalog"
	"github.com/omnisync/omnisync/shared/events"
)

// interestClock sets s's clock to a movable time.
func interestClock(s *Store, t0 time.Time) *time.Time {
	clock := t0
	s.now = func() time.Time { return clock }
	return &clock
}

// interestRows counts s's stored interests in sku (every subject, kind
// and age).
func interestRows(t *testing.T, s *Store, sku string) int {
	t.Helper()
	var n int
	if err := s.w.QueryRowContext(context.Background(), "SELECT count(*) FROM cust_interests WHERE sku = $1", sku).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func interested(t *testing.T, s *Store, sku string, since time.Time) []string {
	t.Helper()
	got, err := s.InterestedIn(context.Background(), sku, since)
	if err != nil {
		t.Fatalf("InterestedIn(%s): %v", sku, err)
	}
	return got
}

func sortedIDs(v ...string) []string {
	v = slices.Clone(v)
	slices.Sort(v)
	return v
}

// Ensure that the customers interested in an item are those who hold it
// in a cart and those the web shop saw view it or ask about it within the
// window, once each: an interest seen again moves forward, one older than
// the window counts for nothing and is deleted by a later write, and bad
// input (an unknown customer, a SKU not in the catalog, a malformed SKU, a
// kind the store does not know) stores nothing.
func TestInterest_WindowAndCarts(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, s *Store) {
		withKeys(s)
		ctx := context.Background()
		importOK(t, s, []catalog.Variant{variant("A", "P1", 1), variant("B", "P2", 2), variant("C", "P3", 3)})
		t0 := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
		clock := interestClock(s, t0)
		pos, web := newDevice("S1", "pos-1", 1), newDevice("online", "hub-1", 1)
		apply(t, s,
			pos.ev(t0.UnixMilli(), events.KindIdentify, identify(map[string]string{"loyalty": "LC-1", "email": "ann@shop.test"})),
			pos.ev(t0.UnixMilli(), events.KindIdentify, identify(map[string]string{"phone": "+821034561122"})),
			pos.ev(t0.UnixMilli(), events.KindIdentify, identify(map[string]string{"account": "W-3"})))
		ann, bo, cy := find(t, s, "loyalty:LC-1"), find(t, s, "phone:+821034561122"), find(t, s, "account:W-3")
		// Bo holds A in his cart; Ann viewed A, and asked about it too;
		// Cy asked about C.
		apply(t, s, web.ev(t0.UnixMilli(), events.KindLineSet, events.LineSet{CartID: cartX, Customer: bo, Lines: []events.CartLine{{SKU: "A", Qty: 1}}}))
		for _, in := range []struct{ id, sku, kind string }{
			{ann, "A", InterestViewed}, {ann, "A", InterestViewed}, {ann, "A", InterestNotifyMe}, {cy, "C", InterestNotifyMe},
		} {
			if err := s.AddInterest(ctx, in.id, in.sku, in.kind); err != nil {
				t.Fatalf("AddInterest(%s, %s): %v", in.sku, in.kind, err)
			}
		}
		since := t0.Add(-InterestWindow)
		for _, tc := range []struct {
			sku   string
			since time.Time
			want  []string
		}{
			{"A", since, sortedIDs(ann, bo)},     // the cart and the interests, Ann once
			{"C", since, []string{cy}},           // an interest alone
			{"B", since, nil},                    // nobody
			{"A", t0.Add(time.Millisecond), nil}, // both older than asked
			{"A", t0, sortedIDs(ann, bo)},        // seen at the instant asked
			{"SKU-NOPE", since, nil},             // unknown SKU
			{"C", t0.Add(time.Millisecond), nil}, // older than asked
			{"C", t0.Add(-time.Millisecond), []string{cy}},
		} {
			if got := interested(t, s, tc.sku, tc.since); !slices.Equal(got, tc.want) {
				t.Errorf("%s since %v: %v, want %v", tc.sku, tc.since, got, tc.want)
			}
		}
		// Seen again a day later, the interest moves forward; an older
		// sighting (a retried request) does not move it back.
		*clock = t0.Add(24 * time.Hour)
		if err := s.AddInterest(ctx, cy, "C", InterestNotifyMe); err != nil {
			t.Fatal(err)
		}
		*clock = t0
		if err := s.AddInterest(ctx, cy, "C", InterestNotifyMe); err != nil {
			t.Fatal(err)
		}
		if got := interested(t, s, "C", t0.Add(time.Hour)); !slices.Equal(got, []string{cy}) {
			t.Errorf("seen again: %v", got)
		}
		if v := view(t, s, cy); len(v.Interests) != 1 || v.Interests[0] != (Interest{SKU: "C", Kind: InterestNotifyMe, Seen: t0.Add(24 * time.Hour)}) {
			t.Errorf("Cy's interests: %+v", v.Interests)
		}
		if v := view(t, s, ann); len(v.Interests) != 2 || v.Interests[0].SKU != "A" || v.Interests[1].SKU != "A" {
			t.Errorf("Ann's interests: %+v", v.Interests)
		}
		// Ann viewed B 31 days ago: outside the window, it reaches no one
		// and leaves her view; the next write deletes it.
		*clock = t0.Add(-InterestWindow - 24*time.Hour)
		if err := s.AddInterest(ctx, ann, "B", InterestViewed); err != nil {
			t.Fatal(err)
		}
		*clock = t0
		if got := interested(t, s, "B", t0.Add(-InterestWindow)); got != nil {
			t.Errorf("an interest older than the window: %v", got)
		}
		if v := view(t, s, ann); slices.ContainsFunc(v.Interests, func(i Interest) bool { return i.SKU == "B" }) {
			t.Errorf("Ann's view shows an expired interest: %+v", v.Interests)
		}
		if n := interestRows(t, s, "B"); n != 1 {
			t.Fatalf("B's rows before the next write: %d", n)
		}
		if err := s.AddInterest(ctx, bo, "C", InterestViewed); err != nil {
			t.Fatal(err)
		}
		if n := interestRows(t, s, "B"); n != 0 {
			t.Errorf("an expired interest kept after a write: %d rows", n)
		}
		if n := interestRows(t, s, "A"); n != 2 {
			t.Errorf("live interests deleted: %d rows of A", n)
		}
		// Bad input stores nothing.
		for _, tc := range []struct {
			id, sku, kind string
			want          error
		}{
			{ann, "SKU-NOPE", InterestViewed, ErrUnknownSKU},
			{ann, "B", "liked", ErrInvalid},
			{ann, "", InterestViewed, ErrInvalid},
			{ann, "B B", InterestViewed, ErrInvalid},
			{"01890000-0000-7000-8000-000000000000", "B", InterestViewed, ErrNotFound},
		} {
			if err := s.AddInterest(ctx, tc.id, tc.sku, tc.kind); !errors.Is(err, tc.want) {
				t.Errorf("AddInterest(%q, %q): %v, want %v", tc.sku, tc.kind, err, tc.want)
			}
		}
		if n := interestRows(t, s, "B") + interestRows(t, s, "SKU-NOPE"); n != 0 {
			t.Errorf("refused interests stored: %d rows", n)
		}
	})
}

// Ensure that an interest follows its customer through a merge and an
// unmerge as consent does: recorded under the web account's master id, it
// reaches the merged customer by the surviving id (once, with her cart),
// is recorded through the old id too, and goes back with the account when
// HQ undoes the merge.
func TestInterest_FollowsMergeAndUnmerge(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, s *Store) {
		withKeys(s)
		ctx := context.Background()
		importOK(t, s, []catalog.Variant{variant("A", "P1", 1), variant("B", "P2", 2)})
		t0 := time.Now()
		pos, web := newDevice("S1", "pos-1", 1), newDevice("online", "webshop", 1)
		apply(t, s,
			pos.ev(1000, events.KindIdentify, identify(map[string]string{"loyalty": "LC-1", "email": "ann@shop.test"})),
			web.ev(1100, events.KindIdentify, identify(map[string]string{"account": "W-9"})))
		ann, acct := find(t, s, "loyalty:LC-1"), find(t, s, "account:W-9")
		if ann == acct {
			t.Fatal("one customer before the merge")
		}
		if err := s.AddInterest(ctx, acct, "A", InterestViewed); err != nil {
			t.Fatal(err)
		}
		if got := interested(t, s, "A", t0.Add(-time.Minute)); !slices.Equal(got, []string{acct}) {
			t.Fatalf("before the merge: %v", got)
		}
		// The web shop learns the account is Ann's.
		link := web.ev(2000, events.KindIdentify, identify(map[string]string{"account": "W-9", "email": "ann@shop.test"}))
		apply(t, s, link)
		merged := find(t, s, "account:W-9")
		if merged != find(t, s, "loyalty:LC-1") {
			t.Fatal("not merged")
		}
		if got := interested(t, s, "A", t0.Add(-time.Minute)); !slices.Equal(got, []string{merged}) {
			t.Fatalf("after the merge: %v, want the surviving id %s", got, merged)
		}
		// The older id still names her.
		old := ann
		if merged == ann {
			old = acct
		}
		if err := s.AddInterest(ctx, old, "B", InterestNotifyMe); err != nil {
			t.Fatalf("through the merged id: %v", err)
		}
		if got := interested(t, s, "B", t0.Add(-time.Minute)); !slices.Equal(got, []string{merged}) {
			t.Fatalf("recorded through the old id: %v", got)
		}
		if v := view(t, s, merged); len(v.Interests) != 2 {
			t.Fatalf("the merged customer's interests: %+v", v.Interests)
		}
		// HQ undoes the merge: A goes back with the account (recorded
		// under its id); B with the side the old id is anchored on.
		if _, err := s.Unmerge(ctx, merged, link.ID, "hq-anna", "two people"); err != nil {
			t.Fatal(err)
		}
		annNow, acctNow := find(t, s, "loyalty:LC-1"), find(t, s, "account:W-9")
		if annNow == acctNow || acctNow != acct || annNow != ann {
			t.Fatalf("after the unmerge: Ann %s (was %s), the account %s (was %s)", annNow, ann, acctNow, acct)
		}
		if got := interested(t, s, "A", t0.Add(-time.Minute)); !slices.Equal(got, []string{acct}) {
			t.Errorf("A after the unmerge: %v, want the account's %s", got, acct)
		}
		if got := interested(t, s, "B", t0.Add(-time.Minute)); !slices.Equal(got, []string{old}) {
			t.Errorf("B after the unmerge: %v, want %s", got, old)
		}
		wantAnn, wantAcct := 0, 2
		if old == ann {
			wantAnn, wantAcct = 1, 1
		}
		if v := view(t, s, ann); len(v.Interests) != wantAnn {
			t.Errorf("Ann's interests after the unmerge: %+v, want %d", v.Interests, wantAnn)
		}
		if v := view(t, s, acct); len(v.Interests) != wantAcct {
			t.Errorf("the account's interests after the unmerge: %+v, want %d", v.Interests, wantAcct)
		}
	})
}

// Ensure that erasing a customer deletes her interests: she is no longer
// among those interested, her rows are gone, and the web shop cannot
// record a new one for her (the id answers as unknown) while another
// customer's interest in the same item stays.
func TestInterest_Erasure(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, s *Store) {
		withKeys(s)
		ctx := context.Background()
		importOK(t, s, []catalog.Variant{variant("A", "P1", 1)})
		t0 := time.Now()
		pos := newDevice("S1", "pos-1", 1)
		apply(t, s,
			pos.ev(1000, events.KindIdentify, identify(map[string]string{"loyalty": "LC-1", "email": "ann@shop.test"})),
			pos.ev(1000, events.KindIdentify, identify(map[string]string{"phone": "+821034561122"})))
		ann, bo := find(t, s, "loyalty:LC-1"), find(t, s, "phone:+821034561122")
		for _, c := range []string{ann, bo} {
			for _, k := range []string{InterestViewed, InterestNotifyMe} {
				if err := s.AddInterest(ctx, c, "A", k); err != nil {
					t.Fatal(err)
				}
			}
		}
		if got := interested(t, s, "A", t0.Add(-time.Minute)); !slices.Equal(got, sortedIDs(ann, bo)) {
			t.Fatalf("before the erasure: %v", got)
		}
		if _, err := s.EraseCustomer(ctx, ann, "hq-dpo", "her request"); err != nil {
			t.Fatal(err)
		}
		if got := interested(t, s, "A", t0.Add(-time.Minute)); !slices.Equal(got, []string{bo}) {
			t.Errorf("after the erasure: %v, want only %s", got, bo)
		}
		if n := interestRows(t, s, "A"); n != 2 {
			t.Errorf("rows after the erasure: %d, want Bo's 2", n)
		}
		if err := s.AddInterest(ctx, ann, "A", InterestViewed); !errors.Is(err, ErrNotFound) {
			t.Errorf("an interest for the erased customer: %v, want ErrNotFound", err)
		}
		if n := interestRows(t, s, "A"); n != 2 {
			t.Errorf("rows after the refused write: %d, want Bo's 2", n)
		}
	})
}
