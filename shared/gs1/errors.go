package gs1

import (
	"errors"
	"strconv"
	"strings"
)

// Sentinel errors. Every error returned by this package wraps exactly one of
// them, so callers can branch with errors.Is without parsing messages.
var (
	// ErrSyntax: the input is not shaped like the expected notation
	// (missing brackets, empty value, bad separator, too many AIs...).
	ErrSyntax = errors.New("gs1: syntax error")
	// ErrUnknownAI: an Application Identifier that is not in the table.
	ErrUnknownAI = errors.New("gs1: unknown application identifier")
	// ErrLength: a value is too short or too long for its AI.
	ErrLength = errors.New("gs1: bad length")
	// ErrCharset: a value contains a character its AI does not allow.
	ErrCharset = errors.New("gs1: bad character")
	// ErrCheckDigit: a mod-10 check digit or check character pair is wrong.
	ErrCheckDigit = errors.New("gs1: bad check digit")
	// ErrDate: a date or time component is not a real date or time.
	ErrDate = errors.New("gs1: bad date or time")
	// ErrValue: a value breaks another content rule of its AI (code list,
	// coupon structure, piece-of-total, ...).
	ErrValue = errors.New("gs1: invalid value")
	// ErrAssociation: a cross-AI rule is broken (missing requisite AI,
	// mutually exclusive AIs, repeated AI with different values).
	ErrAssociation = errors.New("gs1: invalid AI association")
	// ErrDigitalLink: a GS1 Digital Link URI is malformed or its path does
	// not form a valid key/qualifier sequence.
	ErrDigitalLink = errors.New("gs1: invalid digital link")
	// ErrSymbology: a scanner payload has a missing, unknown or
	// inconsistent AIM symbology identifier.
	ErrSymbology = errors.New("gs1: invalid scan data")
)

// Error describes why some GS1 data was rejected. It wraps one of the
// sentinel errors (see Unwrap).
type Error struct {
	// Kind is the sentinel error this error wraps.
	Kind error
	// AI is the Application Identifier concerned, if any.
	AI string
	// Pos is the byte offset in the parsed input where the problem was
	// found, or -1 when unknown.
	Pos int
	// Code is the GS1 Barcode Syntax linter code for content errors, e.g.
	// "GS1_LINTER_INCORRECT_CHECK_DIGIT"; empty for structural errors.
	Code string
	// Value is the AI value concerned, and ErrPos/ErrLen locate the
	// offending characters inside it (both 0 when not applicable).
	Value          string
	ErrPos, ErrLen int
	// Msg is a human readable reason.
	Msg string

	compEnd int // end of the value component containing ErrPos
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("gs1: ")
	if e.AI != "" {
		b.WriteString("AI (")
		b.WriteString(e.AI)
		b.WriteString("): ")
	}
	b.WriteString(e.Msg)
	if e.Pos >= 0 {
		b.WriteString(" at offset ")
		b.WriteString(strconv.Itoa(e.Pos))
	}
	return b.String()
}

// Unwrap returns the sentinel error, enabling errors.Is.
func (e *Error) Unwrap() error { return e.Kind }

// Markup returns the value with the offending characters surrounded by
// "|", e.g. "1|X|34", to show a user exactly what is wrong. It returns the
// bare value when no position is known.
func (e *Error) Markup() string {
	if e.ErrPos < 0 || e.ErrPos+e.ErrLen > len(e.Value) || (e.ErrPos == 0 && e.ErrLen == 0 && e.Code == "") {
		return e.Value
	}
	return e.Value[:e.ErrPos] + "|" + e.Value[e.ErrPos:e.ErrPos+e.ErrLen] + "|" + e.Value[e.ErrPos+e.ErrLen:]
}

func newErr(kind error, ai string, pos int, msg string) *Error {
	return &Error{Kind: kind, AI: ai, Pos: pos, Msg: msg}
}
