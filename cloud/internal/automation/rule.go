package automation

import (
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/omnisync/omnisync/cloud/internal/consent"
	"github.com/omnisync/omnisync/shared/events"
)

// ErrInvalidRule is wrapped by every reason a rule cannot be stored.
var ErrInvalidRule = errors.New("automation: invalid rule")

// Trigger names what happened.
type Trigger string

// The built-in triggers.
const (
	CartAbandoned         Trigger = "cart_abandoned"
	BackInStock           Trigger = "back_in_stock"
	PostPurchase          Trigger = "post_purchase"
	FittingRoomUnanswered Trigger = "fitting_room_unanswered"
	AtRisk                Trigger = "at_risk"
)

// Triggers lists the built-in triggers.
var Triggers = []Trigger{CartAbandoned, BackInStock, PostPurchase, FittingRoomUnanswered, AtRisk}

// DefaultDelay is the delay of a rule that names none, per trigger: a
// fitting-room request is "not answered" after 3 minutes.
func DefaultDelay(t Trigger) time.Duration {
	if t == FittingRoomUnanswered {
		return 3 * time.Minute
	}
	return 0
}

// Operators of a condition.
const (
	OpEq  = "eq"
	OpNe  = "ne"
	OpIn  = "in"
	OpGte = "gte"
	OpLte = "lte"
)

// Condition tests one fact: "segment", "store", "sku", "cart.<field>"
// (from the event, e.g. cart.value), "profile.<attribute>" (from the
// customer's profile), or any attribute the event carries.
type Condition struct {
	Field string `json:"field"`
	Op    string `json:"op"`
	// Value is compared as a number by gte and lte, as text otherwise;
	// Values is the set for in.
	Value  string   `json:"value,omitempty"`
	Values []string `json:"values,omitempty"`
}

// Cap limits how often one customer gets a rule's message: at most Max in
// any window of Per. Zero Max: no cap.
type Cap struct {
	Max        int   `json:"max"`
	PerSeconds int64 `json:"per_seconds"`
}

// Per is the cap's window.
func (c Cap) Per() time.Duration { return time.Duration(c.PerSeconds) * time.Second }

// Action kinds.
const (
	ActionWebhook = "webhook"
	ActionNATS    = "nats"
)

// Action is what a job does when it is sent.
type Action struct {
	Kind string `json:"kind"`
	// URL and Secret for a webhook: the body is signed with HMAC-SHA256
	// under Secret (Sign). Left out, the hub makes one when the rule is
	// created and shows it that once; it is kept sealed and never shown
	// back.
	URL    string `json:"url,omitempty"`
	Secret string `json:"secret,omitempty"`
	// Subject for a NATS publish.
	Subject string `json:"subject,omitempty"`
}

// Rule is one automation HQ defined.
type Rule struct {
	ID      string  `json:"id"`
	Name    string  `json:"name"`
	Enabled bool    `json:"enabled"`
	Trigger Trigger `json:"trigger"`
	// Conditions must all hold.
	Conditions []Condition `json:"conditions,omitempty"`
	// DelaySeconds waits after the event before sending (0: the trigger's
	// default, DefaultDelay).
	DelaySeconds int64 `json:"delay_seconds,omitempty"`
	// Purpose is the consent the message needs, on Channel; empty for a
	// message to staff, which needs none (it names no customer).
	Purpose consent.Purpose `json:"purpose,omitempty"`
	Channel consent.Channel `json:"channel,omitempty"`
	Cap     Cap             `json:"cap"`
	Action  Action          `json:"action"`
}

// Delay is the wait between the event and sending.
func (r Rule) Delay() time.Duration {
	if r.DelaySeconds > 0 {
		return time.Duration(r.DelaySeconds) * time.Second
	}
	return DefaultDelay(r.Trigger)
}

// Redacted is r without its webhook secret, as HQ reads it back.
func (r Rule) Redacted() Rule {
	if r.Action.Secret != "" {
		r.Action.Secret = "********"
	}
	r.Conditions = slices.Clone(r.Conditions)
	return r
}

// Validate reports what makes r impossible to run, wrapping ErrInvalidRule.
func (r Rule) Validate() error {
	bad := func(f string, a ...any) error { return fmt.Errorf("%w: %s", ErrInvalidRule, fmt.Sprintf(f, a...)) }
	if err := events.ValidToken(r.ID); err != nil || len(r.ID) > 64 {
		return bad("id must be 1 to 64 letters, digits, '-' or '_'")
	}
	if len(r.Name) > 200 {
		return bad("name longer than 200 characters")
	}
	if !slices.Contains(Triggers, r.Trigger) {
		return bad("trigger %q (one of %v)", r.Trigger, Triggers)
	}
	if len(r.Conditions) > 32 {
		return bad("more than 32 conditions")
	}
	for i, c := range r.Conditions {
		if c.Field == "" || len(c.Field) > 64 {
			return bad("conditions[%d].field missing", i)
		}
		switch c.Op {
		case OpEq, OpNe:
		case OpIn:
			if len(c.Values) == 0 {
				return bad("conditions[%d]: in needs values", i)
			}
		case OpGte, OpLte:
			if _, err := strconv.ParseFloat(c.Value, 64); err != nil {
				return bad("conditions[%d]: %s needs a number, got %q", i, c.Op, c.Value)
			}
		default:
			return bad("conditions[%d].op %q (eq, ne, in, gte, lte)", i, c.Op)
		}
	}
	if r.DelaySeconds < 0 || r.DelaySeconds > 90*24*3600 {
		return bad("delay_seconds must be 0 to 90 days")
	}
	if r.Purpose != "" && !r.Purpose.Valid() {
		return bad("purpose %q (one of %v)", r.Purpose, consent.Purposes())
	}
	if !r.Channel.Valid() {
		return bad("channel %q (one of %v)", r.Channel, consent.Channels())
	}
	if r.Purpose == "" && r.Trigger != FittingRoomUnanswered {
		// Every built-in trigger but the fitting room's speaks to a
		// customer: no message without the consent it needs.
		return bad("purpose is required for a message to a customer (trigger %s)", r.Trigger)
	}
	if r.Cap.Max < 0 || r.Cap.PerSeconds < 0 || (r.Cap.Max > 0 && r.Cap.PerSeconds == 0) {
		return bad("cap needs max >= 0 and, with a max, per_seconds > 0")
	}
	switch r.Action.Kind {
	case ActionWebhook:
		u, err := url.Parse(r.Action.URL)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User != nil {
			return bad("action.url must be an http(s) URL without credentials")
		}
		if r.Action.Secret != "" && len(r.Action.Secret) < 16 {
			return bad("action.secret must be at least 16 characters (it signs every delivery), or left out for the hub to make one")
		}
	case ActionNATS:
		if !validSubject(r.Action.Subject) {
			return bad("action.subject %q is not a NATS subject without wildcards", r.Action.Subject)
		}
	default:
		return bad("action.kind %q (webhook or nats)", r.Action.Kind)
	}
	return nil
}

func validSubject(s string) bool {
	if s == "" || len(s) > 255 || strings.HasPrefix(s, "omni.") || strings.HasPrefix(s, "$") {
		return false
	}
	for _, tok := range strings.Split(s, ".") {
		if tok == "" || strings.ContainsAny(tok, "*> \t\r\n") {
			return false
		}
	}
	return true
}
