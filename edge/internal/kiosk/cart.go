package kiosk

import (
	"context"
	_ "embed"
	"errors"
	"html/template"
	"net/http"
	"strconv"
	"strings"

	"github.com/omnisync/omnisync/edge/internal/storecart"
	"github.com/omnisync/omnisync/shared/downsync"
	"github.com/omnisync/omnisync/shared/events"
)

// The kiosk's cart screen: the shopper adds the product she is looking at
// to a cart, sees the cart, and takes it to her phone (or to the till) by
// the QR code the agent draws for it. The cart is the agent's kiosk cart
// (storecart): each change is a line_set through the outbox, exactly as
// the agent's POST /v1/carts/lines records one, and the QR is the agent's
// GET /v1/carts/{id}/qr. A cart belongs to one kiosk session: its id rides
// in a cookie bound to the session id, so "Done" or an idle timeout hands
// the next shopper an empty cart.

// Carts is the agent's kiosk carts (storecart.Carts).
type Carts interface {
	SetLines(ctx context.Context, id, channel string, lines []events.CartLine) (string, error)
	Load(code string) (storecart.Cart, error)
}

// CartCookie holds the session's cart: session id, a dot, cart id.
const CartCookie = "omni_kiosk_cart"

// maxCartQty bounds one line's quantity from the kiosk.
const maxCartQty = 99

//go:embed cart.html
var cartHTML string

func init() { template.Must(templates.Parse(cartHTML)) }

// cartView is the cart screen.
type cartView struct {
	// Version counts the cart's changes at this kiosk.
	Version int64
	Lines   []cartLine
	Total   string
	QR      string
	// Watch is polled while the cart waits for the till (cartSold).
	Watch string
}

type cartLine struct {
	SKU, Name, Variant, Price string
	Qty                       int64
}

func (k *Kiosk) registerCart(mux *http.ServeMux) {
	if k.o.Carts == nil {
		return
	}
	mux.HandleFunc("GET /kiosk/cart", k.cartPage)
	mux.HandleFunc("POST /kiosk/cart/add", k.cartAdd)
	mux.HandleFunc("POST /kiosk/cart/set", k.cartSet)
	mux.HandleFunc("GET /kiosk/cart/sold", k.cartSold)
}

// cartOf returns the session's cart id, "" when it has none.
func cartOf(r *http.Request, s session) string {
	c, err := r.Cookie(CartCookie)
	if err != nil {
		return ""
	}
	sid, id, ok := strings.Cut(c.Value, ".")
	if !ok || sid != s.ID || events.ValidCartID(id) != nil {
		return ""
	}
	return id
}

func setCartCookie(w http.ResponseWriter, r *http.Request, s session, id string) {
	http.SetCookie(w, &http.Cookie{Name: CartCookie, Value: s.ID + "." + id, Path: "/kiosk",
		HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil})
}

// cartURL is the cart screen's address for place p.
func (p place) cartURL() string { return withQuery("/kiosk/cart", p.values()) }

// cartPage shows the session's cart and its handoff QR.
func (k *Kiosk) cartPage(w http.ResponseWriter, r *http.Request) {
	p := placeOf(r.URL.Query())
	s := k.session(w, r, true)
	if u := k.purchaseSurveyURL(r, p, s); u != "" {
		// Checked out at the till: the cart is paid, the survey is next.
		http.Redirect(w, r, u, http.StatusSeeOther)
		return
	}
	pg := k.newPage(p, s, "cart", "Your cart")
	pg.CartOn, pg.CartURL = true, p.cartURL()
	cv := &cartView{Total: FormatPrice(0, "")}
	if id := cartOf(r, s); id != "" {
		if c, err := k.o.Carts.Load(id); err == nil && len(c.Lines) > 0 {
			cv = k.cartView(r.Context(), c)
			if c.OrderID != "" {
				// Checked out, and HQ asks no survey: nothing to watch for.
				cv.Watch = ""
				pg.Banner = &banner{Kind: "ok", Text: "Paid at the till: thank you for your purchase!"}
			}
		}
	}
	pg.Cart = cv
	k.render(w, http.StatusOK, pg)
}

func (k *Kiosk) cartView(ctx context.Context, c storecart.Cart) *cartView {
	cv := &cartView{QR: "/v1/carts/" + c.CartID + "/qr", Version: c.Version, Watch: "/kiosk/cart/sold"}
	currency := ""
	var total int64
	for _, l := range c.Lines {
		if l.Qty <= 0 {
			continue
		}
		cl := cartLine{SKU: l.SKU, Name: l.SKU, Qty: l.Qty}
		if k.o.Products != nil {
			if v, err := k.o.Products.Lookup(ctx, l.SKU); err == nil {
				cl.Name = v.Product.Name
				if i := selectedOf(v); i >= 0 && v.Variants[i].SKU == l.SKU {
					cl.Variant = describe(v.Variants[i].VariantDoc)
					currency = v.Variants[i].Currency
				}
			}
		}
		if l.UnitPrice != nil {
			cl.Price = FormatPrice(*l.UnitPrice*l.Qty, currency)
			total += *l.UnitPrice * l.Qty
		}
		cv.Lines = append(cv.Lines, cl)
	}
	cv.Total = FormatPrice(total, currency)
	return cv
}

// cartAdd adds one of the product being viewed (its selected variant) to
// the session's cart, starting one if need be.
func (k *Kiosk) cartAdd(w http.ResponseWriter, r *http.Request) {
	p, s, ok := k.readForm(w, r)
	if !ok {
		return
	}
	sku := strings.TrimSpace(r.PostForm.Get("sku"))
	if events.ValidSKU(sku) != nil || k.o.Products == nil {
		k.message(w, http.StatusBadRequest, p, s, message{Heading: "We couldn't add that", Detail: "Please scan the product again."})
		return
	}
	v, err := k.o.Products.Lookup(r.Context(), sku)
	i := -1
	if err == nil {
		i = selectedOf(v)
	}
	if i < 0 || v.Variants[i].SKU != sku {
		k.message(w, http.StatusNotFound, p, s, message{Heading: "We couldn't add that", Detail: "This kiosk doesn't know that product.", Code: sku})
		return
	}
	qty := int64(1)
	id := cartOf(r, s)
	if id != "" {
		if c, err := k.o.Carts.Load(id); err == nil {
			for _, l := range c.Lines {
				if l.SKU == sku {
					qty = min(l.Qty+1, maxCartQty)
				}
			}
		}
	}
	price := v.Variants[i].PriceMinor
	k.setLine(w, r, p, s, id, events.CartLine{SKU: sku, Qty: qty, UnitPrice: &price})
}

// cartSet sets a line's quantity (0 removes it).
func (k *Kiosk) cartSet(w http.ResponseWriter, r *http.Request) {
	p, s, ok := k.readForm(w, r)
	if !ok {
		return
	}
	sku := strings.TrimSpace(r.PostForm.Get("sku"))
	qty, err := strconv.ParseInt(r.PostForm.Get("qty"), 10, 64)
	id := cartOf(r, s)
	if events.ValidSKU(sku) != nil || err != nil || qty < 0 || qty > maxCartQty || id == "" {
		k.message(w, http.StatusBadRequest, p, s, message{Heading: "We couldn't change your cart", Detail: "Please try again."})
		return
	}
	line := events.CartLine{SKU: sku, Qty: qty}
	if c, err := k.o.Carts.Load(id); err == nil {
		for _, l := range c.Lines {
			if l.SKU == sku {
				line.UnitPrice = l.UnitPrice
			}
		}
	}
	k.setLine(w, r, p, s, id, line)
}

// setLine records the line (a line_set through the outbox) and shows the
// cart.
func (k *Kiosk) setLine(w http.ResponseWriter, r *http.Request, p place, s session, id string, l events.CartLine) {
	id, err := k.o.Carts.SetLines(r.Context(), id, "kiosk", []events.CartLine{l})
	if err != nil {
		var fe *events.FieldError
		status, text := http.StatusBadRequest, "That can't go in a cart."
		if !errors.As(err, &fe) && !errors.Is(err, events.ErrInvalid) {
			status, text = k.appendFailure(err, "cart")
		}
		k.message(w, status, p, s, message{Heading: "We couldn't change your cart", Detail: text})
		return
	}
	k.log.Info("kiosk: cart changed", "cart", downsync.CartDigest(id), "sku", l.SKU, "qty", l.Qty)
	setCartCookie(w, r, s, id)
	// The version in the address makes each change a new page (not a
	// reload of the one the form was on).
	v := p.values()
	if c, err := k.o.Carts.Load(id); err == nil {
		v.Set("v", strconv.FormatInt(c.Version, 10))
	}
	http.Redirect(w, r, withQuery("/kiosk/cart", v), http.StatusSeeOther)
}
