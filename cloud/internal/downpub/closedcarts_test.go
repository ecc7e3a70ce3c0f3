package downpub

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/omnisync/omnisync/shared/cartcode"
	"github.com/omnisync/omnisync/shared/downsync"
	"github.com/omnisync/omnisync/shared/events"
	"github.com/omnisync/omnisync/shared/testkit"
)

// closedCart reads a closed cart's document; marker tells a delete
// marker from nothing at all.
func (e *env) closedCart(t *testing.T, cartID string) (d downsync.ClosedCartDoc, ok, marker bool) {
	t.Helper()
	ctx := context.Background()
	st, err := e.js.Stream(ctx, downsync.Stream)
	if err != nil {
		t.Fatal(err)
	}
	m, err := st.GetLastMsgForSubject(ctx, downsync.Subject(downsync.ClosedCartKey(cartID)))
	switch {
	case errors.Is(err, jetstream.ErrMsgNotFound):
		return d, false, false
	case err != nil:
		t.Fatal(err)
	case m.Header.Get("KV-Operation") != "":
		return d, false, true
	}
	if d, err = downsync.DecodeClosedCart(m.Data); err != nil {
		t.Fatal(err)
	}
	return d, true, false
}

func lineSet(cart string) events.LineSet {
	return events.LineSet{CartID: cart, Lines: []events.CartLine{{SKU: "A", Qty: 1}}}
}

// Ensure that a checked-out cart is published under its digest with the
// store that closed it (by the start-up comparison for one closed before
// the publisher ran, by the batch's mark after), open carts are not, a
// later conflicting checkout republishes it without changing who closed
// it, and it is deleted (its marker purged) once its retention is past,
// never written again by a restarted replica.
func TestPublishesClosedCarts(t *testing.T) {
	e := newEnv(t)
	var shift atomic.Int64
	e.now = func() time.Time { return time.Now().Add(time.Duration(shift.Load())) }
	early, open, late := cartcode.NewCartID(), cartcode.NewCartID(), cartcode.NewCartID()
	for _, c := range []string{early, open, late} {
		e.apply(t, events.KindLineSet, lineSet(c))
	}
	e.apply(t, events.KindCheckout, events.Checkout{CartID: early, Version: 1, Location: "S2", SaleID: "cart-" + early,
		Lines: []events.CartLine{{SKU: "A", Qty: 1}}})
	p := e.start(t, e.st, "hub-1")
	var d downsync.ClosedCartDoc
	testkit.Eventually(t, 5*time.Second, func() bool {
		var ok bool
		d, ok, _ = e.closedCart(t, early)
		return ok
	}, "the cart closed before the publisher ran published")
	if d.Where != "S2" || d.Online || d.CartVersion != 1 || d.Version != 1 || d.State != downsync.ClosedCheckedOut ||
		d.ExpiresMS != d.ClosedMS+downsync.ClosedCartRetention.Milliseconds() {
		t.Fatalf("closed cart: %+v", d)
	}
	if raw, _ := json.Marshal(d); strings.Contains(string(raw), early) {
		t.Fatal("the document names the cart id in clear")
	}

	res := e.apply(t, events.KindCheckout, events.Checkout{CartID: late, Version: 1, Location: "S3", SaleID: "cart-" + late,
		Lines: []events.CartLine{{SKU: "A", Qty: 1}}})
	p.Carts(res.Carts)
	res = e.apply(t, events.KindCheckout, events.Checkout{CartID: early, Version: 1, Location: "S3", SaleID: "cart-" + early,
		Lines: []events.CartLine{{SKU: "A", Qty: 1}}})
	p.Carts(res.Carts)
	testkit.Eventually(t, 5*time.Second, func() bool {
		l, lok, _ := e.closedCart(t, late)
		d, _, _ = e.closedCart(t, early)
		return lok && l.Where == "S3" && d.Version == 2
	}, "the cart closed now and the conflict published")
	if d.Where != "S2" {
		t.Fatalf("a later checkout took the closing one's place: %+v", d)
	}
	p.Carts([]string{open})
	time.Sleep(200 * time.Millisecond)
	if _, ok, marker := e.closedCart(t, open); ok || marker {
		t.Fatal("an open cart published as closed")
	}

	// Past the retention, and the marker's day: deleted, marker purged.
	shift.Store(int64(downsync.ClosedCartRetention + 25*time.Hour))
	testkit.Eventually(t, 10*time.Second, func() bool {
		_, a, am := e.closedCart(t, early)
		_, b, bm := e.closedCart(t, late)
		return !a && !am && !b && !bm
	}, "closed carts deleted after their retention and their markers purged")
	if s := p.Stats(); s.ClosedCartsExpired != 2 || s.Purged != 0 {
		t.Fatalf("stats: %+v", s)
	}
	p2 := e.start(t, e.st, "hub-2")
	testkit.Eventually(t, 5*time.Second, func() bool { return p2.Stats().Synced }, "second replica synced")
	if _, ok, marker := e.closedCart(t, early); ok || marker {
		t.Fatal("a restarted publisher wrote an expired closed cart again")
	}
}
