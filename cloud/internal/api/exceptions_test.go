package api

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/omnisync/omnisync/cloud/internal/auth"
	"github.com/omnisync/omnisync/cloud/internal/catalog"
	"github.com/omnisync/omnisync/cloud/internal/store"
	"github.com/omnisync/omnisync/shared/events"
	"github.com/omnisync/omnisync/shared/hlc"
	"github.com/omnisync/omnisync/shared/ids"
)

func postAs(t *testing.T, token, url, body string) (int, map[string]any) {
	t.Helper()
	return callAs(t, token, http.MethodPost, url, body)
}

// Ensure that the exception queue's routes are locked by role (401
// anonymous, 403 without exceptions:write, a store manager sees their
// stores' only) and that an admin's mapping with replay applies the held
// sale once.
func TestAPI_Exceptions(t *testing.T) {
	srv, st, svc := newAPIAuth(t)
	ctx := context.Background()
	if _, err := st.ImportCatalog(ctx, []catalog.Variant{
		{SKU: "SKU-1", ProductID: "P1", Name: "Tee", Currency: "EUR", PriceMinor: 1000, Brand: "K", Size: "M", GTINs: []string{"05999990000013"}},
		{SKU: "SKU-2", ProductID: "P1", Name: "Tee", Currency: "EUR", PriceMinor: 1000, Brand: "K", Size: "M", GTINs: []string{"05999990000020"}}},
		store.ImportOptions{Source: "test"}); err != nil {
		t.Fatal(err)
	}
	e := events.Envelope{V: 1, ID: ids.NewEventID(time.Now()), HLC: hlc.Timestamp{Wall: time.Now().UnixMilli()},
		Origin: events.Origin{Store: "S1", Device: "pos-1", Epoch: 7, Seq: 3}, Kind: events.KindSale,
		Data: json.RawMessage(`{"location":"S1","lines":[{"sku":"OLD-1","qty":2}]}`)}
	res, err := st.ApplyBatch(ctx, []store.Item{{Env: e}})
	if err != nil || res.Held != 1 {
		t.Fatalf("apply: %+v %v", res, err)
	}
	mgr1 := tokenFor(t, svc, "manager-s1", auth.StoreManager, "S1")
	mgr2 := tokenFor(t, svc, "manager-s2", auth.StoreManager, "S2")
	analyst := tokenFor(t, svc, "analyst", auth.Analyst)

	if code, _ := getAs(t, "", srv.URL+"/v1/exceptions"); code != http.StatusUnauthorized {
		t.Fatalf("anonymous list: %d", code)
	}
	if code, _ := postAs(t, "", srv.URL+"/v1/exceptions/1/replay", ""); code != http.StatusUnauthorized {
		t.Fatalf("anonymous replay: %d", code)
	}
	count := func(token string) int {
		code, m := getAs(t, token, srv.URL+"/v1/exceptions")
		if code != 200 {
			t.Fatalf("list: %d %v", code, m)
		}
		xs, _ := m["exceptions"].([]any)
		return len(xs)
	}
	if count(mgr1) != 1 || count(mgr2) != 0 || count(analyst) != 1 {
		t.Fatalf("lists: S1's manager %d, S2's %d, analyst %d", count(mgr1), count(mgr2), count(analyst))
	}
	_, m := getAs(t, analyst, srv.URL+"/v1/exceptions")
	x := m["exceptions"].([]any)[0].(map[string]any)
	if x["reason"] != "unknown_sku" || x["value"] != "OLD-1" || x["map_kind"] != "sku" || x["held"] != 1.0 {
		t.Fatalf("exception %v", x)
	}
	id := int64(x["id"].(float64))
	if code, _ := getAs(t, mgr2, srv.URL+"/v1/exceptions?store=S1"); code != http.StatusForbidden {
		t.Fatalf("S2's manager naming S1: %d", code)
	}
	body := fmt.Sprintf(`{"kind":"sku","from":"OLD-1","to":"SKU-1","replay":%d}`, id)
	for _, tok := range []string{mgr1, analyst} {
		if code, _ := postAs(t, tok, srv.URL+"/v1/exceptions/mappings", body); code != http.StatusForbidden {
			t.Fatalf("mapping without exceptions:write: %d", code)
		}
		if code, _ := postAs(t, tok, srv.URL+"/v1/deadletters/1/replay", ""); code != http.StatusForbidden {
			t.Fatalf("dead letter replay without exceptions:write: %d", code)
		}
	}
	if code, m := postAs(t, adminToken, srv.URL+"/v1/exceptions/mappings", `{"kind":"sku","from":"OLD-1","to":"NOT-IN-CATALOG"}`); code != http.StatusBadRequest {
		t.Fatalf("mapping to an unknown SKU: %d %v", code, m)
	}
	code, m := postAs(t, adminToken, srv.URL+"/v1/exceptions/mappings", body)
	if rp, _ := m["replay"].(map[string]any); code != 200 || rp["replayed"] != 1.0 {
		t.Fatalf("map and replay: %d %v", code, m)
	}
	if code, m := postAs(t, adminToken, fmt.Sprintf("%s/v1/exceptions/%d/replay", srv.URL, id), ""); code != 200 || m["replay"].(map[string]any)["replayed"] != 0.0 {
		t.Fatalf("second replay: %d %v", code, m)
	}
	_, m = getAs(t, analyst, srv.URL+"/v1/inventory/SKU-1")
	for _, l := range m["locations"].([]any) {
		if l := l.(map[string]any); l["location"] == "S1" && l["on_hand"] != 4.0 {
			t.Fatalf("S1's SKU-1 on hand %v, want 10-4-2 = 4", l["on_hand"])
		}
	}
	if count(analyst) != 0 {
		t.Fatal("the exception is still open")
	}
	if code, _ := postAs(t, adminToken, srv.URL+"/v1/exceptions/99/discard", `{"reason":"x"}`); code != http.StatusNotFound {
		t.Fatalf("discard of a missing exception: %d", code)
	}
	if code, _ := postAs(t, adminToken, srv.URL+"/v1/deadletters/99/replay", ""); code != http.StatusNotFound {
		t.Fatalf("replay of a missing dead letter: %d", code)
	}
	// The pickups board: S2's reservation, for S2's manager only.
	code, m = getAs(t, mgr2, srv.URL+"/v1/pickups")
	if ps, _ := m["pickups"].([]any); code != 200 || len(ps) != 1 || ps[0].(map[string]any)["state"] != "reserved" {
		t.Fatalf("S2's pickups: %d %v", code, m)
	}
	if code, m := getAs(t, mgr1, srv.URL+"/v1/pickups"); code != 200 || len(m["pickups"].([]any)) != 0 {
		t.Fatalf("S1's pickups: %d %v", code, m)
	}
	if code, _ := getAs(t, mgr1, srv.URL+"/v1/pickups?state=lost"); code != http.StatusBadRequest {
		t.Fatalf("pickups in an unknown state: %d", code)
	}
}
