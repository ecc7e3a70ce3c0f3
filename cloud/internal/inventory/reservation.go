package inventory

import (
	"github.com/omnisync/omnisync/shared/events"
)

// Reservation is the state of one reservation (an online order or a
// buy-online-pick-up-in-store hold), built from its reserve, release and
// fulfil events in any order.
type Reservation struct {
	ID string
	// Reserved says a reserve has been seen; Location, Lines and
	// ReserveStamp come from the newest one (a later reserve for the same id
	// amends the reservation).
	Reserved     bool
	Location     string
	Lines        []events.Line // merged per SKU, sorted by SKU
	ReserveStamp events.Stamp
	// Closed says a release or fulfil has been seen; ClosedStamp and
	// ClosedBy are those of the earliest one.
	Closed      bool
	ClosedStamp events.Stamp
	ClosedBy    events.Kind
}

// Active reports whether the reservation holds stock: reserved and not
// closed.
func (r Reservation) Active() bool { return r.Reserved && !r.Closed }

// Apply returns r after op. It is commutative and idempotent: any order of
// the same operations, with any repetitions, gives the same reservation.
// A release or fulfil seen before its reserve leaves the reservation closed
// when the reserve arrives.
func (r Reservation) Apply(op ReservationOp) Reservation {
	r.ID = op.ID
	switch op.Kind {
	case events.KindReserve:
		if !r.Reserved || op.Stamp.Compare(r.ReserveStamp) > 0 {
			r.Reserved = true
			r.Location = op.Location
			r.Lines = op.Lines
			r.ReserveStamp = op.Stamp
		}
	case events.KindRelease, events.KindFulfil:
		if !r.Closed || op.Stamp.Compare(r.ClosedStamp) < 0 {
			r.Closed = true
			r.ClosedStamp = op.Stamp
			r.ClosedBy = op.Kind
		}
	}
	return r
}

// Holds returns the quantity r reserves per position: its lines at its
// location while active, nothing otherwise.
func (r Reservation) Holds() map[Key]int64 {
	if !r.Active() {
		return nil
	}
	out := make(map[Key]int64, len(r.Lines))
	for _, l := range r.Lines {
		out[Key{SKU: l.SKU, Location: r.Location}] += l.Qty
	}
	return out
}

// HoldChange returns how reserved changes per position when a reservation
// goes from before to after; positions that do not change are left out.
func HoldChange(before, after Reservation) map[Key]int64 {
	out := after.Holds()
	if out == nil {
		out = map[Key]int64{}
	}
	for k, q := range before.Holds() {
		out[k] -= q
	}
	for k, q := range out {
		if q == 0 {
			delete(out, k)
		}
	}
	return out
}
