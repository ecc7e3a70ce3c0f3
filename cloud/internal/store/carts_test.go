package store

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/omnisync/omnisync/cloud/internal/carts"
	"github.com/omnisync/omnisync/cloud/internal/catalog"
	"github.com/omnisync/omnisync/shared/events"
)

const (
	cartX = "aaaaaaaaaaaaaaaaaaaaaaaaaa"
	cartY = "bbbbbbbbbbbbbbbbbbbbbbbbba"
)

// testCartID is a valid cart id made from n.
func testCartID(n int) string {
	b := []byte(fmt.Sprintf("%025d", n))
	for i := range b {
		b[i] += 'a' - '0'
	}
	return string(b) + "a"
}

func cartSummary(c *carts.Cart) string {
	var lines, checks []string
	for _, l := range carts.ViewOf(c).Lines {
		lines = append(lines, fmt.Sprintf("%s:%d@%d", l.SKU, l.Qty, l.Price))
	}
	for _, co := range c.Checkouts {
		checks = append(checks, co.Stamp.ID[:8]+"/"+co.Store)
	}
	return fmt.Sprintf("v%d owner=%s updated=%s %v %v", c.Version, c.Customer, c.Updated.ID, lines, checks)
}

// Ensure that carts edited from the web shop and a store's kiosk, the log
// delivered shuffled, duplicated and split into batches at random, end as
// the rules' fold of the log says, on both databases.
func TestCarts_AnyDeliveryConverges(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		for seed := range uint64(12) {
			r := rand.New(rand.NewPCG(seed, 3))
			phone, kiosk := newDevice("online", fmt.Sprintf("web-%d", seed), 1), newDevice("S1", fmt.Sprintf("kiosk-%d", seed), 1)
			ids := []string{testCartID(int(seed) * 2), testCartID(int(seed)*2 + 1)}
			var log []events.Envelope
			for i := range 60 {
				d := []*device{phone, kiosk}[r.IntN(2)]
				w := int64(1000 + r.IntN(30))
				cart := ids[r.IntN(2)]
				switch x := r.IntN(10); {
				case x < 7:
					var ls []events.CartLine
					for _, sku := range []string{"A", "B", "C"} {
						if r.IntN(2) == 0 {
							p := int64(100 * (i + 1))
							ls = append(ls, events.CartLine{SKU: sku, Qty: int64(r.IntN(3)), UnitPrice: &p})
						}
					}
					if len(ls) == 0 {
						ls = []events.CartLine{{SKU: "A", Qty: 1}}
					}
					log = append(log, d.ev(w, events.KindLineSet, events.LineSet{CartID: cart, Lines: ls}))
				case x < 9:
					log = append(log, d.ev(w, events.KindClaim, events.Claim{CartID: cart, Customer: []string{"C1", "C2"}[r.IntN(2)]}))
				default:
					// Stores' checkouts only: the online ones are gated.
					log = append(log, kiosk.ev(w, events.KindCheckout, events.Checkout{CartID: cart, Version: 1, Location: "S1"}))
				}
			}
			want := map[string]*carts.Cart{}
			for _, e := range log {
				op, err := carts.OpOf(&e)
				if err != nil {
					t.Fatal(err)
				}
				c := want[op.CartID]
				if c == nil {
					c = &carts.Cart{}
				}
				n := carts.Apply(*c, op)
				want[op.CartID] = &n
			}
			delivered := slices.Clone(log)
			for range 20 {
				delivered = append(delivered, log[r.IntN(len(log))])
			}
			r.Shuffle(len(delivered), func(i, j int) { delivered[i], delivered[j] = delivered[j], delivered[i] })
			// Items beyond a device's watermark are deferred, and a
			// store's agent redelivers them: so does this loop.
			for pending := delivered; len(pending) > 0; {
				n := min(len(pending), 1+r.IntN(15))
				res := apply(t, s, pending[:n]...)
				var again []events.Envelope
				for _, i := range res.Deferred {
					again = append(again, pending[i])
				}
				pending = append(again, pending[n:]...)
			}
			for id, w := range want {
				got, ok, err := s.Cart(ctx, id)
				if err != nil || !ok {
					t.Fatalf("seed %d: cart %s: %v %v", seed, id, ok, err)
				}
				if a, b := cartSummary(&got), cartSummary(w); a != b {
					t.Fatalf("seed %d cart %s:\n got %s\nwant %s", seed, id, a, b)
				}
			}
		}
	})
}

// Ensure that the hub's own (online) checkout of a closed cart is refused
// and dead-lettered, while a store's second checkout is recorded as a
// conflict: a sale that happened is never lost, and never doubled.
func TestCarts_CheckoutOnce(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		web, till1, till2 := newDevice("online", "hub-1", 1), newDevice("S1", "till-1", 1), newDevice("S2", "till-1", 1)
		apply(t, s, web.ev(1000, events.KindLineSet, events.LineSet{CartID: cartX, Lines: []events.CartLine{{SKU: "A", Qty: 2}}}))
		apply(t, s, till1.ev(1100, events.KindCheckout, events.Checkout{CartID: cartX, Version: 1, Location: "S1", SaleID: "s1"}))
		res := apply(t, s, web.ev(1200, events.KindCheckout, events.Checkout{CartID: cartX, Version: 1, OrderID: "o1"}))
		if res.DeadLettered != 1 {
			t.Fatalf("online checkout of a closed cart: %+v", res)
		}
		res = apply(t, s, till2.ev(1150, events.KindCheckout, events.Checkout{CartID: cartX, Version: 1, Location: "S2", SaleID: "s2"}))
		if res.Applied != 1 {
			t.Fatalf("store checkout: %+v", res)
		}
		c, _, err := s.Cart(ctx, cartX)
		if err != nil || len(c.Checkouts) != 2 || c.Checkouts[0].SaleID != "s1" || c.Conflicts()[0].SaleID != "s2" {
			t.Fatalf("checkouts %+v %v", c.Checkouts, err)
		}
		cs, err := s.CartConflicts(ctx, 10)
		if err != nil || len(cs) != 1 || cs[0].ID != cartX {
			t.Fatalf("conflicts %v %v", cs, err)
		}
		// Two online checkouts of an open cart in one batch: one order.
		apply(t, s, web.ev(2000, events.KindLineSet, events.LineSet{CartID: cartY, Lines: []events.CartLine{{SKU: "A", Qty: 1}}}))
		res = apply(t, s, web.ev(2100, events.KindCheckout, events.Checkout{CartID: cartY, Version: 1, OrderID: "o2"}),
			web.ev(2101, events.KindCheckout, events.Checkout{CartID: cartY, Version: 1, OrderID: "o3"}))
		if res.Applied != 1 || res.DeadLettered != 1 {
			dl, _ := s.DeadLetters(ctx, "online", 10)
			t.Fatalf("two online checkouts: %+v %+v", res, dl)
		}
	})
}

// Ensure that a cart's hold is recorded from its reserve, listed once
// expired, and forgotten once released; and that an idle cart of a known
// customer is found abandoned once.
func TestCarts_HoldsAndAbandoned(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		web := newDevice("online", "hub-1", 1)
		hold := CartHoldPrefix + cartX + "-1"
		exp := time.UnixMilli(50_000)
		apply(t, s,
			web.ev(1000, events.KindLineSet, events.LineSet{CartID: cartX, Customer: "C1", Lines: []events.CartLine{{SKU: "A", Qty: 2}}}),
			web.ev(1000, events.KindReserve, map[string]any{"reservation_id": hold, "location": "online", "cart_id": cartX, "expires_ms": exp.UnixMilli(),
				"lines": []events.Line{{SKU: "A", Qty: 2}}}))
		hs, err := s.CartHolds(ctx, []string{cartX})
		if err != nil || len(hs) != 1 || !hs[0].Active || !hs[0].ExpiresAt.Equal(exp) || len(hs[0].Lines) != 1 {
			t.Fatalf("holds %+v %v", hs, err)
		}
		if ex, _ := s.ExpiredCartHolds(ctx, exp.Add(-time.Second), 10); len(ex) != 0 {
			t.Fatalf("expired early: %+v", ex)
		}
		ex, err := s.ExpiredCartHolds(ctx, exp, 10)
		if err != nil || len(ex) != 1 || ex[0].ReservationID != hold {
			t.Fatalf("expired %+v %v", ex, err)
		}
		apply(t, s, web.ev(51_000, events.KindRelease, events.ReservationMove{ReservationID: hold, Location: "online"}))
		if ex, _ := s.ExpiredCartHolds(ctx, exp.Add(time.Hour), 10); len(ex) != 0 {
			t.Fatalf("released hold still listed: %+v", ex)
		}
		hs, _ = s.CartHolds(ctx, []string{cartX})
		if len(hs) != 1 || hs[0].Active || !hs[0].Released {
			t.Fatalf("after release %+v", hs)
		}
		ab, err := s.MarkAbandonedCarts(ctx, time.UnixMilli(10_000), 5*time.Second, 10)
		if err != nil || len(ab) != 1 || ab[0].CartID != cartX || ab[0].Customer != "C1" {
			t.Fatalf("abandoned %+v %v", ab, err)
		}
		if ab, _ := s.MarkAbandonedCarts(ctx, time.UnixMilli(20_000), 5*time.Second, 10); len(ab) != 0 {
			t.Fatalf("abandoned twice: %+v", ab)
		}
	})
}

// Ensure that an abandoned cart carries what rules read of it: its value
// (the cart's prices, the catalog's for a line without one), the
// catalog's currency, its line count and SKUs (removed lines left out);
// and that a claimed cart emptied to no lines is not abandoned, until it
// has lines again and is left.
func TestCarts_AbandonedCarryValueAndLines(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		importOK(t, s, []catalog.Variant{variant("A", "P1", 1), variant("B", "P2", 2)}) // 1999 EUR each
		web := newDevice("online", "hub-1", 1)
		apply(t, s,
			web.ev(1000, events.KindLineSet, events.LineSet{CartID: cartX, Customer: "C1", Lines: []events.CartLine{
				{SKU: "A", Qty: 2, UnitPrice: price(1500)}, {SKU: "B", Qty: 1}, {SKU: "Z", Qty: 4, UnitPrice: price(100)}}}),
			web.ev(1100, events.KindLineSet, events.LineSet{CartID: cartX, Lines: []events.CartLine{{SKU: "Z", Qty: 0}}}),
			web.ev(1000, events.KindLineSet, events.LineSet{CartID: cartY, Customer: "C2", Lines: []events.CartLine{{SKU: "A", Qty: 1}}}),
			web.ev(1200, events.KindLineSet, events.LineSet{CartID: cartY, Lines: []events.CartLine{{SKU: "A", Qty: 0}}}),
		)
		ab, err := s.MarkAbandonedCarts(ctx, time.UnixMilli(10_000), 5*time.Second, 10)
		if err != nil || len(ab) != 1 {
			t.Fatalf("abandoned %+v %v", ab, err)
		}
		want := AbandonedCart{CartID: cartX, Customer: "C1", LastChange: time.UnixMilli(1100), Value: 2*1500 + 1999, Currency: "EUR",
			Lines: 2, SKUs: []string{"A", "B"}}
		if got := ab[0]; got.CartID != want.CartID || got.Customer != want.Customer || !got.LastChange.Equal(want.LastChange) ||
			got.Value != want.Value || got.Currency != want.Currency || got.Lines != want.Lines || !slices.Equal(got.SKUs, want.SKUs) {
			t.Fatalf("abandoned cart %+v, want %+v", got, want)
		}
		// The emptied cart gets a line again and is left: abandoned now.
		apply(t, s, web.ev(20_000, events.KindLineSet, events.LineSet{CartID: cartY, Lines: []events.CartLine{{SKU: "Q", Qty: 3, UnitPrice: price(700)}}}))
		ab, err = s.MarkAbandonedCarts(ctx, time.UnixMilli(30_000), 5*time.Second, 10)
		if err != nil || len(ab) != 1 || ab[0].CartID != cartY || ab[0].Value != 2100 || ab[0].Currency != "" || ab[0].Lines != 1 {
			t.Fatalf("abandoned after a new line %+v %v", ab, err)
		}
	})
}

// BenchmarkCartsApply measures the carts aggregate alone on PostgreSQL:
// line_set events of 1,000 carts from the web shop, applied in batches of
// 500 (what the hub's group commit makes of many concurrent edits).
//
//	go test -run XXX -bench CartsApply -benchtime 20000x ./cloud/internal/store/
func BenchmarkCartsApply(b *testing.B) {
	s := openPostgres(b)
	web := newDevice("online", "hub-bench", 1)
	const batch = 500
	var envs []events.Envelope
	for i := range b.N {
		p := int64(999)
		envs = append(envs, web.ev(int64(1000+i), events.KindLineSet, events.LineSet{CartID: testCartID(i % 1000),
			Lines: []events.CartLine{{SKU: fmt.Sprintf("SKU-%d", i%20), Qty: int64(i % 5), UnitPrice: &p}}}))
	}
	b.ResetTimer()
	for i := 0; i < len(envs); i += batch {
		apply(b, s, envs[i:min(i+batch, len(envs))]...)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

// Ensure that an online order's reservation is written with its checkout
// or not at all: a crash before the commit leaves neither (and the
// redelivered batch writes both), and a checkout refused because the cart
// was checked out already takes its reservation down with it.
func TestCarts_OrderReservationWithCheckout(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		web := newDevice("online", "hub-1", 1)
		apply(t, s, web.ev(1000, events.KindLineSet, events.LineSet{CartID: cartX, Lines: []events.CartLine{{SKU: "A", Qty: 2}}}))
		order := func(w int64, id string) []Item {
			return itemsOf(
				web.ev(w, events.KindCheckout, events.Checkout{CartID: cartX, Version: 1, OrderID: id, Location: "online"}),
				web.ev(w+1, events.KindReserve, events.ReservationMove{ReservationID: "order-" + id, Location: "online",
					Lines: []events.Line{line("A", 2)}, OrderID: id}),
			)
		}
		batch := order(1100, "o1")
		boom := errors.New("crash between the checkout and its reservation")
		s.beforeCommit = func() error { return boom }
		if _, err := s.ApplyBatch(ctx, batch); !errors.Is(err, boom) {
			t.Fatalf("err = %v", err)
		}
		s.beforeCommit = nil
		if c, _, _ := s.Cart(ctx, cartX); c.Closed() || stockAt(t, s, "A", "online").Reserved != 0 {
			t.Fatalf("after the crash: closed=%v %+v", c.Closed(), stockAt(t, s, "A", "online"))
		}
		res, err := s.ApplyBatch(ctx, batch)
		if err != nil || res.Applied != 2 || len(res.Refused) != 0 {
			t.Fatalf("redelivered: %+v %v", res, err)
		}
		if c, _, _ := s.Cart(ctx, cartX); !c.Closed() || stockAt(t, s, "A", "online").Reserved != 2 {
			t.Fatalf("after the order: closed=%v %+v", c.Closed(), stockAt(t, s, "A", "online"))
		}
		res, err = s.ApplyBatch(ctx, order(1200, "o2"))
		if err != nil || res.DeadLettered != 2 || !slices.Equal(res.Refused, []int{0, 1}) {
			t.Fatalf("second order: %+v %v", res, err)
		}
		if st := stockAt(t, s, "A", "online"); st.Reserved != 2 {
			t.Fatalf("a refused order holds stock: %+v", st)
		}
	})
}

// Ensure that the customers interested in an item are those who hold it in
// a cart changed since the time asked: not anonymous carts, not a line
// taken out, not an older cart.
func TestInterestedIn(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		web := newDevice("online", "hub-1", 1)
		cartZ := "cccccccccccccccccccccccccq"
		apply(t, s,
			web.ev(1000, events.KindLineSet, events.LineSet{CartID: cartX, Customer: "C1", Lines: []events.CartLine{{SKU: "A", Qty: 2}}}),
			web.ev(1000, events.KindLineSet, events.LineSet{CartID: cartY, Lines: []events.CartLine{{SKU: "A", Qty: 1}}}),
			web.ev(1000, events.KindLineSet, events.LineSet{CartID: cartZ, Customer: "C2", Lines: []events.CartLine{{SKU: "A", Qty: 1}}}),
			web.ev(1500, events.KindLineSet, events.LineSet{CartID: cartZ, Lines: []events.CartLine{{SKU: "A", Qty: 0}, {SKU: "B", Qty: 1}}}))
		for _, tc := range []struct {
			sku   string
			since int64
			want  []string
		}{
			{"A", 500, []string{"C1"}},
			{"B", 500, []string{"C2"}},
			{"A", 1200, nil},
			{"C", 0, nil},
		} {
			got, err := s.InterestedIn(ctx, tc.sku, time.UnixMilli(tc.since))
			if err != nil || !slices.Equal(got, tc.want) {
				t.Fatalf("%s since %d: %v %v, want %v", tc.sku, tc.since, got, err, tc.want)
			}
		}
	})
}
