package inventory

import "sort"

// KindOversell is the kind of conflict opened for a position whose
// available stock is below zero.
const KindOversell = "oversell"

// MaxSuggestions bounds how many other locations an oversell conflict
// suggests.
const MaxSuggestions = 3

// Candidate is another location holding the oversold SKU.
type Candidate struct {
	Location  string
	Available int64
}

// Suggest picks, among candidates (positions of the oversold SKU), up to
// MaxSuggestions locations other than at with available stock (> 0): the
// most available first, ties by location. It does not modify candidates.
func Suggest(at string, candidates []Candidate) []Candidate {
	var out []Candidate
	for _, c := range candidates {
		if c.Location != at && c.Available > 0 {
			out = append(out, c)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Available != out[j].Available {
			return out[i].Available > out[j].Available
		}
		return out[i].Location < out[j].Location
	})
	if len(out) > MaxSuggestions {
		out = out[:MaxSuggestions]
	}
	return out
}
