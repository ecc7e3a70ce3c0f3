package kiosk

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/omnisync/omnisync/edge/internal/devices"
	"github.com/omnisync/omnisync/edge/internal/productcache"
	"github.com/omnisync/omnisync/edge/internal/productcache/cachetest"
	"github.com/omnisync/omnisync/shared/downsync"
)

// suggestRig is a mirror over a real product cache of n products (sizes
// S M L XL, 5 of each in store) whose product i's complements are i+1..i+8.
func suggestRig(t testing.TB, n int, present []devices.PresentItem) (*Kiosk, *productcache.Cache) {
	t.Helper()
	cache, err := productcache.Open(productcache.Options{Path: filepath.Join(t.TempDir(), "cache.db"), Store: "S1"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cache.Close() })
	var us []productcache.Update
	add := func(key string, v any) {
		b, _ := json.Marshal(v)
		us = append(us, productcache.Update{Key: key, Value: b})
	}
	for i := range n {
		add(downsync.ProductKey(cachetest.Product(i)), cachetest.ProductDoc(i, 1))
		for v := range cachetest.Variants {
			add(downsync.StockKey("S1", cachetest.SKU(i, v)), cachetest.StockDoc("S1", cachetest.SKU(i, v), 5, 1))
		}
		d := downsync.RecsDoc{ProductID: cachetest.Product(i), Version: 1}
		for j := 1; j <= 8; j++ {
			d.Complements = append(d.Complements, downsync.Complement{ProductID: cachetest.Product((i + j) % n), Reason: "often tried with", Score: int64(10 - j)})
		}
		add(downsync.RecsKey(d.ProductID), d)
	}
	// Product 1 in M is sold out here; product 2 has no stock doc for M.
	add(downsync.StockKey("S1", cachetest.SKU(1, 1)), cachetest.StockDoc("S1", cachetest.SKU(1, 1), 0, 2))
	if err := cache.Apply(context.Background(), us, 1, true); err != nil {
		t.Fatal(err)
	}
	k := New(Options{Store: "S1", Device: "mirror-1", Products: cache, Suggest: cache,
		Present: func() map[string][]devices.PresentItem { return map[string][]devices.PresentItem{"room-1": present} }})
	return k, cache
}

// Ensure that suggestions skip what is in the room and what is not in
// stock here in her size, explain themselves, and alternate between the
// items in the room.
func TestSuggest_InStockInHerSize(t *testing.T) {
	k, _ := suggestRig(t, 20, nil)
	items := []roomItem{
		{ProductID: cachetest.Product(0), Size: "M", Name: "Trail runner 0", SKU: cachetest.SKU(0, 1)},
		{ProductID: cachetest.Product(3), Size: "M", Name: "Trail runner 3", SKU: cachetest.SKU(3, 1)},
	}
	got := k.suggest(context.Background(), items)
	var ids []string
	for _, s := range got {
		ids = append(ids, s.ProductID)
		if len(s.Sizes) != 1 || s.Sizes[0].Label != "M" || !strings.HasPrefix(s.Why, "Often tried with Trail runner ") {
			t.Fatalf("suggestion %+v", s)
		}
	}
	// In turns, best first: 0's 1 (M sold out here), 3's 4; 0's 2, 3's 5;
	// 0's 3 (in the room), 3's 6.
	want := []string{cachetest.Product(4), cachetest.Product(2), cachetest.Product(5), cachetest.Product(6)}
	if !slices.Equal(ids, want) {
		t.Fatalf("suggested %v, want %v", ids, want)
	}
}

// TestSuggest_Latency measures how long a mirror takes to answer its room
// (three items, their suggestions) from a cache of 5,000 products: the
// request the page makes on every refresh. A figure, not a limit.
func TestSuggest_Latency(t *testing.T) {
	var present []devices.PresentItem
	for _, i := range []int{10, 200, 3000} {
		present = append(present, devices.PresentItem{GTIN: cachetest.GTIN(i*cachetest.Variants + 1), Since: time.Now()})
	}
	k, _ := suggestRig(t, 5000, present)
	mux := http.NewServeMux()
	k.Register(mux)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	var lat []time.Duration
	for i := range 300 {
		start := time.Now()
		resp, err := http.Get(srv.URL + "/kiosk/room/room-1")
		if err != nil {
			t.Fatal(err)
		}
		var b strings.Builder
		buf := make([]byte, 32<<10)
		for {
			n, err := resp.Body.Read(buf)
			b.Write(buf[:n])
			if err != nil {
				break
			}
		}
		resp.Body.Close()
		if i == 0 && strings.Count(b.String(), `class="sug"`) != maxSuggestions {
			t.Fatalf("room:\n%s", b.String())
		}
		lat = append(lat, time.Since(start))
	}
	slices.Sort(lat)
	t.Logf("mirror room with suggestions (3 items, 5,000 products): p50 %v p99 %v max %v", lat[len(lat)/2], lat[len(lat)*99/100], lat[len(lat)-1])
}
