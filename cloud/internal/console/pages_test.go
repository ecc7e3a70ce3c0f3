package console

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/omnisync/omnisync/cloud/internal/auth"
	"github.com/omnisync/omnisync/cloud/internal/catalog"
	"github.com/omnisync/omnisync/cloud/internal/store"
	"github.com/omnisync/omnisync/shared/events"
	"github.com/omnisync/omnisync/shared/gs1"
	"github.com/omnisync/omnisync/shared/hlc"
	"github.com/omnisync/omnisync/shared/ids"
)

// storeFixture is a real SQLite store holding a product S1 carries in one
// of its two sizes, a failed RFID reader at S1's till, and heartbeats: S1's
// till holds 2 sales worth 13.50 for 40 minutes, with its clock 7 minutes
// fast; S2's holds one sale of 5.00 for a minute.
func storeFixture(t *testing.T, now time.Time) *store.Store {
	t.Helper()
	ctx := context.Background()
	st, err := store.Open(ctx, "sqlite:"+filepath.Join(t.TempDir(), "hub.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	var vs []catalog.Variant
	for i, size := range []string{"S", "M"} {
		g, err := gs1.CheckDigit(fmt.Sprintf("0599997%06d", i))
		if err != nil {
			t.Fatal(err)
		}
		vs = append(vs, catalog.Variant{SKU: "A-" + size, ProductID: "P-A", GTINs: []string{fmt.Sprintf("0599997%06d%c", i, g)}, Name: "Linen shirt",
			Size: size, PriceMinor: 4900, Currency: "EUR"})
	}
	if _, err := st.ImportCatalog(ctx, vs, store.ImportOptions{Source: "test"}); err != nil {
		t.Fatal(err)
	}
	var items []store.Item
	for i, ev := range []struct {
		store string
		kind  events.Kind
		body  string
	}{
		{"S1", events.KindReceipt, `{"location":"S1","lines":[{"sku":"A-M","qty":10}]}`},
		{"S1", events.KindDeviceStatus, `{"name":"rfid-1","state":"failed","detail":"not a terminal"}`},
		{"S2", events.KindReceipt, `{"location":"S2","lines":[{"sku":"A-M","qty":1}]}`},
	} {
		items = append(items, store.Item{Env: events.Envelope{V: 1, ID: ids.NewEventID(now), HLC: hlc.Timestamp{Wall: now.Add(-time.Hour).UnixMilli() + int64(i)},
			Origin: events.Origin{Store: ev.store, Device: "pos-1", Epoch: 1, Seq: uint64(i + 1)}, Kind: ev.kind, Data: json.RawMessage(ev.body)}})
	}
	if _, err := st.ApplyBatch(ctx, items); err != nil {
		t.Fatal(err)
	}
	if err := st.RecordHeartbeats(ctx, []store.Heartbeat{
		{Store: "S1", Device: "pos-1", Epoch: 1, At: now, Connected: true, ClockSkew: 7 * time.Minute,
			Unsynced: store.UnsyncedSales{Count: 2, Value: 1350, OldestAge: 40 * time.Minute}},
		{Store: "S2", Device: "pos-1", Epoch: 1, At: now, Connected: true,
			Unsynced: store.UnsyncedSales{Count: 1, Value: 500, OldestAge: time.Minute}},
	}); err != nil {
		t.Fatal(err)
	}
	return st
}

// page renders the overview ("/") or a store's page as p sees it, through
// the console's own handlers (the router's authentication is package
// auth's to test).
func page(t *testing.T, c *Console, p *auth.Principal, path string) string {
	t.Helper()
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+OverviewPath+"{$}", c.overview)
	mux.HandleFunc("GET "+StorePath+"{store}", c.storeLow)
	w := httptest.NewRecorder()
	r := httptest.NewRequest(http.MethodGet, path, nil)
	mux.ServeHTTP(w, r.WithContext(auth.WithPrincipal(r.Context(), p)))
	body, _ := io.ReadAll(w.Result().Body)
	if w.Code != http.StatusOK {
		t.Fatalf("GET %s: %d\n%s", path, w.Code, body)
	}
	return string(body)
}

// Ensure that the store page warns when a till's oldest unsynced sale is
// older than the configured limit (and only then), shows each device's
// sync health (clock skew flagged, peripherals with their state) and
// lists the size the store carries but never had at 0.
func TestStorePage_UnsyncedWarningAndHealth(t *testing.T) {
	now := time.Now().UTC()
	st := storeFixture(t, now)
	analyst := auth.NewPrincipal(1, "hq", auth.Analyst, nil, nil)
	for _, c := range []struct {
		limit time.Duration
		want  []string
		not   []string
	}{
		{30 * time.Minute, []string{`<p id="unsynced" class="bad">Warning: 2 sales worth 13.50 not yet synced to HQ; the oldest is 40m0s old, past the 30m0s limit`}, nil},
		{time.Hour, []string{`<p id="unsynced" class="muted">2 sales worth 13.50 not yet synced to HQ; the oldest is 40m0s old.`}, []string{"Warning:"}},
	} {
		con := New(Options{Store: st, UnsyncedAlert: c.limit, Now: func() time.Time { return now }})
		body := page(t, con, analyst, StorePath+"S1")
		for _, want := range append(c.want,
			`<tr data-device="S1/pos-1">`, `<td class="skew bad">&#43;7m0s</td>`,
			`<div class="periph" data-peripheral="rfid-1" data-state="failed"><span class="bad">rfid-1: failed</span>`, `<small class="bad">not a terminal</small>`,
			`<tr data-sku="A-S" data-never-stocked>`, `href="/fitting"`) {
			if !strings.Contains(body, want) {
				t.Fatalf("limit %v: the store page lacks %q:\n%s", c.limit, want, body)
			}
		}
		for _, not := range append(c.not, `data-device="S2/pos-1"`, `data-sku="A-M"`) {
			if strings.Contains(body, not) {
				t.Fatalf("limit %v: the store page has %q:\n%s", c.limit, not, body)
			}
		}
	}
}

// Ensure that the overview's unsynced warning uses the same configured
// limit as the store page and shows the money, not only counts; and that
// a store manager sees only their stores' devices, money and stock, with
// the sizes their stores carry at zero.
func TestOverview_UnsyncedMoneyAndScope(t *testing.T) {
	now := time.Now().UTC()
	st := storeFixture(t, now)
	con := New(Options{Store: st, UnsyncedAlert: 30 * time.Minute, Now: func() time.Time { return now }})
	body := page(t, con, auth.NewPrincipal(1, "hq", auth.Analyst, nil, nil), "/")
	for _, want := range []string{
		`<p id="unsynced-badge" class="bad">Warning: 1 device holds sales older than 30m0s not yet synced to HQ. Not yet synced to HQ: 3 sales worth 18.50:`,
		`<span class="bad" data-device="S1/pos-1">S1/pos-1: 2 sales worth 13.50, oldest 40m0s</span>`,
		`<span class="" data-device="S2/pos-1">S2/pos-1: 1 sale worth 5.00, oldest 1m0s</span>`,
		`<tr data-device="S1/pos-1">`, `<tr data-device="S2/pos-1">`,
		`<tr data-sku="A-M" data-loc="S2">`,
	} {
		if !strings.Contains(body, want) {
			t.Fatalf("the overview lacks %q:\n%s", want, body)
		}
	}
	mine := page(t, con, auth.NewPrincipal(2, "maria", auth.StoreManager, []string{"S2"}, nil), "/")
	for _, want := range []string{`<p id="unsynced-badge" class="muted">Not yet synced to HQ: 1 sale worth 5.00:`, `<tr data-sku="A-S" data-loc="S2">`} {
		if !strings.Contains(mine, want) {
			t.Fatalf("S2's manager's overview lacks %q:\n%s", want, mine)
		}
	}
	for _, not := range []string{"S1/pos-1", `data-loc="S1"`, "13.50"} {
		if strings.Contains(mine, not) {
			t.Fatalf("S2's manager sees %q:\n%s", not, mine)
		}
	}
}
