package inventory

import (
	"sort"

	"github.com/omnisync/omnisync/shared/events"
)

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

// What closed a conflict (its resolved_by). A conflict closes when its
// cause does: the position's available stock is back at zero or above
// (the kinds below, named after the events that brought it back), or HQ
// acted on it, or an operator dismissed it.
const (
	CauseHQAction  = "hq_action"
	CauseDismissed = "dismissed"
	CauseCount     = "count"
	CauseReceipt   = "receipt"
	CauseTransfer  = "transfer"
	CauseReturn    = "return"
	CauseAdjust    = "adjust"
	CauseRelease   = "release"
	CauseFulfil    = "fulfil"
	CauseReserve   = "reserve"
	CauseSafety    = "safety"
	// CauseOther: a change the other causes do not name (a sale's
	// reversal cannot happen, but a replayed position can).
	CauseOther = "other"
)

// causeOrder ranks the causes of a batch that resolved a position, most
// telling first: an absolute count says more than a delta, stock arriving
// more than an order going away.
var causeOrder = []string{CauseCount, CauseReceipt, CauseTransfer, CauseReturn, CauseAdjust, CauseRelease, CauseFulfil, CauseReserve, CauseSafety}

// CauseOf names what resolved a position's conflict from what changed the
// position in the resolving batch: the kinds of its events (moves and
// reservation operations), whether any came from HQ, whether its safety
// stock changed. HQ's hand comes first, then causeOrder. The cause is a
// record for people: which of a batch's events is named depends on how
// the log was split into batches, never the conflict's state.
func CauseOf(kinds []events.Kind, hq, safety bool) string {
	if hq {
		return CauseHQAction
	}
	have := map[string]bool{CauseSafety: safety}
	for _, k := range kinds {
		switch k {
		case events.KindCount:
			have[CauseCount] = true
		case events.KindReceipt:
			have[CauseReceipt] = true
		case events.KindTransferIn, events.KindTransferOut:
			have[CauseTransfer] = true
		case events.KindReturn:
			have[CauseReturn] = true
		case events.KindAdjust:
			have[CauseAdjust] = true
		case events.KindRelease:
			have[CauseRelease] = true
		case events.KindFulfil:
			have[CauseFulfil] = true
		case events.KindReserve:
			have[CauseReserve] = true
		}
	}
	for _, c := range causeOrder {
		if have[c] {
			return c
		}
	}
	return CauseOther
}
