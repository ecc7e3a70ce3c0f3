package api

import (
	"context"
	"encoding/json"
	"path/filepath"
	"testing"
	"time"

	"github.com/omnisync/omnisync/cloud/internal/cartsvc"
	"github.com/omnisync/omnisync/cloud/internal/store"
	"github.com/omnisync/omnisync/shared/events"
	"github.com/omnisync/omnisync/shared/hlc"
	"github.com/omnisync/omnisync/shared/ids"
)

// Ensure that the web shop, holding an integration token with carts:read
// and carts:write and nothing else, runs a cart from creation to the
// order (every answer as the OpenAPI description says; the token made
// through the auth service, as HQ does when it connects a web shop); that a token
// without carts:write reads carts but may change none (403, nothing
// written); and that no token at all is 401.
func TestCartAPI_IntegrationToken(t *testing.T) {
	base, _, st, _, authSvc := cartAPIWithAuth(t, "sqlite:"+filepath.Join(t.TempDir(), "hub.db"))
	oc := newOpenAPIChecker(t)
	shop := integrationToken(t, authSvc, "webshop", "carts:read carts:write")
	reader := integrationToken(t, authSvc, "analytics", "carts:read")
	as := func(token, method, path, body string, want int) []byte {
		t.Helper()
		hdr := []string{"Authorization", "Bearer " + token}
		if token == "" {
			hdr = []string{"X-Test-Anonymous", "1"}
		}
		code, b := oc.do(method, base+path, body, hdr...)
		if code != want {
			t.Fatalf("%s %s: %d %s, want %d", method, path, code, b, want)
		}
		return b
	}

	c := decodeCart(t, as(shop, "POST", "/v1/carts", `{"channel":"app","lines":[{"sku":"SKU-1","qty":1,"unit_price":1299}]}`, 201))
	c = decodeCart(t, as(shop, "PUT", "/v1/carts/"+c.CartID+"/lines/SKU-2", `{"qty":3,"unit_price":500,"channel":"app"}`, 200))
	c = decodeCart(t, as(shop, "GET", "/v1/carts/"+c.CartID, "", 200))
	if q := lineQty(c); q["SKU-1"] != 1 || q["SKU-2"] != 3 || c.Total != 1299+1500 || len(c.Reservations) != 0 {
		t.Fatalf("cart before checkout (the app reserves on order): %+v", c)
	}
	// The reader sees it, and changes nothing.
	as(reader, "GET", "/v1/carts/"+c.CartID, "", 200)
	as(reader, "POST", "/v1/carts", `{"lines":[{"sku":"SKU-1","qty":1}]}`, 403)
	as(reader, "PUT", "/v1/carts/"+c.CartID+"/lines/SKU-1", `{"qty":9}`, 403)
	as(reader, "POST", "/v1/carts/"+c.CartID+"/claim", `{"customer":"C-1"}`, 403)
	as(reader, "POST", "/v1/carts/"+c.CartID+"/checkout", `{}`, 403)
	as("", "GET", "/v1/carts/"+c.CartID, "", 401)
	if got := decodeCart(t, as(shop, "GET", "/v1/carts/"+c.CartID, "", 200)); got.Version != c.Version || got.Closed {
		t.Fatalf("the reader's refused requests changed the cart: %+v", got)
	}

	var order CartOrder
	json.Unmarshal(as(shop, "POST", "/v1/carts/"+c.CartID+"/checkout", `{"version":`+itoa(c.Version)+`,"channel":"app"}`, 201), &order)
	if order.OrderID == "" || !order.Cart.Closed || order.ReservationID != cartsvc.OrderReservationID(order.OrderID) {
		t.Fatalf("order %+v", order)
	}
	// What is reserved where, until when: the order's lines at the online
	// location until collected, in the checkout's answer and in GET.
	for _, got := range []Cart{order.Cart, decodeCart(t, as(shop, "GET", "/v1/carts/"+c.CartID, "", 200))} {
		if len(got.Reservations) != 1 {
			t.Fatalf("reservations %+v", got.Reservations)
		}
		r := got.Reservations[0]
		if r.Kind != "order" || r.OrderID != order.OrderID || r.ReservationID != order.ReservationID || r.Location != "online" ||
			r.State != "active" || r.Until != "collected" || !r.ExpiresAt.IsZero() || len(r.Lines) != 2 {
			t.Fatalf("order reservation %+v", r)
		}
	}
	if rows, _ := st.StockForSKU(context.Background(), "SKU-2"); len(rows) != 1 || rows[0].Reserved != 3 {
		t.Fatalf("SKU-2 reserved for the order: %+v", rows)
	}
	as(shop, "POST", "/v1/carts/"+c.CartID+"/checkout", `{}`, 409)
}

// Ensure that GET /v1/carts/{id} of a cart checked out from a
// reserve-on-cart channel shows both: the cart's hold released, and the
// order's reservation active until collected, then collected once the
// warehouse hands the order over.
func TestCartAPI_ReservationsAfterCheckout(t *testing.T) {
	base, _, st, _ := cartAPI(t, "sqlite:"+filepath.Join(t.TempDir(), "hub.db"))
	oc := newOpenAPIChecker(t)
	send := func(method, path, body string, want int) []byte {
		t.Helper()
		code, b := oc.do(method, base+path, body)
		if code != want {
			t.Fatalf("%s %s: %d %s, want %d", method, path, code, b, want)
		}
		return b
	}
	c := decodeCart(t, send("POST", "/v1/carts", `{"channel":"web","lines":[{"sku":"SKU-7","qty":2,"unit_price":900}]}`, 201))
	if len(c.Reservations) != 1 || c.Reservations[0].Kind != "cart" || c.Reservations[0].Until != "expiry" || c.Reservations[0].ExpiresAt.IsZero() {
		t.Fatalf("cart hold: %+v", c.Reservations)
	}
	var order CartOrder
	json.Unmarshal(send("POST", "/v1/carts/"+c.CartID+"/checkout", `{}`, 201), &order)
	byKind := func(c Cart) map[string]CartHold {
		out := map[string]CartHold{}
		for _, r := range c.Reservations {
			out[r.Kind] = r
		}
		return out
	}
	got := byKind(decodeCart(t, send("GET", "/v1/carts/"+c.CartID, "", 200)))
	if got["cart"].State != "released" || got["order"].State != "active" || got["order"].OrderID != order.OrderID ||
		len(got["order"].Lines) != 1 || got["order"].Lines[0].Qty != 2 {
		t.Fatalf("after checkout: %+v", got)
	}
	if rows, _ := st.StockForSKU(context.Background(), "SKU-7"); len(rows) != 1 || rows[0].Reserved != 2 {
		t.Fatalf("SKU-7 reserved once, for the order: %+v", rows)
	}
	// The warehouse hands the order over.
	body, _ := json.Marshal(events.ReservationMove{ReservationID: order.ReservationID, Location: "online", Lines: []events.Line{{SKU: "SKU-7", Qty: 2}}})
	env := events.Envelope{V: events.CurrentVersion, ID: ids.NewEventID(time.Now()), Origin: events.Origin{Store: "online", Device: "wh-1", Epoch: 1, Seq: 1},
		HLC: hlc.Timestamp{Wall: time.Now().UnixMilli()}, Kind: events.KindFulfil, Data: body}
	if res, err := st.ApplyBatch(context.Background(), []store.Item{{Env: env}}); err != nil || res.Applied != 1 {
		t.Fatalf("fulfil: %+v %v", res, err)
	}
	got = byKind(decodeCart(t, send("GET", "/v1/carts/"+c.CartID, "", 200)))
	if got["order"].State != "collected" || got["order"].Until != "collected" {
		t.Fatalf("after collection: %+v", got)
	}
}
