package api

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/omnisync/omnisync/cloud/internal/auth"
	"github.com/omnisync/omnisync/cloud/internal/catalog"
	"github.com/omnisync/omnisync/cloud/internal/store"
	"github.com/omnisync/omnisync/shared/events"
	"github.com/omnisync/omnisync/shared/hlc"
	"github.com/omnisync/omnisync/shared/ids"
)

// Ensure that the try-on analytics count each store's visits, tries,
// purchases and sizes asked for, that a store manager sees only their
// stores (403 for another), that bad days are refused, and that the page
// renders the same figures.
func TestTryOns(t *testing.T) {
	ctx := context.Background()
	st, err := store.Open(ctx, "sqlite:"+filepath.Join(t.TempDir(), "hub.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	vs := catalog.Sample(3, 6)
	if _, err := st.ImportCatalog(ctx, vs, store.ImportOptions{Source: "test", Mode: catalog.AllOrNothing}); err != nil {
		t.Fatal(err)
	}
	a, b := vs[0], vs[1]
	now := time.Now().UTC()
	var items []store.Item
	seq := map[string]uint64{}
	add := func(storeID string, k events.Kind, body any) {
		data, _ := json.Marshal(body)
		seq[storeID]++
		items = append(items, store.Item{Env: events.Envelope{V: 1, ID: ids.NewEventID(now), HLC: hlc.Timestamp{Wall: now.UnixMilli() + int64(len(items))},
			Origin: events.Origin{Store: storeID, Device: "fr-1", Epoch: 1, Seq: seq[storeID]}, Kind: k, Data: data}})
	}
	for _, s := range []string{"S1", "S2"} {
		add(s, events.KindEnter, events.FittingRoom{Zone: "room-1", EPC: "3074257BF7194E4000001A85", GTIN: a.GTINs[0], Visit: "v1"})
	}
	add("S1", events.KindAssist, events.Assist{Zone: "room-1", SKU: b.SKU, From: a.SKU, Reason: "size"})
	add("S1", events.KindSale, events.StockMove{Location: "S1", Lines: []events.Line{{SKU: a.SKU, Qty: 1}}})
	if _, err := st.ApplyBatch(ctx, items); err != nil {
		t.Fatal(err)
	}
	// What was bought is folded from the ledger after the sale applied
	// (the hub's basket folder does it in the background).
	if _, err := st.FoldBaskets(ctx, 0); err != nil {
		t.Fatal(err)
	}
	srv, svc := serveAPI(t, st, Options{Store: st}, nil)
	var all store.TryOn
	if code, m := get(t, srv.URL+"/v1/fitting/tryons", &all); code != 200 || len(all.Rooms) != 2 || len(all.Products) != 2 {
		t.Fatalf("%d %v", code, m)
	}
	for _, p := range all.Products {
		if p.Store == "S1" && (p.Tried != 1 || p.BoughtDay != 1 || p.Rate != 1 || p.ProductID != a.ProductID) {
			t.Fatalf("S1 %+v", p)
		}
		if p.Store == "S2" && (p.Tried != 1 || p.BoughtDay != 0) {
			t.Fatalf("S2 %+v", p)
		}
	}
	mgr := tokenFor(t, svc, "mgr", auth.StoreManager, "S2")
	code, m := getAs(t, mgr, srv.URL+"/v1/fitting/tryons")
	if code != 200 || len(m["rooms"].([]any)) != 1 || m["rooms"].([]any)[0].(map[string]any)["store"] != "S2" {
		t.Fatalf("manager of S2: %d %v", code, m)
	}
	if code, _ := getAs(t, mgr, srv.URL+"/v1/fitting/tryons?store=S1"); code != http.StatusForbidden {
		t.Fatalf("manager of S2 asking for S1: %d", code)
	}
	for _, q := range []string{"?from=yesterday", "?from=2026-03-02&to=2026-03-01", "?from=2020-01-01&to=2026-01-01", "?store=a.b"} {
		if code, m := get(t, srv.URL+"/v1/fitting/tryons"+q, nil); code != http.StatusBadRequest || m["field"] == nil {
			t.Errorf("%s: %d %v", q, code, m)
		}
	}
	resp, err := http.Get(srv.URL + "/fitting")
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(page), a.ProductID) || !strings.Contains(string(page), "100%") {
		t.Fatalf("page %d:\n%s", resp.StatusCode, page)
	}
}
