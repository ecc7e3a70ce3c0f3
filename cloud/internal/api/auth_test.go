package api

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/omnisync/omnisync/cloud/internal/auth"
	"github.com/omnisync/omnisync/cloud/internal/store"
)

// adminToken is the bootstrap token of every test API: requests that
// carry no credentials are sent with it (asAdmin), so tests of what the
// API answers need not repeat who asks; the tests below ask as others.
const adminToken = "omni_test-admin-token-0123456789"

// serveAPI serves the API built from o behind a real auth service over
// o's store, as the hub does (routes declared, bodies bounded), at a URL
// that is also the API's public URL. It returns the server and the auth
// service.
func serveAPI(t testing.TB, st *store.Store, o Options, extra func(rt *auth.Router)) (*httptest.Server, *auth.Service) {
	t.Helper()
	svc := auth.New(auth.Options{Store: st})
	if err := svc.Bootstrap(context.Background(), adminToken, io.Discard); err != nil {
		t.Fatal(err)
	}
	rt := auth.NewRouter(svc)
	srv := httptest.NewUnstartedServer(nil)
	if o.PublicURL == "" {
		o.PublicURL = "http://" + srv.Listener.Addr().String()
	}
	New(o).Register(rt)
	if extra != nil {
		extra(rt)
	}
	srv.Config.Handler = asAdmin(LimitBodies(rt, 1<<20))
	srv.Start()
	t.Cleanup(srv.Close)
	return srv, svc
}

// asAdmin sends requests without credentials as the bootstrap admin.
func asAdmin(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") == "" && r.Header.Get("X-Test-Anonymous") == "" {
			r.Header.Set("Authorization", "Bearer "+adminToken)
		}
		next.ServeHTTP(w, r)
	})
}

// tokenFor creates user (role, stores) and returns an API token of theirs.
func tokenFor(t *testing.T, svc *auth.Service, name string, role auth.Role, stores ...string) string {
	t.Helper()
	ctx := context.Background()
	if _, err := svc.CreateUser(ctx, auth.NewUser{Name: name, Role: string(role), Stores: stores}); err != nil {
		t.Fatal(err)
	}
	admin := auth.NewPrincipal(1, auth.FirstAdmin, auth.Admin, nil, nil)
	scopes := ""
	if role == auth.Integration {
		scopes = "inventory:read catalog:read"
	}
	_, tok, err := svc.CreateToken(ctx, admin, auth.NewTokenRequest{Name: "test", User: name, Scopes: scopes})
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func getAs(t *testing.T, token, url string) (int, map[string]any) {
	t.Helper()
	return callAs(t, token, http.MethodGet, url, "")
}

// callAs sends a request with a JSON body ("" for none) as token's holder
// ("" for anonymous) and decodes the JSON answer.
func callAs(t *testing.T, token, method, url, body string) (int, map[string]any) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, _ := http.NewRequest(method, url, rd)
	req.Header.Set("Content-Type", "application/json")
	if token == "" {
		req.Header.Set("X-Test-Anonymous", "1")
	} else {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&m)
	return resp.StatusCode, m
}

// Ensure that every API route refuses a caller without credentials, and
// that the shoppers' routes and /healthz stay open.
func TestAPI_Anonymous(t *testing.T) {
	srv, _ := newAPI(t)
	for _, tt := range []struct {
		path string
		want int
	}{
		{"/v1/stores", http.StatusUnauthorized},
		{"/v1/inventory/SKU-1", http.StatusUnauthorized},
		{"/v1/inventory", http.StatusUnauthorized},
		{"/v1/conflicts", http.StatusUnauthorized},
		{"/v1/deadletters", http.StatusUnauthorized},
		{"/v1/catalog", http.StatusUnauthorized},
		{"/v1/products/SKU-1", http.StatusUnauthorized},
		{"/healthz", http.StatusOK},
		{"/products/NOPE", http.StatusNotFound},
	} {
		if code, body := getAs(t, "", srv.URL+tt.path); code != tt.want {
			t.Errorf("GET %s anonymously: %d %v, want %d", tt.path, code, body, tt.want)
		}
	}
}

// Ensure that a store manager reads only their stores: /v1/stores,
// inventory, conflicts and dead letters are filtered, and naming another
// store is refused; an analyst sees everything, a moderator none of it,
// and an integration only its token's scopes.
func TestAPI_StoreScoping(t *testing.T) {
	srv, st, svc := newAPIAuth(t)
	ctx := context.Background()
	if err := st.AddDeadLetter(ctx, store.DeadLetter{Store: "S1", Device: "pos-1", Reason: "forged origin", Payload: []byte("{}")}); err != nil {
		t.Fatal(err)
	}
	if err := st.AddDeadLetter(ctx, store.DeadLetter{Store: "S2", Device: "pos-1", Reason: "forged origin", Payload: []byte("{}")}); err != nil {
		t.Fatal(err)
	}
	if err := st.SetSafetyStock(ctx, "SKU-1", "S2", 5); err != nil { // S2: 2 on hand, 1 reserved, 5 safety: oversold
		t.Fatal(err)
	}
	mgr := tokenFor(t, svc, "manager-s1", auth.StoreManager, "S1")
	analyst := tokenFor(t, svc, "analyst", auth.Analyst)
	mod := tokenFor(t, svc, "mod", auth.Moderator)
	shop := tokenFor(t, svc, "webshop", auth.Integration)

	locations := func(m map[string]any, list string, field string) []string {
		var out []string
		items, _ := m[list].([]any)
		for _, it := range items {
			out = append(out, it.(map[string]any)[field].(string))
		}
		return out
	}
	code, m := getAs(t, mgr, srv.URL+"/v1/inventory/SKU-1")
	if got := locations(m, "locations", "location"); code != 200 || len(got) != 1 || got[0] != "S1" {
		t.Fatalf("manager's SKU-1: %d %v", code, got)
	}
	code, m = getAs(t, analyst, srv.URL+"/v1/inventory/SKU-1")
	if got := locations(m, "locations", "location"); code != 200 || len(got) != 2 {
		t.Fatalf("analyst's SKU-1: %d %v", code, got)
	}
	code, m = getAs(t, mgr, srv.URL+"/v1/inventory")
	for _, loc := range locations(m, "items", "location") {
		if loc != "S1" {
			t.Fatalf("manager's listing holds %s (%d)", loc, code)
		}
	}
	if code, _ := getAs(t, mgr, srv.URL+"/v1/inventory?location=S2"); code != http.StatusForbidden {
		t.Fatalf("manager asking for S2's stock: %d", code)
	}
	if code, _ := getAs(t, mgr, srv.URL+"/v1/inventory/SKU-2"); code != 200 {
		t.Fatalf("manager's SKU-2 (held at S1): %d", code)
	}
	code, m = getAs(t, mgr, srv.URL+"/v1/stores")
	if got := locations(m, "stores", "store"); code != 200 || len(got) != 1 || got[0] != "S1" {
		t.Fatalf("manager's stores: %d %v", code, got)
	}
	code, m = getAs(t, mgr, srv.URL+"/v1/deadletters")
	if got := locations(m, "dead_letters", "store"); code != 200 || len(got) != 1 || got[0] != "S1" {
		t.Fatalf("manager's dead letters: %d %v", code, got)
	}
	if code, _ := getAs(t, mgr, srv.URL+"/v1/deadletters?store=S2"); code != http.StatusForbidden {
		t.Fatalf("manager asking for S2's dead letters: %d", code)
	}
	code, m = getAs(t, mgr, srv.URL+"/v1/conflicts")
	if got := locations(m, "conflicts", "location"); code != 200 || len(got) != 0 {
		t.Fatalf("manager sees conflicts %v (%d)", got, code)
	}
	code, m = getAs(t, analyst, srv.URL+"/v1/conflicts")
	if got := locations(m, "conflicts", "location"); code != 200 || len(got) != 1 || got[0] != "S2" {
		t.Fatalf("analyst's conflicts %v (%d)", got, code)
	}
	// Safety stock: a store manager for their stores only, an analyst
	// not at all, bad bodies refused.
	put := func(token, path, body string) int {
		req, _ := http.NewRequest(http.MethodPut, srv.URL+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	for _, tt := range []struct {
		who, token, body string
		want             int
	}{
		{"manager, own store", mgr, `{"location":"S1","safety_stock":2}`, http.StatusOK},
		{"manager, other store", mgr, `{"location":"S2","safety_stock":0}`, http.StatusForbidden},
		{"analyst", analyst, `{"location":"S1","safety_stock":2}`, http.StatusForbidden},
		{"negative", mgr, `{"location":"S1","safety_stock":-1}`, http.StatusBadRequest},
		{"missing", mgr, `{"location":"S1"}`, http.StatusBadRequest},
		{"unknown field", mgr, `{"location":"S1","safety_stock":1,"x":1}`, http.StatusBadRequest},
	} {
		if got := put(tt.token, "/v1/inventory/SKU-1/safety", tt.body); got != tt.want {
			t.Errorf("safety stock, %s: %d, want %d", tt.who, got, tt.want)
		}
	}
	if s, err := st.StockForSKU(ctx, "SKU-1"); err != nil || s[0].Location != "S1" || s[0].Safety != 2 || s[1].Safety != 5 {
		t.Fatalf("after the safety stock requests: %+v %v", s, err)
	}
	for _, tt := range []struct {
		who, token, path string
		want             int
	}{
		{"moderator", mod, "/v1/stores", http.StatusForbidden},
		{"moderator", mod, "/v1/catalog", http.StatusOK},
		{"analyst", analyst, "/v1/catalog/import", http.StatusMethodNotAllowed},
		{"integration", shop, "/v1/inventory/SKU-1", http.StatusOK},
		{"integration", shop, "/v1/stores", http.StatusForbidden},
		{"integration", shop, "/v1/deadletters", http.StatusForbidden},
		{"bad token", "omni_not-a-real-token-000000", "/v1/stores", http.StatusUnauthorized},
	} {
		if code, body := getAs(t, tt.token, srv.URL+tt.path); code != tt.want {
			t.Errorf("%s GET %s: %d %v, want %d", tt.who, tt.path, code, body, tt.want)
		}
	}
	req, _ := http.NewRequest(http.MethodPost, srv.URL+CatalogImportPath, nil)
	req.Header.Set("Authorization", "Bearer "+analyst)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("an analyst importing a catalog: %d", resp.StatusCode)
	}
}
