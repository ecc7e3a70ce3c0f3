package events

import (
	"encoding/json"
	"fmt"
	"strings"
	"unicode/utf8"
)

// Shopper-facing kinds.
const (
	// KindReview is a shopper's rating and review of a product, submitted at
	// a kiosk or mirror. It carries a Review body.
	KindReview Kind = "review"
	// KindAssist is a shopper's request for help from staff, such as
	// "bring me this in another size" from a fitting room. It carries an
	// Assist body.
	KindAssist Kind = "assist"
)

// Limits on review text, counted in characters. They are the basic
// moderation every channel applies before a review leaves the store; the
// hub adds its blocked-words list.
const (
	MaxReviewTitle    = 120
	MaxReviewText     = 2000
	MaxReviewNickname = 40
	MaxSessionLen     = 64
)

// Review is the body of review. A device session (a kiosk session: one
// shopper's visit) reviews a product at most once; the hub keeps the
// earliest.
type Review struct {
	ProductID string `json:"product_id"`
	SKU       string `json:"sku,omitempty"`
	Rating    int    `json:"rating"`
	Title     string `json:"title,omitempty"`
	Text      string `json:"text,omitempty"`
	Nickname  string `json:"nickname,omitempty"`
	Session   string `json:"session"`
}

// Assist is the body of assist.
type Assist struct {
	// Zone is where the shopper is, e.g. a fitting room.
	Zone string `json:"zone"`
	// SKU is the variant asked for (the size wanted); From the one tried.
	// A call for help (Reason help) may name no SKU: help in the room.
	SKU  string `json:"sku"`
	From string `json:"from,omitempty"`
	Note string `json:"note,omitempty"`
	// Reason is what she asked for: size, colour or help.
	Reason string `json:"reason,omitempty"`
	// Request names the request on the store's staff queue; an escalation
	// (Escalated, after WaitedMS unanswered) repeats it.
	Request   string `json:"request,omitempty"`
	Escalated bool   `json:"escalated,omitempty"`
	WaitedMS  int64  `json:"waited_ms,omitempty"`
}

// Assist reasons.
const (
	AssistSize   = "size"
	AssistColour = "colour"
	AssistHelp   = "help"
)

// ValidSKU checks a SKU: 1 to MaxSKULen printable ASCII characters without
// spaces.
func ValidSKU(s string) error { return validSKU(s) }

func validateReview(data json.RawMessage, _ string) (json.RawMessage, error) {
	var m Review
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, jsonFieldErr("", err)
	}
	if err := validSKU(m.ProductID); err != nil {
		return nil, fieldErr("product_id", err.Error())
	}
	if m.SKU != "" {
		if err := validSKU(m.SKU); err != nil {
			return nil, fieldErr("sku", err.Error())
		}
	}
	if m.Rating < 1 || m.Rating > 5 {
		return nil, fieldErr("rating", fmt.Sprintf("must be 1 to 5 stars, got %d", m.Rating))
	}
	for _, f := range []struct {
		name, v string
		max     int
	}{{"title", m.Title, MaxReviewTitle}, {"text", m.Text, MaxReviewText}, {"nickname", m.Nickname, MaxReviewNickname}} {
		if !utf8.ValidString(f.v) {
			return nil, fieldErr(f.name, "must be valid UTF-8")
		}
		if n := utf8.RuneCountInString(f.v); n > f.max {
			return nil, fieldErr(f.name, fmt.Sprintf("must be at most %d characters, got %d", f.max, n))
		}
		if strings.ContainsFunc(f.v, func(r rune) bool { return r < ' ' && r != '\n' && r != '\t' || r == 0x7f }) {
			return nil, fieldErr(f.name, "must not contain control characters")
		}
	}
	if err := ValidToken(m.Session); err != nil || len(m.Session) > MaxSessionLen {
		return nil, fieldErr("session", "must be the kiosk session id (1 to 64 letters, digits, '-' or '_')")
	}
	return data, nil
}

func validateAssist(data json.RawMessage, _ string) (json.RawMessage, error) {
	var m Assist
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, jsonFieldErr("", err)
	}
	if err := validateText(m.Zone, 64); err != nil {
		return nil, fieldErr("zone", err.Error())
	}
	// A call for help names the item she is trying, if any: "please come
	// to room 2" names none.
	if m.SKU != "" || m.Reason != AssistHelp {
		if err := validSKU(m.SKU); err != nil {
			return nil, fieldErr("sku", err.Error())
		}
	}
	if m.From != "" {
		if err := validSKU(m.From); err != nil {
			return nil, fieldErr("from", err.Error())
		}
	}
	if utf8.RuneCountInString(m.Note) > 500 {
		return nil, fieldErr("note", "must be at most 500 characters")
	}
	switch m.Reason {
	case "", AssistSize, AssistColour, AssistHelp:
	default:
		return nil, fieldErr("reason", "must be size, colour or help")
	}
	if len(m.Request) > MaxSessionLen {
		return nil, fieldErr("request", fmt.Sprintf("must be at most %d characters", MaxSessionLen))
	}
	if m.WaitedMS < 0 {
		return nil, fieldErr("waited_ms", "must not be negative")
	}
	return data, nil
}
