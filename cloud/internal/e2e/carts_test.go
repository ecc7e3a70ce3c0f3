package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/creack/pty"

	"github.com/omnisync/omnisync/cloud/internal/hub"
	"github.com/omnisync/omnisync/shared/testkit"
)

// hubDo sends a JSON request to the hub (as the admin) and decodes the
// answer; it returns the status.
func hubDo(t testing.TB, method, u, body string, out any) int {
	t.Helper()
	req, _ := http.NewRequest(method, u, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	resp, err := httpClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if out != nil {
		_ = json.Unmarshal(b, out)
	}
	return resp.StatusCode
}

type e2eCart struct {
	CartID  string `json:"cart_id"`
	Version int64  `json:"version"`
	Closed  bool   `json:"closed"`
	Lines   []struct {
		SKU string
		Qty int64
	}
	Checkout *struct {
		Store   string `json:"store"`
		SaleID  string `json:"sale_id"`
		Version int64  `json:"version"`
	} `json:"checkout"`
	Reservations []struct{ State string } `json:"reservations"`
}

// Ensure the shopper's cart travels from the web shop to the till by QR:
// the phone page (Chromium) shows the code; a pty scanner reads it into a
// real agent's till, which shows the cart (Chromium) and checks it out as a
// sale linked to the cart; the hub's books and the cart agree; a second
// checkout of the same code is refused at the till and at the hub. Then the
// same with NATS cut at the store: the till verifies the code offline and
// the hub reconciles once the store is back. Last, a reserve-on-cart hold
// expires and the stock comes back at the hub and in the store's cache.
func TestCartQRToTill(t *testing.T) {
	t.Parallel()
	ns := testkit.StartNATS(t)
	h := startHubWith(t, ns.URL(), func(c *hub.Config) { c.CartReserve = "web=cart:3s" })
	catalog, err := os.ReadFile(sampleCatalog)
	if err != nil {
		t.Fatal(err)
	}
	importCatalog(t, h.URL, catalog)
	var skus []string
	for _, line := range strings.SplitN(string(catalog), "\n", 4)[:3] {
		var v struct{ SKU string }
		json.Unmarshal([]byte(line), &v)
		skus = append(skus, v.SKU)
	}

	// The store: a till agent behind a link we can cut, with a scanner on
	// a pty.
	link := testkit.StartProxy(t, fmt.Sprintf("127.0.0.1:%d", ns.Port))
	master, slave, err := pty.Open()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { master.Close(); slave.Close() })
	dir := t.TempDir()
	profiles, _ := filepath.Abs("../../../firmware-configs")
	cfg := filepath.Join(dir, "agent.yaml")
	os.WriteFile(cfg, []byte(fmt.Sprintf("devices:\n  - name: scanner-1\n    port: %s\n    profile: generic-line-scanner\n", slave.Name())), 0o600)
	a := startAgent(t, "S1", "till-1", "nats://"+link.Addr(), "--config", cfg, "--profiles", profiles, "--log-level", "warn")
	browser := testkit.Browser(t)

	checkoutAtTill := func(t *testing.T, offline bool) {
		var c e2eCart
		body := fmt.Sprintf(`{"lines":[{"sku":%q,"qty":2,"unit_price":11495},{"sku":%q,"qty":1,"unit_price":11495}]}`, skus[0], skus[1])
		if st := hubDo(t, "POST", h.URL+"/v1/carts", body, &c); st != 201 {
			t.Fatalf("create cart: %d", st)
		}
		// The phone page shows the QR; read the code it carries.
		if err := chromedp.Do(browser, chromedp.Navigate(h.URL+"/carts/"+c.CartID), chromedp.WaitVisible("#cart-qr svg")); err != nil {
			t.Fatalf("phone page: %v", err)
		}
		attr, err := chromedp.Run(browser, chromedp.AttributeValue("#cart-qr", "data-code"))
		code := attr.Value
		if err != nil || !strings.HasPrefix(code, "OC1:") {
			t.Fatalf("phone page: %v %q", err, code)
		}
		// The hub's key reaches the store (down-sync) before the cut.
		testkit.Eventually(t, 20*time.Second, func() bool {
			return getJSON(t, a.URL+"/v1/carts/"+url.PathEscape(code), nil) == 200
		}, "agent verifies the code")
		before := onHand(t, h.URL, skus[0])["S1"]
		if offline {
			link.Cut()
			defer link.Heal()
		}
		// The scanner reads the phone's QR (AIM ]Q1, CR LF).
		if _, err := master.Write([]byte("]Q1" + code + "\r\n")); err != nil {
			t.Fatal(err)
		}
		var till struct {
			CartID  string `json:"cart_id"`
			Version int64
		}
		testkit.Eventually(t, 10*time.Second, func() bool {
			return getJSON(t, a.URL+"/v1/carts/scanned", &till) == 200 && till.CartID == c.CartID
		}, "till loaded the scanned cart: %+v", till)
		// The till page shows it; check out.
		if err := chromedp.Do(browser, chromedp.Navigate(a.URL+"/till/"), chromedp.WaitVisible("#cart")); err != nil {
			t.Fatalf("till page: %v", err)
		}
		shown, err := chromedp.Run(browser, chromedp.Text("#lines"))
		if err != nil || !strings.Contains(shown, skus[0]) || !strings.Contains(shown, skus[1]) {
			t.Fatalf("till page shows %q: %v", shown, err)
		}
		if err := chromedp.Do(browser, chromedp.Click("#checkout"), chromedp.WaitVisible("#sold")); err != nil {
			t.Fatalf("till checkout: %v", err)
		}
		if sold, err := chromedp.Run(browser, chromedp.Text("#sold")); err != nil || !strings.HasPrefix(sold, "Sold: ") {
			t.Fatalf("till after checkout: %q %v", sold, err)
		}
		// Once only at this till.
		resp, err := httpClient.Post(a.URL+"/v1/carts/"+url.PathEscape(code)+"/checkout", "application/json", strings.NewReader("{}"))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusConflict {
			t.Fatalf("second checkout at the till: %d", resp.StatusCode)
		}
		if offline {
			time.Sleep(500 * time.Millisecond)
			if hubDo(t, "GET", h.URL+"/v1/carts/"+c.CartID, "", &c); c.Closed {
				t.Fatal("the hub heard of the checkout through a cut link")
			}
			link.Heal()
		}
		// The hub's books and the cart agree.
		testkit.Eventually(t, 30*time.Second, func() bool {
			hubDo(t, "GET", h.URL+"/v1/carts/"+c.CartID, "", &c)
			return c.Closed && c.Checkout != nil
		}, "hub: cart closed: %+v", c)
		if c.Checkout.Store != "S1" || c.Checkout.Version != till.Version {
			t.Fatalf("checkout at the hub: %+v", c.Checkout)
		}
		testkit.Eventually(t, 30*time.Second, func() bool {
			return onHand(t, h.URL, skus[0])["S1"] == before-2
		}, "hub: the sale of the cart's lines")
		if st := hubDo(t, "POST", h.URL+"/v1/carts/"+c.CartID+"/checkout", "{}", nil); st != http.StatusConflict {
			t.Fatalf("web checkout of a cart sold at the till: %d", st)
		}
	}
	t.Run("online", func(t *testing.T) { checkoutAtTill(t, false) })
	t.Run("nats_down_at_store", func(t *testing.T) { checkoutAtTill(t, true) })

	// QR to till at the store: from the scanner's last byte to the till's
	// answer, over many scans.
	t.Run("qr_to_till_latency", func(t *testing.T) {
		var c e2eCart
		body := `{"lines":[`
		for i := range 10 {
			if i > 0 {
				body += ","
			}
			body += fmt.Sprintf(`{"sku":"SKU-%06d-M","qty":%d,"unit_price":%d}`, 100200+37*i, 1+i%3, 1999+500*i)
		}
		hubDo(t, "POST", h.URL+"/v1/carts", body+"]}", &c)
		var qr struct {
			Code      string `json:"code"`
			QRVersion int    `json:"qr_version"`
			Modules   int    `json:"qr_modules"`
		}
		hubDo(t, "GET", h.URL+"/v1/carts/"+c.CartID+"/qr", "", &qr)
		t.Logf("10-line cart: code %d characters, QR version %d-M (%dx%d modules)", len(qr.Code), qr.QRVersion, qr.Modules, qr.Modules)
		var lat []time.Duration
		for i := range 50 {
			text := qr.Code
			if i%2 == 1 {
				text = "]Q1" + text // with and without the AIM identifier
			}
			start := time.Now()
			if _, err := master.Write([]byte(text + "\r\n")); err != nil {
				t.Fatal(err)
			}
			for {
				var got struct {
					CartID    string    `json:"cart_id"`
					ScannedAt time.Time `json:"scanned_at"`
				}
				if getJSON(t, a.URL+"/v1/carts/scanned", &got) == 200 && got.CartID == c.CartID && !got.ScannedAt.Before(start.Truncate(time.Millisecond)) {
					break
				}
				if time.Since(start) > 5*time.Second {
					t.Fatal("scan never reached the till")
				}
				time.Sleep(200 * time.Microsecond)
			}
			lat = append(lat, time.Since(start))
		}
		slices.Sort(lat)
		t.Logf("QR to till: p50 %v, p99 %v, max %v over %d scans", lat[len(lat)/2], lat[len(lat)*99/100], lat[len(lat)-1], len(lat))
	})

	// A reserve-on-cart hold expires: the stock comes back at the hub and
	// in the store's cache (the online location, which every store shows).
	t.Run("hold_expires", func(t *testing.T) {
		var c e2eCart
		sku := skus[2]
		// The online warehouse receives 10.
		wh := startAgent(t, "online", "wh-1", ns.URL(), "--log-level", "warn")
		if st, _, err := post(wh.URL, fmt.Sprintf(`{"kind":"receipt","data":{"lines":[{"sku":%q,"qty":10}]}}`, sku)); err != nil || st != 202 {
			t.Fatalf("receipt: %d %v", st, err)
		}
		storeOnline := func() int64 {
			_, v := lookup(t, a.URL, sku)
			_, _, online, _ := level(v, sku)
			return online
		}
		testkit.Eventually(t, 20*time.Second, func() bool { return storeOnline() == 10 }, "store cache: online available 10")
		hubDo(t, "POST", h.URL+"/v1/carts", fmt.Sprintf(`{"lines":[{"sku":%q,"qty":2}]}`, sku), &c)
		if len(c.Reservations) != 1 || c.Reservations[0].State != "active" {
			t.Fatalf("hold: %+v", c)
		}
		testkit.Eventually(t, 20*time.Second, func() bool { return storeOnline() == 8 }, "store cache: online available 8")
		if r := reservedAt(t, h.URL, sku, "online"); r != 2 {
			t.Fatalf("hub reserved %d", r)
		}
		testkit.Eventually(t, 30*time.Second, func() bool { return reservedAt(t, h.URL, sku, "online") == 0 }, "hub: hold released")
		testkit.Eventually(t, 20*time.Second, func() bool { return storeOnline() == 10 }, "store cache: online stock back")
		hubDo(t, "GET", h.URL+"/v1/carts/"+c.CartID, "", &c)
		if c.Reservations[0].State != "released" {
			t.Fatalf("hold after expiry: %+v", c.Reservations)
		}
	})
}

func reservedAt(t testing.TB, hubURL, sku, loc string) int64 {
	var s struct {
		Locations []struct {
			Location string
			Reserved int64
		}
	}
	getJSON(t, hubURL+"/v1/inventory/"+url.PathEscape(sku), &s)
	for _, l := range s.Locations {
		if l.Location == loc {
			return l.Reserved
		}
	}
	return 0
}

// Ensure that one cart code checked out at two stores' tills while both
// are cut off from NATS (each verifies the code offline and sells) ends,
// once both are back, as one checkout that closed the cart and one
// conflict for HQ on the cart (both sales stand: the goods left both
// stores), never a web order besides: the web shop's checkout of it is
// refused.
func TestCartCheckedOutAtTwoStoresOffline(t *testing.T) {
	t.Parallel()
	ns, h, sku := startSampleHub(t)

	type till struct {
		store string
		link  *testkit.Proxy
		a     *agent
	}
	var tills []till
	for _, store := range []string{"S1", "S2"} {
		link := testkit.StartProxy(t, fmt.Sprintf("127.0.0.1:%d", ns.Port))
		tills = append(tills, till{store, link, startAgent(t, store, "till-1", "nats://"+link.Addr(), "--log-level", "warn")})
	}
	var c e2eCart
	if st := hubDo(t, "POST", h.URL+"/v1/carts", fmt.Sprintf(`{"lines":[{"sku":%q,"qty":1,"unit_price":2500}]}`, sku), &c); st != 201 {
		t.Fatalf("create cart: %d", st)
	}
	var qr struct {
		Code string `json:"code"`
	}
	if st := hubDo(t, "GET", h.URL+"/v1/carts/"+c.CartID+"/qr", "", &qr); st != 200 || qr.Code == "" {
		t.Fatalf("cart code: %d", st)
	}
	// Both stores have the hub's key before they are cut off.
	for _, tl := range tills {
		testkit.Eventually(t, 20*time.Second, func() bool {
			return getJSON(t, tl.a.URL+"/v1/carts/"+url.PathEscape(qr.Code), nil) == 200
		}, "%s verifies the code", tl.store)
		tl.link.Cut()
	}
	before := onHand(t, h.URL, sku)
	sales := map[string]string{}
	for _, tl := range tills {
		resp, err := httpClient.Post(tl.a.URL+"/v1/carts/"+url.PathEscape(qr.Code)+"/checkout", "application/json", strings.NewReader("{}"))
		if err != nil {
			t.Fatal(err)
		}
		var sale struct {
			SaleID string `json:"sale_id"`
		}
		json.NewDecoder(resp.Body).Decode(&sale)
		resp.Body.Close()
		if resp.StatusCode != http.StatusCreated || sale.SaleID == "" {
			t.Fatalf("offline checkout at %s: %d", tl.store, resp.StatusCode)
		}
		sales[tl.store] = sale.SaleID
	}
	time.Sleep(300 * time.Millisecond)
	if hubDo(t, "GET", h.URL+"/v1/carts/"+c.CartID, "", &c); c.Closed {
		t.Fatal("the hub heard of a checkout through a cut link")
	}
	for _, tl := range tills {
		tl.link.Heal()
	}
	var got struct {
		e2eCart
		Conflicts []struct {
			Store  string `json:"store"`
			SaleID string `json:"sale_id"`
		} `json:"conflicts"`
	}
	testkit.Eventually(t, 30*time.Second, func() bool {
		hubDo(t, "GET", h.URL+"/v1/carts/"+c.CartID, "", &got)
		return got.Closed && got.Checkout != nil && len(got.Conflicts) == 1
	}, "hub: one checkout and one conflict: %+v", got)
	// Each names the sale by the cart (the till's sale carries it as its
	// order id): the stores tell them apart.
	first, second := got.Checkout, got.Conflicts[0]
	if first.Store == second.Store || first.SaleID != "cart-"+c.CartID || second.SaleID != first.SaleID {
		t.Fatalf("checkout %+v, conflict %+v, sales %v", first, second, sales)
	}
	// Both tills' sales happened and are in the books: the goods left
	// both stores (the conflict is HQ's to settle with the shopper).
	testkit.Eventually(t, 30*time.Second, func() bool {
		now := onHand(t, h.URL, sku)
		return now["S1"] == before["S1"]-1 && now["S2"] == before["S2"]-1
	}, "hub: both stores' sales")
	if st := hubDo(t, "POST", h.URL+"/v1/carts/"+c.CartID+"/checkout", "{}", nil); st != http.StatusConflict {
		t.Fatalf("web checkout of a cart sold at two tills: %d", st)
	}
}

// Ensure that a cart closes everywhere the stores can know of it: a code
// whose cart the web shop checked out is refused at a till (once the
// hub's down-sync has told the store), with a clear reason and no sale,
// and so is a code checked out at another store's till; the hub's books
// hold one checkout of each, and no conflict.
func TestCartClosedElsewhereRefusedAtTill(t *testing.T) {
	t.Parallel()
	ns, h, sku := startSampleHub(t)
	s1 := startAgent(t, "S1", "till-1", ns.URL(), "--log-level", "warn")
	s2 := startAgent(t, "S2", "till-1", ns.URL(), "--log-level", "warn")

	newCode := func() (string, string) {
		var c e2eCart
		if st := hubDo(t, "POST", h.URL+"/v1/carts", fmt.Sprintf(`{"lines":[{"sku":%q,"qty":1,"unit_price":2500}]}`, sku), &c); st != 201 {
			t.Fatalf("create cart: %d", st)
		}
		var qr struct {
			Code string `json:"code"`
		}
		if st := hubDo(t, "GET", h.URL+"/v1/carts/"+c.CartID+"/qr", "", &qr); st != 200 || qr.Code == "" {
			t.Fatalf("cart code: %d", st)
		}
		return c.CartID, qr.Code
	}
	tillSays := func(a *agent, code string) (int, string) {
		resp, err := httpClient.Get(a.URL + "/v1/carts/" + url.PathEscape(code))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	checkoutAt := func(a *agent, code string) int {
		resp, err := httpClient.Post(a.URL+"/v1/carts/"+url.PathEscape(code)+"/checkout", "application/json", strings.NewReader("{}"))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}

	// Checked out on the web: the till learns of it and refuses the code.
	webCart, webCode := newCode()
	testkit.Eventually(t, 20*time.Second, func() bool { st, _ := tillSays(s1, webCode); return st == 200 }, "S1 verifies the code")
	before := onHand(t, h.URL, sku)
	if st := hubDo(t, "POST", h.URL+"/v1/carts/"+webCart+"/checkout", "{}", nil); st != 201 {
		t.Fatalf("web checkout: %d", st)
	}
	start := time.Now()
	var body string
	testkit.Eventually(t, 20*time.Second, func() bool {
		var st int
		st, body = tillSays(s1, webCode)
		return st == http.StatusConflict
	}, "S1 refuses the code of a cart checked out online")
	t.Logf("web checkout to refusal at the till: %v", time.Since(start).Round(time.Millisecond))
	if !strings.Contains(body, "checked out online") {
		t.Fatalf("refusal: %s", body)
	}
	if st := checkoutAt(s1, webCode); st != http.StatusConflict {
		t.Fatalf("till checkout of a cart checked out online: %d", st)
	}

	// Checked out at S1's till: S2's till refuses it.
	tillCart, tillCode := newCode()
	testkit.Eventually(t, 20*time.Second, func() bool { st, _ := tillSays(s2, tillCode); return st == 200 }, "S2 verifies the code")
	if st := checkoutAt(s1, tillCode); st != http.StatusCreated {
		t.Fatalf("checkout at S1: %d", st)
	}
	testkit.Eventually(t, 30*time.Second, func() bool {
		var st int
		st, body = tillSays(s2, tillCode)
		return st == http.StatusConflict
	}, "S2 refuses the code of a cart checked out at S1")
	if !strings.Contains(body, "at store S1") || checkoutAt(s2, tillCode) != http.StatusConflict {
		t.Fatalf("refusal at S2: %s", body)
	}

	// The books: S1 sold the till's cart once, nothing else was sold at a
	// till, and neither cart has a conflict.
	testkit.Eventually(t, 30*time.Second, func() bool {
		now := onHand(t, h.URL, sku)
		return now["S1"] == before["S1"]-1
	}, "hub: S1's sale")
	time.Sleep(time.Second)
	if now := onHand(t, h.URL, sku); now["S1"] != before["S1"]-1 || now["S2"] != before["S2"] {
		t.Fatalf("on hand %v, before %v", now, before)
	}
	for _, id := range []string{webCart, tillCart} {
		var got struct {
			e2eCart
			Conflicts []any `json:"conflicts"`
		}
		hubDo(t, "GET", h.URL+"/v1/carts/"+id, "", &got)
		if !got.Closed || len(got.Conflicts) != 0 {
			t.Fatalf("cart %s at the hub: %+v", id, got)
		}
	}
}

// startSampleHub starts NATS and a hub with the sample catalog, and
// returns the catalog's first SKU.
func startSampleHub(t *testing.T) (*testkit.NATS, *inProcessHub, string) {
	t.Helper()
	ns := testkit.StartNATS(t)
	h := startHubWith(t, ns.URL(), nil)
	catalog, err := os.ReadFile(sampleCatalog)
	if err != nil {
		t.Fatal(err)
	}
	importCatalog(t, h.URL, catalog)
	var v struct{ SKU string }
	if err := json.Unmarshal([]byte(strings.SplitN(string(catalog), "\n", 2)[0]), &v); err != nil {
		t.Fatal(err)
	}
	return ns, h, v.SKU
}
