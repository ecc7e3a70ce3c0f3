package store

import (
	"context"
	"slices"
	"testing"

	"github.com/omnisync/omnisync/cloud/internal/identity"
	"github.com/omnisync/omnisync/shared/events"
	"github.com/omnisync/omnisync/shared/hlc"
)

// TestMasterIDsCutOver checks the migration to time-ordered master ids: a
// hub's customers founded before it keep their ids, also when a merge
// replays their cluster, and the new ones get ordered ids; every id still
// resolves to its customer.
func TestMasterIDsCutOver(t *testing.T) {
	forEachStore(t, func(t *testing.T, s *Store) {
		s = withKeys(s)
		ctx := context.Background()
		d := newDevice("S1", "pos-1", 1)
		customerOf := func(email string) string {
			t.Helper()
			c, err := s.customerOfDigest(ctx, s.r, s.custKeys.Digest(identity.Identifier{Type: identity.Email, Value: email}))
			if err != nil {
				t.Fatal(err)
			}
			return c
		}
		// A hub from before: every id minted as MasterID did.
		s.custOrderedSince = 0
		old := d.ev(1000, events.KindIdentify, identify(map[string]string{"loyalty": "LC-1", "email": "one@shop.test"}))
		apply(t, s, old)
		if c := customerOf("one@shop.test"); c != identity.MasterID(old.ID, 0) {
			t.Fatalf("old customer %s, want %s", c, identity.MasterID(old.ID, 0))
		}
		// Migrated: from the first stamp after its history on.
		since := hlc.Timestamp{Wall: 1001}.Pack()
		if _, err := s.w.ExecContext(ctx, `UPDATE cust_master_ids SET ordered_since = $1`, since); err != nil {
			t.Fatal(err)
		}
		if err := s.loadMasterIDs(ctx); err != nil || s.custOrderedSince != since {
			t.Fatalf("ordered since %d (%v)", s.custOrderedSince, err)
		}
		young := d.ev(3000, events.KindIdentify, identify(map[string]string{"email": "two@shop.test", "app": "A-2"}))
		apply(t, s, young)
		ordered := identity.OrderedMasterID(young.Stamp(), 0)
		if c := customerOf("two@shop.test"); c != ordered {
			t.Fatalf("new customer %s, want %s", c, ordered)
		}
		// A link replays both: the oldest keeps its id, the other's
		// redirects to it.
		apply(t, s, d.ev(4000, events.KindIdentify, identify(map[string]string{"email": "one@shop.test", "app": "A-2"})))
		if a, b := customerOf("one@shop.test"), customerOf("two@shop.test"); a != identity.MasterID(old.ID, 0) || b != a {
			t.Fatalf("after the merge %s and %s", a, b)
		}
		for _, m := range []string{identity.MasterID(old.ID, 0), ordered} {
			if c, ok, err := s.resolveMaster(ctx, s.r, m); err != nil || !ok || c != identity.MasterID(old.ID, 0) {
				t.Errorf("%s resolves to %s %v %v", m, c, ok, err)
			}
		}
		// Erasure finds both ids, with no index of anchors.
		var digests []string
		for _, v := range []identity.Identifier{{Type: identity.Loyalty, Value: "LC-1"}, {Type: identity.App, Value: "A-2"}, {Type: identity.Email, Value: "one@shop.test"}, {Type: identity.Email, Value: "two@shop.test"}} {
			digests = append(digests, s.custKeys.Digest(v))
		}
		got, err := s.mastersAnchoredOn(ctx, s.r, digests)
		if err != nil {
			t.Fatal(err)
		}
		want := sortedUnique([]string{identity.MasterID(old.ID, 0), ordered})
		if len(got) != 2 || got[0] != want[0] || got[1] != want[1] {
			t.Errorf("anchored on them: %v, want %v", got, want)
		}
	})
}

// TestMasterIDsFreshHub checks a new hub mints only ordered ids.
func TestMasterIDsFreshHub(t *testing.T) {
	forEachStore(t, func(t *testing.T, s *Store) {
		if s.custOrderedSince != 1 {
			t.Fatalf("a fresh hub orders from %d", s.custOrderedSince)
		}
	})
}

// TestOrphanMastersStayFindable checks that erasing one customer keeps the
// master ids of another findable for that one's own erasure, after a link
// between them that HQ undid is forgotten with the first (the link names
// both). cust_orphan_masters covers the case where such an observation
// founded the other's master id.
func TestOrphanMastersStayFindable(t *testing.T) {
	forEachStore(t, func(t *testing.T, s *Store) {
		s = withKeys(s)
		ctx := context.Background()
		d := newDevice("S1", "pos-1", 1)
		apply(t, s, d.ev(500, events.KindIdentify, identify(map[string]string{"email": "ann@shop.test", "loyalty": "LC-1"})),
			d.ev(600, events.KindIdentify, identify(map[string]string{"account": "W-9", "phone": "+821034561122"})))
		link := d.ev(1000, events.KindIdentify, identify(map[string]string{"email": "ann@shop.test", "account": "W-9"}))
		apply(t, s, link)
		one := find(t, s, "account:W-9")
		if _, err := s.Unmerge(ctx, one, link.ID, "hq-anna", "two people"); err != nil {
			t.Fatal(err)
		}
		ann, web := find(t, s, "email:ann@shop.test"), find(t, s, "account:W-9")
		if ann == web {
			t.Fatal("the unmerge left one customer")
		}
		digestsOf := func(id string) []string {
			var ds []string
			for _, x := range view(t, s, id).Identifiers {
				ds = append(ds, s.custKeys.Digest(identity.Identifier{Type: identity.Type(x.Type), Value: x.Value}))
			}
			return ds
		}
		webDigests := digestsOf(web)
		before, err := s.mastersAnchoredOn(ctx, s.r, webDigests)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.EraseCustomer(ctx, ann, "hq-dpo", ""); err != nil {
			t.Fatal(err)
		}
		after, err := s.mastersAnchoredOn(ctx, s.r, webDigests)
		if err != nil {
			t.Fatal(err)
		}
		if len(before) == 0 || !slices.Equal(before, after) {
			t.Fatalf("the other customer's master ids: %v before the erasure, %v after", before, after)
		}
	})
}
