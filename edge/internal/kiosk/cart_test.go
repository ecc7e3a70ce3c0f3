package kiosk

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/omnisync/omnisync/edge/internal/storecart"
	"github.com/omnisync/omnisync/shared/events"
)

func cartRig(t *testing.T) *rig {
	return newRig(t, 0, func(o *Options) {
		o.Carts = storecart.New(storecart.Options{Store: testStore, Device: testDevice, Outbox: o.Outbox})
	}, nil)
}

// Ensure that the cart forms refuse what is not theirs to take and change
// nothing then: a forged form (no token), an unknown SKU, a quantity out
// of range, a removal with no cart.
func TestKioskCartRefusals(t *testing.T) {
	r := cartRig(t)
	c := r.shopper(t)
	page := r.get(t, c, "/kiosk/p/TEE-M-BLU")
	if !strings.Contains(page.body, `id="add-to-cart"`) {
		t.Fatalf("no add button:\n%s", visible(page.body))
	}
	tok := csrf(t, page.body)
	for _, tc := range []struct {
		path string
		form url.Values
		want int
	}{
		{"/kiosk/cart/add", url.Values{"sku": {"TEE-M-BLU"}}, http.StatusForbidden},
		{"/kiosk/cart/add", url.Values{"csrf": {tok}, "sku": {"NOPE-1"}}, http.StatusNotFound},
		{"/kiosk/cart/add", url.Values{"csrf": {tok}, "sku": {"bad sku"}}, http.StatusBadRequest},
		{"/kiosk/cart/set", url.Values{"csrf": {tok}, "sku": {"TEE-M-BLU"}, "qty": {"0"}}, http.StatusBadRequest},
	} {
		a := r.post(t, c, tc.path, tc.form, nil)
		if a.status != tc.want && !(tc.want == http.StatusForbidden && a.status == http.StatusOK) {
			t.Errorf("%s %v: %d, want %d", tc.path, tc.form, a.status, tc.want)
		}
	}
	if n := len(outboxEvents[events.LineSet](t, r.ob, events.KindLineSet)); n != 0 {
		t.Fatalf("%d line sets after refused forms", n)
	}
	a := r.post(t, c, "/kiosk/cart/add", url.Values{"csrf": {tok}, "sku": {"TEE-M-BLU"}}, nil)
	if a.status != http.StatusSeeOther || a.header.Get("Location") != "/kiosk/cart?v=1" {
		t.Fatalf("add: %d %v", a.status, a.header)
	}
	a = r.post(t, c, "/kiosk/cart/set", url.Values{"csrf": {tok}, "sku": {"TEE-M-BLU"}, "qty": {"100"}}, nil)
	if a.status != http.StatusBadRequest {
		t.Fatalf("quantity 100: %d", a.status)
	}
	a = r.post(t, c, "/kiosk/cart/set", url.Values{"csrf": {tok}, "sku": {"TEE-M-BLU"}, "qty": {"0"}}, nil)
	if a.status != http.StatusSeeOther {
		t.Fatalf("remove: %d\n%s", a.status, visible(a.body))
	}
	if page := r.get(t, c, "/kiosk/cart"); !strings.Contains(page.body, `id="cart-empty"`) {
		t.Fatalf("cart after removal:\n%s", visible(page.body))
	}
}
