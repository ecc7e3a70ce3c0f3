// Package storecart is the store's side of carts: the till loads a
// shopper's cart from the code her phone shows (scanned by the store's
// serial scanners, or typed), changes it, and checks it out as a sale
// linked to the cart; the kiosk and the mirror fill carts of their own and
// hand them to the shopper's phone by a QR code.
//
// A cart code is verified with the hub's public keys the agent keeps from
// the down-sync (productcache.CartKeys), so a till accepts it with its
// uplink down; the sale and the checkout go through the outbox like every
// event and reconcile when the store is back online.
//
// Guarantees: one code (cart and version) is checked out at most once by
// this agent (the checkout's idempotency key in the outbox, kept for the
// code's lifetime): a second attempt answers 409 and writes nothing. A
// code naming a cart the hub has told the store was checked out (on the
// web, at another till: productcache.ClosedCart, down-synced) is refused
// the same way, with where and when it closed. What the store has not
// heard of yet it cannot refuse: two agents that both check the same code
// out while offline, or a till whose down-sync is behind a web checkout,
// both sell, and the hub records the later checkout as a conflict for HQ.
//
// Policy on old codes: a till accepts a code for MaxAge after it was
// signed, and never longer than downsync.ClosedCartRetention (how long the
// hub keeps telling stores about a closed cart): past that it could no
// longer know whether the cart was checked out, so it refuses the code as
// too old and the shopper's phone shows a fresh one.
package storecart

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/omnisync/omnisync/edge/internal/outbox"
	"github.com/omnisync/omnisync/shared/cartcode"
	"github.com/omnisync/omnisync/shared/downsync"
	"github.com/omnisync/omnisync/shared/events"
)

// Appender is the outbox as the carts need it.
type Appender interface {
	Append(ctx context.Context, drafts []events.Draft) ([]events.Envelope, error)
	AppendOnce(ctx context.Context, key string, drafts []events.Draft) ([]events.Envelope, bool, error)
}

// Options configure the store's carts.
type Options struct {
	Store, Device string
	Outbox        Appender
	// Keys returns the hub's public keys of cart codes.
	Keys func() cartcode.Keys
	// Closed reports what the hub has told the store of a cart checked
	// out (productcache.ClosedCart); nil: nothing.
	Closed func(cartID string) (downsync.ClosedCartDoc, bool)
	// HubURL is the hub's public URL: a kiosk cart's QR opens
	// HubURL/carts/{id} on the shopper's phone. Empty: the QR carries the
	// cart id alone.
	HubURL string
	// MaxAge is how old a code a till accepts [24h, the hub's default;
	// at most downsync.ClosedCartRetention].
	MaxAge time.Duration
	Now    func() time.Time
	Logger *slog.Logger
}

// Carts serves the store's cart routes.
type Carts struct {
	o   Options
	log *slog.Logger

	mu      sync.Mutex
	scanned *Scanned
	// local are the carts this agent's kiosk filled, by id: what a
	// kiosk shows; bounded (oldest dropped).
	local map[string]*localCart
	order []string
}

// Scanned is the last cart code a scanner read.
type Scanned struct {
	Code   string    `json:"code"`
	Device string    `json:"device"`
	At     time.Time `json:"at"`
}

type localCart struct {
	lines   map[string]events.CartLine
	version int64
	// order is the sale's order id once this agent's till checked the
	// cart out: the receipt a post-purchase survey on the kiosk is about.
	order string
}

const maxLocal = 1000

// New makes the store's carts.
func New(o Options) *Carts {
	if o.MaxAge <= 0 {
		o.MaxAge = 24 * time.Hour
	}
	o.MaxAge = min(o.MaxAge, downsync.ClosedCartRetention)
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	o.HubURL = strings.TrimRight(o.HubURL, "/")
	return &Carts{o: o, log: o.Logger.With("store", o.Store, "device", o.Device), local: map[string]*localCart{}}
}

// Scan takes a code a scanner read (devices routes cart codes here, not
// to the product lookup).
func (c *Carts) Scan(device, code string) {
	c.mu.Lock()
	c.scanned = &Scanned{Code: code, Device: device, At: c.o.Now()}
	c.mu.Unlock()
	c.log.Info("cart code scanned", "scanner", device)
}

// Register adds the routes: GET /v1/carts/{code} (a code, "scanned" for
// the last one a scanner read, or a kiosk cart's id), POST
// /v1/carts/{code}/checkout, POST /v1/carts/lines (a kiosk's edit),
// GET /v1/carts/{id}/qr (a kiosk cart's QR) and the till page /till/.
func (c *Carts) Register(mux *http.ServeMux) {
	mux.HandleFunc("GET /v1/carts/{code}", c.get)
	mux.HandleFunc("POST /v1/carts/{code}/checkout", c.checkout)
	mux.HandleFunc("POST /v1/carts/lines", c.setLines)
	mux.HandleFunc("GET /v1/carts/{code}/qr", c.qr)
	mux.HandleFunc("GET /till/{$}", c.tillPage)
	mux.HandleFunc("POST /till/checkout", c.tillCheckout)
}

// Line is one line of a cart the till shows.
type Line struct {
	SKU       string `json:"sku"`
	Qty       int64  `json:"qty"`
	UnitPrice *int64 `json:"unit_price,omitempty"`
}

// Cart is a cart as the agent answers it.
type Cart struct {
	CartID  string   `json:"cart_id"`
	Carts   []string `json:"carts"`
	Version int64    `json:"version"`
	Lines   []Line   `json:"lines"`
	Total   int64    `json:"total"`
	// Source: "code" (a signed snapshot, verified here) or "kiosk" (a cart
	// this agent's kiosk filled).
	Source   string    `json:"source"`
	KeyID    string    `json:"key_id,omitempty"`
	IssuedAt time.Time `json:"issued_at,omitzero"`
	Code     string    `json:"code,omitempty"`
	// ScannedAt is when a scanner read it (for "scanned").
	ScannedAt time.Time `json:"scanned_at,omitzero"`
	// OrderID is set on a kiosk cart this agent's till checked out: the
	// sale's order id (its receipt).
	OrderID string `json:"order_id,omitempty"`
}

// Errors of Load.
var (
	// ErrNoCart: nothing scanned yet, or no such kiosk cart.
	ErrNoCart = errors.New("storecart: no such cart")
	// ErrCheckedOut: this agent checked the code out already.
	ErrCheckedOut = errors.New("storecart: cart already checked out here")
	// ErrClosedElsewhere: the hub has told the store the cart was checked
	// out (a *ClosedError says where and when).
	ErrClosedElsewhere = errors.New("storecart: cart already checked out")
)

// ClosedError is a code refused because its cart was checked out
// elsewhere; it unwraps to ErrClosedElsewhere.
type ClosedError struct {
	CartID string
	Where  string
	Online bool
	At     time.Time
}

func (e *ClosedError) Error() string {
	where := "at store " + e.Where
	if e.Online {
		where = "online"
	}
	return fmt.Sprintf("this cart was already checked out %s on %s: do not sell it again", where, e.At.UTC().Format("2 Jan 2006 15:04 UTC"))
}

func (e *ClosedError) Unwrap() error { return ErrClosedElsewhere }

// Load reads a cart: a cart code (verified with the hub's keys), "scanned"
// (the last code a scanner read) or a kiosk cart's id.
func (c *Carts) Load(code string) (Cart, error) {
	var scannedAt time.Time
	if code == "scanned" {
		c.mu.Lock()
		s := c.scanned
		c.mu.Unlock()
		if s == nil {
			return Cart{}, ErrNoCart
		}
		code, scannedAt = s.Code, s.At
	}
	if cartcode.IsCode(code) {
		snap, err := cartcode.Verify(code, c.o.Keys(), c.o.Now(), c.o.MaxAge)
		if err != nil {
			return Cart{}, err
		}
		if err := c.closedElsewhere(snap.Carts); err != nil {
			return Cart{}, err
		}
		out := Cart{CartID: snap.Carts[0], Carts: snap.Carts, Version: snap.Version, Source: "code", KeyID: snap.KeyID,
			IssuedAt: time.Unix(snap.IssuedAt, 0).UTC(), Code: strings.TrimSpace(code), Lines: []Line{}, ScannedAt: scannedAt}
		for _, l := range snap.Lines {
			out.Lines = append(out.Lines, Line{SKU: l.SKU, Qty: l.Qty, UnitPrice: l.UnitPrice})
		}
		out.Total = total(out.Lines)
		return out, nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	lc := c.local[code]
	if lc == nil {
		return Cart{}, ErrNoCart
	}
	out := Cart{CartID: code, Carts: []string{code}, Version: lc.version, Source: "kiosk", Lines: []Line{}, OrderID: lc.order}
	for _, l := range lc.lines {
		if l.Qty > 0 {
			out.Lines = append(out.Lines, Line{SKU: l.SKU, Qty: l.Qty, UnitPrice: l.UnitPrice})
		}
	}
	slices.SortFunc(out.Lines, func(a, b Line) int { return strings.Compare(a.SKU, b.SKU) })
	out.Total = total(out.Lines)
	return out, nil
}

// closedElsewhere refuses a code any of whose carts the hub has said was
// checked out: a checkout closes every cart of the code's view.
func (c *Carts) closedElsewhere(ids []string) error {
	if c.o.Closed == nil {
		return nil
	}
	for _, id := range ids {
		if d, ok := c.o.Closed(id); ok {
			c.log.Info("cart code refused: checked out elsewhere", "cart", downsync.CartDigest(id), "where", d.Where)
			return &ClosedError{CartID: id, Where: d.Where, Online: d.Online, At: time.UnixMilli(d.ClosedMS)}
		}
	}
	return nil
}

func total(ls []Line) int64 {
	var t int64
	for _, l := range ls {
		if l.UnitPrice != nil {
			t += *l.UnitPrice * l.Qty
		}
	}
	return t
}

// Sale is a checked-out cart.
type Sale struct {
	SaleID  string   `json:"sale_id"`
	CartID  string   `json:"cart_id"`
	Carts   []string `json:"carts"`
	Version int64    `json:"version"`
	Lines   []Line   `json:"lines"`
	Total   int64    `json:"total"`
}

// Checkout sells cart (as loaded, with lines replaced by the till's when
// given) at this store: the changed lines as line_set, a sale of the lines
// and a checkout of each cart naming the sale, in one outbox append, once
// per code.
func (c *Carts) Checkout(ctx context.Context, cart Cart, lines []Line) (Sale, error) {
	if lines == nil {
		lines = cart.Lines
	}
	var sold []events.Line
	var cls []events.CartLine
	for _, l := range lines {
		if l.Qty <= 0 {
			continue
		}
		sold = append(sold, events.Line{SKU: l.SKU, Qty: l.Qty, UnitPrice: l.UnitPrice})
		cls = append(cls, events.CartLine{SKU: l.SKU, Qty: l.Qty, UnitPrice: l.UnitPrice})
	}
	if len(sold) == 0 {
		return Sale{}, fmt.Errorf("%w: nothing to sell", events.ErrInvalid)
	}
	// The till's changes, so the cart at the hub ends as it was sold.
	was := map[string]int64{}
	for _, l := range cart.Lines {
		was[l.SKU] = l.Qty
	}
	now := map[string]bool{}
	var changed []events.CartLine
	for _, l := range lines {
		now[l.SKU] = true
		if was[l.SKU] != l.Qty {
			changed = append(changed, events.CartLine{SKU: l.SKU, Qty: max(l.Qty, 0), UnitPrice: l.UnitPrice})
		}
	}
	for _, l := range cart.Lines {
		if !now[l.SKU] {
			changed = append(changed, events.CartLine{SKU: l.SKU, Qty: 0})
		}
	}
	var drafts []events.Draft
	add := func(k events.Kind, v any) error {
		b, _ := json.Marshal(v)
		data, err := events.ValidateBody(k, b)
		if err != nil {
			return err
		}
		drafts = append(drafts, events.Draft{Kind: k, Data: data})
		return nil
	}
	if len(changed) > 0 {
		if err := add(events.KindLineSet, events.LineSet{CartID: cart.CartID, Lines: changed, Channel: "till"}); err != nil {
			return Sale{}, err
		}
	}
	// The sale first: its event id is what the checkouts name. The outbox
	// mints ids, so the checkout carries the cart and the sale carries the
	// order id (the cart), and the two are linked both ways.
	orderID := OrderID(cart.CartID)
	if err := add(events.KindSale, events.StockMove{Location: c.o.Store, Lines: sold, OrderID: orderID, Channel: "store"}); err != nil {
		return Sale{}, err
	}
	for _, id := range cart.Carts {
		if err := add(events.KindCheckout, events.Checkout{CartID: id, Version: cart.Version, Lines: cls, Location: c.o.Store,
			SaleID: orderID, Channel: "till"}); err != nil {
			return Sale{}, err
		}
	}
	envs, replayed, err := c.o.Outbox.AppendOnce(ctx, fmt.Sprintf("cart-checkout:%s:%d", cart.CartID, cart.Version), drafts)
	if replayed || errors.Is(err, outbox.ErrKeyReused) {
		return Sale{}, ErrCheckedOut
	}
	if err != nil {
		return Sale{}, err
	}
	saleID := ""
	for _, e := range envs {
		if e.Kind == events.KindSale {
			saleID = e.ID
		}
	}
	c.log.Info("cart checked out", "cart", downsync.CartDigest(cart.CartID), "version", cart.Version, "sale", saleID)
	out := Sale{SaleID: saleID, CartID: cart.CartID, Carts: cart.Carts, Version: cart.Version}
	for _, l := range sold {
		out.Lines = append(out.Lines, Line{SKU: l.SKU, Qty: l.Qty, UnitPrice: l.UnitPrice})
	}
	out.Total = total(out.Lines)
	c.mu.Lock()
	if c.scanned != nil && c.scanned.Code == cart.Code {
		c.scanned = nil
	}
	for _, id := range cart.Carts {
		if lc := c.local[id]; lc != nil {
			lc.order = orderID
		}
	}
	c.mu.Unlock()
	return out, nil
}

// OrderID is the order id of the sale a checkout of cart makes: the
// receipt number a post-purchase survey is about.
func OrderID(cartID string) string { return "cart-" + cartID }

// SetLines records a kiosk's edit of its cart (a new one when id is
// empty) as a line_set through the outbox.
func (c *Carts) SetLines(ctx context.Context, id, channel string, lines []events.CartLine) (string, error) {
	if id == "" {
		id = cartcode.NewCartID()
	} else if err := events.ValidCartID(id); err != nil {
		return "", &events.FieldError{Field: "cart_id", Reason: err.Error()}
	}
	if channel == "" {
		channel = "kiosk"
	}
	b, _ := json.Marshal(events.LineSet{CartID: id, Lines: lines, Channel: channel})
	data, err := events.ValidateBody(events.KindLineSet, b)
	if err != nil {
		return "", err
	}
	if _, err := c.o.Outbox.Append(ctx, []events.Draft{{Kind: events.KindLineSet, Data: data}}); err != nil {
		return "", err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	lc := c.local[id]
	if lc == nil {
		lc = &localCart{lines: map[string]events.CartLine{}}
		c.local[id] = lc
		c.order = append(c.order, id)
		if len(c.order) > maxLocal {
			delete(c.local, c.order[0])
			c.order = c.order[1:]
		}
	}
	for _, l := range lines {
		lc.lines[l.SKU] = l
	}
	lc.version++
	return id, nil
}

// HandoffURL is what a kiosk cart's QR carries: the shopper's phone page
// of the cart at the hub, or the id alone when the hub's URL is unknown.
func (c *Carts) HandoffURL(id string) string {
	if c.o.HubURL == "" {
		return id
	}
	return c.o.HubURL + "/carts/" + id
}
