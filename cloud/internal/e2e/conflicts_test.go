package e2e

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/omnisync/omnisync/shared/events"
	"github.com/omnisync/omnisync/shared/hlc"
	"github.com/omnisync/omnisync/shared/ids"
	"github.com/omnisync/omnisync/shared/subjects"
	"github.com/omnisync/omnisync/shared/testkit"
)

// Ensure that an HQ admin, in a real browser, sees an oversell on the
// conflicts page with its proposals, clicks "source from S2", and sees
// the conflict close (resolved by HQ's action) and the transfer in
// transit on the transfers page.
func TestConflictActInBrowser(t *testing.T) {
	t.Parallel()
	testkit.Chromium(t)
	ns := testkit.StartNATS(t)
	h := startHub(t, ns.URL(), "")
	nc, err := nats.Connect(ns.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	// S1 sold 2 it did not have; S2 received 5.
	for _, e := range []struct {
		store string
		kind  events.Kind
	}{{"S1", events.KindSale}, {"S2", events.KindReceipt}} {
		data, _ := json.Marshal(events.StockMove{Location: e.store, Lines: []events.Line{{SKU: "CF-1", Qty: map[string]int64{"S1": 2, "S2": 5}[e.store]}}})
		now := time.Now()
		env := events.Envelope{V: events.CurrentVersion, ID: ids.NewEventID(now), Origin: events.Origin{Store: e.store, Device: "pos-1", Epoch: 1, Seq: 1},
			HLC: hlc.Timestamp{Wall: now.UnixMilli()}, Kind: e.kind, Data: data}
		body, _ := json.Marshal(env)
		if _, err := js.Publish(context.Background(), subjects.Event(e.store, "pos-1"), body); err != nil {
			t.Fatal(err)
		}
	}
	testkit.Eventually(t, 15*time.Second, func() bool {
		var r struct{ Conflicts []any }
		return getJSON(t, h.URL+"/v1/conflicts", &r) == http.StatusOK && len(r.Conflicts) == 1
	}, "the oversell's conflict")
	hubCall(t, http.MethodPost, h.URL+"/v1/users", `{"name":"olga","role":"admin","password":"transfers all day long"}`, http.StatusCreated)

	ctx := testkit.Browser(t)
	if err := chromedp.Do(ctx, chromedp.Navigate(h.URL+"/console/conflicts")); err != nil {
		t.Fatal(err)
	}
	logIn(t, ctx, "olga", "transfers all day long")
	source := `#open-conflicts button[data-action="transfer"][data-from="S2"]`
	if err := chromedp.Do(ctx, chromedp.WaitVisible(source)); err != nil {
		t.Fatalf("no proposal to source from S2: %v", err)
	}
	label, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.querySelector('`+source+`').textContent`))
	if err != nil || label != "Source 2 from S2 as a transfer" {
		t.Fatalf("button %q (%v)", label, err)
	}
	fitsTablet(t, ctx, "the conflicts page")
	screenshot(t, ctx, "console-conflicts")
	if err := chromedp.Do(ctx, testkit.Click(source), chromedp.WaitVisible("#done")); err != nil {
		t.Fatalf("acting: %v", err)
	}
	state, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](`[document.querySelectorAll('#open-conflicts tr[data-conflict]').length + "",
		(document.querySelector('#resolved-conflicts .resolved-by') || {}).textContent || ""]`))
	if err != nil || state[0] != "0" || state[1] != "hq_action" {
		t.Fatalf("after the click: open %v, resolved by %v (%v)", state, state, err)
	}
	if err := chromedp.Do(ctx, chromedp.Navigate(h.URL+"/console/transfers?state=in_transit"), chromedp.WaitVisible("#transfers")); err != nil {
		t.Fatal(err)
	}
	row, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](`Array.from(document.querySelectorAll('#transfers tr[data-transfer] td')).map(function(td){return td.textContent})`))
	if err != nil || len(row) < 5 || row[1] != "S2" || row[2] != "S1" || row[3] != "in_transit" || row[4] != "CF-1 2/0" {
		t.Fatalf("transfers page: %q (%v)", row, err)
	}
	fitsTablet(t, ctx, "the transfers page")
	screenshot(t, ctx, "console-transfers")
	// The product grid shows the stock on its way to S1.
	if err := chromedp.Do(ctx, chromedp.Navigate(h.URL+"/console/sku/CF-1"), chromedp.WaitVisible("#grid")); err != nil {
		t.Fatal(err)
	}
	transit, err := chromedp.Run(ctx, chromedp.Evaluate[string](`(document.querySelector('td[data-sku="CF-1"][data-loc="S1"] .transit') || {}).textContent || ""`))
	if err != nil || transit != "+2 in transit" {
		t.Fatalf("grid at S1: %q (%v)", transit, err)
	}
	fitsTablet(t, ctx, "the SKU's grid")
}
