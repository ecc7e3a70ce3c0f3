// Package profiles holds the hub's rules for customers' attributes (first
// name, birth date, locale, ...): which value of a field a customer has
// when several channels set it. It is pure (no SQL, no clock, no I/O).
//
// The rule: each field is last-writer-wins by stamp (events.Stamp: HLC,
// then event id). An update sets or clears (null) some fields; a field's
// value is the one from the newest update that named it. On an exact tie
// (the same event seen twice, or two events with one id) a value beats a
// clear and the bytewise greater value beats the smaller, so the outcome
// never depends on arrival order.
//
// Attributes are attributed to identifiers, never copied into a merged
// customer (see the identity package): the store keeps a Profile per
// subject identifier, and a customer's profile is Join of its
// identifiers' profiles. Join is commutative, associative and idempotent,
// so any order, duplication or grouping of updates gives the same
// customer profile, a merge is a join, and an unmerge recomputes each
// side from its own identifiers exactly.
//
// Fields (Fields lists them; values are trimmed, valid UTF-8, without
// control characters):
//
//	field            value
//	first_name       text, at most 100 characters
//	last_name        text, at most 100 characters
//	birth_date       a calendar date YYYY-MM-DD, year 1900 or later
//	locale           a language tag: "en", "en-GB", "ko-KR" (language
//	                 lower-cased, region upper-cased)
//	country          ISO 3166-1 alpha-2, upper-cased
//	postcode         letters, digits, spaces and '-', at most 16,
//	                 upper-cased
//	tier             the loyalty tier, text, at most 32
//	preferred_store  a store id (letters, digits, '-', '_')
//	x_<name>         custom fields: name of a-z, 0-9 and '_' (at most
//	                 48), text value of at most 256 characters
//
// Every value is personal data: the store keeps them encrypted, and no
// log line carries one.
package profiles

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/omnisync/omnisync/shared/events"
)

// MaxFields bounds the fields one update names.
const MaxFields = 64

// Errors callers branch on.
var (
	// ErrUnknownField is returned for a field that is neither known nor
	// custom (x_...).
	ErrUnknownField = errors.New("profiles: unknown field")
	// ErrInvalid is returned for a value its field refuses, and for an
	// update naming too many fields.
	ErrInvalid = errors.New("profiles: invalid value")
)

// FieldError names the field that failed.
type FieldError struct {
	Field string
	Err   error
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Err.Error() }
func (e *FieldError) Unwrap() error { return e.Err }

// field is one row of the field table: its check returns the value
// normalised.
type field struct {
	name  string
	check func(string) (string, error)
}

var fields = []field{
	{"first_name", text(100)},
	{"last_name", text(100)},
	{"birth_date", birthDate},
	{"locale", locale},
	{"country", country},
	{"postcode", postcode},
	{"tier", text(32)},
	{"preferred_store", store},
}

// MaxCustomName bounds a custom field's name after "x_"; MaxCustomLen its
// value.
const (
	MaxCustomName = 48
	MaxCustomLen  = 256
)

// Fields returns the known fields' names, in table order.
func Fields() []string {
	out := make([]string, len(fields))
	for i, f := range fields {
		out[i] = f.name
	}
	return out
}

// Check returns value normalised for field name.
func Check(name, value string) (string, error) {
	for _, f := range fields {
		if f.name == name {
			v, err := f.check(strings.TrimSpace(value))
			if err != nil {
				return "", &FieldError{Field: name, Err: fmt.Errorf("%w: %s", ErrInvalid, err.Error())}
			}
			return v, nil
		}
	}
	if custom, ok := strings.CutPrefix(name, "x_"); ok && validCustomName(custom) {
		v, err := text(MaxCustomLen)(strings.TrimSpace(value))
		if err != nil {
			return "", &FieldError{Field: name, Err: fmt.Errorf("%w: %s", ErrInvalid, err.Error())}
		}
		return v, nil
	}
	return "", &FieldError{Field: name, Err: ErrUnknownField}
}

func validCustomName(s string) bool {
	if s == "" || len(s) > MaxCustomName {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

func text(maxChars int) func(string) (string, error) {
	return func(s string) (string, error) {
		if !utf8.ValidString(s) {
			return "", errors.New("not UTF-8")
		}
		if n := utf8.RuneCountInString(s); n > maxChars {
			return "", fmt.Errorf("%d characters, at most %d", n, maxChars)
		}
		if strings.IndexFunc(s, unicode.IsControl) >= 0 {
			return "", errors.New("control character")
		}
		return s, nil
	}
}

func birthDate(s string) (string, error) {
	d, err := time.Parse(time.DateOnly, s)
	if err != nil {
		return "", errors.New("want a date YYYY-MM-DD")
	}
	if d.Year() < 1900 {
		return "", errors.New("before 1900")
	}
	return d.Format(time.DateOnly), nil
}

func locale(s string) (string, error) {
	lang, region, hasRegion := strings.Cut(strings.ReplaceAll(s, "_", "-"), "-")
	if len(lang) < 2 || len(lang) > 3 || !isLetters(lang) {
		return "", errors.New("want a language tag such as en or en-GB")
	}
	out := strings.ToLower(lang)
	if hasRegion {
		if !(len(region) == 2 && isLetters(region) || len(region) == 3 && strings.Trim(region, "0123456789") == "") {
			return "", errors.New("want a region of two letters or three digits")
		}
		out += "-" + strings.ToUpper(region)
	}
	return out, nil
}

func country(s string) (string, error) {
	if len(s) != 2 || !isLetters(s) {
		return "", errors.New("want an ISO 3166-1 alpha-2 code")
	}
	return strings.ToUpper(s), nil
}

func postcode(s string) (string, error) {
	if s == "" || len(s) > 16 {
		return "", errors.New("1 to 16 characters")
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == ' ' || c == '-') {
			return "", fmt.Errorf("character %q not allowed", c)
		}
	}
	return strings.ToUpper(s), nil
}

func store(s string) (string, error) {
	if err := events.ValidToken(s); err != nil {
		return "", err
	}
	return s, nil
}

func isLetters(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i] | 0x20; c < 'a' || c > 'z' {
			return false
		}
	}
	return true
}

// Update is one update event's effect: fields set, or cleared (nil).
type Update struct {
	Stamp  events.Stamp
	Fields map[string]*string
}

// ParseUpdate checks and normalises an update event's fields ({"first_name":
// "Ann", "postcode": null}); the error is a *FieldError naming the first
// field that failed, in name order.
func ParseUpdate(stamp events.Stamp, in map[string]*string) (Update, error) {
	if len(in) > MaxFields {
		return Update{}, fmt.Errorf("%w: %d fields, at most %d", ErrInvalid, len(in), MaxFields)
	}
	u := Update{Stamp: stamp, Fields: make(map[string]*string, len(in))}
	for _, name := range slices.Sorted(maps.Keys(in)) {
		v := in[name]
		if v == nil {
			if _, err := Check(name, ""); errors.Is(err, ErrUnknownField) {
				return Update{}, err
			}
			u.Fields[name] = nil
			continue
		}
		norm, err := Check(name, *v)
		if err != nil {
			return Update{}, err
		}
		u.Fields[name] = &norm
	}
	return u, nil
}

// Value is one field's state: its value, or a clear, and the stamp of the
// update that wrote it.
type Value struct {
	Value   string
	Cleared bool
	Stamp   events.Stamp
}

// Beats reports whether v wins over o for one field: the newer stamp; on a
// tie a value over a clear, then the greater value.
func (v Value) Beats(o Value) bool {
	if c := v.Stamp.Compare(o.Stamp); c != 0 {
		return c > 0
	}
	if v.Cleared != o.Cleared {
		return !v.Cleared
	}
	return v.Value > o.Value
}

// Profile is the state of every field one subject (or one customer) has
// been given, clears included (a clear must keep beating older values).
type Profile map[string]Value

// Apply folds u into p and returns the fields whose value changed, sorted.
func (p Profile) Apply(u Update) []string {
	var changed []string
	for name, v := range u.Fields {
		nv := Value{Stamp: u.Stamp, Cleared: v == nil}
		if v != nil {
			nv.Value = *v
		}
		if p.set(name, nv) {
			changed = append(changed, name)
		}
	}
	slices.Sort(changed)
	return changed
}

// set keeps v for name if it wins, and reports whether it did.
func (p Profile) set(name string, v Value) bool {
	if cur, ok := p[name]; ok && !v.Beats(cur) {
		return false
	}
	p[name] = v
	return true
}

// Join returns the profile of a customer whose subjects have profiles ps:
// per field, the winning value.
func Join(ps ...Profile) Profile {
	out := Profile{}
	for _, p := range ps {
		for name, v := range p {
			out.set(name, v)
		}
	}
	return out
}

// Get returns field name's value, false when never set or cleared.
func (p Profile) Get(name string) (string, bool) {
	v, ok := p[name]
	if !ok || v.Cleared {
		return "", false
	}
	return v.Value, true
}

// Visible returns the fields that hold a value.
func (p Profile) Visible() map[string]string {
	out := map[string]string{}
	for name, v := range p {
		if !v.Cleared {
			out[name] = v.Value
		}
	}
	return out
}
