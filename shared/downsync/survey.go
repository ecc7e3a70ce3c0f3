package downsync

import (
	"encoding/json"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/omnisync/omnisync/shared/events"
)

// surveyPrefix: HQ's survey definitions, one key per survey, so a kiosk
// offers the current survey after a checkout, and a fitting-room mirror
// at the end of a visit, with its uplink down. A definition names no
// one: it goes into Bucket, which every store reads.
const surveyPrefix = "svy."

// Where stores offer a survey (SurveyDoc.Offer).
const (
	// OfferPostPurchase: the kiosk, once the shopper's cart was checked
	// out at the store's till.
	OfferPostPurchase = "post_purchase"
	// OfferFittingRoom: the fitting-room mirror, when the shopper ends
	// her visit.
	OfferFittingRoom = "fitting_room"
)

// SurveyKey is the key of survey id's definition.
func SurveyKey(id string) string { return surveyPrefix + Token(id) }

// SurveyDoc is the value of SurveyKey: what a store needs to ask the
// survey. Version (the definition's last change, ms) only grows.
type SurveyDoc struct {
	ID string `json:"id"`
	// Kind is the scale: nps (0–10), csat (1–5) or ces (1–7).
	Kind          string `json:"kind"`
	Question      string `json:"question"`
	CommentPrompt string `json:"comment_prompt,omitempty"`
	// Offer is where stores offer it (OfferPostPurchase,
	// OfferFittingRoom); empty: not at stores (a receipt's QR still
	// opens it).
	Offer   string `json:"offer,omitempty"`
	Active  bool   `json:"active"`
	Version int64  `json:"version"`
}

// Scale is the lowest and highest score of the survey's kind; ok is false
// for a kind this build does not know.
func (d SurveyDoc) Scale() (lo, hi int, ok bool) {
	switch d.Kind {
	case "nps":
		return 0, 10, true
	case "csat":
		return 1, 5, true
	case "ces":
		return 1, 7, true
	}
	return 0, 0, false
}

// DecodeSurvey reads a SurveyDoc and checks it: an id a survey event can
// name, a known scale, a question.
func DecodeSurvey(b []byte) (SurveyDoc, error) {
	var d SurveyDoc
	if err := json.Unmarshal(b, &d); err != nil {
		return d, fmt.Errorf("downsync: survey: %w", err)
	}
	if events.ValidToken(d.ID) != nil || len(d.ID) > 64 {
		return d, fmt.Errorf("downsync: survey %q: not a survey id", d.ID)
	}
	if _, _, ok := d.Scale(); !ok {
		return d, fmt.Errorf("downsync: survey %s: unknown kind %q", d.ID, d.Kind)
	}
	if strings.TrimSpace(d.Question) == "" || !utf8.ValidString(d.Question+d.CommentPrompt) {
		return d, fmt.Errorf("downsync: survey %s: no question", d.ID)
	}
	return d, nil
}

func parseSurveyKey(key string) (ParsedKey, bool, error) {
	rest, ok := strings.CutPrefix(key, surveyPrefix)
	if !ok {
		return ParsedKey{}, false, nil
	}
	id, err := ParseToken(rest)
	if err != nil {
		return ParsedKey{}, true, fmt.Errorf("%w: %q: %v", ErrKey, key, err)
	}
	return ParsedKey{Kind: KindSurvey, SurveyID: id}, true, nil
}
