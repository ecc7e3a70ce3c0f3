// Package consent holds the hub's rules for customers' consent: which
// decisions stand, and whether a message or a use of data is allowed at a
// given time. It is pure (no SQL, no clock, no I/O); the automation calls
// May at send time, not when a campaign is planned, so a decision taken in
// between counts.
//
// A Decision grants, denies or revokes one purpose (marketing_email, sms,
// push, personalisation, analytics) with its evidence: where it was
// captured (store, device, source), the version of the text shown, the
// operator for a change made at HQ. The rule, per purpose P, for a use on
// channel C (store, web, app, email, sms, phone) at time T:
//
//   - A grant applies to its channel, or to every channel when its
//     channel is empty. A web cookie banner's analytics grant is for web
//     only; a kiosk's "e-mail me offers" is for every channel.
//   - An opt-out (denied or revoked) applies to every channel, whatever
//     channel it was given on: an opt-out at store B's kiosk holds on the
//     web, in the app and at store A. Its channel only records where it
//     was given.
//   - The newest applicable decision (by events.Stamp: HLC, then event id;
//     on an exact tie an opt-out beats a grant) decides: a grant allows
//     the use until its expiry (exclusive), an opt-out forbids it. So a
//     grant given after an opt-out reopens its own channel (every channel
//     for an all-channel grant); a grant given before it does not. An
//     expired grant is a lapsed consent: it forbids, and an older grant
//     does not come back.
//   - No applicable decision: not allowed (consent is opt-in).
//
// Denied and revoked mean the same to the rule (declined when asked, or
// withdrawn); both are kept as said. Expiry applies to grants only.
//
// Decisions are attributed to identifiers, not copied into a merged
// customer (see the identity package): the store keeps a State per subject
// identifier, and a customer's state is Join of its identifiers' states.
// A State keeps, per purpose, the newest opt-out and the newest grant per
// channel, which answers May exactly as the whole history would; Add and
// Join are commutative, associative and idempotent, so any order,
// duplication or grouping of decisions gives the same answers, a merge is
// a join, and an unmerge recomputes each side exactly.
package consent

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/omnisync/omnisync/shared/events"
)

// Purpose is what a consent is for.
type Purpose string

// The purposes.
const (
	MarketingEmail  Purpose = "marketing_email"
	SMS             Purpose = "sms"
	Push            Purpose = "push"
	Personalisation Purpose = "personalisation"
	Analytics       Purpose = "analytics"
)

var purposes = []Purpose{MarketingEmail, SMS, Push, Personalisation, Analytics}

// Purposes returns every purpose.
func Purposes() []Purpose { return slices.Clone(purposes) }

// Valid reports whether p is a known purpose.
func (p Purpose) Valid() bool { return slices.Contains(purposes, p) }

// Channel is where a decision was given, and where a use happens.
type Channel string

// The channels. AllChannels, on a grant, grants every channel.
const (
	AllChannels  Channel = ""
	ChannelStore Channel = "store"
	ChannelWeb   Channel = "web"
	ChannelApp   Channel = "app"
	ChannelEmail Channel = "email"
	ChannelSMS   Channel = "sms"
	ChannelPhone Channel = "phone"
)

var channels = []Channel{ChannelStore, ChannelWeb, ChannelApp, ChannelEmail, ChannelSMS, ChannelPhone}

// Channels returns every channel (AllChannels aside).
func Channels() []Channel { return slices.Clone(channels) }

// Valid reports whether c is a known channel or AllChannels.
func (c Channel) Valid() bool { return c == AllChannels || slices.Contains(channels, c) }

// Status is what a decision says.
type Status string

// The statuses.
const (
	Granted Status = "granted"
	Denied  Status = "denied"
	Revoked Status = "revoked"
)

// Valid reports whether s is a known status.
func (s Status) Valid() bool { return s == Granted || s == Denied || s == Revoked }

// ParseStatus reads a consent event's status: "status" when given,
// otherwise "granted" (true: granted, false: denied).
func ParseStatus(granted *bool, status string) (Status, error) {
	if status != "" {
		s := Status(strings.ToLower(strings.TrimSpace(status)))
		if !s.Valid() {
			return "", fmt.Errorf("%w: status %q (granted, denied, revoked)", ErrInvalid, status)
		}
		if granted != nil && *granted != (s == Granted) {
			return "", fmt.Errorf("%w: granted %v contradicts status %q", ErrInvalid, *granted, s)
		}
		return s, nil
	}
	if granted == nil {
		return "", fmt.Errorf("%w: neither granted nor status", ErrInvalid)
	}
	if *granted {
		return Granted, nil
	}
	return Denied, nil
}

// ErrInvalid is wrapped by every validation failure.
var ErrInvalid = errors.New("consent: invalid decision")

// MaxTextLen bounds the evidence's free text fields.
const MaxTextLen = 128

// Evidence is where and how a decision was captured.
type Evidence struct {
	// Store and Device captured it ("" for the hub's API).
	Store  string `json:"store,omitempty"`
	Device string `json:"device,omitempty"`
	// Source is the touchpoint: kiosk, till, web, app, api, import,
	// unsubscribe_link, operator, ...
	Source string `json:"source,omitempty"`
	// TextVersion is the version of the consent text shown.
	TextVersion string `json:"text_version,omitempty"`
	// Operator made the change at HQ.
	Operator string `json:"operator,omitempty"`
}

// Decision is one consent decision.
type Decision struct {
	Purpose Purpose `json:"purpose"`
	// Channel, for a grant, is the channel granted (AllChannels: every
	// one); for an opt-out, where it was given (it holds everywhere).
	Channel Channel `json:"channel,omitempty"`
	Status  Status  `json:"status"`
	// Stamp is the event's.
	Stamp events.Stamp `json:"stamp"`
	// Expires is when a grant lapses, Unix milliseconds (0: never).
	Expires  int64    `json:"expires,omitempty"`
	Evidence Evidence `json:"evidence"`
}

// OptOut reports whether d denies or revokes.
func (d Decision) OptOut() bool { return d.Status != Granted }

// Validate checks d's purpose, channel, status and stamp, that only a
// grant expires, and the evidence's lengths.
func (d Decision) Validate() error {
	switch {
	case !d.Purpose.Valid():
		return fmt.Errorf("%w: purpose %q (one of %v)", ErrInvalid, d.Purpose, purposes)
	case !d.Channel.Valid():
		return fmt.Errorf("%w: channel %q (empty for every channel, or one of %v)", ErrInvalid, d.Channel, channels)
	case !d.Status.Valid():
		return fmt.Errorf("%w: status %q", ErrInvalid, d.Status)
	case d.Stamp.ID == "" || d.Stamp.HLC.IsZero():
		return fmt.Errorf("%w: not stamped", ErrInvalid)
	case d.Expires < 0:
		return fmt.Errorf("%w: negative expiry", ErrInvalid)
	case d.Expires != 0 && d.OptOut():
		return fmt.Errorf("%w: only a grant expires", ErrInvalid)
	}
	for _, s := range []string{d.Evidence.Store, d.Evidence.Device, d.Evidence.Source, d.Evidence.TextVersion, d.Evidence.Operator} {
		if len(s) > MaxTextLen {
			return fmt.Errorf("%w: evidence longer than %d bytes", ErrInvalid, MaxTextLen)
		}
	}
	return nil
}

// newer reports whether d decides over o: the newer stamp; on a tie an
// opt-out over a grant, then a fixed order of the other fields, so that
// the winner never depends on arrival order.
func (d Decision) newer(o Decision) bool {
	if c := d.Stamp.Compare(o.Stamp); c != 0 {
		return c > 0
	}
	if d.OptOut() != o.OptOut() {
		return d.OptOut()
	}
	return cmp.Or(
		cmp.Compare(d.Status, o.Status),
		cmp.Compare(d.Channel, o.Channel),
		cmp.Compare(d.Expires, o.Expires),
		cmp.Compare(d.Evidence.Store, o.Evidence.Store),
		cmp.Compare(d.Evidence.Device, o.Evidence.Device),
		cmp.Compare(d.Evidence.Source, o.Evidence.Source),
		cmp.Compare(d.Evidence.TextVersion, o.Evidence.TextVersion),
		cmp.Compare(d.Evidence.Operator, o.Evidence.Operator),
	) > 0
}

// State is what one subject's (or one customer's) decisions come to: per
// purpose, the newest opt-out and the newest grant per channel. The zero
// value is an empty state.
type State struct {
	purposes map[Purpose]*ledger
}

type ledger struct {
	optOut *Decision
	grants map[Channel]Decision
}

// Add folds d (valid) into s and reports whether it changed what s keeps.
func (s *State) Add(d Decision) bool {
	if s.purposes == nil {
		s.purposes = map[Purpose]*ledger{}
	}
	l := s.purposes[d.Purpose]
	if l == nil {
		l = &ledger{grants: map[Channel]Decision{}}
		s.purposes[d.Purpose] = l
	}
	if d.OptOut() {
		if l.optOut != nil && !d.newer(*l.optOut) {
			return false
		}
		l.optOut = &d
		return true
	}
	if cur, ok := l.grants[d.Channel]; ok && !d.newer(cur) {
		return false
	}
	l.grants[d.Channel] = d
	return true
}

// Join returns the state of a customer whose subjects have states ss.
func Join(ss ...State) State {
	var out State
	for _, s := range ss {
		for _, d := range s.Decisions() {
			out.Add(d)
		}
	}
	return out
}

// Decisions returns the decisions s keeps, by purpose, then opt-out
// first, then channel: what the customer 360 shows, with their evidence.
func (s State) Decisions() []Decision {
	var out []Decision
	for _, p := range purposes {
		l := s.purposes[p]
		if l == nil {
			continue
		}
		if l.optOut != nil {
			out = append(out, *l.optOut)
		}
		for _, c := range append([]Channel{AllChannels}, channels...) {
			if d, ok := l.grants[c]; ok {
				out = append(out, d)
			}
		}
	}
	return out
}

// Reason says why May answered as it did.
type Reason string

// The reasons.
const (
	// ReasonGranted: the newest applicable decision is a grant in force.
	ReasonGranted Reason = "granted"
	// ReasonOptedOut: the newest applicable decision is an opt-out.
	ReasonOptedOut Reason = "opted_out"
	// ReasonExpired: the newest applicable decision is a grant that lapsed.
	ReasonExpired Reason = "expired"
	// ReasonNoDecision: nothing applies; consent is opt-in.
	ReasonNoDecision Reason = "no_decision"
)

// Answer is May's answer.
type Answer struct {
	Allowed bool
	Reason  Reason
	// Decision is the decision that decided (nil for ReasonNoDecision).
	Decision *Decision
}

// May answers whether purpose p may be used on channel c (AllChannels: a
// use tied to no channel, which only an all-channel grant allows) at time
// at, by the package's rule.
func (s State) May(p Purpose, c Channel, at time.Time) Answer {
	l := s.purposes[p]
	if l == nil {
		return Answer{Reason: ReasonNoDecision}
	}
	var best *Decision
	consider := func(d Decision) {
		if best == nil || d.newer(*best) {
			best = &d
		}
	}
	if l.optOut != nil {
		consider(*l.optOut)
	}
	if d, ok := l.grants[AllChannels]; ok {
		consider(d)
	}
	if d, ok := l.grants[c]; ok && c != AllChannels {
		consider(d)
	}
	return decide(best, at)
}

// decide answers with best, the newest applicable decision (nil: none).
func decide(best *Decision, at time.Time) Answer {
	switch {
	case best == nil:
		return Answer{Reason: ReasonNoDecision}
	case best.OptOut():
		return Answer{Reason: ReasonOptedOut, Decision: best}
	case best.Expires != 0 && at.UnixMilli() >= best.Expires:
		return Answer{Reason: ReasonExpired, Decision: best}
	}
	return Answer{Allowed: true, Reason: ReasonGranted, Decision: best}
}
