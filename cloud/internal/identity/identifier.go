package identity

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// Type is the kind of an identifier.
type Type string

// The identifier types, named as in the identify event's body
// ({"identifiers": {"loyalty": ..., "email": ..., ...}}).
const (
	// Loyalty is a loyalty card number, scanned or typed at a till.
	Loyalty Type = "loyalty"
	// Email is an e-mail address.
	Email Type = "email"
	// Phone is a telephone number, kept in E.164.
	Phone Type = "phone"
	// Account is the web shop's account id.
	Account Type = "account"
	// App is an app install id.
	App Type = "app"
)

// types lists every type in priority order, strongest first: the order
// identifiers of one observation are considered in (see Policy).
var types = [...]Type{Account, Loyalty, Phone, Email, App}

// numTypes is the number of identifier types.
const numTypes = len(types)

// Types returns every identifier type, strongest first.
func Types() []Type { return append([]Type(nil), types[:]...) }

// index returns t's position in types, or -1.
func (t Type) index() int {
	for i, u := range types {
		if u == t {
			return i
		}
	}
	return -1
}

// Valid reports whether t is a known type.
func (t Type) Valid() bool { return t.index() >= 0 }

// Errors returned by the normalisers, each wrapped with the reason.
var (
	// ErrUnknownType is returned for an identifier type this build does
	// not know.
	ErrUnknownType = errors.New("identity: unknown identifier type")
	// ErrInvalid is returned for a value that is not a well-formed
	// identifier of its type.
	ErrInvalid = errors.New("identity: invalid identifier")
)

// Limits on raw and normalised values.
const (
	// MaxRawLen bounds any raw value before normalisation.
	MaxRawLen = 320
	// MaxLoyaltyLen bounds a loyalty card number.
	MaxLoyaltyLen = 64
	// MaxOpaqueLen bounds an account or app install id.
	MaxOpaqueLen = 128
)

// Identifier is one normalised identifier: two identifiers name the same
// thing iff they are equal. Build them with Normalize or Parse, never by
// hand from raw input.
type Identifier struct {
	Type  Type
	Value string
}

// String renders i as "type:value", the form the hub API takes
// (GET /v1/customers?identifier=email:a@b.example). It is personal data:
// never log it.
func (i Identifier) String() string { return string(i.Type) + ":" + i.Value }

// Compare orders identifiers by type priority (strongest first), then
// value bytewise. It is the order identifiers of one observation are
// considered in, and the order customers list them in.
func (i Identifier) Compare(o Identifier) int {
	if i.Type == o.Type {
		// Most comparisons (sorting a batch's moves) are within a type:
		// skip looking both types up.
		return strings.Compare(i.Value, o.Value)
	}
	if a, b := i.Type.index(), o.Type.index(); a != b {
		if a < b {
			return -1
		}
		return 1
	}
	return strings.Compare(i.Value, o.Value)
}

// Normalize returns the identifier of type t for raw input. region is the
// ISO 3166-1 alpha-2 country a phone number without a country code is read
// in (the country of the store or web shop that captured it); it must come
// from stored configuration, never from a replica's own setting, so every
// replica normalises alike. It is ignored for other types.
//
// The rules per type are in the package documentation. The error wraps
// ErrUnknownType or ErrInvalid.
func Normalize(t Type, raw, region string) (Identifier, error) {
	if len(raw) > MaxRawLen {
		return Identifier{}, fmt.Errorf("%w: %s: longer than %d bytes", ErrInvalid, t, MaxRawLen)
	}
	var (
		v   string
		err error
	)
	switch t {
	case Email:
		v, err = normalizeEmail(raw)
	case Phone:
		v, err = normalizePhone(raw, region)
	case Loyalty:
		v, err = normalizeLoyalty(raw)
	case Account, App:
		v, err = normalizeOpaque(raw)
	default:
		return Identifier{}, fmt.Errorf("%w %q", ErrUnknownType, string(t))
	}
	if err != nil {
		return Identifier{}, fmt.Errorf("%w: %s: %s", ErrInvalid, t, err.Error())
	}
	return Identifier{Type: t, Value: v}, nil
}

// Parse reads the "type:value" form (String's) and normalises the value.
func Parse(s, region string) (Identifier, error) {
	t, v, ok := strings.Cut(s, ":")
	if !ok {
		return Identifier{}, fmt.Errorf("%w: want type:value, e.g. email:a@b.example", ErrInvalid)
	}
	return Normalize(Type(strings.TrimSpace(t)), v, region)
}

// ParseSet normalises an identify body's identifiers object
// ({"loyalty": "LC-1", "email": "a@b.example"}), in the order of Compare.
// An unknown type or an invalid value is an error naming the key; the
// caller decides whether that rejects the event or only the identifier.
// Blocked values are not checked here: Policy.Blocked does that.
func ParseSet(in map[string]string, region string) ([]Identifier, error) {
	out := make([]Identifier, 0, len(in))
	for _, t := range types {
		raw, ok := in[string(t)]
		if !ok {
			continue
		}
		id, err := Normalize(t, raw, region)
		if err != nil {
			return nil, &KeyError{Key: string(t), Err: err}
		}
		out = append(out, id)
	}
	if len(out) != len(in) {
		for k := range in {
			if !Type(k).Valid() {
				return nil, &KeyError{Key: k, Err: fmt.Errorf("%w %q", ErrUnknownType, k)}
			}
		}
	}
	return out, nil
}

// KeyError names the key of an identifiers object that failed.
type KeyError struct {
	Key string
	Err error
}

func (e *KeyError) Error() string { return e.Key + ": " + e.Err.Error() }
func (e *KeyError) Unwrap() error { return e.Err }

// normalizeLoyalty trims the card number, drops the spaces it is printed
// with and upper-cases it, so a scanned "LC-1" and a typed "lc-1 " match.
func normalizeLoyalty(raw string) (string, error) {
	var b strings.Builder
	for _, c := range strings.TrimSpace(raw) {
		switch {
		case c == ' ':
		case c >= 'a' && c <= 'z':
			b.WriteRune(c - 'a' + 'A')
		case c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '-', c == '_', c == '.', c == '/':
			b.WriteRune(c)
		default:
			return "", fmt.Errorf("character %q not allowed (letters, digits, '-', '_', '.', '/')", c)
		}
	}
	v := b.String()
	if v == "" {
		return "", errors.New("empty")
	}
	if len(v) > MaxLoyaltyLen {
		return "", fmt.Errorf("longer than %d characters", MaxLoyaltyLen)
	}
	return v, nil
}

// normalizeOpaque trims an account or app install id and checks it is
// printable ASCII without spaces. Case is kept: these ids are minted by
// systems that may tell "Ab" from "ab".
func normalizeOpaque(raw string) (string, error) {
	v := strings.TrimSpace(raw)
	if v == "" {
		return "", errors.New("empty")
	}
	if len(v) > MaxOpaqueLen {
		return "", fmt.Errorf("longer than %d characters", MaxOpaqueLen)
	}
	for i := 0; i < len(v); i++ {
		if c := v[i]; c <= ' ' || c > '~' {
			if c >= utf8.RuneSelf {
				return "", errors.New("non-ASCII character")
			}
			return "", fmt.Errorf("character %q not allowed", c)
		}
	}
	return v, nil
}
