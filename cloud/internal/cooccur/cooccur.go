// Package cooccur holds the rules by which the hub learns which products go
// together: from fitting-room visits (tried together) and from baskets
// (bought together), anonymously — a session is a set of products and
// nothing else.
//
// The count of a pair, per kind, is the number of sessions that hold both
// products. The hub learns it incrementally: every time a session gains
// members, Add says which members are really new and which pair counts go
// up by one. Because a session is a set, the counts depend only on the set
// of (session, product) memberships ever seen, never on their order,
// batching or duplication (property-tested against Count, the oracle), so
// a replayed or reordered event changes nothing.
//
// Rank turns a product's pair counts into its top complements, each with
// the few words the mirror shows to explain it.
package cooccur

import (
	"cmp"
	"slices"
)

// Kind says how a session put products together.
type Kind uint8

// Session kinds.
const (
	// Tried: carried into one fitting-room visit.
	Tried Kind = iota + 1
	// Bought: sold in one basket (one sale).
	Bought
)

// Pair is two distinct products, A < B.
type Pair struct{ A, B string }

// PairOf orders a and b into a Pair.
func PairOf(a, b string) Pair {
	if b < a {
		a, b = b, a
	}
	return Pair{a, b}
}

// Add returns, for a session that holds existing and now gains added (in
// any order, with duplicates, possibly overlapping existing), the members
// that are new (sorted, once each) and the pairs whose count goes up by one:
// every new member with every existing one, and the new members with each
// other. Empty product ids are ignored.
func Add(existing, added []string) (fresh []string, pairs []Pair) {
	had := make(map[string]bool, len(existing))
	for _, p := range existing {
		if p != "" {
			had[p] = true
		}
	}
	for _, p := range added {
		if p != "" && !had[p] {
			fresh = append(fresh, p)
		}
	}
	slices.Sort(fresh)
	fresh = slices.Compact(fresh)
	old := make([]string, 0, len(had))
	for p := range had {
		old = append(old, p)
	}
	slices.Sort(old)
	for i, f := range fresh {
		for _, o := range old {
			pairs = append(pairs, PairOf(f, o))
		}
		for _, g := range fresh[i+1:] {
			pairs = append(pairs, PairOf(f, g))
		}
	}
	return fresh, pairs
}

// Count is the oracle: for sessions given as lists of members (any order,
// duplicates allowed), the number of sessions holding each pair.
func Count(sessions map[string][]string) map[Pair]int64 {
	out := map[Pair]int64{}
	for _, members := range sessions {
		set := map[string]bool{}
		for _, m := range members {
			if m != "" {
				set[m] = true
			}
		}
		ms := make([]string, 0, len(set))
		for m := range set {
			ms = append(ms, m)
		}
		for i := range ms {
			for j := i + 1; j < len(ms); j++ {
				out[PairOf(ms[i], ms[j])]++
			}
		}
	}
	return out
}

// Candidate is another product and how often it went with the product
// being ranked.
type Candidate struct {
	Product  string
	Category string
	Tried    int64
	Bought   int64
}

// Complement is one ranked suggestion.
type Complement struct {
	Product string `json:"product_id"`
	Tried   int64  `json:"tried,omitempty"`
	Bought  int64  `json:"bought,omitempty"`
	// Score orders suggestions: a purchase counts BoughtWeight tries.
	Score int64 `json:"score"`
	// Reason explains the suggestion to the shopper.
	Reason string `json:"reason"`
}

// BoughtWeight is what a basket counts for against a try: buying two
// things together says more than trying them on together.
const BoughtWeight = 2

// Reasons shown on the mirror.
const (
	ReasonCompletes  = "completes the look"
	ReasonTriedWith  = "often tried with"
	ReasonBoughtWith = "often bought together"
	ReasonSimilar    = "same style and brand"
)

// Rank returns the product's top n complements among cands, best first
// (score, then product id): products of another category "complete the
// look"; of the same one, they were "often bought together" when baskets
// say so at least as much as fitting rooms, else "often tried with".
// Candidates with nothing in common, or the product itself, are dropped.
func Rank(category string, self string, cands []Candidate, n int) []Complement {
	var out []Complement
	for _, c := range cands {
		if c.Product == "" || c.Product == self || c.Tried+c.Bought <= 0 {
			continue
		}
		cm := Complement{Product: c.Product, Tried: c.Tried, Bought: c.Bought, Score: c.Tried + BoughtWeight*c.Bought}
		switch {
		case c.Category != "" && c.Category != category:
			cm.Reason = ReasonCompletes
		case c.Bought*BoughtWeight >= c.Tried:
			cm.Reason = ReasonBoughtWith
		default:
			cm.Reason = ReasonTriedWith
		}
		out = append(out, cm)
	}
	slices.SortFunc(out, func(a, b Complement) int {
		if c := cmp.Compare(b.Score, a.Score); c != 0 {
			return c
		}
		return cmp.Compare(a.Product, b.Product)
	})
	if len(out) > n {
		out = out[:n]
	}
	return out
}

// Fill tops ranked up to n with similar products (same category and
// brand, given in the order to prefer), for a product with little or no
// history: a new product still gets suggestions.
func Fill(ranked []Complement, self string, similar []string, n int) []Complement {
	have := map[string]bool{self: true}
	for _, c := range ranked {
		have[c.Product] = true
	}
	for _, p := range similar {
		if len(ranked) >= n {
			break
		}
		if p == "" || have[p] {
			continue
		}
		have[p] = true
		ranked = append(ranked, Complement{Product: p, Reason: ReasonSimilar})
	}
	return ranked
}
