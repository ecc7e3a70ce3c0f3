package identity_test

import (
	"fmt"
	"maps"
	"math/rand"
	"reflect"
	"slices"
	"testing"

	"github.com/omnisync/omnisync/cloud/internal/consent"
	"github.com/omnisync/omnisync/cloud/internal/identity"
	"github.com/omnisync/omnisync/cloud/internal/identity/identitytest"
	"github.com/omnisync/omnisync/cloud/internal/profiles"
	"github.com/omnisync/omnisync/shared/events"
)

// books is what a store keeps per subject identifier: the data of events
// naming a customer, attributed to the subject of the identifiers they
// named (Policy.Subject), never to a merged customer.
type books struct {
	policy    identity.Policy
	profile   map[identity.Identifier]profiles.Profile
	consent   map[identity.Identifier]*consent.State
	purchases map[identity.Identifier][]string
	carts     map[identity.Identifier][]string
}

func newBooks(p identity.Policy) *books {
	return &books{
		policy: p, profile: map[identity.Identifier]profiles.Profile{}, consent: map[identity.Identifier]*consent.State{},
		purchases: map[identity.Identifier][]string{}, carts: map[identity.Identifier][]string{},
	}
}

// dataEvent is an event naming a customer: an observation of the
// identifiers it names, and the data it brings.
type dataEvent struct {
	obs      identity.Observation
	update   *profiles.Update
	decision *consent.Decision
	purchase string
	cart     string
}

func (b *books) record(e dataEvent) {
	s, ok := b.policy.Subject(e.obs.Identifiers)
	if !ok {
		return
	}
	switch {
	case e.update != nil:
		if b.profile[s] == nil {
			b.profile[s] = profiles.Profile{}
		}
		b.profile[s].Apply(*e.update)
	case e.decision != nil:
		if b.consent[s] == nil {
			b.consent[s] = &consent.State{}
		}
		b.consent[s].Add(*e.decision)
	case e.purchase != "":
		b.purchases[s] = append(b.purchases[s], e.purchase)
	case e.cart != "":
		b.carts[s] = append(b.carts[s], e.cart)
	}
}

// view is one customer's 360 as the hub shows it.
type view struct {
	Identifiers []identity.Identifier
	Profile     map[string]string
	Consent     []consent.Decision
	Purchases   []string
	Carts       []string
}

// views computes every customer's view from the graph and the books.
func (b *books) views(g *identity.Graph) map[string]view {
	out := map[string]view{}
	for _, id := range g.Customers() {
		c, _ := g.Customer(id)
		var v view
		var ps []profiles.Profile
		var cs []consent.State
		for _, m := range c.Identifiers {
			v.Identifiers = append(v.Identifiers, m.Identifier)
			ps = append(ps, b.profile[m.Identifier])
			if s := b.consent[m.Identifier]; s != nil {
				cs = append(cs, *s)
			}
			v.Purchases = append(v.Purchases, b.purchases[m.Identifier]...)
			v.Carts = append(v.Carts, b.carts[m.Identifier]...)
		}
		v.Profile = profiles.Join(ps...).Visible()
		v.Consent = consent.Join(cs...).Decisions()
		slices.Sort(v.Purchases)
		slices.Sort(v.Carts)
		out[id] = v
	}
	return out
}

// dataEvents draws n events naming shoppers of people, stamped across the
// log's span.
func dataEvents(rng *rand.Rand, opts identitytest.Options, people [][]identity.Identifier, n int, prefix string) []dataEvent {
	var out []dataEvent
	fields := []string{"first_name", "tier", "postcode"}
	for i := range n {
		p := people[rng.Intn(len(people))]
		ids := []identity.Identifier{p[rng.Intn(len(p))]}
		if rng.Intn(3) == 0 {
			ids = append(ids, p[rng.Intn(len(p))])
		}
		stamp := identitytest.Stamp(rng, opts, 5000+i)
		stamp.ID = fmt.Sprintf("%s-%d", prefix, i)
		e := dataEvent{obs: identity.Observation{Stamp: stamp, Identifiers: ids}}
		switch rng.Intn(4) {
		case 0:
			v := fmt.Sprintf("v%d", rng.Intn(4))
			e.update = &profiles.Update{Stamp: stamp, Fields: map[string]*string{fields[rng.Intn(len(fields))]: &v}}
			e.obs.Evidence.Rule = "update"
		case 1:
			st := []consent.Status{consent.Granted, consent.Denied, consent.Revoked}[rng.Intn(3)]
			e.decision = &consent.Decision{Purpose: consent.Purposes()[rng.Intn(2)], Channel: consent.Channels()[rng.Intn(3)], Status: st, Stamp: stamp}
			e.obs.Evidence.Rule = "consent"
		case 2:
			e.purchase = "sale-" + stamp.ID
			e.obs.Evidence.Rule = "sale"
		default:
			e.cart = "cart-" + stamp.ID
			e.obs.Evidence.Rule = "claim"
		}
		out = append(out, e)
	}
	return out
}

func observationsOf(es []dataEvent) []identity.Observation {
	out := make([]identity.Observation, len(es))
	for i, e := range es {
		out[i] = e.obs
	}
	return out
}

// Ensure that, for random graphs with profiles, consent, purchases and
// carts, undoing a merge gives every side back exactly its identifiers,
// attributes, consent, purchases and carts under its own id, and that
// data arriving between the merge and the unmerge lands on the side its
// subject is on, as if the merge had never been.
func TestUnmerge_RestoresEachSideExactly(t *testing.T) {
	p := identitytest.Policy()
	for seed := int64(1); seed <= 150; seed++ {
		rng := rand.New(rand.NewSource(seed))
		opts := identitytest.Options{People: 4 + rng.Intn(12), Observations: 10 + rng.Intn(60), Unlinks: rng.Intn(4)}
		people := identitytest.People(rand.New(rand.NewSource(seed)), opts)
		log := identitytest.Generate(rand.New(rand.NewSource(seed)), opts)
		data := dataEvents(rng, opts, people, 10+rng.Intn(40), "d")
		b := newBooks(p)
		g := newGraph(t, p)
		mustApply(t, g, identity.Batch{Observations: append(slices.Clone(log.Observations), observationsOf(data)...), Unlinks: log.Unlinks})
		for _, e := range data {
			b.record(e)
		}
		before := b.views(g)
		ids := slices.Collect(maps.Keys(before))
		slices.Sort(ids)
		if len(ids) < 2 {
			continue
		}
		x, y := ids[rng.Intn(len(ids))], ids[rng.Intn(len(ids))]
		for x == y {
			y = ids[rng.Intn(len(ids))]
		}
		// HQ's links and unlinks, each newer than the one before.
		hq := func(k int64) events.Stamp { return st(1_700_000_000_000+10_000_000+k, fmt.Sprintf("hq-%d", k)) }
		// HQ's merge is stamped now, the newest of all; a link stamped
		// anywhere in the past (a late event) must unmerge exactly too.
		newest := rng.Intn(2) == 0
		stamp := hq(0)
		if !newest {
			stamp = identitytest.Stamp(rng, opts, 9000)
		}
		merge := identity.Observation{
			Stamp:       stamp,
			Identifiers: []identity.Identifier{before[x].Identifiers[0], before[y].Identifiers[len(before[y].Identifiers)-1]},
			Evidence:    identity.Evidence{Rule: identity.RuleManual, Operator: "hq-1"},
		}
		mustApply(t, g, identity.Batch{Observations: []identity.Observation{merge}})
		merged := b.views(g)
		one, _ := g.Lookup(merge.Identifiers[0])
		if other, _ := g.Lookup(merge.Identifiers[1]); one != other {
			t.Fatalf("seed %d: not merged", seed)
		}
		// The newest link joins the two customers whole (a link stamped in
		// the past replays their history, where the limits may decide
		// otherwise).
		if got, want := merged[one].Purchases, sortedUnion(before[x].Purchases, before[y].Purchases); newest && !slices.Equal(got, want) {
			t.Fatalf("seed %d: merged purchases %v, want %v", seed, got, want)
		}
		if newest && len(merged[one].Identifiers) != len(before[x].Identifiers)+len(before[y].Identifiers) {
			t.Fatalf("seed %d: merged identifiers %v, from %v and %v", seed, merged[one].Identifiers, before[x].Identifiers, before[y].Identifiers)
		}
		undo := identity.Unlink{Observation: merge.ID(), Stamp: hq(1), Operator: "hq-2"}
		mustApply(t, g, identity.Batch{Unlinks: []identity.Unlink{undo}})
		if after := b.views(g); !reflect.DeepEqual(after, before) {
			t.Fatalf("seed %d: after the unmerge\n got %+v\nwant %+v", seed, after, before)
		}
		// Redo it, let more data arrive while merged, undo again: the
		// result is the hub that never saw the merge.
		mustApply(t, g, identity.Batch{Unlinks: []identity.Unlink{{Observation: merge.ID(), Stamp: hq(2), Operator: "hq-1", Restore: true}}})
		more := dataEvents(rng, opts, people, 10, "m")
		mustApply(t, g, identity.Batch{Observations: observationsOf(more)})
		for _, e := range more {
			b.record(e)
		}
		mustApply(t, g, identity.Batch{Unlinks: []identity.Unlink{{Observation: merge.ID(), Stamp: hq(3), Operator: "hq-2"}}})
		fresh := newGraph(t, p)
		mustApply(t, fresh, identity.Batch{Observations: slices.Concat(log.Observations, observationsOf(data), observationsOf(more)), Unlinks: log.Unlinks})
		if got, want := b.views(g), b.views(fresh); !reflect.DeepEqual(got, want) {
			t.Fatalf("seed %d: after merge, more data and unmerge\n got %+v\nwant %+v", seed, got, want)
		}
	}
}

func sortedUnion(a, b []string) []string {
	out := slices.Concat(a, b)
	slices.Sort(out)
	return out
}
