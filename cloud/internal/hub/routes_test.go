package hub

import (
	"context"
	"crypto/ed25519"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/omnisync/omnisync/cloud/internal/api"
	"github.com/omnisync/omnisync/cloud/internal/auth"
	"github.com/omnisync/omnisync/cloud/internal/cartsvc"
	"github.com/omnisync/omnisync/cloud/internal/store"
)

const testAdminToken = "omni_route-walk-admin-token-000"

// testWeb builds the hub's whole HTTP handler over a real SQLite store,
// as Run does, with an admin bootstrap token.
func testWeb(t *testing.T) (http.Handler, *auth.Router, *auth.Service) {
	t.Helper()
	st, err := store.Open(context.Background(), "sqlite:"+filepath.Join(t.TempDir(), "hub.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	const public = "http://127.0.0.1:8080"
	svc := auth.New(auth.Options{Store: st, PublicURL: public})
	if err := svc.Bootstrap(context.Background(), testAdminToken, io.Discard); err != nil {
		t.Fatal(err)
	}
	_, key, _ := ed25519.GenerateKey(nil)
	cs, err := cartsvc.New(cartsvc.Options{Store: st, Online: "online", Key: key})
	if err != nil {
		t.Fatal(err)
	}
	web, rt, err := handler(httpParts{store: st, auth: svc, metrics: newMetrics().reg, version: "test", publicURL: public,
		api: api.Options{Store: st, PublicURL: public, Carts: cs}})
	if err != nil {
		t.Fatal(err)
	}
	return web, rt, svc
}

// samplePath turns a route pattern into a request: wildcards get sample
// values.
func samplePath(pattern string) (method, path string) {
	method, path, _ = strings.Cut(pattern, " ")
	repl := strings.NewReplacer("{sku}", "SKU-1", "{code...}", "SKU-1", "{id}", "999999", "{name}", "someone",
		"{rest...}", "09506000134352", "{compressed}", "favicon.ico", "{$}", "")
	return method, repl.Replace(path)
}

// publicRoutes are the only routes anyone may use without logging in: the
// shoppers' pages and the resolver, health, and the way in.
var publicRoutes = []string{
	"GET /healthz",
	"GET /01/{rest...}", "OPTIONS /01/{rest...}", "GET /{compressed}", "GET /products/{sku}", "GET /carts/{id}",
	"GET /s/{token}", "POST /s/{token}",
	"GET /login", "POST /login", "POST /logout", "POST /v1/auth/login",
	// The first admin's password, with the one-time setup token (the
	// token is the credential: nobody can log in yet).
	"GET /setup", "POST /setup", "POST /v1/auth/setup",
	"GET /console/live.js",
}

// Ensure that every route the hub registers declares what it needs, that
// only the expected routes are public, and that every other one refuses a
// caller without credentials (401, or a page's redirect to the login) and
// a caller without its scope (403).
func TestRoutes_EveryDoorLocked(t *testing.T) {
	web, rt, svc := testWeb(t)
	// A user whose token's one scope no route uses: authenticated, allowed
	// nothing.
	ctx := context.Background()
	if _, err := svc.CreateUser(ctx, auth.NewUser{Name: "cart-bot", Role: string(auth.Integration)}); err != nil {
		t.Fatal(err)
	}
	admin := auth.NewPrincipal(1, auth.FirstAdmin, auth.Admin, nil, nil)
	// Two such tokens, of two scopes, so that every route meets one
	// whose scope is not its own.
	_, weak, err := svc.CreateToken(ctx, admin, auth.NewTokenRequest{Name: "t", User: "cart-bot", Scopes: "carts:read"})
	if err != nil {
		t.Fatal(err)
	}
	_, weak2, err := svc.CreateToken(ctx, admin, auth.NewTokenRequest{Name: "t2", User: "cart-bot", Scopes: "metrics:read"})
	if err != nil {
		t.Fatal(err)
	}
	var public []string
	routes := rt.Routes()
	if len(routes) < 20 {
		t.Fatalf("only %d routes registered", len(routes))
	}
	for _, r := range routes {
		if !r.Needs.Declared() {
			t.Errorf("%s declares nothing", r.Pattern)
			continue
		}
		if r.Needs.IsPublic() {
			public = append(public, r.Pattern)
			continue
		}
		method, path := samplePath(r.Pattern)
		do := func(token string) *httptest.ResponseRecorder {
			// A bound on every request: the event stream answers until
			// its caller goes away.
			rctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			defer cancel()
			req := httptest.NewRequestWithContext(rctx, method, path, strings.NewReader("{}"))
			req.Header.Set("Content-Type", "application/json")
			if token != "" {
				req.Header.Set("Authorization", "Bearer "+token)
			}
			w := httptest.NewRecorder()
			web.ServeHTTP(w, req)
			return w
		}
		w := do("")
		switch {
		case r.Needs.IsPage() && method == http.MethodGet:
			if w.Code != http.StatusSeeOther || !strings.HasPrefix(w.Header().Get("Location"), "http://127.0.0.1:8080/login?next=") {
				t.Errorf("%s anonymously: %d %s, want a redirect to the login", r.Pattern, w.Code, w.Header().Get("Location"))
			}
		case w.Code != http.StatusUnauthorized:
			t.Errorf("%s anonymously: %d %s, want 401", r.Pattern, w.Code, w.Body)
		}
		tok := weak
		if r.Needs.Scope() == auth.CartsRead {
			tok = weak2
		}
		w = do(tok)
		if r.Needs.Scope() != "" && w.Code != http.StatusForbidden {
			t.Errorf("%s without %s: %d %s, want 403", r.Pattern, r.Needs.Scope(), w.Code, w.Body)
		}
		if r.Needs.Scope() == "" && (w.Code == http.StatusUnauthorized || w.Code == http.StatusForbidden) {
			t.Errorf("%s (logged in) refused a logged-in caller: %d %s", r.Pattern, w.Code, w.Body)
		}
		if w = do(testAdminToken); w.Code == http.StatusUnauthorized || w.Code == http.StatusForbidden {
			t.Errorf("%s refused the admin: %d %s", r.Pattern, w.Code, w.Body)
		}
	}
	slices.Sort(public)
	want := slices.Clone(publicRoutes)
	slices.Sort(want)
	if !slices.Equal(public, want) {
		t.Errorf("public routes:\n got  %q\n want %q", public, want)
	}
}

// Ensure that every answer carries the security headers, and that a
// state-changing request a browser sends from another site is refused
// even with valid credentials.
func TestRoutes_HeadersAndCrossSite(t *testing.T) {
	web, _, _ := testWeb(t)
	for _, path := range []string{"/healthz", "/login", "/v1/stores", "/nope/nope"} {
		w := httptest.NewRecorder()
		web.ServeHTTP(w, httptest.NewRequest(http.MethodGet, path, nil))
		h := w.Header()
		if h.Get("X-Content-Type-Options") != "nosniff" || !strings.Contains(h.Get("Content-Security-Policy"), "frame-ancestors 'none'") ||
			h.Get("Referrer-Policy") == "" {
			t.Errorf("GET %s: headers %v", path, h)
		}
	}
	for _, tt := range []struct {
		name    string
		headers map[string]string
		want    int
	}{
		{"cross-site", map[string]string{"Sec-Fetch-Site": "cross-site"}, http.StatusForbidden},
		{"other origin", map[string]string{"Origin": "https://evil.example"}, http.StatusForbidden},
		{"same origin", map[string]string{"Sec-Fetch-Site": "same-origin"}, http.StatusUnprocessableEntity},
		{"not a browser", nil, http.StatusUnprocessableEntity},
	} {
		req := httptest.NewRequest(http.MethodPost, "/v1/catalog/import?format=jsonl", strings.NewReader(`{"sku":"X"}`))
		req.Header.Set("Authorization", "Bearer "+testAdminToken)
		for k, v := range tt.headers {
			req.Header.Set(k, v)
		}
		w := httptest.NewRecorder()
		web.ServeHTTP(w, req)
		if w.Code != tt.want {
			t.Errorf("%s catalog import: %d %s, want %d", tt.name, w.Code, w.Body, tt.want)
		}
	}
}

// Ensure that a hub reachable from other machines needs a public URL
// (redirects and links are never built from a request's Host), and that
// the default listens on loopback only.
func TestConfig_SafeDefaults(t *testing.T) {
	d := Defaults()
	if d.HTTP != "127.0.0.1:8080" {
		t.Fatalf("default http %q", d.HTTP)
	}
	for _, tt := range []struct {
		http, public string
		ok           bool
	}{
		{"127.0.0.1:8080", "", true},
		{"localhost:8080", "", true},
		{"[::1]:8080", "", true},
		{":8080", "", false},
		{"0.0.0.0:8080", "", false},
		{"0.0.0.0:8080", "https://hq.example.com", true},
		{"127.0.0.1:8080", "ftp://x", false},
		{"127.0.0.1:8080", "https://hq.example.com/?a=b", false},
	} {
		c := Defaults()
		c.HTTP, c.PublicURL = tt.http, tt.public
		if err := c.Validate(); (err == nil) != tt.ok {
			t.Errorf("http %q public-url %q: %v", tt.http, tt.public, err)
		}
	}
	c := Defaults()
	c.TLSCert = "cert.pem"
	if c.Validate() == nil {
		t.Error("a certificate without its key is accepted")
	}
}

// Ensure that docs/security.md's route table lists every route the hub
// registers, with the scope it needs (or "public" / "logged in"), and no
// route the hub does not have.
func TestSecurityDoc_ListsEveryRoute(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "..", "..", "docs", "security.md"))
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	start := strings.Index(doc, "## Every route")
	end := strings.Index(doc[start+1:], "\n## ")
	if start < 0 || end < 0 {
		t.Fatal("docs/security.md has no \"## Every route\" section")
	}
	table := doc[start : start+1+end]
	documented := map[string]string{}
	for _, line := range strings.Split(table, "\n") {
		cells := strings.Split(line, "|")
		if len(cells) < 4 || !strings.HasPrefix(strings.TrimSpace(cells[1]), "`") {
			continue
		}
		documented[strings.Trim(strings.TrimSpace(cells[1]), "`")] = strings.TrimSpace(cells[2])
	}
	_, rt, _ := testWeb(t)
	for _, r := range rt.Routes() {
		pattern := strings.Replace(r.Pattern, "{$}", "", 1)
		needs, ok := documented[pattern]
		delete(documented, pattern)
		var want string
		switch {
		case r.Needs.IsPublic():
			want = "public"
		case r.Needs.Scope() == "":
			want = "logged in"
		default:
			want = "`" + string(r.Needs.Scope()) + "`"
		}
		if !ok || !strings.HasPrefix(needs, want) {
			t.Errorf("docs/security.md: %s needs %q, documented %q", pattern, want, needs)
		}
	}
	for p := range documented {
		t.Errorf("docs/security.md documents %s, which the hub does not serve", p)
	}
}
