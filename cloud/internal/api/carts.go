package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"time"

	"github.com/omnisync/omnisync/cloud/internal/auth"
	"github.com/omnisync/omnisync/cloud/internal/cartsvc"
	"github.com/omnisync/omnisync/shared/downsync"
	"github.com/omnisync/omnisync/shared/events"
)

// The web shop's cart API (integration tokens with carts:read and
// carts:write) and the shopper's phone cart page. The page is public and
// addressed by the cart id alone: a cart id is 128 random bits, so the id
// is the capability, and the page shows that cart's lines and handoff code
// and nothing else (no customer).

// registerCarts adds the cart routes when the hub has a cart service.
func (a *API) registerCarts(rt *auth.Router) {
	if a.o.Carts == nil {
		return
	}
	rt.HandleFunc("POST /v1/carts", auth.Need(auth.CartsWrite), a.cartCreate)
	rt.HandleFunc("GET /v1/carts/{id}", auth.Need(auth.CartsRead), a.cartGet)
	rt.HandleFunc("PUT /v1/carts/{id}/lines/{sku}", auth.Need(auth.CartsWrite), a.cartSetLine)
	rt.HandleFunc("POST /v1/carts/{id}/claim", auth.Need(auth.CartsWrite), a.cartClaim)
	rt.HandleFunc("POST /v1/carts/{id}/checkout", auth.Need(auth.CartsWrite), a.cartCheckout)
	rt.HandleFunc("GET /v1/carts/{id}/qr", auth.Need(auth.CartsRead), a.cartQR)
	rt.HandleFunc("GET /carts/{id}", auth.Public(), a.cartPage)
}

// CartLine is one line of a cart answer.
type CartLine struct {
	SKU       string `json:"sku"`
	Qty       int64  `json:"qty"`
	UnitPrice *int64 `json:"unit_price,omitempty"`
	// Cart is the cart of the customer's the line comes from.
	Cart string `json:"cart"`
}

// CartHold is stock a cart holds: where, until when, and its state.
// Kind "cart" is the cart's own hold (reserve on cart), held until
// ExpiresAt; kind "order" is the reservation of the online order the cart
// was checked out into (reserve on cart or on order), held until the
// order is collected ("until": "collected", no expiry).
type CartHold struct {
	ReservationID string `json:"reservation_id"`
	Kind          string `json:"kind"`
	OrderID       string `json:"order_id,omitempty"`
	Location      string `json:"location"`
	// State: active, expired (a cart hold whose release is pending),
	// released, or collected (an order handed over).
	State     string        `json:"state"`
	Until     string        `json:"until"` // "expiry" or "collected"
	ExpiresAt time.Time     `json:"expires_at,omitzero"`
	Lines     []events.Line `json:"lines"`
}

// CartCheckout is one checkout of a cart.
type CartCheckout struct {
	EventID  string    `json:"event_id"`
	At       time.Time `json:"at"`
	Version  int64     `json:"version"`
	Store    string    `json:"store"`
	Location string    `json:"location,omitempty"`
	SaleID   string    `json:"sale_id,omitempty"`
	OrderID  string    `json:"order_id,omitempty"`
}

// Cart is the answer of the cart routes.
type Cart struct {
	CartID string `json:"cart_id"`
	// Carts are every cart of the customer's the answer stands for
	// (primary first); a checkout closes them all.
	Carts    []string   `json:"carts"`
	Customer string     `json:"customer,omitempty"`
	Policy   string     `json:"merge_policy"`
	Version  int64      `json:"version"`
	Closed   bool       `json:"closed"`
	Lines    []CartLine `json:"lines"`
	// Total is the sum of the priced lines, in minor units.
	Total        int64          `json:"total"`
	UpdatedAt    time.Time      `json:"updated_at,omitzero"`
	Reservations []CartHold     `json:"reservations"`
	Checkout     *CartCheckout  `json:"checkout,omitempty"`
	Conflicts    []CartCheckout `json:"conflicts,omitempty"`
}

func (a *API) cartOf(st cartsvc.State) Cart {
	c := Cart{CartID: st.ID, Carts: st.Carts, Customer: st.Customer, Policy: string(st.Policy), Version: st.Version, Closed: st.Closed,
		Lines: []CartLine{}, Reservations: []CartHold{}}
	if c.Carts == nil {
		c.Carts = []string{}
	}
	if !st.Updated.HLC.IsZero() {
		c.UpdatedAt = st.Updated.HLC.Time().UTC()
	}
	for _, l := range st.Lines {
		cl := CartLine{SKU: l.SKU, Qty: l.Qty, Cart: l.Cart}
		if l.Priced {
			p := l.Price
			cl.UnitPrice = &p
			c.Total += p * l.Qty
		}
		c.Lines = append(c.Lines, cl)
	}
	now := a.o.Now()
	for _, h := range st.Holds {
		state := "active"
		switch {
		case h.Released || !h.Active:
			state = "released"
		case !h.ExpiresAt.After(now):
			state = "expired"
		}
		lines := h.Lines
		if lines == nil {
			lines = []events.Line{}
		}
		c.Reservations = append(c.Reservations, CartHold{ReservationID: h.ReservationID, Kind: "cart", Location: h.Location, State: state,
			Until: "expiry", ExpiresAt: h.ExpiresAt.UTC(), Lines: lines})
	}
	if o := st.Order; o != nil {
		state := "active"
		switch o.State {
		case downsync.PickupCollected:
			state = "collected"
		case downsync.PickupCancelled:
			state = "released"
		}
		lines := o.Lines
		if lines == nil {
			lines = []events.Line{}
		}
		c.Reservations = append(c.Reservations, CartHold{ReservationID: o.ReservationID, Kind: "order", OrderID: o.OrderID,
			Location: o.Location, State: state, Until: "collected", Lines: lines})
	}
	if st.Checkout != nil {
		k := st.Checkout
		c.Checkout = &CartCheckout{EventID: k.Stamp.ID, At: k.Stamp.HLC.Time().UTC(), Version: k.Version, Store: k.Store, Location: k.Location, SaleID: k.SaleID, OrderID: k.OrderID}
	}
	for _, k := range st.Conflicts {
		c.Conflicts = append(c.Conflicts, CartCheckout{EventID: k.Stamp.ID, At: k.Stamp.HLC.Time().UTC(), Version: k.Version, Store: k.Store, Location: k.Location, SaleID: k.SaleID, OrderID: k.OrderID})
	}
	return c
}

// writeCartJSON answers a cart route: compact JSON, where the other
// routes indent theirs for people reading them, since web shops call these
// thousands of times a second and indenting an answer costs as much as
// encoding it.
func writeCartJSON(w http.ResponseWriter, code int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		writeErr(w, http.StatusInternalServerError, "", "internal error; see the hub's log")
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_, _ = w.Write(append(b, '\n'))
}

// cartErr answers a cart service error.
func (a *API) cartErr(w http.ResponseWriter, r *http.Request, err error) {
	var fe *events.FieldError
	switch {
	case errors.Is(err, cartsvc.ErrNotFound):
		writeErr(w, http.StatusNotFound, "id", "no such cart")
	case errors.Is(err, cartsvc.ErrClosed):
		writeErr(w, http.StatusConflict, "id", "the cart was checked out already")
	case errors.Is(err, cartsvc.ErrStale):
		writeErr(w, http.StatusConflict, "version", err.Error())
	case errors.Is(err, cartsvc.ErrEmpty):
		writeErr(w, http.StatusUnprocessableEntity, "lines", "the cart is empty")
	case errors.As(err, &fe):
		writeErr(w, http.StatusBadRequest, fe.Field, fe.Reason)
	case errors.Is(err, cartsvc.ErrInvalid):
		writeErr(w, http.StatusBadRequest, "", err.Error())
	default:
		a.internal(w, r, err)
	}
}

// readBody decodes a JSON body (an empty body is {}), refusing unknown
// fields so a misspelt one is an error, not silently ignored.
func readBody(w http.ResponseWriter, r *http.Request, v any) bool {
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil && err.Error() != "EOF" {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			writeErr(w, http.StatusRequestEntityTooLarge, "", "body too large")
			return false
		}
		writeErr(w, http.StatusBadRequest, "", "body: "+err.Error())
		return false
	}
	return true
}

type cartCreateBody struct {
	Customer string            `json:"customer"`
	Channel  string            `json:"channel"`
	Lines    []events.CartLine `json:"lines"`
}

func (a *API) cartCreate(w http.ResponseWriter, r *http.Request) {
	var b cartCreateBody
	if !readBody(w, r, &b) {
		return
	}
	if len(b.Channel) > 32 {
		writeErr(w, http.StatusBadRequest, "channel", "must be at most 32 characters")
		return
	}
	var lines []cartsvc.LineInput
	for _, l := range b.Lines {
		lines = append(lines, cartsvc.LineInput{SKU: l.SKU, Qty: l.Qty, UnitPrice: l.UnitPrice})
	}
	_, st, err := a.o.Carts.Create(r.Context(), b.Customer, b.Channel, lines)
	if err != nil {
		a.cartErr(w, r, err)
		return
	}
	writeCartJSON(w, http.StatusCreated, a.cartOf(st))
}

func (a *API) cartGet(w http.ResponseWriter, r *http.Request) {
	st, err := a.o.Carts.Get(r.Context(), r.PathValue("id"))
	if err != nil {
		a.cartErr(w, r, err)
		return
	}
	writeCartJSON(w, http.StatusOK, a.cartOf(st))
}

type cartLineBody struct {
	Qty       *int64 `json:"qty"`
	UnitPrice *int64 `json:"unit_price"`
	Channel   string `json:"channel"`
}

func (a *API) cartSetLine(w http.ResponseWriter, r *http.Request) {
	var b cartLineBody
	if !readBody(w, r, &b) {
		return
	}
	if b.Qty == nil {
		writeErr(w, http.StatusBadRequest, "qty", "missing (0 removes the line)")
		return
	}
	if len(b.Channel) > 32 {
		writeErr(w, http.StatusBadRequest, "channel", "must be at most 32 characters")
		return
	}
	st, err := a.o.Carts.SetLine(r.Context(), r.PathValue("id"), b.Channel, cartsvc.LineInput{SKU: r.PathValue("sku"), Qty: *b.Qty, UnitPrice: b.UnitPrice})
	if err != nil {
		a.cartErr(w, r, err)
		return
	}
	writeCartJSON(w, http.StatusOK, a.cartOf(st))
}

func (a *API) cartClaim(w http.ResponseWriter, r *http.Request) {
	var b struct {
		Customer string `json:"customer"`
	}
	if !readBody(w, r, &b) {
		return
	}
	st, err := a.o.Carts.Claim(r.Context(), r.PathValue("id"), b.Customer)
	if err != nil {
		a.cartErr(w, r, err)
		return
	}
	writeCartJSON(w, http.StatusOK, a.cartOf(st))
}

// CartOrder is the answer of a checkout: the online order.
type CartOrder struct {
	OrderID       string `json:"order_id"`
	ReservationID string `json:"reservation_id,omitempty"`
	Cart          Cart   `json:"cart"`
}

func (a *API) cartCheckout(w http.ResponseWriter, r *http.Request) {
	var b struct {
		Version int64  `json:"version"`
		Channel string `json:"channel"`
	}
	if !readBody(w, r, &b) {
		return
	}
	if len(b.Channel) > 32 || b.Version < 0 {
		writeErr(w, http.StatusBadRequest, "", "channel at most 32 characters, version not negative")
		return
	}
	o, err := a.o.Carts.Checkout(r.Context(), r.PathValue("id"), b.Version, b.Channel)
	if err != nil {
		a.cartErr(w, r, err)
		return
	}
	writeCartJSON(w, http.StatusCreated, CartOrder{OrderID: o.OrderID, ReservationID: o.ReservationID, Cart: a.cartOf(o.State)})
}

// CartCode is the JSON answer of GET /v1/carts/{id}/qr.
type CartCode struct {
	Code      string    `json:"code"`
	Version   int64     `json:"version"`
	KeyID     string    `json:"key_id"`
	IssuedAt  time.Time `json:"issued_at"`
	ExpiresAt time.Time `json:"expires_at"`
	QRVersion int       `json:"qr_version"`
	Modules   int       `json:"qr_modules"`
	// PageURL is the shopper's phone page of the cart.
	PageURL string `json:"page_url"`
}

func (a *API) cartQR(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	code, err := a.o.Carts.Code(r.Context(), id)
	if err != nil {
		a.cartErr(w, r, err)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	switch f := r.URL.Query().Get("format"); f {
	case "png":
		w.Header().Set("Content-Type", "image/png")
		_, _ = w.Write(code.QR.PNG(6))
	case "svg":
		w.Header().Set("Content-Type", "image/svg+xml")
		_, _ = w.Write([]byte(code.QR.SVG()))
	case "", "json":
		writeCartJSON(w, http.StatusOK, CartCode{Code: code.Text, Version: code.Snapshot.Version, KeyID: code.Snapshot.KeyID,
			IssuedAt: time.Unix(code.Snapshot.IssuedAt, 0).UTC(), ExpiresAt: code.Expires.UTC(),
			QRVersion: code.QR.Version, Modules: code.QR.Modules, PageURL: a.o.PublicURL + "/carts/" + id})
	default:
		writeErr(w, http.StatusBadRequest, "format", fmt.Sprintf("unknown format %q (json, png or svg)", f))
	}
}

// cartPage is the shopper's phone page of a cart: its lines and the QR code
// a till scans. Anything but an open cart with lines is "not found", the
// same answer as for an id that never existed.
func (a *API) cartPage(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	st, err := a.o.Carts.Get(r.Context(), id)
	var code cartsvc.Code
	if err == nil {
		code, err = a.o.Carts.Code(r.Context(), id)
	}
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	if err != nil {
		if !errors.Is(err, cartsvc.ErrNotFound) && !errors.Is(err, cartsvc.ErrClosed) && !errors.Is(err, cartsvc.ErrEmpty) {
			a.log.Error("cart page", "err", err)
			w.WriteHeader(http.StatusInternalServerError)
			_ = cartPageTmpl.Execute(w, cartPageData{Missing: true})
			return
		}
		w.WriteHeader(http.StatusNotFound)
		_ = cartPageTmpl.Execute(w, cartPageData{Missing: true})
		return
	}
	c := a.cartOf(st)
	d := cartPageData{Code: code.Text, QR: template.HTML(code.QR.SVG()), QRVersion: code.QR.Version, Total: cents(c.Total), Version: c.Version}
	for _, l := range c.Lines {
		pl := cartPageLine{SKU: l.SKU, Qty: l.Qty}
		if l.UnitPrice != nil {
			pl.Price = cents(*l.UnitPrice * l.Qty)
		}
		d.Lines = append(d.Lines, pl)
	}
	_ = cartPageTmpl.Execute(w, d)
}

func cents(minor int64) string {
	sign := ""
	if minor < 0 {
		sign, minor = "-", -minor
	}
	return fmt.Sprintf("%s%d.%02d", sign, minor/100, minor%100)
}

type cartPageLine struct {
	SKU   string
	Qty   int64
	Price string
}

type cartPageData struct {
	Missing   bool
	Lines     []cartPageLine
	Total     string
	Version   int64
	Code      string
	QR        template.HTML // the SVG the hub drew: no input of the shopper's
	QRVersion int
}

var cartPageTmpl = template.Must(template.New("cart").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex">
<title>Your cart</title>
<style>` + pageStyle + `
.qr{display:block;width:100%;max-width:22rem;margin:0 auto;image-rendering:pixelated}
.qr svg{width:100%;height:auto}
table{width:100%;border-collapse:collapse}td{padding:.3rem 0;border-bottom:1px solid #edf0f3}td.n{text-align:right}
</style></head>
<body><main>
{{if .Missing}}<section class="card"><h1>Cart not found</h1><p class="muted">This cart is empty, was checked out, or the link is wrong.</p></section>
{{else}}<section class="card" id="cart">
<h1>Your cart</h1>
<table id="lines">{{range .Lines}}<tr><td class="sku">{{.SKU}}</td><td class="n qty">{{.Qty}}</td><td class="n">{{.Price}}</td></tr>{{end}}</table>
<p class="price" id="total">{{.Total}}</p>
</section>
<section class="card">
<h2>Check out in store</h2>
<p class="muted">Show this code at the till.</p>
<div class="qr" id="cart-qr" data-code="{{.Code}}" data-qr-version="{{.QRVersion}}" data-version="{{.Version}}">{{.QR}}</div>
</section>{{end}}
<footer>omnisync</footer>
</main></body></html>
`))
