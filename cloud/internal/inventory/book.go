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
	rules  Rules
	events map[string]events.Envelope // by event id
	safety map[Key]int64
}

// NewBook returns an empty book under the default rules.
func NewBook() *Book { return NewBookWith(Rules{Online: DefaultOnline}) }

// NewBookWith returns an empty book under rules.
func NewBookWith(rules Rules) *Book {
	return &Book{rules: rules, events: map[string]events.Envelope{}, safety: map[Key]int64{}}
}

// Add records env; an event id seen before is ignored. It returns an error
// (wrapping ErrInvalidBody or ErrForeignLocation) for an inventory event
// whose body cannot be applied or whose origin may not send it, and
// records nothing then.
func (b *Book) Add(env events.Envelope) error {
	if _, ok := b.events[env.ID]; ok {
		return nil
	}
	if _, err := b.rules.Effect(env); err != nil {
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
// some reserve and no release or fulfil that counts for it (one naming its
// location, or a release from the online channel or HQ) was seen; the newest reserve
// defines its location and lines.
func (b *Book) Reservations() map[string]Reservation {
	type acc struct {
		r      Reservation
		closes []Close
	}
	all := map[string]*acc{}
	for _, e := range b.sorted() {
		eff, _ := b.rules.Effect(e)
		op := eff.Reservation
		if op == nil {
			continue
		}
		a := all[op.ID]
		if a == nil {
			a = &acc{r: Reservation{ID: op.ID}}
			all[op.ID] = a
		}
		switch op.Kind {
		case events.KindReserve:
			// Sorted ascending: the last reserve seen is the newest.
			a.r.Reserved, a.r.Location, a.r.Lines, a.r.ReserveStamp = true, op.Location, op.Lines, op.Stamp
		default:
			a.closes = append(a.closes, Close{Stamp: op.Stamp, Kind: op.Kind, Location: op.Location, Online: op.Online})
		}
	}
	out := map[string]Reservation{}
	for id, a := range all {
		r := a.r
		r.Closes = a.closes
		if r.Reserved {
			// Sorted ascending: the first close that counts is the earliest.
			for _, c := range a.closes {
				if c.Location == r.Location || (c.Online && c.Kind == events.KindRelease) {
					r.Closed, r.ClosedStamp, r.ClosedBy = true, c.Stamp, c.Kind
					break
				}
			}
		}
		out[id] = r
	}
	return out
}

// Positions replays the book: moves in Stamp order (a count's is its
// snapshot, CountStamp), a count sets on_hand, a delta adds to it; then
// reserved from the active reservations and the safety stock. Every
// position an event, a reservation or a safety stock names is present.
func (b *Book) Positions() map[Key]Position {
	pos := map[Key]Position{}
	var moves []Move
	for _, e := range b.sorted() {
		eff, _ := b.rules.Effect(e)
		moves = append(moves, eff.Moves...)
	}
	slices.SortStableFunc(moves, func(x, y Move) int {
		if c := x.Stamp.Compare(y.Stamp); c != 0 {
			return c
		}
		return x.Line - y.Line
	})
	for _, m := range moves {
		p := pos[m.Key]
		if m.IsCount() {
			p.HasCount, p.CountQty, p.CountStamp, p.CountMethod = true, m.Qty, m.Stamp, m.Method
			p.OnHand = m.Qty
		} else {
			p.OnHand += m.Delta
		}
		if m.Stamp.HLC.Compare(p.LastStamp) > 0 {
			p.LastStamp = m.Stamp.HLC
		}
		pos[m.Key] = p
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
