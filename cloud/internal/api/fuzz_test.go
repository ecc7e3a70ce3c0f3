package api

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/omnisync/omnisync/cloud/internal/auth"
	"github.com/omnisync/omnisync/cloud/internal/catalog"
	"github.com/omnisync/omnisync/cloud/internal/store"
	"github.com/omnisync/omnisync/shared/events"
	"github.com/omnisync/omnisync/shared/hlc"
	"github.com/omnisync/omnisync/shared/testkit"
)

// fuzzHub is the API over one store holding a small catalog and stock,
// called in-process.
type fuzzHub struct {
	name string
	h    http.Handler
}

// newFuzzHub fills st and serves the API over it as the bootstrap admin.
func newFuzzHub(tb testing.TB, name string, st *store.Store) fuzzHub {
	tb.Helper()
	ctx := context.Background()
	if _, err := st.ImportCatalog(ctx, catalog.Sample(2, 4), store.ImportOptions{Source: "fuzz"}); err != nil {
		tb.Fatal(err)
	}
	var items []store.Item
	for i, sku := range []string{"A", "A|B", "B", "SKU-1", "SKU-2", "~x", "FTW-000001-NVY-42"} {
		for j, loc := range []string{"S1", "S2", "online"} {
			body := fmt.Sprintf(`{"location":%q,"lines":[{"sku":%q,"qty":%d}]}`, loc, sku, 3*i+j)
			items = append(items, store.Item{Env: events.Envelope{V: 1, ID: fmt.Sprintf("0193a000-0000-7000-8000-%012d", len(items)),
				HLC:    hlc.Timestamp{Wall: 1_700_000_000_000 + int64(len(items))},
				Origin: events.Origin{Store: "S1", Device: "pos-1", Epoch: 7, Seq: uint64(len(items) + 1)},
				Kind:   events.KindCount, Data: json.RawMessage(body)}})
		}
	}
	if _, err := st.ApplyBatch(ctx, items); err != nil {
		tb.Fatal(err)
	}
	if err := st.AddDeadLetter(ctx, store.DeadLetter{Store: "S1", Subject: "omni.ev.S1.x", Reason: "undecodable", Payload: []byte("garbage")}); err != nil {
		tb.Fatal(err)
	}
	svc := auth.New(auth.Options{Store: st})
	if err := svc.Bootstrap(ctx, adminToken, io.Discard); err != nil {
		tb.Fatal(err)
	}
	rt := auth.NewRouter(svc)
	New(Options{Store: st, Version: "fuzz", PublicURL: "https://hub.example.com", Now: func() time.Time { return time.UnixMilli(1_700_000_100_000) }}).Register(rt)
	return fuzzHub{name: name, h: asAdmin(LimitBodies(rt, 1<<20))}
}

func (fh fuzzHub) get(target string) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	fh.h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, target, nil))
	return rec
}

// FuzzQueries sends the API's GET routes arbitrary paths and query
// strings (inventory listing with its filters and cursor, conflicts, dead
// letters, catalog, product lookup by any code, reviews, the Digital Link
// resolver and product pages) against SQLite and PostgreSQL stores with
// the same data: never a 5xx (bad input is the client's 4xx), both
// databases answer with the same status, and an inventory page's next
// cursor leads to a page of rows strictly after it.
func FuzzQueries(f *testing.F) {
	for _, s := range []string{
		"/v1/inventory", "/v1/inventory?location=S1&below=5&limit=2", "/v1/inventory?limit=1&after=A%7CB%7CS1",
		"/v1/inventory?after=SKU-1%7CS2&limit=3", "/v1/inventory?below=-1", "/v1/inventory?limit=1001", "/v1/inventory?after=%00%7C%FF",
		"/v1/inventory/FTW-000001-NVY-42", "/v1/inventory/A%7CB", "/v1/stores",
		"/v1/conflicts?all=1&limit=5", "/v1/deadletters?store=S1&limit=3", "/v1/catalog?limit=2",
		"/v1/products/05012302000003", "/v1/products/https%3A%2F%2Fid.gs1.org%2F01%2F05012302000003%2F21%2F7",
		"/v1/products/(01)05012302000003(21)123", "/v1/products/urn:epc:id:sgtin:5012302.000000.1",
		"/v1/products/APP-000001/reviews?limit=1", "/01/05012302000003?linkType=all", "/01/05012302000003/21/123?linkType=gs1:pip",
		"/products/FTW-000001-NVY-42?serial=9&lot=L1", "/AQID", "/healthz",
		// Bytes no database text may hold.
		"/v1/products/A%FFB", "/v1/products/%00", "/v1/products/%C3%28/reviews", "/01/%FF", "/products/%FF", "/%FF",
		"/v1/deadletters?store=%FF", "/v1/inventory/%FF", "/v1/inventory?location=%00",
	} {
		f.Add(s)
	}
	hubs := []fuzzHub{newFuzzHub(f, "sqlite", mustOpenStore(f, "sqlite:"+filepath.Join(f.TempDir(), "hub.db")))}
	hubs = append(hubs, newFuzzHub(f, "postgres", mustOpenStore(f, testkit.Postgres(f))))

	f.Fuzz(func(t *testing.T, target string) {
		// What net/http would refuse before any handler sees it.
		if !strings.HasPrefix(target, "/") || strings.ContainsAny(target, " \r\n\t\x00") {
			return
		}
		if _, err := url.ParseRequestURI(target); err != nil {
			return
		}
		code := 0
		for _, fh := range hubs {
			rec := fh.get(target)
			if rec.Code >= 500 {
				t.Fatalf("%s: %d for %q: %s", fh.name, rec.Code, target, rec.Body)
			}
			if code != 0 && rec.Code != code {
				t.Fatalf("%q: %s answers %d, %s %d", target, hubs[0].name, code, fh.name, rec.Code)
			}
			code = rec.Code
			if rec.Code == http.StatusOK && strings.HasPrefix(target, "/v1/inventory?") {
				checkNextPage(t, fh, target, rec)
			}
		}
	})
}

// checkNextPage follows an inventory page's cursor and checks that the
// next page starts strictly after the page's last row.
func checkNextPage(t *testing.T, fh fuzzHub, target string, rec *httptest.ResponseRecorder) {
	t.Helper()
	var page StockPage
	if err := json.Unmarshal(rec.Body.Bytes(), &page); err != nil {
		t.Fatalf("%s: %q: %v", fh.name, target, err)
	}
	if page.Next == "" {
		return
	}
	u, _ := url.Parse(target)
	q := u.Query()
	q.Set("after", page.Next)
	u.RawQuery = q.Encode()
	next := fh.get(u.RequestURI())
	if next.Code != http.StatusOK {
		t.Fatalf("%s: the cursor of %q: %d %s", fh.name, target, next.Code, next.Body)
	}
	var np StockPage
	if err := json.Unmarshal(next.Body.Bytes(), &np); err != nil {
		t.Fatal(err)
	}
	last := page.Items[len(page.Items)-1]
	for _, it := range np.Items {
		if it.SKU < last.SKU || (it.SKU == last.SKU && it.Location <= last.Location) {
			t.Fatalf("%s: the page after %q (last %s@%s) holds %s@%s", fh.name, target, last.SKU, last.Location, it.SKU, it.Location)
		}
	}
}

func mustOpenStore(tb testing.TB, dsn string) *store.Store {
	tb.Helper()
	st, err := store.Open(context.Background(), dsn, nil)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { st.Close() })
	return st
}

// Ensure that an inventory cursor splits at its last '|' (SKUs may hold
// one, locations may not) and refuses what the books cannot hold.
func TestParseStockCursor(t *testing.T) {
	for _, tt := range []struct {
		in, sku, loc string
		ok           bool
	}{
		{"SKU-1|S1", "SKU-1", "S1", true},
		{"A|B|S1", "A|B", "S1", true},
		{"A|", "", "", false},
		{"|S1", "", "", false},
		{"A", "", "", false},
		{"A|S 1", "", "", false},
		{"\x00|S1", "", "", false},
		{"A\xff|S1", "", "", false},
		{strings.Repeat("x", 65) + "|S1", "", "", false},
	} {
		sku, loc, ok := parseStockCursor(tt.in)
		if sku != tt.sku || loc != tt.loc || ok != tt.ok {
			t.Errorf("%q: %q %q %v", tt.in, sku, loc, ok)
		}
	}
}
