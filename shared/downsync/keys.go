package downsync

import (
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Bucket is the KV bucket the hub publishes into; Stream is the stream
// that backs it.
const (
	Bucket = "omni_down"
	Stream = "KV_" + Bucket
	// SubjectPrefix is the subject of key k is SubjectPrefix + k.
	SubjectPrefix = "$KV." + Bucket + "."
)

// TickKey holds the hub's liveness tick, rewritten every TickInterval; an
// agent that has read everything up to a tick knows its cache was current
// at that moment, which is what its as_of reports.
const (
	TickKey      = "tick"
	TickInterval = 2 * time.Second
)

// Key prefixes.
const (
	catalogPrefix = "cat."
	reviewPrefix  = "rev."
	stockPrefix   = "stk."
	recsPrefix    = "rec."
)

// ErrKey is returned for a key or subject that is not one of ours.
var ErrKey = errors.New("downsync: not a down-sync key")

// ProductKey is the key of a product's catalog document.
func ProductKey(productID string) string { return catalogPrefix + Token(productID) }

// ReviewKey is the key of a product's review summary.
func ReviewKey(productID string) string { return reviewPrefix + Token(productID) }

// RecsKey is the key of a product's complements (RecsDoc).
func RecsKey(productID string) string { return recsPrefix + Token(productID) }

// StockKey is the key of one stock position.
func StockKey(location, sku string) string {
	return stockPrefix + Token(location) + "." + Token(sku)
}

// Subject is the stream subject that stores key.
func Subject(key string) string { return SubjectPrefix + key }

// Filters are the subjects an agent of store here reads: the catalog, the
// review summaries, the tick, the public keys of cart codes, the survey
// definitions, the closed carts, and stock of each location given (its
// own, nearby stores, the online warehouse). Repeated locations are
// dropped.
func Filters(locations ...string) []string {
	out := []string{Subject(catalogPrefix + ">"), Subject(reviewPrefix + ">"), Subject(recsPrefix + ">"), Subject(TickKey), Subject(cartKeyPrefix + ">"),
		Subject(surveyPrefix + ">"), Subject(closedCartPrefix + ">")}
	seen := map[string]bool{}
	for _, l := range locations {
		if l == "" || seen[l] {
			continue
		}
		seen[l] = true
		out = append(out, Subject(stockPrefix+Token(l)+".>"))
	}
	return out
}

// KeyKind says what a key holds.
type KeyKind int

const (
	KindProduct KeyKind = iota + 1
	KindReview
	KindStock
	KindTick
	// KindCartKey is a public key that signs cart codes (cartkey.go).
	KindCartKey
	// KindRecs is a product's top complements (recs.go).
	KindRecs
	// KindSurvey is one of HQ's survey definitions (survey.go).
	KindSurvey
	// KindClosedCart is a cart the hub knows is checked out
	// (closedcart.go).
	KindClosedCart
)

// ParsedKey is a key taken apart.
type ParsedKey struct {
	Kind KeyKind
	// ProductID is set for KindProduct, KindReview and KindRecs.
	ProductID string
	// Location and SKU are set for KindStock.
	Location, SKU string
	// KeyID is set for KindCartKey.
	KeyID string
	// SurveyID is set for KindSurvey.
	SurveyID string
	// CartDigest is set for KindClosedCart.
	CartDigest string
}

// ParseKey takes a key (or its full subject) apart.
func ParseKey(key string) (ParsedKey, error) {
	key = strings.TrimPrefix(key, SubjectPrefix)
	if k, ok, err := parseCartKey(key); ok {
		return k, err
	}
	if k, ok, err := parseSurveyKey(key); ok {
		return k, err
	}
	if k, ok, err := parseClosedCartKey(key); ok {
		return k, err
	}
	switch {
	case key == TickKey:
		return ParsedKey{Kind: KindTick}, nil
	case strings.HasPrefix(key, catalogPrefix), strings.HasPrefix(key, reviewPrefix), strings.HasPrefix(key, recsPrefix):
		kind, rest := KindProduct, strings.TrimPrefix(key, catalogPrefix)
		if strings.HasPrefix(key, reviewPrefix) {
			kind, rest = KindReview, strings.TrimPrefix(key, reviewPrefix)
		}
		if strings.HasPrefix(key, recsPrefix) {
			kind, rest = KindRecs, strings.TrimPrefix(key, recsPrefix)
		}
		id, err := ParseToken(rest)
		if err != nil {
			return ParsedKey{}, fmt.Errorf("%w: %q: %v", ErrKey, key, err)
		}
		return ParsedKey{Kind: kind, ProductID: id}, nil
	case strings.HasPrefix(key, stockPrefix):
		loc, sku, ok := strings.Cut(strings.TrimPrefix(key, stockPrefix), ".")
		if !ok {
			return ParsedKey{}, fmt.Errorf("%w: %q", ErrKey, key)
		}
		l, err1 := ParseToken(loc)
		s, err2 := ParseToken(sku)
		if err := errors.Join(err1, err2); err != nil {
			return ParsedKey{}, fmt.Errorf("%w: %q: %v", ErrKey, key, err)
		}
		return ParsedKey{Kind: KindStock, Location: l, SKU: s}, nil
	}
	return ParsedKey{}, fmt.Errorf("%w: %q", ErrKey, key)
}

// Token spells s as one KV key token. Names made only of letters, digits,
// '-' and '_' (not starting with '_' or '~') are used as they are, so keys
// stay readable; anything else becomes "~" and its unpadded base64url, which
// cannot collide with a plain name.
func Token(s string) string {
	if plain(s) {
		return s
	}
	return "~" + base64.RawURLEncoding.EncodeToString([]byte(s))
}

// ParseToken reverses Token.
func ParseToken(t string) (string, error) {
	if enc, ok := strings.CutPrefix(t, "~"); ok {
		b, err := base64.RawURLEncoding.DecodeString(enc)
		if err != nil {
			return "", fmt.Errorf("bad token %q: %w", t, err)
		}
		return string(b), nil
	}
	if !plain(t) {
		return "", fmt.Errorf("bad token %q", t)
	}
	return t, nil
}

func plain(s string) bool {
	if s == "" || s[0] == '_' {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}
