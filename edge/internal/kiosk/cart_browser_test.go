package kiosk

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/omnisync/omnisync/edge/internal/storecart"
	"github.com/omnisync/omnisync/shared/downsync"
	"github.com/omnisync/omnisync/shared/events"
	"github.com/omnisync/omnisync/shared/testkit"
)

// Ensure that a shopper at the kiosk adds the product she is looking at to
// a cart (a line_set in the outbox each time), sees the cart with its
// total, removes a line, and gets the QR that takes the cart to her phone
// (the agent's own QR route); and that the next shopper starts with an
// empty cart.
func TestKioskCartInBrowser(t *testing.T) {
	var sc *storecart.Carts
	testkit.Chromium(t)
	// No scan stream: the cart screen needs none, and Chromium keeps each
	// left page's stream open for a while, so this many quick page
	// changes would use up its six connections to the agent.
	r := newRig(t, 0, func(o *Options) {
		sc = storecart.New(storecart.Options{Store: testStore, Device: testDevice, Outbox: o.Outbox, HubURL: "https://hub.example"})
		o.Carts = sc
	}, nil)
	b := &browserRig{rig: r, ctx: testkit.Browser(t)}
	// The agent serves its cart routes next to the kiosk's.
	sc.Register(b.srv.Config.Handler.(*http.ServeMux))

	b.do(t, "add a tee", chromedp.Navigate(b.srv.URL+"/kiosk/p/TEE-M-BLU"), chromedp.WaitVisible("#add-to-cart"),
		chromedp.Click("#add-to-cart"), chromedp.WaitVisible(`#cart-lines tr[data-sku="TEE-M-BLU"]`))
	if loc := b.location(t); loc != "/kiosk/cart?v=1" {
		t.Fatalf("after adding: %q", loc)
	}
	b.do(t, "add it again, and another size",
		chromedp.Navigate(b.srv.URL+"/kiosk/p/TEE-M-BLU"), chromedp.WaitVisible("#add-to-cart"), chromedp.Click("#add-to-cart"),
		chromedp.WaitVisible("#cart-lines"),
		chromedp.Navigate(b.srv.URL+"/kiosk/p/TEE-S-BLU"), chromedp.WaitVisible("#add-to-cart"), chromedp.Click("#add-to-cart"),
		chromedp.WaitVisible(`#cart-lines tr[data-sku="TEE-S-BLU"]`))
	if got := b.text(t, `#cart-lines tr[data-sku="TEE-M-BLU"] .cqty`); got != "2" {
		t.Fatalf("quantity of M %q", got)
	}
	if got := b.text(t, `#cart-lines tr[data-sku="TEE-M-BLU"] .cname`); !strings.Contains(got, "Organic Tee") || !strings.Contains(got, "size M") {
		t.Fatalf("line name %q", got)
	}
	m, _ := b.cat.Lookup(t.Context(), "TEE-M-BLU")
	s, _ := b.cat.Lookup(t.Context(), "TEE-S-BLU")
	pm, ps := variantPrice(m, "TEE-M-BLU"), variantPrice(s, "TEE-S-BLU")
	if got, want := b.text(t, "#cart-total"), FormatPrice(2*pm+ps, variantCurrency(m, "TEE-M-BLU")); got != want {
		t.Fatalf("total %q, want %q", got, want)
	}
	// The QR is drawn by the agent and shows.
	b.do(t, "the QR shows", chromedp.Poll[chromedp.Void](`document.querySelector("#cart-qr").naturalWidth > 0`, chromedp.WithPollingTimeout(10*time.Second)))
	sets := outboxEvents[events.LineSet](t, b.ob, events.KindLineSet)
	if len(sets) != 3 || sets[0].CartID == "" || sets[1].CartID != sets[0].CartID || sets[2].CartID != sets[0].CartID ||
		sets[1].Lines[0] != (events.CartLine{SKU: "TEE-M-BLU", Qty: 2, UnitPrice: sets[1].Lines[0].UnitPrice}) ||
		sets[0].Channel != "kiosk" || sets[0].Lines[0].UnitPrice == nil || *sets[0].Lines[0].UnitPrice != pm {
		t.Fatalf("line sets in the outbox %+v", sets)
	}
	// The cart's fourth version is the page after the removal.
	b.do(t, "remove the small one", chromedp.Click(`#cart-lines tr[data-sku="TEE-S-BLU"] button.remove`),
		chromedp.WaitVisible(`section.cart[data-version="4"] #cart-lines tr[data-sku="TEE-M-BLU"]`))
	if n, err := chromedp.Run(b.ctx, chromedp.Evaluate[int](`document.querySelectorAll('#cart-lines tr[data-sku="TEE-S-BLU"]').length`)); err != nil || n != 0 {
		t.Fatalf("the removed line is still shown: %d %v", n, err)
	}
	sets = outboxEvents[events.LineSet](t, b.ob, events.KindLineSet)
	if last := sets[len(sets)-1]; len(sets) != 4 || last.Lines[0].SKU != "TEE-S-BLU" || last.Lines[0].Qty != 0 {
		t.Fatalf("removal %+v", sets)
	}

	resp, err := http.Get(b.srv.URL + "/v1/carts/" + sets[0].CartID + "/qr")
	if err != nil {
		t.Fatal(err)
	}
	svg, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(svg), "<svg") {
		t.Fatalf("QR: %d %.80s", resp.StatusCode, svg)
	}

	b.do(t, "the next shopper starts empty", chromedp.Click("#done"), chromedp.WaitVisible("#title"),
		chromedp.Navigate(b.srv.URL+"/kiosk/cart"), chromedp.WaitVisible("#cart-empty"))
}

func variantPrice(v downsync.View, sku string) int64 {
	for _, x := range v.Variants {
		if x.SKU == sku {
			return x.PriceMinor
		}
	}
	return -1
}

func variantCurrency(v downsync.View, sku string) string {
	for _, x := range v.Variants {
		if x.SKU == sku {
			return x.Currency
		}
	}
	return ""
}
