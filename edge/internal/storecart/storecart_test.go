package storecart

import (
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/omnisync/omnisync/edge/internal/outbox"
	"github.com/omnisync/omnisync/shared/cartcode"
	"github.com/omnisync/omnisync/shared/events"
)

func price(v int64) *int64 { return &v }

func setup(t *testing.T) (*Carts, *outbox.Outbox, ed25519.PrivateKey, *http.ServeMux) {
	t.Helper()
	ob, err := outbox.Open(outbox.Options{Path: filepath.Join(t.TempDir(), "outbox.db"), Store: "S1", Device: "till-1"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ob.Close() })
	_, key, _ := ed25519.GenerateKey(nil)
	pub := key.Public().(ed25519.PublicKey)
	c := New(Options{Store: "S1", Device: "till-1", Outbox: ob, Keys: func() cartcode.Keys { return cartcode.Keys{cartcode.KeyID(pub): pub} }})
	mux := http.NewServeMux()
	c.Register(mux)
	return c, ob, key, mux
}

func code(t *testing.T, key ed25519.PrivateKey, cart string, version int64) string {
	t.Helper()
	s, err := cartcode.Sign(key, cartcode.Snapshot{Carts: []string{cart}, Version: version, IssuedAt: time.Now().Unix(),
		Lines: []cartcode.Line{{SKU: "SKU-1", Qty: 2, UnitPrice: price(1299)}, {SKU: "SKU-2", Qty: 1}}})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// outboxKinds lists the kinds of the events in the outbox, in order.
func outboxKinds(t *testing.T, ob *outbox.Outbox) ([]string, []events.Envelope) {
	t.Helper()
	recs, err := ob.Read(0, 100, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	var kinds []string
	var envs []events.Envelope
	for _, r := range recs {
		var e events.Envelope
		if err := json.Unmarshal(r.Data, &e); err != nil {
			t.Fatal(err)
		}
		kinds = append(kinds, string(e.Kind))
		envs = append(envs, e)
	}
	return kinds, envs
}

// Ensure that a scanned code is loaded (verified with the down-synced key,
// no hub needed), checked out as a sale linked to the cart once, and that a
// second checkout of the same code is refused and writes nothing.
func TestTill_ScanLoadCheckoutOnce(t *testing.T) {
	c, ob, key, mux := setup(t)
	cart := cartcode.NewCartID()
	c.Scan("scanner-1", code(t, key, cart, 3))
	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, httptest.NewRequest("GET", "/v1/carts/scanned", nil))
	var got Cart
	json.Unmarshal(rec.Body.Bytes(), &got)
	if rec.Code != 200 || got.CartID != cart || got.Version != 3 || got.Total != 2598 || got.Source != "code" {
		t.Fatalf("GET scanned: %d %s", rec.Code, rec.Body)
	}
	// The till lowers SKU-2 to 0 and checks out.
	rec = httptest.NewRecorder()
	mux.ServeHTTP(rec, httptest.NewRequest("POST", "/v1/carts/"+got.Code+"/checkout", strings.NewReader(`{"lines":[{"sku":"SKU-1","qty":2,"unit_price":1299}]}`)))
	var sale Sale
	json.Unmarshal(rec.Body.Bytes(), &sale)
	if rec.Code != 201 || sale.SaleID == "" || sale.Total != 2598 {
		t.Fatalf("checkout: %d %s", rec.Code, rec.Body)
	}
	kinds, envs := outboxKinds(t, ob)
	if strings.Join(kinds, ",") != "line_set,sale,checkout" {
		t.Fatalf("outbox: %v", kinds)
	}
	var ls events.LineSet
	json.Unmarshal(envs[0].Data, &ls)
	if len(ls.Lines) != 1 || ls.Lines[0].SKU != "SKU-2" || ls.Lines[0].Qty != 0 {
		t.Fatalf("the till's change: %+v", ls)
	}
	var co events.Checkout
	json.Unmarshal(envs[2].Data, &co)
	if co.CartID != cart || co.Version != 3 || co.Location != "S1" {
		t.Fatalf("checkout event: %+v", co)
	}
	// Again: 409, and nothing new in the outbox.
	rec = httptest.NewRecorder()
	mux.ServeHTTP(rec, httptest.NewRequest("POST", "/v1/carts/"+got.Code+"/checkout", strings.NewReader(`{}`)))
	if rec.Code != http.StatusConflict {
		t.Fatalf("second checkout: %d %s", rec.Code, rec.Body)
	}
	if k, _ := outboxKinds(t, ob); len(k) != 3 {
		t.Fatalf("second checkout wrote %v", k)
	}
}

// Ensure that codes the till cannot trust are refused with a reason.
func TestTill_Refusals(t *testing.T) {
	c, _, key, _ := setup(t)
	_, other, _ := ed25519.GenerateKey(nil)
	cart := cartcode.NewCartID()
	good := code(t, key, cart, 1)
	for name, tc := range map[string]struct {
		code string
		want error
	}{
		"unknown key":  {code(t, other, cart, 1), cartcode.ErrUnknownKey},
		"tampered":     {good[:len(good)-3] + "AAA", cartcode.ErrBadSignature},
		"nothing yet":  {"scanned", ErrNoCart},
		"unknown cart": {cartcode.NewCartID(), ErrNoCart},
	} {
		if _, err := c.Load(tc.code); !errors.Is(err, tc.want) && !errors.Is(err, cartcode.ErrMalformed) {
			t.Errorf("%s: %v, want %v", name, err, tc.want)
		}
	}
}

// Ensure that a kiosk's cart is recorded as line_set events, shown back,
// and handed off by a QR code of the hub's cart page.
func TestKiosk_CartAndHandoff(t *testing.T) {
	c, ob, _, mux := setup(t)
	c.o.HubURL = "https://hq.example.com"
	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, httptest.NewRequest("POST", "/v1/carts/lines", strings.NewReader(`{"lines":[{"sku":"SKU-1","qty":1,"unit_price":500}]}`)))
	var got struct {
		Cart
		Handoff string `json:"handoff"`
	}
	json.Unmarshal(rec.Body.Bytes(), &got)
	if rec.Code != 200 || events.ValidCartID(got.CartID) != nil || got.Handoff != "https://hq.example.com/carts/"+got.CartID {
		t.Fatalf("kiosk cart: %d %s", rec.Code, rec.Body)
	}
	rec = httptest.NewRecorder()
	mux.ServeHTTP(rec, httptest.NewRequest("POST", "/v1/carts/lines", strings.NewReader(`{"cart_id":"`+got.CartID+`","lines":[{"sku":"SKU-2","qty":3}]}`)))
	if rec.Code != 200 {
		t.Fatal(rec.Body)
	}
	cart, err := c.Load(got.CartID)
	if err != nil || len(cart.Lines) != 2 || cart.Version != 2 {
		t.Fatalf("kiosk cart: %+v %v", cart, err)
	}
	rec = httptest.NewRecorder()
	mux.ServeHTTP(rec, httptest.NewRequest("GET", "/v1/carts/"+got.CartID+"/qr", nil))
	if rec.Code != 200 || !strings.HasPrefix(rec.Body.String(), "<svg") {
		t.Fatalf("qr: %d", rec.Code)
	}
	if k, _ := outboxKinds(t, ob); strings.Join(k, ",") != "line_set,line_set" {
		t.Fatalf("outbox %v", k)
	}
}
