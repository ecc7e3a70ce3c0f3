package cartsvc

import (
	"cmp"
	"context"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/omnisync/omnisync/cloud/internal/carts"
	"github.com/omnisync/omnisync/cloud/internal/store"
	"github.com/omnisync/omnisync/shared/events"
)

// group is what the writer knows of the carts a group of requests
// touches: read from the books once for the whole group, then changed by
// each request's events in turn, so each request is decided on what those
// before it in the group did. This is what lets one batched read serve a
// whole group instead of each request reading on its own.
type group struct {
	policy carts.Policy
	carts  map[string]*carts.Cart
	// owned are the carts of each customer (open or not: views filter).
	owned map[string][]string
	// holds are the holds of each cart, by reservation id.
	holds  map[string][]store.CartHold
	holdOf map[string]string // reservation id -> cart id
}

func newGroup(p carts.Policy) *group {
	return &group{policy: p, carts: map[string]*carts.Cart{}, owned: map[string][]string{},
		holds: map[string][]store.CartHold{}, holdOf: map[string]string{}}
}

// load reads carts ids, the open carts of customers and of those owning
// one of ids, and all their holds: two queries at once (the carts ids
// name with their lines, and their holds with theirs), then one or two
// more only when customers own carts or a cart is checked out.
func (s *Service) load(ctx context.Context, ids, customers []string) (*group, error) {
	g := newGroup(s.o.Policy)
	if len(ids) == 0 && len(customers) == 0 {
		return g, nil
	}
	// The holds of the carts named are read while the carts are: the
	// writer waits for one round trip, not two.
	ids = slices.Compact(slices.Sorted(slices.Values(ids)))
	var (
		hs   []store.CartHold
		herr error
		wait = make(chan struct{})
	)
	go func() {
		defer close(wait)
		hs, herr = s.o.Store.CartHolds(ctx, ids)
	}()
	cs, err := s.o.Store.CartsAndCustomers(ctx, ids, customers)
	<-wait
	if err != nil {
		return nil, err
	}
	if herr != nil {
		return nil, herr
	}
	var more []string
	for _, c := range cs {
		g.put(c)
		if _, found := slices.BinarySearch(ids, c.ID); !found {
			more = append(more, c.ID)
		}
	}
	if len(more) > 0 {
		// Carts of the customers that no request named.
		hm, err := s.o.Store.CartHolds(ctx, more)
		if err != nil {
			return nil, err
		}
		hs = append(hs, hm...)
	}
	for _, h := range hs {
		if g.carts[h.CartID] != nil {
			g.putHold(h)
		}
	}
	return g, nil
}

// with is g as it would be with c put in it, g left as it is.
func (g *group) with(c *carts.Cart) *group {
	out := &group{policy: g.policy, carts: maps.Clone(g.carts), owned: maps.Clone(g.owned), holds: g.holds, holdOf: g.holdOf}
	if c.Customer != "" {
		out.owned[c.Customer] = slices.Clone(out.owned[c.Customer])
	}
	out.put(c)
	return out
}

func (g *group) put(c *carts.Cart) {
	g.carts[c.ID] = c
	if c.Customer != "" && !slices.Contains(g.owned[c.Customer], c.ID) {
		g.owned[c.Customer] = append(g.owned[c.Customer], c.ID)
	}
}

func (g *group) putHold(h store.CartHold) {
	hs := g.holds[h.CartID]
	if i := slices.IndexFunc(hs, func(x store.CartHold) bool { return x.ReservationID == h.ReservationID }); i >= 0 {
		hs[i] = h
	} else {
		hs = append(hs, h)
		slices.SortFunc(hs, func(a, b store.CartHold) int { return strings.Compare(a.ReservationID, b.ReservationID) })
	}
	g.holds[h.CartID] = hs
	g.holdOf[h.ReservationID] = h.CartID
}

// view is cart id's state as the group knows it: the cart alone, or once
// a customer owns it, her open carts merged by the policy (a closed cart
// is shown alone); and the carts it stands for.
func (g *group) view(id string) (State, []*carts.Cart, error) {
	c := g.carts[id]
	if c == nil {
		return State{}, nil, ErrNotFound
	}
	st := State{Policy: g.policy}
	list := []*carts.Cart{c}
	if c.Closed() || c.Customer == "" {
		st.View = carts.ViewOf(c)
	} else {
		list = list[:0]
		for _, oid := range g.owned[c.Customer] {
			if o := g.carts[oid]; o != nil && !o.Closed() && o.Customer == c.Customer {
				list = append(list, o)
			}
		}
		slices.SortFunc(list, func(a, b *carts.Cart) int { return cmp.Compare(a.ID, b.ID) })
		if !slices.ContainsFunc(list, func(x *carts.Cart) bool { return x.ID == id }) {
			list = append(list, c)
		}
		st.View = carts.Merge(g.policy, list)
	}
	if c.Closed() {
		st.Checkout = &c.Checkouts[0]
		st.Conflicts = c.Conflicts()
	}
	ids := slices.Clone(st.Carts)
	slices.Sort(ids)
	for _, cid := range ids {
		st.Holds = append(st.Holds, g.holds[cid]...)
	}
	return st, list, nil
}

// fold changes the group's carts and holds by envs, as the books will;
// drafts[i] is the body of envs[i], as it was encoded.
func (g *group) fold(envs []events.Envelope, drafts []draft) {
	for i := range envs {
		e := &envs[i]
		switch e.Kind {
		case events.KindLineSet, events.KindClaim, events.KindCheckout:
			op, err := carts.OpFrom(e, drafts[i].data)
			if err != nil {
				continue
			}
			c := g.carts[op.CartID]
			if c == nil {
				c = &carts.Cart{}
			}
			n := carts.Apply(*c, op)
			g.put(&n)
		case events.KindReserve:
			b, ok := drafts[i].data.(holdReserve)
			if !ok || b.CartID == "" || !strings.HasPrefix(b.ReservationID, store.CartHoldPrefix) {
				continue
			}
			g.putHold(store.CartHold{ReservationID: b.ReservationID, CartID: b.CartID, Location: b.Location,
				ExpiresAt: time.UnixMilli(b.ExpiresMS), Active: true, Lines: b.Lines})
		case events.KindRelease, events.KindFulfil:
			b, ok := drafts[i].data.(events.ReservationMove)
			if !ok {
				continue
			}
			cid, ok := g.holdOf[b.ReservationID]
			if !ok {
				continue
			}
			hs := g.holds[cid]
			for i := range hs {
				if hs[i].ReservationID == b.ReservationID {
					hs[i].Released, hs[i].Active = true, false
				}
			}
		}
	}
}
