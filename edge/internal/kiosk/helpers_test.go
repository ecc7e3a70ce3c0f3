package kiosk

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/omnisync/omnisync/edge/internal/devices"
	"github.com/omnisync/omnisync/edge/internal/outbox"
	"github.com/omnisync/omnisync/shared/downsync"
	"github.com/omnisync/omnisync/shared/events"
	"github.com/omnisync/omnisync/shared/gs1"
)

const (
	testStore  = "S1"
	testDevice = "kiosk-1"
	testZone   = "room-1"
	// rfidEPC is an SGTIN-96 of GTIN 80614141123458 (TDS 1.13 Annex E.3).
	rfidEPC  = "3074257BF7194E4000001A85"
	rfidGTIN = "80614141123458"
)

// gtin completes 13 digits with their check digit.
func gtin(t testing.TB, first13 string) string {
	t.Helper()
	d, err := gs1.CheckDigit(first13)
	if err != nil {
		t.Fatal(err)
	}
	return first13 + string(d)
}

// catalog is an in-memory product cache: it answers lookups the way the
// agent's does, with downsync.ParseCode and downsync.NewView.
type catalog struct {
	products []downsync.ProductDoc
	reviews  map[string]downsync.ReviewSummary
	stock    map[[2]string]downsync.StockDoc // (location, sku)
	asOf     time.Time
	stale    bool
}

func (c *catalog) Lookup(_ context.Context, code string) (downsync.View, error) {
	pc := downsync.ParseCode(code)
	if pc.SKU != "" {
		for _, p := range c.products {
			for _, v := range p.Variants {
				if v.SKU == pc.SKU {
					return c.view(code, downsync.Match{By: downsync.BySKU, SKU: v.SKU}, p, v.SKU), nil
				}
			}
		}
	}
	if pc.GTIN.GTIN != "" {
		for _, p := range c.products {
			for _, v := range p.Variants {
				if slices.Contains(v.GTINs, pc.GTIN.GTIN) {
					m := pc.GTIN
					m.SKU = v.SKU
					return c.view(code, m, p, v.SKU), nil
				}
			}
		}
	}
	if pc.Err != nil {
		return downsync.View{}, fmt.Errorf("productcache: lookup %q: %w", code, pc.Err)
	}
	return downsync.View{}, fmt.Errorf("productcache: lookup %q: %w", code, downsync.ErrNotFound)
}

func (c *catalog) view(code string, m downsync.Match, p downsync.ProductDoc, sku string) downsync.View {
	v := downsync.NewView(code, m, p, sku, c.reviews[p.ID], testStore, []string{"S2", "S3"}, "online",
		func(loc, sku string) (downsync.StockDoc, bool) {
			d, ok := c.stock[[2]string{loc, sku}]
			return d, ok
		})
	v.AsOf, v.Stale = c.asOf, c.stale
	return v
}

// testNow is the kiosk's clock in tests: 14:05 on 3 March 2026, UTC.
var testNow = time.Date(2026, 3, 3, 14, 5, 0, 0, time.UTC)

type gtins struct{ S, M, L, RedM, Rfid string }

// newCatalog holds a T-shirt in three blue sizes and one red, and an RFID
// tagged pair of jeans.
func newCatalog(t testing.TB) (*catalog, gtins) {
	g := gtins{S: gtin(t, "0950600013436"), M: gtin(t, "0950600013437"), L: gtin(t, "0950600013438"),
		RedM: gtin(t, "0950600013439"), Rfid: rfidGTIN}
	tee := downsync.ProductDoc{ID: "P-TEE", Name: "Organic Tee", Brand: "Omni", ImageURL: "https://cdn.invalid/tee.png",
		Variants: []downsync.VariantDoc{
			{SKU: "TEE-S-BLU", GTINs: []string{g.S}, Size: "S", Colour: "Blue", PriceMinor: 4995, Currency: "EUR"},
			{SKU: "TEE-M-BLU", GTINs: []string{g.M}, Size: "M", Colour: "Blue", PriceMinor: 4995, Currency: "EUR"},
			{SKU: "TEE-L-BLU", GTINs: []string{g.L}, Size: "L", Colour: "Blue", PriceMinor: 4995, Currency: "EUR"},
			{SKU: "TEE-M-RED", GTINs: []string{g.RedM}, Size: "M", Colour: "Red", PriceMinor: 5495, Currency: "EUR"},
		}}
	jeans := downsync.ProductDoc{ID: "P-JEANS", Name: "Slim Jeans", Brand: "Denim Co",
		Variants: []downsync.VariantDoc{
			{SKU: "JEANS-30", GTINs: []string{rfidGTIN}, Size: "30", PriceMinor: 8900, Currency: "GBP"},
			{SKU: "JEANS-32", Size: "32", PriceMinor: 8900, Currency: "GBP"},
			{SKU: "JEANS-34", Size: "34", PriceMinor: 8900, Currency: "GBP"},
		}}
	st := func(loc, sku string, avail int64) downsync.StockDoc {
		return downsync.StockDoc{SKU: sku, Location: loc, OnHand: avail, Available: avail}
	}
	c := &catalog{
		products: []downsync.ProductDoc{tee, jeans},
		reviews: map[string]downsync.ReviewSummary{"P-TEE": {
			ProductID: "P-TEE", Count: 3, Average: 4.3, Distribution: [5]int64{0, 0, 0, 2, 1},
			Latest: []downsync.Review{
				{Rating: 5, Title: "Soft <b>and</b> warm", Text: "Lovely.\n<script>alert(1)</script>", Nickname: "Ana", AtMS: testNow.Add(-48 * time.Hour).UnixMilli()},
				{Rating: 4, Text: "Runs small", AtMS: testNow.Add(-72 * time.Hour).UnixMilli()},
			}}},
		stock: map[[2]string]downsync.StockDoc{},
		asOf:  testNow.Add(-5 * time.Minute),
	}
	for _, s := range []downsync.StockDoc{
		st(testStore, "TEE-S-BLU", 10), st(testStore, "TEE-M-BLU", 2), st(testStore, "TEE-L-BLU", 0),
		st("S2", "TEE-M-BLU", 5), st("S3", "TEE-M-BLU", 0), st("S2", "TEE-L-BLU", 4),
		st("online", "TEE-M-BLU", 40), st("online", "TEE-L-BLU", 0),
		st(testStore, "JEANS-30", 3), st(testStore, "JEANS-32", 6), st(testStore, "JEANS-34", 0),
	} {
		c.stock[[2]string{s.Location, s.SKU}] = s
	}
	return c, g
}

// room is what the fitting rooms' readers see now.
type fittingRooms struct {
	mu    sync.Mutex
	items map[string][]devices.PresentItem
}

func (r *fittingRooms) present() map[string][]devices.PresentItem {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make(map[string][]devices.PresentItem, len(r.items))
	for z, its := range r.items {
		out[z] = slices.Clone(its)
	}
	return out
}

func (r *fittingRooms) bring(zone string, it devices.PresentItem) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.items == nil {
		r.items = map[string][]devices.PresentItem{}
	}
	r.items[zone] = append(r.items[zone], it)
}

// rig is a kiosk on a real outbox behind an HTTP server.
type rig struct {
	srv   *httptest.Server
	ob    *outbox.Outbox
	cat   *catalog
	g     gtins
	room  *fittingRooms
	now   time.Time
	nowMu sync.Mutex
	k     *Kiosk
}

func (r *rig) clock() time.Time {
	r.nowMu.Lock()
	defer r.nowMu.Unlock()
	return r.now
}

func (r *rig) advance(d time.Duration) {
	r.nowMu.Lock()
	defer r.nowMu.Unlock()
	r.now = r.now.Add(d)
}

func openOutbox(t testing.TB, budget int64) *outbox.Outbox {
	t.Helper()
	ob, err := outbox.Open(outbox.Options{Path: filepath.Join(t.TempDir(), "outbox.db"), Store: testStore, Device: testDevice,
		BudgetBytes: budget, MinFreeDisk: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ob.Close() })
	return ob
}

// newRig starts a kiosk on an outbox with the given budget (0: default);
// tweak adjusts its options and extra registers more routes on the mux (the
// scan stream in browser tests).
func newRig(t testing.TB, budget int64, tweak func(*Options), extra func(*http.ServeMux)) *rig {
	t.Helper()
	cat, g := newCatalog(t)
	r := &rig{ob: openOutbox(t, budget), cat: cat, g: g, room: &fittingRooms{}, now: testNow}
	r.room.bring(testZone, devices.PresentItem{GTIN: g.M, EPC: "EPC-M", Since: testNow})
	r.room.bring(testZone, devices.PresentItem{GTIN: g.M, EPC: "EPC-M2", Since: testNow}) // same product twice: listed once
	r.room.bring("room-2", devices.PresentItem{GTIN: g.L, Since: testNow})
	o := Options{Store: testStore, Device: testDevice, Products: cat, Outbox: r.ob, Present: r.room.present, Now: r.clock}
	if tweak != nil {
		tweak(&o)
	}
	r.k = New(o)
	mux := http.NewServeMux()
	r.k.Register(mux)
	if extra != nil {
		extra(mux)
	}
	r.srv = httptest.NewServer(mux)
	t.Cleanup(r.srv.Close)
	return r
}

// shopper is a browser-like client: cookies, no redirects followed.
func (r *rig) shopper(t testing.TB) *http.Client {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &http.Client{Jar: jar, Timeout: 10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

type answer struct {
	status int
	header http.Header
	body   string
}

// visible is a page without its style and script, for failure logs.
func visible(page string) string {
	return styleScriptRE.ReplaceAllString(page, "<$1>…</$1>")
}

var styleScriptRE = regexp.MustCompile(`(?s)<(style|script)[^>]*>.*?</(?:style|script)>`)

func do(t testing.TB, c *http.Client, req *http.Request) answer {
	t.Helper()
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return answer{status: resp.StatusCode, header: resp.Header, body: string(b)}
}

func (r *rig) get(t testing.TB, c *http.Client, path string) answer {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, r.srv.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	return do(t, c, req)
}

func (r *rig) post(t testing.TB, c *http.Client, path string, form url.Values, header map[string]string) answer {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, r.srv.URL+path, strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for k, v := range header {
		req.Header.Set(k, v)
	}
	return do(t, c, req)
}

var csrfRE = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// csrf reads the form token from a page.
func csrf(t testing.TB, body string) string {
	t.Helper()
	m := csrfRE.FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("no form token in page:\n%s", body)
	}
	return m[1]
}

// sessionID is the id in the client's session cookie.
func (r *rig) sessionID(t testing.TB, c *http.Client) string {
	t.Helper()
	u, _ := url.Parse(r.srv.URL + "/kiosk/")
	for _, ck := range c.Jar.Cookies(u) {
		if ck.Name == CookieName {
			id, _, _ := strings.Cut(ck.Value, ".")
			return id
		}
	}
	return ""
}

// outboxEvents reads every pending event of kind k.
func outboxEvents[T any](t testing.TB, ob *outbox.Outbox, k events.Kind) []T {
	t.Helper()
	recs, err := ob.Read(0, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	var out []T
	for _, rec := range recs {
		e, err := events.Decode(rec.Data)
		if err != nil {
			t.Fatalf("event %d: %v", rec.Seq, err)
		}
		if e.Kind != k {
			continue
		}
		var body T
		if err := json.Unmarshal(e.Data, &body); err != nil {
			t.Fatal(err)
		}
		out = append(out, body)
	}
	return out
}
