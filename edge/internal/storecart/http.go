package storecart

import (
	"encoding/json"
	"errors"
	"html/template"
	"net/http"
	"strconv"

	"github.com/omnisync/omnisync/edge/internal/outbox"
	"github.com/omnisync/omnisync/shared/cartcode"
	"github.com/omnisync/omnisync/shared/events"
)

const maxBody = 1 << 20

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

func writeErr(w http.ResponseWriter, code int, field, msg string) {
	body := map[string]string{"error": msg}
	if field != "" {
		body["field"] = field
	}
	writeJSON(w, code, body)
}

// loadErr answers a Load error.
func (c *Carts) loadErr(w http.ResponseWriter, err error) {
	switch {
	case errors.Is(err, ErrNoCart), errors.Is(err, cartcode.ErrNotCartCode):
		writeErr(w, http.StatusNotFound, "code", "no such cart")
	case errors.Is(err, ErrClosedElsewhere):
		// Closed on the web or at another till: no sale.
		writeErr(w, http.StatusConflict, "code", err.Error())
	case errors.Is(err, cartcode.ErrUnknownKey):
		// The hub's key has not reached this store yet.
		writeErr(w, http.StatusUnprocessableEntity, "code", "signed by a key this store does not know yet")
	case errors.Is(err, cartcode.ErrExpired):
		writeErr(w, http.StatusUnprocessableEntity, "code", "the code is too old: ask the shopper to refresh it")
	case errors.Is(err, cartcode.ErrBadSignature), errors.Is(err, cartcode.ErrMalformed):
		writeErr(w, http.StatusUnprocessableEntity, "code", "not a valid cart code")
	default:
		c.log.Error("cart", "err", err)
		writeErr(w, http.StatusInternalServerError, "", "internal error")
	}
}

func (c *Carts) get(w http.ResponseWriter, r *http.Request) {
	cart, err := c.Load(r.PathValue("code"))
	if err != nil {
		c.loadErr(w, err)
		return
	}
	writeJSON(w, http.StatusOK, cart)
}

func (c *Carts) checkout(w http.ResponseWriter, r *http.Request) {
	cart, err := c.Load(r.PathValue("code"))
	if err != nil {
		c.loadErr(w, err)
		return
	}
	var body struct {
		Lines []Line `json:"lines"`
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&body); err != nil && err.Error() != "EOF" {
		writeErr(w, http.StatusBadRequest, "", "body: "+err.Error())
		return
	}
	c.answerCheckout(w, r, cart, body.Lines)
}

func (c *Carts) answerCheckout(w http.ResponseWriter, r *http.Request, cart Cart, lines []Line) {
	sale, err := c.Checkout(r.Context(), cart, lines)
	var fe *events.FieldError
	switch {
	case err == nil:
		writeJSON(w, http.StatusCreated, sale)
	case errors.Is(err, ErrCheckedOut):
		writeErr(w, http.StatusConflict, "code", "this cart was checked out already")
	case errors.As(err, &fe):
		writeErr(w, http.StatusBadRequest, fe.Field, fe.Reason)
	case errors.Is(err, events.ErrInvalid):
		writeErr(w, http.StatusBadRequest, "lines", err.Error())
	case errors.Is(err, outbox.ErrFull):
		writeErr(w, http.StatusInsufficientStorage, "", "the outbox is full")
	default:
		c.log.Error("cart checkout", "err", err)
		writeErr(w, http.StatusInternalServerError, "", "internal error")
	}
}

func (c *Carts) setLines(w http.ResponseWriter, r *http.Request) {
	var body struct {
		CartID  string            `json:"cart_id"`
		Channel string            `json:"channel"`
		Lines   []events.CartLine `json:"lines"`
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&body); err != nil {
		writeErr(w, http.StatusBadRequest, "", "body: "+err.Error())
		return
	}
	id, err := c.SetLines(r.Context(), body.CartID, body.Channel, body.Lines)
	var fe *events.FieldError
	switch {
	case errors.As(err, &fe):
		writeErr(w, http.StatusBadRequest, fe.Field, fe.Reason)
		return
	case errors.Is(err, outbox.ErrFull):
		writeErr(w, http.StatusInsufficientStorage, "", "the outbox is full")
		return
	case err != nil:
		c.log.Error("kiosk cart", "err", err)
		writeErr(w, http.StatusInternalServerError, "", "internal error")
		return
	}
	cart, _ := c.Load(id)
	writeJSON(w, http.StatusOK, struct {
		Cart
		Handoff string `json:"handoff"`
	}{cart, c.HandoffURL(id)})
}

// qr draws a kiosk cart's handoff QR (SVG): the phone opens the cart.
func (c *Carts) qr(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("code")
	if _, err := c.Load(id); err != nil || events.ValidCartID(id) != nil {
		writeErr(w, http.StatusNotFound, "code", "no such cart")
		return
	}
	q, err := cartcode.Render(c.HandoffURL(id))
	if err != nil {
		writeErr(w, http.StatusInternalServerError, "", "internal error")
		return
	}
	w.Header().Set("Content-Type", "image/svg+xml")
	_, _ = w.Write([]byte(q.SVG()))
}

// tillPage shows the cart a scanner read last, and a button that checks it
// out. It refreshes itself every second while it waits for a scan.
func (c *Carts) tillPage(w http.ResponseWriter, r *http.Request) {
	d := tillData{Sold: r.URL.Query().Get("sold"), Total: "0.00"}
	cart, err := c.Load("scanned")
	switch {
	case err == nil:
		d.Cart = &cart
		d.Total = cents(cart.Total)
		for _, l := range cart.Lines {
			p := ""
			if l.UnitPrice != nil {
				p = cents(*l.UnitPrice * l.Qty)
			}
			d.Lines = append(d.Lines, tillLine{SKU: l.SKU, Qty: l.Qty, Price: p})
		}
	case errors.Is(err, ErrNoCart):
	default:
		d.Error = "This code cannot be used: " + err.Error()
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	_ = tillTmpl.Execute(w, d)
}

func (c *Carts) tillCheckout(w http.ResponseWriter, r *http.Request) {
	cart, err := c.Load("scanned")
	if err != nil {
		http.Redirect(w, r, "/till/", http.StatusSeeOther)
		return
	}
	sale, err := c.Checkout(r.Context(), cart, nil)
	if errors.Is(err, ErrCheckedOut) {
		err = errors.New("this cart was checked out at this store already")
	}
	if err != nil {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.WriteHeader(http.StatusConflict)
		_ = tillTmpl.Execute(w, tillData{Error: "Not checked out: " + err.Error(), Total: "0.00"})
		return
	}
	http.Redirect(w, r, "/till/?sold="+sale.SaleID, http.StatusSeeOther)
}

func cents(minor int64) string {
	s := strconv.FormatInt(minor/100, 10) + "."
	if m := minor % 100; m < 10 {
		s += "0" + strconv.FormatInt(m, 10)
	} else {
		s += strconv.FormatInt(m, 10)
	}
	return s
}

type tillLine struct {
	SKU   string
	Qty   int64
	Price string
}

type tillData struct {
	Cart  *Cart
	Lines []tillLine
	Total string
	Sold  string
	Error string
}

var tillTmpl = template.Must(template.New("till").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Till</title>
{{if not .Cart}}<meta http-equiv="refresh" content="1">{{end}}
<style>body{font:16px system-ui,sans-serif;margin:1rem}table{border-collapse:collapse}td{padding:.2rem .8rem;border-bottom:1px solid #ddd}</style>
</head><body>
<h1>Till</h1>
{{with .Sold}}<p id="sold">Sold: {{.}}</p>{{end}}
{{with .Error}}<p id="error">{{.}}</p>{{end}}
{{with .Cart}}<section id="cart" data-cart="{{.CartID}}" data-version="{{.Version}}">
<p>Cart <code>{{.CartID}}</code>, version {{.Version}} (verified, key {{.KeyID}})</p>
<table id="lines">{{range $.Lines}}<tr><td class="sku">{{.SKU}}</td><td class="qty">{{.Qty}}</td><td>{{.Price}}</td></tr>{{end}}</table>
<p id="total">{{$.Total}}</p>
<form method="post" action="/till/checkout"><button id="checkout" type="submit">Check out</button></form>
</section>{{else}}<p id="waiting">Scan the shopper's cart code.</p>{{end}}
</body></html>
`))
