package store

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/omnisync/omnisync/shared/events"
)

// Ensure that ConsentMay, what the automation asks when it sends a
// message, answers from the books as consent events left them, purpose by
// purpose: no decision is no; a grant on one channel allows that channel
// only, a grant on every channel allows each; a withdrawal applied later
// (through the store's apply, from another store) says no for its purpose
// on every channel and leaves the other purposes alone; a grant lapses at
// its expiry; the old id of a merged customer redirects; an unknown
// customer is no, and a purpose or channel the rules do not know is an
// error.
func TestConsentMay_FollowsConsentEvents(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, s *Store) {
		withKeys(s)
		ctx := context.Background()
		pos, kiosk, web := newDevice("S1", "pos-1", 1), newDevice("S2", "kiosk-1", 1), newDevice("online", "webshop", 1)
		yes, no := true, false
		now := time.Now()
		expires := now.Add(time.Hour)
		apply(t, s,
			pos.ev(1000, events.KindIdentify, identify(map[string]string{"loyalty": "LC-7", "email": "cleo@shop.test"})),
			web.ev(1000, events.KindIdentify, identify(map[string]string{"account": "W-7"})),
		)
		c, old := find(t, s, "loyalty:LC-7"), find(t, s, "account:W-7")
		may := func(id, purpose, channel string, at time.Time) bool {
			t.Helper()
			ok, err := s.ConsentMay(ctx, id, purpose, channel, at)
			if err != nil {
				t.Fatalf("ConsentMay(%s, %s, %s): %v", id, purpose, channel, err)
			}
			return ok
		}
		if may(c, "marketing_email", "email", now) {
			t.Fatal("allowed with no decision")
		}
		apply(t, s,
			pos.ev(1100, events.KindConsent, events.Consent{Customer: events.CustomerRef{"loyalty": "LC-7"}, Purpose: "marketing_email", Granted: &yes, Channel: "email", Source: "till"}),
			pos.ev(1200, events.KindConsent, events.Consent{Customer: events.CustomerRef{"email": "cleo@shop.test"}, Purpose: "sms", Granted: &yes, Source: "till"}),
			web.ev(1300, events.KindConsent, events.Consent{Customer: events.CustomerRef{"account": "W-7"}, Purpose: "push", Granted: &yes, Channel: "app", ExpiresAt: &expires}),
		)
		for _, tc := range []struct {
			id, purpose, channel string
			at                   time.Time
			want                 bool
		}{
			{c, "marketing_email", "email", now, true},
			{c, "marketing_email", "sms", now, false}, // granted on e-mail only
			{c, "sms", "sms", now, true},              // granted on every channel
			{c, "sms", "", now, true},
			{c, "analytics", "", now, false},
			{old, "push", "app", now, true},
			{old, "push", "app", expires.Add(time.Second), false}, // lapsed when sent
		} {
			if got := may(tc.id, tc.purpose, tc.channel, tc.at); got != tc.want {
				t.Errorf("before the withdrawal: may %s %s/%s at %v = %v, want %v", tc.id, tc.purpose, tc.channel, tc.at, got, tc.want)
			}
		}
		// She withdraws her e-mail consent at another store's kiosk.
		apply(t, s, kiosk.ev(2000, events.KindConsent, events.Consent{Customer: events.CustomerRef{"email": "cleo@shop.test"}, Purpose: "marketing_email", Granted: &no, Channel: "store", Source: "kiosk"}))
		if may(c, "marketing_email", "email", now) || may(c, "marketing_email", "store", now) {
			t.Fatal("a withdrawn consent still allows")
		}
		if !may(c, "sms", "sms", now) {
			t.Fatal("a withdrawal of e-mail took the SMS consent with it")
		}
		// An older grant arriving late (a store back online) changes nothing.
		apply(t, s, pos.ev(1500, events.KindConsent, events.Consent{Customer: events.CustomerRef{"loyalty": "LC-7"}, Purpose: "marketing_email", Granted: &yes, Channel: "email"}))
		if may(c, "marketing_email", "email", now) {
			t.Fatal("a late older grant reopened the consent")
		}
		// The web account turns out to be hers: the absorbed id redirects,
		// and the merged customer has both histories.
		apply(t, s, web.ev(3000, events.KindIdentify, identify(map[string]string{"account": "W-7", "email": "cleo@shop.test"})))
		if m := find(t, s, "account:W-7"); m != c && m != old {
			t.Fatalf("merged into %s", m)
		}
		if !may(old, "push", "app", now) || !may(c, "push", "app", now) || may(old, "marketing_email", "email", now) {
			t.Fatal("after the merge the customer's consent is not the union of both")
		}
		if may("C-never-seen", "sms", "sms", now) {
			t.Fatal("an unknown customer may be addressed")
		}
		if _, err := s.ConsentMay(ctx, c, "spam", "email", now); !errors.Is(err, ErrInvalid) {
			t.Fatalf("unknown purpose: %v", err)
		}
		if _, err := s.ConsentMay(ctx, c, "sms", "fax", now); !errors.Is(err, ErrInvalid) {
			t.Fatalf("unknown channel: %v", err)
		}
	})
}
