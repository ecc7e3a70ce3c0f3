package api

import (
	"context"
	"encoding/json"
	"net/http"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"github.com/omnisync/omnisync/cloud/internal/auth"
	"github.com/omnisync/omnisync/cloud/internal/hqact"
	"github.com/omnisync/omnisync/cloud/internal/store"
	"github.com/omnisync/omnisync/shared/events"
	"github.com/omnisync/omnisync/shared/hlc"
	"github.com/omnisync/omnisync/shared/ids"
)

const testCart = "aaaaaaaaaaaaaaaaaaaaaaaaaa"

// conflictsAPI serves the API over a store where SKU-X is oversold at S1
// (order o1 holds 2, none on hand; S2 has 5, S3 1) and a cart was checked
// out at two stores.
func conflictsAPI(t *testing.T) (string, *store.Store, *auth.Service) {
	t.Helper()
	st, err := store.Open(context.Background(), "sqlite:"+filepath.Join(t.TempDir(), "hub.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	wall := time.Now().UnixMilli()
	seqs := map[string]uint64{}
	var items []store.Item
	add := func(origin string, k events.Kind, body any) {
		data, _ := json.Marshal(body)
		seqs[origin]++
		items = append(items, store.Item{Env: events.Envelope{V: 1, ID: ids.NewEventID(time.Now()), HLC: hlc.Timestamp{Wall: wall + int64(len(items))},
			Origin: events.Origin{Store: origin, Device: "d1", Epoch: 1, Seq: seqs[origin]}, Kind: k, Data: data}})
	}
	count := func(loc string, qty int64) {
		add(loc, events.KindCount, events.StockMove{Location: loc, Lines: []events.Line{{SKU: "SKU-X", Qty: qty}}})
	}
	count("S1", 0)
	count("S2", 5)
	count("S3", 1)
	add("online", events.KindReserve, events.ReservationMove{ReservationID: "o1", Location: "S1", Lines: []events.Line{{SKU: "SKU-X", Qty: 2}}})
	add("online", events.KindLineSet, events.LineSet{CartID: testCart, Lines: []events.CartLine{{SKU: "SKU-X", Qty: 1}}})
	add("S1", events.KindCheckout, events.Checkout{CartID: testCart, Version: 1, Location: "S1", SaleID: "s1"})
	add("S2", events.KindCheckout, events.Checkout{CartID: testCart, Version: 1, Location: "S2", SaleID: "s2"})
	if res, err := st.ApplyBatch(context.Background(), items); err != nil || res.DeadLettered != 0 {
		dl, _ := st.DeadLetters(context.Background(), "", 10)
		t.Fatalf("seed: %+v %v %+v", res, err, dl)
	}
	srv, svc := serveAPI(t, st, Options{Store: st, Acts: hqact.New(hqact.Options{Store: st})}, nil)
	return srv.URL, st, svc
}

var snake = regexp.MustCompile(`^[a-z][a-z0-9_]*$`)

// checkSnake fails on any key of v (decoded JSON) that is not snake_case.
func checkSnake(t *testing.T, v any) {
	t.Helper()
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			if !snake.MatchString(k) {
				t.Errorf("key %q is not snake_case", k)
			}
			checkSnake(t, e)
		}
	case []any:
		for _, e := range x {
			checkSnake(t, e)
		}
	}
}

func conflictList(t *testing.T, token, url string) []map[string]any {
	t.Helper()
	code, body := getAs(t, token, url)
	if code != http.StatusOK {
		t.Fatalf("GET %s: %d %v", url, code, body)
	}
	checkSnake(t, body)
	var out []map[string]any
	for _, c := range body["conflicts"].([]any) {
		out = append(out, c.(map[string]any))
	}
	return out
}

// Ensure that /v1/conflicts lists both types of conflict in snake_case
// with their proposals, to each what she may see; that only those who
// may act do, once per action id and on the version they saw; and that
// the transfer HQ sourced shows as in transit.
func TestConflicts_ActAndRoles(t *testing.T) {
	url, st, svc := conflictsAPI(t)
	analyst := tokenFor(t, svc, "ana", auth.Analyst)
	mgr1 := tokenFor(t, svc, "m1", auth.StoreManager, "S1")
	mgr3 := tokenFor(t, svc, "m3", auth.StoreManager, "S3")

	cs := conflictList(t, adminToken, url+"/v1/conflicts")
	if len(cs) != 2 || cs[0]["type"] != "oversell" || cs[1]["type"] != "cart_checkout" || cs[1]["cart_id"] != testCart {
		t.Fatalf("admin's conflicts: %v", cs)
	}
	over := cs[0]
	props := over["proposals"].([]any)
	first := props[0].(map[string]any)
	if first["action"] != "transfer" || first["from"] != "S2" || first["qty"] != 2.0 || len(props) != 4 {
		t.Fatalf("proposals: %v", props)
	}
	if got := conflictList(t, analyst, url+"/v1/conflicts"); len(got) != 2 {
		t.Fatalf("analyst: %v", got)
	}
	if got := conflictList(t, mgr1, url+"/v1/conflicts"); len(got) != 1 || got[0]["location"] != "S1" {
		t.Fatalf("manager of S1: %v", got)
	}
	if got := conflictList(t, mgr3, url+"/v1/conflicts"); len(got) != 0 {
		t.Fatalf("manager of S3: %v", got)
	}
	if got := conflictList(t, adminToken, url+"/v1/conflicts?type=cart_checkout"); len(got) != 1 {
		t.Fatalf("type filter: %v", got)
	}

	id := int64(over["id"].(float64))
	path := url + "/v1/conflicts/" + jsonNum(id) + "/actions"
	body := `{"action_id":"a-1","version":1,"action":"transfer","from":"S2"}`
	for _, tok := range []string{analyst, mgr1} {
		if code, b := sendAs(t, http.MethodPost, tok, path, body); code != http.StatusForbidden {
			t.Fatalf("acting without conflicts:act: %d %v", code, b)
		}
	}
	if code, b := sendAs(t, http.MethodPost, adminToken, path, `{"action_id":"a-0","version":9,"action":"transfer","from":"S2"}`); code != http.StatusConflict {
		t.Fatalf("stale version: %d %v", code, b)
	}
	if code, b := sendAs(t, http.MethodPost, adminToken, path, `{"action_id":"a-0","version":1,"action":"transfer","from":"S9"}`); code != http.StatusBadRequest {
		t.Fatalf("from a store without stock: %d %v", code, b)
	}
	code, b := sendAs(t, http.MethodPost, adminToken, path, body)
	if code != http.StatusOK || b["repeated"] != false || b["actor"] != auth.FirstAdmin {
		t.Fatalf("act: %d %v", code, b)
	}
	checkSnake(t, b)
	if code, b := sendAs(t, http.MethodPost, adminToken, path, body); code != http.StatusOK || b["repeated"] != true {
		t.Fatalf("the same click again: %d %v", code, b)
	}
	if code, b := sendAs(t, http.MethodPost, adminToken, path, `{"action_id":"a-2","version":1,"action":"cancel","reservation_id":"o1"}`); code != http.StatusConflict {
		t.Fatalf("a second action: %d %v", code, b)
	}
	all := conflictList(t, adminToken, url+"/v1/conflicts?all=1&type=oversell")
	if len(all) != 1 || all[0]["resolved_by"] != "hq_action" || all[0]["action"].(map[string]any)["actor"] != auth.FirstAdmin {
		t.Fatalf("after acting: %v", all)
	}
	if st, _ := st.StockForSKU(context.Background(), "SKU-X"); len(st) != 3 {
		t.Fatalf("stock %+v", st)
	}

	// The transfer, and the stock on its way.
	code, tb := getAs(t, adminToken, url+"/v1/transfers?state=in_transit")
	ts, _ := tb["transfers"].([]any)
	if code != http.StatusOK || len(ts) != 1 || ts[0].(map[string]any)["transfer_id"] != "hq-a-1" || ts[0].(map[string]any)["destination"] != "S1" {
		t.Fatalf("transfers: %d %v", code, tb)
	}
	checkSnake(t, tb)
	if code, tb := getAs(t, mgr3, url+"/v1/transfers"); code != http.StatusOK || len(tb["transfers"].([]any)) != 0 {
		t.Fatalf("manager of S3's transfers: %d %v", code, tb)
	}
	if code, _ := getAs(t, adminToken, url+"/v1/transfers?state=lost"); code != http.StatusBadRequest {
		t.Fatalf("bad state: %d", code)
	}
	_, inv := getAs(t, adminToken, url+"/v1/inventory/SKU-X")
	for _, l := range inv["locations"].([]any) {
		l := l.(map[string]any)
		want := 0.0
		if l["location"] == "S1" {
			want = 2
		}
		if got, _ := l["in_transit"].(float64); got != want {
			t.Errorf("in transit at %v: %v", l["location"], l["in_transit"])
		}
	}

	if _, list := getAs(t, adminToken, url+"/v1/inventory?location=S1"); len(list["items"].([]any)) != 1 || list["items"].([]any)[0].(map[string]any)["in_transit"] != 2.0 {
		t.Errorf("listing at S1: %v", list)
	}

	// The cart: dismissed once, by whom.
	dpath := url + "/v1/conflicts/carts/" + testCart + "/dismiss"
	if code, b := sendAs(t, http.MethodPost, analyst, dpath, `{}`); code != http.StatusForbidden {
		t.Fatalf("analyst dismissing: %d %v", code, b)
	}
	if code, b := sendAs(t, http.MethodPost, adminToken, dpath, `{}`); code != http.StatusOK {
		t.Fatalf("dismiss: %d %v", code, b)
	}
	if code, _ := sendAs(t, http.MethodPost, adminToken, url+"/v1/conflicts/carts/eaaaaaaaaaaaaaaaaaaaaaaaaa/dismiss", `{}`); code != http.StatusNotFound {
		t.Fatalf("dismissing an unknown cart: %d", code)
	}
	if got := conflictList(t, adminToken, url+"/v1/conflicts"); len(got) != 0 {
		t.Fatalf("open after all that: %v", got)
	}
	if got := conflictList(t, adminToken, url+"/v1/conflicts?all=1&type=cart_checkout"); len(got) != 1 || got[0]["resolved_by"] != "dismissed" {
		t.Fatalf("dismissed cart: %v", got)
	}
}

func jsonNum(n int64) string { b, _ := json.Marshal(n); return string(b) }
