package api

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/omnisync/omnisync/cloud/internal/auth"
	"github.com/omnisync/omnisync/cloud/internal/inventory"
	"github.com/omnisync/omnisync/cloud/internal/store"
	"github.com/omnisync/omnisync/shared/downsync"
	"github.com/omnisync/omnisync/shared/events"
	"github.com/omnisync/omnisync/shared/hlc"
	"github.com/omnisync/omnisync/shared/ids"
)

// Ensure that GET /v1/counts/variances lists each count's variance with
// totals, and shows a store manager only their stores.
func TestCountVariances_Roles(t *testing.T) {
	srv, st, svc := newAPIAuth(t)
	// S1 sweeps SKU-1: 6 on the books (10 received, 4 sold), 5 found.
	now := time.Now()
	body, _ := json.Marshal(events.StockMove{Location: "S1", Method: events.CountRFIDSweep, SnapshotAt: now.Add(5 * time.Millisecond),
		Lines: []events.Line{{SKU: "SKU-1", Qty: 5}}})
	e := events.Envelope{V: 1, ID: ids.NewEventID(now), HLC: hlc.Timestamp{Wall: now.UnixMilli() + 10},
		Origin: events.Origin{Store: "S1", Device: "rfid-1", Epoch: 1, Seq: 1}, Kind: events.KindCount, Data: body}
	if _, err := st.ApplyBatch(context.Background(), []store.Item{{Env: e}}); err != nil {
		t.Fatal(err)
	}
	mgr := tokenFor(t, svc, "manager-s1", auth.StoreManager, "S1")
	analyst := tokenFor(t, svc, "analyst", auth.Analyst)
	mod := tokenFor(t, svc, "mod", auth.Moderator)

	for _, tt := range []struct {
		name, token, query string
		code               int
		locations          []string
		net                float64
	}{
		{"analyst sees every store", analyst, "", 200, []string{"S1", "S2"}, 1},
		{"analyst picks a store", analyst, "?store=S2", 200, []string{"S2"}, 2},
		{"manager sees their store", mgr, "", 200, []string{"S1"}, -1},
		{"manager asks for another", mgr, "?store=S2", http.StatusForbidden, nil, 0},
		{"moderator may not", mod, "", http.StatusForbidden, nil, 0},
		{"window after the counts", analyst, "?since=" + now.Add(time.Hour).UTC().Format(time.RFC3339), 200, nil, 0},
		{"bad since", analyst, "?since=last+week", http.StatusBadRequest, nil, 0},
		{"bad store", analyst, "?store=a%20b", http.StatusBadRequest, nil, 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			code, m := getAs(t, tt.token, srv.URL+"/v1/counts/variances"+tt.query)
			if code != tt.code {
				t.Fatalf("%d %v, want %d", code, m, tt.code)
			}
			if code != 200 {
				return
			}
			items, _ := m["items"].([]any)
			var locs []string
			for _, it := range items {
				locs = append(locs, it.(map[string]any)["location"].(string))
			}
			if len(locs) != len(tt.locations) {
				t.Fatalf("locations %v, want %v", locs, tt.locations)
			}
			for _, l := range locs {
				found := false
				for _, w := range tt.locations {
					found = found || l == w
				}
				if !found {
					t.Fatalf("locations %v, want %v", locs, tt.locations)
				}
			}
			if net := m["totals"].(map[string]any)["units_net"].(float64); net != tt.net {
				t.Errorf("net %v, want %v", net, tt.net)
			}
		})
	}
	// The S1 sweep's record, in full.
	code, m := getAs(t, mgr, srv.URL+"/v1/counts/variances")
	it := m["items"].([]any)[0].(map[string]any)
	if code != 200 || it["method"] != "rfid_sweep" || it["expected"] != 6.0 || it["counted"] != 5.0 || it["variance"] != -1.0 ||
		it["store"] != "S1" || it["device"] != "rfid-1" {
		t.Errorf("%d %v", code, it)
	}
}

// Ensure that online stock below the minimum confidence is not promised,
// and that other locations' stock and a confident count are left alone.
func TestWithholdUnsure(t *testing.T) {
	now := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	rows := []store.Stock{
		{SKU: "A", Location: "online", Available: 4, CountedAt: now.Add(-time.Hour), CountMethod: events.CountManual},
		{SKU: "B", Location: "online", Available: 3, CountedAt: now.Add(-time.Hour), CountMethod: events.CountRFIDSweep},
		{SKU: "C", Location: "online", Available: 2},
		{SKU: "A", Location: "S1", Available: 5},
	}
	for _, tt := range []struct {
		min  inventory.Confidence
		want map[string]int64 // SKU@location → available
	}{
		{"", map[string]int64{"A@online": 4, "B@online": 3, "C@online": 2, "A@S1": 5}},
		{inventory.ConfidenceLow, map[string]int64{"A@online": 4, "B@online": 3, "C@online": 2, "A@S1": 5}},
		{inventory.ConfidenceMedium, map[string]int64{"A@online": 4, "B@online": 3, "C@online": 0, "A@S1": 5}},
		{inventory.ConfidenceHigh, map[string]int64{"A@online": 0, "B@online": 3, "C@online": 0, "A@S1": 5}},
	} {
		a := New(Options{OnlineMinConfidence: tt.min, Now: func() time.Time { return now }})
		docs := map[inventory.Key]downsync.StockDoc{}
		for _, r := range rows {
			docs[inventory.Key{SKU: r.SKU, Location: r.Location}] = downsync.StockDoc{SKU: r.SKU, Location: r.Location, Available: r.Available}
		}
		a.withholdUnsure(docs, rows)
		for k, d := range docs {
			if w := tt.want[k.SKU+"@"+k.Location]; d.Available != w {
				t.Errorf("min %q: %s@%s available %d, want %d", tt.min, k.SKU, k.Location, d.Available, w)
			}
		}
	}
}

// Ensure that GET /v1/stores shows each store's unsynced sales, ageing
// since the heartbeat, flagged past the limit, to those who may see it.
func TestStores_UnsyncedSales(t *testing.T) {
	srv, st, svc := newAPIAuth(t)
	at := time.Now().Add(time.Millisecond) // after the fixture's heartbeat
	if err := st.RecordHeartbeats(context.Background(), []store.Heartbeat{
		{Store: "S1", Device: "pos-1", Epoch: 7, Backlog: 3, At: at, Connected: true,
			Unsynced: store.UnsyncedSales{Count: 2, Value: 1300, OldestAge: 40 * time.Minute}},
		{Store: "S2", Device: "pos-1", Epoch: 7, Backlog: 1, At: at, Connected: true,
			Unsynced: store.UnsyncedSales{Count: 1, Value: 500, OldestAge: time.Minute}},
	}); err != nil {
		t.Fatal(err)
	}
	mgr := tokenFor(t, svc, "manager-s2", auth.StoreManager, "S2")
	analyst := tokenFor(t, svc, "analyst", auth.Analyst)
	byStore := func(token string) map[string]map[string]any {
		code, m := getAs(t, token, srv.URL+"/v1/stores")
		if code != 200 {
			t.Fatalf("%d %v", code, m)
		}
		out := map[string]map[string]any{}
		for _, s := range m["stores"].([]any) {
			out[s.(map[string]any)["store"].(string)] = s.(map[string]any)
		}
		return out
	}
	all := byStore(analyst)
	s1, s2 := all["S1"], all["S2"]
	if s1["unsynced_sales"] != 2.0 || s1["unsynced_value"] != 1300.0 || s1["unsynced_alert"] != true ||
		s1["oldest_unsynced_sale_seconds"].(float64) < 40*60 {
		t.Errorf("S1 %v", s1)
	}
	if s2["unsynced_sales"] != 1.0 || s2["unsynced_alert"] != nil {
		t.Errorf("S2 %v", s2)
	}
	if mine := byStore(mgr); len(mine) != 1 || mine["S2"] == nil {
		t.Errorf("manager of S2 sees %v", mine)
	}
}
