package identity

import (
	"slices"
	"strings"

	"github.com/omnisync/omnisync/shared/events"
)

// Changes is what one Apply or Forget changed: what the store writes.
type Changes struct {
	// Moves are the identifiers whose customer, joining observation or
	// cluster changed, in Compare order.
	Moves []Move
	// Masters are the master ids minted, or whose resolution changed
	// (absorbed by a merge, given back by an unmerge, removed), by id.
	Masters []MasterChange
	// Customers are the current customers whose identifiers changed: the
	// views to recompute and the store caches to refresh. Sorted.
	Customers []string
}

// Empty reports whether nothing changed.
func (c Changes) Empty() bool {
	return len(c.Moves) == 0 && len(c.Masters) == 0 && len(c.Customers) == 0
}

// Move is one identifier's new place.
type Move struct {
	Identifier Identifier
	// From and To are its customer before and after ("" for none: a new
	// identifier, one no live observation names any more, or a removed
	// one).
	From, To string
	// Via is the observation that joined it to To ("" when To is "").
	Via string
	// Cluster is its cluster's label ("" when To is ""): the id of the
	// oldest live observation of the identifiers connected to it through
	// live observations. The store loads a batch's clusters whole.
	Cluster string
	// Removed is set by Forget for an identifier it deleted.
	Removed bool
}

// MasterChange is one master id's new resolution. An id resolves to the
// customer its anchor is in, so a store that resolves ids through their
// anchor's row needs only the new ids; To is for a store that keeps
// redirects. A graph loaded for one batch knows only the ids its own
// replay minted: New may name an id the store already holds (upsert).
type MasterChange struct {
	ID string
	// Anchor is the identifier the id is anchored on: it resolves to the
	// customer its anchor belongs to.
	Anchor Identifier
	// Founded is the stamp of the observation that minted it.
	Founded events.Stamp
	// New is set when this change minted it.
	New bool
	// From and To are the customer it resolved to before and after: To ==
	// ID while it is a customer's own id, another id when it redirects
	// there, "" when it resolves to no customer (its anchor is in no live
	// observation) or was removed.
	From, To string
	// Removed is set when Forget removed its anchor: the id is gone.
	Removed bool
}

// tracker records the state of every identifier before its first change
// in one Apply or Forget, to report the differences.
type tracker struct {
	g      *Graph
	before map[int32]nodeState
	order  []int32
	mint   map[string]bool
	gone   map[int32]removal
}

type nodeState struct {
	master string
	via    int32
	label  int32
}

type removal struct {
	id      Identifier
	anchors []string
}

// newTracker returns a tracker for about n identifiers.
func (g *Graph) newTracker(n int) *tracker {
	return &tracker{g: g, before: make(map[int32]nodeState, n), order: make([]int32, 0, n), mint: make(map[string]bool, n/2)}
}

func (g *Graph) state(n int32) nodeState {
	nd := g.nodes[n]
	s := nodeState{via: -1, label: -1}
	if nd.comp != nil {
		s.master, s.via = nd.comp.master, nd.via
	}
	if nd.clu != nil {
		s.label = nd.clu.label
	}
	return s
}

// note records n's state if this is its first change.
func (t *tracker) note(n int32) {
	if _, ok := t.before[n]; !ok {
		t.before[n] = t.g.state(n)
		t.order = append(t.order, n)
	}
}

func (t *tracker) noteAll(ns []int32) {
	for _, n := range ns {
		t.note(n)
	}
}

func (t *tracker) minted(m string) { t.mint[m] = true }

func (t *tracker) removed(n int32, anchors []string) {
	t.note(n)
	if t.gone == nil {
		t.gone = map[int32]removal{}
	}
	t.gone[n] = removal{id: t.g.nodes[n].id, anchors: slices.Clone(anchors)}
}

func (t *tracker) obsID(o int32) string {
	if o < 0 {
		return ""
	}
	return t.g.obs[o].o.ID()
}

func (t *tracker) changes() Changes {
	g := t.g
	// Most nodes a batch touches move (a new shopper's identifiers): room
	// for all at once, rather than growing a slice of large structs.
	out := Changes{Moves: make([]Move, 0, len(t.order))}
	if len(t.mint) > 0 {
		out.Masters = make([]MasterChange, 0, len(t.mint))
	}
	customers := make(map[string]bool, len(t.order)/2)
	// The nodes in their identifiers' order, so the moves come out in
	// Compare order: sorting the moves themselves (large structs) after
	// cost more. A node's identifier is unique among them; a removed
	// node's is in gone (Forget's).
	idOf := func(n int32) Identifier {
		if r, ok := t.gone[n]; ok {
			return r.id
		}
		return g.nodes[n].id
	}
	if t.gone == nil {
		slices.SortFunc(t.order, func(a, b int32) int { return g.nodes[a].id.Compare(g.nodes[b].id) })
	} else {
		slices.SortFunc(t.order, func(a, b int32) int { return idOf(a).Compare(idOf(b)) })
	}
	for _, n := range t.order {
		was := t.before[n]
		if r, ok := t.gone[n]; ok {
			out.Moves = append(out.Moves, Move{Identifier: r.id, From: was.master, Removed: true})
			if g.isCustomer(was.master) {
				customers[was.master] = true
			}
			for _, m := range r.anchors {
				out.Masters = append(out.Masters, MasterChange{ID: m, Anchor: r.id, From: was.master, Removed: true})
			}
			continue
		}
		is := g.state(n)
		nd := g.nodes[n]
		if is != was {
			out.Moves = append(out.Moves, Move{
				Identifier: nd.id, From: was.master, To: is.master,
				Via: t.obsID(is.via), Cluster: t.obsID(is.label),
			})
			if is.master != "" {
				customers[is.master] = true
			}
			if was.master != is.master && g.isCustomer(was.master) {
				customers[was.master] = true
			}
		}
		for _, m := range nd.anchors {
			if t.mint[m] || was.master != is.master {
				out.Masters = append(out.Masters, MasterChange{
					ID: m, Anchor: nd.id, Founded: g.masters[m].founded, New: t.mint[m],
					From: was.master, To: is.master,
				})
			}
		}
	}
	slices.SortFunc(out.Masters, func(a, b MasterChange) int { return strings.Compare(a.ID, b.ID) })
	for m := range customers {
		out.Customers = append(out.Customers, m)
	}
	slices.Sort(out.Customers)
	return out
}

// isCustomer reports whether m is a current customer's own id.
func (g *Graph) isCustomer(m string) bool {
	if m == "" {
		return false
	}
	r, ok := g.masters[m]
	if !ok {
		return false
	}
	c := g.nodes[r.anchor].comp
	return c != nil && c.master == m
}
