package carts

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/omnisync/omnisync/shared/events"
	"github.com/omnisync/omnisync/shared/hlc"
)

const cartA = "aaaaaaaaaaaaaaaaaaaaaaaaaa"
const cartB = "bbbbbbbbbbbbbbbbbbbbbbbbba"

func p(v int64) *int64 { return &v }

func st(wall int64, id string) events.Stamp {
	return events.Stamp{HLC: hlc.Timestamp{Wall: wall}, ID: id}
}

func set(cart string, s events.Stamp, sku string, qty int64) Op {
	return Op{Kind: events.KindLineSet, CartID: cart, Stamp: s, Lines: []events.CartLine{{SKU: sku, Qty: qty, UnitPrice: p(100)}}}
}

// Ensure that a later edit wins, an earlier one arriving late does not, and
// 0 removes a line for good.
func TestApply_LineLastWriterWins(t *testing.T) {
	for _, tc := range []struct {
		name string
		ops  []Op
		want map[string]int64
	}{
		{"in order", []Op{set(cartA, st(1, "a"), "S1", 2), set(cartA, st(2, "b"), "S1", 5)}, map[string]int64{"S1": 5}},
		{"late older edit", []Op{set(cartA, st(2, "b"), "S1", 5), set(cartA, st(1, "a"), "S1", 2)}, map[string]int64{"S1": 5}},
		{"zero removes", []Op{set(cartA, st(1, "a"), "S1", 2), set(cartA, st(2, "b"), "S1", 0)}, map[string]int64{}},
		{"older add after removal", []Op{set(cartA, st(2, "b"), "S1", 0), set(cartA, st(1, "a"), "S1", 2)}, map[string]int64{}},
		{"same wall, id breaks the tie", []Op{set(cartA, st(1, "b"), "S1", 7), set(cartA, st(1, "a"), "S1", 3)}, map[string]int64{"S1": 7}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var c Cart
			for _, op := range tc.ops {
				c = Apply(c, op)
			}
			got := map[string]int64{}
			for _, l := range ViewOf(&c).Lines {
				got[l.SKU] = l.Qty
			}
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Fatalf("lines %v, want %v", got, tc.want)
			}
			if c.Version != int64(len(tc.ops)) {
				t.Fatalf("version %d, want %d", c.Version, len(tc.ops))
			}
		})
	}
}

// Ensure that the earliest checkout closes the cart and every other one is
// a conflict, whichever arrives first.
func TestApply_CheckoutOnce(t *testing.T) {
	co := func(s events.Stamp, store string) Op {
		return Op{Kind: events.KindCheckout, CartID: cartA, Stamp: s, Store: store, Checkout: events.Checkout{CartID: cartA, Version: 1}}
	}
	c1 := Apply(Apply(Apply(Cart{}, set(cartA, st(1, "a"), "S1", 1)), co(st(5, "x"), "S2")), co(st(3, "y"), "S1"))
	c2 := Apply(Apply(Apply(Cart{}, co(st(3, "y"), "S1")), set(cartA, st(1, "a"), "S1", 1)), co(st(5, "x"), "S2"))
	for _, c := range []Cart{c1, c2} {
		if !c.Closed() || c.Checkouts[0].Store != "S1" || len(c.Conflicts()) != 1 || c.Conflicts()[0].Store != "S2" {
			t.Fatalf("checkouts %+v", c.Checkouts)
		}
		if err := CanCheckout(&c, c.Version); !errors.Is(err, ErrClosed) {
			t.Fatalf("CanCheckout of a closed cart: %v", err)
		}
	}
	// A duplicate checkout is one checkout.
	c3 := Apply(Apply(Cart{}, co(st(3, "y"), "S1")), co(st(3, "y"), "S1"))
	if len(c3.Checkouts) != 1 {
		t.Fatalf("duplicate checkout counted twice: %+v", c3.Checkouts)
	}
	open := Apply(Cart{}, set(cartA, st(1, "a"), "S1", 1))
	if err := CanCheckout(&open, 0); !errors.Is(err, ErrStale) {
		t.Fatalf("CanCheckout at an old version: %v", err)
	}
	if err := CanCheckout(&open, 1); err != nil {
		t.Fatal(err)
	}
}

// Ensure that the two policies merge a customer's carts as documented.
func TestMerge_Policies(t *testing.T) {
	claim := func(cart string, s events.Stamp) Op {
		return Op{Kind: events.KindClaim, CartID: cart, Stamp: s, Customer: "C1"}
	}
	// B is hers since t=1 (S1 x2, S2 x1, edited at t=2); A was anonymous,
	// edited at t=5 (S1 x1, S3 x4), claimed at t=6.
	b := Apply(Apply(Apply(Cart{}, claim(cartB, st(1, "c1"))), set(cartB, st(2, "b1"), "S1", 2)), set(cartB, st(2, "b2"), "S2", 1))
	a := Apply(Apply(Apply(Cart{}, set(cartA, st(5, "a1"), "S1", 1)), set(cartA, st(5, "a2"), "S3", 4)), claim(cartA, st(6, "c2")))
	for _, tc := range []struct {
		p     Policy
		lines string
	}{
		{PolicyUnion, "S1:2 S2:1 S3:4"},
		{PolicyNewest, "S1:1 S3:4"},
	} {
		for _, order := range [][]*Cart{{&a, &b}, {&b, &a}} {
			v := Merge(tc.p, order)
			var got []string
			for _, l := range v.Lines {
				got = append(got, fmt.Sprintf("%s:%d", l.SKU, l.Qty))
			}
			if fmt.Sprint(got) != "["+tc.lines+"]" || v.ID != cartB || !slices.Equal(v.Carts, []string{cartB, cartA}) || v.Version != 4 {
				t.Fatalf("%s: %+v", tc.p, v)
			}
		}
	}
	if _, err := ParsePolicy("largest"); !errors.Is(err, ErrPolicy) {
		t.Fatal("unknown policy accepted")
	}
}

// Ensure that a cart is abandoned only when open, owned, not empty and idle
// long enough.
func TestAbandoned(t *testing.T) {
	c := Apply(Cart{}, set(cartA, st(1000, "a"), "S1", 1))
	v := ViewOf(&c)
	if Abandoned(v, 10_000, 5000) {
		t.Fatal("an anonymous cart is never abandoned (no one to tell)")
	}
	c = Apply(c, Op{Kind: events.KindClaim, CartID: cartA, Stamp: st(1001, "c"), Customer: "C1"})
	v = ViewOf(&c)
	if !Abandoned(v, 6000, 5000) || Abandoned(v, 5999, 5000) {
		t.Fatal("idle time")
	}
	c = Apply(c, Op{Kind: events.KindCheckout, CartID: cartA, Stamp: st(1002, "x")})
	if Abandoned(ViewOf(&c), 60_000, 5000) {
		t.Fatal("a checked-out cart is not abandoned")
	}
}

// randomLog makes an edit log of carts from two devices (a phone on the web
// shop and a store's kiosk), with claims and checkouts, each event with a
// distinct stamp id.
func randomLog(r *rand.Rand) []Op {
	var ops []Op
	skus := []string{"S1", "S2", "S3", "S4"}
	carts := []string{cartA, cartB}
	n := 1 + r.IntN(40)
	for i := range n {
		dev := []string{"phone", "kiosk"}[r.IntN(2)]
		// Wall clocks of the two devices overlap: ties are broken by id.
		s := st(int64(r.IntN(20)), fmt.Sprintf("%s-%03d", dev, i))
		cart := carts[r.IntN(len(carts))]
		switch x := r.IntN(10); {
		case x < 7:
			var lines []events.CartLine
			for _, sku := range skus {
				if r.IntN(2) == 0 {
					lines = append(lines, events.CartLine{SKU: sku, Qty: int64(r.IntN(4)), UnitPrice: p(int64(100 * (i + 1)))})
				}
			}
			if len(lines) == 0 {
				lines = []events.CartLine{{SKU: "S1", Qty: 1}}
			}
			ops = append(ops, Op{Kind: events.KindLineSet, CartID: cart, Stamp: s, Store: dev, Lines: lines})
		case x < 9:
			ops = append(ops, Op{Kind: events.KindClaim, CartID: cart, Stamp: s, Customer: []string{"C1", "C2"}[r.IntN(2)]})
		default:
			ops = append(ops, Op{Kind: events.KindCheckout, CartID: cart, Stamp: s, Store: dev, Checkout: events.Checkout{CartID: cart, Version: int64(r.IntN(3))}})
		}
	}
	return ops
}

// oracle computes the carts of a log the slow, obvious way: every event
// sorted by stamp, each line's newest edit, the earliest claim, the
// checkouts in order.
func oracle(ops []Op) map[string]string {
	sorted := slices.Clone(ops)
	slices.SortFunc(sorted, func(a, b Op) int { return a.Stamp.Compare(b.Stamp) })
	type st struct {
		lines    map[string]int64
		version  int
		customer string
		checks   []string
	}
	out := map[string]*st{}
	for _, op := range sorted {
		c := out[op.CartID]
		if c == nil {
			c = &st{lines: map[string]int64{}}
			out[op.CartID] = c
		}
		switch op.Kind {
		case events.KindLineSet:
			c.version++
			for _, l := range op.Lines {
				c.lines[l.SKU] = l.Qty
			}
		case events.KindClaim:
			if c.customer == "" {
				c.customer = op.Customer
			}
		case events.KindCheckout:
			c.checks = append(c.checks, op.Stamp.ID)
		}
	}
	res := map[string]string{}
	for id, c := range out {
		var lines []string
		for sku, q := range c.lines {
			if q > 0 {
				lines = append(lines, fmt.Sprintf("%s:%d", sku, q))
			}
		}
		slices.Sort(lines)
		res[id] = fmt.Sprintf("v%d %s %v %v", c.version, c.customer, lines, c.checks)
	}
	return res
}

func summary(cs map[string]*Cart) map[string]string {
	res := map[string]string{}
	for id, c := range cs {
		var lines, checks []string
		for _, l := range ViewOf(c).Lines {
			lines = append(lines, fmt.Sprintf("%s:%d", l.SKU, l.Qty))
		}
		for _, co := range c.Checkouts {
			checks = append(checks, co.Stamp.ID)
		}
		res[id] = fmt.Sprintf("v%d %s %v %v", c.Version, c.Customer, lines, checks)
	}
	return res
}

// applyLog applies a delivered log the way the hub does: each event once
// (dedup by id, as the hub's dedup by origin), in delivery order.
func applyLog(ops []Op) map[string]*Cart {
	seen := map[string]bool{}
	out := map[string]*Cart{}
	for _, op := range ops {
		if seen[op.Stamp.ID] {
			continue
		}
		seen[op.Stamp.ID] = true
		c := out[op.CartID]
		if c == nil {
			c = &Cart{}
		}
		n := Apply(*c, op)
		out[op.CartID] = &n
	}
	return out
}

// Ensure that any delivery of a log (shuffled, duplicated, phone and kiosk
// edits interleaved any way) gives the oracle's carts, and that the merged
// view of a customer's carts does not depend on the order either.
func TestProperty_AnyOrderConverges(t *testing.T) {
	for seed := range uint64(2000) {
		r := rand.New(rand.NewPCG(seed, 7))
		log := randomLog(r)
		want := oracle(log)
		var firstView [2]string
		for round := range 4 {
			delivered := slices.Clone(log)
			for range r.IntN(len(log) + 1) {
				delivered = append(delivered, log[r.IntN(len(log))])
			}
			r.Shuffle(len(delivered), func(i, j int) { delivered[i], delivered[j] = delivered[j], delivered[i] })
			got := applyLog(delivered)
			if fmt.Sprint(summary(got)) != fmt.Sprint(want) {
				t.Fatalf("seed %d round %d:\n got %v\nwant %v", seed, round, summary(got), want)
			}
			for pi, pol := range []Policy{PolicyUnion, PolicyNewest} {
				var cs []*Cart
				for _, c := range got {
					cs = append(cs, c)
				}
				r.Shuffle(len(cs), func(i, j int) { cs[i], cs[j] = cs[j], cs[i] })
				v := fmt.Sprintf("%+v", Merge(pol, cs))
				if round == 0 {
					firstView[pi] = v
				} else if v != firstView[pi] {
					t.Fatalf("seed %d: %s view depends on order:\n%s\n%s", seed, pol, v, firstView[pi])
				}
			}
		}
	}
}

// Ensure that under the union policy no line a shopper put in any of her
// open carts is lost or lowered.
func TestProperty_UnionKeepsEveryLine(t *testing.T) {
	for seed := range uint64(500) {
		r := rand.New(rand.NewPCG(seed, 11))
		cs := applyLog(randomLog(r))
		var list []*Cart
		for _, c := range cs {
			list = append(list, c)
		}
		v := Merge(PolicyUnion, list)
		got := map[string]int64{}
		for _, l := range v.Lines {
			got[l.SKU] = l.Qty
		}
		for _, c := range list {
			if c.Closed() {
				continue
			}
			for _, l := range c.Lines {
				if l.Qty > got[l.SKU] {
					t.Fatalf("seed %d: %s x%d of cart %s lost in %v", seed, l.SKU, l.Qty, c.ID, got)
				}
			}
		}
	}
}
