package e2e

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/omnisync/omnisync/shared/testkit"
)

// customer360 is the part of GET /v1/customers/{id} the test reads.
type customer360 struct {
	ID          string `json:"id"`
	Identifiers []struct {
		Type  string `json:"type"`
		Value string `json:"value"`
	} `json:"identifiers"`
	Merges []struct {
		Observation string `json:"observation"`
	} `json:"merges"`
	Flags []struct {
		Purpose string `json:"purpose"`
		Allowed bool   `json:"allowed"`
	} `json:"consent_now"`
	Purchases []struct {
		Location string `json:"location"`
		Store    string `json:"store"`
	} `json:"purchases"`
}

func findCustomer(t testing.TB, hubURL, identifier string) (string, int) {
	var out struct {
		Customer string `json:"customer"`
	}
	code := getJSON(t, hubURL+"/v1/customers?identifier="+url.QueryEscape(identifier), &out)
	return out.Customer, code
}

func get360(t testing.TB, hubURL, id string) customer360 {
	t.Helper()
	var v customer360
	if code := getJSON(t, hubURL+"/v1/customers/"+id, &v); code != http.StatusOK {
		t.Fatalf("GET /v1/customers/%s: %d", id, code)
	}
	return v
}

func (v customer360) allowed(purpose string) bool {
	for _, f := range v.Flags {
		if f.Purpose == purpose {
			return f.Allowed
		}
	}
	return false
}

// Ensure, with real NATS, agents and PostgreSQL, that one shopper seen at
// store S1 (loyalty card and e-mail, at the till) and by the web shop
// (e-mail and account, through the hub's API) is one customer at HQ with
// the store sale and the online order; that HQ's unmerge, in the
// customers page in Chromium, splits them back exactly; that an opt-out
// given at store S2's kiosk holds at the hub; and that erasing the
// customer from the page leaves the person nowhere at the hub, is carried
// out and acknowledged by S1 at once and by S2 when it comes back from
// being offline, and that S1's late events do not bring the person back.
func TestCustomersEndToEnd(t *testing.T) {
	t.Parallel()
	testkit.Chromium(t)
	ns := testkit.StartNATS(t)
	h := startHub(t, ns.URL(), testkit.Postgres(t))
	a := startAgent(t, "S1", "pos-1", ns.URL())
	b := startAgent(t, "S2", "kiosk-1", ns.URL())
	web := startAgent(t, "online", "webshop", ns.URL())

	// The web shop's order names the account: a customer of its own.
	mustPost(t, web.URL, `{"kind":"sale","data":{"order_id":"W-1001","channel":"web","customer":{"account":"W-1"},"lines":[{"sku":"SKU-C2","qty":1,"unit_price":2500}]}}`)
	waitDrained(t, web, 20*time.Second)
	var shopper string
	testkit.Eventually(t, 15*time.Second, func() bool {
		id, code := findCustomer(t, h.URL, "account:W-1")
		shopper = id
		return code == http.StatusOK
	}, "the web shop's customer")

	// At S1 the till scans the card with the e-mail, grants marketing
	// e-mail, and sells with the card.
	mustPost(t, a.URL, `[{"kind":"identify","data":{"identifiers":{"loyalty":"LC-1","email":"Ann.Lee@Shop.test"},"rule":"card_scan"}},
{"kind":"consent","data":{"customer":{"loyalty":"LC-1"},"purpose":"marketing_email","granted":true,"source":"till","text_version":"v1"}},
{"kind":"sale","data":{"customer":{"loyalty":"LC-1"},"lines":[{"sku":"SKU-C1","qty":2,"unit_price":1000}]}}]`)
	waitDrained(t, a, 20*time.Second)
	var card string
	testkit.Eventually(t, 15*time.Second, func() bool {
		id, code := findCustomer(t, h.URL, "email:ann.lee@shop.test")
		card = id
		return code == http.StatusOK && len(get360(t, h.URL, id).Purchases) == 1
	}, "the store's customer with the sale")
	if card == shopper {
		t.Fatal("two customers before anything linked them")
	}
	before := map[string]customer360{card: get360(t, h.URL, card), shopper: get360(t, h.URL, shopper)}

	// The web shop logs the shopper in: e-mail and account together.
	code, body := authed(t, hubToken, http.MethodPost, h.URL+"/v1/identify", `{"identifiers":{"email":"ann.lee@shop.test","account":"W-1"},"rule":"login"}`)
	if code != http.StatusOK {
		t.Fatalf("identify: %d %s", code, body)
	}
	var ans struct {
		Customer string `json:"customer"`
	}
	_ = json.Unmarshal([]byte(body), &ans)
	one := get360(t, h.URL, ans.Customer)
	if len(one.Identifiers) != 3 || len(one.Purchases) != 2 || len(one.Merges) != 1 {
		t.Fatalf("one customer: %+v", one)
	}
	for _, id := range []string{"loyalty:LC-1", "email:ann.lee@shop.test", "account:W-1"} {
		if got, _ := findCustomer(t, h.URL, id); got != one.ID {
			t.Fatalf("%s is customer %s, want %s", id, got, one.ID)
		}
	}
	// The old id redirects to the merged customer.
	for _, id := range []string{card, shopper} {
		if v := get360(t, h.URL, id); v.ID != one.ID {
			t.Fatalf("%s resolves to %s", id, v.ID)
		}
	}

	// An opt-out at S2's kiosk holds at the hub, over S1's grant.
	if !one.allowed("marketing_email") {
		t.Fatal("S1's grant not in force")
	}
	mustPost(t, b.URL, `{"kind":"consent","data":{"customer":{"email":"ann.lee@shop.test"},"purpose":"marketing_email","granted":false,"channel":"store","source":"kiosk","text_version":"v2"}}`)
	waitDrained(t, b, 20*time.Second)
	testkit.Eventually(t, 15*time.Second, func() bool { return !get360(t, h.URL, one.ID).allowed("marketing_email") }, "the kiosk's opt-out at the hub")
	// ... and at store S1: its till's card for the shopper, asked of the
	// hub through S1's agent, shows the opt-out.
	testkit.Eventually(t, 15*time.Second, func() bool {
		resp, err := httpClient.Post(a.URL+"/v1/customers/card", "application/json", strings.NewReader(`{"identifiers":{"loyalty":"LC-1"}}`))
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		var c struct {
			Source  string          `json:"source"`
			Consent map[string]bool `json:"consent"`
			Card    struct {
				Consent map[string]bool `json:"consent"`
			} `json:"card"`
		}
		if resp.StatusCode != http.StatusOK || json.NewDecoder(resp.Body).Decode(&c) != nil {
			return false
		}
		consent := c.Consent
		if consent == nil {
			consent = c.Card.Consent
		}
		allowed, ok := consent["marketing_email"]
		return ok && !allowed
	}, "the kiosk's opt-out on S1's customer card")

	// HQ undoes the merge in the customers page.
	hubCall(t, http.MethodPost, h.URL+"/v1/users", `{"name":"dpo","role":"admin","password":"protect the data"}`, http.StatusCreated)
	ctx := testkit.Browser(t)
	if err := chromedp.Do(ctx, chromedp.Navigate(h.URL+"/customers?identifier="+url.QueryEscape("email:ann.lee@shop.test"))); err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Do(ctx, chromedp.WaitVisible("#user"), chromedp.SendKeys("#user", "dpo"),
		chromedp.SendKeys("#password", "protect the data"), chromedp.Click("#login"), chromedp.WaitVisible("#customer-id")); err != nil {
		t.Fatalf("customers page: %v", err)
	}
	table, err := chromedp.Run(ctx, chromedp.Text("#identifiers"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"LC-1", "ann.lee@shop.test", "W-1", "card_scan"} {
		if !strings.Contains(table, want) {
			t.Fatalf("identifiers table lacks %q: %s", want, table)
		}
	}
	// The merge, with its evidence: the web shop's login.
	merges, err := chromedp.Run(ctx, chromedp.Text("#merges"))
	if err != nil || !strings.Contains(merges, "login") || !strings.Contains(merges, card) || !strings.Contains(merges, shopper) {
		t.Fatalf("merges table: %q %v", merges, err)
	}
	if err := chromedp.Do(ctx, chromedp.Click("#merges button.unmerge"), chromedp.WaitVisible("#flash")); err != nil {
		t.Fatalf("unmerge: %v", err)
	}
	flash, err := chromedp.Run(ctx, chromedp.Text("#flash"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(flash, "Merge undone") {
		t.Fatalf("flash %q", flash)
	}
	for id, want := range before {
		got := get360(t, h.URL, id)
		if got.ID != id || len(got.Identifiers) != len(want.Identifiers) || len(got.Purchases) != len(want.Purchases) || len(got.Merges) != 0 {
			t.Fatalf("after unmerge %s:\n%+v\nwant\n%+v", id, got, want)
		}
	}
	if p := get360(t, h.URL, shopper).Purchases; len(p) != 1 || p[0].Location != "online" {
		t.Fatalf("the web shop's side: %+v", p)
	}
	// The kiosk's opt-out named the e-mail, which is back on the card's
	// side: it holds there; the web shop's side never decided.
	if get360(t, h.URL, card).allowed("marketing_email") || get360(t, h.URL, shopper).allowed("marketing_email") {
		t.Fatal("marketing e-mail allowed after the unmerge")
	}

	// Store S2 is offline (its agent killed) when HQ erases the card's
	// customer from the page.
	b.Kill()
	if err := chromedp.Do(ctx, chromedp.Navigate(h.URL+"/customers?identifier="+url.QueryEscape("loyalty:LC-1")), chromedp.WaitVisible("#erase"),
		chromedp.Click(`#erase input[name=confirm]`), chromedp.SendKeys(`#erase input[name=reason]`, "asked by e-mail"),
		chromedp.Click("#erase button.erase"), chromedp.WaitVisible("#erasure-stores")); err != nil {
		t.Fatalf("erase: %v", err)
	}
	stores, err := chromedp.Run(ctx, chromedp.Text("#erasure-stores"))
	if err != nil {
		t.Fatal(err)
	}
	heading, err := chromedp.Run(ctx, chromedp.Text("#erasure h2"))
	if err != nil {
		t.Fatal(err)
	}
	erasureID := strings.TrimSpace(strings.TrimPrefix(heading, "Erasure"))
	if !strings.Contains(stores, "S1") || !strings.Contains(stores, "S2") {
		t.Fatalf("erasure %s: stores %q", erasureID, stores)
	}
	// S1 carries it out and answers; S2 stays pending while it is away.
	storeStates := func() map[string]string {
		code, body := authed(t, hubToken, http.MethodGet, h.URL+"/v1/erasures/"+url.PathEscape(erasureID), "")
		if code != http.StatusOK {
			t.Fatalf("erasure %s: %d %s", erasureID, code, body)
		}
		var e struct {
			Stores []struct {
				Store string `json:"store"`
				State string `json:"state"`
			} `json:"stores"`
		}
		_ = json.Unmarshal([]byte(body), &e)
		out := map[string]string{}
		for _, st := range e.Stores {
			out[st.Store] = st.State
		}
		return out
	}
	testkit.Eventually(t, 30*time.Second, func() bool { return storeStates()["S1"] == "done" }, "S1's receipt")
	if got := storeStates()["S2"]; got != "pending" {
		t.Fatalf("S2, offline, is %q", got)
	}
	// S2 comes back: it reads the notice, carries it out and answers.
	b.Start()
	testkit.Eventually(t, 60*time.Second, func() bool { return storeStates()["S2"] == "done" }, "S2's receipt after it returned")
	if err := chromedp.Do(ctx, chromedp.Reload(), chromedp.WaitVisible("#erasure-state")); err == nil {
		if state, err := chromedp.Run(ctx, chromedp.Text("#erasure-state")); err == nil && !strings.Contains(state, "done") {
			t.Logf("page after every receipt: %q", state)
		}
	}
	for _, id := range []string{"loyalty:LC-1", "email:ann.lee@shop.test"} {
		if _, code := findCustomer(t, h.URL, id); code != http.StatusNotFound {
			t.Fatalf("%s after erasure: %d", id, code)
		}
	}
	if _, code := findCustomer(t, h.URL, "account:W-1"); code != http.StatusOK {
		t.Fatal("the other customer went with the erasure")
	}
	// A late event from S1 naming the person does not bring them back.
	mustPost(t, a.URL, `{"kind":"identify","data":{"identifiers":{"loyalty":"LC-1","phone":"+821034561122"}}}`)
	waitDrained(t, a, 20*time.Second)
	time.Sleep(500 * time.Millisecond)
	for _, id := range []string{"loyalty:LC-1", "phone:+821034561122"} {
		if _, code := findCustomer(t, h.URL, id); code != http.StatusNotFound {
			t.Fatalf("%s came back after erasure: %d", id, code)
		}
	}
}
