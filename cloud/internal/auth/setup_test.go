package auth

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/omnisync/omnisync/cloud/internal/store"
)

var setupLine = regexp.MustCompile(`(?m)^ +(` + SetupTokenPrefix + `\S+)$`)

// freshService is a Service over a fresh SQLite store, not bootstrapped.
func freshService(t *testing.T) (*Service, *clock, string) {
	t.Helper()
	db := filepath.Join(t.TempDir(), "hub.db")
	st, err := store.Open(context.Background(), "sqlite:"+db, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	c := &clock{t: time.Now()}
	return New(Options{Store: st, Now: c.Now, PublicURL: "https://hq.example.com"}), c, db
}

// bootstrapSetup bootstraps s without a token and returns the setup token
// it printed, checking it is printed on one line only.
func bootstrapSetup(t *testing.T, s *Service) string {
	t.Helper()
	var out bytes.Buffer
	if err := s.Bootstrap(context.Background(), "", &out); err != nil {
		t.Fatal(err)
	}
	m := setupLine.FindStringSubmatch(out.String())
	if m == nil {
		t.Fatalf("no setup token printed:\n%s", out.String())
	}
	if n := strings.Count(out.String(), m[1]); n != 1 || !strings.Contains(out.String(), "https://hq.example.com/setup") {
		t.Fatalf("the setup token is printed %d times, or without the page:\n%s", n, out.String())
	}
	return m[1]
}

// Ensure that a hub started without a bootstrap token creates the admin
// without a password and prints a one-time setup token that lets in no
// bearer request, sets the admin's password once (a bad password leaves
// it good; once used, it and every other setup token are dead), through
// the page (which logs the browser in) or the API (which answers an API
// token); that it expires; that a restart prints a new one only while no
// admin can act; and that the database never holds it.
func TestSetupToken(t *testing.T) {
	s, clk, db := freshService(t)
	ctx := context.Background()
	tok := bootstrapSetup(t, s)
	if u, err := s.st.UserByName(ctx, FirstAdmin); err != nil || u.PasswordHash != "" || Role(u.Role) != Admin {
		t.Fatalf("admin: %+v %v", u, err)
	}
	if _, err := s.Authenticate(bearer(tok)); !errors.Is(err, ErrUnauthenticated) {
		t.Fatalf("the setup token as a bearer token: %v", err)
	}
	// Still no admin can act: a restart prints another.
	tok2 := bootstrapSetup(t, s)
	if tok2 == tok {
		t.Fatal("the restart printed the same token")
	}
	if _, err := s.Setup(ctx, tok, "short", "10.0.0.1"); !errors.Is(err, ErrInvalid) {
		t.Fatalf("a short password: %v", err)
	}
	if _, err := s.Setup(ctx, SetupTokenPrefix+"not-the-token-at-all", "a long new password", "10.0.0.1"); !errors.Is(err, ErrSetupToken) {
		t.Fatalf("a wrong token: %v", err)
	}

	rt := NewRouter(s)
	s.Register(rt)
	rt.HandleFunc("GET /page", Page(StoresRead), func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) })
	web, err := Protect(rt, "https://hq.example.com", false)
	if err != nil {
		t.Fatal(err)
	}
	post := func(token, pw, pw2, site string) *httptest.ResponseRecorder {
		form := url.Values{"token": {token}, "password": {pw}, "password2": {pw2}}
		r := httptest.NewRequest(http.MethodPost, SetupPath, strings.NewReader(form.Encode()))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		r.Header.Set("Sec-Fetch-Site", site)
		w := httptest.NewRecorder()
		web.ServeHTTP(w, r)
		return w
	}
	w := httptest.NewRecorder()
	web.ServeHTTP(w, httptest.NewRequest(http.MethodGet, SetupPath, nil))
	if w.Code != http.StatusOK || !strings.Contains(w.Body.String(), `name="token"`) {
		t.Fatalf("GET /setup: %d", w.Code)
	}
	if w := post(tok, "a long new password", "a long new password", "cross-site"); w.Code != http.StatusForbidden {
		t.Fatalf("a cross-site setup post: %d", w.Code)
	}
	if w := post(tok, "a long new password", "another long password", "same-origin"); w.Code != http.StatusBadRequest || strings.Contains(w.Body.String(), tok) {
		t.Fatalf("differing passwords: %d", w.Code)
	}
	w = post(tok, "a long new password", "a long new password", "same-origin")
	if w.Code != http.StatusSeeOther || w.Header().Get("Location") != "https://hq.example.com/" || len(w.Result().Cookies()) != 1 {
		t.Fatalf("setup: %d %q %v", w.Code, w.Header().Get("Location"), w.Result().Cookies())
	}
	r := httptest.NewRequest(http.MethodGet, "/page", nil)
	r.AddCookie(w.Result().Cookies()[0])
	if w := httptest.NewRecorder(); func() int { web.ServeHTTP(w, r); return w.Code }() != http.StatusNoContent {
		t.Fatalf("the session setup started: %d", w.Code)
	}
	if _, err := s.Login(ctx, FirstAdmin, "a long new password", "10.0.0.2"); err != nil {
		t.Fatalf("login with the new password: %v", err)
	}
	for _, used := range []string{tok, tok2} {
		if w := post(used, "a third long password", "a third long password", "same-origin"); w.Code != http.StatusUnauthorized {
			t.Fatalf("a setup token after one was used: %d", w.Code)
		}
	}
	var out bytes.Buffer
	if err := s.Bootstrap(ctx, "", &out); err != nil || out.Len() != 0 {
		t.Fatalf("a restart once the admin has a password printed %q (%v)", out.String(), err)
	}
	for _, f := range []string{db, db + "-wal"} {
		b, _ := os.ReadFile(f)
		if bytes.Contains(b, []byte(tok)) || bytes.Contains(b, []byte(tok2)) {
			t.Fatalf("%s holds a setup token", filepath.Base(f))
		}
	}

	// Expired, it sets nothing; the restart's new one works through the
	// API and answers an admin's API token.
	s, clk, _ = freshService(t)
	tok = bootstrapSetup(t, s)
	clk.Add(SetupTokenTTL)
	if _, err := s.Setup(ctx, tok, "a long new password", "10.0.0.1"); !errors.Is(err, ErrSetupToken) {
		t.Fatalf("an expired setup token: %v", err)
	}
	tok = bootstrapSetup(t, s)
	rt = NewRouter(s)
	s.Register(rt)
	body, _ := json.Marshal(SetupRequest{Token: tok, Password: "a long new password", TokenName: "omnictl on test"})
	w = httptest.NewRecorder()
	rt.ServeHTTP(w, httptest.NewRequest(http.MethodPost, "/v1/auth/setup", bytes.NewReader(body)))
	var tv TokenView
	if err := json.Unmarshal(w.Body.Bytes(), &tv); w.Code != http.StatusCreated || err != nil || tv.User != FirstAdmin || !strings.HasPrefix(tv.Token, TokenPrefix) {
		t.Fatalf("POST /v1/auth/setup: %d %s", w.Code, w.Body)
	}
	if p, err := s.Authenticate(bearer(tv.Token)); err != nil || !p.Can(UsersAdmin) {
		t.Fatalf("the token setup answered: %v %v", p, err)
	}
	w = httptest.NewRecorder()
	rt.ServeHTTP(w, httptest.NewRequest(http.MethodPost, "/v1/auth/setup", bytes.NewReader(body)))
	if w.Code != http.StatusUnauthorized {
		t.Fatalf("POST /v1/auth/setup again: %d %s", w.Code, w.Body)
	}
	// With an API token but no password, the admin can act: no new setup
	// token is printed.
	s.tokens.flush()
	if err := s.Bootstrap(ctx, "", &out); err != nil || out.Len() != 0 {
		t.Fatalf("restart: %q %v", out.String(), err)
	}
}

// Ensure that two uses of one setup token racing each other set the
// password once, and that wrong tokens are throttled per client.
func TestSetupToken_OnceAndThrottled(t *testing.T) {
	s, _, _ := freshService(t)
	ctx := context.Background()
	tok := bootstrapSetup(t, s)
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = s.Setup(ctx, tok, "password number "+string(rune('a'+i)), "10.0.0.9")
		}()
	}
	wg.Wait()
	won := 0
	for _, err := range errs {
		switch {
		case err == nil:
			won++
		case !errors.Is(err, ErrSetupToken):
			t.Fatal(err)
		}
	}
	if won != 1 {
		t.Fatalf("%d uses of one setup token went through: %v", won, errs)
	}
	for i := 0; i < loginFailuresPerKey; i++ {
		if _, err := s.Setup(ctx, SetupTokenPrefix+"guess-number-"+string(rune('a'+i)), "a long new password", "10.0.0.7"); !errors.Is(err, ErrSetupToken) {
			t.Fatalf("guess %d: %v", i, err)
		}
	}
	if _, err := s.Setup(ctx, SetupTokenPrefix+"one-more-guess-z", "a long new password", "10.0.0.7"); !errors.Is(err, ErrThrottled) {
		t.Fatalf("after %d wrong tokens: %v", loginFailuresPerKey, err)
	}
}
