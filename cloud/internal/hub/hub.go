// Package hub assembles the cloud hub from its configuration and runs it:
// NATS (embedded or external), the store, the events stream and its durable
// consumer, the heartbeat service agents talk to, and the HTTP API.
//
// Several hubs may run against one PostgreSQL and one NATS cluster: they
// share the durable consumer and the heartbeat service's queue group, and the
// store serialises what must be serialised. Nothing here assumes it is the
// only replica.
package hub

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nats.go/micro"
	"golang.org/x/sync/errgroup"

	"github.com/omnisync/omnisync/cloud/internal/api"
	"github.com/omnisync/omnisync/cloud/internal/auth"
	"github.com/omnisync/omnisync/cloud/internal/downpub"
	"github.com/omnisync/omnisync/cloud/internal/heartbeat"
	"github.com/omnisync/omnisync/cloud/internal/ingest"
	"github.com/omnisync/omnisync/cloud/internal/store"
	"github.com/omnisync/omnisync/shared/downsync"
	"github.com/omnisync/omnisync/shared/natsauth"
	"github.com/omnisync/omnisync/shared/natsembed"
	"github.com/omnisync/omnisync/shared/redact"
	"github.com/omnisync/omnisync/shared/retry"
	"github.com/omnisync/omnisync/shared/subjects"
)

// MaxBodyBytes bounds request bodies the hub accepts.
const MaxBodyBytes = 1 << 20

// Hub is one hub replica.
type Hub struct {
	cfg     Config
	log     *slog.Logger
	version string
	met     *metrics

	ready chan struct{}
	// setupOut receives the first start's admin password (os.Stdout).
	setupOut io.Writer

	mu       sync.Mutex
	httpAddr string
	natsURL  string
	store    *store.Store
	nc       *nats.Conn
	embedded *natsembed.Server
	pub      *downpub.Publisher
}

// New checks the configuration; nothing starts until Run.
func New(cfg Config, log *slog.Logger, version string) (*Hub, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Hub{cfg: cfg, log: log, version: version, met: newMetrics(), ready: make(chan struct{}), setupOut: os.Stdout}, nil
}

// SetSetupOutput sends the first start's one-time admin password to w
// instead of standard output. Call it before Run.
func (h *Hub) SetSetupOutput(w io.Writer) { h.setupOut = w }

// Ready is closed once the hub serves HTTP and consumes events.
func (h *Hub) Ready() <-chan struct{} { return h.ready }

// HTTPAddr is the address the API listens on (after Ready).
func (h *Hub) HTTPAddr() string { h.mu.Lock(); defer h.mu.Unlock(); return h.httpAddr }

// NATSURL is the URL agents should connect to (after Ready).
func (h *Hub) NATSURL() string { h.mu.Lock(); defer h.mu.Unlock(); return h.natsURL }

// Publisher is the hub's down-sync publisher (after Ready).
func (h *Hub) Publisher() *downpub.Publisher { h.mu.Lock(); defer h.mu.Unlock(); return h.pub }

// Store is the hub's store (after Ready), for tests and tools.
func (h *Hub) Store() *store.Store { h.mu.Lock(); defer h.mu.Unlock(); return h.store }

// Run starts everything and blocks until ctx ends or a part fails.
func (h *Hub) Run(ctx context.Context) (err error) {
	if err := os.MkdirAll(h.cfg.DataDir, 0o750); err != nil {
		return fmt.Errorf("hub: data dir: %w", err)
	}
	var cleanups []func()
	defer func() {
		for i := len(cleanups) - 1; i >= 0; i-- {
			cleanups[i]()
		}
	}()

	// NATS: external or embedded.
	url := h.cfg.NATSURL
	var authOpts []nats.Option
	if url == "" {
		srv, hubAuth, err := h.startEmbeddedNATS()
		if err != nil {
			return err
		}
		cleanups = append(cleanups, srv.Close)
		url, authOpts = srv.ClientURL(), hubAuth
		h.mu.Lock()
		h.embedded = srv
		h.mu.Unlock()
		h.log.Info("embedded NATS server listening; clients need credentials (omni-nats mint-store)", "url", url)
		_ = os.WriteFile(filepath.Join(h.cfg.DataDir, "nats.url"), []byte(url+"\n"), 0o640)
	} else if authOpts, err = h.cfg.natsAuth().Options(); err != nil {
		return fmt.Errorf("hub: %w", err)
	}
	opts := []nats.Option{
		nats.Name("omni-hub"),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(500 * time.Millisecond),
		nats.RetryOnFailedConnect(true),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) { h.log.Warn("NATS disconnected", "err", err) }),
		nats.ReconnectHandler(func(c *nats.Conn) {
			h.log.Info("NATS reconnected", "url", redact.URL(c.ConnectedUrl()))
			if p := h.Publisher(); p != nil {
				p.Resync()
			}
		}),
	}
	opts = append(append(opts, authOpts...), natsauth.Persistent()...)
	opts = append(opts, nats.ErrorHandler(natsauth.ErrorHandler(h.log, "NATS error")))
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		return fmt.Errorf("hub: connect %s: %w", redact.URL(url), err)
	}
	cleanups = append(cleanups, func() { _ = nc.Drain() })

	// Store.
	dsn := h.cfg.DB
	if dsn == "" {
		dsn = "sqlite:" + filepath.Join(h.cfg.DataDir, "hub.db")
	}
	st, err := store.Open(ctx, dsn, h.log.With("component", "store"))
	if err != nil {
		return fmt.Errorf("hub: store: %w", err)
	}
	cleanups = append(cleanups, func() { _ = st.Close() })
	h.log.Info("store open", "dialect", st.Dialect())
	st.ObserveApply(func(step string, d time.Duration) { h.met.applySteps.WithLabelValues(step).Observe(d.Seconds()) })
	if err := st.SetOnlineLocation(ctx, h.cfg.OnlineLocation); err != nil {
		return fmt.Errorf("hub: --online-location: %w", err)
	}

	// Stream and consumer; retried because an external server may still be
	// electing a leader.
	js, err := jetstream.New(nc)
	if err != nil {
		return fmt.Errorf("hub: jetstream: %w", err)
	}
	streamOpts := ingest.StreamOptions{Replicas: h.cfg.StreamReplicas, MaxAge: h.cfg.StreamMaxAge}
	var cons jetstream.Consumer
	// A cluster electing leaders answers within seconds; give up after
	// about a minute, so a hub pointed at the wrong server says so.
	setup := retry.Backoff{Min: 500 * time.Millisecond, Max: 4 * time.Second}
	for attempt := 0; ; attempt++ {
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		cons, err = ingest.EnsureStream(cctx, js, streamOpts)
		cancel()
		if err == nil {
			break
		}
		if ctx.Err() != nil || attempt >= 20 {
			return fmt.Errorf("hub: %w", err)
		}
		h.log.Warn("stream not ready; retrying", "err", err)
		if setup.Wait(ctx) != nil {
			return nil
		}
	}
	// Down-sync: the buckets stores read, and the publisher that fills them.
	var kv, pickupKV jetstream.KeyValue
	setup.Reset()
	var djs jetstream.JetStream
	var ownAccount bool
	for attempt := 0; ; attempt++ {
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		djs, ownAccount, err = downJetStream(cctx, nc, js)
		if err == nil {
			kv, err = downsync.EnsureBucket(cctx, djs, h.cfg.StreamReplicas)
		}
		if err == nil {
			pickupKV, err = downsync.EnsurePickupBucket(cctx, djs, h.cfg.StreamReplicas)
		}
		cancel()
		if err == nil {
			break
		}
		if ctx.Err() != nil || attempt >= 20 {
			return fmt.Errorf("hub: %w", err)
		}
		h.log.Warn("down-sync buckets not ready; retrying", "err", err)
		if setup.Wait(ctx) != nil {
			return nil
		}
	}
	h.log.Info("down-sync buckets ready", "own_account", ownAccount)
	hostname, _ := os.Hostname()
	pub, err := downpub.New(downpub.Options{
		JS: djs, KV: kv, PickupKV: pickupKV, Store: st, Hub: hostname, Logger: h.log.With("component", "downpub"),
	})
	if err != nil {
		return err
	}
	h.met.downpub(pub)
	beats, err := heartbeat.New(heartbeat.Options{Store: st, Logger: h.log.With("component", "heartbeat")})
	if err != nil {
		return err
	}
	h.met.heartbeat(beats)
	h.met.reg.MustRegister(newFleetCollector(st, js))
	consumer, err := ingest.New(ingest.Options{
		Consumer: cons, Conn: nc, Store: st, Batch: h.cfg.Batch,
		Reopen:  func(ctx context.Context) (jetstream.Consumer, error) { return ingest.EnsureStream(ctx, js, streamOpts) },
		Metrics: h.met.ingest(), Logger: h.log.With("component", "ingest"),
		Applied: func(res store.BatchResult) {
			beats.Learn(res.Watermarks)
			pub.Stock(res.Positions)
			pub.Reviews(res.ReviewedProducts)
			pub.Pickups(res.Reservations)
		},
	})
	if err != nil {
		return err
	}

	// Heartbeat service.
	svc, err := micro.AddService(nc, micro.Config{
		Name:        subjects.HubService,
		Version:     serviceVersion(h.version),
		Description: "omnisync hub: agent heartbeats and applied watermarks",
	})
	if err != nil {
		return fmt.Errorf("hub: micro service: %w", err)
	}
	cleanups = append(cleanups, func() { _ = svc.Stop() })
	onHeartbeat := func(r micro.Request) {
		h.met.heartbeats.Inc()
		b, _ := json.Marshal(beats.Handle(ctx, r.Subject(), r.Data()))
		_ = r.Respond(b)
	}
	if err := svc.AddEndpoint("sync", micro.HandlerFunc(onHeartbeat), micro.WithEndpointSubject(subjects.HubSyncAll)); err != nil {
		return fmt.Errorf("hub: sync endpoint: %w", err)
	}

	// HTTP.
	ln, err := net.Listen("tcp", h.cfg.HTTP)
	if err != nil {
		return fmt.Errorf("hub: http listen %s: %w", h.cfg.HTTP, err)
	}
	cleanups = append(cleanups, func() { _ = ln.Close() })
	publicURL := h.cfg.publicURL(ln.Addr())
	authSvc := auth.New(auth.Options{Store: st, PublicURL: publicURL, TLS: h.cfg.TLSCert != "", Logger: h.log.With("component", "auth")})
	if err := authSvc.Bootstrap(ctx, h.cfg.BootstrapToken, h.setupOut); err != nil {
		return fmt.Errorf("hub: %w", err)
	}
	web, _, err := handler(httpParts{
		store: st, auth: authSvc, metrics: h.met.reg, version: h.version, publicURL: publicURL, tls: h.cfg.TLSCert != "",
		api: api.Options{
			Store: st, Logger: h.log.With("component", "api"), Version: h.version,
			OnlineLocation:  h.cfg.OnlineLocation,
			PublicURL:       publicURL,
			MaxImportBytes:  h.cfg.CatalogMaxBytes,
			SpoolDir:        filepath.Join(h.cfg.DataDir, "imports"),
			OnCatalogChange: pub.Products,
			OnReviewsChange: pub.Reviews,
			Ready: func(ctx context.Context) error {
				if !nc.IsConnected() {
					return errors.New("not connected to NATS")
				}
				return st.Ping(ctx)
			},
		},
	})
	if err != nil {
		return err
	}
	srv, err := newHTTPServer(web, h.cfg.TLSCert, h.cfg.TLSKey)
	if err != nil {
		return err
	}

	h.mu.Lock()
	h.httpAddr = ln.Addr().String()
	h.natsURL = url
	h.store = st
	h.nc = nc
	h.pub = pub
	h.mu.Unlock()

	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		serve := func() error { return srv.Serve(ln) }
		if srv.TLSConfig != nil {
			serve = func() error { return srv.ServeTLS(ln, "", "") }
		}
		if err := serve(); err != nil && !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("hub: http: %w", err)
		}
		return nil
	})
	g.Go(func() error {
		<-gctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		return srv.Shutdown(sctx)
	})
	g.Go(func() error { return consumer.Run(gctx) })
	g.Go(func() error { return pub.Run(gctx) })
	g.Go(func() error { return beats.Run(gctx) })
	g.Go(func() error {
		return runRetention(gctx, st, h.cfg.LedgerRetention, h.met, h.log.With("component", "retention"))
	})
	h.log.Info("hub ready", "http", h.httpAddr, "public_url", publicURL, "nats", redact.URL(url), "version", h.version)
	close(h.ready)
	err = g.Wait()
	if ctx.Err() != nil {
		return nil
	}
	return err
}

// semVer is the SemVer 2.0 grammar the micro service insists on.
var semVer = regexp.MustCompile(`^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?$`)

// serviceVersion returns a SemVer for the micro service. A build stamped
// with a tag ("v1.4.0") keeps it; anything else, such as the commit hash
// `git describe --always` gives an untagged checkout, becomes build
// metadata of 0.0.0-dev, so the hub starts whatever the stamp looks like.
func serviceVersion(v string) string {
	if t := strings.TrimPrefix(v, "v"); semVer.MatchString(t) {
		return t
	}
	meta := strings.Map(func(r rune) rune {
		if r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r == '-' {
			return r
		}
		return '-'
	}, v)
	if meta == "" || meta == "dev" {
		return "0.0.0-dev"
	}
	return "0.0.0-dev+" + meta
}
