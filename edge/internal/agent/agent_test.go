package agent

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/omnisync/omnisync/edge/internal/pickups"
	"github.com/omnisync/omnisync/edge/internal/pickups/pickuptest"
	"github.com/omnisync/omnisync/edge/internal/productcache/cachetest"
	"github.com/omnisync/omnisync/shared/downsync"
	"github.com/omnisync/omnisync/shared/testkit"
)

// Ensure that the agent serves GET /v1/products/{code} from its cache, fed
// from the down-sync bucket with the stock of its configured locations only,
// and reports the down-sync in /v1/status and /metrics.
func TestAgent_ProductLookup(t *testing.T) {
	ns := testkit.StartNATS(t)
	nc, err := nats.Connect(ns.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	ctx := context.Background()
	kv, err := downsync.EnsureBucket(ctx, js, 1)
	if err != nil {
		t.Fatal(err)
	}
	p := cachetest.ProductDoc(1, 1)
	sku, gtin := p.Variants[2].SKU, p.Variants[2].GTINs[0]
	put := func(key string, v any) {
		if _, err := kv.Put(ctx, key, cachetest.JSON(v)); err != nil {
			t.Fatal(err)
		}
	}
	put(downsync.ProductKey(p.ID), p)
	for i, l := range []string{"S1", "S2", "S3", "online"} {
		put(downsync.StockKey(l, sku), cachetest.StockDoc(l, sku, int64(i+1), 1))
	}

	cfg := Defaults()
	cfg.Store, cfg.Device, cfg.NATSURL, cfg.DataDir, cfg.HTTP = "S1", "kiosk-1", ns.URL(), t.TempDir(), "127.0.0.1:0"
	cfg.Nearby = []string{"S2"}
	a, base := runAgent(t, cfg)

	var v downsync.View
	// The product may reach the cache before its stock, and both before
	// the downlink records that it has caught up (as_of): wait for all.
	testkit.Eventually(t, 10*time.Second, func() bool {
		v = downsync.View{}
		if get(t, base+"/v1/products/"+url.PathEscape("https://id.example.com/01/"+gtin+"/21/X1"), &v) != http.StatusOK ||
			len(v.Variants) < 3 || v.AsOf.IsZero() {
			return false
		}
		st := v.Variants[2].Stock
		return st.Here != nil && st.Online != nil && len(st.Nearby) == 1
	}, "product and its stock answered from the cache")
	vv := v.Variants[2]
	if v.Selected != sku || vv.Stock.Here.Available != 1 || len(vv.Stock.Nearby) != 1 || vv.Stock.Nearby[0].Available != 2 ||
		vv.Stock.Online.Available != 4 || v.AsOf.IsZero() || v.Stale {
		t.Fatalf("view: selected %q stock %+v as_of %v stale %v", v.Selected, vv.Stock, v.AsOf, v.Stale)
	}
	var e map[string]string
	bad := gtin[:13] + string('0'+(gtin[13]-'0'+1)%10)
	if st := get(t, base+"/v1/products/"+bad, &e); st != http.StatusBadRequest || e["field"] != "code" {
		t.Errorf("bad check digit: %d %v", st, e)
	}
	if st := get(t, base+"/v1/products/4006381333931", &e); st != http.StatusNotFound {
		t.Errorf("unknown: %d %v", st, e)
	}
	// A scan of the GTIN is labelled with its product.
	if ref, ok := (catalog{a.Products()}).ProductForGTIN(gtin[1:]); !ok || ref.SKU != sku || ref.ID != p.ID {
		t.Errorf("catalog for devices: %+v %v", ref, ok)
	}

	var status struct {
		Downsync struct {
			Connected      bool     `json:"connected"`
			LastSeq        uint64   `json:"last_seq"`
			StockPositions int64    `json:"stock_positions"`
			Locations      []string `json:"locations"`
		} `json:"downsync"`
	}
	get(t, base+"/v1/status", &status)
	if d := status.Downsync; !d.Connected || d.LastSeq != 5 || d.StockPositions != 3 || strings.Join(d.Locations, ",") != "S1,S2,online" {
		t.Errorf("status downsync = %+v", d)
	}
	hasMetrics(t, base, "omni_edge_downsync_last_seq 5", "omni_edge_downsync_connected 1", `omni_edge_downsync_cache_entries{kind="stock_positions"} 3`)
}

// runAgent runs an agent with cfg until the test ends, and returns it once
// ready with the base URL of its API.
func runAgent(t *testing.T, cfg Config) (*Agent, string) {
	t.Helper()
	return runAgentWith(t, cfg, nil)
}

// runAgentWith is runAgent with tune, if any, called on the agent before
// it runs (to set what Config does not carry).
func runAgentWith(t *testing.T, cfg Config, tune func(*Agent)) (*Agent, string) {
	t.Helper()
	a, err := New(cfg, nil, "test")
	if err != nil {
		t.Fatal(err)
	}
	if tune != nil {
		tune(a)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	select {
	case <-a.Ready():
	case err := <-done:
		done <- err // for the cleanup
		t.Fatalf("agent stopped before it was ready: %v", err)
	}
	return a, "http://" + a.HTTPAddr()
}

// hasMetrics fails the test unless the agent's /metrics has every line.
func hasMetrics(t *testing.T, base string, lines ...string) {
	t.Helper()
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, l := range lines {
		if !strings.Contains(string(body), l) {
			t.Errorf("/metrics lacks %q", l)
		}
	}
}

func get(t *testing.T, url string, v any) int {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	_ = json.NewDecoder(resp.Body).Decode(v)
	return resp.StatusCode
}

// Ensure that the agent follows the store's pickup orders into its own
// cache and serves them on GET /v1/pickups, with their state in /v1/status
// and /metrics; another store's orders are not there.
func TestAgent_Pickups(t *testing.T) {
	ns := testkit.StartNATS(t)
	h := pickuptest.Connect(t, ns.URL()).CreateBucket()
	h.Put(pickuptest.Order("S1", "web-1001", downsync.PickupOpen, 1, 1_700_000_000_000))
	h.Put(pickuptest.Order("S2", "web-1002", downsync.PickupOpen, 1, 1_700_000_000_000))

	cfg := Defaults()
	cfg.Store, cfg.Device, cfg.NATSURL, cfg.DataDir, cfg.HTTP = "S1", "pos-1", ns.URL(), t.TempDir(), "127.0.0.1:0"
	// A pickup cache that is not a bbolt file is moved aside, not fatal.
	if err := os.WriteFile(filepath.Join(cfg.DataDir, "pickups.db"), []byte("not a bbolt file, not at all"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, base := runAgent(t, cfg)
	if aside, _ := filepath.Glob(filepath.Join(cfg.DataDir, "pickups.db.unreadable-*")); len(aside) != 1 {
		t.Errorf("unreadable pickup cache moved aside: %v", aside)
	}

	var list pickups.List
	asked := time.Now()
	testkit.Eventually(t, 10*time.Second, func() bool {
		list = pickups.List{}
		asked = time.Now()
		return get(t, base+"/v1/pickups?state=open", &list) == http.StatusOK && list.Synced && len(list.Orders) == 1
	}, "the open order listed")
	// Live: the list is current as of the answer.
	if o := list.Orders[0]; list.Store != "S1" || list.AsOf == nil || list.AsOf.Before(asked.Add(-time.Millisecond)) ||
		o.ReservationID != "web-1001" || o.Store != "S1" ||
		len(o.Lines) != 1 || o.Lines[0].SKU != "SKU-web-1001" {
		t.Errorf("list = %+v", list)
	}
	h.Put(pickuptest.Order("S1", "web-1001", downsync.PickupCollected, 2, 1_700_000_000_000))
	var (
		d      downsync.PickupDoc
		status struct {
			Pickups pickups.Status `json:"pickups"`
		}
	)
	// The counts in the status follow the cache's commit by a moment.
	testkit.Eventually(t, 10*time.Second, func() bool {
		return get(t, base+"/v1/pickups/web-1001", &d) == http.StatusOK && d.State == downsync.PickupCollected &&
			get(t, base+"/v1/status", &status) == http.StatusOK && status.Pickups.Open == 0
	}, "the order collected: %+v, status %+v", &d, &status)
	if p := status.Pickups; !p.Connected || !p.Synced || p.Orders != 1 || p.SyncedAt.IsZero() || p.Sessions != 1 {
		t.Errorf("status pickups = %+v", p)
	}
	var e map[string]string
	if code := get(t, base+"/v1/pickups/web-1002", &e); code != http.StatusNotFound {
		t.Errorf("another store's order: %d %v", code, e)
	}
	if code := get(t, base+"/v1/pickups?limit=none", &e); code != http.StatusBadRequest || e["field"] != "limit" {
		t.Errorf("bad limit: %d %v", code, e)
	}

	hasMetrics(t, base, `omni_edge_pickups_orders{state="collected"} 1`, "omni_edge_pickups_synced 1", "omni_edge_pickups_sessions_total 1")
}
