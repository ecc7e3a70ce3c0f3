package e2e

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/creack/pty"

	"github.com/omnisync/omnisync/shared/downsync"
	"github.com/omnisync/omnisync/shared/testkit"
)

const sampleCatalog = "../catalog/testdata/sample-catalog.jsonl"

// importCatalog posts a JSON Lines catalog to the hub, all or nothing.
func importCatalog(t testing.TB, hubURL string, body []byte) {
	t.Helper()
	resp, err := httpClient.Post(hubURL+"/v1/catalog/import?format=jsonl&mode=all&source=test", "application/x-ndjson", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("catalog import: %s", resp.Status)
	}
}

// lookup asks the agent for a product; it returns the status and the view.
func lookup(t testing.TB, agentURL, code string) (int, downsync.View) {
	t.Helper()
	var v downsync.View
	st := getJSON(t, agentURL+"/v1/products/"+url.PathEscape(code), &v)
	return st, v
}

func level(v downsync.View, sku string) (here, nearby, online int64, ok bool) {
	for _, vv := range v.Variants {
		if vv.SKU != sku {
			continue
		}
		here, nearby, online = -1, -1, -1
		if vv.Stock.Here != nil {
			here = vv.Stock.Here.Available
		}
		for _, n := range vv.Stock.Nearby {
			if n.Location == "S2" {
				nearby = n.Available
			}
		}
		if vv.Stock.Online != nil {
			online = vv.Stock.Online.Available
		}
		return here, nearby, online, true
	}
	return 0, 0, 0, false
}

// Ensure that the catalog imported at the hub, and stock changed by other
// stores and the online warehouse, reach a store's cache and its product
// lookup; that lookups keep answering from the cache (with the old as_of)
// while NATS is down; and that the store catches up with what changed while
// it was away.
func TestDownSyncToStore(t *testing.T) {
	t.Parallel()
	ns := testkit.StartNATS(t)
	h := startHub(t, ns.URL(), "")
	body, err := os.ReadFile(sampleCatalog)
	if err != nil {
		t.Fatal(err)
	}
	importCatalog(t, h.URL, body)
	const sku, gtin, product = "FTW-000001-NVY-42", "05012302000003", "FTW-000001"

	s1 := startAgent(t, "S1", "kiosk-1", ns.URL(), "--nearby", "S2", "--online-location", "online", "--stale-after", "3s")
	s2 := startAgent(t, "S2", "pos-1", ns.URL())
	web := startAgent(t, "online", "web-1", ns.URL())

	// The catalog arrives: every way of writing the code finds the product.
	var v downsync.View
	testkit.Eventually(t, 30*time.Second, func() bool {
		st, got := lookup(t, s1.URL, gtin[1:])
		v = got
		return st == http.StatusOK
	}, "catalog at the edge")
	if v.Product.ID != product || v.Selected != sku || len(v.Variants) < 2 {
		t.Fatalf("view = %+v", v)
	}
	for _, code := range []string{sku, gtin, "(01)" + gtin + "(21)XYZ", "https://id.example.com/01/" + gtin + "/21/XYZ"} {
		if st, got := lookup(t, s1.URL, code); st != http.StatusOK || got.Selected != sku {
			t.Fatalf("lookup %q: %d %+v", code, st, got.Match)
		}
	}
	if st, _ := lookup(t, s1.URL, "5012302000004"); st != http.StatusBadRequest {
		t.Fatalf("wrong check digit: %d", st)
	}
	if st, _ := lookup(t, s1.URL, "4006381333931"); st != http.StatusNotFound {
		t.Fatalf("unknown GTIN: %d", st)
	}

	// Stock from this store, a nearby store and the online warehouse.
	start := time.Now()
	mustPost(t, s1.URL, receiptBody(sku, 3))
	mustPost(t, s2.URL, receiptBody(sku, 7))
	mustPost(t, web.URL, receiptBody(sku, 5))
	testkit.Eventually(t, 30*time.Second, func() bool {
		_, got := lookup(t, s1.URL, gtin)
		here, nearby, online, _ := level(got, sku)
		return here == 3 && nearby == 7 && online == 5
	}, "stock here/nearby/online at S1")
	t.Logf("stock from three stores visible at S1 %v after the receipts", time.Since(start).Round(time.Millisecond))

	// One sale at S2 while S1 watches: measure how long it takes to show.
	start = time.Now()
	mustPost(t, s2.URL, saleBody(sku, 2))
	testkit.Eventually(t, 10*time.Second, func() bool {
		_, got := lookup(t, s1.URL, gtin)
		_, nearby, _, _ := level(got, sku)
		return nearby == 5
	}, "S2's sale seen at S1")
	t.Logf("a sale at S2 reached S1's cache in %v (POS 202 -> hub -> bucket -> cache)", time.Since(start).Round(time.Millisecond))

	// NATS down: lookups still answer, from the cache, with the old as_of,
	// and say the stock may be stale.
	_, before := lookup(t, s1.URL, gtin)
	ns.Stop()
	testkit.Eventually(t, 20*time.Second, func() bool {
		st, got := lookup(t, s1.URL, gtin)
		return st == http.StatusOK && got.Stale
	}, "stale while NATS is down")
	st, during := lookup(t, s1.URL, gtin)
	if st != http.StatusOK || during.AsOf.Before(before.AsOf) || time.Since(during.AsOf) < 2*time.Second {
		t.Fatalf("offline lookup: %d as_of %v (before %v)", st, during.AsOf, before.AsOf)
	}
	if _, nearby, _, _ := level(during, sku); nearby != 5 {
		t.Fatalf("offline stock changed: %+v", during.Variants)
	}
	ns.Restart()

	// S1 away (killed) while S2 sells and HQ reprices: it catches up.
	s1.Kill()
	mustPost(t, s2.URL, saleBody(sku, 1))
	repriced := bytes.Replace(body[:bytes.IndexByte(body, '\n')+1], []byte(`"price":114.95`), []byte(`"price":99.00`), 1)
	importCatalog(t, h.URL, repriced)
	s1.Start()
	testkit.Eventually(t, 30*time.Second, func() bool {
		_, got := lookup(t, s1.URL, gtin)
		_, nearby, _, _ := level(got, sku)
		price := int64(0)
		for _, vv := range got.Variants {
			if vv.SKU == sku {
				price = vv.PriceMinor
			}
		}
		return nearby == 4 && price == 9900 && !got.Stale
	}, "S1 caught up after restart")
	var status map[string]any
	getJSON(t, s1.URL+"/v1/status", &status)
	t.Logf("S1 down-sync status after catch-up: %v", status["downsync"])
}

// Ensure that a shopper at a kiosk scans a product on the store's scanner
// (a pty) and sees it without touching the screen, and that her review,
// sent through the page, reaches the hub's summary and comes back down to
// the kiosk.
func TestKioskScanAndReview(t *testing.T) {
	t.Parallel()
	ns := testkit.StartNATS(t)
	h := startHub(t, ns.URL(), "")
	body, err := os.ReadFile(sampleCatalog)
	if err != nil {
		t.Fatal(err)
	}
	importCatalog(t, h.URL, body)
	const sku, gtin, product, name = "FTW-000001-NVY-42", "05012302000003", "FTW-000001", "Waterproof Suede Loafers"

	master, slave, err := pty.Open()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { master.Close(); slave.Close() })
	dir := t.TempDir()
	profiles, err := filepath.Abs("../../../firmware-configs")
	if err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "agent.yaml")
	yaml := fmt.Sprintf("devices:\n  - name: scanner-1\n    port: %s\n    profile: generic-line-scanner\n", slave.Name())
	if err := os.WriteFile(cfg, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	a := startAgent(t, "S1", "kiosk-1", ns.URL(), "--config", cfg, "--profiles", profiles)
	testkit.Eventually(t, 30*time.Second, func() bool { st, _ := lookup(t, a.URL, sku); return st == http.StatusOK }, "catalog at the edge")

	ctx := testkit.Browser(t)
	if err := chromedp.Do(ctx, chromedp.Navigate(a.URL+"/kiosk/"), chromedp.WaitVisible("#code")); err != nil {
		t.Fatal(err)
	}
	// The page listens to the scan stream; give it a moment to subscribe,
	// then scan on the real serial port.
	time.Sleep(500 * time.Millisecond)
	if _, err := master.Write([]byte("]E0" + gtin[1:] + "\r\n")); err != nil {
		t.Fatal(err)
	}
	wctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	err = chromedp.Do(wctx, chromedp.WaitVisible(`a.tile[data-sku="`+sku+`"][aria-current="true"]`))
	cancel()
	if err != nil {
		t.Fatalf("scanned product not shown: %v", err)
	}
	if got, err := chromedp.Run(ctx, chromedp.Text("#name")); err != nil || got != name {
		t.Fatalf("product name %q, %v", got, err)
	}

	err = chromedp.Do(ctx,
		chromedp.Click("#rating-5 + span"),
		chromedp.SendKeys("#rv-title", "Dry feet all winter"),
		chromedp.SendKeys("#rv-text", "Wore them through a week of rain."),
		chromedp.SendKeys("#rv-nick", "Sam"),
		chromedp.Click("#send-review"),
		chromedp.WaitVisible("#thanks"))
	if err != nil {
		t.Fatalf("review form: %v", err)
	}

	// The review travels: outbox -> NATS -> hub, where it waits for a
	// moderator; once published, summarised -> down-sync bucket -> this
	// kiosk's cache.
	var queue struct {
		Reviews []struct {
			EventID string `json:"event_id"`
		} `json:"reviews"`
	}
	testkit.Eventually(t, 30*time.Second, func() bool {
		return getJSON(t, h.URL+"/v1/reviews?status=pending", &queue) == http.StatusOK && len(queue.Reviews) == 1
	}, "the review waiting for a moderator")
	hubCall(t, http.MethodPost, h.URL+"/v1/reviews/"+queue.Reviews[0].EventID+"/moderation", `{"action":"approve"}`, http.StatusOK)
	var hv downsync.View
	testkit.Eventually(t, 30*time.Second, func() bool {
		getJSON(t, h.URL+"/v1/products/"+sku, &hv)
		return hv.Reviews.Count == 1
	}, "review in the hub's summary")
	if hv.Reviews.Average != 5 || len(hv.Reviews.Latest) != 1 || hv.Reviews.Latest[0].Nickname != "Sam" || hv.Product.ID != product {
		t.Fatalf("hub summary %+v", hv.Reviews)
	}
	testkit.Eventually(t, 30*time.Second, func() bool {
		_, v := lookup(t, a.URL, gtin)
		return v.Reviews.Count == 1
	}, "review summary back at the kiosk")
}
