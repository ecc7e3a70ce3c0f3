package surveys

import (
	"cmp"
	"errors"
	"fmt"
	"time"
	"unicode/utf8"

	"github.com/omnisync/omnisync/shared/hlc"
)

// ErrInvalidAnswer is wrapped by the errors of Answer.Validate and Aggregate.
var ErrInvalidAnswer = errors.New("surveys: invalid answer")

// Kind is a survey's scale.
type Kind string

// The kinds of survey.
const (
	NPS  Kind = "nps"  // Net Promoter Score, 0–10
	CSAT Kind = "csat" // Customer Satisfaction, 1–5
	CES  Kind = "ces"  // Customer Effort Score, 1–7
)

// Scale is the lowest and highest score of the kind; ok is false for an
// unknown kind.
func (k Kind) Scale() (lo, hi int, ok bool) {
	switch k {
	case NPS:
		return 0, 10, true
	case CSAT:
		return 1, 5, true
	case CES:
		return 1, 7, true
	}
	return 0, 0, false
}

// MaxCommentLength bounds a comment, in characters.
const MaxCommentLength = 4000

// Answer is one respondent's answer to a survey, complete or not.
type Answer struct {
	// ID is the answer's event id; it breaks ties between equal HLCs.
	ID string `json:"id"`
	// Survey is the survey's id; Kind its scale.
	Survey string `json:"survey"`
	Kind   Kind   `json:"kind"`
	// Respondent is who answered: the receipt number for a survey opened
	// from a receipt, else the customer's id. One answer per respondent
	// per survey counts.
	Respondent string `json:"respondent"`
	// Store and Channel are where the answer was given (channel: kiosk,
	// receipt_qr, fitting_room, web...).
	Store   string `json:"store"`
	Channel string `json:"channel"`
	// At is when the answer was given, in the store's time zone: its ISO
	// week is the week the answer counts in.
	At time.Time `json:"at"`
	// HLC orders the answers of one respondent.
	HLC hlc.Timestamp `json:"hlc"`
	// Score is the answer on the kind's scale, when Scored.
	Score  int  `json:"score"`
	Scored bool `json:"scored"`
	// Comment is the respondent's free text, as written: redact it before
	// showing it to anyone but a moderator.
	Comment string `json:"comment,omitempty"`
	// Complete is set when the respondent submitted the survey.
	Complete bool `json:"complete"`
}

// Validate reports what makes a impossible, wrapping ErrInvalidAnswer.
func (a Answer) Validate() error {
	lo, hi, ok := a.Kind.Scale()
	switch {
	case a.Survey == "":
		return fmt.Errorf("%w: no survey", ErrInvalidAnswer)
	case !ok:
		return fmt.Errorf("%w: unknown kind %q", ErrInvalidAnswer, a.Kind)
	case a.Respondent == "":
		return fmt.Errorf("%w: no respondent", ErrInvalidAnswer)
	case a.At.IsZero():
		return fmt.Errorf("%w: no time", ErrInvalidAnswer)
	case a.Scored && (a.Score < lo || a.Score > hi):
		return fmt.Errorf("%w: %s score %d not in %d..%d", ErrInvalidAnswer, a.Kind, a.Score, lo, hi)
	case !utf8.ValidString(a.Comment):
		return fmt.Errorf("%w: comment is not UTF-8", ErrInvalidAnswer)
	case utf8.RuneCountInString(a.Comment) > MaxCommentLength:
		return fmt.Errorf("%w: comment longer than %d characters", ErrInvalidAnswer, MaxCommentLength)
	case a.Complete && !a.Scored:
		return fmt.Errorf("%w: a complete answer without a score", ErrInvalidAnswer)
	}
	return nil
}

// Supersedes reports whether a counts instead of b, two answers of the
// same respondent to the same survey: a complete answer beats a partial
// one, then the later HLC wins, then the greater id.
func Supersedes(a, b Answer) bool { return compare(a, b) > 0 }

func compare(a, b Answer) int {
	if a.Complete != b.Complete {
		if a.Complete {
			return 1
		}
		return -1
	}
	if c := a.HLC.Compare(b.HLC); c != 0 {
		return c
	}
	return cmp.Compare(a.ID, b.ID)
}

type respondentKey struct{ survey, respondent string }

// Dedupe keeps the answer that counts of each respondent to each survey
// (see Supersedes), in the order of their first answers. Invalid answers
// are the caller's to refuse; Dedupe does not look at them.
func Dedupe(answers []Answer) []Answer {
	pos := map[respondentKey]int{}
	var out []Answer
	for _, a := range answers {
		k := respondentKey{a.Survey, a.Respondent}
		i, ok := pos[k]
		if !ok {
			pos[k] = len(out)
			out = append(out, a)
			continue
		}
		if Supersedes(a, out[i]) {
			out[i] = a
		}
	}
	return out
}
