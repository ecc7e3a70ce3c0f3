// Package apiguard guards the agent's HTTP API (the POS API, the kiosk,
// pickups, devices) from what a local HTTP API invites: a web page in the
// store's browser posting to it from another site, a DNS-rebinding page
// whose host name resolves to the agent, and, when the agent listens
// beyond loopback, anyone on the store's network.
//
// Guarantees, for every request the wrapped handler sees:
//   - its Host names the agent: localhost, an IP address (a rebinding page
//     uses a host name of its own), the machine's host name, the listen
//     host, or one of AllowedHosts (or is absent, as from HTTP/1.0
//     clients); any other is refused 403;
//   - a state-changing request (any method but GET, HEAD, OPTIONS) a
//     browser sent from another origin is refused 403 (Sec-Fetch-Site and
//     Origin, checked by net/http's CrossOriginProtection), unless the
//     origin is one of AllowedOrigins; same-origin posts (the kiosk's own
//     forms) and clients that are not browsers (tills, curl) pass;
//   - with a Token, everything but GET /healthz carries it as
//     "Authorization: Bearer <token>", or is a kiosk request with the
//     kiosk cookie (paired once by opening /kiosk/?pair=<token>); others
//     are refused 401.
//
// Sharp edge: the token travels in clear over plain HTTP; on a network
// that is not the store's own, put the agent behind TLS.
package apiguard

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

// MinTokenLen is the shortest token accepted.
const MinTokenLen = 16

// KioskCookie is the cookie a paired kiosk presents.
const KioskCookie = "omni_kiosk_paired"

// ErrWeakToken is returned by New for a token shorter than MinTokenLen.
var ErrWeakToken = fmt.Errorf("apiguard: the API token must be at least %d characters", MinTokenLen)

// Options configures a Guard.
type Options struct {
	// ListenHost is the host of the agent's listen address ("" or an
	// unspecified address for all interfaces).
	ListenHost string
	// AllowedHosts are further host names requests may name (the names
	// tills and kiosks reach the agent by), without ports.
	AllowedHosts []string
	// AllowedOrigins are origins ("https://pos.example.com") whose pages
	// may post to the agent from the browser.
	AllowedOrigins []string
	// Token, when set, is required (see the package comment).
	Token  string
	Logger *slog.Logger
}

// Guard is an http.Handler wrapper; see the package comment.
type Guard struct {
	o      Options
	hosts  map[string]bool
	cop    *http.CrossOriginProtection
	kiosk  string // the kiosk cookie's value: derived from the token, never the token
	log    *slog.Logger
	counts map[string]*atomic.Uint64
}

// Refusal reasons, as the refused-requests metric labels them.
const (
	ReasonHost   = "host"
	ReasonOrigin = "origin"
	ReasonToken  = "token"
)

// New checks the options and builds a guard.
func New(o Options) (*Guard, error) {
	if o.Token != "" && len(o.Token) < MinTokenLen {
		return nil, ErrWeakToken
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	g := &Guard{o: o, hosts: map[string]bool{"localhost": true}, cop: http.NewCrossOriginProtection(), log: o.Logger,
		counts: map[string]*atomic.Uint64{ReasonHost: {}, ReasonOrigin: {}, ReasonToken: {}}}
	add := func(h string) {
		if h = strings.ToLower(strings.Trim(h, "[]")); h != "" {
			g.hosts[h] = true
			g.hosts[strings.TrimSuffix(h, ".")] = true
		}
	}
	if ip := net.ParseIP(o.ListenHost); ip == nil || !ip.IsUnspecified() {
		add(o.ListenHost)
	}
	if name, err := os.Hostname(); err == nil {
		add(name)
	}
	for _, h := range o.AllowedHosts {
		add(h)
	}
	for _, origin := range o.AllowedOrigins {
		if err := g.cop.AddTrustedOrigin(origin); err != nil {
			return nil, fmt.Errorf("apiguard: allowed origin %q: %w", origin, err)
		}
	}
	g.cop.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		g.refuse(w, r, ReasonOrigin, http.StatusForbidden,
			"cross-origin request refused: a page of another site may not change anything here (list its origin in --api-allowed-origins if it is your POS app)")
	}))
	if o.Token != "" {
		m := hmac.New(sha256.New, []byte(o.Token))
		m.Write([]byte("omnisync kiosk cookie"))
		g.kiosk = hex.EncodeToString(m.Sum(nil))
	}
	return g, nil
}

// Collector reports refused requests by reason.
func (g *Guard) Collector() prometheus.Collector { return collector{g} }

// Refused reports how many requests were refused for reason.
func (g *Guard) Refused(reason string) uint64 {
	if c := g.counts[reason]; c != nil {
		return c.Load()
	}
	return 0
}

// Wrap returns h behind the guard.
func (g *Guard) Wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !g.hostAllowed(r.Host) {
			g.refuse(w, r, ReasonHost, http.StatusForbidden,
				fmt.Sprintf("host %q is not this agent's: requests must name localhost, an IP address or a host in --api-allowed-hosts (this refuses DNS-rebinding pages)", r.Host))
			return
		}
		if g.o.Token != "" && !g.authorized(w, r) {
			return
		}
		g.cop.Handler(h).ServeHTTP(w, r)
	})
}

// hostAllowed reports whether a request's Host names this agent.
func (g *Guard) hostAllowed(hostport string) bool {
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	}
	host = strings.ToLower(strings.Trim(host, "[]"))
	// No Host at all (an HTTP/1.0 client) is no browser's, and an IP
	// address is not a name a rebinding page could have made resolve here.
	if host == "" || net.ParseIP(host) != nil {
		return true
	}
	return g.hosts[host] || g.hosts[strings.TrimSuffix(host, ".")]
}

// authorized checks the token, or the kiosk cookie on kiosk routes; it
// pairs a kiosk that opens /kiosk/ with ?pair=<token>. It has answered
// when it returns false.
func (g *Guard) authorized(w http.ResponseWriter, r *http.Request) bool {
	if r.Method == http.MethodGet && r.URL.Path == "/healthz" {
		return true
	}
	if auth, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok && equal(strings.TrimSpace(auth), g.o.Token) {
		return true
	}
	kioskRoute := r.URL.Path == "/kiosk" || strings.HasPrefix(r.URL.Path, "/kiosk/") ||
		(r.Method == http.MethodGet && r.URL.Path == "/v1/scans/stream")
	if kioskRoute {
		if c, err := r.Cookie(KioskCookie); err == nil && equal(c.Value, g.kiosk) {
			return true
		}
		if r.Method == http.MethodGet && r.URL.Query().Has("pair") {
			if !equal(r.URL.Query().Get("pair"), g.o.Token) {
				g.refuse(w, r, ReasonToken, http.StatusUnauthorized, "pairing refused: the pair parameter is not this agent's API token")
				return false
			}
			http.SetCookie(w, &http.Cookie{Name: KioskCookie, Value: g.kiosk, Path: "/", HttpOnly: true,
				SameSite: http.SameSiteStrictMode, MaxAge: 400 * 24 * 3600})
			q := r.URL.Query()
			q.Del("pair")
			u := url.URL{Path: r.URL.Path, RawQuery: q.Encode()}
			g.log.Info("kiosk paired", "remote", r.RemoteAddr)
			http.Redirect(w, r, u.String(), http.StatusSeeOther)
			return false
		}
	}
	w.Header().Set("WWW-Authenticate", `Bearer realm="omni-edge"`)
	msg := "this agent requires its API token: send Authorization: Bearer <token>"
	if kioskRoute {
		msg += " (a kiosk pairs once by opening /kiosk/?pair=<token>)"
	}
	g.refuse(w, r, ReasonToken, http.StatusUnauthorized, msg)
	return false
}

func equal(a, b string) bool {
	return b != "" && subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}

// refuse answers a refused request as the POS API answers errors, counts
// it and logs it (without the request's headers: they may carry a token).
func (g *Guard) refuse(w http.ResponseWriter, r *http.Request, reason string, code int, msg string) {
	g.counts[reason].Add(1)
	g.log.Warn("API request refused", "reason", reason, "method", r.Method, "path", r.URL.Path, "host", r.Host, "remote", r.RemoteAddr)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": msg})
}

// IsLoopback reports whether a listen address's host is loopback only
// (localhost or a loopback IP); "" and unspecified addresses are not.
func IsLoopback(hostport string) (bool, error) {
	host, _, err := net.SplitHostPort(hostport)
	if err != nil {
		return false, err
	}
	if strings.EqualFold(host, "localhost") {
		return true, nil
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback(), nil
}

// ReadToken returns the token: token itself, or the first line of file.
func ReadToken(token, file string) (string, error) {
	if token != "" && file != "" {
		return "", errors.New("api-token and api-token-file: give one or the other")
	}
	if file == "" {
		return token, nil
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return "", fmt.Errorf("api-token-file: %w", err)
	}
	line, _, _ := strings.Cut(string(b), "\n")
	if t := strings.TrimSpace(line); t != "" {
		return t, nil
	}
	return "", fmt.Errorf("api-token-file %s: empty", file)
}

type collector struct{ g *Guard }

var refusedDesc = prometheus.NewDesc("omni_edge_api_refused_total",
	"API requests refused: a host not this agent's, a cross-origin browser request, a missing or wrong token.", []string{"reason"}, nil)

func (c collector) Describe(ch chan<- *prometheus.Desc) { ch <- refusedDesc }

func (c collector) Collect(ch chan<- prometheus.Metric) {
	for _, r := range []string{ReasonHost, ReasonOrigin, ReasonToken} {
		ch <- prometheus.MustNewConstMetric(refusedDesc, prometheus.CounterValue, float64(c.g.Refused(r)), r)
	}
}
