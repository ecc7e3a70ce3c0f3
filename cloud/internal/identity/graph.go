package identity

import (
	"fmt"
	"slices"

	"github.com/omnisync/omnisync/shared/events"
)

// Graph is the identity graph of a set of observations and unlinks: which
// customer each identifier belongs to, each customer's master id, and the
// redirects of master ids absorbed by merges. Its state is a function of
// the set of observations and unlinks applied, whatever their order,
// duplication or batching (the rules are in the package documentation).
//
// A Graph may hold a part of the whole, as the store loads it for a
// batch: it must then hold whole (every observation naming their
// identifiers, live or not, and every unlink naming those) the clusters
// (Move.Cluster) of every identifier the batch's observations name, and
// of every identifier of the observations its unlinks name. Its changes
// are then exactly the whole graph's; an identifier it does not hold
// looks new to it. A Graph is not safe for concurrent use.
type Graph struct {
	policy  Policy
	nodes   []*node
	byID    map[Identifier]int32
	free    []int32 // slots of forgotten nodes
	obs     []*obsRec
	obsByID map[string]int32
	// pending are unlinks of observations not seen yet.
	pending map[string]Unlink
	// masters is every master id minted, with its anchor.
	masters map[string]*masterRec
	// slab hands out the records of new observations and identifiers.
	slab slab
}

// slab hands out the small records every new observation, identifier
// and customer takes from few large allocations, in chunks sized by the
// batch, made when first needed: a batch of new shoppers allocated a
// dozen of them per observation. A chunk lives as long as any record
// of it: observations are never freed and the slots of forgotten
// identifiers are reused, but a customer or cluster a replay drops stays
// until its chunk's last one goes, which is fine for the graphs the hub
// loads for one batch, not for a graph kept for ever under churn.
type slab struct {
	// chunk is the number of observations a chunk is made for.
	chunk   int
	recs    []obsRec
	nodes   []node
	comps   []component
	clus    []cluster
	masters []masterRec
	ids     []Identifier
	ns      []int32
	index   []int
}

// reserve sizes the chunks made from now on for a batch of n
// observations.
func (s *slab) reserve(n int) { s.chunk = max(n, 16) }

// take returns the first element of *v, made in a chunk of n when *v is
// empty.
func take[T any](v *[]T, n int) *T {
	if len(*v) == 0 {
		*v = make([]T, n)
	}
	p := &(*v)[0]
	*v = (*v)[1:]
	return p
}

// takeN returns an empty slice of capacity k from *v, its own (appending
// past k allocates), made in a chunk of at least n when *v is short.
func takeN[T any](v *[]T, k, n int) []T {
	if len(*v) < k {
		*v = make([]T, max(k, n))
	}
	out := (*v)[:0:k]
	*v = (*v)[k:]
	return out
}

func (s *slab) rec() *obsRec                   { return take(&s.recs, max(s.chunk, 16)) }
func (s *slab) node() *node                    { return take(&s.nodes, 2*max(s.chunk, 16)) }
func (s *slab) component() *component          { return take(&s.comps, max(s.chunk, 16)) }
func (s *slab) cluster() *cluster              { return take(&s.clus, max(s.chunk, 16)) }
func (s *slab) master() *masterRec             { return take(&s.masters, max(s.chunk, 16)) }
func (s *slab) identifiers(k int) []Identifier { return takeN(&s.ids, k, 2*max(s.chunk, 16)) }
func (s *slab) int32s(k int) []int32           { return takeN(&s.ns, k, 4*max(s.chunk, 16)) }
func (s *slab) ints(k int) []int               { return takeN(&s.index, k, 2*max(s.chunk, 16)) }

// node is one identifier.
type node struct {
	id Identifier
	// obs are the observations naming it, live or not.
	obs []int32
	// comp is its customer; nil when no live observation names it.
	comp *component
	// via is the observation that put it in comp.
	via int32
	// clu is its cluster; nil when no live observation names it.
	clu *cluster
	// anchors are the master ids anchored on it.
	anchors []string
}

// obsRec is one observation.
type obsRec struct {
	o Observation
	// nodes are its identifiers that are not blocked, in Compare order.
	nodes []int32
	// index[k] is the position of nodes[k] in o's canonical identifiers,
	// which MasterID takes.
	index []int
	live  bool
	// unlink is the newest Unlink naming it, if hasUnlink.
	unlink    Unlink
	hasUnlink bool
	forgotten bool
}

// component is one customer.
type component struct {
	master  string
	anchor  int32
	founded events.Stamp
	counts  [numTypes]int32
	members []int32
	merges  []mergeRec
}

// mergeRec is an observation that joined existing customers.
type mergeRec struct {
	obs    int32
	joined []string // their master ids then, the survivor first
}

// cluster is a connected set of identifiers through live observations,
// whether the limits let those observations link them or not: the
// observations that can change each other's outcome.
type cluster struct {
	members []int32
	// label and newest are its live observations with the smallest and
	// the largest stamp.
	label, newest int32
}

// masterRec is one minted master id.
type masterRec struct {
	anchor  int32
	founded events.Stamp
}

// NewGraph returns an empty graph under p, which must be normalised
// (Policy.Normalize; DefaultPolicy is).
func NewGraph(p Policy) (*Graph, error) {
	if !p.ready {
		return nil, fmt.Errorf("%w: not normalised", ErrPolicy)
	}
	return &Graph{
		policy: p, byID: map[Identifier]int32{}, obsByID: map[string]int32{},
		pending: map[string]Unlink{}, masters: map[string]*masterRec{},
	}, nil
}

// Policy returns the graph's policy.
func (g *Graph) Policy() Policy { return g.policy }

// Batch is what one Apply takes: new observations and unlinks.
type Batch struct {
	Observations []Observation
	Unlinks      []Unlink
}

// Apply adds b's observations and unlinks and returns what changed. An
// observation already applied (by id) changes nothing, whatever its
// content; an unlink changes its observation only if it is the newest one
// naming it. Apply applies nothing and returns an error wrapping
// ErrObservation if any item of b is invalid.
//
// The work is proportional to the clusters b touches: an observation newer
// than everything in its cluster is linked at once; an older one, or an
// unlink, replays its cluster's observations.
func (g *Graph) Apply(b Batch) (Changes, error) {
	for i, o := range b.Observations {
		if err := o.Validate(); err != nil {
			return Changes{}, fmt.Errorf("observation %d: %w", i, err)
		}
	}
	for i, u := range b.Unlinks {
		if err := u.Validate(); err != nil {
			return Changes{}, fmt.Errorf("unlink %d: %w", i, err)
		}
	}
	if len(g.obs) == 0 && len(g.nodes) == 0 && len(b.Observations) > 0 {
		// An empty graph (the store loads one per batch, most often with
		// nothing in it for a batch of new shoppers) takes the batch at
		// once: room for it rather than maps grown by doubling.
		g.byID = make(map[Identifier]int32, 2*len(b.Observations))
		g.obsByID = make(map[string]int32, len(b.Observations))
		g.nodes = make([]*node, 0, 2*len(b.Observations))
		g.obs = make([]*obsRec, 0, len(b.Observations))
		if len(g.masters) == 0 {
			g.masters = make(map[string]*masterRec, len(b.Observations))
		}
	}
	g.slab.reserve(len(b.Observations))
	ch := g.newTracker(2 * len(b.Observations))
	var fresh, flipped []int32
	for _, u := range b.Unlinks {
		i, ok := g.obsByID[u.Observation]
		if !ok {
			if p, ok := g.pending[u.Observation]; !ok || u.newer(p) {
				g.pending[u.Observation] = u
			}
			continue
		}
		r := g.obs[i]
		if r.forgotten || r.hasUnlink && !u.newer(r.unlink) {
			continue
		}
		r.unlink, r.hasUnlink = u, true
		if live := u.Restore; live != r.live {
			r.live = live
			flipped = append(flipped, i)
		}
	}
	for _, o := range b.Observations {
		if _, ok := g.obsByID[o.ID()]; ok {
			continue
		}
		i := g.addObservation(o)
		if g.obs[i].live && len(g.obs[i].nodes) > 0 {
			fresh = append(fresh, i)
		}
	}
	g.settle(ch, fresh, flipped)
	return ch.changes(), nil
}

// addObservation records o and its postings; it is live unless an unlink
// naming it came first.
func (g *Graph) addObservation(o Observation) int32 {
	i := int32(len(g.obs))
	r := g.slab.rec()
	*r = obsRec{o: o, live: true}
	ids := append(g.slab.identifiers(len(o.Identifiers)), o.Identifiers...)
	slices.SortFunc(ids, Identifier.Compare)
	r.o.Identifiers = slices.Compact(ids) // as canonical
	r.nodes = g.slab.int32s(len(r.o.Identifiers))
	r.index = g.slab.ints(len(r.o.Identifiers))
	for k, id := range r.o.Identifiers {
		// Only identifiers that are not blocked are held, so a known one
		// needs no check.
		n, ok := g.byID[id]
		if !ok {
			if g.policy.Blocked(id) {
				continue
			}
			n = g.intern(id)
		}
		r.nodes = append(r.nodes, n)
		r.index = append(r.index, k)
		g.nodes[n].obs = append(g.nodes[n].obs, i)
	}
	if u, ok := g.pending[o.ID()]; ok {
		delete(g.pending, o.ID())
		r.unlink, r.hasUnlink, r.live = u, true, u.Restore
	}
	g.obs = append(g.obs, r)
	g.obsByID[o.ID()] = i
	return i
}

func (g *Graph) intern(id Identifier) int32 {
	if n, ok := g.byID[id]; ok {
		return n
	}
	var n int32
	if k := len(g.free); k > 0 {
		n, g.free = g.free[k-1], g.free[:k-1]
		*g.nodes[n] = node{id: id, via: -1}
	} else {
		n = int32(len(g.nodes))
		nd := g.slab.node()
		// Room for its first observation: most identifiers have one.
		*nd = node{id: id, via: -1, obs: g.slab.int32s(1)}
		g.nodes = append(g.nodes, nd)
	}
	g.byID[id] = n
	return n
}

// settle brings the customers and clusters up to date after fresh
// observations were added and flipped ones changed state.
func (g *Graph) settle(ch *tracker, fresh, flipped []int32) {
	if len(fresh) == 0 && len(flipped) == 0 {
		return
	}
	// Group what the new items touch into the clusters they will form:
	// each unit is an existing cluster or an identifier in none.
	var d dsu
	n := 2 * (len(fresh) + len(flipped))
	cluKey := make(map[*cluster]int, n)
	nodeKey := make(map[int32]int, n)
	unit := func(n int32) int {
		if c := g.nodes[n].clu; c != nil {
			k, ok := cluKey[c]
			if !ok {
				k = d.add()
				cluKey[c] = k
			}
			return k
		}
		k, ok := nodeKey[n]
		if !ok {
			k = d.add()
			nodeKey[n] = k
		}
		return k
	}
	join := func(o int32) int {
		ns := g.obs[o].nodes
		first := unit(ns[0])
		for _, n := range ns[1:] {
			d.union(first, unit(n))
		}
		return first
	}
	type group struct {
		clusters []*cluster
		loose    []int32 // identifiers in no cluster
		fresh    []int32
		slow     bool
	}
	groups := make(map[int]*group, len(fresh)+len(flipped))
	// Every group holds a fresh or flipped observation: they take their
	// records, and room for the usual one observation and two loose
	// identifiers, from two allocations. Appending past that room
	// allocates.
	arena := make([]group, 0, len(fresh)+len(flipped))
	room := make([]int32, 3*(len(fresh)+len(flipped)))
	at := func(k int) *group {
		r := d.find(k)
		gr := groups[r]
		if gr == nil {
			if i := 3 * len(arena); i < len(room) {
				arena = append(arena, group{fresh: room[i : i : i+1], loose: room[i+1 : i+1 : i+3]})
				gr = &arena[len(arena)-1]
			} else {
				gr = &group{} // not reached: a group per join at most
			}
			groups[r] = gr
		}
		return gr
	}
	freshUnit := make([]int, len(fresh))
	for j, o := range fresh {
		freshUnit[j] = join(o)
	}
	var flippedUnit []int
	for _, o := range flipped {
		if len(g.obs[o].nodes) > 0 {
			flippedUnit = append(flippedUnit, join(o))
		}
	}
	for j, o := range fresh {
		gr := at(freshUnit[j])
		gr.fresh = append(gr.fresh, o)
	}
	for _, k := range flippedUnit {
		at(k).slow = true
	}
	for c, k := range cluKey {
		gr := at(k)
		gr.clusters = append(gr.clusters, c)
	}
	for n, k := range nodeKey {
		gr := at(k)
		gr.loose = append(gr.loose, n)
	}
	// Settle groups in a fixed order, so a Graph's internal layout (not
	// only its answers) is the same on every run.
	roots := make([]int, 0, len(groups))
	for r := range groups {
		roots = append(roots, r)
	}
	slices.Sort(roots)
	for _, r := range roots {
		gr := groups[r]
		slices.SortFunc(gr.fresh, g.byStamp)
		if !gr.slow {
			for _, c := range gr.clusters {
				if len(gr.fresh) == 0 || g.byStamp(gr.fresh[0], c.newest) <= 0 {
					gr.slow = true
					break
				}
			}
		}
		if gr.slow {
			nodes := slices.Clone(gr.loose)
			for _, c := range gr.clusters {
				nodes = append(nodes, c.members...)
			}
			g.replay(ch, nodes)
			continue
		}
		g.extend(ch, gr.clusters, gr.loose, gr.fresh)
	}
}

// byStamp orders observations by stamp.
func (g *Graph) byStamp(a, b int32) int { return g.obs[a].o.Stamp.Compare(g.obs[b].o.Stamp) }

// extend is the fast path: fresh observations (by stamp) all newer than
// every observation of clusters join them, with loose identifiers; the
// replay of the whole would reach the present state of clusters first,
// then link fresh in order, which is what extend does.
func (g *Graph) extend(ch *tracker, clusters []*cluster, loose, fresh []int32) {
	var into *cluster
	for _, c := range clusters {
		if into == nil || len(c.members) > len(into.members) {
			into = c
		}
	}
	label := fresh[0]
	for _, c := range clusters {
		if g.byStamp(c.label, label) < 0 {
			label = c.label
		}
	}
	if into == nil {
		into = g.slab.cluster()
	}
	for _, c := range clusters {
		if c.label != label {
			ch.noteAll(c.members)
		}
	}
	ch.noteAll(loose)
	for _, c := range clusters {
		if c == into {
			continue
		}
		for _, n := range c.members {
			g.nodes[n].clu = into
		}
		into.members = append(into.members, c.members...)
	}
	for _, n := range loose {
		g.nodes[n].clu = into
		into.members = append(into.members, n)
	}
	into.label, into.newest = label, fresh[len(fresh)-1]
	for _, o := range fresh {
		g.link(ch, o)
	}
}

// replay is the slow path: it forgets what it knew of the customers and
// clusters of nodes (a set closed under live observations) and replays
// their live observations in stamp order.
func (g *Graph) replay(ch *tracker, nodes []int32) {
	ch.noteAll(nodes)
	var live []int32
	seen := map[int32]bool{}
	for _, n := range nodes {
		nd := g.nodes[n]
		nd.comp, nd.clu, nd.via = nil, nil, -1
		for _, o := range nd.obs {
			if g.obs[o].live && !seen[o] {
				seen[o] = true
				live = append(live, o)
			}
		}
	}
	slices.SortFunc(live, g.byStamp)
	// Clusters: the connected sets of nodes through live observations.
	var d dsu
	key := make(map[int32]int, len(nodes))
	for _, n := range nodes {
		key[n] = d.add()
	}
	for _, o := range live {
		ns := g.obs[o].nodes
		for _, n := range ns[1:] {
			d.union(key[ns[0]], key[n])
		}
	}
	clusters := map[int]*cluster{}
	for _, o := range live { // by stamp: the first seen is the label
		r := d.find(key[g.obs[o].nodes[0]])
		c := clusters[r]
		if c == nil {
			c = &cluster{label: o}
			clusters[r] = c
		}
		c.newest = o
	}
	for _, n := range nodes {
		if c := clusters[d.find(key[n])]; c != nil {
			g.nodes[n].clu = c
			c.members = append(c.members, n)
		}
	}
	for _, o := range live {
		g.link(ch, o)
	}
}

// link applies the linking rule to live observation o, given the
// customers of the observations before it (package documentation).
func (g *Graph) link(ch *tracker, o int32) {
	r := g.obs[o]
	manual := r.o.Evidence.Rule == RuleManual
	rest := r.nodes // in Compare order: strongest first
	for pass := 0; len(rest) > 0; pass++ {
		var (
			comps  []*component
			loose  []int32 // positions in r.nodes of identifiers in no customer
			counts [numTypes]int32
			later  []int32
		)
		for k, n := range rest {
			c := g.nodes[n].comp
			if c != nil && slices.Contains(comps, c) {
				continue
			}
			var add [numTypes]int32
			if c != nil {
				add = c.counts
			} else {
				add[g.nodes[n].id.Type.index()] = 1
			}
			if k > 0 && !manual && !g.fits(counts, add) {
				later = append(later, n)
				continue
			}
			for t := range counts {
				counts[t] += add[t]
			}
			if c != nil {
				comps = append(comps, c)
			} else {
				loose = append(loose, n)
			}
		}
		g.join(ch, o, comps, loose)
		rest = later
	}
}

// fits reports whether a customer holding a may take on b: for every type
// both hold, together they hold no more than the limit. (A customer an
// operator took over the limit may still take on identifiers of the types
// it is not over.)
func (g *Graph) fits(a, b [numTypes]int32) bool {
	for t := range a {
		if a[t] > 0 && b[t] > 0 && int(a[t]+b[t]) > g.policy.max[t] {
			return false
		}
	}
	return true
}

// join makes comps and loose one customer through observation o: a new
// customer when comps is empty, else the oldest of comps absorbing the
// others.
func (g *Graph) join(ch *tracker, o int32, comps []*component, loose []int32) {
	if len(comps) == 0 {
		if len(loose) == 0 {
			return
		}
		anchor := loose[0]
		pos := slices.Index(g.obs[o].nodes, anchor)
		c := g.slab.component()
		*c = component{anchor: anchor, founded: g.obs[o].o.Stamp}
		c.master = g.policy.MasterID(g.obs[o].o.Stamp, g.obs[o].index[pos])
		if _, ok := g.masters[c.master]; !ok {
			m := g.slab.master()
			*m = masterRec{anchor: anchor, founded: c.founded}
			g.masters[c.master] = m
			g.nodes[anchor].anchors = append(g.nodes[anchor].anchors, c.master)
			ch.minted(c.master)
		}
		g.adopt(ch, c, loose, o)
		return
	}
	survivor := comps[0]
	for _, c := range comps[1:] {
		if older(c, survivor) {
			survivor = c
		}
	}
	into := survivor
	for _, c := range comps {
		if len(c.members) > len(into.members) {
			into = c
		}
	}
	if len(comps) > 1 {
		m := mergeRec{obs: o, joined: []string{survivor.master}}
		var merges []mergeRec
		for _, c := range comps {
			if c != survivor {
				m.joined = append(m.joined, c.master)
				ch.noteAll(c.members)
			}
			merges = append(merges, c.merges...)
		}
		slices.Sort(m.joined[1:])
		slices.SortFunc(merges, func(a, b mergeRec) int { return g.byStamp(a.obs, b.obs) })
		into.merges = append(merges, m)
		into.master, into.anchor, into.founded = survivor.master, survivor.anchor, survivor.founded
		for _, c := range comps {
			if c == into {
				continue
			}
			for _, n := range c.members {
				g.nodes[n].comp = into
			}
			into.members = append(into.members, c.members...)
			for t := range into.counts {
				into.counts[t] += c.counts[t]
			}
		}
	}
	g.adopt(ch, into, loose, o)
}

// adopt puts loose identifiers in c through observation o.
func (g *Graph) adopt(ch *tracker, c *component, loose []int32, o int32) {
	for _, n := range loose {
		ch.note(n)
		nd := g.nodes[n]
		nd.comp, nd.via = c, o
		c.members = append(c.members, n)
		c.counts[nd.id.Type.index()]++
	}
}

// older reports whether a was founded before b: the survivor of a merge.
func older(a, b *component) bool {
	if c := a.founded.Compare(b.founded); c != 0 {
		return c < 0
	}
	return a.master < b.master
}

// Forget removes every observation naming any of ids, and the identifiers
// no observation names any more, as an erasure does: nothing of them stays
// in the graph but the observations' ids (so a late copy of one is a
// duplicate) and their evidence (stores, devices, rules, operators). The
// customers of what remains are recomputed. Master ids anchored on a
// removed identifier are removed too (MasterChange.To is "").
func (g *Graph) Forget(ids ...Identifier) Changes {
	ch := g.newTracker(len(ids))
	touched := map[int32]bool{}
	for _, id := range ids {
		n, ok := g.byID[id]
		if !ok {
			continue
		}
		for _, o := range slices.Clone(g.nodes[n].obs) {
			r := g.obs[o]
			if r.forgotten {
				continue
			}
			for _, m := range r.nodes {
				touched[m] = true
				g.nodes[m].obs = slices.DeleteFunc(g.nodes[m].obs, func(x int32) bool { return x == o })
			}
			r.forgotten, r.live = true, false
			r.o.Identifiers, r.nodes, r.index = nil, nil, nil
		}
	}
	if len(touched) == 0 {
		return ch.changes()
	}
	var nodes []int32
	seenClu := map[*cluster]bool{}
	for n := range touched {
		c := g.nodes[n].clu
		switch {
		case c == nil:
			nodes = append(nodes, n)
		case !seenClu[c]:
			seenClu[c] = true
			nodes = append(nodes, c.members...)
		}
	}
	slices.Sort(nodes)
	g.replay(ch, nodes)
	for _, n := range nodes {
		if len(g.nodes[n].obs) == 0 {
			g.remove(ch, n)
		}
	}
	return ch.changes()
}

// remove deletes identifier n, which no observation names.
func (g *Graph) remove(ch *tracker, n int32) {
	nd := g.nodes[n]
	for _, m := range nd.anchors {
		delete(g.masters, m)
	}
	ch.removed(n, nd.anchors)
	delete(g.byID, nd.id)
	*nd = node{via: -1}
	g.free = append(g.free, n)
}

// dsu is a union-find over small integers.
type dsu struct{ parent []int }

func (d *dsu) add() int {
	d.parent = append(d.parent, len(d.parent))
	return len(d.parent) - 1
}

func (d *dsu) find(x int) int {
	for d.parent[x] != x {
		d.parent[x] = d.parent[d.parent[x]]
		x = d.parent[x]
	}
	return x
}

func (d *dsu) union(a, b int) {
	a, b = d.find(a), d.find(b)
	if a == b {
		return
	}
	if a > b {
		a, b = b, a
	}
	d.parent[b] = a
}
