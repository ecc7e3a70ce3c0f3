package storecart

import (
	"context"
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
	"github.com/omnisync/omnisync/shared/downsync"
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

// Ensure that a code naming a cart the hub has said was checked out (on
// the web, or at another store's till) is refused with where and when,
// at GET, at checkout and on the till page, and sells nothing; that a
// cart the store has not heard of is still sold (the hub's conflict path
// catches a late one); and that no code older than the hub's closed-cart
// retention is accepted whatever MaxAge says.
func TestTill_RefusesCartClosedElsewhere(t *testing.T) {
	c, ob, key, mux := setup(t)
	web, other, merged := cartcode.NewCartID(), cartcode.NewCartID(), cartcode.NewCartID()
	closedAt := time.Date(2026, 3, 1, 14, 2, 0, 0, time.UTC)
	known := map[string]downsync.ClosedCartDoc{
		web:    {Cart: downsync.CartDigest(web), State: downsync.ClosedCheckedOut, Where: "online", Online: true, ClosedMS: closedAt.UnixMilli()},
		merged: {Cart: downsync.CartDigest(merged), State: downsync.ClosedCheckedOut, Where: "S2", ClosedMS: closedAt.UnixMilli()},
	}
	c.o.Closed = func(id string) (downsync.ClosedCartDoc, bool) { d, ok := known[id]; return d, ok }

	webCode := code(t, key, web, 2)
	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, httptest.NewRequest("GET", "/v1/carts/"+webCode, nil))
	if rec.Code != http.StatusConflict || !strings.Contains(rec.Body.String(), "checked out online on 1 Mar 2026 14:02 UTC") {
		t.Fatalf("GET a cart checked out online: %d %s", rec.Code, rec.Body)
	}
	rec = httptest.NewRecorder()
	mux.ServeHTTP(rec, httptest.NewRequest("POST", "/v1/carts/"+webCode+"/checkout", strings.NewReader(`{}`)))
	if rec.Code != http.StatusConflict {
		t.Fatalf("checkout of a cart checked out online: %d %s", rec.Code, rec.Body)
	}
	// A code of a merged view one of whose carts closed at another store.
	two, err := cartcode.Sign(key, cartcode.Snapshot{Carts: []string{other, merged}, Version: 5, IssuedAt: time.Now().Unix(),
		Lines: []cartcode.Line{{SKU: "SKU-1", Qty: 1}}})
	if err != nil {
		t.Fatal(err)
	}
	var ce *ClosedError
	if _, err := c.Load(two); !errors.As(err, &ce) || ce.CartID != merged || ce.Where != "S2" || !errors.Is(err, ErrClosedElsewhere) {
		t.Fatalf("merged view with a closed cart: %v", err)
	}
	c.Scan("scanner-1", two)
	rec = httptest.NewRecorder()
	mux.ServeHTTP(rec, httptest.NewRequest("GET", "/till/", nil))
	if page := rec.Body.String(); !strings.Contains(page, `id="error"`) || !strings.Contains(page, "at store S2") || strings.Contains(page, `id="checkout"`) {
		t.Fatalf("till page:\n%s", page)
	}
	rec = httptest.NewRecorder()
	mux.ServeHTTP(rec, httptest.NewRequest("POST", "/till/checkout", nil))
	if k, _ := outboxKinds(t, ob); len(k) != 0 {
		t.Fatalf("a closed cart sold: %v", k)
	}
	// A cart the store knows nothing of (its cache behind, or offline) is
	// sold: the hub records a late second checkout as a conflict.
	if _, err := c.Checkout(context.Background(), mustLoad(t, c, code(t, key, other, 1)), nil); err != nil {
		t.Fatal(err)
	}

	// However long MaxAge is set, a code older than the retention is too
	// old: the store could no longer know whether its cart closed.
	long := New(Options{Store: "S1", Device: "till-2", Outbox: ob, Keys: c.o.Keys, MaxAge: 30 * 24 * time.Hour})
	old, _ := cartcode.Sign(key, cartcode.Snapshot{Carts: []string{cartcode.NewCartID()}, Version: 1,
		IssuedAt: time.Now().Add(-downsync.ClosedCartRetention - time.Hour).Unix(), Lines: []cartcode.Line{{SKU: "SKU-1", Qty: 1}}})
	if _, err := long.Load(old); !errors.Is(err, cartcode.ErrExpired) {
		t.Fatalf("a code older than the retention: %v", err)
	}
}

func mustLoad(t *testing.T, c *Carts, code string) Cart {
	t.Helper()
	cart, err := c.Load(code)
	if err != nil {
		t.Fatal(err)
	}
	return cart
}
