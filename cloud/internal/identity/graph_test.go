package identity_test

import (
	"fmt"
	"math/rand"
	"slices"
	"testing"

	"github.com/omnisync/omnisync/cloud/internal/identity"
	"github.com/omnisync/omnisync/cloud/internal/identity/identitytest"
	"github.com/omnisync/omnisync/shared/events"
	"github.com/omnisync/omnisync/shared/hlc"
)

// mirror is what a store following only Changes knows: each identifier's
// customer and each master id's resolution.
type mirror struct {
	customer map[identity.Identifier]string
	resolve  map[string]string
}

func newMirror() *mirror {
	return &mirror{customer: map[identity.Identifier]string{}, resolve: map[string]string{}}
}

func (m *mirror) follow(t testing.TB, ch identity.Changes) {
	t.Helper()
	for _, mv := range ch.Moves {
		if got := m.customer[mv.Identifier]; got != mv.From {
			t.Fatalf("move of %v from %q, the mirror has it in %q", mv.Identifier, mv.From, got)
		}
		if mv.To == "" {
			delete(m.customer, mv.Identifier)
		} else {
			m.customer[mv.Identifier] = mv.To
		}
	}
	for _, mc := range ch.Masters {
		if got := m.resolve[mc.ID]; !mc.New && got != mc.From {
			t.Fatalf("master %s from %q, the mirror resolves it to %q", mc.ID, mc.From, got)
		}
		if mc.Removed {
			delete(m.resolve, mc.ID)
		} else {
			m.resolve[mc.ID] = mc.To
		}
	}
}

func mustApply(t testing.TB, g *identity.Graph, b identity.Batch) identity.Changes {
	t.Helper()
	ch, err := g.Apply(b)
	if err != nil {
		t.Fatalf("Apply: %v", err)
	}
	return ch
}

func newGraph(t testing.TB, p identity.Policy) *identity.Graph {
	t.Helper()
	g, err := identity.NewGraph(p)
	if err != nil {
		t.Fatal(err)
	}
	return g
}

// sameAsOracle checks every answer of g (and of the mirror following its
// changes) against the oracle's result; ids are every identifier the log
// names.
func sameAsOracle(t testing.TB, g *identity.Graph, m *mirror, res identitytest.Result, ids []identity.Identifier) {
	t.Helper()
	for _, id := range ids {
		want, in := res.Customer[id]
		got, ok := g.Lookup(id)
		if ok != in || got != want {
			t.Fatalf("Lookup(%v) = %q %v, oracle %q %v", id, got, ok, want, in)
		}
		if m != nil && m.customer[id] != want {
			t.Fatalf("mirror has %v in %q, oracle %q", id, m.customer[id], want)
		}
		if got := g.Cluster(id); got != res.Cluster[id] {
			t.Fatalf("Cluster(%v) = %q, oracle %q", id, got, res.Cluster[id])
		}
	}
	if got, want := g.Customers(), res.Customers(); !slices.Equal(got, want) {
		t.Fatalf("customers:\n got %v\nwant %v", got, want)
	}
	members := res.Members()
	for _, c := range res.Customers() {
		v, ok := g.Customer(c)
		if !ok || v.ID != c || v.Anchor != res.Anchor[c] {
			t.Fatalf("Customer(%s) = %+v %v, oracle anchor %v", c, v, ok, res.Anchor[c])
		}
		var got []identity.Identifier
		for _, mb := range v.Identifiers {
			got = append(got, mb.Identifier)
			if mb.Via != res.Via[mb.Identifier] {
				t.Fatalf("%v joined %s via %s, oracle %s", mb.Identifier, c, mb.Via, res.Via[mb.Identifier])
			}
		}
		if !slices.Equal(got, members[c]) {
			t.Fatalf("Customer(%s) identifiers\n got %v\nwant %v", c, got, members[c])
		}
		var merges []identitytest.Merge
		for _, mg := range v.Merges {
			merges = append(merges, identitytest.Merge{Observation: mg.Observation, Joined: mg.Joined})
		}
		if !slices.EqualFunc(merges, res.Merges[c], func(a, b identitytest.Merge) bool {
			return a.Observation == b.Observation && slices.Equal(a.Joined, b.Joined)
		}) {
			t.Fatalf("Customer(%s) merges\n got %v\nwant %v", c, merges, res.Merges[c])
		}
	}
	for mid, anchor := range res.Anchor {
		if got, ok := g.Resolve(mid); !ok || got != res.Customer[anchor] {
			t.Fatalf("Resolve(%s) = %q %v, oracle %q", mid, got, ok, res.Customer[anchor])
		}
	}
	// Ids minted on the way (an arrival order the oracle never saw) still
	// resolve where their anchor is.
	for _, mid := range g.Masters() {
		anchor, ok := g.Anchor(mid)
		if !ok {
			t.Fatalf("Anchor(%s) missing", mid)
		}
		want := res.Customer[anchor]
		got, _ := g.Resolve(mid)
		if got != want {
			t.Fatalf("Resolve(%s) = %q, its anchor is in %q", mid, got, want)
		}
		if m != nil && m.resolve[mid] != want {
			t.Fatalf("mirror resolves %s to %q, want %q", mid, m.resolve[mid], want)
		}
	}
}

func logIdentifiers(log identitytest.Log) []identity.Identifier {
	var ids []identity.Identifier
	for _, o := range log.Observations {
		ids = append(ids, o.Identifiers...)
	}
	slices.SortFunc(ids, identity.Identifier.Compare)
	return slices.Compact(ids)
}

// Ensure that any order, duplication, delay and batching of the same
// observations and unlinks gives the graph the oracle computes from
// scratch, and that a store following only the changes agrees.
func TestGraph_AnyOrderMatchesOracle(t *testing.T) {
	p := identitytest.Policy()
	for seed := int64(1); seed <= 150; seed++ {
		rng := rand.New(rand.NewSource(seed))
		opts := identitytest.Options{People: 5 + rng.Intn(25), Observations: 20 + rng.Intn(200), Unlinks: rng.Intn(25)}
		log := identitytest.Generate(rng, opts)
		res := identitytest.Oracle(p, log.Observations, log.Unlinks)
		ids := logIdentifiers(log)
		for run := range 4 {
			g := newGraph(t, p)
			m := newMirror()
			for _, b := range identitytest.Batches(rng, identitytest.Deliveries(rng, log, 0.3), 1+rng.Intn(40)) {
				m.follow(t, mustApply(t, g, b))
			}
			t.Run(fmt.Sprintf("seed%d/run%d", seed, run), func(t *testing.T) {
				sameAsOracle(t, g, m, res, ids)
			})
		}
	}
}

// Ensure that undoing a merge gives back exactly the graph there was
// before it, whether the merging observation is the newest or older than
// the rest, and whatever came after it.
func TestGraph_UnmergeRestoresExactly(t *testing.T) {
	p := identitytest.Policy()
	for seed := int64(1); seed <= 200; seed++ {
		rng := rand.New(rand.NewSource(seed))
		opts := identitytest.Options{People: 5 + rng.Intn(20), Observations: 20 + rng.Intn(120), Unlinks: rng.Intn(8)}
		log := identitytest.Generate(rng, opts)
		g := newGraph(t, p)
		m := newMirror()
		m.follow(t, mustApply(t, g, identity.Batch{Observations: log.Observations, Unlinks: log.Unlinks}))
		before := identitytest.Oracle(p, log.Observations, log.Unlinks)
		customers := before.Customers()
		if len(customers) < 2 {
			continue
		}
		// A manual merge of two customers, through one identifier of each
		// and, sometimes, a new one; stamped anywhere in the log.
		members := before.Members()
		a, b := customers[rng.Intn(len(customers))], customers[rng.Intn(len(customers))]
		for a == b {
			b = customers[rng.Intn(len(customers))]
		}
		ids := []identity.Identifier{members[a][rng.Intn(len(members[a]))], members[b][rng.Intn(len(members[b]))]}
		if rng.Intn(2) == 0 {
			ids = append(ids, identity.Identifier{Type: identity.Email, Value: fmt.Sprintf("new%d@mail.example", seed)})
		}
		merge := identity.Observation{
			Stamp:       identitytest.Stamp(rng, opts, 10_000),
			Identifiers: ids,
			Evidence:    identity.Evidence{Rule: identity.RuleManual, Operator: "hq-1"},
		}
		ch := mustApply(t, g, identity.Batch{Observations: []identity.Observation{merge}})
		m.follow(t, ch)
		if ra, _ := g.Lookup(ids[0]); ra != func() string { r, _ := g.Lookup(ids[1]); return r }() {
			t.Fatalf("seed %d: the manual link did not merge", seed)
		}
		// Sometimes more happens before HQ undoes it.
		var later []identity.Observation
		if rng.Intn(2) == 0 {
			more := identitytest.Generate(rng, identitytest.Options{People: opts.People, Observations: 10, Prefix: "", BaseWall: opts.BaseWall + 500})
			for i := range more.Observations {
				more.Observations[i].Stamp.ID = fmt.Sprintf("later-%d-%d", seed, i)
			}
			later = more.Observations
			m.follow(t, mustApply(t, g, identity.Batch{Observations: later}))
		}
		undo := identity.Unlink{Observation: merge.ID(), Stamp: identitytest.Stamp(rng, opts, 10_001), Operator: "hq-2", Reason: "two people"}
		m.follow(t, mustApply(t, g, identity.Batch{Unlinks: []identity.Unlink{undo}}))
		want := identitytest.Oracle(p, append(slices.Clone(log.Observations), later...), log.Unlinks)
		all := append(logIdentifiers(log), ids...)
		for _, o := range later {
			all = append(all, o.Identifiers...)
		}
		t.Run(fmt.Sprintf("seed%d", seed), func(t *testing.T) {
			sameAsOracle(t, g, m, want, all)
			if len(later) == 0 {
				// Exactly the customers, ids and members of before the merge.
				if !slices.Equal(g.Customers(), before.Customers()) {
					t.Fatalf("customers %v, before the merge %v", g.Customers(), before.Customers())
				}
			}
		})
	}
}

func st(wall int64, id string) events.Stamp {
	return events.Stamp{HLC: hlc.Timestamp{Wall: wall}, ID: id}
}

func obs(wall int64, id string, rule string, ids ...identity.Identifier) identity.Observation {
	ev := identity.Evidence{Store: "S1", Device: "pos-1", Rule: rule}
	if rule == identity.RuleManual {
		ev = identity.Evidence{Rule: rule, Operator: "hq-1"}
	}
	return identity.Observation{Stamp: st(wall, id), Identifiers: ids, Evidence: ev}
}

var (
	card1  = identity.Identifier{Type: identity.Loyalty, Value: "LC-1"}
	card2  = identity.Identifier{Type: identity.Loyalty, Value: "LC-2"}
	mail1  = identity.Identifier{Type: identity.Email, Value: "a@b.example"}
	mail2  = identity.Identifier{Type: identity.Email, Value: "c@d.example"}
	family = identity.Identifier{Type: identity.Email, Value: "family@home.example"}
	acct1  = identity.Identifier{Type: identity.Account, Value: "W-1"}
	phone1 = identity.Identifier{Type: identity.Phone, Value: "+821012345678"}
	kiosk  = identity.Identifier{Type: identity.App, Value: "kiosk-1"}
	null   = identity.Identifier{Type: identity.Loyalty, Value: "NULL"}
)

// Ensure that the story holds: store A links card and e-mail, the
// web shop links e-mail and account, and there is one customer with the
// oldest id; the other id redirects to it; undoing the web shop's link
// splits them exactly.
func TestGraph_OneCustomerAcrossChannels(t *testing.T) {
	g := newGraph(t, identity.DefaultPolicy())
	m := newMirror()
	m.follow(t, mustApply(t, g, identity.Batch{Observations: []identity.Observation{obs(100, "e1", "identify", card1, mail1)}}))
	store, _ := g.Lookup(card1)
	if store != identity.MasterID("e1", 0) { // the card is the anchor: strongest
		t.Fatalf("master %s, want MasterID(e1, 0)", store)
	}
	m.follow(t, mustApply(t, g, identity.Batch{Observations: []identity.Observation{obs(200, "e2", "identify", acct1)}}))
	web, _ := g.Lookup(acct1)
	ch := mustApply(t, g, identity.Batch{Observations: []identity.Observation{obs(300, "e3", "identify", mail1, acct1)}})
	m.follow(t, ch)
	if got, _ := g.Lookup(acct1); got != store {
		t.Fatalf("account in %s, want the store's customer %s", got, store)
	}
	if r, _ := g.Resolve(web); r != store {
		t.Fatalf("the web shop's id resolves to %q, want %q", r, store)
	}
	if !slices.Equal(ch.Customers, []string{store}) || len(ch.Moves) != 1 || ch.Moves[0].From != web || ch.Moves[0].To != store {
		t.Fatalf("changes %+v", ch)
	}
	c, _ := g.Customer(web)
	if c.ID != store || len(c.Merges) != 1 || c.Merges[0].Observation != "e3" || !slices.Equal(c.Merges[0].Joined, []string{store, web}) {
		t.Fatalf("customer %+v", c)
	}
	ch = mustApply(t, g, identity.Batch{Unlinks: []identity.Unlink{{Observation: "e3", Stamp: st(400, "u1"), Operator: "hq-1"}}})
	m.follow(t, ch)
	if got, _ := g.Lookup(acct1); got != web {
		t.Fatalf("after the unmerge the account is in %s, want %s", got, web)
	}
	if r, _ := g.Resolve(web); r != web {
		t.Fatalf("after the unmerge %s resolves to %s", web, r)
	}
	if got, _ := g.Lookup(mail1); got != store {
		t.Fatalf("after the unmerge the e-mail is in %s", got)
	}
	// HQ changes its mind: the restore is newer, so it wins.
	m.follow(t, mustApply(t, g, identity.Batch{Unlinks: []identity.Unlink{{Observation: "e3", Stamp: st(500, "u2"), Operator: "hq-1", Restore: true}}}))
	if got, _ := g.Lookup(acct1); got != store {
		t.Fatalf("after the restore the account is in %s", got)
	}
}

// Ensure that the limits keep strangers apart: a shared family address
// joins the first shopper's card, and a second card with it founds a
// customer of its own instead of fusing two people; the card the
// observation leads with wins its own customer.
func TestGraph_LimitsKeepStrangersApart(t *testing.T) {
	g := newGraph(t, identity.DefaultPolicy())
	mustApply(t, g, identity.Batch{Observations: []identity.Observation{
		obs(100, "e1", "identify", card1, family),
		obs(200, "e2", "identify", card2, family, mail2),
	}})
	c1, _ := g.Lookup(card1)
	c2, _ := g.Lookup(card2)
	if c1 == c2 {
		t.Fatal("two loyalty cards fused through a shared address")
	}
	if f, _ := g.Lookup(family); f != c1 {
		t.Fatal("the shared address left its first customer")
	}
	if m, _ := g.Lookup(mail2); m != c2 {
		t.Fatal("the second shopper's own address did not follow its card")
	}
	// Blocked identifiers link nothing and belong to nobody.
	mustApply(t, g, identity.Batch{Observations: []identity.Observation{
		obs(300, "e3", "identify", card1, null),
		obs(301, "e4", "identify", card2, null),
	}})
	if _, ok := g.Lookup(null); ok {
		t.Fatal("a blocked identifier has a customer")
	}
	// An operator may link over the limits.
	mustApply(t, g, identity.Batch{Observations: []identity.Observation{obs(400, "e5", identity.RuleManual, card1, card2)}})
	if a, _ := g.Lookup(card1); a != func() string { b, _ := g.Lookup(card2); return b }() {
		t.Fatal("a manual link was refused")
	}
	// Late, older evidence replays the cluster: an observation stamped
	// before e1 linking card2 and the family address makes card2's the
	// customer the address joined first.
	mustApply(t, g, identity.Batch{Unlinks: []identity.Unlink{{Observation: "e5", Stamp: st(500, "u1"), Operator: "hq-1"}}})
	mustApply(t, g, identity.Batch{Observations: []identity.Observation{obs(50, "e0", "identify", card2, family)}})
	if f, _ := g.Lookup(family); f != identity.MasterID("e0", 0) {
		t.Fatalf("the address is in %s, want the customer founded by e0", f)
	}
	if a, _ := g.Lookup(card1); a == identity.MasterID("e0", 0) {
		t.Fatal("card1 fused with card2")
	}
}

// Ensure that a kiosk blocked by configuration never fuses the shoppers
// who use it.
func TestGraph_SharedKioskNeverFuses(t *testing.T) {
	p, err := identity.Policy{Blocklist: map[identity.Type][]string{identity.App: {"kiosk-1"}}}.Normalize()
	if err != nil {
		t.Fatal(err)
	}
	g := newGraph(t, p)
	mustApply(t, g, identity.Batch{Observations: []identity.Observation{
		obs(100, "e1", "identify", mail1, kiosk),
		obs(200, "e2", "identify", mail2, kiosk),
	}})
	a, _ := g.Lookup(mail1)
	b, _ := g.Lookup(mail2)
	if a == b || a == "" || b == "" {
		t.Fatalf("customers %q %q", a, b)
	}
}

// Ensure that Forget removes an erased customer's identifiers, the
// observations naming them and the ids anchored on them, refuses late
// copies, and recomputes what remains.
func TestGraph_Forget(t *testing.T) {
	g := newGraph(t, identity.DefaultPolicy())
	m := newMirror()
	m.follow(t, mustApply(t, g, identity.Batch{Observations: []identity.Observation{
		obs(100, "e1", "identify", card1, mail1),
		obs(200, "e2", "identify", phone1, mail2),
		obs(300, "e3", "identify", mail1, phone1), // joins the two
		obs(400, "e4", "identify", card2, family),
	}}))
	whole, _ := g.Lookup(card1)
	ch := g.Forget(card1, mail1)
	m.follow(t, ch)
	for _, id := range []identity.Identifier{card1, mail1} {
		if _, ok := g.Lookup(id); ok || len(g.Links(id)) != 0 {
			t.Fatalf("%v still known", id)
		}
	}
	// e1 and e3 named them: gone; e2 still links phone1 and mail2.
	rest, ok := g.Lookup(phone1)
	if !ok || rest != identity.MasterID("e2", 0) {
		t.Fatalf("phone1 in %q", rest)
	}
	if _, ok := g.Resolve(whole); ok {
		t.Fatal("the erased customer's id still resolves")
	}
	removed := 0
	for _, mv := range ch.Moves {
		if mv.Removed {
			removed++
		}
	}
	if removed != 2 {
		t.Fatalf("changes %+v", ch)
	}
	m.follow(t, mustApply(t, g, identity.Batch{Observations: []identity.Observation{obs(100, "e1", "identify", card1, mail1)}}))
	if _, ok := g.Lookup(card1); ok {
		t.Fatal("a late copy of a forgotten observation came back")
	}
	if g.Identifiers() != 4 {
		t.Fatalf("%d identifiers held", g.Identifiers())
	}
}

// Ensure that Apply refuses invalid input whole.
func TestGraph_ApplyValidates(t *testing.T) {
	g := newGraph(t, identity.DefaultPolicy())
	for _, b := range []identity.Batch{
		{Observations: []identity.Observation{{Identifiers: []identity.Identifier{card1}}}},
		{Observations: []identity.Observation{{Stamp: events.Stamp{ID: "x"}, Identifiers: []identity.Identifier{card1}}}},
		{Observations: []identity.Observation{obs(1, "x", "identify", identity.Identifier{Type: "fax", Value: "1"})}},
		{Observations: []identity.Observation{{Stamp: st(1, "x"), Identifiers: []identity.Identifier{card1}, Evidence: identity.Evidence{Rule: identity.RuleManual}}}},
		{Unlinks: []identity.Unlink{{Observation: "x", Stamp: st(1, "u")}}},
	} {
		if _, err := g.Apply(b); err == nil {
			t.Errorf("Apply(%+v) accepted", b)
		}
	}
	if g.Observations() != 0 {
		t.Fatal("a refused batch left observations")
	}
	if _, err := identity.NewGraph(identity.Policy{}); err == nil {
		t.Fatal("NewGraph accepted a policy that is not normalised")
	}
}

// Ensure that master ids are UUIDs that depend only on their inputs.
func TestMasterID(t *testing.T) {
	a := identity.MasterID("e1", 0)
	if len(a) != 36 || a[14] != '8' || a != identity.MasterID("e1", 0) || a == identity.MasterID("e1", 1) || a == identity.MasterID("e2", 0) {
		t.Fatalf("MasterID = %s", a)
	}
}

// Ensure that a graph holding only what the store loads for a batch (the
// clusters of the identifiers the batch names, whole) reports the same
// identifier moves and customers as the whole graph.
func TestGraph_PartialLoadSameChanges(t *testing.T) {
	p := identitytest.Policy()
	for seed := int64(1); seed <= 150; seed++ {
		rng := rand.New(rand.NewSource(seed))
		opts := identitytest.Options{People: 5 + rng.Intn(25), Observations: 20 + rng.Intn(150), Unlinks: rng.Intn(10)}
		log := identitytest.Generate(rng, opts)
		whole := newGraph(t, p)
		for _, b := range identitytest.Batches(rng, identitytest.Deliveries(rng, log, 0.2), 30) {
			mustApply(t, whole, b)
		}
		// The batch: new observations (some late), unlinks and restores of
		// old ones.
		more := identitytest.Generate(rng, identitytest.Options{People: opts.People, Observations: 1 + rng.Intn(8), BaseWall: opts.BaseWall + int64(rng.Intn(300))})
		for i := range more.Observations {
			more.Observations[i].Stamp.ID = fmt.Sprintf("new-%d", i)
		}
		batch := identity.Batch{Observations: more.Observations}
		for i := range rng.Intn(4) {
			batch.Unlinks = append(batch.Unlinks, identity.Unlink{
				Observation: log.Observations[rng.Intn(len(log.Observations))].ID(),
				Stamp:       st(opts.BaseWall+1_000_000+int64(i), fmt.Sprintf("u-%d", i)),
				Operator:    "hq-1", Restore: rng.Intn(3) == 0,
			})
		}
		// What the store loads.
		byID := map[string]identity.Observation{}
		for _, o := range log.Observations {
			byID[o.ID()] = o
		}
		need := map[identity.Identifier]bool{}
		for _, o := range batch.Observations {
			for _, id := range o.Identifiers {
				need[id] = true
			}
		}
		for _, u := range batch.Unlinks {
			for _, id := range byID[u.Observation].Identifiers {
				need[id] = true
			}
		}
		labels := map[string]bool{}
		for id := range need {
			if l := whole.Cluster(id); l != "" {
				labels[l] = true
			}
		}
		held := map[identity.Identifier]bool{}
		for _, id := range logIdentifiers(log) {
			if need[id] || labels[whole.Cluster(id)] {
				held[id] = true
			}
		}
		var load identity.Batch
		loaded := map[string]bool{}
		for _, o := range log.Observations {
			if slices.ContainsFunc(o.Identifiers, func(id identity.Identifier) bool { return held[id] }) && !loaded[o.ID()] {
				loaded[o.ID()] = true
				load.Observations = append(load.Observations, o)
			}
		}
		for _, u := range log.Unlinks {
			if loaded[u.Observation] {
				load.Unlinks = append(load.Unlinks, u)
			}
		}
		part := newGraph(t, p)
		mustApply(t, part, load)
		got, want := mustApply(t, part, batch), mustApply(t, whole, batch)
		if !slices.Equal(got.Moves, want.Moves) || !slices.Equal(got.Customers, want.Customers) {
			t.Fatalf("seed %d: the partial graph's changes differ:\n got %+v\nwant %+v", seed, got, want)
		}
	}
}

func TestOrderedMasterID(t *testing.T) {
	at := func(w int64, id string) events.Stamp { return events.Stamp{HLC: hlc.Timestamp{Wall: w}, ID: id} }
	a, b := identity.OrderedMasterID(at(1_700_000_000_000, "e9"), 0), identity.OrderedMasterID(at(1_700_000_000_001, "e1"), 0)
	if len(a) != 36 || a[14] != '8' || a >= b || a == identity.OrderedMasterID(at(1_700_000_000_000, "e9"), 1) {
		t.Fatalf("ordered ids %s, %s", a, b)
	}
	if a[:13] != "018bcfe5-6800" {
		t.Fatalf("%s does not start with its clock", a)
	}
	since := at(2000, "x").HLC.Pack()
	p := identity.Policy{OrderedSince: since}
	for _, c := range []struct {
		name string
		o    events.Stamp
		want string
	}{
		{"before the cut-over: as minted before", at(1999, "e1"), identity.MasterID("e1", 0)},
		{"at the cut-over", at(2000, "e1"), identity.OrderedMasterID(at(2000, "e1"), 0)},
		{"after", at(5000, "e2"), identity.OrderedMasterID(at(5000, "e2"), 0)},
	} {
		if got := p.MasterID(c.o, 0); got != c.want {
			t.Errorf("%s: %s, want %s", c.name, got, c.want)
		}
	}
	if got := (identity.Policy{}).MasterID(at(5000, "e2"), 0); got != identity.MasterID("e2", 0) {
		t.Errorf("no cut-over: %s", got)
	}
}
