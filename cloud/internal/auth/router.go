package auth

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
)

// Requirement is what a route needs from its caller. Every route states
// one where it is registered; the zero Requirement states nothing and is
// refused by Router.Handle.
type Requirement struct {
	kind  reqKind
	scope Scope
}

type reqKind int

const (
	reqNone reqKind = iota
	reqPublic
	reqLoggedIn
	reqScope
	reqPage
)

// Public routes need nothing: health, the shoppers' pages and the
// Digital Link resolver, the login page.
func Public() Requirement { return Requirement{kind: reqPublic} }

// LoggedIn routes need any authenticated user (their own tokens, who am
// I, logout).
func LoggedIn() Requirement { return Requirement{kind: reqLoggedIn} }

// Need is an API route needing scope s: 401 without credentials, 403
// without the scope.
func Need(s Scope) Requirement { return Requirement{kind: reqScope, scope: s} }

// Page is a page for people needing scope s: without a session the
// browser is sent to the login page and back.
func Page(s Scope) Requirement { return Requirement{kind: reqPage, scope: s} }

// IsPublic reports whether r lets anyone in.
func (r Requirement) IsPublic() bool { return r.kind == reqPublic }

// IsPage reports whether r is a page's (login redirect when anonymous).
func (r Requirement) IsPage() bool { return r.kind == reqPage }

// Declared reports whether r states anything.
func (r Requirement) Declared() bool { return r.kind != reqNone }

// Scope is the scope r needs ("" for Public and LoggedIn).
func (r Requirement) Scope() Scope { return r.scope }

func (r Requirement) String() string {
	switch r.kind {
	case reqPublic:
		return "public"
	case reqLoggedIn:
		return "logged in"
	case reqScope:
		return string(r.scope)
	case reqPage:
		return string(r.scope) + " (page: login redirect)"
	}
	return "nothing declared"
}

// Route is one registered pattern and what it needs.
type Route struct {
	Pattern string
	Needs   Requirement
}

// Router is an http.ServeMux whose every route declares what it needs;
// it authenticates and authorises each request before its handler runs.
type Router struct {
	mux    *http.ServeMux
	svc    *Service
	routes []Route
}

// NewRouter returns a Router checking requests with svc.
func NewRouter(svc *Service) *Router {
	return &Router{mux: http.NewServeMux(), svc: svc}
}

// Handle registers h for pattern (http.ServeMux syntax) behind need. It
// panics on a Requirement that declares nothing, as ServeMux panics on a
// bad pattern: a programming error no test run can miss.
func (rt *Router) Handle(pattern string, need Requirement, h http.Handler) {
	if !need.Declared() {
		panic("auth: route " + pattern + " declares no requirement")
	}
	rt.routes = append(rt.routes, Route{Pattern: pattern, Needs: need})
	rt.mux.Handle(pattern, rt.guard(need, h))
}

// HandleFunc is Handle for a function.
func (rt *Router) HandleFunc(pattern string, need Requirement, h func(http.ResponseWriter, *http.Request)) {
	rt.Handle(pattern, need, http.HandlerFunc(h))
}

// Routes lists every registered route in registration order.
func (rt *Router) Routes() []Route { return append([]Route(nil), rt.routes...) }

// Service is the Router's authenticator.
func (rt *Router) Service() *Service { return rt.svc }

func (rt *Router) ServeHTTP(w http.ResponseWriter, r *http.Request) { rt.mux.ServeHTTP(w, r) }

type ctxKey struct{}

// From returns the request's principal, nil on public routes.
func From(ctx context.Context) *Principal {
	p, _ := ctx.Value(ctxKey{}).(*Principal)
	return p
}

// WithPrincipal returns ctx carrying p (tests of handlers).
func WithPrincipal(ctx context.Context, p *Principal) context.Context {
	return context.WithValue(ctx, ctxKey{}, p)
}

func (rt *Router) guard(need Requirement, h http.Handler) http.Handler {
	if need.IsPublic() {
		return h
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, err := rt.svc.Authenticate(r)
		if err != nil {
			if !errors.Is(err, ErrNoCredentials) && !errors.Is(err, ErrUnauthenticated) {
				rt.svc.log.Error("authenticate", "path", r.URL.Path, "err", err)
				writeErr(w, http.StatusInternalServerError, "internal error; see the hub's log")
				return
			}
			if need.kind == reqPage && r.Method == http.MethodGet {
				rt.svc.redirect(w, r, LoginPath+"?next="+url.QueryEscape(r.URL.RequestURI()))
				return
			}
			w.Header().Set("WWW-Authenticate", `Bearer realm="omnisync"`)
			msg := "log in, or send Authorization: Bearer <token>"
			if errors.Is(err, ErrUnauthenticated) {
				msg = "credentials not accepted (expired, revoked, or logged out)"
			}
			writeErr(w, http.StatusUnauthorized, msg)
			return
		}
		if p.TokenID == 0 && !safeMethod(r.Method) && !validCSRF(r, p) {
			writeErr(w, http.StatusForbidden, "missing or wrong CSRF token (reload the page)")
			return
		}
		if (need.kind == reqScope || need.kind == reqPage) && !p.Can(need.scope) {
			if need.kind == reqPage && r.Method == http.MethodGet {
				forbiddenPage(w, p, need.scope)
				return
			}
			writeErr(w, http.StatusForbidden, fmt.Sprintf("%s may not do this (needs scope %s)", p.User, need.scope))
			return
		}
		h.ServeHTTP(w, r.WithContext(WithPrincipal(r.Context(), p)))
	})
}

func safeMethod(m string) bool {
	return m == http.MethodGet || m == http.MethodHead || m == http.MethodOptions
}

// CSRFField and CSRFHeader carry a session's CSRF token.
const (
	CSRFField  = "csrf_token"
	CSRFHeader = "X-CSRF-Token"
)

// validCSRF checks a session request's CSRF token: the header, else the
// form field (which parses the form; bodies are bounded by the server).
func validCSRF(r *http.Request, p *Principal) bool {
	want := p.CSRFToken()
	if want == "" {
		return false
	}
	got := r.Header.Get(CSRFHeader)
	if got == "" {
		ct := r.Header.Get("Content-Type")
		if strings.HasPrefix(ct, "application/x-www-form-urlencoded") || strings.HasPrefix(ct, "multipart/form-data") {
			got = r.PostFormValue(CSRFField)
		}
	}
	return subtle.ConstantTimeCompare([]byte(got), []byte(want)) == 1
}

// redirect sends the browser to path on the hub's public URL, or as a
// relative reference when there is none: never to the request's Host.
func (s *Service) redirect(w http.ResponseWriter, r *http.Request, path string) {
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Location", s.o.PublicURL+path)
	w.WriteHeader(http.StatusSeeOther)
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

func writeErr(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, map[string]string{"error": msg})
}
