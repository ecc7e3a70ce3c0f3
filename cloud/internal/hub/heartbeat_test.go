package hub_test

import (
	"context"
	"encoding/json"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/omnisync/omnisync/cloud/internal/api"
	"github.com/omnisync/omnisync/cloud/internal/heartbeat"
	"github.com/omnisync/omnisync/cloud/internal/hub"
	"github.com/omnisync/omnisync/shared/events"
	"github.com/omnisync/omnisync/shared/hlc"
	"github.com/omnisync/omnisync/shared/ids"
	"github.com/omnisync/omnisync/shared/subjects"
	"github.com/omnisync/omnisync/shared/syncproto"
	"github.com/omnisync/omnisync/shared/testkit"
)

// startHub runs a hub on its own embedded-in-the-test NATS server and db
// (SQLite in a temporary directory when empty) until the test ends, and
// returns it with a connection to that NATS server.
func startHub(tb testing.TB, db string) (*hub.Hub, *nats.Conn) {
	tb.Helper()
	ns := testkit.StartNATS(tb)
	cfg := hub.Defaults()
	cfg.DataDir = tb.TempDir()
	cfg.NATSURL = ns.URL()
	cfg.DB = db
	if db == "" {
		cfg.DB = "sqlite:" + filepath.Join(cfg.DataDir, "hub.db")
	}
	cfg.HTTP = "127.0.0.1:0"
	cfg.BootstrapToken = testToken
	h, err := hub.New(cfg, testkit.Logger(tb), "test")
	if err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- h.Run(ctx) }()
	tb.Cleanup(func() { cancel(); <-done })
	select {
	case <-h.Ready():
	case err := <-done:
		tb.Fatalf("hub exited: %v", err)
	case <-time.After(60 * time.Second):
		tb.Fatal("hub not ready")
	}
	nc, err := nats.Connect(ns.URL())
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(nc.Close)
	return h, nc
}

// Ensure that the flush interval keeps the API's view of a device well
// inside the window in which it still calls the device connected.
func TestHeartbeatFlushInsideConnectedWindow(t *testing.T) {
	if 4*heartbeat.MaxFlushEvery > api.DefaultConnectedWithin {
		t.Fatalf("heartbeats may be flushed every %v, too slow for a %v connected window", heartbeat.MaxFlushEvery, api.DefaultConnectedWithin)
	}
}

// Ensure that an agent's heartbeat shows in GET /v1/stores within a flush,
// and that its reply carries the watermark of the events the hub applied,
// learnt from the hub's own batches.
func TestHeartbeatThroughHub(t *testing.T) {
	h, nc := startHub(t, "")
	sync := func(hb syncproto.Heartbeat) syncproto.HeartbeatReply {
		t.Helper()
		hb.Store, hb.Device, hb.AgentTimeMS = "S1", "pos-1", time.Now().UnixMilli()
		b, _ := json.Marshal(hb)
		m, err := nc.Request(subjects.HubSync("S1", "pos-1"), b, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		var rep syncproto.HeartbeatReply
		if err := json.Unmarshal(m.Data, &rep); err != nil || rep.Error != "" {
			t.Fatalf("reply %s: %v", m.Data, err)
		}
		return rep
	}
	const epoch = 1_700_000_000_000_001
	if rep := sync(syncproto.Heartbeat{Epoch: epoch, Version: "1.4.0", Backlog: 3, OldestUnackedMS: 1500}); len(rep.Watermarks) != 0 {
		t.Fatalf("watermarks %+v before any event", rep.Watermarks)
	}
	var stores struct{ Stores []api.StoreHealth }
	testkit.Eventually(t, 10*time.Second, func() bool {
		return getJSON(t, "http://"+h.HTTPAddr()+"/v1/stores", &stores) && len(stores.Stores) == 1 &&
			stores.Stores[0].Devices[0].Connected && stores.Stores[0].Devices[0].Backlog == 3
	}, "the heartbeat shown in /v1/stores")

	// The device's first three events reach the hub.
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	for seq := uint64(1); seq <= 3; seq++ {
		data, _ := json.Marshal(events.StockMove{Location: "S1", Lines: []events.Line{{SKU: "SKU-1", Qty: 1}}})
		b, _ := json.Marshal(events.Envelope{V: events.CurrentVersion, ID: ids.NewEventID(time.Now()),
			Origin: events.Origin{Store: "S1", Device: "pos-1", Epoch: epoch, Seq: seq},
			HLC:    hlc.Timestamp{Wall: time.Now().UnixMilli()}, Kind: events.KindSale, Data: data})
		if _, err := js.Publish(context.Background(), subjects.Event("S1", "pos-1"), b); err != nil {
			t.Fatal(err)
		}
	}
	testkit.Eventually(t, 10*time.Second, func() bool {
		rep := sync(syncproto.Heartbeat{Epoch: epoch, Backlog: 0})
		return len(rep.Watermarks) == 1 && rep.Watermarks[0] == syncproto.Watermark{Epoch: epoch, Seq: 3}
	}, "the applied watermark in a caught-up device's heartbeat reply")
}

// testToken is the admin API token the test hubs are bootstrapped with.
const testToken = "omni_hub-test-admin-token-000000"

func getJSON(t *testing.T, url string, out any) bool {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+testToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	return resp.StatusCode == http.StatusOK && json.NewDecoder(resp.Body).Decode(out) == nil
}
