package e2e

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/omnisync/omnisync/shared/testkit"
)

// hubCall sends a JSON request to the hub with the admin token and fails
// the test unless it answers want.
func hubCall(t testing.TB, method, u, body string, want int) {
	t.Helper()
	req, err := http.NewRequest(method, u, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := httpClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != want {
		t.Fatalf("%s %s: %s, want %d", method, u, resp.Status, want)
	}
}

// logIn fills the hub's login page, which the browser must be on.
func logIn(t testing.TB, ctx context.Context, user, password string) {
	t.Helper()
	if err := chromedp.Do(ctx, chromedp.WaitVisible("#user"), chromedp.SendKeys("#user", user),
		chromedp.SendKeys("#password", password), chromedp.Click("#login"), chromedp.WaitVisible("#who")); err != nil {
		t.Fatalf("log in as %s: %v", user, err)
	}
}

// Ensure that the HQ dashboard, in a real browser, sends a stranger to the
// login page; that after logging in a store manager sees their store's
// devices, low stock and dead letters and no other store's; and that
// logging out locks the page again.
func TestDashboardInBrowser(t *testing.T) {
	t.Parallel()
	testkit.Chromium(t)
	ns := testkit.StartNATS(t)
	h := startHub(t, ns.URL(), "")
	a1 := startAgent(t, "S1", "pos-1", ns.URL())
	a2 := startAgent(t, "S2", "pos-9", ns.URL())
	mustPost(t, a1.URL, receiptBody("SKU-LOW", 3))
	mustPost(t, a1.URL, receiptBody("SKU-HIGH", 300))
	mustPost(t, a2.URL, receiptBody("SKU-ELSEWHERE", 1))
	waitDrained(t, a1, 20*time.Second)
	waitDrained(t, a2, 20*time.Second)
	testkit.Eventually(t, 10*time.Second, func() bool {
		return onHand(t, h.URL, "SKU-LOW")["S1"] == 3 && onHand(t, h.URL, "SKU-ELSEWHERE")["S2"] == 1
	}, "stock applied")
	// The page says "connected" once the hub has a heartbeat from pos-1;
	// under load the first one can come after the sales are applied.
	var stores storesView
	testkit.Eventually(t, 10*time.Second, func() bool {
		getJSON(t, h.URL+"/v1/stores", &stores)
		for _, s := range stores.Stores {
			if s.Store == "S1" && len(s.Devices) > 0 && s.Devices[0].Connected {
				return true
			}
		}
		return false
	}, "pos-1 connected: %+v", stores)
	hubCall(t, http.MethodPost, h.URL+"/v1/users", `{"name":"maria","role":"store_manager","stores":["S1"],"password":"correct horse battery"}`, http.StatusCreated)

	ctx := testkit.Browser(t)
	if err := chromedp.Do(ctx, chromedp.Navigate(h.URL+"/")); err != nil {
		t.Fatal(err)
	}
	loc, err := chromedp.Run(ctx, chromedp.Location())
	if err != nil || loc != h.URL+"/login?next=%2F" {
		t.Fatalf("a stranger opening the dashboard lands on %q (%v)", loc, err)
	}
	// A wrong password stays on the login page.
	if err := chromedp.Do(ctx, chromedp.SendKeys("#user", "maria"), chromedp.SendKeys("#password", "not her password"),
		chromedp.Click("#login"), chromedp.WaitVisible("#error")); err != nil {
		t.Fatalf("wrong password: %v", err)
	}
	if err := chromedp.Do(ctx, chromedp.Navigate(h.URL+"/login?next=%2F")); err != nil {
		t.Fatal(err)
	}
	logIn(t, ctx, "maria", "correct horse battery")
	dom, err := chromedp.Run(ctx, chromedp.OuterHTML("html"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"omnisync HQ", `<span id="user">maria</span>`, "<td>S1</td>", "<td>pos-1</td>", "connected", "SKU-LOW"} {
		if !strings.Contains(dom, want) {
			t.Fatalf("dashboard lacks %q:\n%s", want, dom)
		}
	}
	for _, unwanted := range []string{"<td>S2</td>", "pos-9", "SKU-ELSEWHERE", "SKU-HIGH", `href="/metrics"`} {
		if strings.Contains(dom, unwanted) {
			t.Fatalf("S1's manager sees %q:\n%s", unwanted, dom)
		}
	}
	if dir := os.Getenv("OMNI_SCREENSHOTS"); dir != "" {
		if png, err := chromedp.Run(ctx, chromedp.FullScreenshot(90)); err != nil {
			t.Log(err)
		} else if err := os.WriteFile(filepath.Join(dir, "hq-dashboard-store-manager.jpg"), png, 0o644); err != nil {
			t.Log(err)
		}
	}
	// The session works for the API too, filtered the same way.
	if err := chromedp.Do(ctx, chromedp.Navigate(h.URL+"/v1/stores")); err != nil {
		t.Fatal(err)
	}
	body, err := chromedp.Run(ctx, chromedp.Text("body"))
	if err != nil || !strings.Contains(body, `"store": "S1"`) || strings.Contains(body, "S2") {
		t.Fatalf("/v1/stores with maria's session: %v\n%s", err, body)
	}
	if err := chromedp.Do(ctx, chromedp.Navigate(h.URL+"/"), chromedp.WaitVisible("#who")); err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Do(ctx, chromedp.Click("#logout"), chromedp.WaitVisible("#login")); err != nil {
		t.Fatalf("log out: %v", err)
	}
	if err := chromedp.Do(ctx, chromedp.Navigate(h.URL+"/")); err != nil {
		t.Fatal(err)
	}
	if loc, _ := chromedp.Run(ctx, chromedp.Location()); !strings.HasPrefix(loc, h.URL+"/login") {
		t.Fatalf("after logout the dashboard shows at %q", loc)
	}
}

// Ensure that a page on another origin cannot make a logged-in admin's
// browser import a catalog (a forged price list reaching every store): the
// browser sends the session cookie along (same site, another port), and
// the hub refuses the cross-origin post all the same.
func TestCrossSiteFormRefused(t *testing.T) {
	t.Parallel()
	testkit.Chromium(t)
	ns := testkit.StartNATS(t)
	h := startHub(t, ns.URL(), "")
	hubCall(t, http.MethodPatch, h.URL+"/v1/users/admin", `{"password":"correct horse battery"}`, http.StatusOK)

	// The attacker's page: a form that posts a catalog to the hub as soon
	// as it loads.
	evil := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		fmt.Fprintf(w, `<!doctype html><html><body>
<form id="f" method="post" enctype="text/plain" action="%s/v1/catalog/import?format=csv&amp;mode=partial">
<input name="sku,product_id,gtin,name,brand,size,colour,price,currency,image_url,category&#10;EVIL-1,EVIL,4006381333931,Tee,X,M,Black,0.01,EUR,,Tops&#10;x" value="y">
</form><script>document.getElementById('f').submit()</script></body></html>`, h.URL)
	}))
	t.Cleanup(evil.Close)

	ctx := testkit.Browser(t)
	if err := chromedp.Do(ctx, chromedp.Navigate(h.URL+"/")); err != nil {
		t.Fatal(err)
	}
	logIn(t, ctx, "admin", "correct horse battery")
	if err := chromedp.Do(ctx, chromedp.Navigate(evil.URL+"/")); err != nil {
		t.Fatal(err)
	}
	var got string
	testkit.Eventually(t, 20*time.Second, func() bool {
		got, _ = chromedp.Run(ctx, chromedp.Evaluate[string](`location.href + ' ' + document.body.innerText`))
		return strings.HasPrefix(got, h.URL+"/v1/catalog/import")
	}, "the form posted to the hub")
	if !strings.Contains(got, "cross-origin request refused") {
		t.Fatalf("the hub answered the cross-site post with: %s", got)
	}
	var stats struct{ Variants int64 }
	if getJSON(t, h.URL+"/v1/catalog", &stats) != http.StatusOK || stats.Variants != 0 {
		t.Fatalf("the catalog holds %d variants after the forged post", stats.Variants)
	}
	// The same admin session still works from the hub's own pages.
	if err := chromedp.Do(ctx, chromedp.Navigate(h.URL+"/")); err != nil {
		t.Fatal(err)
	}
	if loc, _ := chromedp.Run(ctx, chromedp.Location()); loc != h.URL+"/" {
		t.Fatalf("the admin's dashboard is at %q", loc)
	}
}
