// Package erasure holds the hub's rules for erasing a customer: what is
// removed, what is kept, what a later event naming the erased person
// becomes, and when an erasure is done everywhere. It is pure (no SQL, no
// clock, no I/O).
//
// An erasure (Request, from HQ) removes the customer's personal data at
// the hub: its identifiers (raw values and index rows), every observation
// naming them (identity.Graph.Forget), the attributes, consent decisions,
// cart claims and interests in items (what the web shop saw her look at)
// attributed to them, and its customer 360. Sales and
// orders are kept, without their customer: the books stay whole and
// anonymous. Every store must purge its caches and its outbox and answer
// with a Receipt (Progress).
//
// What is kept, and nothing else: the Request (erasure id, the master
// id, which pointed to the person but now points to nothing, the stamp,
// the operator); per erased identifier a Tombstone holding its keyed digest
// (identity.Digest: HMAC-SHA-256 under the hub's index key, which reveals
// nothing without the key, not even to a dictionary of addresses), the
// erasure id and the stamp; and the stores' receipts.
//
// The tombstones are a permanent block: an event naming an erased
// identifier, whenever it was stamped and however late it arrives (a
// store offline during the erasure drains its outbox a week later), is
// scrubbed on apply and never brings the person back (Action says how,
// per kind). An identify naming an erased identifier is dropped whole: the
// identifiers seen with it are that person's too. Only HQ lifts a block
// (a Reinstatement: the person came back and registered again); events
// stamped up to the reinstatement stay scrubbed, later ones are the new
// relationship. The digests also answer "may we contact this address" at
// send time: an erased identifier is never contacted, whatever another
// list says.
//
// Sharp edge: tombstones hold digests only, so they cannot be re-keyed.
// Rotating the index key keeps every older key version a tombstone uses
// (Register.Versions) in the identity.Hasher, for as long as tombstones
// made under it exist.
package erasure

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/omnisync/omnisync/cloud/internal/identity"
	"github.com/omnisync/omnisync/shared/events"
)

// Errors callers branch on.
var (
	// ErrUnknownCustomer is returned by Erase for a customer the graph
	// does not know (never, or already erased).
	ErrUnknownCustomer = errors.New("erasure: unknown customer")
	// ErrInvalid is returned for a request missing its id, stamp or
	// operator.
	ErrInvalid = errors.New("erasure: invalid request")
)

// Request is HQ's request to erase one customer.
type Request struct {
	// ID names the erasure (what stores acknowledge).
	ID string `json:"id"`
	// Customer is the master id HQ named (any id that resolves to the
	// customer).
	Customer string `json:"customer"`
	// Stamp is the hub's when HQ asked, and an id.
	Stamp    events.Stamp `json:"stamp"`
	Operator string       `json:"operator"`
}

// Validate checks r names its erasure, customer, stamp and operator.
func (r Request) Validate() error {
	switch {
	case r.ID == "":
		return fmt.Errorf("%w: no erasure id", ErrInvalid)
	case r.Customer == "":
		return fmt.Errorf("%w: no customer", ErrInvalid)
	case r.Stamp.ID == "" || r.Stamp.HLC.IsZero():
		return fmt.Errorf("%w: not stamped", ErrInvalid)
	case r.Operator == "":
		return fmt.Errorf("%w: no operator", ErrInvalid)
	}
	return nil
}

// Tombstone is what is kept of one erased identifier.
type Tombstone struct {
	Digest  identity.Digest `json:"digest"`
	Erasure string          `json:"erasure"`
	// Erased is the erasure's stamp.
	Erased events.Stamp `json:"erased"`
}

// Reinstatement lifts a tombstone: HQ's decision, when the person comes
// back and registers again, that events stamped after it may name the
// identifier.
type Reinstatement struct {
	Digest   identity.Digest `json:"digest"`
	Stamp    events.Stamp    `json:"stamp"`
	Operator string          `json:"operator"`
}

// Plan is what one erasure does at the hub.
type Plan struct {
	// Customer is the master id erased (Request.Customer resolved).
	Customer string
	// Identifiers are the customer's identifiers: the rows to delete.
	// Personal data: never log them.
	Identifiers []identity.Identifier
	// Tombstones are what to keep of them.
	Tombstones []Tombstone
	// Changes are the identity graph's (identifiers removed, ids gone,
	// customers of what remained recomputed).
	Changes identity.Changes
}

// Erase erases r's customer from g: the customer's identifiers, every
// observation naming them and the ids anchored on them leave g, and the
// plan says what to delete and what to keep. g must hold the customer's
// cluster (the store loads it).
func Erase(g *identity.Graph, h *identity.Hasher, r Request) (Plan, error) {
	if err := r.Validate(); err != nil {
		return Plan{}, err
	}
	c, ok := g.Customer(r.Customer)
	if !ok {
		return Plan{}, fmt.Errorf("%w: %s", ErrUnknownCustomer, r.Customer)
	}
	p := Plan{Customer: c.ID}
	for _, m := range c.Identifiers {
		p.Identifiers = append(p.Identifiers, m.Identifier)
		p.Tombstones = append(p.Tombstones, Tombstone{Digest: h.Digest(m.Identifier), Erasure: r.ID, Erased: r.Stamp})
	}
	p.Changes = g.Forget(p.Identifiers...)
	return p, nil
}

// Register is the set of tombstones and reinstatements: which identifiers
// are erased. Its answers depend only on the set of tombstones and
// reinstatements added, not on their order or repetition. A Register is
// not safe for concurrent use.
type Register struct {
	h       *identity.Hasher
	entries map[identity.Digest]*entry
	// versions counts the entries per key version.
	versions map[uint32]int
}

type entry struct {
	erasure    string
	erased     events.Stamp
	reinstated events.Stamp // zero: never
}

// NewRegister returns an empty register computing digests with h, which
// must hold every key version the tombstones added use.
func NewRegister(h *identity.Hasher) *Register {
	return &Register{h: h, entries: map[identity.Digest]*entry{}, versions: map[uint32]int{}}
}

func (r *Register) entry(d identity.Digest) *entry {
	e := r.entries[d]
	if e == nil {
		e = &entry{}
		r.entries[d] = e
		r.versions[d.Version]++
	}
	return e
}

// Add records tombstones. Per digest the newest erasure is kept.
func (r *Register) Add(ts ...Tombstone) {
	for _, t := range ts {
		e := r.entry(t.Digest)
		if e.erased.ID == "" || t.Erased.Compare(e.erased) > 0 {
			e.erased, e.erasure = t.Erased, t.Erasure
		}
	}
}

// Reinstate records reinstatements. Per digest the newest is kept.
func (r *Register) Reinstate(rs ...Reinstatement) {
	for _, s := range rs {
		e := r.entry(s.Digest)
		if s.Stamp.Compare(e.reinstated) > 0 {
			e.reinstated = s.Stamp
		}
	}
}

// Erased reports whether identifier id is erased for an event stamped at:
// it has a tombstone, and no reinstatement newer than its newest erasure
// and older than at.
func (r *Register) Erased(id identity.Identifier, at events.Stamp) bool {
	for v := range r.versions {
		d, ok := r.h.DigestUnder(id, v)
		if !ok {
			continue
		}
		e := r.entries[d]
		if e == nil || e.erased.ID == "" {
			continue
		}
		if e.reinstated.Compare(e.erased) <= 0 || at.Compare(e.reinstated) <= 0 {
			return true
		}
	}
	return false
}

// Names reports whether any of ids is erased for an event stamped at.
func (r *Register) Names(ids []identity.Identifier, at events.Stamp) bool {
	if len(r.versions) == 0 {
		return false
	}
	return slices.ContainsFunc(ids, func(id identity.Identifier) bool { return r.Erased(id, at) })
}

// Admit returns whether observation o may enter the identity graph: not
// when it names an erased identifier.
func (r *Register) Admit(o identity.Observation) bool { return !r.Names(o.Identifiers, o.Stamp) }

// Versions returns the key versions the tombstones use: the hasher must
// keep them.
func (r *Register) Versions() []uint32 {
	var out []uint32
	for v, n := range r.versions {
		if n > 0 {
			out = append(out, v)
		}
	}
	slices.Sort(out)
	return out
}

// Len returns how many digests the register holds.
func (r *Register) Len() int { return len(r.entries) }

// Action is what applying an event naming an erased person does with it.
type Action int

const (
	// Anonymise applies the event without its customer: a sale, a
	// return, an order, a cart: the books stay whole.
	Anonymise Action = iota
	// Drop does not apply the event at all: its only subject is the
	// person (identify, update, consent, erase).
	Drop
)

func (a Action) String() string {
	if a == Drop {
		return "drop"
	}
	return "anonymise"
}

// ActionFor returns what to do with an event of kind k that names an
// erased person: Drop for the kinds about the person alone (identify,
// update, consent), Anonymise for every other (stock moves, reservations,
// carts, reviews, surveys), unknown future kinds included, so no event
// that moves stock is ever lost to an erasure.
func ActionFor(k events.Kind) Action {
	switch k {
	case "identify", "update", "consent":
		return Drop
	}
	return Anonymise
}

// Receipt is a store's answer: it purged the erasure's customer from its
// caches and outbox.
type Receipt struct {
	Store   string    `json:"store"`
	Erasure string    `json:"erasure"`
	At      time.Time `json:"at"`
}

// States of an erasure at one store.
const (
	Pending = "pending"
	Done    = "done"
)

// StoreState is one store's part in an erasure.
type StoreState struct {
	Store string `json:"store"`
	State string `json:"state"`
	// Since is when the erasure was published (pending); At when the store
	// answered (done).
	Since time.Time `json:"since,omitzero"`
	At    time.Time `json:"at,omitzero"`
}

// Progress returns each store's state in erasure id, requested at
// requested: done once the store answered (its first receipt counts),
// pending since the request until then. stores are the stores that
// existed when it was requested (one created later never held the
// person's card); receipts of other erasures or stores are ignored. Done
// reports whether every store answered.
func Progress(id string, requested time.Time, stores []string, receipts []Receipt) (states []StoreState, done bool) {
	first := map[string]time.Time{}
	for _, rc := range receipts {
		if rc.Erasure != id {
			continue
		}
		if t, ok := first[rc.Store]; !ok || rc.At.Before(t) {
			first[rc.Store] = rc.At
		}
	}
	all := slices.Clone(stores)
	slices.Sort(all)
	done = true
	for _, s := range slices.Compact(all) {
		if at, ok := first[s]; ok {
			states = append(states, StoreState{Store: s, State: Done, At: at})
			continue
		}
		done = false
		states = append(states, StoreState{Store: s, State: Pending, Since: requested})
	}
	return states, done
}
