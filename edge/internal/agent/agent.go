// Package agent assembles the store edge agent from its configuration and
// runs it: the outbox, the POS API, the uplink to the hub and, for demos, a
// simulated POS.
//
// Start order matters: the outbox and the HTTP API come up before NATS is
// reached, so the POS gets its 202s whether or not the store is online; the
// uplink connects (and reconnects) in the background.
package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"golang.org/x/sync/errgroup"

	"github.com/omnisync/omnisync/edge/internal/devices"
	"github.com/omnisync/omnisync/edge/internal/outbox"
	"github.com/omnisync/omnisync/edge/internal/posapi"
	"github.com/omnisync/omnisync/edge/internal/possim"
	"github.com/omnisync/omnisync/edge/internal/scanstream"
	"github.com/omnisync/omnisync/edge/internal/uplink"
	"github.com/omnisync/omnisync/shared/subjects"
)

// Agent is one store device's agent.
type Agent struct {
	cfg     Config
	log     *slog.Logger
	version string
	ready   chan struct{}

	mu       sync.Mutex
	httpAddr string
	ob       *outbox.Outbox
	up       *uplink.Uplink
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
	return &Agent{cfg: cfg, log: log, version: version, ready: make(chan struct{})}, nil
}

// Ready is closed once the POS API accepts events.
func (a *Agent) Ready() <-chan struct{} { return a.ready }

// HTTPAddr is the POS API address (after Ready).
func (a *Agent) HTTPAddr() string { a.mu.Lock(); defer a.mu.Unlock(); return a.httpAddr }

// Run starts the agent and blocks until ctx ends or a part fails.
func (a *Agent) Run(ctx context.Context) error {
	ob, err := outbox.Open(outbox.Options{
		Path:        filepath.Join(a.cfg.DataDir, "outbox.db"),
		Store:       a.cfg.Store,
		Device:      a.cfg.Device,
		BudgetBytes: a.cfg.OutboxBudget,
		MinFreeDisk: a.cfg.MinFreeDisk,
		Logger:      a.log.With("component", "outbox"),
	})
	if err != nil {
		return fmt.Errorf("agent: outbox: %w", err)
	}
	defer ob.Close()
	st := ob.Stats()
	a.log.Info("outbox open", "epoch", st.Epoch, "pending", st.Depth, "last_seq", st.LastSeq)

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
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) { a.log.Warn("NATS error", "err", err) }),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) { a.log.Warn("offline: NATS disconnected", "err", err) }),
		nats.ReconnectHandler(func(c *nats.Conn) {
			a.log.Info("online: NATS reconnected", "url", c.ConnectedUrl())
			a.mu.Lock()
			u := a.up
			a.mu.Unlock()
			if u != nil {
				u.NotifyReconnected()
			}
		}),
		nats.ConnectHandler(func(c *nats.Conn) { a.log.Info("online: NATS connected", "url", c.ConnectedUrl()) }),
	}
	if a.cfg.NATSCreds != "" {
		opts = append(opts, nats.UserCredentials(a.cfg.NATSCreds))
	}
	nc, err := nats.Connect(a.cfg.NATSURL, opts...)
	if err != nil && !errors.Is(err, nats.ErrNoServers) {
		return fmt.Errorf("agent: nats: %w", err)
	}
	defer nc.Close()
	up, err = uplink.New(uplink.Options{
		Store: a.cfg.Store, Device: a.cfg.Device, Conn: nc,
		HeartbeatEvery: a.cfg.HeartbeatEvery, Version: a.version,
		HLCSkew: ob.Clock().Skew,
		Logger:  a.log.With("component", "uplink"),
	}, ob)
	if err != nil {
		return err
	}

	// Devices: a store's scanners and readers. A bad device configuration
	// stops the agent at start-up, loudly; a bad device at run time never.
	scans := scanstream.New(scanstream.Options{})
	devs, err := devices.New(devices.Options{
		Devices: a.cfg.Devices, ProfilesDir: a.cfg.Profiles, Sink: ob, Scans: scans,
		Logger: a.log.With("component", "devices"),
	})
	if err != nil {
		return fmt.Errorf("agent: %w", err)
	}
	defer devs.Close()

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	registerMetrics(reg, ob, up)

	mux := http.NewServeMux()
	posapi.New(posapi.Options{
		Store: a.cfg.Store, Outbox: ob, Registry: reg, Logger: a.log.With("component", "posapi"),
		Status:  func() any { return a.status(ob, up) },
		Healthy: func() error { return nil },
	}).Register(mux)
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.Handle("GET /v1/devices", devs)
	mux.Handle("POST /v1/devices/{name}/sweep", devs.SweepHandler(a.cfg.Store))
	mux.Handle("GET /v1/scans/stream", scans)
	ln, err := net.Listen("tcp", a.cfg.HTTP)
	if err != nil {
		return fmt.Errorf("agent: http listen %s: %w", a.cfg.HTTP, err)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}

	a.mu.Lock()
	a.httpAddr = ln.Addr().String()
	a.ob, a.up = ob, up
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
	g.Go(func() error {
		<-gctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		return srv.Shutdown(sctx)
	})
	g.Go(func() error { return up.Run(gctx) })
	if a.cfg.Simulate {
		sim := possim.New(possim.Options{
			URL: "http://" + a.httpAddr, Store: a.cfg.Store, Rate: a.cfg.SimulateRate, SKUs: a.cfg.SimulateSKUs,
			Logger: a.log.With("component", "possim"),
		})
		g.Go(func() error { return sim.Run(gctx) })
	}
	a.log.Info("agent ready", "http", a.httpAddr, "nats", a.cfg.NATSURL, "version", a.version)
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
}

func (a *Agent) status(ob *outbox.Outbox, up *uplink.Uplink) Status {
	st := ob.Stats()
	us := up.Status()
	s := Status{
		Store: a.cfg.Store, Device: a.cfg.Device, Version: a.version, Epoch: st.Epoch,
		Connected: us.Connected, OutboxDepth: st.Depth, OutboxBytes: st.Bytes, OutboxBudgetBytes: st.BudgetBytes,
		LastSeq: st.LastSeq, AckedSeq: st.AckedSeq,
		ClockSkewSeconds:   ob.Clock().Skew().Seconds(),
		HubClockOffsetSecs: us.HubClockOffset.Seconds(),
		Uplink:             us,
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
