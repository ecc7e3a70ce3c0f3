package e2e

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/omnisync/omnisync/shared/gs1"
	"github.com/omnisync/omnisync/shared/testkit"
)

// gtin returns a valid GTIN-14 of a test series.
func gtin(t testing.TB, n int) string {
	body := fmt.Sprintf("0599998%06d", n)
	cd, err := gs1.CheckDigit(body)
	if err != nil {
		t.Fatal(err)
	}
	return body + string(cd)
}

// screenshot saves the page as docs/screenshots/<name>.png when
// OMNI_SCREENSHOTS names the directory (make screenshots).
func screenshot(t testing.TB, ctx context.Context, name string) {
	dir := os.Getenv("OMNI_SCREENSHOTS")
	if dir == "" {
		return
	}
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	if err := os.WriteFile(filepath.Join(dir, name+".png"), png, 0o644); err != nil {
		t.Fatal(err)
	}
}

// tabletWidth and tabletHeight are the tablet the console must work on
// (a 10" tablet held upright).
const tabletWidth, tabletHeight = 800, 1280

// fitsTablet fails unless the page open in ctx, at tablet width, does not
// scroll sideways: the document is no wider than the window, and each
// wide table scrolls inside its own container, which itself fits. The
// viewport is set here, so every page is checked at the same width.
func fitsTablet(t testing.TB, ctx context.Context, page string) {
	t.Helper()
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(tabletWidth, tabletHeight)); err != nil {
		t.Fatal(err)
	}
	type fit struct {
		Inner, Scroll float64
		Wide          []string
	}
	got, err := chromedp.Run(ctx, chromedp.Evaluate[fit](`(function(){
var w=window.innerWidth, wide=[];
document.querySelectorAll('body *').forEach(function(e){
  var r=e.getBoundingClientRect();
  if(r.width>0&&r.right>w+1&&!e.closest('.scroll')){wide.push(e.tagName.toLowerCase()+(e.id?'#'+e.id:'')+(e.className&&typeof e.className==='string'?'.'+e.className.split(' ').join('.'):'')+' right '+Math.round(r.right))}
});
return {inner:w,scroll:document.documentElement.scrollWidth,wide:wide.slice(0,5)}})()`))
	if err != nil {
		t.Fatalf("%s at tablet width: %v", page, err)
	}
	if got.Inner != tabletWidth || got.Scroll > got.Inner || len(got.Wide) > 0 {
		t.Fatalf("%s at %d px: the document is %.0f px wide in a %.0f px window; wider than the window outside a scrolling container: %v",
			page, tabletWidth, got.Scroll, got.Inner, got.Wide)
	}
}

// cellAvailable reads the grid cell of sku at loc ("" when there is none).
func cellAvailable(ctx context.Context, sku, loc string) (string, error) {
	return chromedp.Run(ctx, chromedp.Evaluate[string](fmt.Sprintf(
		`(function(){var c=document.querySelector('td[data-sku=%q][data-loc=%q]');return c?c.getAttribute('data-available'):""})()`, sku, loc)))
}

// Ensure that the HQ console, in a real browser at tablet width, finds a
// product by a word of its name, opens its store × size grid with every
// variant (the one no store holds at zero), and that a sale posted at a
// real agent changes the grid without a reload; and that a store manager
// sees only their stores' rows. Figures (sale-to-screen latency, page
// weight, time to interactive) are logged.
func TestConsoleInBrowser(t *testing.T) {
	t.Parallel()
	testkit.Chromium(t)
	ns := testkit.StartNATS(t)
	h := startHub(t, ns.URL(), "")
	importCatalog(t, h.URL, []byte(
		`{"sku":"LIN-S","product_id":"P-LIN","gtins":["`+gtin(t, 1)+`"],"name":"Linen shirt","brand":"Acme","size":"S","colour":"White","price":49.00,"currency":"EUR"}`+"\n"+
			`{"sku":"LIN-M","product_id":"P-LIN","gtins":["`+gtin(t, 2)+`"],"name":"Linen shirt","brand":"Acme","size":"M","colour":"White","price":49.00,"currency":"EUR"}`+"\n"+
			`{"sku":"TEE-M","product_id":"P-TEE","gtins":["`+gtin(t, 3)+`"],"name":"Cotton tee","brand":"Kestrel","size":"M","colour":"Black","price":19.00,"currency":"EUR"}`+"\n"))
	a1 := startAgent(t, "S1", "pos-1", ns.URL())
	a2 := startAgent(t, "S2", "pos-1", ns.URL())
	mustPost(t, a1.URL, receiptBody("LIN-M", 10))
	mustPost(t, a2.URL, receiptBody("LIN-M", 4))
	waitDrained(t, a1, 20*time.Second)
	waitDrained(t, a2, 20*time.Second)
	testkit.Eventually(t, 10*time.Second, func() bool {
		return onHand(t, h.URL, "LIN-M")["S1"] == 10 && onHand(t, h.URL, "LIN-M")["S2"] == 4
	}, "stock applied")
	// The variant no store holds is in stock nowhere, not unknown.
	if code := getJSON(t, h.URL+"/v1/inventory/LIN-S", nil); code != http.StatusOK {
		t.Fatalf("a catalog item without stock: %d", code)
	}
	hubCall(t, http.MethodPost, h.URL+"/v1/users", `{"name":"hq","role":"analyst","password":"merchandise all day"}`, http.StatusCreated)
	hubCall(t, http.MethodPost, h.URL+"/v1/users", `{"name":"maria","role":"store_manager","stores":["S2"],"password":"correct horse battery"}`, http.StatusCreated)

	ctx := testkit.Browser(t)
	if err := chromedp.Do(ctx, chromedp.Navigate(h.URL+"/console/inventory")); err != nil {
		t.Fatal(err)
	}
	logIn(t, ctx, "hq", "merchandise all day")
	// Tablet width from here on.
	fitsTablet(t, ctx, "the inventory page")
	screenshot(t, ctx, "console-inventory")
	if err := chromedp.Do(ctx, chromedp.SendKeys("#q", "lin"), chromedp.Click("#search"), chromedp.WaitVisible("#hits a.hit")); err != nil {
		t.Fatalf("search: %v", err)
	}
	hits, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll('#hits a.hit').length`))
	if err != nil || hits != 1 {
		t.Fatalf("search for lin: %d hits (%v)", hits, err)
	}
	fitsTablet(t, ctx, "the search results")
	screenshot(t, ctx, "console-search")
	if err := chromedp.Do(ctx, testkit.Click("#hits a.hit"), chromedp.WaitVisible("#grid"),
		chromedp.WaitVisible("#live-state.live-live")); err != nil {
		t.Fatalf("product page: %v", err)
	}
	for _, c := range []struct{ sku, loc, want string }{{"LIN-M", "S1", "10"}, {"LIN-M", "S2", "4"}, {"LIN-S", "S1", "0"}, {"LIN-S", "S2", "0"}} {
		if got, err := cellAvailable(ctx, c.sku, c.loc); err != nil || got != c.want {
			t.Fatalf("grid %s at %s: %q (%v), want %s", c.sku, c.loc, got, err, c.want)
		}
	}
	fitsTablet(t, ctx, "the product page")
	type timing struct {
		Transfer    float64 `json:"transfer"`
		Interactive float64 `json:"interactive"`
		Resources   float64 `json:"resources"`
	}
	perf, err := chromedp.Run(ctx, chromedp.Evaluate[timing](`(function(){var n=performance.getEntriesByType('navigation')[0];
var r=performance.getEntriesByType('resource').filter(function(e){return e.initiatorType!=='fetch'&&e.initiatorType!=='other'}).reduce(function(s,e){return s+e.transferSize},0);
return {transfer:n.transferSize,interactive:n.domInteractive,resources:r}})()`))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("product page: %.0f bytes + %.0f bytes of script, interactive after %.0f ms", perf.Transfer, perf.Resources, perf.Interactive)
	screenshot(t, ctx, "console-product")

	// A sale at S1 reaches the open grid without a reload.
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`window.__sameDocument = true`)); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	mustPost(t, a1.URL, saleBody("LIN-M", 3))
	var latency time.Duration
	testkit.Eventually(t, 15*time.Second, func() bool {
		v, err := cellAvailable(ctx, "LIN-M", "S1")
		if err == nil && v == "7" {
			latency = time.Since(start)
			return true
		}
		return false
	}, "the sale on the open grid")
	same, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`window.__sameDocument === true`))
	if err != nil || !same {
		t.Fatalf("the page reloaded to show the sale (%v)", err)
	}
	t.Logf("sale at the agent to the open grid: %v", latency)

	// The cell opens the position's history: the sale, who sold it.
	if err := chromedp.Do(ctx, testkit.Click(`td[data-sku="LIN-M"][data-loc="S1"] a`), chromedp.WaitVisible("#ledger")); err != nil {
		t.Fatalf("position history: %v", err)
	}
	ledger, err := chromedp.Run(ctx, chromedp.Text("#ledger"))
	if err != nil || !strings.Contains(ledger, "sale") || !strings.Contains(ledger, "receipt") {
		t.Fatalf("ledger %q (%v)", ledger, err)
	}
	fitsTablet(t, ctx, "the position's history")
	screenshot(t, ctx, "console-position")

	// The overview follows too, and is readable at tablet width.
	if err := chromedp.Do(ctx, chromedp.Navigate(h.URL+"/"), chromedp.WaitVisible("#live-state.live-live")); err != nil {
		t.Fatal(err)
	}
	fitsTablet(t, ctx, "the overview")
	screenshot(t, ctx, "console-overview")

	// A store manager sees only their store's row.
	mctx, cancel := chromedp.NewContext(ctx)
	defer cancel()
	// The tab shares the browser's cookies: log out first.
	if err := chromedp.Do(mctx, chromedp.Navigate(h.URL+"/"), chromedp.WaitVisible("#logout"), chromedp.Click("#logout"), chromedp.WaitVisible("#password")); err != nil {
		t.Fatalf("log out: %v", err)
	}
	if err := chromedp.Do(mctx, chromedp.Navigate(h.URL+"/console/products/P-LIN")); err != nil {
		t.Fatal(err)
	}
	logIn(t, mctx, "maria", "correct horse battery")
	if err := chromedp.Do(mctx, chromedp.WaitVisible("#grid")); err != nil {
		t.Fatal(err)
	}
	if got, _ := cellAvailable(mctx, "LIN-M", "S2"); got != "4" {
		t.Fatalf("maria's S2 cell: %q", got)
	}
	if got, _ := cellAvailable(mctx, "LIN-M", "S1"); got != "" {
		t.Fatalf("maria sees S1: %q", got)
	}
	// She sets a safety stock from the position's page: available drops.
	if err := chromedp.Do(mctx, testkit.Click(`td[data-sku="LIN-M"][data-loc="S2"] a`), chromedp.WaitVisible("#safety-form")); err != nil {
		t.Fatalf("maria's position page: %v", err)
	}
	if err := chromedp.Do(mctx, chromedp.SetValue("#safety", "1"), testkit.Click("#set-safety"), chromedp.WaitVisible("#ledger")); err != nil {
		t.Fatalf("set safety stock: %v", err)
	}
	testkit.Eventually(t, 10*time.Second, func() bool {
		v, err := chromedp.Run(mctx, chromedp.Text("#position-available"))
		return err == nil && v == "3"
	}, "available after a safety stock of 1")
	// Her store's low stock lists it now; another store's page is not hers.
	if err := chromedp.Do(mctx, chromedp.Navigate(h.URL+"/console/stores/S2"), chromedp.WaitVisible(`#low-stock tr[data-sku="LIN-M"]`)); err != nil {
		t.Fatalf("S2's low stock: %v", err)
	}
	fitsTablet(t, mctx, "the store page")
	screenshot(t, mctx, "console-store-low-stock")
	if err := chromedp.Do(mctx, chromedp.Navigate(h.URL+"/console/stores/S1"), chromedp.WaitVisible("p.bad")); err != nil {
		t.Fatalf("S1's page for S2's manager: %v", err)
	}
	if rows, err := chromedp.Run(mctx, chromedp.Evaluate[int](`document.querySelectorAll('#low-stock tr[data-sku]').length`)); err != nil || rows != 0 {
		t.Fatalf("S2's manager sees S1's low stock: %d rows (%v)", rows, err)
	}
}
