package posapi

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"testing"

	"github.com/omnisync/omnisync/edge/internal/outbox"
	"github.com/omnisync/omnisync/edge/internal/productcache"
	"github.com/omnisync/omnisync/edge/internal/productcache/cachetest"
	"github.com/omnisync/omnisync/shared/downsync"
	"github.com/omnisync/omnisync/shared/events"
)

func newServer(t *testing.T, budget int64) (*httptest.Server, *outbox.Outbox) {
	t.Helper()
	ob, err := outbox.Open(outbox.Options{Path: filepath.Join(t.TempDir(), "outbox.db"), Store: "S1", Device: "pos-1",
		BudgetBytes: budget, MinFreeDisk: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ob.Close() })
	mux := http.NewServeMux()
	New(Options{Store: "S1", Outbox: ob, Status: func() any { return ob.Stats() }}).Register(mux)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv, ob
}

func postBody(t *testing.T, url, body string) (int, map[string]any) {
	t.Helper()
	resp, err := http.Post(url+"/v1/events", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&m)
	return resp.StatusCode, m
}

// Ensure that an accepted POST answers ids, epoch, seqs and stamps of
// durable events: with the request's drafts (location filled in) they are
// exactly the envelopes in the outbox.
func TestPostEvents_Accepted(t *testing.T) {
	srv, ob := newServer(t, 0)
	body := `[{"kind":"sale","data":{"lines":[{"sku":"A","qty":1}]}},{"kind":"count","data":{"lines":[{"sku":"A","qty":9}]}}]`
	code, m := postBody(t, srv.URL, body)
	if code != http.StatusAccepted {
		t.Fatalf("code %d %v", code, m)
	}
	var acc Accepted
	if b, err := json.Marshal(m); err != nil || json.Unmarshal(b, &acc) != nil {
		t.Fatalf("reply %v: %v", m, err)
	}
	if len(acc.IDs) != 2 || len(acc.Seqs) != 2 || len(acc.HLCs) != 2 {
		t.Fatalf("reply %+v", acc)
	}
	if st := ob.Stats(); st.Depth != 2 || st.LastSeq != 2 || acc.Epoch != st.Epoch {
		t.Fatalf("stats %+v reply %+v", st, acc)
	}
	drafts, err := events.ParseDrafts([]byte(body), "S1")
	if err != nil {
		t.Fatal(err)
	}
	// The POS's counts are made by hand.
	if drafts[1], err = drafts[1].WithCountMethod(events.CountManual); err != nil {
		t.Fatal(err)
	}
	recs, _ := ob.Read(0, 10, 0)
	if len(recs) != 2 {
		t.Fatalf("%d records", len(recs))
	}
	for i, rec := range recs {
		got, err := events.Decode(rec.Data)
		if err != nil {
			t.Fatal(err)
		}
		want := events.Envelope{
			V: events.CurrentVersion, ID: acc.IDs[i],
			Origin: events.Origin{Store: "S1", Device: "pos-1", Epoch: acc.Epoch, Seq: acc.Seqs[i]},
			HLC:    acc.HLCs[i], Kind: drafts[i].Kind, Data: drafts[i].Data,
		}
		if got.ID != want.ID || got.Origin != want.Origin || got.HLC != want.HLC || got.HLC.IsZero() || got.Kind != want.Kind || string(got.Data) != string(want.Data) {
			t.Fatalf("event %d in the outbox:\n %+v\nfrom the answer:\n %+v", i, got, want)
		}
	}
	if acc.HLCs[1].Compare(acc.HLCs[0]) <= 0 {
		t.Fatalf("stamps not increasing: %v", acc.HLCs)
	}
	if !strings.Contains(string(recs[1].Data), `"method":"manual"`) {
		t.Fatalf("count method not stamped: %s", recs[1].Data)
	}
	if !strings.Contains(string(recs[0].Data), `"location":"S1"`) {
		t.Fatalf("location not filled: %s", recs[0].Data)
	}
}

// Ensure that a full outbox answers 507 for sales, refuses low-priority
// events before sales, and writes nothing it refuses.
func TestPostEvents_DiskBudget(t *testing.T) {
	srv, ob := newServer(t, 1<<20) // 1 MiB
	line := `{"kind":"sale","data":{"lines":[` + strings.Repeat(`{"sku":"SKU-123456","qty":1},`, 300) + `{"sku":"B","qty":1}]}}`
	scan := `{"kind":"scan","data":{"code":"09506000134352"}}`
	var sawScanRefused bool
	for i := 0; i < 200; i++ {
		if c, _ := postBody(t, srv.URL, scan); c == http.StatusInsufficientStorage {
			sawScanRefused = true
		}
		code, m := postBody(t, srv.URL, line)
		if code == http.StatusInsufficientStorage {
			if !sawScanRefused {
				t.Fatal("a sale was refused before low-priority scans were")
			}
			if m["error"] == "" {
				t.Fatal("507 without an error message")
			}
			before := ob.Stats().LastSeq
			if c, _ := postBody(t, srv.URL, line); c != http.StatusInsufficientStorage || ob.Stats().LastSeq != before {
				t.Fatal("a refused sale changed the outbox")
			}
			// Room comes back once the hub confirms.
			if _, err := ob.Ack(ob.Epoch(), ob.Stats().LastSeq); err != nil {
				t.Fatal(err)
			}
			if c, m := postBody(t, srv.URL, line); c != http.StatusAccepted {
				t.Fatalf("after ack: %d %v", c, m)
			}
			return
		}
		if code != http.StatusAccepted {
			t.Fatalf("code %d %v", code, m)
		}
	}
	t.Fatal("budget never exhausted")
}

func TestPostEvents_BadInput(t *testing.T) {
	srv, ob := newServer(t, 0)
	tests := []struct {
		body  string
		code  int
		field string
	}{
		{`nope`, 400, ""},
		{`{"kind":"sale","data":{"lines":[{"sku":"A","qty":0}]}}`, 400, "data.lines[0].qty"},
		{strings.Repeat(" ", MaxBodyBytes+1), 413, ""},
	}
	for _, tt := range tests {
		code, m := postBody(t, srv.URL, tt.body)
		if code != tt.code || (tt.field != "" && m["field"] != tt.field) || m["error"] == nil {
			t.Errorf("body %.40q: %d %v, want %d field %q", tt.body, code, m, tt.code, tt.field)
		}
	}
	if ob.Stats().LastSeq != 0 {
		t.Fatal("bad input was written")
	}
}

// Ensure that a retried request with an Idempotency-Key is answered with the
// first answer and appends nothing.
func TestPostEvents_IdempotencyKey(t *testing.T) {
	srv, ob := newServer(t, 0)
	body := `{"kind":"sale","data":{"lines":[{"sku":"A","qty":1}]}}`
	send := func(key, body string) (*http.Response, map[string]any) {
		req, _ := http.NewRequest(http.MethodPost, srv.URL+"/v1/events", strings.NewReader(body))
		req.Header.Set("Idempotency-Key", key)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var m map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&m)
		return resp, m
	}
	r1, m1 := send("till-3-receipt-991", body)
	r2, m2 := send("till-3-receipt-991", body)
	if r1.StatusCode != 202 || r2.StatusCode != 202 || r2.Header.Get("Idempotent-Replayed") != "true" || r1.Header.Get("Idempotent-Replayed") != "" {
		t.Fatalf("codes %d %d, replayed header %q", r1.StatusCode, r2.StatusCode, r2.Header.Get("Idempotent-Replayed"))
	}
	if m1["ids"].([]any)[0] != m2["ids"].([]any)[0] || m1["hlcs"] == nil || fmt.Sprint(m1["hlcs"]) != fmt.Sprint(m2["hlcs"]) || fmt.Sprint(m1["seqs"]) != fmt.Sprint(m2["seqs"]) {
		t.Fatalf("different answers: %v %v", m1, m2)
	}
	if ob.Stats().LastSeq != 1 {
		t.Fatalf("retry appended: %+v", ob.Stats())
	}
	if r, m := send("till-3-receipt-991", `{"kind":"sale","data":{"lines":[{"sku":"B","qty":1}]}}`); r.StatusCode != 422 || m["field"] != "Idempotency-Key" {
		t.Fatalf("reused key: %d %v", r.StatusCode, m)
	}
	if r, m := send("bad key", body); r.StatusCode != 400 || m["field"] != "Idempotency-Key" {
		t.Fatalf("bad key: %d %v", r.StatusCode, m)
	}
}

// Ensure that GET /v1/products/{code} answers the cache's view for every
// kind of code (path-escaped, slashes and all), 400 naming the field for a
// code that is not valid, and 404 for one the catalog does not know.
func TestGetProduct(t *testing.T) {
	c, err := productcache.Open(productcache.Options{Path: filepath.Join(t.TempDir(), "cache.db"), Store: "S1", Online: "online"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	p := cachetest.ProductDoc(3, 1)
	err = c.Apply(context.Background(), []productcache.Update{
		{Key: downsync.ProductKey(p.ID), Value: cachetest.JSON(p)},
		{Key: downsync.StockKey("S1", p.Variants[1].SKU), Value: cachetest.JSON(cachetest.StockDoc("S1", p.Variants[1].SKU, 6, 1))},
	}, 2, true)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	New(Options{Store: "S1", Products: c}).Register(mux)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)

	gtin := p.Variants[1].GTINs[0]
	bad := gtin[:13] + string('0'+(gtin[13]-'0'+1)%10)
	cases := []struct {
		name, code string
		status     int
		error      string
		field      string
	}{
		{"sku", p.Variants[1].SKU, 200, "", ""},
		{"gtin13", gtin[1:], 200, "", ""},
		{"element string", "(01)" + gtin + "(10)LOT/7", 200, "", ""},
		{"digital link", "https://id.example.com/01/" + gtin + "/21/A%2FB", 200, "", ""},
		{"wrong check digit", bad, 400, "not a valid code: ", "code"},
		{"empty", "", 400, "not a valid code: ", "code"},
		{"unknown gtin", "4006381333931", 404, "not found: ", ""},
		{"unknown sku", "NOPE", 404, "not found: ", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resp, err := http.Get(srv.URL + "/v1/products/" + url.PathEscape(tc.code))
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if resp.StatusCode != tc.status || resp.Header.Get("Content-Type") != "application/json" {
				t.Fatalf("status %d %q", resp.StatusCode, resp.Header.Get("Content-Type"))
			}
			if tc.status == 200 {
				var v downsync.View
				if err := json.NewDecoder(resp.Body).Decode(&v); err != nil {
					t.Fatal(err)
				}
				if v.Code != tc.code || v.Product.ID != p.ID || v.Selected != p.Variants[1].SKU || v.AsOf.IsZero() {
					t.Fatalf("view: code %q product %q selected %q as_of %v", v.Code, v.Product.ID, v.Selected, v.AsOf)
				}
				if here := v.Variants[1].Stock.Here; here == nil || here.Available != 6 {
					t.Errorf("stock here = %+v", here)
				}
				return
			}
			var m map[string]string
			if err := json.NewDecoder(resp.Body).Decode(&m); err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(m["error"], tc.error) || m["field"] != tc.field || len(m) != map[bool]int{true: 2, false: 1}[tc.field != ""] {
				t.Errorf("body = %v", m)
			}
		})
	}
}
