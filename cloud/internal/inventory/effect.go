package inventory

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/omnisync/omnisync/shared/events"
	"github.com/omnisync/omnisync/shared/hlc"
)

// ErrInvalidBody is returned by EffectOf for an inventory event whose body
// cannot be applied (malformed JSON, no lines, a quantity of the wrong sign,
// a SKU counted twice in one count). Such events belong in the dead letters.
var ErrInvalidBody = errors.New("inventory: invalid event body")

// ReservationOp is a reserve, release or fulfil as the reservation rules see
// it.
type ReservationOp struct {
	ID       string
	Kind     events.Kind
	Stamp    events.Stamp
	Location string
	// Lines are the event's lines merged per SKU and sorted by SKU. Only a
	// reserve's lines matter to the reservation (release lines are
	// informational; fulfil lines move stock through Effect.Moves).
	Lines []events.Line
	// Online: the operation comes from the online channel or HQ (set by
	// Rules.Effect), whose releases close any reservation.
	Online bool
}

// Effect is what one event does to the books: ledger moves and, for the
// reservation kinds, one reservation operation.
type Effect struct {
	Moves       []Move
	Reservation *ReservationOp
}

// IsInventory reports whether events of kind k affect stock or reservations.
func IsInventory(k events.Kind) bool {
	switch k {
	case events.KindCount, events.KindReserve, events.KindRelease, events.KindFulfil:
		return true
	}
	return events.IsStockDelta(k)
}

// EffectOf decodes env into its effect (through the body env keeps, when
// it came from events.Decode). Events of other kinds have an empty
// effect. Errors wrap ErrInvalidBody.
//
// A sale, return, receipt, adjust, transfer_out or transfer_in yields one
// delta move per line at the body's location; a count one count move per
// line; a fulfil one delta move (−qty) per line plus its reservation
// operation; reserve and release only a reservation operation.
func EffectOf(env events.Envelope) (Effect, error) {
	k := env.Kind
	stamp := env.Stamp()
	switch {
	case events.IsStockDelta(k) || k == events.KindCount:
		m, err := env.StockMove()
		if err != nil {
			return Effect{}, fmt.Errorf("%w: %v", ErrInvalidBody, err)
		}
		if err := checkLines(k, m.Location, m.Lines, true); err != nil {
			return Effect{}, err
		}
		if k != events.KindCount {
			return Effect{Moves: moves(k, stamp, m.Location, m.Lines)}, nil
		}
		stamp, err = CountStamp(stamp, m.SnapshotAt)
		if err != nil {
			return Effect{}, err
		}
		ms := moves(k, stamp, m.Location, m.Lines)
		for i := range ms {
			ms[i].Method = m.Method
		}
		return Effect{Moves: ms}, nil
	case k == events.KindReserve || k == events.KindRelease || k == events.KindFulfil:
		m, err := env.ReservationMove()
		if err != nil {
			return Effect{}, fmt.Errorf("%w: %v", ErrInvalidBody, err)
		}
		if m.ReservationID == "" {
			return Effect{}, fmt.Errorf("%w: reservation_id is missing", ErrInvalidBody)
		}
		if err := checkLines(k, m.Location, m.Lines, k != events.KindRelease); err != nil {
			return Effect{}, err
		}
		eff := Effect{Reservation: &ReservationOp{
			ID:       m.ReservationID,
			Kind:     k,
			Stamp:    stamp,
			Location: m.Location,
			Lines:    MergeLines(m.Lines),
		}}
		if k == events.KindFulfil {
			eff.Moves = moves(k, stamp, m.Location, m.Lines)
		}
		return eff, nil
	}
	return Effect{}, nil
}

// CountStamp returns where a count stamped s that observed the shelf at
// snapshot (zero: at s) takes its place in a position's history: at the
// snapshot (logical 0, s's event id), so that every delta stamped after
// the snapshot — a sale made while a sweep ran — is added to the counted
// quantity. A snapshot after s (a store clock that moved) is s itself: a
// count cannot see the future. A snapshot more than
// events.MaxSnapshotLead before s is an error (ErrInvalidBody).
func CountStamp(s events.Stamp, snapshot time.Time) (events.Stamp, error) {
	if snapshot.IsZero() {
		return s, nil
	}
	at := hlc.Timestamp{Wall: snapshot.UnixMilli()}
	if at.Compare(s.HLC) >= 0 {
		return s, nil
	}
	if lead := s.HLC.Time().Sub(snapshot); lead > events.MaxSnapshotLead {
		return events.Stamp{}, fmt.Errorf("%w: snapshot_at is %s before the count's own time (at most %s)", ErrInvalidBody, lead.Round(time.Second), events.MaxSnapshotLead)
	}
	s.HLC = at
	return s, nil
}

func moves(k events.Kind, s events.Stamp, loc string, lines []events.Line) []Move {
	out := make([]Move, len(lines))
	for i, l := range lines {
		out[i] = Move{Key: Key{SKU: l.SKU, Location: loc}, Line: i, Stamp: s, Kind: k, Qty: l.Qty, Delta: events.Delta(k, l)}
	}
	return out
}

// checkLines repeats the structural checks the rules depend on, so that an
// envelope that skipped events.Validate cannot corrupt the books.
func checkLines(k events.Kind, loc string, lines []events.Line, required bool) error {
	if err := events.ValidToken(loc); err != nil {
		return fmt.Errorf("%w: location: %v", ErrInvalidBody, err)
	}
	if required && len(lines) == 0 {
		return fmt.Errorf("%w: no lines", ErrInvalidBody)
	}
	var seen map[string]bool
	if k == events.KindCount {
		seen = make(map[string]bool, len(lines))
	}
	for i, l := range lines {
		if l.SKU == "" {
			return fmt.Errorf("%w: lines[%d].sku is missing", ErrInvalidBody, i)
		}
		switch {
		case k == events.KindCount:
			if l.Qty < 0 || l.Qty > events.MaxCountQty {
				return fmt.Errorf("%w: lines[%d].qty %d out of range for a count", ErrInvalidBody, i, l.Qty)
			}
			if seen[l.SKU] {
				return fmt.Errorf("%w: lines[%d].sku %q counted twice", ErrInvalidBody, i, l.SKU)
			}
			seen[l.SKU] = true
		case k == events.KindAdjust:
			if l.Qty == 0 || l.Qty > events.MaxDeltaQty || l.Qty < -events.MaxDeltaQty {
				return fmt.Errorf("%w: lines[%d].qty %d out of range for an adjust", ErrInvalidBody, i, l.Qty)
			}
		default:
			if l.Qty <= 0 || l.Qty > events.MaxDeltaQty {
				return fmt.Errorf("%w: lines[%d].qty %d out of range", ErrInvalidBody, i, l.Qty)
			}
		}
	}
	return nil
}

// MergeLines sums the quantities of lines that share a SKU and returns them
// sorted by SKU (UnitPrice dropped).
func MergeLines(lines []events.Line) []events.Line {
	if len(lines) == 0 {
		return nil
	}
	idx := make(map[string]int, len(lines))
	out := make([]events.Line, 0, len(lines))
	for _, l := range lines {
		if i, ok := idx[l.SKU]; ok {
			out[i].Qty += l.Qty
			continue
		}
		idx[l.SKU] = len(out)
		out = append(out, events.Line{SKU: l.SKU, Qty: l.Qty})
	}
	slices.SortFunc(out, func(a, b events.Line) int { return strings.Compare(a.SKU, b.SKU) })
	return out
}
