package api

import (
	"context"
	"encoding/json"
	"net/http"
	"reflect"
	"testing"
	"time"

	"github.com/omnisync/omnisync/cloud/internal/auth"
	"github.com/omnisync/omnisync/cloud/internal/store"
	"github.com/omnisync/omnisync/shared/events"
	"github.com/omnisync/omnisync/shared/hlc"
	"github.com/omnisync/omnisync/shared/ids"
)

// Ensure that GET /v1/stores shows each device's peripherals as their
// latest device_status events report them (state, since when, the state
// before, the newest error), and a store manager only their stores'.
func TestStores_Peripherals(t *testing.T) {
	srv, st, svc := newAPIAuth(t)
	wall := time.Now().Add(-time.Hour).UnixMilli()
	var items []store.Item
	for i, ev := range []struct{ store, body string }{
		{"S1", `{"name":"scanner-1","state":"reopening","detail":"open /dev/ttyACM0: no such file"}`},
		{"S1", `{"name":"scanner-1","state":"open"}`},
		{"S1", `{"name":"rfid-1","state":"failed","detail":"not a terminal"}`},
		{"S2", `{"name":"scanner-1","state":"open"}`},
	} {
		items = append(items, store.Item{Env: events.Envelope{V: 1, ID: ids.NewEventID(time.Now()), HLC: hlc.Timestamp{Wall: wall + int64(i)*1000},
			Origin: events.Origin{Store: ev.store, Device: "pos-1", Epoch: 7, Seq: uint64(10 + i)},
			Kind:   events.KindDeviceStatus, Data: json.RawMessage(ev.body)}})
	}
	if _, err := st.ApplyBatch(context.Background(), items); err != nil {
		t.Fatal(err)
	}
	type view struct {
		Stores []struct {
			Store   string
			Devices []struct {
				Device      string
				Peripherals []Peripheral
			}
		}
	}
	read := func(token string) map[string][]Peripheral {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, srv.URL+"/v1/stores", nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var v view
		if resp.StatusCode != http.StatusOK || json.NewDecoder(resp.Body).Decode(&v) != nil {
			t.Fatalf("GET /v1/stores: %d", resp.StatusCode)
		}
		out := map[string][]Peripheral{}
		for _, s := range v.Stores {
			for _, d := range s.Devices {
				out[s.Store+"/"+d.Device] = d.Peripherals
			}
		}
		return out
	}
	at := func(i int) time.Time { return time.UnixMilli(wall + int64(i)*1000).UTC() }
	all := read(tokenFor(t, svc, "analyst", auth.Analyst))
	want := []Peripheral{
		{Name: "rfid-1", State: "failed", Since: at(2), ReportedAt: at(2), Detail: "not a terminal", LastError: "not a terminal", LastErrorAt: at(2)},
		{Name: "scanner-1", State: "open", Connected: true, Since: at(1), ReportedAt: at(1), PreviousState: "reopening",
			LastError: "open /dev/ttyACM0: no such file", LastErrorAt: at(0)},
	}
	if got := all["S1/pos-1"]; !reflect.DeepEqual(got, want) {
		t.Fatalf("S1/pos-1 peripherals:\n got %+v\nwant %+v", got, want)
	}
	if got := all["S2/pos-1"]; len(got) != 1 || got[0].Name != "scanner-1" || !got[0].Connected {
		t.Fatalf("S2/pos-1 peripherals: %+v", got)
	}
	mine := read(tokenFor(t, svc, "manager-s2", auth.StoreManager, "S2"))
	if len(mine) != 1 || len(mine["S2/pos-1"]) != 1 {
		t.Fatalf("S2's manager sees %+v", mine)
	}
}
