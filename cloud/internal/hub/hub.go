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
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nats.go/micro"
	"golang.org/x/sync/errgroup"

	"github.com/omnisync/omnisync/cloud/internal/api"
	"github.com/omnisync/omnisync/cloud/internal/auth"
	"github.com/omnisync/omnisync/cloud/internal/basketfold"
	"github.com/omnisync/omnisync/cloud/internal/carts"
	"github.com/omnisync/omnisync/cloud/internal/cartsvc"
	"github.com/omnisync/omnisync/cloud/internal/console"
	"github.com/omnisync/omnisync/cloud/internal/custsync"
	"github.com/omnisync/omnisync/cloud/internal/cx"
	"github.com/omnisync/omnisync/cloud/internal/downpub"
	"github.com/omnisync/omnisync/cloud/internal/heartbeat"
	"github.com/omnisync/omnisync/cloud/internal/hqact"
	"github.com/omnisync/omnisync/cloud/internal/ingest"
	"github.com/omnisync/omnisync/cloud/internal/inventory"
	"github.com/omnisync/omnisync/cloud/internal/pii"
	"github.com/omnisync/omnisync/cloud/internal/store"
	"github.com/omnisync/omnisync/cloud/internal/streamerase"
	"github.com/omnisync/omnisync/shared/cartcode"
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
	// setupOut receives the first start's one-time setup token (os.Stdout).
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

// SetSetupOutput sends the first start's one-time setup token to w
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
	h.met.store(st)
	keysPath := h.cfg.CustomerKeys
	if keysPath == "" {
		keysPath = filepath.Join(h.cfg.DataDir, "customer-keys.json")
	}
	keys, err := pii.LoadOrCreate(keysPath)
	if err != nil {
		return fmt.Errorf("hub: --customer-keys: %w", err)
	}
	st.SetCustomerKeys(keys)
	if n, err := st.SealInClear(ctx); err != nil {
		return fmt.Errorf("hub: %w", err)
	} else if n > 0 {
		h.log.Info("store: survey comments sealed", "count", n)
	}
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
	// The stream's copies of erased customers' messages are deleted from
	// the stream the hub owns, by every replica under leases.
	evStream, err := js.Stream(ctx, subjects.StreamEvents)
	if err != nil {
		return fmt.Errorf("hub: events stream: %w", err)
	}
	streamEraser, err := streamerase.New(streamerase.Options{
		Store: st, Stream: evStream, Owner: replicaOwner(),
		Logger: h.log.With("component", "streamerase"),
	})
	if err != nil {
		return err
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
	// Customers at the stores: the till's card requests and every
	// erasure's notice to each store, with its receipts.
	cust, err := custsync.New(custsync.Options{
		Conn: nc, JS: djs, Replicas: h.cfg.StreamReplicas,
		Cards: customerBooks{st}, Erasures: customerBooks{st}, Hasher: keys.Hasher(),
		Logger: h.log.With("component", "custsync"),
	})
	if err != nil {
		return fmt.Errorf("hub: customers at the stores: %w", err)
	}
	h.met.reg.MustRegister(cust.Collector())
	beats, err := heartbeat.New(heartbeat.Options{Store: st, Logger: h.log.With("component", "heartbeat")})
	if err != nil {
		return err
	}
	h.met.heartbeat(beats)
	fleet := newFleetCollector(st, js)
	fleet.unsyncedAlert = h.cfg.UnsyncedSaleAlert
	h.met.reg.MustRegister(fleet)
	facts := &hubFacts{st: st, log: h.log.With("component", "automation")}
	auto, err := newAutomation(st, nc, storeConsent{st}, facts, h.cfg.Webhooks(), h.log.With("component", "automation"))
	if err != nil {
		return err
	}
	ins, err := newInsights(st, auto, facts, h.log.With("component", "insights"))
	if err != nil {
		return err
	}
	// The console's live feed: told after each committed batch, here and,
	// through NATS, on the other replicas.
	live := console.NewBroker(nc, h.log.With("component", "console"))
	// applied hands what a committed batch changed to those who keep
	// copies: the stream's batches and HQ's replays alike.
	// The baskets of applied sales are folded into "bought together"
	// after their batch, by every replica in turn; the products whose
	// complements changed are republished.
	// Folding yields to applying: the hub is busy while batches keep
	// coming, as in a store's catch-up.
	var lastApplied atomic.Int64
	var consumer *ingest.Consumer // set below, before anything runs
	folder, err := basketfold.New(basketfold.Options{
		Store: st, Folded: pub.Recs, Logger: h.log.With("component", "basketfold"),
		Busy: func() bool {
			return consumer.Busy() || time.Since(time.Unix(0, lastApplied.Load())) < time.Second
		},
	})
	if err != nil {
		return err
	}
	h.met.basketfold(folder)
	applied := func(res store.BatchResult) {
		lastApplied.Store(time.Now().UnixNano())
		folder.Notify()
		beats.Learn(res.Watermarks)
		pub.Stock(res.Positions)
		pub.Reviews(res.ReviewedProducts)
		pub.Recs(res.RecProducts)
		pub.Pickups(res.Reservations)
		pub.Carts(res.Carts)
		auto.StockChanged(changedSKUs(res.Positions)...)
		if len(res.Customers) > 0 {
			ins.Notify()
		}
		if c, ok := console.FromBatch(res, time.Now()); ok {
			live.Publish(c)
		}
	}
	consumer, err = ingest.New(ingest.Options{
		Consumer: cons, Conn: nc, Store: st, Batch: h.cfg.Batch,
		Reopen:  func(ctx context.Context) (jetstream.Consumer, error) { return ingest.EnsureStream(ctx, js, streamOpts) },
		Metrics: h.met.ingest(), Logger: h.log.With("component", "ingest"),
		Applied: applied,
	})
	if err != nil {
		return err
	}

	// Carts: the web shop's API writes cart events into the books itself;
	// the signing key of cart codes stays in the data dir, out of the
	// database, and its public half goes down to the stores.
	cartKey, err := cartcode.LoadOrCreateKey(filepath.Join(h.cfg.DataDir, cartcode.KeyFile))
	if err != nil {
		return fmt.Errorf("hub: %w", err)
	}
	modes, _ := cartsvc.ParseModes(h.cfg.CartReserve)
	policy, _ := carts.ParsePolicy(h.cfg.CartMergePolicy)
	abandon := h.cfg.CartAbandonAfter
	if abandon == 0 {
		abandon = -1
	}
	cartSvc, err := cartsvc.New(cartsvc.Options{
		Store: st, Online: h.cfg.OnlineLocation, Key: cartKey, Policy: policy, Modes: modes, AbandonAfter: abandon,
		Logger: h.log.With("component", "carts"),
		OnApplied: func(res store.BatchResult) {
			pub.Stock(res.Positions)
			pub.Pickups(res.Reservations)
			pub.Carts(res.Carts)
			if len(res.Customers) > 0 {
				ins.Notify()
			}
			if c, ok := console.FromBatch(res, time.Now()); ok {
				live.Publish(c)
			}
		},
		// An abandoned cart is a trigger of the automation, which checks
		// the customer's consent when it sends, not now.
		OnAbandoned: func(ab []store.AbandonedCart) {
			if _, err := auto.Handle(ctx, cartsvc.AbandonedEvents(ab, time.Now())...); err != nil {
				h.log.Warn("automation: abandoned carts", "err", err)
			}
		},
	})
	if err != nil {
		return err
	}
	svyPub := newSurveyPublisher(djs, st, h.log.With("component", "surveys"))
	keyDoc, _ := json.Marshal(cartSvc.PublicKey())
	// Published to the bucket's subject through the down-sync account's
	// JetStream, as downpub does: a KeyValue handle made through an API
	// prefix writes under that prefix, which the accounts do not route.
	// Retried in the background: a cluster electing the bucket's leader
	// answers nothing for a while, and the hub serves meanwhile (tills
	// verify codes with keys they already hold).
	publishCartKey := func(ctx context.Context) error {
		b := retry.Backoff{Min: 500 * time.Millisecond, Max: 10 * time.Second}
		for {
			pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			_, err := djs.Publish(pctx, downsync.Subject(downsync.CartKeyKey(cartSvc.PublicKey().KeyID)), keyDoc)
			cancel()
			if err == nil || ctx.Err() != nil {
				return nil
			}
			h.log.Warn("publishing the cart code key; retrying", "err", err)
			if b.Wait(ctx) != nil {
				return nil
			}
		}
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

	// Positions HQ changed outside a batch (safety stock): down-sync and
	// the console hear of them as of a batch's.
	onStockChange := func(keys []inventory.Key) {
		pub.Stock(keys)
		live.Publish(console.Changed(keys, time.Now()))
	}

	// HQ's actions on conflicts: events of HQ's own, told about as a
	// stream batch's are (stock arriving by transfer can bring an item
	// back in stock for the automation too).
	acts := hqact.New(hqact.Options{Store: st, Logger: h.log.With("component", "hqact"), OnApplied: applied})

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
		store: st, auth: authSvc, metrics: h.met.reg, live: live, version: h.version, publicURL: publicURL, tls: h.cfg.TLSCert != "",
		api: api.Options{
			Store: st, Logger: h.log.With("component", "api"), Version: h.version,
			OnlineLocation:      h.cfg.OnlineLocation,
			OnlineMinConfidence: inventory.Confidence(h.cfg.OnlineMinConfidence),
			UnsyncedAlertAfter:  h.cfg.UnsyncedSaleAlert,
			PublicURL:           publicURL,
			MaxImportBytes:      h.cfg.CatalogMaxBytes,
			SpoolDir:            filepath.Join(h.cfg.DataDir, "imports"),
			OnCatalogChange:     pub.Products,
			OnReviewsChange:     pub.Reviews,
			Carts:               cartSvc,
			Acts:                acts,
			TransferOverdue:     h.cfg.TransferOverdue,
			OnErasure:           func(string) { cust.Notify(); streamEraser.Notify() },
			OnStockChange:       onStockChange,
			OnApplied:           applied,
			Ready: func(ctx context.Context) error {
				if !nc.IsConnected() {
					return errors.New("not connected to NATS")
				}
				return st.Ping(ctx)
			},
		},
		cx: cx.Options{Store: st, Insights: ins, Logger: h.log.With("component", "cx"), Webhooks: h.cfg.Webhooks(),
			OnSurveyChange: func(store.SurveyDef) { svyPub.Poke() }, OnRulesChange: func() {
				if err := auto.ReloadRules(ctx); err != nil {
					h.log.Warn("automation: reload rules", "err", err)
				}
			}},
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
	g.Go(func() error { return live.Run(gctx) })
	g.Go(func() error { return beats.Run(gctx) })
	g.Go(func() error { return cartSvc.Run(gctx) })
	g.Go(func() error { return auto.Run(gctx) })
	g.Go(func() error { return ins.Run(gctx) })
	g.Go(func() error { return cust.Run(gctx) })
	g.Go(func() error { return streamEraser.Run(gctx) })
	g.Go(func() error { return folder.Run(gctx) })
	g.Go(func() error { return publishCartKey(gctx) })
	g.Go(func() error { return svyPub.Run(gctx) })
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
