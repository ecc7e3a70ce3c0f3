package staffq

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"unicode/utf8"

	"github.com/omnisync/omnisync/edge/internal/whereabouts"
	"github.com/omnisync/omnisync/shared/events"
	"github.com/omnisync/omnisync/shared/hlc"
)

// A store's agents share their queues (see Link), so a request may be
// claimed on one handheld and finished on another while a third was
// offline. Each request is therefore kept as a record of registers, each
// written with a Stamp, and two records of one request merge register by
// register into the same result whatever the order they meet in, however
// often: the request as first created (earliest stamp), the latest claim
// (whoever took it last), the first done and the first escalation. The
// state, and the times the page shows, follow from the registers.

// Stamp orders changes across a store's agents: the hybrid logical clock of
// the agent that made the change, then its device name to break ties.
type Stamp struct {
	HLC    hlc.Timestamp `json:"hlc"`
	Device string        `json:"device"`
}

// Compare returns -1, 0 or +1 as s is before, equal to or after u.
func (s Stamp) Compare(u Stamp) int {
	if c := s.HLC.Compare(u.HLC); c != 0 {
		return c
	}
	return cmp.Compare(s.Device, u.Device)
}

// IsZero reports whether s was never set.
func (s Stamp) IsZero() bool { return s.HLC.IsZero() && s.Device == "" }

// record is a request as the queue stores it and its agents share it: the
// request and the stamp of each of its changes.
type record struct {
	Request
	CreatedAt   Stamp  `json:"created_at"`
	ClaimedAt   *Stamp `json:"claimed_at,omitempty"`
	DoneAt      *Stamp `json:"done_at,omitempty"`
	EscalatedAt *Stamp `json:"escalated_at,omitempty"`
}

// settle derives the state and the page's times from the registers.
func (r *record) settle() {
	r.CreatedMS = r.CreatedAt.HLC.Wall
	r.ClaimedMS, r.DoneMS, r.EscalatedMS = 0, 0, 0
	if r.ClaimedAt != nil {
		r.ClaimedMS = r.ClaimedAt.HLC.Wall
	} else {
		r.ClaimedBy = ""
	}
	if r.EscalatedAt != nil {
		r.EscalatedMS = r.EscalatedAt.HLC.Wall
	}
	switch {
	case r.DoneAt != nil:
		r.State, r.DoneMS = StateDone, r.DoneAt.HLC.Wall
		if r.ClaimedAt == nil {
			// Done without a claim: taken and done at once.
			r.ClaimedMS = r.DoneMS
		}
	case r.ClaimedAt != nil:
		r.State = StateClaimed
	default:
		r.State = StateOpen
	}
}

// upgrade gives a record written before requests were shared (no stamps)
// the stamps its times imply, as this agent's own.
func (r *record) upgrade(device string) {
	if !r.CreatedAt.IsZero() {
		return
	}
	at := func(ms int64) *Stamp { return &Stamp{HLC: hlc.Timestamp{Wall: ms}, Device: device} }
	r.Origin = device
	r.CreatedAt = *at(r.CreatedMS)
	if r.State == StateClaimed || (r.State == StateDone && (r.ClaimedBy != "" || r.ClaimedMS != r.DoneMS)) {
		r.ClaimedAt = at(r.ClaimedMS)
	}
	if r.State == StateDone {
		r.DoneAt = at(r.DoneMS)
	}
	if r.EscalatedMS != 0 {
		r.EscalatedAt = at(r.EscalatedMS)
	}
	r.settle()
}

// base is what a request was created with.
type base struct {
	Event  string `json:"e"`
	Zone   string `json:"z"`
	Reason string `json:"r"`
	Note   string `json:"n"`
	Trying *Item  `json:"t"`
	Fetch  Item   `json:"f"`
	Origin string `json:"o"`
}

func (r *record) base() base {
	return base{Event: r.Event, Zone: r.Zone, Reason: r.Reason, Note: r.Note, Trying: r.Trying, Fetch: r.Fetch, Origin: r.Origin}
}

func (r *record) setBase(b base, at Stamp) {
	r.Event, r.Zone, r.Reason, r.Note, r.Trying, r.Fetch, r.Origin = b.Event, b.Zone, b.Reason, b.Note, b.Trying, b.Fetch, b.Origin
	r.CreatedAt = at
}

// merge joins two records of one request. It is commutative, associative
// and idempotent: every agent that has seen the same changes holds the
// same record.
func merge(a, b record) record {
	out := a
	if c := b.CreatedAt.Compare(a.CreatedAt); c < 0 || (c == 0 && baseLess(b.base(), a.base())) {
		// Two creations of one request (one id) are one agent's, retried:
		// the first wins, and equal stamps never leave the choice to
		// arrival order.
		out.setBase(b.base(), b.CreatedAt)
	}
	switch c := cmpStamp(b.ClaimedAt, a.ClaimedAt); {
	case c > 0, c == 0 && b.ClaimedAt != nil && b.ClaimedBy > a.ClaimedBy:
		out.ClaimedAt, out.ClaimedBy = b.ClaimedAt, b.ClaimedBy
	}
	out.DoneAt = first(a.DoneAt, b.DoneAt)
	out.EscalatedAt = first(a.EscalatedAt, b.EscalatedAt)
	out.settle()
	return out
}

func baseLess(x, y base) bool {
	bx, _ := json.Marshal(x)
	by, _ := json.Marshal(y)
	return bytes.Compare(bx, by) < 0
}

// cmpStamp compares optional stamps, nil before any.
func cmpStamp(a, b *Stamp) int {
	switch {
	case a == nil && b == nil:
		return 0
	case a == nil:
		return -1
	case b == nil:
		return 1
	}
	return a.Compare(*b)
}

// first is the earlier of two optional stamps (nil when both are).
func first(a, b *Stamp) *Stamp {
	switch {
	case a == nil:
		return b
	case b == nil:
		return a
	case b.Compare(*a) < 0:
		return b
	}
	return a
}

// Limits on what another agent may send; see check.
const (
	maxID, maxZone, maxNote, maxBy = 64, 128, 500, 40
	maxName, maxVariant, maxGTIN   = 200, 100, 14
	// An item's location: the area's name, the units listed and each
	// unit's serial (an SGTIN serial has at most 20 characters).
	maxArea, maxUnits, maxSerial = whereabouts.MaxArea, whereabouts.MaxUnits, whereabouts.MaxSerial
)

// errRecord is why a record from another agent was refused.
var errRecord = errors.New("staffq: bad shared request")

// check refuses a record no agent of ours would have written: a request is
// a message from another machine on the store's network, merged into what
// the associates act on.
func (r *record) check() error {
	bad := func(what string) error { return fmt.Errorf("%w: %s", errRecord, what) }
	text := func(s string, n int) bool { return len(s) <= n && utf8.ValidString(s) }
	location := func(l *Location) bool {
		if l == nil {
			return true
		}
		if l.Area == "" || !text(l.Area, maxArea) || l.SeenMS <= 0 || len(l.Units) > maxUnits {
			return false
		}
		for _, u := range l.Units {
			if u == "" || !text(u, maxSerial) {
				return false
			}
		}
		return true
	}
	item := func(it *Item, help bool) bool {
		// A call for help may name no item ("please come to room 2").
		return (it.SKU != "" || help) && text(it.SKU, events.MaxSKULen) && text(it.GTIN, maxGTIN) && text(it.Name, maxName) && text(it.Variant, maxVariant) && location(it.Location)
	}
	stamp := func(s *Stamp) bool { return s == nil || (s.HLC.Wall > 0 && events.ValidToken(s.Device) == nil) }
	switch {
	case r.ID == "" || len(r.ID) > maxID || events.ValidToken(r.ID) != nil:
		return bad("id")
	case !stamp(&r.CreatedAt) || !stamp(r.ClaimedAt) || !stamp(r.DoneAt) || !stamp(r.EscalatedAt):
		return bad("stamp")
	case !text(r.Zone, maxZone) || r.Zone == "" || !text(r.Note, maxNote) || !text(r.Event, maxID) || !text(r.ClaimedBy, maxBy):
		return bad("text")
	case r.Reason != events.AssistSize && r.Reason != events.AssistColour && r.Reason != events.AssistHelp:
		return bad("reason")
	case events.ValidToken(r.Origin) != nil || r.CreatedAt.Device != r.Origin || (r.EscalatedAt != nil && r.EscalatedAt.Device != r.Origin):
		// The device that recorded a request stamps its creation and is
		// the one that escalates it to HQ (Sweep): a record saying
		// otherwise would hand that job to another agent or take it away.
		return bad("origin")
	case !item(&r.Fetch, r.Reason == events.AssistHelp) || (r.Trying != nil && !item(r.Trying, r.Reason == events.AssistHelp)):
		return bad("item")
	}
	return nil
}
