package inventory

import (
	"strings"

	"github.com/omnisync/omnisync/shared/events"
	"github.com/omnisync/omnisync/shared/hlc"
)

// Key names one stock position: a SKU at a location.
type Key struct {
	SKU      string
	Location string
}

// Compare orders keys by SKU, then location, bytewise. It is the order the
// store locks positions in.
func (k Key) Compare(o Key) int {
	if c := strings.Compare(k.SKU, o.SKU); c != 0 {
		return c
	}
	return strings.Compare(k.Location, o.Location)
}

// Move is one line of an inventory event at one position: what the store's
// ledger records. Counts are moves too (Delta 0, Qty the absolute count), so
// the ledger is the full stock history.
type Move struct {
	Key
	// Line is the index of the line within its event; (Stamp.ID, Line) is
	// unique.
	Line  int
	Stamp events.Stamp
	Kind  events.Kind
	// Qty is the line quantity as sent: absolute for a count, signed for an
	// adjust, positive otherwise.
	Qty int64
	// Delta is the signed change to on_hand (0 for a count).
	Delta int64
	// Method is how a count was taken (events.CountMethods; "" unknown).
	// A count's Stamp is its snapshot (CountStamp).
	Method string
}

// IsCount reports whether m is an absolute count.
func (m Move) IsCount() bool { return m.Kind == events.KindCount }

// Position is the state of one stock position.
type Position struct {
	// HasCount says whether a count has been seen; CountQty and CountStamp
	// are the latest one.
	HasCount   bool
	CountQty   int64
	CountStamp events.Stamp
	// CountMethod is how the latest count was taken ("" unknown).
	CountMethod string
	// OnHand is CountQty plus the deltas stamped after CountStamp (or the sum
	// of every delta without a count).
	OnHand int64
	// Reserved is the sum of the active reservation lines here.
	Reserved int64
	// Safety is the safety stock kept out of available.
	Safety int64
	// LastStamp is the newest HLC that changed or confirmed this position:
	// the "as of" shown to users.
	LastStamp hlc.Timestamp
}

// Available is what can still be promised: on_hand − reserved − safety.
func (p Position) Available() int64 { return p.OnHand - p.Reserved - p.Safety }

// Oversold reports whether the position is in conflict (available < 0).
func (p Position) Oversold() bool { return p.Available() < 0 }

// AfterCount reports whether s is stamped after p's count (true when there
// is none): a delta stamped s changes on_hand, and a count stamped s
// supersedes p's.
func (p Position) AfterCount(s events.Stamp) bool {
	return !p.HasCount || s.Compare(p.CountStamp) > 0
}

// NewCount returns the count among moves (all at this position) that will
// define p once they are applied: the newest count that supersedes p's. When
// it returns true, Apply needs the sum of every delta at this position
// stamped after that count.
func (p Position) NewCount(moves []Move) (Move, bool) {
	var best Move
	found := false
	for _, m := range moves {
		if !m.IsCount() || !p.AfterCount(m.Stamp) {
			continue
		}
		if !found || m.Stamp.Compare(best.Stamp) > 0 {
			best, found = m, true
		}
	}
	return best, found
}

// Apply returns p after moves (all at this position, each applied for the
// first time). If NewCount(moves) finds a count c, deltasAfter must be the
// sum of the deltas of every move ever applied at this position stamped
// after c, including those in moves (the store asks its ledger after
// inserting moves); otherwise deltasAfter is ignored.
func (p Position) Apply(moves []Move, deltasAfter int64) Position {
	if c, ok := p.NewCount(moves); ok {
		p.HasCount, p.CountQty, p.CountStamp, p.CountMethod = true, c.Qty, c.Stamp, c.Method
		p.OnHand = c.Qty + deltasAfter
	} else {
		for _, m := range moves {
			if !m.IsCount() && p.AfterCount(m.Stamp) {
				p.OnHand += m.Delta
			}
		}
	}
	for _, m := range moves {
		p = p.Touch(m.Stamp.HLC)
	}
	return p
}

// Touch returns p with LastStamp advanced to ts if ts is newer.
func (p Position) Touch(ts hlc.Timestamp) Position {
	if ts.Compare(p.LastStamp) > 0 {
		p.LastStamp = ts
	}
	return p
}

// Change is what one batch brings to a position: the moves applied there
// for the first time, the change to its reservations' holds (stamped
// HeldAt, the newest reservation operation that changed them) and, when
// set, a new safety stock.
type Change struct {
	Moves  []Move
	Held   int64
	HeldAt hlc.Timestamp
	Safety *int64
}

// Step returns p after c. When c.Moves hold a count that supersedes p's
// (p.NewCount), deltasAfter must be the sum of every delta ever applied at
// the position stamped after that count, c's own included; otherwise it is
// ignored. Step is what the store runs for each position a batch touches;
// its result depends only on p and c, so any split of the same moves and
// holds into batches ends in the same position.
func (p Position) Step(c Change, deltasAfter int64) Position {
	if len(c.Moves) > 0 {
		p = p.Apply(c.Moves, deltasAfter)
	}
	if c.Held != 0 {
		p.Reserved += c.Held
		p = p.Touch(c.HeldAt)
	}
	if c.Safety != nil {
		p.Safety = *c.Safety
	}
	return p
}
