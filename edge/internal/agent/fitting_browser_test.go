package agent

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
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
// every 100 ms, through the real reader protocol over a pty. It notes when
// each tag was first read (the start of the shopper-visible latency).
type tags struct {
	r     *rfidsim.Reader
	mu    sync.Mutex
	on    map[string]map[int]float64 // EPC → antenna → RSSI
	first map[string]time.Time       // EPC → its first read
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

// firstRead is when epc was first read (zero: not yet).
func (g *tags) firstRead(epc string) time.Time {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.first[epc]
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
			if _, ok := g.first[epc]; !ok {
				g.first[epc] = time.Now()
			}
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

// fittingRig is a real agent reading a simulated R2000 reader through a
// pty (room 1 on antenna 1, room 2 on antenna 2), with five products in
// the down-sync bucket, and a tag player.
type fittingRig struct {
	ns   *testkit.NATS
	base string
	g    *tags
}

// newFittingRig: products 0..4, sizes S M L XL, 5 of each in stock here
// but product 2 in M (sold out). Complements of 0: 2 (not suggested: M
// sold out), 1 and 4 (in M); of 3: 4.
func newFittingRig(t *testing.T) *fittingRig {
	t.Helper()
	ns := testkit.StartNATS(t)
	nc, err := nats.Connect(ns.URL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
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

	g := &tags{r: rd, on: map[string]map[int]float64{}, first: map[string]time.Time{}}
	gctx, stop := context.WithCancel(ctx)
	t.Cleanup(stop)
	go g.run(gctx)
	return &fittingRig{ns: ns, base: base, g: g}
}

// do runs browser actions, failing the test after 20 s.
func do(t *testing.T, c context.Context, what string, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	ctx, cancel := context.WithTimeout(c, 20*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// textOf is the trimmed text of the first element sel matches.
func textOf(t *testing.T, c context.Context, sel string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(c, 10*time.Second)
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.Text(sel))
	if err != nil {
		t.Fatalf("text of %s: %v", sel, err)
	}
	return strings.TrimSpace(s)
}

// waitBanner waits for the page's banner to say text: the page a form led
// to, which may still be loading (a poll inside a page that navigates
// away fails, so each try is a new evaluation).
func waitBanner(t *testing.T, c context.Context, what, text string) {
	t.Helper()
	q, _ := json.Marshal(text)
	waitJS(t, c, what, 10*time.Second, `(() => { const b = document.getElementById("banner"); return b !== null && b.textContent.trim() === `+string(q)+` })()`,
		func() string {
			got, _ := chromedp.Run(c, chromedp.Evaluate[string](`(document.getElementById("banner") || {}).textContent || ""`))
			return fmt.Sprintf("the banner says %q, want %q", got, text)
		})
}

// waitJS waits up to timeout for js to be true in the page, which may be
// navigating.
func waitJS(t *testing.T, c context.Context, what string, timeout time.Duration, js string, explain func() string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ctx, cancel := context.WithTimeout(c, 2*time.Second)
		ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool](js))
		cancel()
		if err == nil && ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %s (%v)", what, explain(), err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// sweep runs a stock sweep of area on the rig's reader through POST
// /v1/devices/fr-1/sweep: each GTIN's unit (serial) read on antenna 3,
// outside the fitting rooms, until every one was read.
func sweep(t *testing.T, base string, g *tags, area string, units map[string]int) {
	t.Helper()
	post := func(body string) map[string]any {
		resp, err := http.Post(base+"/v1/devices/fr-1/sweep", "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&out)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("sweep %s: %d %v", body, resp.StatusCode, out)
		}
		return out
	}
	post(`{"action":"start","area":"` + area + `"}`)
	var epcs []string
	for gtin, serial := range units {
		epc, err := rfidsim.EPCFor(gtin, serial)
		if err != nil {
			t.Fatal(err)
		}
		epcs = append(epcs, epc)
		g.put(epc, map[int]float64{3: -55})
	}
	testkit.Eventually(t, 10*time.Second, func() bool {
		for _, epc := range epcs {
			if g.firstRead(epc).IsZero() {
				return false
			}
		}
		return true
	}, "the swept tags were read")
	time.Sleep(300 * time.Millisecond) // a few reads reach the agent
	for _, epc := range epcs {
		g.remove(epc)
	}
	if ans := post(`{"action":"end"}`); ans["located"] != float64(len(units)) {
		t.Fatalf("sweep of %s: %v", area, ans)
	}
}

// staffRequest checks the one open request on the staff page, then claims
// it and marks it done.
func staffRequest(t *testing.T, staff context.Context, what, room, reason, fetch, trying string) {
	t.Helper()
	sel := `section.req[data-state="open"]`
	do(t, staff, what+": the request reaches the staff page", chromedp.WaitVisible(sel))
	if got := textOf(t, staff, sel+" .room"); got != room {
		t.Fatalf("%s: room %q, want %q", what, got, room)
	}
	if got := textOf(t, staff, sel+" .reason"); got != reason {
		t.Fatalf("%s: reason %q, want %q", what, got, reason)
	}
	got, err := chromedp.Run(staff, chromedp.Evaluate[string](`(() => { const f = document.querySelector('`+sel+` .fetch-item'); return f ? f.textContent : "" })()`))
	if err != nil || got != fetch {
		t.Fatalf("%s: fetch %q, want %q (%v)", what, got, fetch, err)
	}
	if trying != "" {
		if got := textOf(t, staff, sel+" .what"); !strings.Contains(got, "trying "+trying) {
			t.Fatalf("%s: %q does not say she is trying %q", what, got, trying)
		}
	}
	do(t, staff, what+": claim", testkit.Click(sel+` button[data-action="claim"]`), chromedp.WaitVisible(`section.req[data-state="claimed"]`))
	do(t, staff, what+": done", testkit.Click(`section.req[data-state="claimed"] button[data-action="done"]`),
		chromedp.WaitVisible(`section.req[data-state="done"]`))
	do(t, staff, what+": nothing left open", chromedp.Poll[chromedp.Void](`document.querySelectorAll('section.req[data-state="open"], section.req[data-state="claimed"]').length === 0`,
		chromedp.WithPollingTimeout(10*time.Second)))
}

// Ensure, in Chromium against a real agent reading a simulated R2000
// reader through a pty: tags that enter room 1 fill its mirror, with
// complements in stock here in her size, each explained; a tag read weakly
// at room 1 and strongly at room 2 shows in room 2 only; "another size"
// reaches the staff page, which claims it and marks it done; so do "help
// with this item" and "call a colleague" (help in the room); and all of it
// again with NATS down (the mirror suggests from the cached lists, the
// queue is local).
func TestFittingRoom_MirrorAndStaffInBrowser(t *testing.T) {
	t.Parallel() // mostly waits on processes and timers
	rig := newFittingRig(t)
	base, g := rig.base, rig.g

	// Two browsers, as in the store: the mirror and the associate's
	// handheld (one tab each: a background tab's page is throttled).
	mirror := testkit.Browser(t)
	staff := testkit.Browser(t)
	do(t, staff, "open the staff page", chromedp.Navigate(base+"/staff/"), chromedp.WaitVisible(`#list`))

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

		do(t, mirror, name+": the mirror of room 1 lists the tag", chromedp.Navigate(base+"/kiosk/?zone=room-1"),
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
		do(t, mirror, name+": room 2 has the strong tag only", chromedp.Navigate(base+"/kiosk/?zone=room-2"),
			chromedp.WaitVisible(`li.item[data-gtin="`+cachetest.GTIN(stray*cachetest.Variants+1)+`"]`))
		aInRoom2, _ := chromedp.Run(mirror, chromedp.Evaluate[bool](`document.querySelector('li.item[data-gtin="`+gtin+`"]') !== null`))
		if aInRoom2 {
			t.Fatalf("%s: room 1's tag listed in room 2", name)
		}

		// Another size: L of what she tries in room 1.
		item := `li.item[data-gtin="` + gtin + `"]`
		do(t, mirror, name+": back to room 1", chromedp.Navigate(base+"/kiosk/?zone=room-1"),
			chromedp.WaitVisible(item+` button.opt[value="`+cachetest.SKU(tried, 2)+`"]`))
		start := time.Now()
		do(t, mirror, name+": ask for L", testkit.Click(item+` button.opt[value="`+cachetest.SKU(tried, 2)+`"]`))
		do(t, staff, name+": the request reaches the staff page", chromedp.WaitVisible(`section.req[data-state="open"]`))
		latencies = append(latencies, time.Since(start))
		// The sweep read the L on rack-7: the page says where, and which unit.
		if got := textOf(t, staff, `section.req[data-state="open"] .fetch .where`); !strings.HasPrefix(got, "Where: rack-7 (seen ") ||
			!strings.Contains(got, " ago)") || !strings.Contains(got, "Units: "+strconv.Itoa(serial+50)) {
			t.Fatalf("%s: the staff page's location says %q", name, got)
		}
		triedName := "Trail runner " + strconv.Itoa(tried)
		staffRequest(t, staff, name+": another size", "room-1", "Another size", triedName+" · L · navy", triedName+" · M · navy")

		// Help with the item she is trying: nothing to fetch.
		waitBanner(t, mirror, name+": the confirmation", "A colleague is bringing it: "+triedName+", size L, navy. Please wait here.")
		do(t, mirror, name+": help with the item", chromedp.WaitVisible(item+` button.help`), testkit.Click(item+` button.help`))
		waitBanner(t, mirror, name+": help with the item", "A colleague is on the way to help with "+triedName+", size M, navy. Please wait here.")
		staffRequest(t, staff, name+": help with the item", "room-1", "Needs help", "", triedName+" · M · navy")

		// Help in the room, about nothing in particular.
		do(t, mirror, name+": call a colleague", chromedp.WaitVisible(`#help`), testkit.Click(`#help`))
		waitBanner(t, mirror, name+": call a colleague", "A colleague is on the way to your fitting room. Please wait here.")
		staffRequest(t, staff, name+": call a colleague", "room-1", "Needs help", "", "")
	}

	// The L of what she will try in each round was swept on rack-7 by the
	// reader's antenna 3, on the floor outside the rooms.
	sweep(t, base, g, "rack-7", map[string]int{cachetest.GTIN(0*cachetest.Variants + 2): 150, cachetest.GTIN(3*cachetest.Variants + 2): 250})
	round("online", 0, 2, 100)
	var before int
	{
		var body struct {
			Requests []json.RawMessage `json:"requests"`
		}
		get(t, base+"/staff/requests", &body)
		before = len(body.Requests)
	}
	rig.ns.Stop()
	testkit.Eventually(t, 10*time.Second, func() bool {
		var st Status
		return get(t, base+"/v1/status", &st) == 200 && !st.Connected
	}, "the agent notices NATS is down")
	round("offline", 3, 1, 200)
	var body struct {
		Requests []json.RawMessage `json:"requests"`
	}
	get(t, base+"/staff/requests", &body)
	if len(body.Requests) != before+3 {
		t.Fatalf("%d requests after the offline round, want %d", len(body.Requests), before+3)
	}
	t.Logf("mirror tap to staff page (Chromium, SSE): %v", latencies)
}

// roundsEnv sets how many rounds TestFittingRoom_Latency measures; unset,
// it is skipped (it takes minutes).
const roundsEnv = "OMNI_FITTING_ROUNDS"

// Measure, in Chromium against a real agent and reader, what the shopper
// and the associate wait for: from a tag's first read at the reader to the
// item and its suggestions on the mirror page (presence scoring, then the
// page learning of it), and from a tap on "another size" to the request on
// the staff page. It runs OMNI_FITTING_ROUNDS rounds, each with a fresh tag
// in an empty room, and logs the percentiles; it asserts no wall-clock
// limit (the machine is shared). The times are taken in the pages (a
// MutationObserver's Date.now()) and at the reader, all on one clock.
//
//	OMNI_FITTING_ROUNDS=40 go test -count=1 -run TestFittingRoom_Latency -v ./edge/internal/agent/
func TestFittingRoom_Latency(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv(roundsEnv))
	if n <= 0 {
		t.Skipf("set %s to measure (minutes)", roundsEnv)
	}
	rig := newFittingRig(t)
	base, g := rig.base, rig.g
	// A browser may be driven for three minutes (testkit): a fresh pair
	// every few rounds.
	const perBrowser = 8
	var mirror, staff context.Context
	var accept, shown, tap []time.Duration
	for i := range n {
		if i%perBrowser == 0 {
			mirror, staff = testkit.Browser(t), testkit.Browser(t)
			do(t, staff, "open the staff page", chromedp.Navigate(base+"/staff/"), chromedp.WaitVisible(`#list`))
		}
		tried := []int{0, 3}[i%2]
		gtin := cachetest.GTIN(tried*cachetest.Variants + 1)
		epc, err := rfidsim.EPCFor(gtin, 1000+i)
		if err != nil {
			t.Fatal(err)
		}
		item := `li.item[data-gtin="` + gtin + `"]`
		sug := `li.sug[data-product="` + cachetest.Product(4) + `"]` // its suggestion
		if i%perBrowser == 0 {
			do(t, mirror, "open the mirror", chromedp.Navigate(base+"/kiosk/?zone=room-1"))
		}
		// Once the room is empty (the last round's tag gone), watch for
		// the item and its suggestion.
		waitJS(t, mirror, "the mirror of an empty room", 30*time.Second, `(() => {
			if (document.readyState !== "complete" || document.querySelector("#room .empty") === null) return false;
			window.__seen = 0;
			if (!window.__watch) {
				window.__watch = new MutationObserver(() => {
					if (!window.__seen && document.querySelector('`+item+`') && document.querySelector('`+sug+`')) window.__seen = Date.now();
				});
				window.__watch.observe(document.body, { subtree: true, childList: true });
			}
			return true;
		})()`, func() string { return "the room did not empty" })
		// When the agent accepted it into the room (/v1/devices).
		acceptedAt := make(chan time.Time, 1)
		actx, acancel := context.WithCancel(context.Background())
		go func() {
			for actx.Err() == nil {
				if present(base, "room-1", gtin) {
					acceptedAt <- time.Now()
					return
				}
				time.Sleep(10 * time.Millisecond)
			}
		}()
		g.put(epc, map[int]float64{1: -49})
		seenMS, err := chromedp.Run(mirror, chromedp.Poll[float64](`window.__seen`, chromedp.WithPollingTimeout(20*time.Second)))
		if err != nil {
			t.Fatalf("round %d: the item never showed with its suggestion: %v", i, err)
		}
		first := g.firstRead(epc)
		var acc time.Time
		select {
		case acc = <-acceptedAt:
		case <-time.After(5 * time.Second):
			t.Fatalf("round %d: shown on the mirror but not in /v1/devices", i)
		}
		acancel()
		accept = append(accept, acc.Sub(first))
		shown = append(shown, time.UnixMilli(int64(seenMS)).Sub(first))

		// Another size, timed from the tap in the mirror page to the
		// request drawn on the staff page.
		do(t, staff, "watch the staff page", chromedp.Evaluate[chromedp.Void](`window.__open = 0; new MutationObserver(() => {
			if (!window.__open && document.querySelector('section.req[data-state="open"]')) window.__open = Date.now();
		}).observe(document.body, { subtree: true, childList: true })`))
		l := item + ` button.opt[value="` + cachetest.SKU(tried, 2) + `"]`
		tapMS, err := chromedp.Run(mirror, chromedp.Evaluate[float64](`(() => { const b = document.querySelector('`+l+`'); const t = Date.now(); b.click(); return t })()`))
		if err != nil {
			t.Fatalf("round %d: tap: %v", i, err)
		}
		openMS, err := chromedp.Run(staff, chromedp.Poll[float64](`window.__open`, chromedp.WithPollingTimeout(20*time.Second)))
		if err != nil {
			t.Fatalf("round %d: the request never reached the staff page: %v", i, err)
		}
		tap = append(tap, time.Duration(openMS-tapMS)*time.Millisecond)
		staffRequest(t, staff, fmt.Sprintf("round %d", i), "room-1", "Another size", "Trail runner "+strconv.Itoa(tried)+" · L · navy", "")
		// She leaves: the session ends (her next visit's requests are new)
		// and the tag goes.
		waitBanner(t, mirror, fmt.Sprintf("round %d: confirmation", i), "A colleague is bringing it: Trail runner "+strconv.Itoa(tried)+", size L, navy. Please wait here.")
		do(t, mirror, "done", testkit.Click(`#done`))
		waitJS(t, mirror, "done", 10*time.Second, `location.search === "?zone=room-1" && document.readyState === "complete"`,
			func() string { return "the mirror did not return to its start" })
		g.remove(epc)
	}
	for _, m := range []struct {
		what string
		d    []time.Duration
	}{
		{"first read → accepted into the room (/v1/devices)", accept},
		{"first read → item and suggestions on the mirror page", shown},
		{"tap on another size → request on the staff page", tap},
	} {
		t.Logf("%s: %s", m.what, percentiles(m.d))
	}
}

// present tells whether the agent lists gtin in zone now.
func present(base, zone, gtin string) bool {
	resp, err := http.Get(base + "/v1/devices")
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	var body struct {
		Devices []struct {
			Present map[string][]struct {
				GTIN string `json:"gtin"`
			} `json:"present"`
		} `json:"devices"`
	}
	if json.NewDecoder(resp.Body).Decode(&body) != nil {
		return false
	}
	for _, d := range body.Devices {
		for _, it := range d.Present[zone] {
			if it.GTIN == gtin {
				return true
			}
		}
	}
	return false
}

// percentiles sums up durations: n, p50, p90, p99 (nearest rank), max.
func percentiles(d []time.Duration) string {
	s := slices.Clone(d)
	slices.Sort(s)
	if len(s) == 0 {
		return "no samples"
	}
	at := func(p float64) time.Duration {
		i := int(p*float64(len(s))+0.999999) - 1
		return s[min(max(i, 0), len(s)-1)]
	}
	r := func(d time.Duration) string { return d.Round(time.Millisecond).String() }
	return fmt.Sprintf("n=%d p50=%s p90=%s p99=%s max=%s", len(s), r(at(0.5)), r(at(0.9)), r(at(0.99)), r(s[len(s)-1]))
}
