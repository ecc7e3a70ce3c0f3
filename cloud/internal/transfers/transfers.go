// Package transfers pairs the two halves of a stock transfer between
// locations: the source's transfer_out and the destination's transfer_in,
// which share a transfer_id. The ledger moves stock at each end as plain
// deltas whatever this package says; what pairing adds is the transfer
// itself (what was shipped, what arrived, what is still on the road) and
// the stock in transit to each destination.
//
// Guarantee: Fold depends only on the set of events seen, not on their
// order or repetition (an event id counts once), so a transfer_in that
// arrives before its transfer_out, or twice, leaves the same transfer as
// the natural order. No I/O: the store keeps each transfer's events and
// folds them again when one arrives.
//
// Sharp edges: a transfer's source and destination come from its events;
// when they disagree (a misconfigured till), the earliest transfer_out
// decides, then the earliest transfer_in. Overdue is not a stored state:
// it depends on the clock, so readers ask StateAt.
package transfers

import (
	"cmp"
	"slices"
	"strings"
	"time"

	"github.com/omnisync/omnisync/shared/events"
)

// States of a transfer.
const (
	// StateInTransit: shipped, nothing received yet.
	StateInTransit = "in_transit"
	// StatePartial: some received, less than shipped of some SKU.
	StatePartial = "partial"
	// StateReceived: everything shipped was received (or a receipt came
	// before any shipment was heard of).
	StateReceived = "received"
	// StateOverdue: in transit or partial for longer than the overdue age
	// (StateAt only).
	StateOverdue = "overdue"
)

// DefaultOverdue is how long a transfer may stay in transit before it is
// overdue, unless configured otherwise.
const DefaultOverdue = 72 * time.Hour

// ValidState reports whether s names a state (a filter's value).
func ValidState(s string) bool {
	switch s {
	case StateInTransit, StatePartial, StateReceived, StateOverdue:
		return true
	}
	return false
}

// Op is one half of a transfer as an event says it.
type Op struct {
	EventID string
	Kind    events.Kind // transfer_out or transfer_in
	// Location is where the event moved stock; Counterpart its to (out)
	// or from (in).
	Location, Counterpart string
	Lines                 []events.Line
	// At is the event's time (its HLC wall).
	At time.Time
}

// OpOf reads env as a transfer half. ok is false for every other kind,
// for a body that does not decode, and for a transfer without a
// transfer_id: that one is a plain delta at its location and nothing
// else.
func OpOf(env events.Envelope) (id string, op Op, ok bool) {
	if env.Kind != events.KindTransferOut && env.Kind != events.KindTransferIn {
		return "", Op{}, false
	}
	m, err := env.StockMove()
	if err != nil || m.TransferID == "" {
		return "", Op{}, false
	}
	op = Op{EventID: env.ID, Kind: env.Kind, Location: m.Location, Lines: m.Lines, At: env.HLC.Time()}
	if env.Kind == events.KindTransferOut {
		op.Counterpart = m.To
	} else {
		op.Counterpart = m.From
	}
	return m.TransferID, op, true
}

// Line is one SKU of a transfer.
type Line struct {
	SKU      string
	Shipped  int64
	Received int64
}

// InTransit is what of l is still on the road.
func (l Line) InTransit() int64 { return max(0, l.Shipped-l.Received) }

// Transfer is the state of one transfer.
type Transfer struct {
	ID                  string
	Source, Destination string
	Lines               []Line // sorted by SKU
	// ShippedAt is the earliest transfer_out's time, ReceivedAt the
	// latest transfer_in's (zero when none).
	ShippedAt, ReceivedAt time.Time
	State                 string
	// Events counts the distinct events folded.
	Events int
}

// Fold returns transfer id after ops (in any order, with repeats).
func Fold(id string, ops []Op) Transfer {
	ops = slices.Clone(ops)
	slices.SortFunc(ops, func(a, b Op) int {
		if c := a.At.Compare(b.At); c != 0 {
			return c
		}
		return strings.Compare(a.EventID, b.EventID)
	})
	t := Transfer{ID: id}
	lines := map[string]*Line{}
	line := func(sku string) *Line {
		if l := lines[sku]; l != nil {
			return l
		}
		l := &Line{SKU: sku}
		lines[sku] = l
		return l
	}
	seen := map[string]bool{}
	var srcIn, dstIn string
	for _, op := range ops {
		if seen[op.EventID] {
			continue
		}
		seen[op.EventID] = true
		t.Events++
		switch op.Kind {
		case events.KindTransferOut:
			if t.Source == "" {
				t.Source, t.Destination = op.Location, op.Counterpart
			}
			if t.ShippedAt.IsZero() {
				t.ShippedAt = op.At
			}
			for _, l := range op.Lines {
				line(l.SKU).Shipped += l.Qty
			}
		case events.KindTransferIn:
			if srcIn == "" {
				srcIn, dstIn = op.Counterpart, op.Location
			}
			if op.At.After(t.ReceivedAt) {
				t.ReceivedAt = op.At
			}
			for _, l := range op.Lines {
				line(l.SKU).Received += l.Qty
			}
		}
	}
	if t.Source == "" {
		t.Source, t.Destination = srcIn, dstIn
	}
	for _, l := range lines {
		t.Lines = append(t.Lines, *l)
	}
	slices.SortFunc(t.Lines, func(a, b Line) int { return cmp.Compare(a.SKU, b.SKU) })
	t.State = state(t.Lines)
	return t
}

func state(lines []Line) string {
	var received, short bool
	for _, l := range lines {
		received = received || l.Received > 0
		short = short || l.Received < l.Shipped
	}
	switch {
	case !received:
		return StateInTransit
	case short:
		return StatePartial
	}
	return StateReceived
}

// Open reports whether some of t is still on the road.
func (t Transfer) Open() bool { return t.State == StateInTransit || t.State == StatePartial }

// StateAt is t's state as shown at now: an open transfer shipped longer
// than overdue ago (DefaultOverdue when overdue <= 0) is overdue.
func (t Transfer) StateAt(now time.Time, overdue time.Duration) string {
	if overdue <= 0 {
		overdue = DefaultOverdue
	}
	if t.Open() && !t.ShippedAt.IsZero() && now.Sub(t.ShippedAt) > overdue {
		return StateOverdue
	}
	return t.State
}
