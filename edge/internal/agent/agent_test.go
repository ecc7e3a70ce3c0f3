package agent

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

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
	a, err := New(cfg, nil, "test")
	if err != nil {
		t.Fatal(err)
	}
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- a.Run(runCtx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	<-a.Ready()
	base := "http://" + a.HTTPAddr()

	var v downsync.View
	// The product may reach the cache before its stock: wait for both.
	testkit.Eventually(t, 10*time.Second, func() bool {
		v = downsync.View{}
		if get(t, base+"/v1/products/"+url.PathEscape("https://id.example.com/01/"+gtin+"/21/X1"), &v) != http.StatusOK || len(v.Variants) < 3 {
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
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, m := range []string{"omni_edge_downsync_last_seq 5", "omni_edge_downsync_connected 1", `omni_edge_downsync_cache_entries{kind="stock_positions"} 3`} {
		if !strings.Contains(string(body), m) {
			t.Errorf("/metrics lacks %q", m)
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
