package inventory

import "sort"

// KindOversell is the kind of conflict opened for a position whose
// available stock is below zero.
const KindOversell = "oversell"

// MaxSuggestions bounds how many other locations an oversell conflict
// suggests.
const MaxSuggestions = 3

// ConflictAction is what happens to a position's oversell conflict when its
// available stock changes.
type ConflictAction int

const (
	// ConflictNone: nothing to record.
	ConflictNone ConflictAction = iota
	// ConflictOpen: the position became oversold; open a conflict.
	ConflictOpen
	// ConflictUpdate: still oversold, by a different amount.
	ConflictUpdate
	// ConflictResolve: no longer oversold; resolve the open conflict.
	ConflictResolve
)

// ConflictChange decides the transition of a position's oversell conflict
// when its available stock goes from was to is. A position has an open
// conflict exactly while its available stock is below zero, so the open
// conflict is a function of the position: replaying, splitting or
// reordering the changes that lead to the same available stock leads to
// the same conflicts.
func ConflictChange(was, is int64) ConflictAction {
	switch {
	case was >= 0 && is < 0:
		return ConflictOpen
	case was < 0 && is >= 0:
		return ConflictResolve
	case was < 0 && is != was:
		return ConflictUpdate
	}
	return ConflictNone
}

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
