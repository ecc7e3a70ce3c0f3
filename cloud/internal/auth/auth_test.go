package auth

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/omnisync/omnisync/cloud/internal/store"
)

// clock is a settable time for expiry tests.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

const bootToken = "omni_unit-test-bootstrap-token-00"

// adminPassword is the password newService gives the admin.
const adminPassword = "the admin's long password"

// newService opens a fresh SQLite store and a Service over it, bootstrapped
// with bootToken (which prints no secret), and gives the admin
// adminPassword, which it returns too.
func newService(t *testing.T) (*Service, *clock, string, string) {
	t.Helper()
	db := filepath.Join(t.TempDir(), "hub.db")
	st, err := store.Open(context.Background(), "sqlite:"+db, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	c := &clock{t: time.Now()}
	s := New(Options{Store: st, Now: c.Now, PublicURL: "https://hq.example.com"})
	var out bytes.Buffer
	if err := s.Bootstrap(context.Background(), bootToken, &out); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "omni-hub first start") || strings.Contains(out.String(), bootToken) || strings.Contains(out.String(), SetupTokenPrefix) {
		t.Fatalf("bootstrap with a token printed %q", out.String())
	}
	if u, _ := st.UserByName(context.Background(), FirstAdmin); u.PasswordHash != "" {
		t.Fatal("the bootstrapped admin has a password nobody was told")
	}
	pw := adminPassword
	if _, err := s.UpdateUser(context.Background(), nil, FirstAdmin, UserChange{Password: &pw}); err != nil {
		t.Fatal(err)
	}
	return s, c, pw, db
}

func bearer(token string) *http.Request {
	r := httptest.NewRequest(http.MethodGet, "/v1/stores", nil)
	r.Header.Set("Authorization", "Bearer "+token)
	return r
}

// Ensure that passwords are stored as salted argon2id hashes that verify
// only the right password, and that bad passwords and hashes are refused.
func TestPasswords(t *testing.T) {
	h1, err := HashPassword("correct horse battery")
	if err != nil {
		t.Fatal(err)
	}
	h2, _ := HashPassword("correct horse battery")
	if h1 == h2 || !strings.HasPrefix(h1, "$argon2id$v=19$m=19456,t=2,p=1$") {
		t.Fatalf("hashes %q %q", h1, h2)
	}
	if !VerifyPassword(h1, "correct horse battery") || VerifyPassword(h1, "correct horse batterY") {
		t.Fatal("verify")
	}
	for _, bad := range []string{"", "x", "$argon2i$v=19$m=19456,t=2,p=1$c2FsdA$a2V5", "$argon2id$v=19$m=99999999,t=2,p=1$c2FsdHNhbHQ$a2V5a2V5a2V5a2V5a2V5",
		strings.Replace(h1, "t=2", "t=0", 1)} {
		if VerifyPassword(bad, "correct horse battery") {
			t.Errorf("hash %q verified", bad)
		}
	}
	for _, pw := range []string{"short", strings.Repeat("x", MaxPasswordLen+1), "\xff\xfe invalid utf8!"} {
		if _, err := HashPassword(pw); !errors.Is(err, ErrInvalid) {
			t.Errorf("password %q: %v", pw, err)
		}
	}
}

// Ensure that scopes parse with wildcards and refuse unknown names, and
// that roles, token scopes and a store manager's stores decide together
// what a principal may do.
func TestScopesAndRoles(t *testing.T) {
	got, err := ParseScopes("customers:*, inventory:read inventory:read")
	if err != nil || len(got) != 4 || got[0] != CustomersAdmin || got[1] != CustomersRead || got[2] != CustomersWrite || got[3] != InventoryRead {
		t.Fatalf("ParseScopes: %v %v", got, err)
	}
	for _, bad := range []string{"inventory:delete", "nope:*", "*"} {
		if _, err := ParseScopes(bad); !errors.Is(err, ErrInvalid) {
			t.Errorf("%q: %v", bad, err)
		}
	}
	if _, err := ParseRole("root"); !errors.Is(err, ErrInvalid) {
		t.Error("role root accepted")
	}
	tests := []struct {
		p    *Principal
		can  []Scope
		cant []Scope
	}{
		{NewPrincipal(1, "a", Admin, nil, nil), AllScopes, nil},
		{NewPrincipal(2, "b", Analyst, nil, nil), []Scope{StoresRead, InventoryRead, DeadLettersRead, MetricsRead}, []Scope{CatalogWrite, UsersAdmin, CustomersRead}},
		{NewPrincipal(3, "c", StoreManager, []string{"S1"}, nil), []Scope{StoresRead, InventoryRead}, []Scope{CatalogWrite, MetricsRead, ReviewsRead}},
		{NewPrincipal(4, "d", Moderator, nil, nil), []Scope{ReviewsRead, ReviewsModerate}, []Scope{StoresRead, InventoryRead}},
		{NewPrincipal(5, "e", Integration, nil, []Scope{CatalogWrite}), []Scope{CatalogWrite}, []Scope{InventoryRead, UsersAdmin}},
		{NewPrincipal(6, "f", Analyst, nil, []Scope{InventoryRead, CatalogWrite}), []Scope{InventoryRead}, []Scope{CatalogWrite, StoresRead}},
		{nil, nil, []Scope{StoresRead}},
	}
	for _, tt := range tests {
		for _, s := range tt.can {
			if !tt.p.Can(s) {
				t.Errorf("%v cannot %s", tt.p, s)
			}
		}
		for _, s := range tt.cant {
			if tt.p.Can(s) {
				t.Errorf("%v can %s", tt.p, s)
			}
		}
	}
	m := NewPrincipal(3, "c", StoreManager, []string{"S1", "S3"}, nil)
	if !m.MayStore("S1") || !m.MayStore("S3") || m.MayStore("S2") {
		t.Error("store manager's stores")
	}
	if a := NewPrincipal(2, "b", Analyst, []string{"S1"}, nil); !a.MayStore("S2") {
		t.Error("an analyst is limited to stores")
	}
}

// Ensure that API tokens authenticate until they expire or are revoked or
// their user is disabled, that only their hash is stored, and that
// creating them follows the rules: others' tokens only by an admin, scopes
// within the owner's role, an integration's scopes named.
func TestTokens(t *testing.T) {
	s, clk, _, db := newService(t)
	ctx := context.Background()
	admin, err := s.Authenticate(bearer(bootToken))
	if err != nil || admin.Role != Admin || admin.User != FirstAdmin {
		t.Fatalf("bootstrap token: %v %v", admin, err)
	}
	if _, err := s.CreateUser(ctx, NewUser{Name: "shop", Role: "integration"}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateUser(ctx, NewUser{Name: "ana", Role: "analyst", Password: "correct horse battery"}); err != nil {
		t.Fatal(err)
	}
	tok, secret, err := s.CreateToken(ctx, admin, NewTokenRequest{Name: "sync", User: "shop", Scopes: "catalog:write", ExpiresIn: "2d"})
	if err != nil || !strings.HasPrefix(secret, TokenPrefix) || len(secret) < 40 {
		t.Fatalf("create: %v %q %v", tok, secret, err)
	}
	p, err := s.Authenticate(bearer(secret))
	if err != nil || p.User != "shop" || !p.Can(CatalogWrite) || p.Can(InventoryRead) {
		t.Fatalf("shop token: %+v %v", p, err)
	}
	clk.Add(2*24*time.Hour + time.Second)
	if _, err := s.Authenticate(bearer(secret)); !errors.Is(err, ErrUnauthenticated) {
		t.Fatalf("expired token: %v", err)
	}
	_, secret2, err := s.CreateToken(ctx, admin, NewTokenRequest{Name: "sync2", User: "shop", Scopes: "catalog:write"})
	if err != nil {
		t.Fatal(err)
	}
	toks, _ := s.Tokens(ctx, admin, true)
	if err := s.RevokeToken(ctx, admin, toks[0].ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Authenticate(bearer(secret2)); !errors.Is(err, ErrUnauthenticated) {
		t.Fatalf("revoked token: %v", err)
	}
	_, secret3, _ := s.CreateToken(ctx, admin, NewTokenRequest{Name: "sync3", User: "shop", Scopes: "catalog:write"})
	disabled := true
	if _, err := s.UpdateUser(ctx, admin, "shop", UserChange{Disabled: &disabled}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Authenticate(bearer(secret3)); !errors.Is(err, ErrUnauthenticated) {
		t.Fatalf("disabled user's token: %v", err)
	}
	for _, bad := range []string{"", "Bearer", "Basic YWRtaW46eA==", "Bearer omni_nope-nope-nope-nope", "Bearer " + strings.Repeat("x", 300)} {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.Header.Set("Authorization", bad)
		if _, err := s.Authenticate(r); err == nil {
			t.Errorf("Authorization %q accepted", bad)
		}
	}

	ana, _ := s.st.UserByName(ctx, "ana")
	anaP := NewPrincipal(ana.ID, "ana", Analyst, nil, nil)
	for _, tt := range []struct {
		name string
		p    *Principal
		req  NewTokenRequest
		want error
	}{
		{"for someone else", anaP, NewTokenRequest{Name: "x", User: "admin"}, ErrForbidden},
		{"beyond the role", anaP, NewTokenRequest{Name: "x", Scopes: "catalog:write"}, ErrInvalid},
		{"integration without scopes", admin, NewTokenRequest{Name: "x", User: "shop"}, ErrInvalid},
		{"no name", anaP, NewTokenRequest{Name: " "}, ErrInvalid},
		{"too long", anaP, NewTokenRequest{Name: "x", ExpiresIn: "9999d"}, ErrInvalid},
		{"narrowed token widening", NewPrincipal(ana.ID, "ana", Analyst, nil, []Scope{InventoryRead}), NewTokenRequest{Name: "x", Scopes: "stores:read"}, ErrForbidden},
	} {
		if _, _, err := s.CreateToken(ctx, tt.p, tt.req); !errors.Is(err, tt.want) {
			t.Errorf("%s: %v, want %v", tt.name, err, tt.want)
		}
	}
	// A narrowed token's own tokens stay as narrow.
	_, sec, err := s.CreateToken(ctx, NewPrincipal(ana.ID, "ana", Analyst, nil, []Scope{InventoryRead}), NewTokenRequest{Name: "child"})
	if err != nil {
		t.Fatal(err)
	}
	if p, err := s.Authenticate(bearer(sec)); err != nil || p.Can(StoresRead) || !p.Can(InventoryRead) {
		t.Fatalf("child token: %v %v", p, err)
	}
	// Nobody else's token is revoked by ana, nor told apart from a missing one.
	if err := s.RevokeToken(ctx, anaP, toks[0].ID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("ana revoking shop's token: %v", err)
	}

	// At rest: the database files never hold a token, only its hash.
	for _, sec := range []string{bootToken, secret, secret2, secret3, sec} {
		for _, f := range []string{db, db + "-wal"} {
			b, _ := os.ReadFile(f)
			if bytes.Contains(b, []byte(sec)) {
				t.Fatalf("%s holds token %s", filepath.Base(f), sec)
			}
		}
	}
}

// Ensure that a session starts with the right password only, ends when
// it is idle too long, when it grows too old, when the user's password is
// reset, and at logout; and that its state-changing requests need its
// CSRF token while an API token's do not.
func TestSessionsAndCSRF(t *testing.T) {
	s, clk, adminPW, _ := newService(t)
	ctx := context.Background()
	rt := NewRouter(s)
	s.Register(rt)
	rt.HandleFunc("POST /v1/thing", Need(CatalogWrite), func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) })
	rt.HandleFunc("GET /page", Page(StoresRead), func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, From(r.Context()).CSRFToken())
	})
	web, err := Protect(rt, "https://hq.example.com", false)
	if err != nil {
		t.Fatal(err)
	}
	serve := func(r *http.Request) *httptest.ResponseRecorder {
		w := httptest.NewRecorder()
		web.ServeHTTP(w, r)
		return w
	}
	login := func(user, pw string) *httptest.ResponseRecorder {
		form := url.Values{"user": {user}, "password": {pw}, "next": {"/page"}}
		r := httptest.NewRequest(http.MethodPost, "/login", strings.NewReader(form.Encode()))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		r.Header.Set("Sec-Fetch-Site", "same-origin")
		return serve(r)
	}
	if w := login("admin", "wrong password"); w.Code != http.StatusUnauthorized || len(w.Result().Cookies()) != 0 {
		t.Fatalf("wrong password: %d %v", w.Code, w.Result().Cookies())
	}
	w := login("admin", adminPW)
	if w.Code != http.StatusSeeOther || w.Header().Get("Location") != "https://hq.example.com/page" {
		t.Fatalf("login: %d %q", w.Code, w.Header().Get("Location"))
	}
	cookie := w.Result().Cookies()[0]
	if cookie.Name != "__Host-omni_session" || !cookie.HttpOnly || !cookie.Secure || cookie.SameSite != http.SameSiteLaxMode || cookie.Path != "/" {
		t.Fatalf("cookie %+v", cookie)
	}
	withCookie := func(method, path string) *http.Request {
		r := httptest.NewRequest(method, path, nil)
		r.AddCookie(cookie)
		return r
	}
	w = serve(withCookie(http.MethodGet, "/page"))
	csrf := w.Body.String()
	if w.Code != 200 || len(csrf) < 40 {
		t.Fatalf("page: %d %q", w.Code, csrf)
	}
	if w := serve(withCookie(http.MethodPost, "/v1/thing")); w.Code != http.StatusForbidden {
		t.Fatalf("POST without CSRF token: %d", w.Code)
	}
	r := withCookie(http.MethodPost, "/v1/thing")
	r.Header.Set(CSRFHeader, csrf+"x")
	if w := serve(r); w.Code != http.StatusForbidden {
		t.Fatalf("POST with a wrong CSRF token: %d", w.Code)
	}
	r = withCookie(http.MethodPost, "/v1/thing")
	r.Header.Set(CSRFHeader, csrf)
	if w := serve(r); w.Code != http.StatusNoContent {
		t.Fatalf("POST with the CSRF token: %d %s", w.Code, w.Body)
	}
	r = withCookie(http.MethodPost, "/v1/thing")
	r.Header.Set(CSRFHeader, csrf)
	r.Header.Set("Sec-Fetch-Site", "cross-site")
	if w := serve(r); w.Code != http.StatusForbidden {
		t.Fatalf("cross-site POST with the CSRF token: %d", w.Code)
	}
	r = httptest.NewRequest(http.MethodPost, "/v1/thing", nil)
	r.Header.Set("Authorization", "Bearer "+bootToken)
	if w := serve(r); w.Code != http.StatusNoContent {
		t.Fatalf("POST with an API token: %d", w.Code)
	}

	// Idle for the idle limit: gone.
	clk.Add(DefaultSessionIdle)
	if w := serve(withCookie(http.MethodGet, "/page")); w.Code != http.StatusSeeOther ||
		w.Header().Get("Location") != "https://hq.example.com/login?next=%2Fpage" {
		t.Fatalf("idle session: %d %q", w.Code, w.Header().Get("Location"))
	}
	// Kept busy, it still ends at its absolute limit.
	cookie = login("admin", adminPW).Result().Cookies()[0]
	for i := 0; i < int(DefaultSessionTTL/time.Hour)-1; i++ {
		clk.Add(time.Hour)
		if w := serve(withCookie(http.MethodGet, "/page")); w.Code != 200 {
			t.Fatalf("busy session after %dh: %d", i+1, w.Code)
		}
	}
	clk.Add(time.Hour)
	if w := serve(withCookie(http.MethodGet, "/page")); w.Code != http.StatusSeeOther {
		t.Fatalf("session past its life: %d", w.Code)
	}
	// A password reset ends the sessions.
	cookie = login("admin", adminPW).Result().Cookies()[0]
	newPW := "another long password"
	if _, err := s.UpdateUser(ctx, nil, "admin", UserChange{Password: &newPW}); err != nil {
		t.Fatal(err)
	}
	if w := serve(withCookie(http.MethodGet, "/page")); w.Code != http.StatusSeeOther {
		t.Fatalf("session after a password reset: %d", w.Code)
	}
	// Logout ends it (with the CSRF token) and clears the cookie.
	cookie = login("admin", newPW).Result().Cookies()[0]
	csrf = serve(withCookie(http.MethodGet, "/page")).Body.String()
	if w := serve(withCookie(http.MethodPost, "/logout")); w.Code != http.StatusForbidden {
		t.Fatalf("logout without CSRF token: %d", w.Code)
	}
	r = withCookie(http.MethodPost, "/logout")
	r.Header.Set(CSRFHeader, csrf)
	if w := serve(r); w.Code != http.StatusSeeOther || w.Result().Cookies()[0].MaxAge >= 0 {
		t.Fatalf("logout: %d %v", w.Code, w.Result().Cookies())
	}
	if w := serve(withCookie(http.MethodGet, "/page")); w.Code != http.StatusSeeOther {
		t.Fatalf("session after logout: %d", w.Code)
	}
}

// Ensure that a login's redirect target stays on the hub.
func TestLocalPath(t *testing.T) {
	for in, want := range map[string]string{
		"/": "/", "/v1/stores?x=1": "/v1/stores?x=1", "": "/", "https://evil.example/": "/", "//evil.example/": "/",
		"/\\evil.example": "/", "evil": "/", "/a\r\nSet-Cookie: x": "/",
	} {
		if got := localPath(in); got != want {
			t.Errorf("localPath(%q) = %q, want %q", in, got, want)
		}
	}
}

// Ensure that failed logins are throttled per user name, even for the
// right password, until the window passes; and that bootstrap happens
// once: a later bootstrap token is ignored.
func TestThrottleAndBootstrap(t *testing.T) {
	s, clk, adminPW, _ := newService(t)
	ctx := context.Background()
	for i := 0; i < loginFailuresPerKey; i++ {
		if _, err := s.Login(ctx, "admin", "wrong password", "10.0.0.1"); !errors.Is(err, ErrUnauthenticated) {
			t.Fatalf("attempt %d: %v", i, err)
		}
	}
	if _, err := s.Login(ctx, "admin", adminPW, "10.0.0.2"); !errors.Is(err, ErrThrottled) {
		t.Fatalf("after %d failures: %v", loginFailuresPerKey, err)
	}
	clk.Add(loginWindow)
	if u, err := s.Login(ctx, "admin", adminPW, "10.0.0.2"); err != nil || u.Name != "admin" {
		t.Fatalf("after the window: %v", err)
	}
	if _, err := s.Login(ctx, "nobody", adminPW, "10.0.0.3"); !errors.Is(err, ErrUnauthenticated) {
		t.Fatalf("unknown user: %v", err)
	}

	var out bytes.Buffer
	if err := s.Bootstrap(ctx, "omni_a-later-bootstrap-token-000", &out); err != nil || out.Len() != 0 {
		t.Fatalf("second bootstrap: %v %q", err, out.String())
	}
	if _, err := s.Authenticate(bearer("omni_a-later-bootstrap-token-000")); !errors.Is(err, ErrUnauthenticated) {
		t.Fatalf("a later bootstrap token works: %v", err)
	}
	if err := New(Options{Store: s.st}).Bootstrap(ctx, "short", io.Discard); err != nil {
		t.Fatalf("a short token with users present: %v", err)
	}
}

// Ensure that a token's lookup is reused for TokenCacheTTL at most: a
// revocation through another hub replica (straight in the database) takes
// effect once it has passed, one through this service at once.
func TestTokenCache(t *testing.T) {
	s, clk, _, _ := newService(t)
	ctx := context.Background()
	admin, err := s.Authenticate(bearer(bootToken))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateUser(ctx, NewUser{Name: "shop", Role: "integration"}); err != nil {
		t.Fatal(err)
	}
	tok, secret, err := s.CreateToken(ctx, admin, NewTokenRequest{Name: "carts", User: "shop", Scopes: "carts:write"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Authenticate(bearer(secret)); err != nil {
		t.Fatal(err)
	}
	if err := s.st.RevokeToken(ctx, tok.ID, clk.Now()); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Authenticate(bearer(secret)); err != nil {
		t.Fatalf("within the cache's time to live: %v", err)
	}
	clk.Add(TokenCacheTTL)
	if _, err := s.Authenticate(bearer(secret)); !errors.Is(err, ErrUnauthenticated) {
		t.Fatalf("revoked elsewhere, after the time to live: %v", err)
	}
	tok2, secret2, err := s.CreateToken(ctx, admin, NewTokenRequest{Name: "carts2", User: "shop", Scopes: "carts:write"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Authenticate(bearer(secret2)); err != nil {
		t.Fatal(err)
	}
	if err := s.RevokeToken(ctx, admin, tok2.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Authenticate(bearer(secret2)); !errors.Is(err, ErrUnauthenticated) {
		t.Fatalf("revoked here: %v", err)
	}
}
