package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/omnisync/omnisync/shared/testkit"
)

// reviewSummary is the review part of the hub's product view.
func reviewCount(t testing.TB, hubURL, sku string) int {
	var v struct {
		Reviews struct {
			Count int `json:"count"`
		} `json:"reviews"`
	}
	if getJSON(t, hubURL+"/v1/products/"+sku, &v) != http.StatusOK {
		return -1
	}
	return v.Reviews.Count
}

// Ensure that, by default, a shopper's review waits for a moderator: it
// is not in the product's summary until a moderator, logged in to the
// hub's moderation page in a real browser, publishes it; that a
// moderator can take it down again through the API; and that an analyst
// may read the queue but not decide.
func TestReviewModerationInBrowser(t *testing.T) {
	t.Parallel()
	testkit.Chromium(t)
	ns := testkit.StartNATS(t)
	h := startHub(t, ns.URL(), "")
	const sku, product = "SKU-MOD-1", "PROD-MOD"
	importCatalog(t, h.URL, []byte(`{"sku":"`+sku+`","product_id":"`+product+`","gtins":["05012302000003"],"name":"Linen shirt","brand":"Acme","size":"M","colour":"White","price":49.00,"currency":"EUR"}`+"\n"))
	a := startAgent(t, "S1", "kiosk-1", ns.URL())
	mustPost(t, a.URL, fmt.Sprintf(`{"kind":"review","data":{"product_id":%q,"sku":%q,"rating":4,"title":"Good fit","text":"Runs true to size","nickname":"Ana","session":"visit-1"}}`, product, sku))
	waitDrained(t, a, 20*time.Second)

	var queue struct {
		Reviews []struct {
			EventID string `json:"event_id"`
			Status  string `json:"status"`
		} `json:"reviews"`
	}
	testkit.Eventually(t, 10*time.Second, func() bool {
		return getJSON(t, h.URL+"/v1/reviews?status=pending", &queue) == http.StatusOK && len(queue.Reviews) == 1
	}, "the review waiting for a moderator")
	id := queue.Reviews[0].EventID
	if n := reviewCount(t, h.URL, sku); n != 0 {
		t.Fatalf("a pending review counts in the summary: %d", n)
	}

	hubCall(t, http.MethodPost, h.URL+"/v1/users", `{"name":"mo","role":"moderator","password":"moderate the reviews"}`, http.StatusCreated)
	hubCall(t, http.MethodPost, h.URL+"/v1/users", `{"name":"ann","role":"analyst","password":"analyse the figures"}`, http.StatusCreated)

	ctx := testkit.Browser(t)
	if err := chromedp.Do(ctx, chromedp.Navigate(h.URL+"/moderation")); err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Do(ctx, chromedp.WaitVisible("#user"), chromedp.SendKeys("#user", "mo"),
		chromedp.SendKeys("#password", "moderate the reviews"), chromedp.Click("#login"), chromedp.WaitVisible("#r-"+id)); err != nil {
		t.Fatalf("moderator's queue: %v", err)
	}
	if err := chromedp.Do(ctx, chromedp.Click("#r-"+id+" button.approve"), chromedp.WaitVisible("#flash")); err != nil {
		t.Fatalf("publish: %v", err)
	}
	flash, err := chromedp.Run(ctx, chromedp.Text("#flash"))
	if err != nil || !strings.Contains(flash, "published") {
		t.Fatalf("flash %q, %v", flash, err)
	}
	testkit.Eventually(t, 10*time.Second, func() bool { return reviewCount(t, h.URL, sku) == 1 }, "the published review in the summary")

	// The moderator's token takes it down through the API; the analyst's
	// may read the queue, not decide.
	moTok := createToken(t, h.URL, "mo", "moderate the reviews")
	annTok := createToken(t, h.URL, "ann", "analyse the figures")
	if code, body := authed(t, annTok, http.MethodPost, h.URL+"/v1/reviews/"+id+"/moderation", `{"action":"unpublish"}`); code != http.StatusForbidden {
		t.Fatalf("analyst moderating: %d %s", code, body)
	}
	if code, _ := authed(t, annTok, http.MethodGet, h.URL+"/v1/reviews?status=published", ""); code != http.StatusOK {
		t.Fatalf("analyst reading the queue: %d", code)
	}
	if code, body := authed(t, moTok, http.MethodPost, h.URL+"/v1/reviews/"+id+"/moderation", `{"action":"unpublish","note":"spam"}`); code != http.StatusOK ||
		!strings.Contains(body, `"status": "rejected"`) || !strings.Contains(body, `"moderated_by": "mo"`) {
		t.Fatalf("unpublish: %d %s", code, body)
	}
	if code, body := authed(t, moTok, http.MethodPost, h.URL+"/v1/reviews/"+id+"/moderation", `{"action":"unpublish"}`); code != http.StatusConflict {
		t.Fatalf("unpublishing twice: %d %s", code, body)
	}
	testkit.Eventually(t, 10*time.Second, func() bool { return reviewCount(t, h.URL, sku) == 0 }, "the unpublished review out of the summary")
}

// createToken logs user in through the API and returns their new token.
func createToken(t *testing.T, hubURL, user, password string) string {
	t.Helper()
	var out struct {
		Token string `json:"token"`
	}
	code, body := authed(t, "", http.MethodPost, hubURL+"/v1/auth/login", fmt.Sprintf(`{"user":%q,"password":%q}`, user, password))
	if code != http.StatusOK && code != http.StatusCreated || json.Unmarshal([]byte(body), &out) != nil || out.Token == "" {
		t.Fatalf("log in %s: %d %s", user, code, body)
	}
	return out.Token
}
