package e2e

import (
	"net/http"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/omnisync/omnisync/shared/testkit"
)

// Ensure that a receipt naming a SKU the catalog lacks is held, not
// booked, and that an HQ admin in a real browser at tablet width sees the
// exception, maps it to the right SKU, replays it, and sees it gone and
// the stock where it belongs.
func TestExceptionsInBrowser(t *testing.T) {
	t.Parallel()
	testkit.Chromium(t)
	ns := testkit.StartNATS(t)
	h := startHub(t, ns.URL(), "")
	importCatalog(t, h.URL, []byte(
		`{"sku":"TEE-M","product_id":"P-TEE","gtins":["`+gtin(t, 3)+`"],"name":"Cotton tee","brand":"Kestrel","size":"M","colour":"Black","price":19.00,"currency":"EUR"}`+"\n"))
	a1 := startAgent(t, "S1", "pos-1", ns.URL())
	mustPost(t, a1.URL, receiptBody("TEE-OLD", 3))
	waitDrained(t, a1, 20*time.Second)
	type list struct {
		Exceptions []struct {
			Value string `json:"value"`
			Held  int    `json:"held"`
		} `json:"exceptions"`
	}
	testkit.Eventually(t, 10*time.Second, func() bool {
		var l list
		return getJSON(t, h.URL+"/v1/exceptions", &l) == http.StatusOK && len(l.Exceptions) == 1 && l.Exceptions[0].Held == 1
	}, "the receipt held as an exception")
	if got := onHand(t, h.URL, "TEE-OLD"); len(got) != 0 {
		t.Fatalf("phantom stock of TEE-OLD: %v", got)
	}
	hubCall(t, http.MethodPost, h.URL+"/v1/users", `{"name":"boss","role":"admin","password":"keeps the books exact"}`, http.StatusCreated)

	ctx := testkit.Browser(t)
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(800, 1280), chromedp.Navigate(h.URL+"/console/exceptions")); err != nil {
		t.Fatal(err)
	}
	logIn(t, ctx, "boss", "keeps the books exact")
	row := `#exceptions tr[data-value="TEE-OLD"]`
	if err := chromedp.Do(ctx, chromedp.WaitVisible(row)); err != nil {
		t.Fatalf("the exception is not shown: %v", err)
	}
	fitsTablet(t, ctx, "the exceptions page")
	screenshot(t, ctx, "console-exceptions")
	// Live: a new unknown SKU shows up without a reload, and a half-typed
	// mapping in the page's form survives the update.
	if err := chromedp.Do(ctx, chromedp.SendKeys(row+" .map-to", "TEE")); err != nil {
		t.Fatal(err)
	}
	mustPost(t, a1.URL, receiptBody("CAP-OLD", 1))
	waitDrained(t, a1, 20*time.Second)
	testkit.Eventually(t, 10*time.Second, func() bool {
		var l list
		return getJSON(t, h.URL+"/v1/exceptions", &l) == http.StatusOK && len(l.Exceptions) == 2
	}, "CAP-OLD held")
	time.Sleep(time.Second) // the change has reached the page by now
	typed, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.querySelector('#exceptions tr.fix[data-value="TEE-OLD"] .map-to').value`))
	if err != nil || typed != "TEE" {
		t.Fatalf("the half-typed mapping was replaced by the update: %q %v", typed, err)
	}
	if err := chromedp.Do(ctx, chromedp.Blur(row+" .map-to"), chromedp.WaitVisible(`#exceptions tr[data-value="CAP-OLD"]`)); err != nil {
		t.Fatalf("the new exception is not shown live: %v", err)
	}
	if err := chromedp.Do(ctx, chromedp.SendKeys(row+" .map-to", "TEE-M"), testkit.Click(row+" .map-replay"),
		chromedp.WaitVisible("#message"), chromedp.WaitNotPresent(row)); err != nil {
		t.Fatalf("map and replay: %v", err)
	}
	msg, err := chromedp.Run(ctx, chromedp.Text("#message"))
	if err != nil || msg != "Mapped TEE-OLD to TEE-M. Replayed 1 event(s)." {
		t.Fatalf("message %q (%v)", msg, err)
	}
	if got := onHand(t, h.URL, "TEE-M")["S1"]; got != 3 {
		t.Fatalf("TEE-M at S1: %d, want 3", got)
	}
	// The replay's stock goes down to the store like any batch's.
	testkit.Eventually(t, 10*time.Second, func() bool {
		code, v := lookup(t, a1.URL, "TEE-M")
		here, _, _, ok := level(v, "TEE-M")
		return code == http.StatusOK && ok && here == 3
	}, "the replayed stock at the store's lookup")
	// The next receipt of the old SKU is rewritten on arrival; a
	// click-and-collect order reaches the pickups board.
	mustPost(t, a1.URL, receiptBody("TEE-OLD", 2))
	mustPost(t, a1.URL, `{"kind":"reserve","data":{"reservation_id":"CC-1","location":"S1","lines":[{"sku":"TEE-M","qty":1}]}}`)
	waitDrained(t, a1, 20*time.Second)
	testkit.Eventually(t, 10*time.Second, func() bool { return onHand(t, h.URL, "TEE-M")["S1"] == 5 }, "the mapped receipt applied")
	if err := chromedp.Do(ctx, chromedp.Navigate(h.URL+"/console/pickups"), chromedp.WaitVisible(`#pickups tr[data-state="reserved"]`)); err != nil {
		t.Fatalf("pickups page: %v", err)
	}
	fitsTablet(t, ctx, "the pickups board")
	screenshot(t, ctx, "console-pickups")
}
