package api

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/omnisync/omnisync/cloud/internal/auth"
	"github.com/omnisync/omnisync/cloud/internal/catalog"
	"github.com/omnisync/omnisync/cloud/internal/store"
	"github.com/omnisync/omnisync/shared/events"
	"github.com/omnisync/omnisync/shared/hlc"
	"github.com/omnisync/omnisync/shared/ids"
)

// newAPI serves the API over a real SQLite store holding a few events.
// A handler that never answers must fail its test with a timeout, not hold
// the package until go test's -timeout ends every test at once.
func init() { http.DefaultClient.Timeout = 2 * time.Minute }

func newAPI(t *testing.T) (*httptest.Server, *store.Store) {
	t.Helper()
	srv, st, _ := newAPIAuth(t)
	return srv, st
}

// newAPIAuth is newAPI that also returns the auth service.
func newAPIAuth(t *testing.T) (*httptest.Server, *store.Store, *auth.Service) {
	t.Helper()
	st, err := store.Open(context.Background(), "sqlite:"+filepath.Join(t.TempDir(), "hub.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	wall := time.Now().UnixMilli()
	var items []store.Item
	for i, ev := range []struct {
		store, kind, body string
	}{
		{"S1", "receipt", `{"location":"S1","lines":[{"sku":"SKU-1","qty":10},{"sku":"SKU-2","qty":3}]}`},
		{"S1", "sale", `{"location":"S1","lines":[{"sku":"SKU-1","qty":4}]}`},
		{"S2", "count", `{"location":"S2","lines":[{"sku":"SKU-1","qty":2}]}`},
		{"S2", "reserve", `{"reservation_id":"r1","location":"S2","lines":[{"sku":"SKU-1","qty":1}]}`},
	} {
		e := events.Envelope{V: 1, ID: ids.NewEventID(time.Now()), HLC: hlc.Timestamp{Wall: wall + int64(i)},
			Origin: events.Origin{Store: ev.store, Device: "pos-1", Epoch: 7, Seq: uint64(i + 1)},
			Kind:   events.Kind(ev.kind), Data: json.RawMessage(ev.body)}
		if ev.store == "S2" {
			e.Origin.Seq = uint64(i - 1)
		}
		items = append(items, store.Item{Env: e})
	}
	if _, err := st.ApplyBatch(context.Background(), items); err != nil {
		t.Fatal(err)
	}
	if err := st.RecordHeartbeat(context.Background(), store.Heartbeat{Store: "S1", Device: "pos-1", Epoch: 7, Backlog: 3,
		OldestUnackedAge: 2 * time.Second, At: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if err := st.AddDeadLetter(context.Background(), store.DeadLetter{Subject: "omni.ev.S9.x", Reason: "undecodable", Payload: []byte("garbage")}); err != nil {
		t.Fatal(err)
	}
	srv, svc := serveAPI(t, st, Options{Store: st, Version: "test"}, nil)
	return srv, st, svc
}

func get(t *testing.T, url string, out any) (int, map[string]any) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var raw json.RawMessage
	_ = json.NewDecoder(resp.Body).Decode(&raw)
	if out != nil {
		_ = json.Unmarshal(raw, out)
	}
	var m map[string]any
	_ = json.Unmarshal(raw, &m)
	return resp.StatusCode, m
}

func TestInventorySKU(t *testing.T) {
	srv, _ := newAPI(t)
	var v SKUStock
	code, _ := get(t, srv.URL+"/v1/inventory/SKU-1", &v)
	if code != 200 || len(v.Locations) != 2 {
		t.Fatalf("code %d, %+v", code, v)
	}
	s1, s2 := v.Locations[0], v.Locations[1]
	if s1.Location != "S1" || s1.OnHand != 6 || s2.Location != "S2" || s2.OnHand != 2 || s2.Reserved != 1 || s2.Available != 1 {
		t.Fatalf("locations %+v", v.Locations)
	}
	if v.Total.OnHand != 8 || v.Total.Reserved != 1 || v.Total.Available != 7 || v.Total.AsOf.IsZero() {
		t.Fatalf("total %+v", v.Total)
	}
}

func TestBadQueries(t *testing.T) {
	srv, _ := newAPI(t)
	tests := []struct {
		path  string
		code  int
		field string
	}{
		{"/v1/inventory/NOPE", 404, "sku"},
		{"/v1/inventory/" + fmt.Sprintf("%070d", 1), 400, "sku"},
		{"/v1/inventory?below=x", 400, "below"},
		{"/v1/inventory?limit=0", 400, "limit"},
		{"/v1/inventory?limit=5000", 400, "limit"},
		{"/v1/inventory?location=a.b", 400, "location"},
		{"/v1/inventory?after=nocursor", 400, "after"},
		{"/v1/deadletters?store=a%20b", 400, "store"},
		{"/v1/conflicts?limit=-1", 400, "limit"},
	}
	for _, tt := range tests {
		code, m := get(t, srv.URL+tt.path, nil)
		if code != tt.code || m["field"] != tt.field || m["error"] == "" {
			t.Errorf("%s: %d %v, want %d field %q", tt.path, code, m, tt.code, tt.field)
		}
	}
}

// Ensure that the listing pages through every row with its cursor and the
// low-stock filter keeps only what is below.
func TestInventoryList(t *testing.T) {
	srv, _ := newAPI(t)
	var all []StockRow
	next := ""
	for pages := 0; pages < 10; pages++ {
		var p StockPage
		url := srv.URL + "/v1/inventory?limit=1"
		if next != "" {
			url += "&after=" + next
		}
		if code, m := get(t, url, &p); code != 200 {
			t.Fatalf("%d %v", code, m)
		}
		all = append(all, p.Items...)
		if p.Next == "" {
			break
		}
		next = p.Next
	}
	if len(all) != 3 {
		t.Fatalf("paged %d rows, want 3: %+v", len(all), all)
	}
	var low StockPage
	get(t, srv.URL+"/v1/inventory?below=4", &low)
	if len(low.Items) != 2 { // S1/SKU-2 (3) and S2/SKU-1 (available 1)
		t.Fatalf("below=4: %+v", low.Items)
	}
	var s1 StockPage
	get(t, srv.URL+"/v1/inventory?location=S2", &s1)
	if len(s1.Items) != 1 || s1.Items[0].Location != "S2" {
		t.Fatalf("location=S2: %+v", s1.Items)
	}
}

func TestStoresAndDeadLetters(t *testing.T) {
	srv, _ := newAPI(t)
	var st struct {
		Stores []StoreHealth `json:"stores"`
	}
	get(t, srv.URL+"/v1/stores", &st)
	if len(st.Stores) != 2 || st.Stores[0].Store != "S1" || !st.Stores[0].Connected || st.Stores[1].Connected {
		t.Fatalf("stores %+v", st.Stores)
	}
	d := st.Stores[0].Devices[0]
	if d.Watermark != 2 || d.EventsApplied != 2 || d.Backlog != 3 || d.LagSeconds != 2 {
		t.Fatalf("S1 device %+v", d)
	}
	var dl struct {
		DeadLetters []DeadLetterView `json:"dead_letters"`
	}
	get(t, srv.URL+"/v1/deadletters", &dl)
	if len(dl.DeadLetters) != 1 || dl.DeadLetters[0].Reason != "undecodable" || dl.DeadLetters[0].Raw != "garbage" {
		t.Fatalf("dead letters %+v", dl.DeadLetters)
	}
	if code, _ := get(t, srv.URL+"/healthz", nil); code != 200 {
		t.Fatalf("healthz %d", code)
	}
}

// Ensure that a catalog item no store holds answers 200 with zeros (it is
// out of stock, not unknown), and only a SKU nobody knows answers 404.
func TestInventorySKU_CatalogWithoutStock(t *testing.T) {
	srv, st := newAPI(t)
	_, err := st.ImportCatalog(context.Background(), []catalog.Variant{{SKU: "NEW-1", ProductID: "P-NEW", GTINs: []string{"05012302000003"}, Name: "New arrival", PriceMinor: 100, Currency: "EUR"}}, store.ImportOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var v SKUStock
	if code, _ := get(t, srv.URL+"/v1/inventory/NEW-1", &v); code != 200 || v.SKU != "NEW-1" || len(v.Locations) != 0 || v.Total.OnHand != 0 || v.Total.Available != 0 {
		t.Fatalf("catalog item without stock: %d %+v", code, v)
	}
	if code, m := get(t, srv.URL+"/v1/inventory/NEVER-HEARD", nil); code != 404 || m["field"] != "sku" {
		t.Fatalf("unknown SKU: %d %v", code, m)
	}
}

// Ensure that every position says how far to trust it: a position never
// counted is low, one counted just now high, with its count's time.
func TestInventorySKU_Confidence(t *testing.T) {
	srv, _ := newAPI(t)
	var v SKUStock
	if code, _ := get(t, srv.URL+"/v1/inventory/SKU-1", &v); code != 200 || len(v.Locations) == 0 {
		t.Fatalf("%d %+v", code, v)
	}
	for _, l := range v.Locations {
		if l.Confidence == "" || (l.LastCountAt.IsZero() != (l.Confidence == "low")) {
			t.Errorf("%s: confidence %q, last count %v", l.Location, l.Confidence, l.LastCountAt)
		}
	}
}
