package e2e

import (
	"net/http"
	"testing"
	"time"

	"github.com/omnisync/omnisync/shared/testkit"
)

// insightsCustomer is the part of GET /v1/insights/customers/{id} the
// test reads.
type insightsCustomer struct {
	Customer struct {
		Orders int64 `json:"orders"`
		Spend  int64 `json:"spend"`
	} `json:"customer"`
	Segment string `json:"segment"`
}

// Ensure, with real NATS, agents and PostgreSQL, that a sale with a
// customer at a store's till reaches the hub's customer analytics within
// seconds (AOV and the customer's RFM segment), and that when the web
// shop's login merges that customer with the shop's own, the analytics
// count both purchases under the surviving id and forget the absorbed
// one, without counting the moved sale again in AOV.
func TestInsightsFedBySales(t *testing.T) {
	t.Parallel()
	ns := testkit.StartNATS(t)
	h := startHub(t, ns.URL(), testkit.Postgres(t))
	a := startAgent(t, "S1", "pos-1", ns.URL())
	web := startAgent(t, "online", "webshop", ns.URL())

	type aovReport struct {
		Total struct {
			Revenue int64 `json:"revenue"`
			Orders  int64 `json:"orders"`
		} `json:"total"`
	}
	aovIs := func(revenue, orders int64) bool {
		var r aovReport
		return getJSON(t, h.URL+"/v1/insights/aov", &r) == http.StatusOK && r.Total.Revenue == revenue && r.Total.Orders == orders
	}

	start := time.Now()
	mustPost(t, a.URL, `[{"kind":"identify","data":{"identifiers":{"loyalty":"LC-7","email":"bo@shop.test"},"rule":"card_scan"}},
{"kind":"sale","data":{"customer":{"loyalty":"LC-7"},"lines":[{"sku":"SKU-I1","qty":2,"unit_price":1500}]}}]`)
	testkit.Eventually(t, 20*time.Second, func() bool { return aovIs(3000, 1) }, "the till's sale in AOV")
	aovAfter := time.Since(start)
	var card string
	testkit.Eventually(t, 10*time.Second, func() bool {
		id, code := findCustomer(t, h.URL, "loyalty:LC-7")
		card = id
		return code == http.StatusOK
	}, "the card's customer")
	var rep insightsCustomer
	testkit.Eventually(t, 10*time.Second, func() bool {
		return getJSON(t, h.URL+"/v1/insights/customers/"+card, &rep) == http.StatusOK && rep.Customer.Orders == 1
	}, "the card's customer scored")
	rfmAfter := time.Since(start)
	if rep.Segment == "" || rep.Customer.Spend != 3000 {
		t.Fatalf("customer report %+v", rep)
	}
	t.Logf("sale posted at the till: in AOV after %v, the customer's RFM segment (%s) after %v", aovAfter.Round(time.Millisecond), rep.Segment, rfmAfter.Round(time.Millisecond))

	// The web shop's order names its own account: a second customer.
	mustPost(t, web.URL, `{"kind":"sale","data":{"order_id":"W-2001","channel":"web","customer":{"account":"W-7"},"lines":[{"sku":"SKU-I2","qty":1,"unit_price":1000}]}}`)
	testkit.Eventually(t, 20*time.Second, func() bool { return aovIs(4000, 2) }, "the web order in AOV")
	shop, _ := findCustomer(t, h.URL, "account:W-7")
	if shop == "" || shop == card {
		t.Fatalf("web shop's customer %q, card's %q", shop, card)
	}
	// The login links them: one customer (the older id) with both.
	if code, body := authed(t, hubToken, http.MethodPost, h.URL+"/v1/identify", `{"identifiers":{"email":"bo@shop.test","account":"W-7"},"rule":"login"}`); code != http.StatusOK {
		t.Fatalf("identify: %d %s", code, body)
	}
	merged, _ := findCustomer(t, h.URL, "account:W-7")
	gone := shop
	if merged == shop {
		gone = card
	}
	testkit.Eventually(t, 10*time.Second, func() bool {
		var r insightsCustomer
		return getJSON(t, h.URL+"/v1/insights/customers/"+merged, &r) == http.StatusOK && r.Customer.Orders == 2 && r.Customer.Spend == 4000 &&
			getJSON(t, h.URL+"/v1/insights/customers/"+gone, nil) == http.StatusNotFound
	}, "the merged customer's purchases")
	if !aovIs(4000, 2) {
		t.Fatal("the merge changed AOV")
	}
}
