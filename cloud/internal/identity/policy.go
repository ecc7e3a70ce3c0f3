package identity

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/nyaruka/phonenumbers"
)

// DefaultMax is how many identifiers of each type one customer may hold
// through automatic links (see Policy.Max).
var DefaultMax = map[Type]int{
	Account: 1,
	Loyalty: 1,
	Phone:   3,
	Email:   5,
	App:     10,
}

// MaxBlocked bounds the configured blocklist of one type.
const MaxBlocked = 10000

// ErrPolicy is wrapped by every policy validation failure.
var ErrPolicy = errors.New("identity: invalid policy")

// Policy is the identity graph's configuration: the rule table and the
// blocklist. It is part of the hub's shared, stored configuration, never a
// per-replica setting: two replicas must link alike.
type Policy struct {
	// Max is how many identifiers of each type one customer may hold
	// through automatic links; a link that would exceed it is refused (see
	// the package documentation for which side wins). Missing types take
	// DefaultMax. An operator's manual link is not limited.
	Max map[Type]int `json:"max,omitempty"`
	// Blocklist lists values, per type, that never link anything: a store's
	// house loyalty card swiped for walk-in shoppers, a shared kiosk's app
	// install id, the shop's own e-mail address typed for shoppers who
	// have none. Raw values, normalised by Normalize (phone numbers must
	// then carry their country code). They come on top of the built-in
	// placeholders (the package documentation lists them).
	Blocklist map[Type][]string `json:"blocklist,omitempty"`

	// OrderedSince is the first stamp (a packed HLC) of the observations
	// whose customers are founded under time-ordered master ids (Policy's
	// MasterID); 0 for none. The hub sets it from its own history (the
	// customers founded before keep the ids they were given), not HQ.
	OrderedSince int64 `json:"-"`

	// blocked is Blocklist normalised, set by Normalize.
	blocked map[Identifier]bool
	max     [numTypes]int
	ready   bool
}

// DefaultPolicy is the policy of a hub whose HQ has stored none.
func DefaultPolicy() Policy {
	p, err := Policy{}.Normalize()
	if err != nil {
		panic(err) // the defaults are valid
	}
	return p
}

// Normalize checks p, fills in the defaults and normalises the blocked
// values, so equal policies are stored as equal bytes. A Graph needs a
// normalised policy.
func (p Policy) Normalize() (Policy, error) {
	out := Policy{Max: maps.Clone(DefaultMax), Blocklist: map[Type][]string{}, blocked: map[Identifier]bool{}, OrderedSince: p.OrderedSince}
	for t, n := range p.Max {
		if !t.Valid() {
			return Policy{}, fmt.Errorf("%w: max: %w %q", ErrPolicy, ErrUnknownType, string(t))
		}
		if n < 1 {
			return Policy{}, fmt.Errorf("%w: max %s is %d, must be at least 1", ErrPolicy, t, n)
		}
		out.Max[t] = n
	}
	for t, vs := range p.Blocklist {
		if !t.Valid() {
			return Policy{}, fmt.Errorf("%w: blocklist: %w %q", ErrPolicy, ErrUnknownType, string(t))
		}
		if len(vs) > MaxBlocked {
			return Policy{}, fmt.Errorf("%w: %d blocked %s values, at most %d", ErrPolicy, len(vs), t, MaxBlocked)
		}
		norm := make([]string, 0, len(vs))
		for i, v := range vs {
			id, err := Normalize(t, v, "")
			if err != nil {
				return Policy{}, fmt.Errorf("%w: blocked %s #%d: %w", ErrPolicy, t, i, err)
			}
			norm = append(norm, id.Value)
			out.blocked[id] = true
		}
		slices.Sort(norm)
		if norm = slices.Compact(norm); len(norm) > 0 {
			out.Blocklist[t] = norm
		}
	}
	for i, t := range types {
		out.max[i] = out.Max[t]
	}
	out.ready = true
	return out, nil
}

// MaxOf returns how many identifiers of type t one customer may hold.
func (p Policy) MaxOf(t Type) int {
	if i := t.index(); i >= 0 && p.ready {
		return p.max[i]
	}
	return DefaultMax[t]
}

// Blocked reports whether id must never link anything: a built-in
// placeholder or a configured value. A blocked identifier is left out of
// every observation.
func (p Policy) Blocked(id Identifier) bool {
	if p.blocked[id] {
		return true
	}
	switch id.Type {
	case Email:
		return placeholderEmail(id.Value)
	case Phone:
		return placeholderPhone(id.Value)
	default:
		return placeholderToken(id.Value)
	}
}

// Subject returns the identifier data naming ids is attributed to: the
// strongest one that is not blocked (Compare's order). A purchase, an
// attribute or a consent decision belongs to the customer its subject
// belongs to, so a merge shows it on the merged customer and an unmerge
// gives it back to its side exactly.
func (p Policy) Subject(ids []Identifier) (Identifier, bool) {
	var best Identifier
	found := false
	for _, id := range ids {
		if p.Blocked(id) {
			continue
		}
		if !found || id.Compare(best) < 0 {
			best, found = id, true
		}
	}
	return best, found
}

// placeholderTokens are values tills, kiosks and web forms send when they
// have no real identifier, compared ignoring case.
var placeholderTokens = map[string]bool{
	"null": true, "nil": true, "none": true, "undefined": true, "nan": true,
	"-1": true, "0": true, "n/a": true, "na": true, "unknown": true,
	"anonymous": true, "anon": true, "guest": true, "test": true,
	"default": true, "false": true, "true": true, "empty": true,
	"customer": true, "walkin": true, "walk-in": true, "walk_in": true,
}

// placeholderToken: a placeholder word, a value without a letter or digit,
// or one character repeated ("0000", "XXXX", the all-zero UUID). It runs
// on every identifier of every event, so it allocates only for a value
// short enough to be a placeholder word.
func placeholderToken(v string) bool {
	if len(v) <= maxPlaceholderToken && placeholderTokens[strings.ToLower(v)] {
		return true
	}
	// The ASCII letters and digits of v, case folded: none, or one
	// repeated.
	var first byte
	n := 0
	for i := 0; i < len(v); i++ {
		c := v[i]
		switch {
		case c >= 'A' && c <= 'Z':
			c += 'a' - 'A'
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9':
		default:
			continue
		}
		if n == 0 {
			first = c
		} else if c != first {
			// Two different ones: a real token (most are, so stop
			// here rather than read the rest).
			return false
		}
		n++
	}
	return n != 1
}

// maxPlaceholderToken is the length of the longest placeholder word.
var maxPlaceholderToken = func() int {
	n := 0
	for w := range placeholderTokens {
		n = max(n, len(w))
	}
	return n
}()

// repeated reports whether s is one byte repeated.
func repeated(s string) bool {
	return s != "" && strings.Count(s, s[:1]) == len(s)
}

// placeholderLocals are local parts typed for shoppers with no address.
var placeholderLocals = map[string]bool{
	"test": true, "tester": true, "noreply": true, "no-reply": true, "donotreply": true,
	"do-not-reply": true, "none": true, "null": true, "nil": true, "nomail": true,
	"noemail": true, "no-email": true, "no.email": true, "nobody": true, "anonymous": true,
	"anon": true, "guest": true, "unknown": true, "customer": true, "dummy": true,
	"fake": true, "sample": true, "asdf": true, "qwerty": true, "na": true, "n/a": true,
}

// placeholderDomains are domains no shopper receives mail at: RFC 2606's
// example domains and the usual made-up ones.
var placeholderDomains = map[string]bool{
	"example.com": true, "example.net": true, "example.org": true,
	"test.com": true, "none.com": true, "noemail.com": true, "nomail.com": true,
	"no.com": true, "email.invalid": true,
}

// placeholderSuffixes are top-level domains that never route mail (RFC
// 6761). ".test" and ".example" are not here: they are what this project's
// documentation and tests use for made-up shoppers.
var placeholderSuffixes = []string{".invalid", ".localhost", ".local"}

func placeholderEmail(v string) bool {
	local, domain, _ := strings.Cut(v, "@")
	if placeholderLocals[local] || placeholderDomains[domain] {
		return true
	}
	for _, s := range placeholderSuffixes {
		if strings.HasSuffix(domain, s) {
			return true
		}
	}
	// "xxx@", "aaaa@"; one or two characters ("a@b.example") are kept.
	return len(local) >= 3 && repeated(local)
}

// placeholderPhone: the national number is one digit repeated or a run
// ("123456789", "9876543210"), or a North American 555-01XX number
// (reserved for fiction).
func placeholderPhone(e164 string) bool {
	if strings.HasPrefix(e164, "+1") && len(e164) == 12 && e164[5:9] == "5550" && e164[9] == '1' {
		return true
	}
	// The national number follows the country code; country codes are a
	// prefix code, so the first prefix that is one is it.
	digits := strings.TrimPrefix(e164, "+")
	codes := phonenumbers.GetSupportedCallingCodes()
	for n := 1; n <= 3 && n < len(digits); n++ {
		cc, err := strconv.Atoi(digits[:n])
		if err != nil || !codes[cc] {
			continue
		}
		nsn := digits[n:]
		return len(nsn) >= 6 && (repeated(nsn) || run(nsn, 1) || run(nsn, 9))
	}
	return false
}

// run reports whether each digit of s is the previous plus step, mod 10.
func run(s string, step byte) bool {
	for i := 1; i < len(s); i++ {
		if (s[i-1]-'0'+step)%10 != s[i]-'0' {
			return false
		}
	}
	return true
}
