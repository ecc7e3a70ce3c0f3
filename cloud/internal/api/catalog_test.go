package api

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/omnisync/omnisync/cloud/internal/auth"
	"github.com/omnisync/omnisync/cloud/internal/catalog"
	"github.com/omnisync/omnisync/cloud/internal/reviews"
	"github.com/omnisync/omnisync/cloud/internal/store"
	"github.com/omnisync/omnisync/shared/downsync"
	"github.com/omnisync/omnisync/shared/events"
	"github.com/omnisync/omnisync/shared/gs1"
	"github.com/omnisync/omnisync/shared/hlc"
	"github.com/omnisync/omnisync/shared/ids"
)

// catalogHub is the API over a real SQLite store, recording what it tells
// the hub about catalog changes.
type catalogHub struct {
	srv *httptest.Server
	st  *store.Store
	mu  sync.Mutex
	pub [][]string
}

func newCatalogHub(t *testing.T, mutate func(*Options)) *catalogHub {
	t.Helper()
	st, err := store.Open(context.Background(), "sqlite:"+filepath.Join(t.TempDir(), "hub.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	h := &catalogHub{st: st}
	o := Options{Store: st, Version: "test", OnCatalogChange: func(ids []string) {
		h.mu.Lock()
		h.pub = append(h.pub, ids)
		h.mu.Unlock()
	}}
	if mutate != nil {
		mutate(&o)
	}
	// What the hub registers next to the API: the patterns must coexist.
	h.srv, _ = serveAPI(t, st, o, func(rt *auth.Router) {
		rt.HandleFunc("GET /{$}", auth.Page(auth.StoresRead), func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "dashboard") })
		rt.HandleFunc("GET /metrics", auth.Need(auth.MetricsRead), func(w http.ResponseWriter, r *http.Request) {})
	})
	return h
}

func (h *catalogHub) published() [][]string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.pub)
}

// post sends a catalog and decodes the answer.
func (h *catalogHub) post(t *testing.T, query, contentType string, body []byte) (int, ImportAnswer, map[string]any) {
	t.Helper()
	resp, err := http.Post(h.srv.URL+CatalogImportPath+query, contentType, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var ans ImportAnswer
	var m map[string]any
	_ = json.Unmarshal(raw, &ans)
	_ = json.Unmarshal(raw, &m)
	return resp.StatusCode, ans, m
}

func jsonl(t testing.TB, vs []catalog.Variant) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := catalog.WriteJSONL(&b, vs); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func csvOf(t testing.TB, vs []catalog.Variant) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := catalog.WriteCSV(&b, vs); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// withLine inserts raw text as line n (1-based) of a file.
func withLine(file []byte, n int, line string) []byte {
	ls := strings.SplitAfter(string(file), "\n")
	ls = slices.Insert(ls, n-1, line+"\n")
	return []byte(strings.Join(ls, ""))
}

func (h *catalogHub) variantCount(t *testing.T) int64 {
	t.Helper()
	_, v, err := h.st.CatalogStats(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// Ensure that imports are all-or-nothing unless partial, report bad rows by
// line, change and publish only what changed, and refuse GTIN conflicts.
func TestCatalogImport(t *testing.T) {
	h := newCatalogHub(t, nil)
	vs := catalog.Sample(3, 12)
	good := jsonl(t, vs)
	bad := withLine(good, 4, `{"sku":"BAD-1","product_id":"P-BAD","gtins":["04006381333932"],"name":"Bad","price":1,"currency":"EUR"}`)
	n := len(vs)

	// All or nothing: one bad row refuses the file.
	code, ans, m := h.post(t, "?format=jsonl&source=bad.jsonl", "", bad)
	if code != 422 || ans.Rejected != 1 || ans.Variants != 0 || len(ans.Errors) != 1 || ans.Errors[0].Line != 4 ||
		ans.Errors[0].Field != "gtin" || m["error"] == nil || ans.Mode != "all" {
		t.Fatalf("all-or-nothing with a bad row: %d %+v", code, m)
	}
	if got := h.variantCount(t); got != 0 {
		t.Fatalf("a refused import stored %d variants", got)
	}

	// Partial: the good rows go in, the bad one is listed.
	code, ans, m = h.post(t, "?mode=partial", "application/x-ndjson", bad)
	if code != 200 || ans.Variants != n || ans.Created != n || ans.Rejected != 1 || len(ans.Errors) != 1 || ans.Errors[0].Line != 4 ||
		ans.Mode != "partial" || ans.Format != "jsonl" || ans.Rows != n+1 {
		t.Fatalf("partial: %d %+v", code, m)
	}
	if got := h.variantCount(t); got != int64(n) {
		t.Fatalf("stored %d variants, want %d", got, n)
	}
	if pub := h.published(); len(pub) != 1 || len(pub[0]) != 12 {
		t.Fatalf("published %v", pub)
	}

	// The same catalog again (as CSV this time) changes and publishes nothing.
	code, ans, m = h.post(t, "", "text/csv", csvOf(t, vs))
	if code != 200 || ans.Unchanged != n || len(ans.ProductsChanged) != 0 || ans.Format != "csv" {
		t.Fatalf("re-import: %d %+v", code, m)
	}
	if pub := h.published(); len(pub) != 1 {
		t.Fatalf("an unchanged import published %v", pub[1:])
	}

	// One price change bumps that product only.
	before := productVersions(t, h, vs)
	changed := slices.Clone(vs)
	changed[5].PriceMinor += 100
	code, ans, m = h.post(t, "?source=prices.jsonl", "", jsonl(t, changed))
	if code != 200 || !slices.Equal(ans.ProductsChanged, []string{vs[5].ProductID}) || ans.Updated != 1 || ans.Unchanged != n-1 {
		t.Fatalf("price change: %d %+v", code, m)
	}
	after := productVersions(t, h, vs)
	for id, v := range after {
		want := before[id]
		if id == vs[5].ProductID {
			want++
		}
		if v != want {
			t.Fatalf("product %s version %d -> %d", id, before[id], v)
		}
	}
	if pub := h.published(); len(pub) != 2 || !slices.Equal(pub[1], []string{vs[5].ProductID}) {
		t.Fatalf("published %v", pub)
	}

	// A new SKU with a GTIN another SKU holds: refused whole, or left out.
	others := freshGTINs(catalog.Sample(98, 2), 100)
	for i := range others {
		others[i].SKU, others[i].ProductID = "X"+others[i].SKU, "X"+others[i].ProductID
	}
	thief := slices.Clone(others[:1])
	thief[0].SKU, thief[0].ProductID, thief[0].GTINs = "NEW-1", "NEW", vs[2].GTINs
	file := append(jsonl(t, others), jsonl(t, thief)...)
	wantLine := bytes.Count(file, []byte("\n"))
	code, ans, m = h.post(t, "?format=jsonl", "", file)
	if code != 422 || ans.Rejected != 1 || len(ans.Errors) != 1 || ans.Errors[0].Line != wantLine || ans.Errors[0].Value != vs[2].GTINs[0] ||
		!strings.Contains(ans.Errors[0].Reason, vs[2].SKU) || !strings.Contains(ans.Errors[0].Reason, "NEW-1") {
		t.Fatalf("GTIN conflict: %d %+v (want line %d)", code, m, wantLine)
	}
	if got := h.variantCount(t); got != int64(n) {
		t.Fatalf("a refused import stored variants: %d", got)
	}
	code, ans, m = h.post(t, "?format=jsonl&mode=partial", "", file)
	if code != 200 || ans.Rejected != 1 || ans.Variants != wantLine-1 || len(ans.Errors) != 1 || ans.Errors[0].Line != wantLine {
		t.Fatalf("GTIN conflict, partial: %d %+v", code, m)
	}
	if sku, _, _ := h.st.SKUByGTIN(context.Background(), vs[2].GTINs[0]); sku != vs[2].SKU {
		t.Fatalf("the GTIN moved to %s", sku)
	}

	var stats CatalogStats
	if code, m := get(t, h.srv.URL+"/v1/catalog?limit=2", &stats); code != 200 || stats.Variants != int64(n+wantLine-1) || len(stats.Imports) != 2 ||
		stats.Imports[0].Mode != "partial" || stats.Imports[0].RowsRejected != 1 || stats.Imports[1].Source != "prices.jsonl" {
		t.Fatalf("stats %d %+v", code, m)
	}
}

func productVersions(t *testing.T, h *catalogHub, vs []catalog.Variant) map[string]int64 {
	t.Helper()
	out := map[string]int64{}
	for _, v := range vs {
		if _, ok := out[v.ProductID]; ok {
			continue
		}
		var view downsync.View
		if code, m := get(t, h.srv.URL+"/v1/products/"+v.SKU, &view); code != 200 {
			t.Fatalf("%s: %d %v", v.SKU, code, m)
		}
		out[v.ProductID] = view.Product.Version
	}
	return out
}

// Ensure that requests the API cannot take are refused with the right
// status and nothing is stored.
func TestCatalogImport_Refused(t *testing.T) {
	h := newCatalogHub(t, func(o *Options) { o.MaxImportBytes = 4 << 10 })
	big := jsonl(t, catalog.Sample(1, 40))
	header := "sku,product_id,gtin,name,price,currency,colur\n"
	tests := []struct {
		name, query, ctype string
		body               []byte
		code               int
		field              string
	}{
		{"too large", "?format=jsonl", "", big, 413, ""},
		{"too large, format sniffed", "", "", big, 413, ""},
		{"unknown format", "?format=xml", "", []byte("<catalog/>"), 400, "format"},
		{"cannot tell", "", "application/octet-stream", []byte("hello\n"), 400, "format"},
		{"bad mode", "?mode=some", "text/csv", []byte(header), 400, "mode"},
		{"bad source", "?source=a%0Ab", "text/csv", []byte(header), 400, "source"},
		{"unknown CSV column", "", "text/csv", []byte(header + "A,P,4006381333931,Tee,1,EUR,red\n"), 422, ""},
		{"empty CSV", "?format=csv", "", nil, 422, ""},
	}
	for _, tt := range tests {
		code, _, m := h.post(t, tt.query, tt.ctype, tt.body)
		if code != tt.code || m["error"] == nil || (tt.field != "" && m["field"] != tt.field) {
			t.Errorf("%s: %d %v, want %d field %q", tt.name, code, m, tt.code, tt.field)
		}
	}
	if got := h.variantCount(t); got != 0 {
		t.Fatalf("stored %d variants", got)
	}
	if len(h.published()) != 0 {
		t.Fatal("published a refused import")
	}
	// The hub's general limit still applies elsewhere.
	resp, err := http.Post(h.srv.URL+"/v1/inventory", "application/json", bytes.NewReader(make([]byte, 2<<20)))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
}

// Ensure that LimitBodies bounds bodies except a catalog import's.
func TestLimitBodies(t *testing.T) {
	var read int64
	h := LimitBodies(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		read, _ = io.Copy(io.Discard, r.Body)
	}), 10)
	for _, tt := range []struct {
		method, path string
		want         int64
	}{
		{"POST", "/v1/events", 10},
		{"POST", CatalogImportPath, 100},
		{"PUT", CatalogImportPath, 10},
	} {
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(tt.method, tt.path, bytes.NewReader(make([]byte, 100))))
		if read != tt.want {
			t.Errorf("%s %s read %d bytes, want %d", tt.method, tt.path, read, tt.want)
		}
	}
}

// seedShop imports a small catalog and gives its first product stock
// online and in two stores, and two reviews.
func seedShop(t *testing.T, h *catalogHub) []catalog.Variant {
	t.Helper()
	vs := catalog.Sample(5, 4)
	if code, ans, m := h.post(t, "", "application/x-ndjson", jsonl(t, vs)); code != 200 || ans.Variants != len(vs) {
		t.Fatalf("seed: %d %v", code, m)
	}
	p := vs[0].ProductID
	var mine []catalog.Variant
	for _, v := range vs {
		if v.ProductID == p {
			mine = append(mine, v)
		}
	}
	wall := time.Now().UnixMilli()
	var items []store.Item
	seq := uint64(0)
	add := func(st string, kind events.Kind, body any) {
		seq++
		data, _ := json.Marshal(body)
		items = append(items, store.Item{Env: events.Envelope{V: 1, ID: ids.NewEventID(time.Now()), HLC: hlc.Timestamp{Wall: wall + int64(seq)},
			Origin: events.Origin{Store: st, Device: "kiosk-1", Epoch: 1, Seq: seq}, Kind: kind, Data: data}})
	}
	line := func(sku string, qty int64) []events.Line { return []events.Line{{SKU: sku, Qty: qty}} }
	add("online", events.KindCount, events.StockMove{Location: "online", Lines: line(mine[0].SKU, 7)})
	add("store-1", events.KindCount, events.StockMove{Location: "store-1", Lines: line(mine[0].SKU, 3)})
	add("store-2", events.KindCount, events.StockMove{Location: "store-2", Lines: line(mine[0].SKU, 0)})
	add("store-2", events.KindCount, events.StockMove{Location: "store-2", Lines: line(mine[1].SKU, 5)})
	// This chain publishes reviews that pass its blocked words at once.
	if err := h.st.SetReviewPolicy(context.Background(), reviews.Policy{BlockedWords: reviews.DefaultBlockedWords, AutoPublish: true}); err != nil {
		t.Fatal(err)
	}
	add("store-1", events.KindReview, events.Review{ProductID: p, SKU: mine[0].SKU, Rating: 5, Title: "Lovely fit", Text: "True to size.", Nickname: "Ana", Session: "s1"})
	add("store-2", events.KindReview, events.Review{ProductID: p, SKU: mine[1].SKU, Rating: 4, Title: "Good", Nickname: "Ben", Session: "s2"})
	res, err := h.st.ApplyBatch(context.Background(), items)
	if err != nil || res.Applied != len(items) {
		t.Fatalf("seed events: %+v %v", res, err)
	}
	return mine
}

// Ensure that GET /v1/products/{code} answers the edge's view for every
// kind of code, with the hub's stock and reviews, and says why it cannot.
func TestProductView(t *testing.T) {
	h := newCatalogHub(t, nil)
	mine := seedShop(t, h)
	gtin14 := mine[0].GTINs[0]
	gtin13 := gtin14[1:]
	tests := []struct {
		name, code string
		by         string
	}{
		{"sku", mine[0].SKU, downsync.BySKU},
		{"gtin-13", gtin13, downsync.ByGTIN},
		{"gtin-14", gtin14, downsync.ByGTIN},
		{"element string", "(01)" + gtin14 + "(21)ABC", downsync.ByElementString},
		{"digital link", "https://shop.example.com/01/" + gtin14 + "/21/ABC", downsync.ByDigitalLink},
	}
	for _, tt := range tests {
		var v downsync.View
		code, m := get(t, h.srv.URL+"/v1/products/"+escapeCode(tt.code), &v)
		if code != 200 || v.Match.By != tt.by || v.Selected != mine[0].SKU || v.Product.ID != mine[0].ProductID || len(v.Variants) != len(mine) {
			t.Fatalf("%s: %d %v", tt.name, code, m)
		}
		if v.AsOf.IsZero() || time.Since(v.AsOf) > time.Minute {
			t.Fatalf("%s: as_of %v", tt.name, v.AsOf)
		}
		s0 := v.Variants[slices.IndexFunc(v.Variants, func(x downsync.VariantView) bool { return x.SKU == mine[0].SKU })].Stock
		if s0.Here != nil || s0.Online == nil || s0.Online.Available != 7 || len(s0.Nearby) != 2 || s0.Nearby[0].Location != "store-1" ||
			s0.Nearby[0].Available != 3 || s0.Nearby[1].Available != 0 {
			t.Fatalf("%s: stock %+v", tt.name, s0)
		}
		if v.Reviews.Count != 2 || v.Reviews.Average != 4.5 || len(v.Reviews.Latest) != 2 {
			t.Fatalf("%s: reviews %+v", tt.name, v.Reviews)
		}
		if tt.by == downsync.ByDigitalLink && v.Match.Serial != "ABC" {
			t.Fatalf("%s: match %+v", tt.name, v.Match)
		}
	}
	// An unescaped Digital Link still works (the mux cleans "//" away).
	var v downsync.View
	if code, m := get(t, h.srv.URL+"/v1/products/https://shop.example.com/01/"+gtin14+"/21/XYZ?17=261231", &v); code != 200 || v.Match.Serial != "XYZ" || v.Match.By != downsync.ByDigitalLink {
		t.Fatalf("unescaped Digital Link: %d %v", code, m)
	}
	bad := []struct {
		code   string
		status int
	}{
		{gtin13[:12] + string('0'+(gtin13[12]-'0'+1)%10), 400}, // wrong check digit
		{"https://shop.example.com/01/" + gtin14[:13] + "0/x", 400},
		{"a b", 400},
		{"NO-SUCH-SKU", 404},
		{"4006381333931", 404},
	}
	for _, tt := range bad {
		code, m := get(t, h.srv.URL+"/v1/products/"+escapeCode(tt.code), nil)
		if code != tt.status || m["field"] != "code" || m["error"] == "" {
			t.Errorf("%q: %d %v, want %d", tt.code, code, m, tt.status)
		}
	}
	var rv struct {
		ProductID string       `json:"product_id"`
		Reviews   []ReviewView `json:"reviews"`
	}
	if code, m := get(t, h.srv.URL+"/v1/products/"+mine[0].ProductID+"/reviews", &rv); code != 200 || len(rv.Reviews) != 2 ||
		rv.Reviews[0].Nickname != "Ben" || rv.Reviews[0].Status != store.ReviewPublished {
		t.Fatalf("reviews: %d %v", code, m)
	}
	if code, m := get(t, h.srv.URL+"/v1/products/a%20b/reviews", nil); code != 400 || m["field"] != "id" {
		t.Fatalf("bad id: %d %v", code, m)
	}
}

// escapeCode puts a code in one path segment, as a POS app would.
func escapeCode(code string) string {
	return strings.NewReplacer("%", "%25", "/", "%2F", "?", "%3F", "#", "%23", " ", "%20", "(", "%28", ")", "%29").Replace(code)
}

// freshGTINs gives each variant a GTIN of its own, numbered from n, under
// a prefix the samples do not use.
func freshGTINs(vs []catalog.Variant, n int) []catalog.Variant {
	for i := range vs {
		body := fmt.Sprintf("0599999%06d", n+i)
		cd, _ := gs1.CheckDigit(body)
		vs[i].GTINs = []string{body + string(cd)}
	}
	return vs
}

// countingBody counts the bytes a client sent of it.
type countingBody struct {
	r io.Reader
	n atomic.Int64
}

func (c *countingBody) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n.Add(int64(n))
	return n, err
}

// Ensure that an import arriving while another one runs is answered 409
// with Retry-After before its body is read (with Expect: 100-continue the
// client never sends it), and that the running one is not disturbed.
func TestCatalogImport_OneAtATime(t *testing.T) {
	h := newCatalogHub(t, nil)
	vs := catalog.Sample(4, 30)
	file := jsonl(t, vs)

	// A first import whose upload is still coming in.
	pr, pw := io.Pipe()
	first := make(chan int, 1)
	go func() {
		// Once the client is done with the upload, writes still pending on
		// the pipe must fail rather than wait for a reader that is gone.
		defer pr.Close()
		resp, err := http.Post(h.srv.URL+CatalogImportPath+"?format=jsonl", "", pr)
		if err != nil {
			pr.CloseWithError(err)
			first <- 0
			return
		}
		resp.Body.Close()
		first <- resp.StatusCode
	}()
	half := bytes.IndexByte(file[len(file)/2:], '\n') + len(file)/2 + 1
	if _, err := pw.Write(file[:half]); err != nil {
		t.Fatal(err)
	}

	// Wait until the first holds the lock. A second import sent before
	// then would take the lock itself, and the first would be the one
	// refused (with its upload still open, it would never hear so).
	deadline := time.Now().Add(30 * time.Second)
	for !h.st.ImportRunning() {
		if time.Now().After(deadline) {
			t.Fatal("the first import never took the lock")
		}
		time.Sleep(5 * time.Millisecond)
	}

	// A second one is refused before any of it is read (a bad file, so
	// that an answer other than 409 stores nothing).
	body := &countingBody{r: strings.NewReader(`{"sku":"bad sku"}` + "\n" + strings.Repeat(" ", 1<<20))}
	req, err := http.NewRequest(http.MethodPost, h.srv.URL+CatalogImportPath+"?format=jsonl", body)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Expect", "100-continue")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusConflict {
		t.Fatalf("second import: %d %s", resp.StatusCode, raw)
	}
	if resp.Header.Get("Retry-After") != "30" || !strings.Contains(string(raw), "another catalog import is running") {
		t.Fatalf("409 without Retry-After or reason: %v %s", resp.Header, raw)
	}
	if n := body.n.Load(); n > 0 {
		t.Fatalf("the client sent %d bytes of a refused import", n)
	}

	if _, err := pw.Write(file[half:]); err != nil {
		t.Fatal(err)
	}
	pw.Close()
	if code := <-first; code != http.StatusOK {
		t.Fatalf("first import: %d", code)
	}
	if got := h.variantCount(t); got != int64(len(vs)) {
		t.Fatalf("stored %d variants, want %d", got, len(vs))
	}
	// Free again.
	if code, ans, m := h.post(t, "?format=jsonl", "", file); code != 200 || ans.Unchanged != len(vs) {
		t.Fatalf("after: %d %v", code, m)
	}
}

// Ensure that the size cap holds without a Content-Length too (a chunked
// upload is cut at the cap), that an unclosed CSV quote is refused by line
// without reading the rest, and that an import with thousands of bad rows
// lists the first catalog.DefaultMaxErrors and counts the rest.
func TestCatalogImport_Bounds(t *testing.T) {
	h := newCatalogHub(t, func(o *Options) { o.MaxImportBytes = 64 << 10 })
	big := jsonl(t, catalog.Sample(1, 400))
	resp, err := http.Post(h.srv.URL+CatalogImportPath+"?format=jsonl", "", io.MultiReader(bytes.NewReader(big)))
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestEntityTooLarge || !strings.Contains(string(raw), "65536") {
		t.Fatalf("chunked upload over the cap: %d %s", resp.StatusCode, raw)
	}

	h = newCatalogHub(t, nil)
	unclosed := "sku,product_id,gtin,name,price,currency\nA,P,4006381333931,\"never closed,1,EUR\n" + strings.Repeat("B,P,4006381333931,x,1,EUR\n", 100000)
	code, ans, m := h.post(t, "", "text/csv", []byte(unclosed))
	if code != 422 || len(ans.Errors) != 1 || ans.Errors[0].Line != 2 || !strings.Contains(ans.Error, "never closed") {
		t.Fatalf("unclosed quote: %d %v", code, m)
	}

	var b bytes.Buffer
	for i := range 2500 {
		fmt.Fprintf(&b, `{"sku":"S-%d","product_id":"P","gtin":"4006381333932","name":"bad check digit","price":1,"currency":"EUR"}`+"\n", i)
	}
	for _, mode := range []string{"all", "partial"} {
		code, ans, m = h.post(t, "?format=jsonl&mode="+mode, "", b.Bytes())
		if code == 500 || len(ans.Errors) != catalog.DefaultMaxErrors || ans.ErrorsDropped != 2500-catalog.DefaultMaxErrors ||
			ans.Rejected != 2500 || ans.Errors[0].Line != 1 {
			t.Fatalf("%s: %d rejected %d, %d errors listed, %d dropped: %v", mode, code, ans.Rejected, len(ans.Errors), ans.ErrorsDropped, m["error"])
		}
	}
	if got := h.variantCount(t); got != 0 {
		t.Fatalf("stored %d variants", got)
	}
}
