package api

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"

	"github.com/omnisync/omnisync/cloud/internal/auth"
	"github.com/omnisync/omnisync/cloud/internal/cartsvc"
	"github.com/omnisync/omnisync/cloud/internal/store"
	"github.com/omnisync/omnisync/shared/cartcode"
)

// fakeClock is a clock the test moves.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// cartAPI serves the API with a running cart service over a real SQLite
// store; the web channel reserves on cart for a minute.
func cartAPI(t testing.TB, dsn string) (base string, svc *cartsvc.Service, st *store.Store, clock *fakeClock) {
	t.Helper()
	base, svc, st, clock, _ = cartAPIWithAuth(t, dsn)
	return base, svc, st, clock
}

// cartAPIWithAuth is cartAPI with the API's auth service, which makes
// the tokens real callers hold.
func cartAPIWithAuth(t testing.TB, dsn string) (base string, svc *cartsvc.Service, st *store.Store, clock *fakeClock, authSvc *auth.Service) {
	t.Helper()
	st, err := store.Open(context.Background(), dsn, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	_, key, _ := ed25519.GenerateKey(nil)
	clock = &fakeClock{t: time.Now()}
	modes, _ := cartsvc.ParseModes("web=cart:1m,app=order")
	svc, err = cartsvc.New(cartsvc.Options{Store: st, Online: "online", Key: key, Modes: modes, Now: clock.now, ExpiryEvery: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = svc.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	srv, authSvc := serveAPI(t, st, Options{Store: st, Carts: svc, Now: clock.now}, nil)
	return srv.URL, svc, st, clock, authSvc
}

// openAPIChecker validates requests and the API's real answers against
// the OpenAPI description of the cart routes.
type openAPIChecker struct {
	t      *testing.T
	router routers.Router
}

var registerDecoders sync.Once

func newOpenAPIChecker(t *testing.T) *openAPIChecker {
	t.Helper()
	registerDecoders.Do(func() {
		// Pages and images are checked for their status and type only.
		for _, ct := range []string{"text/html", "image/svg+xml"} {
			openapi3filter.RegisterBodyDecoder(ct, openapi3filter.FileBodyDecoder)
		}
	})
	doc, err := openapi3.NewLoader().LoadFromFile("openapi-carts.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		t.Fatalf("openapi-carts.yaml is not valid OpenAPI: %v", err)
	}
	doc.Servers = nil
	r, err := gorillamux.NewRouter(doc)
	if err != nil {
		t.Fatal(err)
	}
	return &openAPIChecker{t: t, router: r}
}

// do sends a request and checks it, and its answer, against the
// description; it returns the status and body.
func (c *openAPIChecker) do(method, rawURL, body string, hdr ...string) (int, []byte) {
	c.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, _ := http.NewRequest(method, rawURL, rd)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	got, _ := io.ReadAll(resp.Body)
	u, _ := url.Parse(rawURL)
	vreq, _ := http.NewRequest(method, u.Path+"?"+u.RawQuery, strings.NewReader(body))
	if body != "" {
		vreq.Header.Set("Content-Type", "application/json")
	}
	route, params, err := c.router.FindRoute(vreq)
	if err != nil {
		c.t.Fatalf("%s %s: not in the OpenAPI description: %v", method, u.Path, err)
	}
	in := &openapi3filter.RequestValidationInput{Request: vreq, PathParams: params, Route: route,
		Options: &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc}}
	err = openapi3filter.ValidateResponse(context.Background(), &openapi3filter.ResponseValidationInput{
		RequestValidationInput: in, Status: resp.StatusCode, Header: resp.Header, Body: io.NopCloser(bytes.NewReader(got)),
		Options: &openapi3filter.Options{IncludeResponseStatus: true},
	})
	if err != nil {
		c.t.Fatalf("%s %s answered %d, not as described: %v\n%s", method, u.Path, resp.StatusCode, err, got)
	}
	return resp.StatusCode, got
}

// valid also checks the request against the description (requests the
// test sends on purpose broken skip this).
func (c *openAPIChecker) valid(method, rawURL, body string) {
	c.t.Helper()
	u, _ := url.Parse(rawURL)
	vreq, _ := http.NewRequest(method, u.Path+"?"+u.RawQuery, strings.NewReader(body))
	if body != "" {
		vreq.Header.Set("Content-Type", "application/json")
	}
	route, params, err := c.router.FindRoute(vreq)
	if err != nil {
		c.t.Fatal(err)
	}
	err = openapi3filter.ValidateRequest(context.Background(), &openapi3filter.RequestValidationInput{Request: vreq, PathParams: params, Route: route,
		Options: &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc}})
	if err != nil {
		c.t.Fatalf("test request not as described: %v", err)
	}
}

func decodeCart(t *testing.T, b []byte) Cart {
	t.Helper()
	var c Cart
	if err := json.Unmarshal(b, &c); err != nil {
		t.Fatalf("%v: %s", err, b)
	}
	return c
}

func lineQty(c Cart) map[string]int64 {
	out := map[string]int64{}
	for _, l := range c.Lines {
		out[l.SKU] = l.Qty
	}
	return out
}

// Ensure that the web shop's cart API does what its OpenAPI description
// says, answer by answer: create, set lines (held at the online location
// for a minute), get, the signed code, claim with the union merge, a
// stale and a good checkout, a second checkout refused, the phone page;
// and that the hold expires and its stock comes back.
func TestCartAPI_AgainstOpenAPI(t *testing.T) {
	base, svc, st, clock := cartAPI(t, "sqlite:"+filepath.Join(t.TempDir(), "hub.db"))
	oc := newOpenAPIChecker(t)
	ctx := context.Background()

	send := func(method, path, body string, want int) []byte {
		t.Helper()
		oc.valid(method, base+path, body)
		code, b := oc.do(method, base+path, body)
		if code != want {
			t.Fatalf("%s %s: %d %s, want %d", method, path, code, b, want)
		}
		return b
	}
	a := decodeCart(t, send("POST", "/v1/carts", `{"channel":"web"}`, 201))
	id := a.CartID
	a = decodeCart(t, send("PUT", "/v1/carts/"+id+"/lines/SKU-1", `{"qty":2,"unit_price":1299}`, 200))
	a = decodeCart(t, send("PUT", "/v1/carts/"+id+"/lines/SKU-2", `{"qty":1,"unit_price":500}`, 200))
	if a.Version != 2 || a.Total != 2*1299+500 || len(a.Reservations) != 1 || a.Reservations[0].State != "active" ||
		len(a.Reservations[0].Lines) != 2 || a.Reservations[0].Location != "online" {
		t.Fatalf("cart after two lines: %+v", a)
	}
	if rows, _ := st.StockForSKU(ctx, "SKU-1"); len(rows) != 1 || rows[0].Reserved != 2 {
		t.Fatalf("online stock of SKU-1: %+v", rows)
	}
	send("GET", "/v1/carts/"+id, "", 200)

	// The code verifies with the published key and carries the cart.
	var qr CartCode
	json.Unmarshal(send("GET", "/v1/carts/"+id+"/qr", "", 200), &qr)
	doc := svc.PublicKey()
	snap, err := cartcode.Verify(qr.Code, cartcode.Keys{doc.KeyID: doc.PublicKey}, clock.now(), time.Hour)
	if err != nil || snap.Carts[0] != id || snap.Version != 2 || len(snap.Lines) != 2 || qr.QRVersion < 1 {
		t.Fatalf("code %+v: %+v %v", qr, snap, err)
	}
	if png := send("GET", "/v1/carts/"+id+"/qr?format=png", "", 200); !bytes.HasPrefix(png, []byte("\x89PNG")) {
		t.Fatal("not a PNG")
	}

	// The phone page, with no credentials: the lines and the code.
	page := func(id string) (int, string) {
		code, b := oc.do("GET", base+"/carts/"+id, "", "X-Test-Anonymous", "1")
		return code, string(b)
	}
	if code, html := page(id); code != 200 || !strings.Contains(html, `data-code="`+qr.Code[:20]) || !strings.Contains(html, "SKU-2") {
		t.Fatalf("phone page %d:\n%s", code, html)
	}
	if code, html := page("aaaaaaaaaaaaaaaaaaaaaaaaaa"); code != 404 || strings.Contains(html, "data-code") {
		t.Fatalf("phone page of an unknown cart: %d", code)
	}

	// Her own cart, then she identifies with the anonymous one: union.
	b := decodeCart(t, send("POST", "/v1/carts", `{"customer":"C-77","lines":[{"sku":"SKU-1","qty":1,"unit_price":1299},{"sku":"SKU-3","qty":4}]}`, 201))
	m := decodeCart(t, send("POST", "/v1/carts/"+id+"/claim", `{"customer":"C-77"}`, 200))
	if q := lineQty(m); q["SKU-1"] != 2 || q["SKU-2"] != 1 || q["SKU-3"] != 4 || len(m.Carts) != 2 || m.CartID != b.CartID || m.Customer != "C-77" {
		t.Fatalf("merged view: %+v", m)
	}
	// Lowering a line of the merged view lowers it in every cart.
	m = decodeCart(t, send("PUT", "/v1/carts/"+b.CartID+"/lines/SKU-1", `{"qty":1}`, 200))
	if q := lineQty(m); q["SKU-1"] != 1 {
		t.Fatalf("merged view after setting SKU-1 to 1: %+v", q)
	}

	// Checkout: a stale version, the right one, and once only.
	send("POST", "/v1/carts/"+id+"/checkout", `{"version":1}`, 409)
	var order CartOrder
	json.Unmarshal(send("POST", "/v1/carts/"+id+"/checkout", `{"version":`+itoa(m.Version)+`}`, 201), &order)
	if order.OrderID == "" || !order.Cart.Closed || order.Cart.Checkout == nil || order.ReservationID == "" {
		t.Fatalf("order %+v", order)
	}
	send("POST", "/v1/carts/"+id+"/checkout", `{}`, 409)
	send("POST", "/v1/carts/"+b.CartID+"/checkout", `{}`, 409)
	send("PUT", "/v1/carts/"+id+"/lines/SKU-1", `{"qty":3}`, 409)
	if code, _ := page(id); code != 404 {
		t.Fatalf("phone page of a checked-out cart: %d", code)
	}

	// Refusals change nothing and name the field.
	for _, tc := range []struct{ method, path, body string }{
		{"PUT", "/v1/carts/" + id + "/lines/SKU-1", `{"qty":-1}`},
		{"POST", "/v1/carts", `{"customer":"no spaces please"}`},
		{"POST", "/v1/carts", `{"lines":[{"sku":"A","qty":1}],"colour":"red"}`},
		{"GET", "/v1/carts/" + id + "/qr?format=gif", ""},
	} {
		if code, body := oc.do(tc.method, base+tc.path, tc.body); code != 400 && code != 409 {
			t.Errorf("%s %s %s: %d %s", tc.method, tc.path, tc.body, code, body)
		}
	}
	if code, _ := oc.do("GET", base+"/v1/carts/"+strings.Repeat("a", 26), ""); code != 404 {
		t.Fatalf("unknown cart: %d", code)
	}

	// A cart whose hold expires: the stock comes back.
	c := decodeCart(t, send("POST", "/v1/carts", `{"lines":[{"sku":"SKU-9","qty":3}]}`, 201))
	if rows, _ := st.StockForSKU(ctx, "SKU-9"); len(rows) != 1 || rows[0].Reserved != 3 {
		t.Fatalf("SKU-9 held: %+v", rows)
	}
	clock.add(2 * time.Minute)
	c = decodeCart(t, send("GET", "/v1/carts/"+c.CartID, "", 200))
	if c.Reservations[0].State != "expired" {
		t.Fatalf("hold after its time: %+v", c.Reservations)
	}
	if n, err := svc.ExpireHolds(ctx); err != nil || n != 1 {
		t.Fatalf("ExpireHolds: %d %v", n, err)
	}
	if rows, _ := st.StockForSKU(ctx, "SKU-9"); rows[0].Reserved != 0 {
		t.Fatalf("SKU-9 after expiry: %+v", rows)
	}
	c = decodeCart(t, send("GET", "/v1/carts/"+c.CartID, "", 200))
	if c.Reservations[0].State != "released" {
		t.Fatalf("hold after expiry: %+v", c.Reservations)
	}
	// An edit after expiry holds again, under a new reservation.
	c = decodeCart(t, send("PUT", "/v1/carts/"+c.CartID+"/lines/SKU-9", `{"qty":1}`, 200))
	if len(c.Reservations) != 2 || c.Reservations[1].State != "active" {
		t.Fatalf("hold after a new edit: %+v", c.Reservations)
	}
}

func itoa(n int64) string { b, _ := json.Marshal(n); return string(b) }

// doJSON sends a request as the admin and decodes the answer.
func doJSON(t testing.TB, method, u, body string, out any) int {
	t.Helper()
	req, _ := http.NewRequest(method, u, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if out != nil {
		_ = json.Unmarshal(b, out)
	}
	return resp.StatusCode
}
