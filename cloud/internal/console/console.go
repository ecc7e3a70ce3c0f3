package console

import (
	"context"
	_ "embed"
	"log/slog"
	"net/http"
	"time"

	"github.com/omnisync/omnisync/cloud/internal/auth"
	"github.com/omnisync/omnisync/cloud/internal/inventory"
	"github.com/omnisync/omnisync/cloud/internal/store"
	"github.com/omnisync/omnisync/cloud/internal/transfers"
	"github.com/omnisync/omnisync/shared/downsync"
)

// Store is what the console reads.
type Store interface {
	SearchCatalog(ctx context.Context, q string, limit int) ([]downsync.ProductDoc, error)
	ProductByID(ctx context.Context, id string) (downsync.ProductDoc, bool, error)
	ProductBySKU(ctx context.Context, sku string) (downsync.ProductDoc, bool, error)
	StockForSKUs(ctx context.Context, skus []string) ([]store.Stock, error)
	ListStock(ctx context.Context, q store.StockQuery) ([]store.Stock, error)
	SalesSince(ctx context.Context, skus []string, since time.Time) ([]store.PositionSales, error)
	SetSafetyStock(ctx context.Context, sku, location string, qty int64) error
	PositionHistory(ctx context.Context, sku, location string, limit int) ([]store.LedgerLine, []store.PositionReservation, error)
	Devices(ctx context.Context) ([]store.DeviceStatus, error)
	DeadLettersOf(ctx context.Context, stores []string, limit int) ([]store.DeadLetter, error)
	Conflicts(ctx context.Context, openOnly bool, limit int, locations ...string) ([]store.Conflict, error)
	CartCheckoutConflicts(ctx context.Context, all bool, limit int) ([]store.CartCheckoutConflict, error)
	DismissCartConflict(ctx context.Context, cartID, actor string) error
	Transfers(ctx context.Context, q store.TransferQuery) ([]transfers.Transfer, error)
	InTransit(ctx context.Context, skus []string) (map[inventory.Key]int64, error)
	CountVariances(ctx context.Context, q store.VarianceQuery) ([]store.CountVariance, error)
	SalesPerHour(ctx context.Context, since time.Time, online string, locations []string) ([]store.HourSales, error)
	LagHistory(ctx context.Context, since time.Time, locations []string) ([]store.LagPoint, error)
	ConflictsPerDay(ctx context.Context, since time.Time, locations []string) ([]store.DayConflicts, error)
}

var _ Store = (*store.Store)(nil)

// Options configures the console.
type Options struct {
	Store  Store
	Broker *Broker
	// Auth re-authenticates open streams (nil: only when they open).
	Auth    *auth.Service
	Version string
	// OnlineLocation is the online warehouse's location, shown first.
	OnlineLocation string
	// LowStock is the available quantity below which a position is low
	// [5].
	LowStock int64
	// UnsyncedAlert: the store page and the overview warn when a device's
	// oldest sale not yet confirmed by the hub is older
	// [DefaultUnsyncedAlert]; the hub passes its --unsynced-sale-alert.
	UnsyncedAlert time.Duration
	// OnStockChange, if set, is called after the console changed
	// positions (a safety stock).
	OnStockChange func(keys []inventory.Key)
	// Acts, when set, lets those who may act on conflicts do so from the
	// conflicts page.
	Acts Actor
	// TransferOverdue: a transfer in transit longer is overdue
	// [transfers.DefaultOverdue].
	TransferOverdue time.Duration
	// OnApplied, if set, is called after a replay from the exceptions
	// page committed, with its batch's result (see api.Options.OnApplied).
	OnApplied func(res store.BatchResult)
	Now       func() time.Time
	Logger    *slog.Logger
}

// Console serves the HQ console's pages and stream.
type Console struct {
	o Options
}

// New builds the console; a nil Broker gets one of its own without NATS.
func New(o Options) *Console {
	if o.Broker == nil {
		o.Broker = NewBroker(nil, o.Logger)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.OnlineLocation == "" {
		o.OnlineLocation = "online"
	}
	if o.LowStock <= 0 {
		o.LowStock = 5
	}
	if o.UnsyncedAlert <= 0 {
		o.UnsyncedAlert = DefaultUnsyncedAlert
	}
	return &Console{o: o}
}

// Paths of the console.
const (
	StreamPath    = "/v1/stream"
	InventoryPath = "/console/inventory"
	ProductPath   = "/console/products/"
	SKUPath       = "/console/sku/"
	PositionPath  = "/console/position"
	StorePath     = "/console/stores/"
	ScriptPath    = "/console/live.js"
)

// Register adds the console's routes: the stream (inventory:read), the
// overview (stores:read) and the other pages (inventory:read; login
// redirect), and the script they load (public: it holds nothing but
// code).
func (c *Console) Register(rt *auth.Router) {
	rt.HandleFunc("GET "+OverviewPath+"{$}", auth.Page(auth.StoresRead), c.overview)
	rt.HandleFunc("GET "+StreamPath, auth.Need(auth.InventoryRead), c.stream)
	rt.HandleFunc("GET "+InventoryPath, auth.Page(auth.InventoryRead), c.inventory)
	rt.HandleFunc("GET "+ProductPath+"{id}", auth.Page(auth.InventoryRead), c.product)
	rt.HandleFunc("GET "+SKUPath+"{sku}", auth.Page(auth.InventoryRead), c.sku)
	rt.HandleFunc("GET "+PositionPath, auth.Page(auth.InventoryRead), c.position)
	rt.HandleFunc("GET "+StorePath+"{store}", auth.Page(auth.InventoryRead), c.storeLow)
	rt.HandleFunc("POST "+PositionPath+"/safety", auth.Page(auth.InventoryWrite), c.setSafety)
	rt.HandleFunc("GET "+CountsPath, auth.Page(auth.InventoryRead), c.counts)
	rt.HandleFunc("GET "+ChartsPath, auth.Page(auth.InventoryRead), c.charts)
	rt.HandleFunc("GET "+ScriptPath, auth.Public(), serveScript)
	c.registerConflicts(rt)
	c.registerExceptions(rt)
}

func (c *Console) overdue() time.Duration {
	if c.o.TransferOverdue > 0 {
		return c.o.TransferOverdue
	}
	return transfers.DefaultOverdue
}

//go:embed live.js
var liveJS []byte

func serveScript(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/javascript; charset=utf-8")
	w.Header().Set("Cache-Control", "public, max-age=300")
	_, _ = w.Write(liveJS)
}
