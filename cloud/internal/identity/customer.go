package identity

import (
	"slices"

	"github.com/omnisync/omnisync/shared/events"
)

// Customer is one customer as the graph knows it: the identity part of
// the customer 360.
type Customer struct {
	// ID is its master id.
	ID string
	// Anchor is the identifier ID is anchored on; Founded the stamp of the
	// observation that minted ID.
	Anchor  Identifier
	Founded events.Stamp
	// Cluster is its cluster's label (Move.Cluster).
	Cluster string
	// Identifiers are its identifiers in Compare order, each with the
	// observation that joined it.
	Identifiers []Member
	// Merges are the observations that joined customers into this one, by
	// stamp: each can be undone with an Unlink.
	Merges []Merge
}

// Member is one identifier of a customer and how it joined.
type Member struct {
	Identifier Identifier
	// Via is the observation that joined it, At its stamp and Evidence
	// its evidence.
	Via      string
	At       events.Stamp
	Evidence Evidence
}

// Merge is an observation that joined existing customers.
type Merge struct {
	Observation string
	At          events.Stamp
	Evidence    Evidence
	// Joined are the customers it joined, as they were: the survivor (the
	// oldest) first, then the absorbed ones by id.
	Joined []string
}

// Lookup returns the customer id belongs to.
func (g *Graph) Lookup(id Identifier) (string, bool) {
	n, ok := g.byID[id]
	if !ok || g.nodes[n].comp == nil {
		return "", false
	}
	return g.nodes[n].comp.master, true
}

// Resolve returns the customer master id m stands for now: m itself while
// it is a customer's id, the id of the customer that absorbed it after a
// merge, m again after the merge is undone. It is false for an id never
// minted or removed, and for one whose anchor no live observation names.
func (g *Graph) Resolve(m string) (string, bool) {
	r, ok := g.masters[m]
	if !ok {
		return "", false
	}
	c := g.nodes[r.anchor].comp
	if c == nil {
		return "", false
	}
	return c.master, true
}

// Anchor returns the identifier master id m is anchored on: what data
// addressed to m (by the hub's API) is attributed to.
func (g *Graph) Anchor(m string) (Identifier, bool) {
	r, ok := g.masters[m]
	if !ok {
		return Identifier{}, false
	}
	return g.nodes[r.anchor].id, true
}

// Customer returns the customer m resolves to.
func (g *Graph) Customer(m string) (Customer, bool) {
	cur, ok := g.Resolve(m)
	if !ok {
		return Customer{}, false
	}
	r := g.masters[cur]
	c := g.nodes[r.anchor].comp
	out := Customer{ID: c.master, Anchor: g.nodes[c.anchor].id, Founded: c.founded}
	if clu := g.nodes[c.anchor].clu; clu != nil {
		out.Cluster = g.obs[clu.label].o.ID()
	}
	for _, n := range c.members {
		nd := g.nodes[n]
		o := g.obs[nd.via].o
		out.Identifiers = append(out.Identifiers, Member{Identifier: nd.id, Via: o.ID(), At: o.Stamp, Evidence: o.Evidence})
	}
	slices.SortFunc(out.Identifiers, func(a, b Member) int { return a.Identifier.Compare(b.Identifier) })
	for _, m := range c.merges {
		o := g.obs[m.obs].o
		out.Merges = append(out.Merges, Merge{Observation: o.ID(), At: o.Stamp, Evidence: o.Evidence, Joined: slices.Clone(m.joined)})
	}
	return out, true
}

// Customers returns every current customer's id, sorted.
func (g *Graph) Customers() []string {
	var out []string
	for m, r := range g.masters {
		if c := g.nodes[r.anchor].comp; c != nil && c.master == m {
			out = append(out, m)
		}
	}
	slices.Sort(out)
	return out
}

// Masters returns every master id the graph knows (customers' and
// redirected ones), sorted.
func (g *Graph) Masters() []string {
	out := make([]string, 0, len(g.masters))
	for m := range g.masters {
		out = append(out, m)
	}
	slices.Sort(out)
	return out
}

// Link is one observation naming an identifier, for the evidence view.
type Link struct {
	Observation string
	At          events.Stamp
	Evidence    Evidence
	// With are the other identifiers it names (blocked ones left out).
	With []Identifier
	// Live is false while an unlink undoes it; Unlink is then that unlink.
	Live   bool
	Unlink *Unlink
}

// Links returns the observations naming id, by stamp.
func (g *Graph) Links(id Identifier) []Link {
	n, ok := g.byID[id]
	if !ok {
		return nil
	}
	var out []Link
	for _, o := range g.nodes[n].obs {
		r := g.obs[o]
		l := Link{Observation: r.o.ID(), At: r.o.Stamp, Evidence: r.o.Evidence, Live: r.live}
		for _, m := range r.nodes {
			if m != n {
				l.With = append(l.With, g.nodes[m].id)
			}
		}
		if r.hasUnlink && !r.live {
			u := r.unlink
			l.Unlink = &u
		}
		out = append(out, l)
	}
	slices.SortFunc(out, func(a, b Link) int { return a.At.Compare(b.At) })
	return out
}

// Observations returns how many observations the graph holds (forgotten
// ones included: their ids stay, to refuse late copies).
func (g *Graph) Observations() int { return len(g.obs) }

// Identifiers returns how many identifiers the graph holds.
func (g *Graph) Identifiers() int { return len(g.byID) }

// Cluster returns the label of the cluster id is in ("" when none): the
// store's key for loading what a batch needs.
func (g *Graph) Cluster(id Identifier) string {
	n, ok := g.byID[id]
	if !ok || g.nodes[n].clu == nil {
		return ""
	}
	return g.obs[g.nodes[n].clu.label].o.ID()
}
