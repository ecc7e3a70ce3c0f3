package events

import (
	"encoding/json"
	"fmt"
	"strings"
	"unicode/utf8"
)

// KindSurvey is a shopper's answer (whole or partial) to one of HQ's
// customer-experience surveys (NPS, CSAT, CES), given at a kiosk after
// checkout, in the fitting room, or the till's invitation printed as a QR
// on the receipt. It carries a Survey body.
const KindSurvey Kind = "survey"

// Limits of a survey body.
const (
	// MaxSurveyComment is the longest comment, in characters.
	MaxSurveyComment = 4000
	// MinSurveyToken and MaxSurveyToken bound a receipt's survey token:
	// at least 128 random bits in base64url.
	MinSurveyToken = 22
	MaxSurveyToken = 128
)

// Survey is the body of survey. The respondent is the receipt when one is
// named (one answer per receipt and survey), else the customer, else the
// device session. The hub counts one answer per respondent, merged from
// their answers: the score and the comment each from the best answer
// carrying one, a complete answer first, then the later by HLC.
//
// A body with a Token and no score is the till's invitation: the QR on
// the receipt opens the hub's phone page at /s/{token}, which answers for
// that receipt. The hub keeps only the token's hash.
type Survey struct {
	// Survey is the id of the survey HQ defined.
	Survey string `json:"survey"`
	// Receipt is the receipt (order) answered about; CustomerID the
	// customer's master id when they identified; Session the device
	// session (a kiosk visit) when neither is known.
	Receipt    string `json:"receipt,omitempty"`
	CustomerID string `json:"customer_id,omitempty"`
	Session    string `json:"session,omitempty"`
	// Channel is where it was answered: kiosk, fitting_room, receipt_qr,
	// web (default: the device's kind as the store reports it, or "store").
	Channel string `json:"channel,omitempty"`
	// Score is the answer on the survey's scale; absent in a partial
	// answer given before the score.
	Score *int `json:"score,omitempty"`
	// Comment is free text; it may hold personal data (the hub keeps it
	// for moderators and shows everyone else a redacted copy).
	Comment string `json:"comment,omitempty"`
	// Complete is set when the respondent submitted.
	Complete bool `json:"complete,omitempty"`
	// Token is the receipt's survey token, printed as a QR.
	Token string `json:"token,omitempty"`
}

// ValidSurveyToken checks a receipt's survey token: MinSurveyToken to
// MaxSurveyToken letters, digits, '-' or '_'.
func ValidSurveyToken(s string) error {
	if len(s) < MinSurveyToken || len(s) > MaxSurveyToken {
		return fmt.Errorf("must be %d to %d characters (at least 128 random bits)", MinSurveyToken, MaxSurveyToken)
	}
	return ValidToken(s)
}

func validateSurvey(data json.RawMessage, _ string) (json.RawMessage, error) {
	var m Survey
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, jsonFieldErr("", err)
	}
	if err := ValidToken(m.Survey); err != nil || len(m.Survey) > 64 {
		return nil, fieldErr("survey", "must be the survey id (1 to 64 letters, digits, '-' or '_')")
	}
	if m.Receipt == "" && m.CustomerID == "" && m.Session == "" {
		return nil, fieldErr("receipt", "one of receipt, customer_id or session is required")
	}
	for _, f := range []struct{ name, v string }{{"receipt", m.Receipt}, {"customer_id", m.CustomerID}, {"session", m.Session}, {"channel", m.Channel}} {
		if f.v == "" {
			continue
		}
		if err := ValidToken(f.v); err != nil || len(f.v) > MaxSessionLen {
			return nil, fieldErr(f.name, "must be 1 to 64 letters, digits, '-' or '_'")
		}
	}
	if m.Score != nil && (*m.Score < 0 || *m.Score > 10) {
		return nil, fieldErr("score", fmt.Sprintf("must be 0 to 10 (the survey's scale: NPS 0–10, CSAT 1–5, CES 1–7), got %d", *m.Score))
	}
	if m.Complete && m.Score == nil {
		return nil, fieldErr("score", "a complete answer needs a score")
	}
	if !utf8.ValidString(m.Comment) {
		return nil, fieldErr("comment", "must be valid UTF-8")
	}
	if n := utf8.RuneCountInString(m.Comment); n > MaxSurveyComment {
		return nil, fieldErr("comment", fmt.Sprintf("must be at most %d characters, got %d", MaxSurveyComment, n))
	}
	if strings.ContainsFunc(m.Comment, func(r rune) bool { return r < ' ' && r != '\n' && r != '\t' || r == 0x7f }) {
		return nil, fieldErr("comment", "must not contain control characters")
	}
	if m.Token != "" {
		if m.Receipt == "" {
			return nil, fieldErr("token", "a survey token belongs to a receipt: name the receipt")
		}
		if err := ValidSurveyToken(m.Token); err != nil {
			return nil, fieldErr("token", err.Error())
		}
	}
	return data, nil
}
