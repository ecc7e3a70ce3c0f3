package inventory

import (
	"slices"

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
	// Closes are every release and fulfil seen, in stamp order. Only the
	// store holding the reservation (a close naming the reservation's
	// location, which Rules lets a store do only for its own) or the online
	// channel may close it: a close that does neither is kept, and changes
	// nothing.
	Closes []Close
	// Closed says a close that counts has been seen; ClosedStamp and
	// ClosedBy are those of the earliest one (derived from Closes).
	Closed      bool
	ClosedStamp events.Stamp
	ClosedBy    events.Kind
}

// Close is one release or fulfil of a reservation.
type Close struct {
	Stamp events.Stamp
	Kind  events.Kind
	// Location is the location the close names.
	Location string
	// Online: sent by the online channel or HQ, which may release any
	// reservation.
	Online bool
}

// counts reports whether c closes a reservation held at loc: a close
// naming loc, or a release from the online channel or HQ. The online
// channel's fulfil counts only where it names the reservation's location:
// the goods leave that shelf (a web order collected at the store holding
// it), and a fulfil naming another location takes stock off a shelf that
// never held the order.
func (c Close) counts(loc string) bool {
	return c.Location == loc || (c.Online && c.Kind != events.KindFulfil)
}

// Uncounted returns the closes that do not count for the reservation as
// it stands: a store's release or fulfil of a reservation held at another
// location (naming its own), which apply keeps and ignores rather than
// refuses, since a later reserve may yet move the reservation there. HQ
// sees them on the pickups board; like everything here it depends only on
// the events seen, not their order. Before its reserve, none.
func (r Reservation) Uncounted() []Close {
	if !r.Reserved {
		return nil
	}
	var out []Close
	for _, c := range r.Closes {
		if !c.counts(r.Location) {
			out = append(out, c)
		}
	}
	return out
}

// Active reports whether the reservation holds stock: reserved and not
// closed.
func (r Reservation) Active() bool { return r.Reserved && !r.Closed }

// Apply returns r after op. It is commutative and idempotent: any order of
// the same operations, with any repetitions, gives the same reservation.
// A release or fulfil seen before its reserve leaves the reservation closed
// when the reserve arrives, if it is one that counts.
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
		c := Close{Stamp: op.Stamp, Kind: op.Kind, Location: op.Location, Online: op.Online}
		i, found := slices.BinarySearchFunc(r.Closes, c.Stamp, func(x Close, s events.Stamp) int { return x.Stamp.Compare(s) })
		if !found {
			r.Closes = slices.Insert(slices.Clone(r.Closes), i, c)
		}
	}
	return r.settle()
}

// settle derives Closed, ClosedStamp and ClosedBy from Closes: the
// earliest close that counts for the reservation as it stands.
func (r Reservation) settle() Reservation {
	r.Closed, r.ClosedStamp, r.ClosedBy = false, events.Stamp{}, ""
	if !r.Reserved {
		// Before its reserve arrives a reservation holds nothing, whatever
		// its closes; it is settled again then.
		return r
	}
	for _, c := range r.Closes {
		if c.counts(r.Location) {
			r.Closed, r.ClosedStamp, r.ClosedBy = true, c.Stamp, c.Kind
			break
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
