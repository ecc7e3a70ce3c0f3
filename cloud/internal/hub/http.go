package hub

import (
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/omnisync/omnisync/cloud/internal/api"
	"github.com/omnisync/omnisync/cloud/internal/auth"
	"github.com/omnisync/omnisync/cloud/internal/console"
	"github.com/omnisync/omnisync/cloud/internal/cx"
	"github.com/omnisync/omnisync/cloud/internal/store"
)

// The hub's HTTP server: every route behind what it declares it needs
// (package auth), security headers and cross-origin refusal on every
// answer, bounded bodies, headers and time.

// Server limits. A write timeout bounds every answer; catalog imports
// extend their own deadlines (api.ImportTimeout), and the console's event
// stream sets one per write (console.StreamPing).
const (
	readHeaderTimeout = 10 * time.Second
	readTimeout       = time.Minute
	writeTimeout      = 2 * time.Minute
	idleTimeout       = 2 * time.Minute
	maxHeaderBytes    = 64 << 10
)

// httpParts is what the HTTP handler is built from.
type httpParts struct {
	store     *store.Store
	auth      *auth.Service
	api       api.Options
	cx        cx.Options
	metrics   *prometheus.Registry
	version   string
	publicURL string
	tls       bool
	// live feeds the console's event stream (nil: one of its own).
	live *console.Broker
}

// routes registers every hub route on a Router: the API, the identity
// pages and API, /metrics and the console (its overview is "/").
func routes(p httpParts) *auth.Router {
	rt := auth.NewRouter(p.auth)
	api.New(p.api).Register(rt)
	p.auth.Register(rt)
	// Prometheus scrapes with a token holding metrics:read
	// (authorization: {credentials: ...} in its scrape config).
	rt.Handle("GET /metrics", auth.Need(auth.MetricsRead), promhttp.HandlerFor(p.metrics, promhttp.HandlerOpts{}))
	cxo := p.cx
	if cxo.Store == nil {
		cxo.Store = p.store
	}
	cx.New(cxo).Register(rt)
	console.New(console.Options{
		Store: p.store, Broker: p.live, Auth: p.auth, Version: p.version,
		OnlineLocation: p.api.OnlineLocation, Logger: p.api.Logger, OnStockChange: p.api.OnStockChange,
		Acts: p.api.Acts, TransferOverdue: p.api.TransferOverdue, OnApplied: p.api.OnApplied,
		UnsyncedAlert: p.api.UnsyncedAlertAfter,
	}).Register(rt)
	mod := moderationPage(p.store, p.api.OnReviewsChange)
	rt.Handle("GET /moderation", auth.Page(auth.ReviewsModerate), mod)
	rt.Handle("POST /moderation", auth.Page(auth.ReviewsModerate), mod)
	cust := customersPage(p.store, p.api.OnCustomersChange, p.api.OnErasure)
	rt.Handle("GET /customers", auth.Page(auth.CustomersRead), cust)
	rt.Handle("POST /customers", auth.Page(auth.CustomersAdmin), cust)
	return rt
}

// handler is the whole hub: routes, bounded bodies, security headers.
func handler(p httpParts) (http.Handler, *auth.Router, error) {
	rt := routes(p)
	h, err := auth.Protect(api.LimitBodies(rt, MaxBodyBytes), p.publicURL, p.tls)
	if err != nil {
		return nil, nil, fmt.Errorf("hub: public-url: %w", err)
	}
	return h, rt, nil
}

// newHTTPServer builds the server; with a certificate and key (PEM
// files) it serves HTTPS, and a bad pair fails here, before the hub says
// it is ready.
func newHTTPServer(h http.Handler, certFile, keyFile string) (*http.Server, error) {
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: readHeaderTimeout,
		ReadTimeout:       readTimeout,
		WriteTimeout:      writeTimeout,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
	}
	if certFile != "" {
		cert, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			return nil, fmt.Errorf("hub: tls-cert, tls-key: %w", err)
		}
		srv.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert}}
	}
	return srv, nil
}

// publicURL is the configured public URL, or the one the hub listens on:
// redirects and links are built from it, never from a request's Host.
// Validate has made sure that an address others reach has one configured.
func (c *Config) publicURL(addr net.Addr) string {
	if c.PublicURL != "" {
		return c.PublicURL
	}
	scheme := "http"
	if c.TLSCert != "" {
		scheme = "https"
	}
	host, port := "127.0.0.1", "8080"
	if ta, ok := addr.(*net.TCPAddr); ok {
		if !ta.IP.IsUnspecified() {
			host = ta.IP.String()
		}
		port = strconv.Itoa(ta.Port)
	}
	return scheme + "://" + net.JoinHostPort(host, port)
}
