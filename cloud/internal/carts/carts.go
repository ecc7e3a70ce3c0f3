// Package carts holds the rules of shoppers' carts: how a cart's state
// follows from its line_set, claim and checkout events whatever their
// order, how a customer's carts are seen as one when she claims an
// anonymous cart while she already has one (the merge policy), when a
// cart counts as abandoned, and which checkouts are conflicts.
//
// Guarantees: Apply is commutative for every event kind, and idempotent
// for claims, checkouts and each line's quantity, so any order of one
// event log gives the same cart. Version counts the line_set events
// applied and is therefore only right when each event is applied once,
// which the hub's exact dedup (by origin) and an agent's own bookkeeping
// ensure; it is what a QR snapshot and a checkout name.
//
// Rules:
//   - each line's quantity is last-writer-wins by events.Stamp (HLC, then
//     event id); quantity 0 removes the line (its stamp stays, so an older
//     edit arriving late cannot bring it back);
//   - the owner is the customer of the earliest claim (a line_set naming a
//     customer is a claim too): a cart, once claimed, stays hers;
//   - the earliest checkout closes the cart everywhere; every other
//     checkout of it (the same version scanned at a second till, or a
//     checkout racing a web order) is a conflict for HQ, never a second
//     order: the hub refuses a checkout of a closed cart it knows of, and
//     records those it learns of late;
//   - a customer's open carts are seen as one (View) by the chain's merge
//     policy: PolicyUnion takes every SKU at the largest quantity any of
//     her carts has, PolicyNewest takes the cart changed last whole.
//
// No I/O, no clock: callers pass the time.
package carts

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	"github.com/omnisync/omnisync/shared/events"
)

// Errors callers branch on.
var (
	// ErrClosed is returned by CanCheckout for a cart already checked out.
	ErrClosed = errors.New("carts: cart already checked out")
	// ErrStale is returned by CanCheckout when the version asked for is
	// not the cart's current one.
	ErrStale = errors.New("carts: cart changed since that version")
	// ErrPolicy is returned by ParsePolicy for an unknown policy.
	ErrPolicy = errors.New("carts: unknown merge policy")
	// ErrNotCart is returned by Op for an event that is not a cart kind.
	ErrNotCart = errors.New("carts: not a cart event")
)

// Policy says how a customer's open carts are seen as one.
type Policy string

const (
	// PolicyUnion: every SKU of any of her carts, at the largest quantity
	// one of them has (the price of that line). Nothing the shopper put in
	// a cart is lost by identifying.
	PolicyUnion Policy = "union"
	// PolicyNewest: the cart changed last wins whole; the others are
	// ignored (and closed with it at checkout).
	PolicyNewest Policy = "newest"
)

// ParsePolicy reads a policy name ("" is PolicyUnion).
func ParsePolicy(s string) (Policy, error) {
	switch Policy(s) {
	case "", PolicyUnion:
		return PolicyUnion, nil
	case PolicyNewest:
		return PolicyNewest, nil
	}
	return "", fmt.Errorf("%w %q (union or newest)", ErrPolicy, s)
}

// Line is one SKU's state in a cart: its newest quantity (0: removed) and
// the stamp of the edit that set it.
type Line struct {
	SKU   string
	Qty   int64
	Price int64 // unit price in minor units, when Priced
	// Priced says the edit carried a unit price.
	Priced bool
	Stamp  events.Stamp
}

// Checkout is one checkout of a cart.
type Checkout struct {
	Stamp    events.Stamp
	Version  int64
	Store    string // the origin's store
	Location string
	SaleID   string
	OrderID  string
}

// Cart is one cart's state.
type Cart struct {
	ID string
	// Lines by SKU, removed ones (Qty 0) included.
	Lines map[string]Line
	// Version counts the line_set events applied.
	Version int64
	// Updated is the stamp of the newest line_set applied.
	Updated events.Stamp
	// Customer owns the cart since ClaimStamp ("" : anonymous).
	Customer   string
	ClaimStamp events.Stamp
	// Checkouts in stamp order: the first closed the cart, the others are
	// conflicts.
	Checkouts []Checkout
}

// Closed reports whether the cart was checked out.
func (c *Cart) Closed() bool { return len(c.Checkouts) > 0 }

// Conflicts are the checkouts after the one that closed the cart.
func (c *Cart) Conflicts() []Checkout {
	if len(c.Checkouts) < 2 {
		return nil
	}
	return c.Checkouts[1:]
}

// Op is one cart event in the rules' terms.
type Op struct {
	Kind   events.Kind
	CartID string
	Stamp  events.Stamp
	Store  string
	// line_set
	Lines []events.CartLine
	// claim, or line_set naming its owner
	Customer string
	// checkout
	Checkout events.Checkout
}

// OpOf reads a validated cart event.
func OpOf(env *events.Envelope) (Op, error) {
	var body any
	var err error
	switch env.Kind {
	case events.KindLineSet:
		var b events.LineSet
		err = json.Unmarshal(env.Data, &b)
		body = b
	case events.KindClaim:
		var b events.Claim
		err = json.Unmarshal(env.Data, &b)
		body = b
	case events.KindCheckout:
		var b events.Checkout
		err = json.Unmarshal(env.Data, &b)
		body = b
	default:
		return Op{}, fmt.Errorf("%w: %s", ErrNotCart, env.Kind)
	}
	if err != nil {
		return Op{}, fmt.Errorf("carts: %s: %w", env.Kind, err)
	}
	return OpFrom(env, body)
}

// OpFrom is OpOf of an envelope whose body is at hand, decoded: an
// events.LineSet, events.Claim or events.Checkout as env.Kind says (the
// writer of an event need not decode what it just encoded).
func OpFrom(env *events.Envelope, body any) (Op, error) {
	op := Op{Kind: env.Kind, Stamp: env.Stamp(), Store: env.Origin.Store}
	ok := false
	switch env.Kind {
	case events.KindLineSet:
		var b events.LineSet
		if b, ok = body.(events.LineSet); ok {
			op.CartID, op.Lines, op.Customer = b.CartID, b.Lines, b.Customer
		}
	case events.KindClaim:
		var b events.Claim
		if b, ok = body.(events.Claim); ok {
			op.CartID, op.Customer = b.CartID, b.Customer
		}
	case events.KindCheckout:
		if op.Checkout, ok = body.(events.Checkout); ok {
			op.CartID = op.Checkout.CartID
		}
	default:
		return Op{}, fmt.Errorf("%w: %s", ErrNotCart, env.Kind)
	}
	if !ok {
		return Op{}, fmt.Errorf("carts: %s: body is a %T", env.Kind, body)
	}
	if err := events.ValidCartID(op.CartID); err != nil {
		return Op{}, fmt.Errorf("carts: %s: cart_id: %w", env.Kind, err)
	}
	return op, nil
}

// NewerLine reports whether an edit stamped s replaces line l (absent
// lines are replaced by any edit).
func NewerLine(l Line, present bool, s events.Stamp) bool {
	return !present || s.Compare(l.Stamp) > 0
}

// EarlierClaim reports whether a claim stamped s replaces the cart's
// owner (the earliest claim wins).
func EarlierClaim(c *Cart, s events.Stamp) bool {
	return c.Customer == "" || s.Compare(c.ClaimStamp) < 0
}

// Apply returns c after op (which must name c's id, or c is new).
func Apply(c Cart, op Op) Cart {
	c.ID = op.CartID
	switch op.Kind {
	case events.KindLineSet:
		lines := make(map[string]Line, len(c.Lines)+len(op.Lines))
		for k, v := range c.Lines {
			lines[k] = v
		}
		for _, l := range op.Lines {
			old, ok := lines[l.SKU]
			if !NewerLine(old, ok, op.Stamp) {
				continue
			}
			nl := Line{SKU: l.SKU, Qty: l.Qty, Stamp: op.Stamp}
			if l.UnitPrice != nil {
				nl.Price, nl.Priced = *l.UnitPrice, true
			}
			lines[l.SKU] = nl
		}
		c.Lines = lines
		c.Version++
		if op.Stamp.Compare(c.Updated) > 0 {
			c.Updated = op.Stamp
		}
		if op.Customer != "" && EarlierClaim(&c, op.Stamp) {
			c.Customer, c.ClaimStamp = op.Customer, op.Stamp
		}
	case events.KindClaim:
		if EarlierClaim(&c, op.Stamp) {
			c.Customer, c.ClaimStamp = op.Customer, op.Stamp
		}
	case events.KindCheckout:
		co := Checkout{Stamp: op.Stamp, Version: op.Checkout.Version, Store: op.Store, Location: op.Checkout.Location,
			SaleID: op.Checkout.SaleID, OrderID: op.Checkout.OrderID}
		i, found := slices.BinarySearchFunc(c.Checkouts, co.Stamp, func(x Checkout, s events.Stamp) int { return x.Stamp.Compare(s) })
		if !found {
			c.Checkouts = slices.Insert(slices.Clone(c.Checkouts), i, co)
		}
	}
	return c
}

// CanCheckout says whether a checkout of c at version may be taken now: not
// when the cart is closed (ErrClosed), nor when it has changed since
// (ErrStale, the shopper must see what she pays for).
func CanCheckout(c *Cart, version int64) error {
	if c.Closed() {
		return ErrClosed
	}
	if version != c.Version {
		return fmt.Errorf("%w: at version %d, not %d", ErrStale, c.Version, version)
	}
	return nil
}

// ViewLine is one line of a View.
type ViewLine struct {
	SKU    string
	Qty    int64
	Price  int64
	Priced bool
	// Cart is the cart the line comes from.
	Cart string
}

// View is what a shopper sees as her cart: one cart, or a customer's open
// carts seen as one by a policy.
type View struct {
	// ID is the primary cart: the one she owned first (the earliest claim),
	// or the only one.
	ID string
	// Carts are every cart the view stands for, primary first; a checkout
	// closes them all.
	Carts []string
	// Edit is the cart a new line goes into so that the view shows it: the
	// primary under PolicyUnion, the newest cart under PolicyNewest.
	Edit     string
	Customer string
	Lines    []ViewLine // Qty > 0, by SKU
	// Version is the sum of the carts' versions: it changes whenever one
	// of them does.
	Version int64
	Updated events.Stamp
	Closed  bool
}

// ViewOf is the view of one cart alone.
func ViewOf(c *Cart) View {
	v := View{ID: c.ID, Carts: []string{c.ID}, Edit: c.ID, Customer: c.Customer, Version: c.Version, Updated: c.Updated, Closed: c.Closed()}
	for _, l := range c.Lines {
		if l.Qty > 0 {
			v.Lines = append(v.Lines, ViewLine{SKU: l.SKU, Qty: l.Qty, Price: l.Price, Priced: l.Priced, Cart: c.ID})
		}
	}
	slices.SortFunc(v.Lines, func(a, b ViewLine) int { return cmp.Compare(a.SKU, b.SKU) })
	return v
}

// Merge is the view of one customer's open carts under policy p. Closed
// carts are left out; with none open, the view is empty (no ID). The
// result depends only on the carts, never on their order.
func Merge(p Policy, cs []*Cart) View {
	open := make([]*Cart, 0, len(cs))
	for _, c := range cs {
		if !c.Closed() {
			open = append(open, c)
		}
	}
	if len(open) == 0 {
		return View{}
	}
	// Primary first: the earliest claim, then the cart id.
	slices.SortFunc(open, func(a, b *Cart) int {
		if c := a.ClaimStamp.Compare(b.ClaimStamp); c != 0 {
			return c
		}
		return cmp.Compare(a.ID, b.ID)
	})
	v := View{ID: open[0].ID, Edit: open[0].ID, Customer: open[0].Customer}
	for _, c := range open {
		v.Carts = append(v.Carts, c.ID)
		v.Version += c.Version
		if c.Updated.Compare(v.Updated) > 0 {
			v.Updated = c.Updated
		}
	}
	switch p {
	case PolicyNewest:
		newest := open[0]
		for _, c := range open[1:] {
			if c.Updated.Compare(newest.Updated) > 0 {
				newest = c
			}
		}
		v.Lines, v.Edit = ViewOf(newest).Lines, newest.ID
	default:
		best := map[string]ViewLine{}
		stamp := map[string]events.Stamp{}
		for _, c := range open {
			for _, l := range c.Lines {
				if l.Qty <= 0 {
					continue
				}
				b, ok := best[l.SKU]
				// The larger quantity; between equal ones the newer edit
				// (its price), so the choice does not depend on order.
				if !ok || l.Qty > b.Qty || l.Qty == b.Qty && l.Stamp.Compare(stamp[l.SKU]) > 0 {
					best[l.SKU] = ViewLine{SKU: l.SKU, Qty: l.Qty, Price: l.Price, Priced: l.Priced, Cart: c.ID}
					stamp[l.SKU] = l.Stamp
				}
			}
		}
		for _, l := range best {
			v.Lines = append(v.Lines, l)
		}
		slices.SortFunc(v.Lines, func(a, b ViewLine) int { return cmp.Compare(a.SKU, b.SKU) })
	}
	return v
}

// Abandoned reports whether view v counts as abandoned at nowMS: open,
// not empty, its owner known, and no change for after milliseconds (by the
// wall time of its newest edit). Whether the customer may be contacted is
// the customers side's decision (consent), taken when a message is sent.
func Abandoned(v View, nowMS, afterMS int64) bool {
	return v.ID != "" && !v.Closed && v.Customer != "" && len(v.Lines) > 0 && afterMS > 0 &&
		nowMS-v.Updated.HLC.Wall >= afterMS
}
