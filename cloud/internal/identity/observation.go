package identity

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"slices"
	"strconv"

	"github.com/omnisync/omnisync/shared/events"
	"github.com/omnisync/omnisync/shared/ids"
)

// Rules of evidence with a meaning to the graph. Other values name what
// linked the identifiers (the event kind: identify, sale, consent, update,
// claim; or a finer reason such as "card_scan", "receipt_qr", "login").
const (
	// RuleIdentify is an identify event's.
	RuleIdentify = "identify"
	// RuleManual is an operator's link at HQ: it is not held to the
	// per-type limits (the operator decided), and names the operator.
	RuleManual = "manual"
)

// MaxObservationIdentifiers bounds the identifiers of one observation.
const MaxObservationIdentifiers = 16

// ErrObservation is wrapped by every Observation and Unlink validation
// failure.
var ErrObservation = errors.New("identity: invalid observation")

// Evidence says why identifiers were seen together: the customer 360 shows
// it next to each link, and an unmerge names it.
type Evidence struct {
	// Store and Device saw them ("" for the hub's API).
	Store  string `json:"store,omitempty"`
	Device string `json:"device,omitempty"`
	// Rule is what linked them: RuleIdentify, RuleManual, or the kind of
	// the event that named the customer (sale, consent, update, claim).
	Rule string `json:"rule"`
	// Operator is who linked them by hand (RuleManual).
	Operator string `json:"operator,omitempty"`
}

// Observation is a set of identifiers seen together by one event: the
// unit of evidence the graph is built from. Every event that names a
// customer by identifiers should be one (a sale naming a loyalty card is
// an observation of that card), so every identifier that data is
// attributed to belongs to a customer.
type Observation struct {
	// Stamp is the event's: its HLC and its id, which names the
	// observation (one event, one observation).
	Stamp       events.Stamp `json:"stamp"`
	Identifiers []Identifier `json:"identifiers"`
	Evidence    Evidence     `json:"evidence"`
}

// ID names the observation: its event's id.
func (o Observation) ID() string { return o.Stamp.ID }

// Validate checks what the graph relies on: an id, a stamp, known types,
// a bounded number of identifiers and an operator for a manual link.
// Values must come from Normalize; Validate does not normalise them again.
func (o Observation) Validate() error {
	if o.Stamp.ID == "" {
		return fmt.Errorf("%w: no event id", ErrObservation)
	}
	if o.Stamp.HLC.IsZero() {
		return fmt.Errorf("%w: no stamp", ErrObservation)
	}
	if len(o.Identifiers) > MaxObservationIdentifiers {
		return fmt.Errorf("%w: %d identifiers, at most %d", ErrObservation, len(o.Identifiers), MaxObservationIdentifiers)
	}
	for _, id := range o.Identifiers {
		if !id.Type.Valid() || id.Value == "" {
			return fmt.Errorf("%w: identifier of type %q", ErrObservation, string(id.Type))
		}
	}
	if o.Evidence.Rule == RuleManual && o.Evidence.Operator == "" {
		return fmt.Errorf("%w: a manual link names its operator", ErrObservation)
	}
	return nil
}

// canonical returns o's identifiers distinct and in Compare order: the
// order master ids are derived in, fixed for the observation's life.
func (o Observation) canonical() []Identifier {
	ids := slices.Clone(o.Identifiers)
	slices.SortFunc(ids, Identifier.Compare)
	return slices.Compact(ids)
}

// Unlink undoes an observation's links: HQ's unmerge. The observation
// stays as evidence but links nothing; the graph is what the remaining
// observations make it, so undoing the merge an observation made gives
// back exactly the customers there were without it. Restore redoes it.
// Per observation, the newest Unlink (by Stamp) decides; it may arrive
// before the observation it names.
type Unlink struct {
	// Observation is the id of the observation undone.
	Observation string `json:"observation"`
	// Stamp is the unlink's own (the hub's clock when HQ asked, and an id).
	Stamp    events.Stamp `json:"stamp"`
	Operator string       `json:"operator"`
	Reason   string       `json:"reason,omitempty"`
	// Restore puts the observation's links back.
	Restore bool `json:"restore,omitempty"`
}

// Validate checks u names an observation, is stamped and names its
// operator.
func (u Unlink) Validate() error {
	switch {
	case u.Observation == "":
		return fmt.Errorf("%w: unlink names no observation", ErrObservation)
	case u.Stamp.ID == "" || u.Stamp.HLC.IsZero():
		return fmt.Errorf("%w: unlink not stamped", ErrObservation)
	case u.Operator == "":
		return fmt.Errorf("%w: unlink names no operator", ErrObservation)
	}
	return nil
}

// newer reports whether u decides over v (the newer stamp; on a tie,
// undoing wins).
func (u Unlink) newer(v Unlink) bool {
	if c := u.Stamp.Compare(v.Stamp); c != 0 {
		return c > 0
	}
	return !u.Restore && v.Restore
}

// MasterID is the id of the customer founded by observation obs with the
// identifier at position i of its canonical identifiers (distinct, in
// Compare order) as anchor. It is a UUID (version 8) derived from the
// observation's event id, so it carries nothing personal and every replica
// mints the same.
func MasterID(obs string, i int) string {
	h := masterHash("omnisync customer v1\x00", obs, i)
	return ids.FormatUUID([16]byte(h[:16]), 8)
}

// OrderedMasterID is MasterID for an observation stamped o: its first 48
// bits are the wall clock of o's HLC (milliseconds), as a UUIDv7's, the
// rest derived from o's id and i. The hub's index of master ids then
// grows at its end, as time goes, instead of taking a random entry per
// new customer.
func OrderedMasterID(o events.Stamp, i int) string {
	h := masterHash("omnisync customer v2\x00", o.ID, i)
	var b [16]byte
	copy(b[6:], h[:10])
	w := uint64(max(o.HLC.Wall, 0))
	for k := range 6 {
		b[k] = byte(w >> (40 - 8*k))
	}
	return ids.FormatUUID(b, 8)
}

// MasterID is the id of the customer founded by observation o with the
// identifier at position i of its canonical identifiers as anchor:
// OrderedMasterID for observations stamped at or after OrderedSince,
// MasterID for the others, whose ids were minted so before.
func (p Policy) MasterID(o events.Stamp, i int) string {
	if p.OrderedSince > 0 && o.HLC.Pack() >= p.OrderedSince {
		return OrderedMasterID(o, i)
	}
	return MasterID(o.ID, i)
}

// masterHash is the SHA-256 of prefix, obs, a zero byte and i in decimal,
// written into a buffer on the stack: one is minted per new customer.
func masterHash(prefix, obs string, i int) [32]byte {
	var buf [128]byte
	b := append(buf[:0], prefix...)
	b = append(b, obs...)
	b = append(b, 0)
	b = strconv.AppendInt(b, int64(i), 10)
	return sha256.Sum256(b)
}
