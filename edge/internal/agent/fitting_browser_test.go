package agent

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/omnisync/omnisync/edge/internal/devices"
	"github.com/omnisync/omnisync/edge/internal/productcache/cachetest"
	"github.com/omnisync/omnisync/edge/internal/rfidsim"
	"github.com/omnisync/omnisync/shared/downsync"
	"github.com/omnisync/omnisync/shared/testkit"
)

// tags plays a fitting-room reader: each tag on its antennas at its RSSI,
// every 100 ms, through the real reader protocol over a pty.
type tags struct {
	r  *rfidsim.Reader
	mu sync.Mutex
	on map[string]map[int]float64 // EPC → antenna → RSSI
}

func (g *tags) put(epc string, antennaRSSI map[int]float64) {
	g.mu.Lock()
	g.on[epc] = antennaRSSI
	g.mu.Unlock()
}

func (g *tags) remove(epc string) {
	g.mu.Lock()
	delete(g.on, epc)
	g.mu.Unlock()
}

func (g *tags) run(ctx context.Context) {
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		g.mu.Lock()
		for epc, ants := range g.on {
			for a, rssi := range ants {
				_ = g.r.Read(a, epc, rssi)
			}
		}
		g.mu.Unlock()
	}
}

func repoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "..")
}

// Ensure, in Chromium against a real agent reading a simulated R2000
// reader through a pty: tags that enter room 1 fill its mirror, with
// complements in stock here in her size, each explained; a tag read weakly
// at room 1 and strongly at room 2 shows in room 2 only; "another size"
// reaches the staff page, which claims it and marks it done; and all of it
// again with NATS down (the mirror suggests from the cached lists, the
// queue is local).
func TestFittingRoom_MirrorAndStaffInBrowser(t *testing.T) {
	t.Parallel() // mostly waits on processes and timers
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
	put := func(key string, v any) {
		if _, err := kv.Put(ctx, key, cachetest.JSON(v)); err != nil {
			t.Fatal(err)
		}
	}
	// Products 0..4, sizes S M L XL. She tries product 0 (and later 3) in
	// M. Complements of 0: 1 (M in stock, so suggested in M only), 2 (M
	// sold out here: not suggested), 4 (M in stock).
	for i := range 5 {
		put(downsync.ProductKey(cachetest.Product(i)), cachetest.ProductDoc(i, 1))
		for v := range cachetest.Variants {
			put(downsync.StockKey("S1", cachetest.SKU(i, v)), cachetest.StockDoc("S1", cachetest.SKU(i, v), 5, 1))
		}
	}
	put(downsync.StockKey("S1", cachetest.SKU(2, 1)), cachetest.StockDoc("S1", cachetest.SKU(2, 1), 0, 2))
	put(downsync.RecsKey(cachetest.Product(0)), downsync.RecsDoc{ProductID: cachetest.Product(0), Version: 1, Complements: []downsync.Complement{
		{ProductID: cachetest.Product(2), Reason: "completes the look", Score: 9},
		{ProductID: cachetest.Product(1), Reason: "completes the look", Score: 5},
		{ProductID: cachetest.Product(4), Reason: "often tried with", Score: 3},
	}})
	put(downsync.RecsKey(cachetest.Product(3)), downsync.RecsDoc{ProductID: cachetest.Product(3), Version: 1, Complements: []downsync.Complement{
		{ProductID: cachetest.Product(4), Reason: "often tried with", Score: 2},
	}})

	rd, err := rfidsim.Open()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rd.Close() })
	cfg := Defaults()
	cfg.Store, cfg.Device, cfg.NATSURL, cfg.DataDir, cfg.HTTP = "S1", "mirror-1", ns.URL(), t.TempDir(), "127.0.0.1:0"
	cfg.Profiles = filepath.Join(repoRoot(), "firmware-configs")
	cfg.Devices = []devices.Config{{Name: "fr-1", Port: rd.Path, Profile: rfidsim.Profile, Zones: []devices.ZoneConfig{
		{Name: "room-1", Antennas: []int{1}}, {Name: "room-2", Antennas: []int{2}},
	}}}
	_, base := runAgent(t, cfg)
	testkit.Eventually(t, 10*time.Second, func() bool {
		var v downsync.View
		return get(t, base+"/v1/products/"+cachetest.SKU(4, 1), &v) == 200 && len(v.Variants) == 4 && v.Variants[1].Stock.Here != nil
	}, "the catalog reached the cache")

	g := &tags{r: rd, on: map[string]map[int]float64{}}
	gctx, stop := context.WithCancel(ctx)
	defer stop()
	go g.run(gctx)

	browser := testkit.Browser(t)
	// Two browsers, as in the store: the mirror and the associate's
	// handheld (one tab each: a background tab's page is throttled).
	mirror := browser
	staff := testkit.Browser(t)
	do := func(c context.Context, what string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		ctx, cancel := context.WithTimeout(c, 20*time.Second)
		defer cancel()
		if err := chromedp.Do(ctx, actions...); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	text := func(c context.Context, sel string) string {
		t.Helper()
		ctx, cancel := context.WithTimeout(c, 10*time.Second)
		defer cancel()
		s, err := chromedp.Run(ctx, chromedp.Text(sel))
		if err != nil {
			t.Fatalf("text of %s: %v", sel, err)
		}
		return strings.TrimSpace(s)
	}
	do(staff, "open the staff page", chromedp.Navigate(base+"/staff/"), chromedp.WaitVisible(`#list`))

	var latencies []time.Duration
	round := func(name string, tried, stray int, serial int) {
		gtin := cachetest.GTIN(tried*cachetest.Variants + 1) // size M
		epcA, err := rfidsim.EPCFor(gtin, serial)
		if err != nil {
			t.Fatal(err)
		}
		epcB, _ := rfidsim.EPCFor(cachetest.GTIN(stray*cachetest.Variants+1), serial+1)
		// A in room 1; B weak at room 1, strong at room 2.
		g.put(epcA, map[int]float64{1: -49})
		g.put(epcB, map[int]float64{1: -68, 2: -49})
		defer g.remove(epcA)
		defer g.remove(epcB)

		do(mirror, name+": the mirror of room 1 lists the tag", chromedp.Navigate(base+"/kiosk/?zone=room-1"),
			chromedp.WaitVisible(`li.item[data-gtin="`+gtin+`"]`))
		wctx, wcancel := context.WithTimeout(mirror, 15*time.Second)
		_, err = chromedp.Run(wctx, chromedp.WaitVisible(`li.sug[data-product="`+cachetest.Product(4)+`"]`))
		wcancel()
		if err != nil {
			resp, _ := http.Get(base + "/kiosk/room/room-1")
			html, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			t.Fatalf("%s: no suggestions in the page: %v; the room now:\n%s", name, err, html)
		}
		sugs, err := chromedp.Run(mirror, chromedp.Evaluate[[]string](`Array.from(document.querySelectorAll("li.sug")).map(li =>
			li.dataset.product + ":" + Array.from(li.querySelectorAll("button.opt")).map(b => b.value).join(",") + ":" + li.querySelector(".why").textContent)`))
		if err != nil {
			t.Fatal(err)
		}
		if tried == 0 {
			want := []string{
				cachetest.Product(1) + ":" + cachetest.SKU(1, 1) + ":Completes the look with Trail runner 0",
				cachetest.Product(4) + ":" + cachetest.SKU(4, 1) + ":Often tried with Trail runner 0",
			}
			if !slices.Equal(sugs, want) {
				t.Fatalf("%s: suggestions\n got %q\nwant %q", name, sugs, want)
			}
		}
		strayInRoom1, err := chromedp.Run(mirror, chromedp.Evaluate[bool](`document.querySelector('li.item[data-gtin="`+cachetest.GTIN(stray*cachetest.Variants+1)+`"]') !== null`))
		if err != nil {
			t.Fatal(err)
		}
		if strayInRoom1 {
			t.Fatalf("%s: the tag read weakly at room 1 is listed there", name)
		}
		do(mirror, name+": room 2 has the strong tag only", chromedp.Navigate(base+"/kiosk/?zone=room-2"),
			chromedp.WaitVisible(`li.item[data-gtin="`+cachetest.GTIN(stray*cachetest.Variants+1)+`"]`))
		aInRoom2, _ := chromedp.Run(mirror, chromedp.Evaluate[bool](`document.querySelector('li.item[data-gtin="`+gtin+`"]') !== null`))
		if aInRoom2 {
			t.Fatalf("%s: room 1's tag listed in room 2", name)
		}

		// Another size: L of what she tries in room 1.
		do(mirror, name+": back to room 1", chromedp.Navigate(base+"/kiosk/?zone=room-1"),
			chromedp.WaitVisible(`li.item[data-gtin="`+gtin+`"] button.opt[value="`+cachetest.SKU(tried, 2)+`"]`))
		start := time.Now()
		do(mirror, name+": ask for L", chromedp.Click(`li.item[data-gtin="`+gtin+`"] button.opt[value="`+cachetest.SKU(tried, 2)+`"]`))
		sel := `section.req[data-state="open"]`
		do(staff, name+": the request reaches the staff page", chromedp.WaitVisible(sel))
		latencies = append(latencies, time.Since(start))
		if got := text(staff, sel+" .room"); got != "room-1" {
			t.Fatalf("%s: room %q", name, got)
		}
		if got := text(staff, sel+" .fetch-item"); got != "Trail runner "+string(rune('0'+tried))+" · L · navy" {
			t.Fatalf("%s: fetch %q", name, got)
		}
		if got := text(staff, sel+" .reason"); got != "Another size" {
			t.Fatalf("%s: reason %q", name, got)
		}
		do(staff, name+": claim", chromedp.Click(sel+` button[data-action="claim"]`), chromedp.WaitVisible(`section.req[data-state="claimed"]`))
		do(staff, name+": done", chromedp.Click(`section.req[data-state="claimed"] button[data-action="done"]`),
			chromedp.WaitVisible(`section.req[data-state="done"]`))
		do(staff, name+": nothing left open", chromedp.Poll[chromedp.Void](`document.querySelectorAll('section.req[data-state="open"], section.req[data-state="claimed"]').length === 0`,
			chromedp.WithPollingTimeout(10*time.Second)))
	}

	round("online", 0, 2, 100)
	var before int
	{
		var body struct {
			Requests []json.RawMessage `json:"requests"`
		}
		get(t, base+"/staff/requests", &body)
		before = len(body.Requests)
	}
	ns.Stop()
	testkit.Eventually(t, 10*time.Second, func() bool {
		var st Status
		return get(t, base+"/v1/status", &st) == 200 && !st.Connected
	}, "the agent notices NATS is down")
	round("offline", 3, 1, 200)
	var body struct {
		Requests []json.RawMessage `json:"requests"`
	}
	get(t, base+"/staff/requests", &body)
	if len(body.Requests) != before+1 {
		t.Fatalf("%d requests after the offline round, want %d", len(body.Requests), before+1)
	}
	t.Logf("mirror tap to staff page (Chromium, SSE): %v", latencies)
}
