package apiguard

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const token = "0123456789abcdef-token"

func guarded(t *testing.T, o Options) http.Handler {
	t.Helper()
	g, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	return g.Wrap(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusTeapot) }))
}

type req struct {
	method, target, host string
	header               map[string]string
}

func do(h http.Handler, r req) *httptest.ResponseRecorder {
	q := httptest.NewRequest(r.method, r.target, strings.NewReader(`{"kind":"sale"}`))
	q.Host = r.host
	for k, v := range r.header {
		q.Header.Set(k, v)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, q)
	return w
}

// Ensure that requests naming another host (DNS rebinding) and
// cross-origin browser posts are refused, and everything a till, curl or
// the kiosk's own page sends passes.
func TestGuard_HostAndOrigin(t *testing.T) {
	h := guarded(t, Options{ListenHost: "127.0.0.1", AllowedHosts: []string{"till-gw.store.lan"}, AllowedOrigins: []string{"https://pos.example.com"}})
	crossSite := map[string]string{"Sec-Fetch-Site": "cross-site", "Origin": "https://evil.example", "Content-Type": "text/plain"}
	cases := []struct {
		name string
		r    req
		want int
	}{
		{"curl on localhost", req{"POST", "/v1/events", "localhost:7070", nil}, http.StatusTeapot},
		{"loopback ip", req{"POST", "/v1/events", "127.0.0.1:7070", nil}, http.StatusTeapot},
		{"ipv6 loopback", req{"GET", "/v1/status", "[::1]:7070", nil}, http.StatusTeapot},
		{"lan ip", req{"GET", "/v1/status", "192.168.1.20:7070", nil}, http.StatusTeapot},
		{"allowed host", req{"POST", "/v1/events", "till-gw.store.lan:7070", nil}, http.StatusTeapot},
		{"allowed host, trailing dot", req{"POST", "/v1/events", "till-gw.store.lan.:7070", nil}, http.StatusTeapot},
		{"no host (HTTP/1.0)", req{"POST", "/v1/events", "", nil}, http.StatusTeapot},
		{"host name in upper case", req{"GET", "/v1/status", "LOCALHOST:7070", nil}, http.StatusTeapot},
		{"rebinding host, get", req{"GET", "/v1/pickups", "attacker.example:7070", nil}, http.StatusForbidden},
		{"rebinding host, post", req{"POST", "/v1/events", "attacker.example:7070", map[string]string{"Sec-Fetch-Site": "same-origin"}}, http.StatusForbidden},
		{"cross-site text/plain post", req{"POST", "/v1/events", "localhost:7070", crossSite}, http.StatusForbidden},
		{"cross-site form to the kiosk", req{"POST", "/kiosk/review", "localhost:7070", crossSite}, http.StatusForbidden},
		{"cross-site sweep", req{"POST", "/v1/devices/scanner-1/sweep", "127.0.0.1:7070", crossSite}, http.StatusForbidden},
		{"other origin, old browser", req{"POST", "/v1/events", "localhost:7070", map[string]string{"Origin": "http://localhost:3000"}}, http.StatusForbidden},
		{"same-site other port", req{"POST", "/v1/events", "localhost:7070", map[string]string{"Sec-Fetch-Site": "same-site", "Origin": "http://localhost:3000"}}, http.StatusForbidden},
		{"cross-site get", req{"GET", "/v1/products/05012302000003", "localhost:7070", crossSite}, http.StatusTeapot},
		{"kiosk's own form", req{"POST", "/kiosk/review", "localhost:7070", map[string]string{"Sec-Fetch-Site": "same-origin", "Origin": "http://localhost:7070"}}, http.StatusTeapot},
		{"allowed origin", req{"POST", "/v1/events", "localhost:7070", map[string]string{"Sec-Fetch-Site": "cross-site", "Origin": "https://pos.example.com"}}, http.StatusTeapot},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			w := do(h, c.r)
			if w.Code != c.want {
				t.Fatalf("%d %s, want %d", w.Code, w.Body, c.want)
			}
			if c.want == http.StatusForbidden && !strings.Contains(w.Body.String(), `"error"`) {
				t.Fatalf("refusal without an error: %s", w.Body)
			}
		})
	}
}

// Ensure that with a token every route but /healthz needs it, and a kiosk
// pairs once and then reaches its own routes (not the POS API) with its
// cookie.
func TestGuard_Token(t *testing.T) {
	h := guarded(t, Options{ListenHost: "0.0.0.0", Token: token})
	bearer := map[string]string{"Authorization": "Bearer " + token}
	cases := []struct {
		name string
		r    req
		want int
	}{
		{"healthz", req{"GET", "/healthz", "10.0.0.5:7070", nil}, http.StatusTeapot},
		{"no token", req{"POST", "/v1/events", "10.0.0.5:7070", nil}, http.StatusUnauthorized},
		{"no token, read", req{"GET", "/v1/pickups", "10.0.0.5:7070", nil}, http.StatusUnauthorized},
		{"wrong token", req{"POST", "/v1/events", "10.0.0.5:7070", map[string]string{"Authorization": "Bearer nope-nope-nope-nope"}}, http.StatusUnauthorized},
		{"token", req{"POST", "/v1/events", "10.0.0.5:7070", bearer}, http.StatusTeapot},
		{"metrics with token", req{"GET", "/metrics", "10.0.0.5:7070", bearer}, http.StatusTeapot},
		{"kiosk without pairing", req{"GET", "/kiosk/", "10.0.0.5:7070", nil}, http.StatusUnauthorized},
		{"bad pairing", req{"GET", "/kiosk/?pair=guess", "10.0.0.5:7070", nil}, http.StatusUnauthorized},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if w := do(h, c.r); w.Code != c.want {
				t.Fatalf("%d %s, want %d", w.Code, w.Body, c.want)
			}
		})
	}

	w := do(h, req{"GET", "/kiosk/?zone=room-1&pair=" + token, "10.0.0.5:7070", nil})
	if w.Code != http.StatusSeeOther || w.Header().Get("Location") != "/kiosk/?zone=room-1" {
		t.Fatalf("pairing: %d %v", w.Code, w.Header())
	}
	var cookie *http.Cookie
	for _, c := range w.Result().Cookies() {
		if c.Name == KioskCookie {
			cookie = c
		}
	}
	if cookie == nil || !cookie.HttpOnly || cookie.SameSite != http.SameSiteStrictMode || strings.Contains(cookie.Value, token) {
		t.Fatalf("kiosk cookie %+v", cookie)
	}
	withCookie := map[string]string{"Cookie": KioskCookie + "=" + cookie.Value, "Sec-Fetch-Site": "same-origin"}
	for _, c := range []struct {
		r    req
		want int
	}{
		{req{"GET", "/kiosk/p/05012302000003", "10.0.0.5:7070", withCookie}, http.StatusTeapot},
		{req{"POST", "/kiosk/review", "10.0.0.5:7070", withCookie}, http.StatusTeapot},
		{req{"GET", "/v1/scans/stream", "10.0.0.5:7070", withCookie}, http.StatusTeapot},
		{req{"POST", "/v1/events", "10.0.0.5:7070", withCookie}, http.StatusUnauthorized},
		{req{"GET", "/v1/pickups", "10.0.0.5:7070", withCookie}, http.StatusUnauthorized},
	} {
		if got := do(h, c.r); got.Code != c.want {
			t.Errorf("%s %s with the kiosk cookie: %d, want %d", c.r.method, c.r.target, got.Code, c.want)
		}
	}
}

func TestNew_WeakToken(t *testing.T) {
	if _, err := New(Options{Token: "short"}); !errors.Is(err, ErrWeakToken) {
		t.Fatalf("err = %v", err)
	}
}

func TestIsLoopback(t *testing.T) {
	for addr, want := range map[string]bool{
		"127.0.0.1:7070": true, "localhost:7070": true, "[::1]:7070": true, "127.0.0.2:1": true,
		":7070": false, "0.0.0.0:7070": false, "192.168.1.5:7070": false, "[::]:7070": false, "till.lan:7070": false,
	} {
		if got, err := IsLoopback(addr); err != nil || got != want {
			t.Errorf("IsLoopback(%q) = %v, %v; want %v", addr, got, err, want)
		}
	}
}

func TestReadToken(t *testing.T) {
	f := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(f, []byte("  "+token+"  \nignored\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if got, err := ReadToken("", f); err != nil || got != token {
		t.Fatalf("ReadToken file = %q, %v", got, err)
	}
	if _, err := ReadToken(token, f); err == nil {
		t.Fatal("both a token and a file accepted")
	}
	if got, _ := ReadToken(token, ""); got != token {
		t.Fatalf("ReadToken = %q", got)
	}
}
