package automation

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// ErrInvalidEvent is wrapped by every reason an event cannot be evaluated.
var ErrInvalidEvent = errors.New("automation: invalid event")

// Event is one occurrence of a trigger.
type Event struct {
	// ID is unique per occurrence and stable across replays (an event id,
	// or a key such as "cart:<id>:abandoned:<version>").
	ID      string    `json:"id"`
	Trigger Trigger   `json:"trigger"`
	At      time.Time `json:"at"`
	// Customer is the customer's master id; empty for a message to staff.
	Customer string `json:"customer,omitempty"`
	Store    string `json:"store,omitempty"`
	SKU      string `json:"sku,omitempty"`
	// Attrs are the trigger's own facts: cart.value, cart.lines, zone,
	// request, segment.from, ...
	Attrs map[string]string `json:"attrs,omitempty"`
}

// Validate reports what makes e impossible to evaluate.
func (e Event) Validate() error {
	switch {
	case e.ID == "" || len(e.ID) > 200:
		return fmt.Errorf("%w: id must be 1 to 200 characters", ErrInvalidEvent)
	case e.At.IsZero():
		return fmt.Errorf("%w: no time", ErrInvalidEvent)
	case e.Customer == "" && e.Trigger != FittingRoomUnanswered:
		return fmt.Errorf("%w: %s names no customer", ErrInvalidEvent, e.Trigger)
	}
	return nil
}

// Facts are what conditions read beyond the event: looked up only when a
// rule of the event's trigger has a condition that needs them.
type Facts interface {
	// Segment is the customer's RFM segment ("" when not scored).
	Segment(customer string) string
	// Profile is the customer's profile attribute (ok false when unknown).
	Profile(customer, attribute string) (value string, ok bool)
}

// Job is a rule's message about one event, to send at Due.
type Job struct {
	// ID is the idempotency key: stable for (rule, event).
	ID       string    `json:"id"`
	Rule     string    `json:"rule"`
	Trigger  Trigger   `json:"trigger"`
	Customer string    `json:"customer,omitempty"`
	Due      time.Time `json:"due"`
	Event    Event     `json:"event"`
}

// JobID is the idempotency key of rule's job about event: readable for
// short ids, hashed past 120 bytes.
func JobID(rule, event string) string {
	id := rule + ":" + event
	if len(id) <= 120 {
		return id
	}
	h := sha256.Sum256([]byte(id))
	return rule + ":h" + hex.EncodeToString(h[:16])
}

// Engine holds the enabled rules, indexed by trigger. It is immutable: a
// rule change builds a new Engine (NewEngine), so evaluation takes no lock.
type Engine struct {
	byTrigger map[Trigger][]Rule
}

// NewEngine indexes the enabled, valid rules; the others are left out.
func NewEngine(rules []Rule) *Engine {
	e := &Engine{byTrigger: map[Trigger][]Rule{}}
	for _, r := range rules {
		if r.Enabled && r.Validate() == nil {
			e.byTrigger[r.Trigger] = append(e.byTrigger[r.Trigger], r)
		}
	}
	return e
}

// Rules returns how many rules the engine runs.
func (e *Engine) Rules() int {
	n := 0
	for _, rs := range e.byTrigger {
		n += len(rs)
	}
	return n
}

// Plan returns the jobs the rules make of ev (appended to out), reading
// facts as the conditions need them. It is pure and safe for concurrent
// use.
func (e *Engine) Plan(ev Event, facts Facts, out []Job) ([]Job, error) {
	if err := ev.Validate(); err != nil {
		return out, err
	}
	for _, r := range e.byTrigger[ev.Trigger] {
		if !Matches(r, ev, facts) {
			continue
		}
		out = append(out, Job{ID: JobID(r.ID, ev.ID), Rule: r.ID, Trigger: ev.Trigger, Customer: ev.Customer,
			Due: ev.At.Add(r.Delay()), Event: ev})
	}
	return out, nil
}

// Matches reports whether every condition of r holds for ev.
func Matches(r Rule, ev Event, facts Facts) bool {
	for _, c := range r.Conditions {
		v, ok := fact(c.Field, ev, facts)
		if !holds(c, v, ok) {
			return false
		}
	}
	return true
}

func fact(field string, ev Event, facts Facts) (string, bool) {
	switch field {
	case "store":
		return ev.Store, ev.Store != ""
	case "sku":
		return ev.SKU, ev.SKU != ""
	case "segment":
		if facts == nil || ev.Customer == "" {
			return "", false
		}
		s := facts.Segment(ev.Customer)
		return s, s != ""
	}
	if attr, ok := strings.CutPrefix(field, "profile."); ok {
		if facts == nil || ev.Customer == "" {
			return "", false
		}
		return facts.Profile(ev.Customer, attr)
	}
	v, ok := ev.Attrs[field]
	return v, ok
}

// holds tests one condition on a fact; a missing fact holds only for ne.
func holds(c Condition, v string, ok bool) bool {
	switch c.Op {
	case OpEq:
		return ok && v == c.Value
	case OpNe:
		return !ok || v != c.Value
	case OpIn:
		if !ok {
			return false
		}
		for _, w := range c.Values {
			if v == w {
				return true
			}
		}
		return false
	case OpGte, OpLte:
		if !ok {
			return false
		}
		x, err1 := strconv.ParseFloat(v, 64)
		y, err2 := strconv.ParseFloat(c.Value, 64)
		if err1 != nil || err2 != nil {
			return false
		}
		if c.Op == OpGte {
			return x >= y
		}
		return x <= y
	}
	return false
}
