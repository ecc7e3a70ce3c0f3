package kiosk

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/omnisync/omnisync/edge/internal/storecart"
	"github.com/omnisync/omnisync/shared/downsync"
	"github.com/omnisync/omnisync/shared/events"
)

// Ensure that the survey refuses what it should and appends nothing then:
// no survey page before the cart is sold, an answer to a survey HQ has
// replaced, a score off the scale, a forged form; that a second, different
// submission by the same receipt is not appended; and that a cart sold
// while HQ asks no survey shows its thanks and stops watching.
func TestKioskSurveyRefusals(t *testing.T) {
	var sc *storecart.Carts
	offered := true
	r := newRig(t, 0, func(o *Options) {
		sc = storecart.New(storecart.Options{Store: testStore, Device: testDevice, Outbox: o.Outbox})
		o.Carts = sc
		o.Surveys = func(offer string) (downsync.SurveyDoc, bool) {
			if !offered {
				return downsync.SurveyDoc{}, false
			}
			return hqSurveys(offer)
		}
	}, nil)
	c := r.shopper(t)
	tok := csrf(t, r.get(t, c, "/kiosk/p/TEE-M-BLU").body)
	if a := r.get(t, c, "/kiosk/survey?for=purchase"); a.status != http.StatusSeeOther {
		t.Fatalf("survey before a purchase: %d", a.status)
	}
	if a := r.post(t, c, "/kiosk/cart/add", url.Values{"csrf": {tok}, "sku": {"TEE-M-BLU"}}, nil); a.status != http.StatusSeeOther {
		t.Fatalf("add: %d", a.status)
	}
	if a := r.get(t, c, "/kiosk/cart/sold"); a.status != http.StatusNoContent {
		t.Fatalf("sold before the till: %d", a.status)
	}
	id := outboxEvents[events.LineSet](t, r.ob, events.KindLineSet)[0].CartID
	cart, _ := sc.Load(id)
	if _, err := sc.Checkout(t.Context(), cart, nil); err != nil {
		t.Fatal(err)
	}
	if a := r.get(t, c, "/kiosk/cart/sold"); a.status != http.StatusOK {
		t.Fatalf("sold after the till: %d", a.status)
	}
	if a := r.get(t, c, "/kiosk/cart"); a.status != http.StatusSeeOther || a.header.Get("Location") != "/kiosk/survey?for=purchase" {
		t.Fatalf("cart after the sale: %d %q", a.status, a.header.Get("Location"))
	}
	answer := func(v url.Values) url.Values {
		f := url.Values{"csrf": {tok}, "survey": {"post-purchase"}, "for": {"purchase"}, "step": {"score"}, "score": {"7"}}
		for k, vs := range v {
			f[k] = vs
		}
		return f
	}
	for _, tc := range []struct {
		form url.Values
		want int
	}{
		{answer(url.Values{"csrf": {"forged"}}), http.StatusForbidden},
		{answer(url.Values{"survey": {"last-year"}}), http.StatusConflict},
		{answer(url.Values{"score": {"11"}}), http.StatusBadRequest},
		{answer(url.Values{"score": {"seven"}}), http.StatusBadRequest},
		{answer(url.Values{"for": {"visit"}}), http.StatusConflict}, // not a mirror
		{answer(url.Values{"step": {"send"}, "comment": {"bell\x07"}}), http.StatusBadRequest},
	} {
		if a := r.post(t, c, "/kiosk/survey", tc.form, nil); a.status != tc.want {
			t.Errorf("%v: %d, want %d", tc.form, a.status, tc.want)
		}
	}
	if n := len(outboxEvents[events.Survey](t, r.ob, events.KindSurvey)); n != 0 {
		t.Fatalf("%d answers appended by refused forms", n)
	}
	// A double tap that changed the comment in between: the session's
	// cookies as they were before the first answer ended it.
	u, _ := url.Parse(r.srv.URL + "/kiosk/")
	before := c.Jar.Cookies(u)
	if a := r.post(t, c, "/kiosk/survey", answer(url.Values{"step": {"send"}, "comment": {"Fine"}}), nil); a.status != http.StatusSeeOther {
		t.Fatalf("send: %d", a.status)
	}
	for _, ck := range before {
		ck.Path = "/kiosk"
	}
	c.Jar.SetCookies(u, before)
	if a := r.post(t, c, "/kiosk/survey", answer(url.Values{"step": {"send"}, "comment": {"Actually, great"}}), nil); a.status != http.StatusSeeOther {
		t.Fatalf("second send: %d", a.status)
	}
	if got := outboxEvents[events.Survey](t, r.ob, events.KindSurvey); len(got) != 1 || got[0].Comment != "Fine" || !got[0].Complete {
		t.Fatalf("answers %+v", got)
	}

	// A sale while HQ asks no survey: the cart thanks, and stops watching.
	offered = false
	c3 := r.shopper(t)
	tok3 := csrf(t, r.get(t, c3, "/kiosk/p/TEE-M-BLU").body)
	r.post(t, c3, "/kiosk/cart/add", url.Values{"csrf": {tok3}, "sku": {"TEE-M-BLU"}}, nil)
	sets := outboxEvents[events.LineSet](t, r.ob, events.KindLineSet)
	cart, _ = sc.Load(sets[len(sets)-1].CartID)
	if _, err := sc.Checkout(t.Context(), cart, nil); err != nil {
		t.Fatal(err)
	}
	a := r.get(t, c3, "/kiosk/cart")
	if a.status != http.StatusOK || !strings.Contains(a.body, "thank you for your purchase") || strings.Contains(a.body, "data-watch=") {
		t.Fatalf("sold cart without a survey: %d\n%s", a.status, visible(a.body))
	}
}
