package e2e

import (
	"net/http"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/omnisync/omnisync/shared/testkit"
)

// Ensure that, in a real browser at tablet width, a count made at a real
// agent's POS API (a manual count) shows on the counts page with its
// variance valued at the catalog price, and that the charts page draws
// SVG charts from the sales and heartbeats the hub received.
func TestCountsAndChartsInBrowser(t *testing.T) {
	t.Parallel()
	testkit.Chromium(t)
	ns := testkit.StartNATS(t)
	h := startHub(t, ns.URL(), "")
	importCatalog(t, h.URL, []byte(
		`{"sku":"LIN-M","product_id":"P-LIN","gtins":["`+gtin(t, 2)+`"],"name":"Linen shirt","brand":"Acme","size":"M","colour":"White","price":49.00,"currency":"EUR"}`+"\n"))
	a1 := startAgent(t, "S1", "pos-1", ns.URL())
	mustPost(t, a1.URL, receiptBody("LIN-M", 10))
	mustPost(t, a1.URL, `{"kind":"sale","data":{"lines":[{"sku":"LIN-M","qty":2,"unit_price":4900}]}}`)
	// The books say 8; the shelf holds 7.
	mustPost(t, a1.URL, `{"kind":"count","data":{"lines":[{"sku":"LIN-M","qty":7}]}}`)
	waitDrained(t, a1, 20*time.Second)
	testkit.Eventually(t, 10*time.Second, func() bool { return onHand(t, h.URL, "LIN-M")["S1"] == 7 }, "count applied")
	hubCall(t, http.MethodPost, h.URL+"/v1/users", `{"name":"hq","role":"analyst","password":"merchandise all day"}`, http.StatusCreated)

	ctx := testkit.Browser(t)
	if err := chromedp.Do(ctx, chromedp.Navigate(h.URL+"/console/counts")); err != nil {
		t.Fatal(err)
	}
	logIn(t, ctx, "hq", "merchandise all day")
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(800, 1280), chromedp.WaitVisible("#variances")); err != nil {
		t.Fatal(err)
	}
	type row struct {
		Method, Variance, Value, Net string
	}
	got, err := chromedp.Run(ctx, chromedp.Evaluate[row](`(function(){var r=document.querySelector('#variances tr[data-sku="LIN-M"]');
if(!r)return {};var c=r.querySelectorAll('td');
return {method:c[7].textContent,variance:c[4].textContent,value:c[6].textContent,net:document.querySelector('#count-net-value').textContent}})()`))
	if err != nil || got != (row{Method: "manual", Variance: "-1", Value: "-49.00", Net: "-49.00"}) {
		t.Fatalf("counts page: %+v (%v)", got, err)
	}
	fitsTablet(t, ctx, "the counts page")
	screenshot(t, ctx, "console-counts")

	// The store page: every sale of S1's till has reached HQ.
	testkit.Eventually(t, 10*time.Second, func() bool {
		if err := chromedp.Do(ctx, chromedp.Navigate(h.URL+"/console/stores/S1"), chromedp.WaitVisible("#unsynced")); err != nil {
			return false
		}
		cls, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.querySelector('#unsynced').className`))
		return err == nil && cls == "ok"
	}, "the store page says every sale reached HQ")
	fitsTablet(t, ctx, "the store page")

	// The lag history is written with the heartbeats (every 2 s).
	testkit.Eventually(t, 15*time.Second, func() bool {
		if err := chromedp.Do(ctx, chromedp.Navigate(h.URL+"/console/charts"), chromedp.WaitVisible("#chart-sales")); err != nil {
			return false
		}
		n, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll('#chart-lag polyline.series').length`))
		return err == nil && n > 0
	}, "the lag chart has a line")
	type charts struct {
		SalesBars, ConflictSVG int
		Legend                 string
		Overflow               bool
		Width                  float64
	}
	c, err := chromedp.Run(ctx, chromedp.Evaluate[charts](`(function(){return {
salesbars:document.querySelectorAll('#chart-sales rect.bar').length,
conflictsvg:document.querySelectorAll('svg#chart-conflicts').length,
legend:document.querySelector('#chart-lag .legend text').textContent,
overflow:document.documentElement.scrollWidth>window.innerWidth,
width:document.querySelector('#chart-sales').getBoundingClientRect().width}})()`))
	if err != nil || c.SalesBars < 1 || c.ConflictSVG != 1 || c.Legend != "S1" || c.Overflow || c.Width < 300 {
		t.Fatalf("charts page: %+v (%v)", c, err)
	}
	fitsTablet(t, ctx, "the charts page")
	screenshot(t, ctx, "console-charts")
}
