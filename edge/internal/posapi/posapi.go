// Package posapi serves the agent's local HTTP API for the POS app and the
// kiosk on the same machine.
//
// GET /v1/products/{code} answers from the agent's product cache, so it
// works the same whether the store is online or not: 200 with the view
// (its as_of says how current the stock is), 400 {"error", "field":
// "code"} for a code that is not a valid one, 404 for one the catalog does
// not know.
//
// The promise of POST /v1/events: a 202 with event ids means the events are
// fsync'd in the outbox and will reach the hub exactly once, whatever happens
// next; the body (Accepted) also gives each event's seq and HLC, so a client
// knows every accepted event's whole envelope. A request sent with an
// Idempotency-Key header may be retried freely (for 24 hours): a retry is
// answered with the first answer (and the header Idempotent-Replayed: true)
// and appends nothing. Anything else (400 bad input with the field named,
// 413 too large, 507 disk budget exhausted, 503 shutting down) means nothing
// was written, and the POS may retry or surface the error.
package posapi

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/omnisync/omnisync/edge/internal/outbox"
	"github.com/omnisync/omnisync/edge/internal/productcache"
	"github.com/omnisync/omnisync/shared/downsync"
	"github.com/omnisync/omnisync/shared/events"
	"github.com/omnisync/omnisync/shared/hlc"
)

// MaxBodyBytes bounds a POST /v1/events body.
const MaxBodyBytes = 1 << 20

// Products is what the API needs from the agent's product cache.
type Products interface {
	Lookup(ctx context.Context, code string) (downsync.View, error)
}

var _ Products = (*productcache.Cache)(nil)

// Appender is what the API needs from the outbox.
type Appender interface {
	Append(ctx context.Context, drafts []events.Draft) ([]events.Envelope, error)
	AppendOnce(ctx context.Context, key string, drafts []events.Draft) ([]events.Envelope, bool, error)
}

var _ Appender = (*outbox.Outbox)(nil)

// Options configures the API.
type Options struct {
	Store   string
	Outbox  Appender
	Status  func() any   // GET /v1/status body
	Healthy func() error // GET /healthz
	// Products answers GET /v1/products/{code}; nil leaves the route out.
	Products Products
	Registry *prometheus.Registry
	Logger   *slog.Logger
}

// API is the agent's HTTP handler set.
type API struct {
	o        Options
	log      *slog.Logger
	requests *prometheus.CounterVec
	latency  prometheus.Histogram
}

// New builds the API and registers its metrics.
func New(o Options) *API {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	a := &API{
		o:   o,
		log: o.Logger,
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "omni_edge_event_requests_total", Help: "POST /v1/events requests by HTTP status code.",
		}, []string{"code"}),
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "omni_edge_event_request_seconds",
			Help:    "Time from receiving POST /v1/events to answering it (includes the outbox fsync).",
			Buckets: prometheus.ExponentialBuckets(0.0002, 2, 16),
		}),
	}
	if o.Registry != nil {
		o.Registry.MustRegister(a.requests, a.latency)
	}
	return a
}

// Register adds the routes to mux.
func (a *API) Register(mux *http.ServeMux) {
	mux.HandleFunc("POST /v1/events", a.postEvents)
	mux.HandleFunc("GET /v1/status", a.status)
	mux.HandleFunc("GET /healthz", a.healthz)
	if a.o.Products != nil {
		// {code...}: a Digital Link URI, path-escaped, may still hold
		// escaped slashes; the mux hands the wildcard over unescaped.
		mux.HandleFunc("GET /v1/products/{code...}", a.product)
	}
}

// product answers what the cache knows of a scanned or typed code: 200 with
// the product view (stock as of its as_of, from the cache, online or not),
// 400 for a code that is not a valid one, 404 for one the catalog does not
// know.
func (a *API) product(w http.ResponseWriter, r *http.Request) {
	code := r.PathValue("code")
	v, err := a.o.Products.Lookup(r.Context(), code)
	switch {
	case err == nil:
		w.Header().Set("Cache-Control", "no-store")
		writeJSON(w, http.StatusOK, v)
	case errors.Is(err, downsync.ErrInvalidCode):
		writeErr(w, http.StatusBadRequest, "code", err.Error())
	case errors.Is(err, downsync.ErrNotFound):
		writeErr(w, http.StatusNotFound, "", "not found: no product in this store's catalog has the code "+strconv.Quote(code))
	case errors.Is(err, productcache.ErrClosed), errors.Is(err, context.Canceled):
		writeErr(w, http.StatusServiceUnavailable, "", "the agent is shutting down; retry")
	default:
		a.log.Error("product lookup failed", "code", code, "err", err)
		writeErr(w, http.StatusInternalServerError, "", "product lookup failed: "+err.Error())
	}
}

// Accepted is the 202 body. With the agent's store and device (GET
// /v1/status) and the request's own events, it gives the client each
// accepted event's whole envelope: id, origin (store, device, epoch, seq),
// HLC, kind and data (location filled in with the agent's store where the
// body had none). A replayed answer (Idempotent-Replayed: true) is the
// first answer again, stamps included.
type Accepted struct {
	IDs []string `json:"ids"`
	// Epoch and Seqs locate the events in the device's outbox.
	Epoch uint64   `json:"epoch"`
	Seqs  []uint64 `json:"seqs"`
	// HLCs are the events' stamps, in order. A zero stamp means unknown: a
	// replay of an answer recorded by an agent that did not keep stamps.
	HLCs []hlc.Timestamp `json:"hlcs"`
}

func (a *API) postEvents(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	code := a.handleEvents(w, r)
	a.requests.WithLabelValues(http.StatusText(code)).Inc()
	a.latency.Observe(time.Since(start).Seconds())
}

func (a *API) handleEvents(w http.ResponseWriter, r *http.Request) int {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return writeErr(w, http.StatusRequestEntityTooLarge, "", "body larger than 1 MiB: split the events over several requests")
		}
		return writeErr(w, http.StatusBadRequest, "", "could not read body: "+err.Error())
	}
	drafts, err := events.ParseDrafts(body, a.o.Store)
	// A count posted by the POS was made by hand unless it says otherwise
	// (stock confidence weighs it below an RFID sweep).
	for i := range drafts {
		if err == nil {
			drafts[i], err = drafts[i].WithCountMethod(events.CountManual)
		}
	}
	if err != nil {
		var fe *events.FieldError
		if errors.As(err, &fe) {
			return writeErr(w, http.StatusBadRequest, fe.Field, fe.Reason)
		}
		return writeErr(w, http.StatusBadRequest, "", err.Error())
	}
	// With an Idempotency-Key the POS can retry a request whose answer it
	// never got (agent killed mid-sale, connection dropped) without selling
	// twice: the retry gets the first answer back.
	var envs []events.Envelope
	replayed := false
	if key := r.Header.Get("Idempotency-Key"); key != "" {
		envs, replayed, err = a.o.Outbox.AppendOnce(r.Context(), key, drafts)
	} else {
		envs, err = a.o.Outbox.Append(r.Context(), drafts)
	}
	switch {
	case err == nil:
	case errors.Is(err, outbox.ErrInvalidKey):
		return writeErr(w, http.StatusBadRequest, "Idempotency-Key", err.Error())
	case errors.Is(err, outbox.ErrKeyReused):
		return writeErr(w, http.StatusUnprocessableEntity, "Idempotency-Key", err.Error())
	case errors.Is(err, outbox.ErrFull):
		a.log.Warn("outbox full: refusing events", "events", len(drafts), "err", err)
		return writeErr(w, http.StatusInsufficientStorage, "", "the store agent's outbox is full: "+err.Error())
	case errors.Is(err, outbox.ErrTooLarge):
		return writeErr(w, http.StatusRequestEntityTooLarge, "", err.Error())
	case errors.Is(err, events.ErrInvalid):
		var fe *events.FieldError
		if errors.As(err, &fe) {
			return writeErr(w, http.StatusBadRequest, fe.Field, fe.Reason)
		}
		return writeErr(w, http.StatusBadRequest, "", err.Error())
	case errors.Is(err, outbox.ErrClosed):
		return writeErr(w, http.StatusServiceUnavailable, "", "the agent is shutting down; retry")
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		// The client went away; the events may or may not be durable and
		// the client will never know which: it must retry with care.
		return writeErr(w, http.StatusServiceUnavailable, "", "request cancelled before the events were confirmed")
	default:
		a.log.Error("outbox append failed", "err", err)
		return writeErr(w, http.StatusInternalServerError, "", "outbox write failed: "+err.Error())
	}
	acc := Accepted{IDs: make([]string, len(envs)), Seqs: make([]uint64, len(envs)), HLCs: make([]hlc.Timestamp, len(envs))}
	for i, e := range envs {
		acc.IDs[i], acc.Seqs[i], acc.HLCs[i], acc.Epoch = e.ID, e.Origin.Seq, e.HLC, e.Origin.Epoch
	}
	if replayed {
		w.Header().Set("Idempotent-Replayed", "true")
	}
	writeJSON(w, http.StatusAccepted, acc)
	return http.StatusAccepted
}

func (a *API) status(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, a.o.Status())
}

func (a *API) healthz(w http.ResponseWriter, r *http.Request) {
	if a.o.Healthy != nil {
		if err := a.o.Healthy(); err != nil {
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "unavailable", "error": err.Error()})
			return
		}
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

func writeErr(w http.ResponseWriter, code int, field, msg string) int {
	body := map[string]string{"error": msg}
	if field != "" {
		body["field"] = field
	}
	writeJSON(w, code, body)
	return code
}
