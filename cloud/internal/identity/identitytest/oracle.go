// Package identitytest holds the naive oracle of the identity graph and
// generators of random observation logs and the disorderly deliveries a
// hub sees (shuffled, duplicated, delayed, unlinks before what they
// undo), for the property tests of the identity rules and of the store.
//
// The oracle recomputes everything from scratch from the set of live
// observations, with plain maps and no incremental cleverness; it shares
// with the graph only the rules' vocabulary (Policy.Blocked, MaxOf,
// Identifier.Compare, MasterID). Everything is driven by the *rand.Rand it
// is given, so a failing seed reproduces exactly.
package identitytest

import (
	"slices"

	"github.com/omnisync/omnisync/cloud/internal/identity"
	"github.com/omnisync/omnisync/shared/events"
)

// Result is the graph the oracle computes.
type Result struct {
	// Customer maps every identifier in a customer to its master id.
	Customer map[identity.Identifier]string
	// Via is the observation that joined each identifier.
	Via map[identity.Identifier]string
	// Cluster is each identifier's cluster label.
	Cluster map[identity.Identifier]string
	// Anchor maps every master id minted by the replay to its anchor.
	Anchor map[string]identity.Identifier
	// Merges are each customer's merges: observation ids by stamp, and
	// the customers each joined (survivor first).
	Merges map[string][]Merge
}

// Merge is one merge the oracle saw.
type Merge struct {
	Observation string
	Joined      []string
}

// Customers returns the master ids of the current customers, sorted.
func (r Result) Customers() []string {
	var out []string
	seen := map[string]bool{}
	for _, m := range r.Customer {
		if !seen[m] {
			seen[m] = true
			out = append(out, m)
		}
	}
	slices.Sort(out)
	return out
}

// Members returns each customer's identifiers, sorted.
func (r Result) Members() map[string][]identity.Identifier {
	out := map[string][]identity.Identifier{}
	for id, m := range r.Customer {
		out[m] = append(out[m], id)
	}
	for _, ids := range out {
		slices.SortFunc(ids, identity.Identifier.Compare)
	}
	return out
}

// Live returns the observations the unlinks leave live: each
// observation's newest unlink (by stamp; on a tie the undoing one) decides.
func Live(obs []identity.Observation, unlinks []identity.Unlink) []identity.Observation {
	newest := map[string]identity.Unlink{}
	for _, u := range unlinks {
		v, ok := newest[u.Observation]
		if !ok || u.Stamp.Compare(v.Stamp) > 0 || u.Stamp.Compare(v.Stamp) == 0 && !u.Restore {
			newest[u.Observation] = u
		}
	}
	seen := map[string]bool{}
	var out []identity.Observation
	for _, o := range obs {
		if seen[o.ID()] {
			continue
		}
		seen[o.ID()] = true
		if u, ok := newest[o.ID()]; ok && !u.Restore {
			continue
		}
		out = append(out, o)
	}
	return out
}

// Oracle computes the graph of the live observations (Live) under p:
// replay by stamp; each observation links, pass after pass, the strongest
// of its identifiers left with every other one whose customer fits within
// the limits alongside; a link of only new identifiers founds a customer
// anchored on the strongest; a link of customers keeps the oldest's id.
func Oracle(p identity.Policy, obs []identity.Observation, unlinks []identity.Unlink) Result {
	live := Live(obs, unlinks)
	slices.SortFunc(live, func(a, b identity.Observation) int { return a.Stamp.Compare(b.Stamp) })

	type customer struct {
		master  string
		founded events.Stamp
		members []identity.Identifier
		merges  []Merge
	}
	res := Result{
		Customer: map[identity.Identifier]string{}, Via: map[identity.Identifier]string{},
		Cluster: map[identity.Identifier]string{}, Anchor: map[string]identity.Identifier{},
		Merges: map[string][]Merge{},
	}
	byMaster := map[string]*customer{}
	stamp := map[string]events.Stamp{}
	for _, o := range live {
		stamp[o.ID()] = o.Stamp
	}
	count := func(ids []identity.Identifier, t identity.Type) int {
		n := 0
		for _, id := range ids {
			if id.Type == t {
				n++
			}
		}
		return n
	}
	fits := func(a, b []identity.Identifier) bool {
		for _, t := range identity.Types() {
			x, y := count(a, t), count(b, t)
			if x > 0 && y > 0 && x+y > p.MaxOf(t) {
				return false
			}
		}
		return true
	}
	for _, o := range live {
		var canon []identity.Identifier
		for _, id := range o.Identifiers {
			if !slices.Contains(canon, id) {
				canon = append(canon, id)
			}
		}
		slices.SortFunc(canon, identity.Identifier.Compare)
		var rest []identity.Identifier
		for _, id := range canon {
			if !p.Blocked(id) {
				rest = append(rest, id)
			}
		}
		// Clusters: the label is the oldest observation of the identifiers
		// connected through live observations.
		label := o.ID()
		for _, id := range rest {
			if l, ok := res.Cluster[id]; ok && stamp[l].Compare(stamp[label]) < 0 {
				label = l
			}
		}
		for _, id := range rest {
			if old, ok := res.Cluster[id]; ok && old != label {
				for j, l := range res.Cluster {
					if l == old {
						res.Cluster[j] = label
					}
				}
			}
			res.Cluster[id] = label
		}
		manual := o.Evidence.Rule == identity.RuleManual
		for len(rest) > 0 {
			var joined []*customer
			var fresh, later, acc []identity.Identifier
			for k, id := range rest {
				var unit []identity.Identifier
				var c *customer
				if m, ok := res.Customer[id]; ok {
					c = byMaster[m]
					if slices.Contains(joined, c) {
						continue
					}
					unit = c.members
				} else {
					unit = []identity.Identifier{id}
				}
				if k > 0 && !manual && !fits(acc, unit) {
					later = append(later, id)
					continue
				}
				acc = append(acc, unit...)
				if c != nil {
					joined = append(joined, c)
				} else {
					fresh = append(fresh, id)
				}
			}
			var into *customer
			if len(joined) == 0 {
				anchor := fresh[0]
				into = &customer{master: p.MasterID(o.Stamp, slices.Index(canon, anchor)), founded: o.Stamp}
				byMaster[into.master] = into
				res.Anchor[into.master] = anchor
			} else {
				into = joined[0]
				for _, c := range joined[1:] {
					if cmp := c.founded.Compare(into.founded); cmp < 0 || cmp == 0 && c.master < into.master {
						into = c
					}
				}
				if len(joined) > 1 {
					m := Merge{Observation: o.ID(), Joined: []string{into.master}}
					var absorbed []string
					for _, c := range joined {
						if c == into {
							continue
						}
						absorbed = append(absorbed, c.master)
						into.merges = append(into.merges, c.merges...)
						for _, id := range c.members {
							res.Customer[id] = into.master
						}
						into.members = append(into.members, c.members...)
						delete(byMaster, c.master)
					}
					slices.Sort(absorbed)
					m.Joined = append(m.Joined, absorbed...)
					into.merges = append(into.merges, m)
				}
			}
			for _, id := range fresh {
				res.Customer[id] = into.master
				res.Via[id] = o.ID()
				into.members = append(into.members, id)
			}
			rest = later
		}
	}
	// Merges by stamp: each customer's list was built from its parts'
	// lists, each in stamp order, so sort the concatenations.
	for m, c := range byMaster {
		slices.SortStableFunc(c.merges, func(a, b Merge) int { return stamp[a.Observation].Compare(stamp[b.Observation]) })
		if len(c.merges) > 0 {
			res.Merges[m] = c.merges
		}
	}
	return res
}
