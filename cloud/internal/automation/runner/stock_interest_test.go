package runner

import (
	"context"
	"encoding/json"
	"slices"
	"testing"
	"time"

	"github.com/omnisync/omnisync/cloud/internal/automation"
	"github.com/omnisync/omnisync/cloud/internal/catalog"
	"github.com/omnisync/omnisync/cloud/internal/store"
	"github.com/omnisync/omnisync/shared/events"
	"github.com/omnisync/omnisync/shared/gs1"
	"github.com/omnisync/omnisync/shared/testkit"
)

// Ensure that, over the real books, the back-in-stock message reaches
// the customers the web shop saw look at the item and who hold no cart
// with it: Ann, who only viewed it; Cy, whose interest the shop recorded
// under her web account's id before the account was linked to her, by
// the surviving id, once; and not Di, who viewed it too and was erased
// before it came back. Consent is the books' (bookConsent).
func TestRunner_BackInStockReachesViewers(t *testing.T) {
	ctx := context.Background()
	s := openStore(t, "")
	cd, err := gs1.CheckDigit("0599999000009")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.ImportCatalog(ctx, []catalog.Variant{{SKU: "SKU-9", ProductID: "P9", GTINs: []string{"0599999000009" + string(cd)},
		Name: "Parka", PriceMinor: 19900, Currency: "EUR"}}, store.ImportOptions{Source: "test"}); err != nil {
		t.Fatal(err)
	}
	rec := startReceiver(t)
	rule := webhookRule("restock", "http://"+rec.addr+"/hook")
	rule.Trigger = automation.BackInStock
	if err := s.PutRule(ctx, rule); err != nil {
		t.Fatal(err)
	}
	ev := &storeEvents{s: s}
	yes := true
	find := func(identifier string) string {
		t.Helper()
		id, err := s.FindCustomer(ctx, identifier, "")
		if err != nil {
			t.Fatal(err)
		}
		return id
	}
	for _, email := range []string{"ann@shop.test", "cy@shop.test", "di@shop.test"} {
		ev.apply(t, events.KindIdentify, events.Identify{Identifiers: map[string]string{"email": email}})
		ev.apply(t, events.KindConsent, events.Consent{Customer: events.CustomerRef{"email": email}, Purpose: "marketing_email", Granted: &yes, Channel: "email"})
	}
	ev.apply(t, events.KindIdentify, events.Identify{Identifiers: map[string]string{"account": "W-5"}})
	ann, di, account := find("email:ann@shop.test"), find("email:di@shop.test"), find("account:W-5")
	for _, c := range []string{ann, account, di} {
		if err := s.AddInterest(ctx, c, "SKU-9", store.InterestViewed); err != nil {
			t.Fatal(err)
		}
	}
	// The account turns out to be Cy's; Di is erased.
	ev.apply(t, events.KindIdentify, events.Identify{Identifiers: map[string]string{"account": "W-5", "email": "cy@shop.test"}})
	cy := find("email:cy@shop.test")
	if find("account:W-5") != cy {
		t.Fatal("the account was not linked to Cy")
	}
	if _, err := s.EraseCustomer(ctx, di, "hq-dpo", "her request"); err != nil {
		t.Fatal(err)
	}

	r := newRunner(t, s, bookConsent{s}, "hub-1", func(cfg *Config) { cfg.Interest, cfg.Stock = s, s })
	run(t, r)
	// Sold out, then received: stamped a few milliseconds apart, so the
	// receipt comes after the count.
	for i, it := range []func() store.Item{
		func() store.Item { return stockEvent(1, events.KindCount, "SKU-9", 0) },
		func() store.Item {
			time.Sleep(5 * time.Millisecond)
			return stockEvent(2, events.KindReceipt, "SKU-9", 4)
		},
	} {
		if _, err := s.ApplyBatch(ctx, []store.Item{it()}); err != nil {
			t.Fatal(err)
		}
		n := r.stockChecked.Load()
		r.StockChanged("SKU-9")
		testkit.Eventually(t, 5*time.Second, func() bool { return r.stockChecked.Load() > n }, "change %d read", i)
	}
	testkit.Eventually(t, 10*time.Second, func() bool { return jobState(t, s, store.JobDone) == 2 }, "Ann and Cy told")
	var told []string
	for _, d := range rec.deliveries() {
		var p Payload
		if err := json.Unmarshal(d.body, &p); err != nil {
			t.Fatal(err)
		}
		if p.Event.SKU != "SKU-9" || p.Event.Trigger != automation.BackInStock {
			t.Fatalf("delivered %+v", p.Event)
		}
		told = append(told, p.Customer)
	}
	slices.Sort(told)
	want := []string{ann, cy}
	slices.Sort(want)
	if !slices.Equal(told, want) {
		t.Fatalf("told %v, want Ann and Cy %v (Di %s erased)", told, want, di)
	}
	if js, _ := s.Jobs(ctx, store.JobQuery{Limit: 100}); len(js) != 2 {
		t.Fatalf("jobs %+v, want only Ann's and Cy's", js)
	}
}
