// Package agent assembles the store edge agent from its configuration and
// runs it: the outbox, the POS API, the uplink to the hub, the product
// cache and the downlink that keeps it in step with the hub, the store's
// pickup orders, customer cards and erasures, and, for demos, a simulated
// POS.
//
// Start order matters: the outbox, the caches and the HTTP API come up
// before NATS is reached, so the POS gets its 202s, shoppers their product
// lookups and staff the orders to hand over whether or not the store is
// online; the uplink, the downlink and the pickup follower connect (and
// reconnect) in the background.
package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"golang.org/x/sync/errgroup"

	"github.com/omnisync/omnisync/edge/internal/apiguard"
	"github.com/omnisync/omnisync/edge/internal/customercard"
	"github.com/omnisync/omnisync/edge/internal/devices"
	"github.com/omnisync/omnisync/edge/internal/downlink"
	"github.com/omnisync/omnisync/edge/internal/kiosk"
	"github.com/omnisync/omnisync/edge/internal/outbox"
	"github.com/omnisync/omnisync/edge/internal/pickups"
	"github.com/omnisync/omnisync/edge/internal/posapi"
	"github.com/omnisync/omnisync/edge/internal/possim"
	"github.com/omnisync/omnisync/edge/internal/presence"
	"github.com/omnisync/omnisync/edge/internal/productcache"
	"github.com/omnisync/omnisync/edge/internal/rfidsim"
	"github.com/omnisync/omnisync/edge/internal/scanstream"
	"github.com/omnisync/omnisync/edge/internal/storecart"
	"github.com/omnisync/omnisync/edge/internal/uplink"
	"github.com/omnisync/omnisync/edge/internal/whereabouts"
	"github.com/omnisync/omnisync/shared/natsauth"
	"github.com/omnisync/omnisync/shared/redact"
	"github.com/omnisync/omnisync/shared/subjects"
)

// Agent is one store device's agent.
type Agent struct {
	cfg     Config
	log     *slog.Logger
	version string
	ready   chan struct{}
	// limits bound the HTTP server's requests (defaultServerLimits).
	limits serverLimits

	mu       sync.Mutex
	httpAddr string
	ob       *outbox.Outbox
	up       *uplink.Uplink
	products *productcache.Cache
}

// New checks the configuration; nothing starts until Run.
func New(cfg Config, log *slog.Logger, version string) (*Agent, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("store", cfg.Store, "device", cfg.Device)
	return &Agent{cfg: cfg, log: log, version: version, ready: make(chan struct{}), limits: defaultServerLimits}, nil
}

// now is the agent's wall clock: the machine's, shifted by ClockOffset.
func (a *Agent) now() time.Time { return time.Now().Add(a.cfg.ClockOffset) }

// Ready is closed once the POS API accepts events.
func (a *Agent) Ready() <-chan struct{} { return a.ready }

// HTTPAddr is the POS API address (after Ready).
func (a *Agent) HTTPAddr() string { a.mu.Lock(); defer a.mu.Unlock(); return a.httpAddr }

// Products is the agent's product cache (after Ready; closed when Run
// returns): Lookup answers what a shopper scanned, from this machine.
func (a *Agent) Products() *productcache.Cache { a.mu.Lock(); defer a.mu.Unlock(); return a.products }

// Run starts the agent and blocks until ctx ends or a part fails.
func (a *Agent) Run(ctx context.Context) error {
	ob, err := outbox.Open(outbox.Options{
		Path:        filepath.Join(a.cfg.DataDir, "outbox.db"),
		Store:       a.cfg.Store,
		Device:      a.cfg.Device,
		BudgetBytes: a.cfg.OutboxBudget,
		MinFreeDisk: a.cfg.MinFreeDisk,
		Now:         a.now,
		Logger:      a.log.With("component", "outbox"),
	})
	if err != nil {
		return fmt.Errorf("agent: outbox: %w", err)
	}
	defer ob.Close()
	st := ob.Stats()
	a.log.Info("outbox open", "epoch", st.Epoch, "pending", st.Depth, "last_seq", st.LastSeq)

	products, err := a.openCache()
	if err != nil {
		return err
	}
	defer products.Close()
	orders, err := a.openPickups()
	if err != nil {
		return err
	}
	defer orders.Close()
	customers, err := a.openCustomers()
	if err != nil {
		return err
	}
	defer customers.Close()

	var up *uplink.Uplink
	opts := []nats.Option{
		nats.Name("omni-edge " + a.cfg.Store + "/" + a.cfg.Device),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(time.Second),
		nats.ReconnectJitter(500*time.Millisecond, time.Second),
		// Connect in the background: the store sells whether or not the hub
		// is reachable when the agent starts.
		nats.RetryOnFailedConnect(true),
		// Replies (PubAcks, heartbeat answers) come to this store's own
		// inbox space, which its credentials may read; no other store's.
		nats.CustomInboxPrefix(subjects.InboxPrefix(a.cfg.Store)),
		nats.ErrorHandler(natsauth.ErrorHandler(a.log, "NATS error")),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) { a.log.Warn("offline: NATS disconnected", "err", err) }),
		nats.ReconnectHandler(func(c *nats.Conn) {
			a.log.Info("online: NATS reconnected", "url", redact.URL(c.ConnectedUrl()))
			a.mu.Lock()
			u := a.up
			a.mu.Unlock()
			if u != nil {
				u.NotifyReconnected()
			}
		}),
		nats.ConnectHandler(func(c *nats.Conn) { a.log.Info("online: NATS connected", "url", redact.URL(c.ConnectedUrl())) }),
	}
	authOpts, err := a.cfg.natsAuth().Options()
	if err != nil {
		return fmt.Errorf("agent: %w", err)
	}
	opts = append(append(opts, authOpts...), natsauth.Persistent()...)
	nc, err := nats.Connect(a.cfg.NATSURL, opts...)
	if err != nil && !errors.Is(err, nats.ErrNoServers) {
		return fmt.Errorf("agent: nats: %w", err)
	}
	defer nc.Close()
	up, err = uplink.New(uplink.Options{
		Store: a.cfg.Store, Device: a.cfg.Device, Conn: nc,
		HeartbeatEvery: a.cfg.HeartbeatEvery, Version: a.version, Now: a.now,
		HLCSkew: ob.Clock().Skew, BatchEvents: a.cfg.UplinkBatch,
		Logger: a.log.With("component", "uplink"),
	}, ob)
	if err != nil {
		return err
	}
	down, err := downlink.New(downlink.Options{Conn: nc, JSDomain: a.cfg.NATSJSDomain, Cache: products, Logger: a.log.With("component", "downlink")})
	if err != nil {
		return err
	}
	pickup, err := pickups.NewFollower(pickups.FollowerOptions{Conn: nc, JSDomain: a.cfg.NATSJSDomain, Cache: orders, Logger: a.log.With("component", "pickups")})
	if err != nil {
		return fmt.Errorf("agent: %w", err)
	}
	defer pickup.Close()
	cards, err := customercard.NewClient(customercard.ClientOptions{
		Store: a.cfg.Store, Device: a.cfg.Device, Conn: nc, Cache: customers, HubTimeout: a.cfg.CustomerCardTimeout,
		Logger: a.log.With("component", "customercard"),
	})
	if err != nil {
		return fmt.Errorf("agent: %w", err)
	}
	eraser, err := customercard.NewEraser(customercard.EraserOptions{
		Store: a.cfg.Store, Device: a.cfg.Device, Conn: nc, JSDomain: a.cfg.NATSJSDomain, Cache: customers, Outbox: ob,
		Now: a.now, Logger: a.log.With("component", "erasures"),
	})
	if err != nil {
		return fmt.Errorf("agent: %w", err)
	}
	defer eraser.Close()

	// Devices: a store's scanners and readers. A bad device configuration
	// stops the agent at start-up, loudly; a bad device at run time never.
	scans := scanstream.New(scanstream.Options{MaxClients: a.cfg.ScanStreamClients})
	// Carts: cart codes scanned here go to the till; they verify with the
	// hub's keys from the down-sync, offline too.
	tills := storecart.New(storecart.Options{
		Store: a.cfg.Store, Device: a.cfg.Device, Outbox: ob, Keys: products.CartKeys, Closed: products.ClosedCart, HubURL: a.cfg.HubURL, Now: a.now,
		Logger: a.log.With("component", "carts"),
	})
	devCfgs, sim, err := a.fittingSimulator()
	if err != nil {
		return err
	}
	if sim != nil {
		defer sim.reader.Close()
	}
	// Where the items were last swept, for the associates' requests.
	places, err := whereabouts.Open(whereabouts.Options{Path: filepath.Join(a.cfg.DataDir, "whereabouts.db"), Now: a.now,
		Logger: a.log.With("component", "whereabouts")})
	if err != nil {
		return fmt.Errorf("agent: %w", err)
	}
	defer places.Close()
	devs, err := devices.New(devices.Options{
		Devices: devCfgs, ProfilesDir: a.cfg.Profiles, Sink: ob, Scans: scans,
		Catalog: catalog{products}, Carts: tills.Scan, Places: places,
		Logger: a.log.With("component", "devices"),
	})
	if err != nil {
		return fmt.Errorf("agent: %w", err)
	}
	defer devs.Close()

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	registerMetrics(reg, ob, up)
	reg.MustRegister(down.Collector(), pickup.Collector())
	for _, src := range []struct {
		name string
		n    func(customercard.ClientStats) uint64
	}{
		{"hub", func(s customercard.ClientStats) uint64 { return s.FromHub }},
		{"cache", func(s customercard.ClientStats) uint64 { return s.FromCache }},
		{"not_found", func(s customercard.ClientStats) uint64 { return s.NotFound }},
		{"unavailable", func(s customercard.ClientStats) uint64 { return s.Unavailable }},
	} {
		reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "omni_edge_customer_card_lookups_total", Help: "Customer card lookups by outcome: from the hub, from the cache (hub unreachable), not found, unavailable.",
			ConstLabels: prometheus.Labels{"outcome": src.name},
		}, func() float64 { return float64(src.n(cards.Stats())) }))
	}
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "omni_edge_erasures_pending", Help: "Customer erasures this agent has read but not yet carried out and receipted.",
	}, func() float64 { return float64(eraser.Status().Pending) }))
	reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "omni_edge_scan_stream_refused_total", Help: "Scan stream clients turned away because --scan-stream-clients were listening.",
	}, func() float64 { return float64(scans.Refused()) }), prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "omni_edge_scan_stream_clients", Help: "Clients listening to the scan stream.",
	}, func() float64 { return float64(scans.Subscribers()) }))
	token, err := apiguard.ReadToken(a.cfg.APIToken, a.cfg.APITokenFile)
	if err != nil {
		return fmt.Errorf("agent: %w", err)
	}
	listenHost, _, _ := net.SplitHostPort(a.cfg.HTTP)
	guard, err := apiguard.New(apiguard.Options{
		ListenHost: listenHost, AllowedHosts: a.cfg.APIAllowedHosts, AllowedOrigins: a.cfg.APIAllowedOrigins,
		Token: token, Logger: a.log.With("component", "apiguard"),
	})
	if err != nil {
		return fmt.Errorf("agent: %w", err)
	}
	reg.MustRegister(guard.Collector())

	mux := http.NewServeMux()
	posapi.New(posapi.Options{
		Store: a.cfg.Store, Outbox: ob, Products: products, Registry: reg, Logger: a.log.With("component", "posapi"),
		Status:  func() any { return a.status(ob, up, down, pickup, eraser) },
		Healthy: func() error { return nil },
	}).Register(mux)
	pickups.NewAPI(orders, pickup).Register(mux)
	tills.Register(mux)
	customercard.NewAPI(cards).Register(mux)
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.Handle("GET /v1/devices", devs)
	mux.Handle("POST /v1/devices/{name}/sweep", devs.SweepHandler(a.cfg.Store))
	mux.Handle("GET /v1/scans/stream", scans)
	// The associates' queue, shared with the store's other agents.
	staff, staffLink, err := a.openStaff(ob, products, places, nc)
	if err != nil {
		return err
	}
	defer staff.Close()
	staff.Register(mux)
	kiosk.New(kiosk.Options{
		Store: a.cfg.Store, Device: a.cfg.Device, Products: products, Outbox: staff.Tap(ob), Carts: tills,
		Present: devs.Present, Suggest: products, Surveys: products.Survey, Logger: a.log.With("component", "kiosk"),
	}).Register(mux)
	ln, err := net.Listen("tcp", a.cfg.HTTP)
	if err != nil {
		return fmt.Errorf("agent: http listen %s: %w", a.cfg.HTTP, err)
	}
	srv := newHTTPServer(guard.Wrap(mux), a.limits)

	a.mu.Lock()
	a.httpAddr = ln.Addr().String()
	a.ob, a.up, a.products = ob, up, products
	a.mu.Unlock()

	g, gctx := errgroup.WithContext(ctx)
	// Long-lived requests (the scan stream) end when the agent stops.
	srv.BaseContext = func(net.Listener) context.Context { return gctx }
	g.Go(func() error {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("agent: http: %w", err)
		}
		return nil
	})
	g.Go(func() error { return devs.Run(gctx) })
	g.Go(func() error { return staff.Run(gctx) })
	g.Go(func() error { return staffLink.Run(gctx) })
	if sim != nil {
		g.Go(func() error { return sim.reader.Play(gctx, sim.opts) })
	}
	g.Go(func() error {
		<-gctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		return srv.Shutdown(sctx)
	})
	g.Go(func() error { return up.Run(gctx) })
	g.Go(func() error { return down.Run(gctx) })
	g.Go(func() error { return pickup.Run(gctx) })
	g.Go(func() error { return eraser.Run(gctx) })
	if a.cfg.Simulate {
		var skus []string
		if a.cfg.SimulateCatalog != "" {
			if skus, err = simulatedSKUs(a.cfg.SimulateCatalog); err != nil {
				return err
			}
		}
		sim := possim.New(possim.Options{
			URL: "http://" + a.httpAddr, Token: token, Store: a.cfg.Store, Rate: a.cfg.SimulateRate, SKUs: a.cfg.SimulateSKUs, SKUList: skus,
			Logger: a.log.With("component", "possim"),
		})
		g.Go(func() error { return sim.Run(gctx) })
	}
	a.log.Info("agent ready", "http", a.httpAddr, "nats", redact.URL(a.cfg.NATSURL), "nats_js_domain", a.cfg.NATSJSDomain, "version", a.version)
	close(a.ready)
	err = g.Wait()
	if ctx.Err() != nil {
		return nil
	}
	return err
}

// Status is the body of GET /v1/status.
type Status struct {
	Store     string `json:"store"`
	Device    string `json:"device"`
	Version   string `json:"version"`
	Epoch     uint64 `json:"epoch"`
	Connected bool   `json:"connected"`
	// OutboxDepth is how many accepted events the hub has not yet confirmed.
	OutboxDepth          int64         `json:"outbox_depth"`
	OutboxBytes          int64         `json:"outbox_bytes"`
	OutboxBudgetBytes    int64         `json:"outbox_budget_bytes"`
	OldestUnackedSeconds float64       `json:"oldest_unacked_seconds"`
	LastSeq              uint64        `json:"last_seq"`
	AckedSeq             uint64        `json:"acked_seq"`
	LastSync             *time.Time    `json:"last_sync"`
	ClockSkewSeconds     float64       `json:"clock_skew_seconds"`
	HubClockOffsetSecs   float64       `json:"hub_clock_offset_seconds"`
	Uplink               uplink.Status `json:"uplink"`
	// Downsync is the product cache and how current it is.
	Downsync downlink.Status `json:"downsync"`
	// Pickups is the store's pickup orders and how current they are.
	Pickups pickups.Status `json:"pickups"`
	// Customers is the customer cards held and the erasures carried out.
	Customers customercard.EraserStatus `json:"customers"`
}

func (a *Agent) status(ob *outbox.Outbox, up *uplink.Uplink, down *downlink.Downlink, pickup *pickups.Follower, eraser *customercard.Eraser) Status {
	st := ob.Stats()
	us := up.Status()
	s := Status{
		Store: a.cfg.Store, Device: a.cfg.Device, Version: a.version, Epoch: st.Epoch,
		Connected: us.Connected, OutboxDepth: st.Depth, OutboxBytes: st.Bytes, OutboxBudgetBytes: st.BudgetBytes,
		LastSeq: st.LastSeq, AckedSeq: st.AckedSeq,
		ClockSkewSeconds:   ob.Clock().Skew().Seconds(),
		HubClockOffsetSecs: us.HubClockOffset.Seconds(),
		Uplink:             us,
		Downsync:           down.Status(),
		Pickups:            pickup.Status(),
		Customers:          eraser.Status(),
	}
	if !st.OldestUnacked.IsZero() {
		s.OldestUnackedSeconds = max(0, time.Since(st.OldestUnacked).Seconds())
	}
	if !us.LastSync.IsZero() {
		t := us.LastSync.UTC()
		s.LastSync = &t
	}
	return s
}

func registerMetrics(reg *prometheus.Registry, ob *outbox.Outbox, up *uplink.Uplink) {
	reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "omni_edge_outbox_depth", Help: "Accepted events the hub has not yet confirmed.",
		}, func() float64 { return float64(ob.Stats().Depth) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "omni_edge_outbox_bytes", Help: "Bytes of unconfirmed events (counted against the budget).",
		}, func() float64 { return float64(ob.Stats().Bytes) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "omni_edge_outbox_oldest_unacked_seconds", Help: "Age of the oldest unconfirmed event; 0 when caught up.",
		}, func() float64 {
			t := ob.Stats().OldestUnacked
			if t.IsZero() {
				return 0
			}
			return max(0, time.Since(t).Seconds())
		}),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "omni_edge_outbox_appends_total", Help: "Events appended (durably) to the outbox.",
		}, func() float64 { return float64(ob.Stats().Appends) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "omni_edge_outbox_commits_total", Help: "Outbox transactions (fsyncs); appends/commits is the group-commit factor.",
		}, func() float64 { return float64(ob.Stats().Batches) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "omni_edge_connected", Help: "1 when connected to NATS.",
		}, func() float64 {
			if up.Status().Connected {
				return 1
			}
			return 0
		}),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "omni_edge_uplink_published_total", Help: "Publishes sent to JetStream (including republishes).",
		}, func() float64 { return float64(up.Status().Published) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "omni_edge_uplink_rewinds_total", Help: "Times unconfirmed events were republished.",
		}, func() float64 { return float64(up.Status().Rewinds) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "omni_edge_clock_skew_seconds", Help: "How far the wall clock is behind the event clock (after a backwards step).",
		}, func() float64 { return ob.Clock().Skew().Seconds() }),
	)
}

// openCache opens the product cache in the data directory.
func (a *Agent) openCache() (*productcache.Cache, error) {
	opts := productcache.Options{
		Path:  filepath.Join(a.cfg.DataDir, "cache.db"),
		Store: a.cfg.Store, Nearby: a.cfg.Nearby, Online: a.cfg.OnlineLocation, StaleAfter: a.cfg.StaleAfter,
		Logger: a.log.With("component", "productcache"),
	}
	c, err := openOrMoveAside(a.log, "product cache", opts.Path, func() (*productcache.Cache, error) { return productcache.Open(opts) },
		productcache.ErrLocked, productcache.ErrInvalidOption)
	if err != nil {
		return nil, fmt.Errorf("agent: product cache: %w", err)
	}
	st := c.Stats()
	a.log.Info("product cache open", "products", st.Products, "stock_positions", st.StockPositions,
		"last_seq", st.LastSeq, "synced_at", st.SyncedAt, "locations", c.Locations())
	return c, nil
}

// openPickups opens the cache of the store's pickup orders in the data
// directory.
func (a *Agent) openPickups() (*pickups.Cache, error) {
	opts := pickups.Options{
		Path: filepath.Join(a.cfg.DataDir, "pickups.db"), Store: a.cfg.Store, Logger: a.log.With("component", "pickups"),
	}
	c, err := openOrMoveAside(a.log, "pickup cache", opts.Path, func() (*pickups.Cache, error) { return pickups.Open(opts) },
		pickups.ErrLocked, pickups.ErrInvalidOption)
	if err != nil {
		return nil, fmt.Errorf("agent: pickup cache: %w", err)
	}
	st := c.Stats()
	a.log.Info("pickup cache open", "orders", st.Orders, "open", st.Open, "synced_at", st.SyncedAt)
	return c, nil
}

// openCustomers opens the file of customer cards and erasures in the data
// directory. Moved aside when unreadable like the other caches: its cards
// are fetched again, and its erasures read again from the store's notices
// (carried out again: every step may be redone).
func (a *Agent) openCustomers() (*customercard.Cache, error) {
	opts := customercard.Options{
		Path: filepath.Join(a.cfg.DataDir, "customers.db"), TTL: a.cfg.CustomerCardTTL, Now: a.now,
		Logger: a.log.With("component", "customercard"),
	}
	c, err := openOrMoveAside(a.log, "customer cards", opts.Path, func() (*customercard.Cache, error) { return customercard.Open(opts) },
		customercard.ErrLocked, customercard.ErrInvalidOption)
	if err != nil {
		return nil, fmt.Errorf("agent: customer cards: %w", err)
	}
	st := c.Stats()
	a.log.Info("customer cards open", "cards", st.Cards, "erasures_pending", st.ErasuresPending, "erasures_done", st.ErasuresDone)
	return c, nil
}

// openOrMoveAside opens a cache file. A cache holds only what the hub
// publishes, so a file that cannot be opened (corrupt, another format of
// bbolt) is moved aside and a new one filled from the hub: the store keeps
// selling either way. Errors that say nothing of the file (keep) are
// returned as they are.
func openOrMoveAside[C any](log *slog.Logger, what, path string, open func() (C, error), keep ...error) (C, error) {
	c, err := open()
	if err == nil || slices.ContainsFunc(keep, func(k error) bool { return errors.Is(err, k) }) {
		return c, err
	}
	aside := path + ".unreadable-" + time.Now().UTC().Format("20060102T150405Z")
	log.Warn(what+" unreadable: moving it aside and starting a new one", "err", err, "moved_to", aside)
	if rerr := os.Rename(path, aside); rerr != nil {
		return c, err
	}
	return open()
}

// catalog names the product behind a GTIN for the devices (scan stream,
// sweep counts per SKU), from the product cache.
type catalog struct{ c *productcache.Cache }

var _ devices.Catalog = catalog{}

func (c catalog) ProductForGTIN(gtin string) (devices.ProductRef, bool) {
	p, v, ok := c.c.Variant(gtin)
	if !ok {
		return devices.ProductRef{}, false
	}
	ref := devices.ProductRef{
		ID: p.ID, SKU: v.SKU, Name: p.Name, Brand: p.Brand, Size: v.Size, Colour: v.Colour,
		PriceMinor: v.PriceMinor, Currency: v.Currency, ImageURL: v.ImageURL,
	}
	if v.Name != "" {
		ref.Name = v.Name
	}
	if ref.ImageURL == "" {
		ref.ImageURL = p.ImageURL
	}
	return ref, true
}

// simulatedSKUs reads the SKUs of a catalog file for the simulated POS.
// fittingSim is the simulated fitting-room reader of a demo agent.
type fittingSim struct {
	reader *rfidsim.Reader
	opts   rfidsim.Options
}

// fittingSimulator returns the devices to run: the configured ones, plus,
// with --simulate-fitting-rooms, a simulated R2000 reader on a pty
// covering room-1..room-N (one antenna each).
func (a *Agent) fittingSimulator() ([]devices.Config, *fittingSim, error) {
	cfgs := a.cfg.Devices
	n := a.cfg.SimulateFittingRooms
	if n <= 0 {
		return cfgs, nil, nil
	}
	f, err := os.Open(a.cfg.SimulateCatalog)
	if err != nil {
		return nil, nil, fmt.Errorf("agent: simulate-catalog: %w", err)
	}
	gtins, err := rfidsim.GTINsFromCatalog(f)
	f.Close()
	if err != nil || len(gtins) == 0 {
		return nil, nil, fmt.Errorf("agent: simulate-fitting-rooms: no GTINs in %s: %v", a.cfg.SimulateCatalog, err)
	}
	r, err := rfidsim.Open()
	if err != nil {
		return nil, nil, fmt.Errorf("agent: %w", err)
	}
	dc := devices.Config{Name: "fitting-rooms-sim", Port: r.Path, Profile: rfidsim.Profile}
	for i := 1; i <= n; i++ {
		dc.Zones = append(dc.Zones, devices.ZoneConfig{Name: presence.RoomName(i), Antennas: []int{i}})
	}
	a.log.Info("simulated fitting rooms", "rooms", n, "port", r.Path, "items", len(gtins))
	return append(slices.Clone(cfgs), dc), &fittingSim{reader: r, opts: rfidsim.Options{Rooms: n, GTINs: gtins,
		Seed: uint64(time.Now().UnixNano()), Logger: a.log.With("component", "rfidsim")}}, nil
}

func simulatedSKUs(path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("agent: simulate-catalog: %w", err)
	}
	defer f.Close()
	skus, err := possim.SKUsFromCatalog(f)
	if err != nil {
		return nil, fmt.Errorf("agent: simulate-catalog %s: %w", path, err)
	}
	return skus, nil
}

// serverLimits bound what one request may cost the agent's HTTP server.
type serverLimits struct {
	// readHeader and read bound reading a request's headers and all of
	// it; write bounds an answer (streams: each write instead); idle, a
	// kept-alive connection waiting for its next request.
	readHeader, read, write, idle time.Duration
	maxHeaderBytes                int
}

// defaultServerLimits: the POS posts small JSON bodies and the kiosk small
// forms, so 30 s to read one is generous; the slowest ordinary answer
// waits on the hub for a customer card (--customer-card-timeout, seconds),
// well within 60 s.
var defaultServerLimits = serverLimits{
	readHeader: 10 * time.Second, read: 30 * time.Second, write: 60 * time.Second, idle: 2 * time.Minute,
	maxHeaderBytes: 64 << 10,
}

// newHTTPServer builds the agent's server with lim. The write timeout
// would cut the long-lived event streams (the scan stream, the staff
// page's queue) at their first write a minute in: an answer of type
// text/event-stream has the write deadline lifted, and each of its writes
// gets lim.write of its own instead, so a client that stops reading is
// still let go. Its read deadline is lifted too: net/http clears it
// itself while it watches for the client going away, and the streams do
// not depend on that.
func newHTTPServer(h http.Handler, lim serverLimits) *http.Server {
	return &http.Server{
		Handler:           streamDeadlines(h, lim.write),
		ReadHeaderTimeout: lim.readHeader,
		ReadTimeout:       lim.read,
		WriteTimeout:      lim.write,
		IdleTimeout:       lim.idle,
		MaxHeaderBytes:    lim.maxHeaderBytes,
	}
}

// streamDeadlines wraps every answer so that an event stream, once it
// says it is one (its Content-Type), has per-write deadlines instead of
// the server's whole-request ones.
func streamDeadlines(h http.Handler, perWrite time.Duration) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.ServeHTTP(&streamWriter{ResponseWriter: w, rc: http.NewResponseController(w), perWrite: perWrite}, r)
	})
}

// streamWriter is an http.ResponseWriter that turns into a stream's when
// its headers go out with Content-Type text/event-stream.
type streamWriter struct {
	http.ResponseWriter
	rc       *http.ResponseController
	perWrite time.Duration
	decided  bool
	stream   bool
}

// decide looks at the answer's type when its headers go out.
func (s *streamWriter) decide() {
	if s.decided {
		return
	}
	s.decided = true
	if !strings.HasPrefix(s.Header().Get("Content-Type"), "text/event-stream") {
		return
	}
	s.stream = true
	// Errors: a writer that cannot take deadlines has none to lift.
	_ = s.rc.SetReadDeadline(time.Time{})
	_ = s.rc.SetWriteDeadline(time.Time{})
}

// extend gives a stream's next write its own deadline.
func (s *streamWriter) extend() {
	if s.stream {
		_ = s.rc.SetWriteDeadline(time.Now().Add(s.perWrite))
	}
}

func (s *streamWriter) WriteHeader(code int) {
	if code >= 200 { // not an informational 1xx: the answer's own headers
		s.decide()
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *streamWriter) Write(b []byte) (int, error) {
	s.decide()
	s.extend()
	return s.ResponseWriter.Write(b)
}

// Flush is what the stream handlers look for (http.Flusher).
func (s *streamWriter) Flush() {
	s.decide()
	s.extend()
	_ = s.rc.Flush()
}

// Unwrap lets http.ResponseController reach the server's writer.
func (s *streamWriter) Unwrap() http.ResponseWriter { return s.ResponseWriter }
