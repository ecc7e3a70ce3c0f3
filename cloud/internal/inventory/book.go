package inventory

import (
	"slices"

	"github.com/omnisync/omnisync/shared/events"
)

// Book is the reference implementation of the whole rule set, kept naive on
// purpose so tests can trust it: it remembers every distinct event and, when
// asked, sorts them by Stamp and replays them from nothing. It is an oracle
// for tests, not for production (every query is a full replay).
type Book struct {
	events map[string]events.Envelope // by event id
	safety map[Key]int64
}

// NewBook returns an empty book.
func NewBook() *Book {
	return &Book{events: map[string]events.Envelope{}, safety: map[Key]int64{}}
}

// Add records env; an event id seen before is ignored. It returns an error
// (wrapping ErrInvalidBody) for an inventory event whose body cannot be
// applied, and records nothing then.
func (b *Book) Add(env events.Envelope) error {
	if _, ok := b.events[env.ID]; ok {
		return nil
	}
	if _, err := EffectOf(env); err != nil {
		return err
	}
	b.events[env.ID] = env
	return nil
}

// SetSafety sets the safety stock of k.
func (b *Book) SetSafety(k Key, qty int64) { b.safety[k] = qty }

// Len is the number of distinct events recorded.
func (b *Book) Len() int { return len(b.events) }

// sorted returns the recorded events in Stamp order.
func (b *Book) sorted() []events.Envelope {
	out := make([]events.Envelope, 0, len(b.events))
	for _, e := range b.events {
		out = append(out, e)
	}
	slices.SortFunc(out, func(x, y events.Envelope) int { return x.Stamp().Compare(y.Stamp()) })
	return out
}

// Reservations replays every reservation event: a reservation is active iff
// some reserve and no release or fulfil for its id was seen; the newest
// reserve defines its location and lines.
func (b *Book) Reservations() map[string]Reservation {
	out := map[string]Reservation{}
	for _, e := range b.sorted() {
		eff, _ := EffectOf(e)
		op := eff.Reservation
		if op == nil {
			continue
		}
		r := out[op.ID]
		r.ID = op.ID
		switch op.Kind {
		case events.KindReserve:
			// Sorted ascending: the last reserve seen is the newest.
			r.Reserved, r.Location, r.Lines, r.ReserveStamp = true, op.Location, op.Lines, op.Stamp
		default:
			// Sorted ascending: the first close seen is the earliest.
			if !r.Closed {
				r.Closed, r.ClosedStamp, r.ClosedBy = true, op.Stamp, op.Kind
			}
		}
		out[op.ID] = r
	}
	return out
}

// Positions replays the book: events in Stamp order, a count sets on_hand,
// a delta adds to it; then reserved from the active reservations and the
// safety stock. Every position an event, a reservation or a safety stock
// names is present.
func (b *Book) Positions() map[Key]Position {
	pos := map[Key]Position{}
	for _, e := range b.sorted() {
		eff, _ := EffectOf(e)
		for _, m := range eff.Moves {
			p := pos[m.Key]
			if m.IsCount() {
				p.HasCount, p.CountQty, p.CountStamp = true, m.Qty, m.Stamp
				p.OnHand = m.Qty
			} else {
				p.OnHand += m.Delta
			}
			if m.Stamp.HLC.Compare(p.LastStamp) > 0 {
				p.LastStamp = m.Stamp.HLC
			}
			pos[m.Key] = p
		}
	}
	for _, r := range b.Reservations() {
		if !r.Active() {
			continue
		}
		for _, l := range r.Lines {
			k := Key{SKU: l.SKU, Location: r.Location}
			p := pos[k]
			p.Reserved += l.Qty
			pos[k] = p
		}
	}
	for k, q := range b.safety {
		p := pos[k]
		p.Safety = q
		pos[k] = p
	}
	return pos
}

// Oversold lists the positions with available < 0, sorted.
func (b *Book) Oversold() []Key {
	var out []Key
	for k, p := range b.Positions() {
		if p.Oversold() {
			out = append(out, k)
		}
	}
	slices.SortFunc(out, Key.Compare)
	return out
}

// AtRisk lists the ids of the active reservations holding stock at k, sorted.
func (b *Book) AtRisk(k Key) []string {
	var out []string
	for id, r := range b.Reservations() {
		if r.Holds()[k] > 0 {
			out = append(out, id)
		}
	}
	slices.Sort(out)
	return out
}

// Suggestions returns the other locations Suggest would name for an
// oversell at k.
func (b *Book) Suggestions(k Key) []Candidate {
	var cands []Candidate
	for pk, p := range b.Positions() {
		if pk.SKU == k.SKU {
			cands = append(cands, Candidate{Location: pk.Location, Available: p.Available()})
		}
	}
	return Suggest(k.Location, cands)
}
