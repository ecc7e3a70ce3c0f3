// Package api serves the hub's HTTP API for HQ and shoppers: unified
// inventory, store and device sync health, conflicts and dead letters; the
// catalog (import, statistics) and the product view; the GS1 Digital Link
// resolver (/01/{gtin}...) and the shopper's product page
// (/products/{sku}).
//
// Nothing here writes books (events arrive only through the stream); the
// one write is a catalog import, which commits whole or not at all. Errors
// are JSON {"error": "...", "field": "..."} with a 4xx for bad requests, so
// dashboards and scripts can tell their mistakes from the hub's; pages for
// people (the product page, the resolver when a browser asks) answer errors
// as HTML with the same status.
package api

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/omnisync/omnisync/cloud/internal/auth"
	"github.com/omnisync/omnisync/cloud/internal/cartsvc"
	"github.com/omnisync/omnisync/cloud/internal/consent"
	"github.com/omnisync/omnisync/cloud/internal/inventory"
	"github.com/omnisync/omnisync/cloud/internal/reviews"
	"github.com/omnisync/omnisync/cloud/internal/store"
	"github.com/omnisync/omnisync/cloud/internal/transfers"
	"github.com/omnisync/omnisync/shared/downsync"
	"github.com/omnisync/omnisync/shared/events"
)

// Store is what the API reads.
type Store interface {
	StockForSKU(ctx context.Context, sku string) ([]store.Stock, error)
	ListStock(ctx context.Context, q store.StockQuery) ([]store.Stock, error)
	SetSafetyStock(ctx context.Context, sku, location string, qty int64) error
	Devices(ctx context.Context) ([]store.DeviceStatus, error)
	Conflicts(ctx context.Context, openOnly bool, limit int, locations ...string) ([]store.Conflict, error)
	CartCheckoutConflicts(ctx context.Context, all bool, limit int) ([]store.CartCheckoutConflict, error)
	DismissCartConflict(ctx context.Context, cartID, actor string) error
	Transfers(ctx context.Context, q store.TransferQuery) ([]transfers.Transfer, error)
	InTransit(ctx context.Context, skus []string) (map[inventory.Key]int64, error)
	DeadLettersOf(ctx context.Context, stores []string, limit int) ([]store.DeadLetter, error)

	LockCatalog(ctx context.Context) (*store.CatalogLock, error)
	CatalogStats(ctx context.Context) (products, variants int64, err error)
	CatalogImports(ctx context.Context, limit int) ([]store.CatalogImport, error)
	ProductBySKU(ctx context.Context, sku string) (downsync.ProductDoc, bool, error)
	SKUByGTIN(ctx context.Context, gtin string) (string, bool, error)
	StockDocs(ctx context.Context, keys []inventory.Key) ([]downsync.StockDoc, error)
	ReviewSummaries(ctx context.Context, productIDs []string) ([]downsync.ReviewSummary, error)
	Reviews(ctx context.Context, productID string, limit int) ([]store.ReviewRecord, error)
	ReviewQueue(ctx context.Context, q store.ReviewQuery) ([]store.ReviewRecord, error)
	ModerateReview(ctx context.Context, eventID string, action reviews.Action, moderator, note string) (store.ReviewRecord, error)
	ReviewPolicy(ctx context.Context) (reviews.Policy, error)
	SetReviewPolicy(ctx context.Context, p reviews.Policy) error

	Identify(ctx context.Context, req store.IdentifyRequest) (string, error)
	FindCustomer(ctx context.Context, identifier, region string) (string, error)
	Customer(ctx context.Context, id string, stores []string) (store.CustomerView, error)
	AddConsent(ctx context.Context, id string, req store.ConsentRequest) (consent.Decision, error)
	AddInterest(ctx context.Context, id, sku, kind string) error
	Unmerge(ctx context.Context, id, observation, operator, reason string) ([]string, error)
	EraseCustomer(ctx context.Context, id, operator, reason string) (string, error)
	ErasureStatus(ctx context.Context, id string) (store.Erasure, error)
	TryOnStats(ctx context.Context, from, to string, stores []string) (store.TryOn, error)
	CountVariances(ctx context.Context, q store.VarianceQuery) ([]store.CountVariance, error)
}

var _ Store = (*store.Store)(nil)

// Options configures the API.
type Options struct {
	Store Store
	// ConnectedWithin: a device whose last heartbeat is older is shown as
	// disconnected [DefaultConnectedWithin].
	ConnectedWithin time.Duration
	// Ready reports whether the hub can serve (store and NATS up).
	Ready   func(ctx context.Context) error
	Now     func() time.Time
	Logger  *slog.Logger
	Version string

	// OnCatalogChange, if set, is called after a catalog import commits,
	// with the products whose version grew (sorted, never empty): the hub
	// publishes them to the stores. It runs before the import is answered;
	// hand long work off.
	OnCatalogChange func(productIDs []string)
	// OnReviewsChange, if set, is called after a moderator's decision
	// commits, with the product whose review summary changed.
	OnReviewsChange func(productIDs []string)
	// OnStockChange, if set, is called after a change the API made to
	// stock positions commits (a safety stock): the hub republishes them
	// and tells the console.
	OnStockChange func(keys []inventory.Key)
	// OnApplied, if set, is called after a replay (of held exceptions or
	// a dead letter) committed, with its batch's result: the hub handles
	// it as any batch from the stream (stores' copies, the console, the
	// automation). Without it, OnStockChange hears of the positions.
	OnApplied func(res store.BatchResult)
	// OnlineLocation is the location of the online warehouse, whose stock
	// the product view shows as "online" (default "online"); every other
	// location holding a SKU is a nearby store.
	OnlineLocation string
	// UnsyncedAlertAfter: a device whose oldest unconfirmed sale is older
	// is flagged (unsynced_alert) [DefaultUnsyncedAlertAfter].
	UnsyncedAlertAfter time.Duration
	// OnlineMinConfidence: online stock whose confidence
	// (inventory.ConfidenceOf) is below it is not promised: the product
	// view shows it as none available online. Default (and low): every
	// unit is promised.
	OnlineMinConfidence inventory.Confidence
	// MaxImportBytes bounds a catalog import body (default 1 GiB); a
	// larger one is refused with 413 and nothing is stored. The hub's
	// general body limit must not apply to the import: see LimitBodies.
	MaxImportBytes int64
	// SpoolDir is where an import's rows wait, on disk, between the upload
	// and the transaction (up to about the size of the body; the file is
	// unlinked at once). Default: the system's temporary directory; the
	// hub uses its data directory, as /tmp may be memory.
	SpoolDir string
	// PublicURL is the hub's external base URL ("https://shop.example.com"),
	// used for Digital Link anchors and the links the resolver hands out.
	// Never taken from a request's Host (a forged Host would make the hub
	// hand out links to another site); default http://localhost.
	PublicURL string
	// Carts, when set, serves the web shop's cart API and the shoppers'
	// phone cart pages.
	Carts CartService
	// OnCustomersChange, if set, is called after HQ changed customers
	// (an unmerge, a consent, an erasure), with their master ids: the
	// stores' customer cards to refresh.
	OnCustomersChange func(customerIDs []string)
	// OnErasure, if set, is called after an erasure commits, with its id:
	// the hub tells the stores at once rather than at their next poll.
	OnErasure func(erasureID string)
	// Acts, when set, carries out HQ's actions on conflicts
	// (hqact.Service); without it acting answers 503.
	Acts ConflictActor
	// TransferOverdue is how long a transfer may be in transit before it
	// is listed as overdue [transfers.DefaultOverdue].
	TransferOverdue time.Duration
}

// CartService is what the cart routes need (cartsvc.Service).
type CartService interface {
	Create(ctx context.Context, customer, channel string, lines []cartsvc.LineInput) (string, cartsvc.State, error)
	Get(ctx context.Context, id string) (cartsvc.State, error)
	SetLine(ctx context.Context, id, channel string, l cartsvc.LineInput) (cartsvc.State, error)
	Claim(ctx context.Context, id, customer string) (cartsvc.State, error)
	Checkout(ctx context.Context, id string, version int64, channel string) (cartsvc.Order, error)
	Code(ctx context.Context, id string) (cartsvc.Code, error)
}

var _ CartService = (*cartsvc.Service)(nil)

// API is the hub's HTTP handler set.
type API struct {
	o   Options
	log *slog.Logger
}

// New builds the API.
func New(o Options) *API {
	if o.ConnectedWithin <= 0 {
		o.ConnectedWithin = DefaultConnectedWithin
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.OnlineLocation == "" {
		o.OnlineLocation = DefaultOnlineLocation
	}
	if o.UnsyncedAlertAfter <= 0 {
		o.UnsyncedAlertAfter = DefaultUnsyncedAlertAfter
	}
	if o.MaxImportBytes <= 0 {
		o.MaxImportBytes = DefaultMaxImportBytes
	}
	o.PublicURL = strings.TrimRight(o.PublicURL, "/")
	if o.PublicURL == "" {
		o.PublicURL = "http://localhost"
	}
	return &API{o: o, log: o.Logger}
}

// Defaults for zero Options fields.
const (
	// DefaultConnectedWithin is four of an agent's default heartbeat
	// periods (5 s). Heartbeats reach the database in flushes every few
	// seconds (package heartbeat), well inside it.
	DefaultConnectedWithin = 20 * time.Second
	DefaultOnlineLocation  = "online"
	DefaultMaxImportBytes  = 1 << 30
	// DefaultUnsyncedAlertAfter: sales half an hour old that HQ cannot
	// see yet are worth a look.
	DefaultUnsyncedAlertAfter = 30 * time.Minute
)

// Register adds the API's routes to rt, each with what it needs: the /v1
// API (scopes; a store manager's reads are limited to their stores),
// /healthz, the Digital Link resolver (/01/..., and single-segment paths
// for compressed links) and the product pages (/products/{sku}), which
// are public. Serve it through LimitBodies rather than
// http.MaxBytesHandler, so that catalog imports are bounded by
// MaxImportBytes instead of the general body limit.
func (a *API) Register(rt *auth.Router) {
	rt.HandleFunc("GET /v1/inventory/{sku}", auth.Need(auth.InventoryRead), a.inventorySKU)
	rt.HandleFunc("GET /v1/inventory", auth.Need(auth.InventoryRead), a.inventoryList)
	rt.HandleFunc("PUT /v1/inventory/{sku}/safety", auth.Need(auth.InventoryWrite), a.setSafety)
	rt.HandleFunc("GET /v1/stores", auth.Need(auth.StoresRead), a.stores)
	a.registerConflicts(rt)
	rt.HandleFunc("GET /v1/deadletters", auth.Need(auth.DeadLettersRead), a.deadLetters)
	rt.HandleFunc("GET /v1/counts/variances", auth.Need(auth.InventoryRead), a.countVariances)
	rt.HandleFunc("GET /healthz", auth.Public(), a.healthz)
	a.registerModeration(rt)
	a.registerCustomers(rt)
	a.registerFitting(rt)
	a.registerExceptions(rt)

	rt.HandleFunc("POST "+CatalogImportPath, auth.Need(auth.CatalogWrite), a.catalogImport)
	rt.HandleFunc("GET /v1/catalog", auth.Need(auth.CatalogRead), a.catalogStats)
	rt.HandleFunc("GET /v1/products/{code...}", auth.Need(auth.CatalogRead), a.product)
	rt.HandleFunc("GET /v1/products/{id}/reviews", auth.Need(auth.ReviewsRead), a.productReviews)

	rt.HandleFunc("GET /01/{rest...}", auth.Public(), a.resolve)
	rt.HandleFunc("OPTIONS /01/{rest...}", auth.Public(), a.resolverOptions)
	rt.HandleFunc("GET /{compressed}", auth.Public(), a.compressedLink)
	rt.HandleFunc("GET /products/{sku}", auth.Public(), a.productPage)
	a.registerCarts(rt)
}

// LocationStock is one location's line in an inventory answer.
type LocationStock struct {
	Location  string    `json:"location"`
	OnHand    int64     `json:"on_hand"`
	Reserved  int64     `json:"reserved"`
	Safety    int64     `json:"safety_stock"`
	Available int64     `json:"available"`
	AsOf      time.Time `json:"as_of"`
	// LastCountAt is when the position was last counted (absent: never
	// since stock arrived), and Confidence what that makes the figure
	// worth (inventory.ConfidenceOf: high, medium_high, medium, low).
	LastCountAt time.Time `json:"last_count_at,omitzero"`
	// LastCountMethod is how that count was taken (rfid_sweep, manual,
	// cycle; absent when unknown).
	LastCountMethod string `json:"last_count_method,omitempty"`
	Confidence      string `json:"confidence"`
	// InTransit is what open transfers are bringing here, not yet in
	// on_hand (absent when nothing is; not computed for a conflict's
	// suggestions).
	InTransit int64 `json:"in_transit,omitempty"`
}

// Totals sums every location.
type Totals struct {
	OnHand    int64     `json:"on_hand"`
	Reserved  int64     `json:"reserved"`
	Available int64     `json:"available"`
	AsOf      time.Time `json:"as_of,omitzero"`
}

// SKUStock is the answer of GET /v1/inventory/{sku}.
type SKUStock struct {
	SKU       string          `json:"sku"`
	Locations []LocationStock `json:"locations"`
	Total     Totals          `json:"total"`
}

func (a *API) inventorySKU(w http.ResponseWriter, r *http.Request) {
	sku := r.PathValue("sku")
	if err := validSKU(sku); err != nil {
		writeErr(w, http.StatusBadRequest, "sku", err.Error())
		return
	}
	rows, err := a.o.Store.StockForSKU(r.Context(), sku)
	if err != nil {
		a.internal(w, r, err)
		return
	}
	p := auth.From(r.Context())
	rows = slices.DeleteFunc(rows, func(s store.Stock) bool { return !p.MayStore(s.Location) })
	if len(rows) == 0 {
		// A catalog item with no stock (anywhere, or in the caller's
		// stores) is out of stock: 200 with zeros. Only a SKU neither the
		// catalog nor any store's books know is 404.
		known, err := a.knownSKU(r.Context(), sku)
		if err != nil {
			a.internal(w, r, err)
			return
		}
		if !known {
			writeErr(w, http.StatusNotFound, "sku", "unknown SKU: not in the catalog, and no stock has ever been recorded for "+sku)
			return
		}
	}
	out := SKUStock{SKU: sku, Locations: make([]LocationStock, 0, len(rows))}
	now := a.o.Now()
	transit, err := a.o.Store.InTransit(r.Context(), []string{sku})
	if err != nil {
		a.internal(w, r, err)
		return
	}
	for _, s := range rows {
		ls := locationStockAt(s, now)
		ls.InTransit = transit[inventory.Key{SKU: sku, Location: s.Location}]
		out.Locations = append(out.Locations, ls)
		out.Total.OnHand += s.OnHand
		out.Total.Reserved += s.Reserved
		out.Total.Available += s.Available
		if s.AsOf.After(out.Total.AsOf) {
			out.Total.AsOf = s.AsOf
		}
	}
	writeJSON(w, http.StatusOK, out)
}

// SafetyRequest is the body of PUT /v1/inventory/{sku}/safety.
type SafetyRequest struct {
	Location    string `json:"location"`
	SafetyStock *int64 `json:"safety_stock"`
}

// setSafety sets the safety stock of one position (kept out of available
// stock, so neither sold online nor promised), and answers the SKU's
// stock as GET /v1/inventory/{sku} does.
func (a *API) setSafety(w http.ResponseWriter, r *http.Request) {
	sku := r.PathValue("sku")
	if err := validSKU(sku); err != nil {
		writeErr(w, http.StatusBadRequest, "sku", err.Error())
		return
	}
	var req SafetyRequest
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		writeErr(w, http.StatusBadRequest, "", "body must be {\"location\": \"S1\", \"safety_stock\": 3}: "+err.Error())
		return
	}
	if err := events.ValidToken(req.Location); err != nil {
		writeErr(w, http.StatusBadRequest, "location", err.Error())
		return
	}
	if req.SafetyStock == nil || *req.SafetyStock < 0 || *req.SafetyStock > events.MaxCountQty {
		writeErr(w, http.StatusBadRequest, "safety_stock", "must be an integer from 0 to "+strconv.FormatInt(events.MaxCountQty, 10))
		return
	}
	if !auth.From(r.Context()).MayStore(req.Location) {
		writeErr(w, http.StatusForbidden, "location", "not one of your stores")
		return
	}
	if known, err := a.knownSKU(r.Context(), sku); err != nil {
		a.internal(w, r, err)
		return
	} else if !known {
		writeErr(w, http.StatusNotFound, "sku", "unknown SKU: not in the catalog, and no stock has ever been recorded for "+sku)
		return
	}
	if err := a.o.Store.SetSafetyStock(r.Context(), sku, req.Location, *req.SafetyStock); err != nil {
		if errors.Is(err, store.ErrInvalid) {
			writeErr(w, http.StatusBadRequest, "", err.Error())
			return
		}
		a.internal(w, r, err)
		return
	}
	a.log.Info("safety stock set", "sku", sku, "location", req.Location, "safety_stock", *req.SafetyStock, "by", auth.From(r.Context()).User)
	if a.o.OnStockChange != nil {
		a.o.OnStockChange([]inventory.Key{{SKU: sku, Location: req.Location}})
	}
	a.inventorySKU(w, r)
}

// knownSKU reports whether the catalog lists sku or any location's books
// hold it.
func (a *API) knownSKU(ctx context.Context, sku string) (bool, error) {
	if _, ok, err := a.o.Store.ProductBySKU(ctx, sku); err != nil || ok {
		return ok, err
	}
	all, err := a.o.Store.StockForSKU(ctx, sku)
	return len(all) > 0, err
}

func locationStock(s store.Stock) LocationStock { return locationStockAt(s, time.Now()) }

func locationStockAt(s store.Stock, now time.Time) LocationStock {
	return LocationStock{Location: s.Location, OnHand: s.OnHand, Reserved: s.Reserved, Safety: s.Safety, Available: s.Available, AsOf: s.AsOf.UTC(),
		LastCountAt: s.CountedAt.UTC(), LastCountMethod: s.CountMethod, Confidence: string(inventory.ConfidenceOf(s.CountMethod, s.CountedAt, now))}
}

// StockRow is one row of GET /v1/inventory.
type StockRow struct {
	SKU string `json:"sku"`
	LocationStock
}

// StockPage is the answer of GET /v1/inventory.
type StockPage struct {
	Items []StockRow `json:"items"`
	// Next is the cursor for the following page, empty at the end.
	Next string `json:"next,omitempty"`
}

func (a *API) inventoryList(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	sq := store.StockQuery{Location: q.Get("location"), Limit: 100}
	p := auth.From(r.Context())
	if sq.Location != "" {
		if err := events.ValidToken(sq.Location); err != nil {
			writeErr(w, http.StatusBadRequest, "location", err.Error())
			return
		}
		if !p.MayStore(sq.Location) {
			writeErr(w, http.StatusForbidden, "location", "not one of your stores")
			return
		}
	} else if stores, limited := p.Stores(); limited {
		sq.Locations = stores
	}
	if v := q.Get("below"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			writeErr(w, http.StatusBadRequest, "below", "must be an integer")
			return
		}
		sq.Below = &n
	}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1000 {
			writeErr(w, http.StatusBadRequest, "limit", "must be an integer from 1 to 1000")
			return
		}
		sq.Limit = n
	}
	if v := q.Get("after"); v != "" {
		sku, loc, ok := parseStockCursor(v)
		if !ok {
			writeErr(w, http.StatusBadRequest, "after", "must be a cursor returned as next")
			return
		}
		sq.AfterSKU, sq.AfterLocation = sku, loc
	}
	rows, err := a.o.Store.ListStock(r.Context(), sq)
	if err != nil {
		a.internal(w, r, err)
		return
	}
	skus := make([]string, 0, len(rows))
	for _, s := range rows {
		skus = append(skus, s.SKU)
	}
	transit, err := a.o.Store.InTransit(r.Context(), slices.Compact(skus))
	if err != nil {
		a.internal(w, r, err)
		return
	}
	page := StockPage{Items: make([]StockRow, 0, len(rows))}
	for _, s := range rows {
		row := StockRow{SKU: s.SKU, LocationStock: locationStock(s)}
		row.InTransit = transit[inventory.Key{SKU: s.SKU, Location: s.Location}]
		page.Items = append(page.Items, row)
	}
	if len(rows) == sq.Limit {
		last := rows[len(rows)-1]
		page.Next = last.SKU + "|" + last.Location
	}
	writeJSON(w, http.StatusOK, page)
}

// parseStockCursor reads the cursor GET /v1/inventory hands out as next:
// SKU "|" location. A SKU may hold '|' and a location may not, so the
// last '|' is the separator; both parts must be what the books can hold,
// so that nothing else reaches the database.
func parseStockCursor(v string) (sku, location string, ok bool) {
	i := strings.LastIndexByte(v, '|')
	if i < 0 {
		return "", "", false
	}
	sku, location = v[:i], v[i+1:]
	if validSKU(sku) != nil || events.ValidToken(location) != nil {
		return "", "", false
	}
	return sku, location, true
}

// Device is one device's sync health in GET /v1/stores.
type Device struct {
	Device         string    `json:"device"`
	Connected      bool      `json:"connected"`
	Version        string    `json:"version,omitempty"`
	Epoch          uint64    `json:"epoch"`
	Watermark      uint64    `json:"watermark"`
	EventsApplied  int64     `json:"events_applied"`
	Backlog        int64     `json:"backlog"`
	OldestUnackedS float64   `json:"oldest_unacked_seconds"`
	LagSeconds     float64   `json:"lag_seconds"`
	ClockSkewS     float64   `json:"clock_skew_seconds"`
	LastHeartbeat  time.Time `json:"last_heartbeat,omitzero"`
	LastEventAt    time.Time `json:"last_event_at,omitzero"`
	LastAppliedAt  time.Time `json:"last_applied_at,omitzero"`
	Unsynced
	// Peripherals are the device's scanners and readers as its
	// device_status events last reported them, by name.
	Peripherals []Peripheral `json:"peripherals"`
}

// Peripheral is one peripheral of a device in GET /v1/stores.
type Peripheral struct {
	Name string `json:"name"`
	// State is the agent's ("open": being read; "reopening": absent or
	// lost, retried; "failed": retrying cannot help); Connected is State
	// "open".
	State     string `json:"state"`
	Connected bool   `json:"connected"`
	// Since is when the current state began, ReportedAt the newest
	// report's event time.
	Since      time.Time `json:"since,omitzero"`
	ReportedAt time.Time `json:"reported_at,omitzero"`
	Detail     string    `json:"detail,omitempty"`
	// PreviousState is the state before the current one.
	PreviousState string `json:"previous_state,omitempty"`
	// LastError is the newest error reported, even if it has worked since.
	LastError   string    `json:"last_error,omitempty"`
	LastErrorAt time.Time `json:"last_error_at,omitzero"`
}

func peripheralsOf(ps []store.Peripheral) []Peripheral {
	out := make([]Peripheral, len(ps))
	for i, p := range ps {
		out[i] = Peripheral{Name: p.Name, State: p.State, Connected: p.Working(), Since: p.Since, ReportedAt: p.ReportedAt,
			Detail: p.Detail, PreviousState: p.PrevState, LastError: p.LastError, LastErrorAt: p.LastErrorAt}
	}
	return out
}

// Unsynced are the sales a device (or a store's devices) holds that the
// hub has not confirmed: the money HQ cannot see yet.
type Unsynced struct {
	// UnsyncedSales counts them, UnsyncedValue is their value in minor
	// currency units (lines without a price count 0).
	UnsyncedSales int64 `json:"unsynced_sales"`
	UnsyncedValue int64 `json:"unsynced_value"`
	// OldestUnsyncedSaleS is the oldest one's age now: as of the latest
	// heartbeat plus the time since.
	OldestUnsyncedSaleS float64 `json:"oldest_unsynced_sale_seconds"`
	// UnsyncedAlert is set when that age has passed
	// Options.UnsyncedAlertAfter.
	UnsyncedAlert bool `json:"unsynced_alert,omitempty"`
}

// add returns u plus o.
func (u Unsynced) add(o Unsynced) Unsynced {
	return Unsynced{UnsyncedSales: u.UnsyncedSales + o.UnsyncedSales, UnsyncedValue: u.UnsyncedValue + o.UnsyncedValue,
		OldestUnsyncedSaleS: max(u.OldestUnsyncedSaleS, o.OldestUnsyncedSaleS), UnsyncedAlert: u.UnsyncedAlert || o.UnsyncedAlert}
}

// Store is one store in GET /v1/stores.
type StoreHealth struct {
	Store     string `json:"store"`
	Connected bool   `json:"connected"`
	Backlog   int64  `json:"backlog"`
	// Unsynced sums the devices' (the oldest age the largest).
	Unsynced
	Devices []Device `json:"devices"`
}

func (a *API) stores(w http.ResponseWriter, r *http.Request) {
	devs, err := a.o.Store.Devices(r.Context())
	if err != nil {
		a.internal(w, r, err)
		return
	}
	now := a.o.Now()
	out := []StoreHealth{}
	p := auth.From(r.Context())
	for _, d := range devs {
		if !p.MayStore(d.Store) {
			continue
		}
		if len(out) == 0 || out[len(out)-1].Store != d.Store {
			out = append(out, StoreHealth{Store: d.Store})
		}
		s := &out[len(out)-1]
		connected := !d.LastHeartbeat.IsZero() && now.Sub(d.LastHeartbeat) <= a.o.ConnectedWithin
		dev := Device{
			Device: d.Device, Connected: connected, Version: d.Version, Epoch: d.Epoch,
			Watermark: d.Watermark, EventsApplied: d.EventsApplied, Backlog: d.Backlog,
			OldestUnackedS: d.OldestUnackedAge.Seconds(), ClockSkewS: d.ClockSkew.Seconds(),
			LastHeartbeat: d.LastHeartbeat.UTC(), LastEventAt: d.LastEventAt.UTC(), LastAppliedAt: d.LastAppliedAt.UTC(),
			Peripherals: peripheralsOf(d.Peripherals),
		}
		// Lag: how old the oldest event the hub has not yet applied is, as
		// the agent last reported it; zero when the agent is caught up.
		if d.Backlog > 0 {
			dev.LagSeconds = d.OldestUnackedAge.Seconds()
		}
		age := d.Unsynced.AgeAt(d.LastHeartbeat, now)
		dev.Unsynced = Unsynced{UnsyncedSales: d.Unsynced.Count, UnsyncedValue: d.Unsynced.Value, OldestUnsyncedSaleS: age.Seconds(),
			UnsyncedAlert: age > a.o.UnsyncedAlertAfter}
		s.Unsynced = s.Unsynced.add(dev.Unsynced)
		s.Devices = append(s.Devices, dev)
		s.Connected = s.Connected || connected
		s.Backlog += d.Backlog
	}
	writeJSON(w, http.StatusOK, map[string]any{"stores": out})
}

// DeadLetterView is one dead letter as the API shows it.
type DeadLetterView struct {
	ID      int64           `json:"id"`
	EventID string          `json:"event_id,omitempty"`
	Store   string          `json:"store,omitempty"`
	Device  string          `json:"device,omitempty"`
	Epoch   uint64          `json:"epoch,omitempty"`
	Seq     uint64          `json:"seq,omitempty"`
	Kind    string          `json:"kind,omitempty"`
	Subject string          `json:"subject,omitempty"`
	Reason  string          `json:"reason"`
	At      time.Time       `json:"at"`
	Payload json.RawMessage `json:"payload,omitempty"`
	Raw     string          `json:"raw,omitempty"`
	// PayloadSealed: the message may carry personal data and is kept
	// sealed at rest; no listing shows it, a replay still works.
	PayloadSealed bool `json:"payload_sealed,omitempty"`
	// ReplayedAt is when a replay (POST /v1/deadletters/{id}/replay)
	// applied it, by ReplayedBy; absent while it has not been.
	ReplayedAt time.Time `json:"replayed_at,omitzero"`
	ReplayedBy string    `json:"replayed_by,omitempty"`
}

func (a *API) deadLetters(w http.ResponseWriter, r *http.Request) {
	stores, ok := a.storeFilter(w, r) // nil: every store
	if !ok {
		return
	}
	limit, ok := limitParam(w, r, 100)
	if !ok {
		return
	}
	dls, err := a.o.Store.DeadLettersOf(r.Context(), stores, limit)
	if err != nil {
		a.internal(w, r, err)
		return
	}
	out := make([]DeadLetterView, 0, len(dls))
	for _, d := range dls {
		v := DeadLetterView{ID: d.ID, EventID: d.EventID, Store: d.Store, Device: d.Device, Epoch: d.Epoch,
			Seq: d.Seq, Kind: d.Kind, Subject: d.Subject, Reason: d.Reason, At: d.At.UTC(),
			ReplayedAt: d.ReplayedAt.UTC(), ReplayedBy: d.ReplayedBy}
		switch {
		case d.Sealed:
			v.PayloadSealed = true
		case json.Valid(d.Payload):
			v.Payload = d.Payload
		default:
			v.Raw = string(d.Payload)
		}
		out = append(out, v)
	}
	writeJSON(w, http.StatusOK, map[string]any{"dead_letters": out})
}

func (a *API) healthz(w http.ResponseWriter, r *http.Request) {
	if a.o.Ready != nil {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		if err := a.o.Ready(ctx); err != nil {
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "unavailable", "error": err.Error()})
			return
		}
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok", "version": a.o.Version})
}

// views is xs as the API shows them: never nil, so that an empty list
// is [] in JSON, not null.
func views[T, V any](xs []T, view func(T) V) []V {
	out := make([]V, 0, len(xs))
	for _, x := range xs {
		out = append(out, view(x))
	}
	return out
}

func limitParam(w http.ResponseWriter, r *http.Request, def int) (int, bool) {
	v := r.URL.Query().Get("limit")
	if v == "" {
		return def, true
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > 1000 {
		writeErr(w, http.StatusBadRequest, "limit", "must be an integer from 1 to 1000")
		return 0, false
	}
	return n, true
}

func validSKU(s string) error {
	if s == "" || len(s) > events.MaxSKULen {
		return errors.New("must be 1 to 64 characters")
	}
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] >= 0x7f {
			return errors.New("must be printable ASCII without spaces")
		}
	}
	return nil
}

func (a *API) internal(w http.ResponseWriter, r *http.Request, err error) {
	a.log.Error("api", "path", r.URL.Path, "err", err)
	writeErr(w, http.StatusInternalServerError, "", "internal error; see the hub's log")
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

func writeErr(w http.ResponseWriter, code int, field, msg string) {
	body := map[string]string{"error": msg}
	if field != "" {
		body["field"] = field
	}
	writeJSON(w, code, body)
}
