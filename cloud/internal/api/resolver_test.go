package api

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/omnisync/omnisync/shared/gs1"
	"github.com/omnisync/omnisync/shared/testkit"
)

// noRedirect is a client that shows redirects instead of following them.
var noRedirect = &http.Client{Timeout: 2 * time.Minute, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

func fetch(t *testing.T, method, u string, header map[string]string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := noRedirect.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

// Ensure that the resolver redirects to the product page by default,
// answers the linkset when asked, and refuses what is not a valid Digital
// Link or not in the catalog, as a GS1-conformant resolver does.
func TestResolver(t *testing.T) {
	h := newCatalogHub(t, nil)
	mine := seedShop(t, h)
	sku, gtin14 := mine[0].SKU, mine[0].GTINs[0]
	gtin13 := gtin14[1:]
	page := h.srv.URL + "/products/" + url.PathEscape(sku)

	redirects := []struct {
		name, path string
		header     map[string]string
		location   string
	}{
		{"default", "/01/" + gtin14, nil, page},
		{"zero-suppressed GTIN-13", "/01/" + gtin13, nil, page},
		{"trailing slash", "/01/" + gtin14 + "/", nil, page},
		{"serial and lot kept", "/01/" + gtin14 + "/10/LOT7/21/SN%2F42", nil, page + "?lot=LOT7&serial=SN%2F42"},
		{"qualifiers out of order", "/01/" + gtin14 + "/21/SN1/10/L1", nil, page + "?lot=L1&serial=SN1"},
		{"query passed on", "/01/" + gtin14 + "?foo=bar&17=261231", nil, page + "?17=261231&foo=bar"},
		{"linkType pip", "/01/" + gtin14 + "?linkType=gs1:pip", nil, page},
		{"linkType defaultLink as URI", "/01/" + gtin14 + "?linkType=https%3A%2F%2Fgs1.org%2Fvoc%2FdefaultLink", nil, page},
		{"linkType review", "/01/" + gtin14 + "?linkType=gs1:review", nil, page + "#reviews"},
		{"linkType we lack: default link", "/01/" + gtin14 + "?linkType=gs1:epil", nil, page},
		{"browser Accept", "/01/" + gtin14, map[string]string{"Accept": "text/html,*/*;q=0.8"}, page},
	}
	for _, tt := range redirects {
		resp, _ := fetch(t, "GET", h.srv.URL+tt.path, tt.header)
		if resp.StatusCode != http.StatusTemporaryRedirect || resp.Header.Get("Location") != tt.location {
			t.Errorf("%s: %d Location %q, want 307 %q", tt.name, resp.StatusCode, resp.Header.Get("Location"), tt.location)
		}
		link := resp.Header.Get("Link")
		if !strings.Contains(link, `rel="https://gs1.org/voc/pip"`) || !strings.Contains(link, `rel="linkset"`) || !strings.Contains(link, `title="`) {
			t.Errorf("%s: Link %q", tt.name, link)
		}
		if resp.Header.Get("Access-Control-Allow-Origin") != "*" {
			t.Errorf("%s: no CORS", tt.name)
		}
	}

	for _, tt := range []struct {
		name, path string
		header     map[string]string
	}{
		{"linkType=all", "/01/" + gtin13 + "/21/SN1?linkType=all", nil},
		{"Accept linkset", "/01/" + gtin13 + "/21/SN1", map[string]string{"Accept": "application/linkset+json"}},
	} {
		resp, body := fetch(t, "GET", h.srv.URL+tt.path, tt.header)
		if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != LinksetType {
			t.Fatalf("%s: %d %s %s", tt.name, resp.StatusCode, resp.Header.Get("Content-Type"), body)
		}
		var ls map[string][]map[string]json.RawMessage
		if err := json.Unmarshal(body, &ls); err != nil || len(ls) != 1 || len(ls["linkset"]) != 1 {
			t.Fatalf("%s: not a linkset: %v %s", tt.name, err, body)
		}
		ctx := ls["linkset"][0]
		var anchor string
		_ = json.Unmarshal(ctx["anchor"], &anchor)
		if anchor != h.srv.URL+"/01/"+gtin14+"/21/SN1" {
			t.Fatalf("%s: anchor %q", tt.name, anchor)
		}
		if _, err := gs1.ParseDigitalLink(anchor); err != nil {
			t.Fatalf("%s: anchor is not a Digital Link: %v", tt.name, err)
		}
		for _, rel := range []string{linkDefault, linkPIP, linkReview} {
			var targets []LinkTarget
			if err := json.Unmarshal(ctx[rel], &targets); err != nil || len(targets) != 1 {
				t.Fatalf("%s: %s: %s", tt.name, rel, ctx[rel])
			}
			tg := targets[0]
			if !strings.HasPrefix(tg.Href, page+"?serial=SN1") || tg.Title == "" || tg.Type != "text/html" || len(tg.HrefLang) != 1 {
				t.Fatalf("%s: %s target %+v", tt.name, rel, tg)
			}
		}
	}

	errs := []struct {
		name, path string
		code       int
		field      string
	}{
		{"bad check digit", "/01/" + gtin14[:13] + string('0'+(gtin14[13]-'0'+1)%10), 400, "uri"},
		{"not digits", "/01/ABC", 400, "uri"},
		{"dangling segment", "/01/" + gtin14 + "/foo", 400, "uri"},
		{"unknown GTIN", "/01/04006381333931", 404, "gtin"},
		{"compressed", "/ARHKVAdpQg", 400, "uri"},
	}
	for _, tt := range errs {
		resp, body := fetch(t, "GET", h.srv.URL+tt.path, nil)
		var m map[string]string
		_ = json.Unmarshal(body, &m)
		if resp.StatusCode != tt.code || m["field"] != tt.field || m["error"] == "" {
			t.Errorf("%s: %d %s, want %d field %s", tt.name, resp.StatusCode, body, tt.code, tt.field)
		}
	}
	// A browser gets the errors as a page.
	resp, body := fetch(t, "GET", h.srv.URL+"/01/04006381333931", map[string]string{"Accept": "text/html"})
	if resp.StatusCode != 404 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") || !strings.Contains(string(body), "not in our catalog") {
		t.Fatalf("404 page: %d %s", resp.StatusCode, body)
	}
	resp, _ = fetch(t, "OPTIONS", h.srv.URL+"/01/"+gtin14, map[string]string{"Origin": "https://x.example", "Access-Control-Request-Method": "GET"})
	if resp.StatusCode != 204 || !strings.Contains(resp.Header.Get("Access-Control-Allow-Methods"), "HEAD") {
		t.Fatalf("OPTIONS: %d %v", resp.StatusCode, resp.Header)
	}
	resp, _ = fetch(t, "HEAD", h.srv.URL+"/01/"+gtin14, nil)
	if resp.StatusCode != 307 {
		t.Fatalf("HEAD: %d", resp.StatusCode)
	}
	// The dashboard still owns "/".
	if resp, body := fetch(t, "GET", h.srv.URL+"/", nil); resp.StatusCode != 200 || string(body) != "dashboard" {
		t.Fatalf("/: %d %s", resp.StatusCode, body)
	}
}

// Ensure that PublicURL, not the request's host, makes the anchor and links.
func TestResolver_PublicURL(t *testing.T) {
	h := newCatalogHub(t, func(o *Options) { o.PublicURL = "https://shop.example.com/" })
	mine := seedShop(t, h)
	resp, _ := fetch(t, "GET", h.srv.URL+"/01/"+mine[0].GTINs[0], nil)
	if loc := resp.Header.Get("Location"); loc != "https://shop.example.com/products/"+mine[0].SKU {
		t.Fatalf("Location %q", loc)
	}
}

// Ensure that a shopper who scans a shelf tag's Digital Link sees, on a
// phone-sized screen, the product, its sizes with stock online and nearby,
// the serial from the tag, and the reviews.
func TestProductPage(t *testing.T) {
	h := newCatalogHub(t, nil)
	mine := seedShop(t, h)
	ctx := testkit.Browser(t)
	scan := h.srv.URL + "/01/" + mine[0].GTINs[0][1:] + "/21/SN-7"
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(390, 844), chromedp.Navigate(scan), chromedp.WaitVisible("#product-name")); err != nil {
		t.Fatal(err)
	}
	text := func(sel string) string {
		t.Helper()
		s, err := chromedp.Run(ctx, chromedp.Text(sel))
		if err != nil {
			t.Fatalf("%s: %v", sel, err)
		}
		return s
	}
	loc, err := chromedp.Run(ctx, chromedp.Evaluate[string](`location.pathname + location.search`))
	if err != nil || loc != "/products/"+mine[0].SKU+"?serial=SN-7" {
		t.Fatalf("landed on %q %v", loc, err)
	}
	if got := text("#product-name"); got != mine[0].Name {
		t.Fatalf("name %q, want %q", got, mine[0].Name)
	}
	if got := text("#serial"); got != "SN-7" {
		t.Fatalf("serial %q", got)
	}
	if got := text("#online"); got != "7 available online" {
		t.Fatalf("online %q", got)
	}
	if got := text("#nearby"); !strings.Contains(got, "In 1 nearby store") {
		t.Fatalf("nearby %q", got)
	}
	if got := text("#availability"); !strings.Contains(got, "store-1") || strings.Contains(got, "store-2") {
		t.Fatalf("availability %q (store-2 has none of this size)", got)
	}
	sel := text(".chip.sel")
	if !strings.Contains(sel, mine[0].Size) || !strings.Contains(sel, "7 online · 1 store") {
		t.Fatalf("selected chip %q", sel)
	}
	if n, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll('#variants .chip').length`)); err != nil || n != len(mine) {
		t.Fatalf("%d chips, want %d (%v)", n, len(mine), err)
	}
	if got := text("#rating"); !strings.Contains(got, "4.5") || !strings.Contains(got, "2 reviews") {
		t.Fatalf("rating %q", got)
	}
	if got := text("#reviews"); !strings.Contains(got, "Lovely fit") || !strings.Contains(got, "Ana · store-1") {
		t.Fatalf("reviews %q", got)
	}
	// Readable on a phone: nothing wider than the screen, text not tiny.
	fits, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`document.documentElement.scrollWidth <= window.innerWidth`))
	if err != nil || !fits {
		t.Fatalf("page wider than a 390px screen (%v)", err)
	}
	px, err := chromedp.Run(ctx, chromedp.Evaluate[float64](`parseFloat(getComputedStyle(document.querySelector('#product-name')).fontSize)`))
	if err != nil || px < 18 {
		t.Fatalf("title font %vpx (%v)", px, err)
	}
	// Another size is one tap away.
	other := "#variants .chip[data-sku='" + mine[1].SKU + "'] a"
	if err := chromedp.Do(ctx, chromedp.Click(other), chromedp.WaitVisible(".chip.sel[data-sku='"+mine[1].SKU+"']")); err != nil {
		t.Fatal(err)
	}
	if got := text("#nearby"); !strings.Contains(got, "In 1 nearby store") || !strings.Contains(text("#availability"), "store-2") {
		t.Fatalf("other size: nearby %q", got)
	}
	// An unknown SKU is a page too.
	if err := chromedp.Do(ctx, chromedp.Navigate(h.srv.URL+"/products/NOPE"), chromedp.WaitVisible("#message")); err != nil {
		t.Fatal(err)
	}
	if got := text("#message"); !strings.Contains(got, "NOPE") {
		t.Fatalf("404 page %q", got)
	}
}
