package gs1

import (
	"sort"
	"strings"
)

// DefaultStem is the canonical GS1 Digital Link resolver.
const DefaultStem = "https://id.gs1.org"

// DLOptions relaxes Digital Link parsing and tunes generation. The zero
// value follows the current GS1 Digital Link standard strictly.
type DLOptions struct {
	// PermitZeroSuppressedGTIN accepts GTIN-8/12/13 for AI (01), as older
	// (DL 1.1) encoders wrote them, padding them to GTIN-14.
	PermitZeroSuppressedGTIN bool
	// PermitConvenienceAlphas accepts the deprecated short names such as
	// /gtin/, /lot/, /ser/ in place of AIs in the path.
	PermitConvenienceAlphas bool
	// PermitTrailingSlash ignores one "/" at the end of the path.
	PermitTrailingSlash bool
	// ReorderQualifiers accepts key qualifiers in any order and puts them
	// into the standard order, instead of rejecting the URI.
	ReorderQualifiers bool
	// PermitUnknownAIs accepts numeric query parameters that are not in the
	// AI table (they still cannot be path components).
	PermitUnknownAIs bool
	// PermitUnknownAIAttributes lets such unknown AIs be query attributes;
	// without it they are rejected even when PermitUnknownAIs is set.
	PermitUnknownAIAttributes bool
	// UseShortNames makes generation use convenience alphas (/gtin/, /lot/)
	// in the path, for legacy resolvers.
	UseShortNames bool
}

// DigitalLink is a parsed GS1 Digital Link URI.
type DigitalLink struct {
	// Stem is everything before the primary key: scheme, host and any
	// custom path, e.g. "https://example.com/some/path".
	Stem string
	// AIs holds the path AIs (primary key first, then key qualifiers) and
	// then the query-string AI attributes, each in URI order. AI (01) is
	// always a GTIN-14.
	AIs ElementString
	// PathLen is the number of leading AIs that came from the path.
	PathLen int
	// Ignored lists query parameters that are not AIs ("singleton",
	// "key=value"), undecoded and in order.
	Ignored []string
	// LinkType is the value of a "linkType" query parameter, if any.
	LinkType string
	// Fragment is the part after "#", if any.
	Fragment string
}

// Key returns the primary key AI.
func (d DigitalLink) Key() AIValue { return d.AIs[0] }

// Qualifiers returns the key qualifier AIs from the path.
func (d DigitalLink) Qualifiers() ElementString { return d.AIs[1:d.PathLen] }

// Attributes returns the AI data attributes from the query string.
func (d DigitalLink) Attributes() ElementString { return d.AIs[d.PathLen:] }

// GTIN returns the GTIN-14 of the link, if it carries one.
func (d DigitalLink) GTIN() string { return d.AIs.GTIN() }

// URI regenerates the link on its own stem: path AIs in their parsed
// order, then the AI attributes (predefined-length AIs first). Non-AI query
// parameters and the fragment are not carried over.
func (d DigitalLink) URI() (string, error) {
	return d.Build(d.Stem, DLOptions{PermitUnknownAIAttributes: true})
}

// Build regenerates the link on another stem (see URI).
func (d DigitalLink) Build(stem string, o DLOptions) (string, error) {
	if d.PathLen == 0 || d.PathLen > len(d.AIs) {
		return "", dlErr(-1, "", "cannot create a Digital Link without a primary key AI")
	}
	return buildDL(d.AIs, aisOf(d.AIs[:d.PathLen]), stem, o)
}

// convenienceAlphas maps the deprecated Digital Link short names to AIs.
var convenienceAlphas = map[string]string{
	"cpid": "8010", "cpsn": "8011", "cpv": "22", "gcn": "255", "gdti": "253", "giai": "8004",
	"ginc": "401", "gln": "414", "glnx": "254", "gmn": "8013", "grai": "8003", "gsin": "402",
	"gsrn": "8018", "gsrnp": "8017", "gtin": "01", "itip": "8006", "lot": "10", "party": "417",
	"refno": "8020", "ser": "21", "srin": "8019", "sscc": "00",
}

// shortNames is the reverse of convenienceAlphas, for generation.
var shortNames = map[string]string{
	"8010": "cpid", "8011": "cpsn", "22": "cpv", "255": "gcn", "253": "gdti", "8004": "giai",
	"401": "ginc", "414": "gln", "254": "glnx", "8013": "gmn", "8003": "grai", "402": "gsin",
	"8018": "gsrn", "8017": "gsrnp", "01": "gtin", "8006": "itip", "10": "lot", "417": "party",
	"8020": "refno", "21": "ser", "8019": "srin", "00": "sscc",
}

// IsDigitalLinkScheme reports whether s starts with one of the schemes a
// Digital Link may use: "http://" or "https://", all lower or all upper case.
func IsDigitalLinkScheme(s string) bool {
	for _, p := range [...]string{"https://", "HTTPS://", "http://", "HTTP://"} {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return false
}

// isURIChar reports the characters RFC 3986 allows anywhere in a URI.
func isURIChar(c byte) bool {
	return isURIUnreserved(c) || strings.IndexByte(":/?#[]@!$&'()*+,;=%", c) >= 0
}

// ParseDigitalLink parses a Digital Link URI with strict default options.
func ParseDigitalLink(uri string) (DigitalLink, error) { return DLOptions{}.Parse(uri) }

func dlErr(pos int, ai, msg string) *Error { return newErr(ErrDigitalLink, ai, pos, msg) }

// resolvePathAI maps a path segment to an AI: a numeric AI or, when
// permitted, a convenience alpha.
func (o DLOptions) resolvePathAI(seg string) (string, *aiDef) {
	if o.PermitConvenienceAlphas && len(seg) >= 3 && len(seg) <= 5 && !isDigit(seg[0]) {
		if ai, ok := convenienceAlphas[seg]; ok {
			return ai, lookupAI(ai)
		}
	}
	if firstNot(seg, isDigit) >= 0 {
		return "", nil
	}
	if d := lookupAI(seg); d != nil {
		return seg, d
	}
	return "", nil
}

// Parse parses and validates a Digital Link URI: scheme, host, the
// primary key and key qualifiers in the path, AI attributes in the query,
// and every AI value's format and content. It does not apply the cross-AI
// association rules; call Validate on the AIs for that.
func (o DLOptions) Parse(uri string) (DigitalLink, error) {
	var dl DigitalLink
	if len(uri) > MaxInputLen {
		return dl, dlErr(MaxInputLen, "", "URI too long")
	}
	if i := firstNot(uri, isURIChar); i >= 0 {
		return dl, dlErr(i, "", "character not allowed in a URI")
	}
	if !IsDigitalLinkScheme(uri) {
		return dl, dlErr(0, "", "scheme must be http:// or https://")
	}
	hostStart := strings.Index(uri, "://") + 3
	rest := uri[hostStart:]
	if i := strings.IndexByte(rest, '#'); i >= 0 {
		dl.Fragment = rest[i+1:]
		rest = rest[:i]
	}
	query, hasQuery := "", false
	if i := strings.IndexByte(rest, '?'); i >= 0 {
		rest, query, hasQuery = rest[:i], rest[i+1:], true
	}
	slash := strings.IndexByte(rest, '/')
	if slash < 1 {
		return dl, dlErr(hostStart, "", "missing host or path")
	}
	if j := strings.IndexAny(rest[:slash], "_~?#@!$&'()*+,;=%"); j >= 0 {
		return dl, dlErr(hostStart+j, "", "character not allowed in a host name")
	}
	path := rest[slash:]
	if o.PermitTrailingSlash && len(path) > 1 && strings.HasSuffix(path, "/") {
		path = path[:len(path)-1]
	}

	// Walk back over /AI/value pairs from the end of the path to find the
	// primary key; whatever precedes it is a custom stem.
	segs := strings.Split(path[1:], "/")
	keyAt := -1
	for i := len(segs) - 2; i >= 0; i -= 2 {
		_, d := o.resolvePathAI(segs[i])
		if d == nil {
			break
		}
		if d.dlKey {
			keyAt = i
			break
		}
	}
	if keyAt < 0 {
		return dl, dlErr(hostStart+slash, "", "no GS1 primary key found in the path")
	}
	dl.Stem = uri[:hostStart+slash] + strings.TrimSuffix("/"+strings.Join(segs[:keyAt], "/"), "/")
	pos := len(dl.Stem)
	for i := keyAt; i < len(segs); i += 2 {
		ai, d := o.resolvePathAI(segs[i])
		pos += 1 + len(segs[i]) + 1
		if segs[i+1] == "" {
			return dl, dlErr(pos, ai, "empty value in path")
		}
		v, err := UnescapeURIComponent(segs[i+1], false)
		if err != nil {
			return dl, dlErr(pos, ai, "value contains an encoded NUL")
		}
		if ai == "01" && o.PermitZeroSuppressedGTIN {
			v = padGTIN(v)
		}
		if err := (Parser{}).check(ai, d, v, pos); err != nil {
			return dl, err
		}
		dl.AIs = append(dl.AIs, AIValue{AI: ai, Value: v})
		pos += len(segs[i+1])
	}
	dl.PathLen = len(dl.AIs)

	if hasQuery {
		if err := o.parseQuery(&dl, query, len(uri)-len(query)-len(dl.Fragment)); err != nil {
			return dl, err
		}
	}
	if len(dl.AIs) > MaxAIs {
		return dl, dlErr(len(uri), "", "too many AIs")
	}
	if err := o.checkPath(&dl); err != nil {
		return dl, err
	}
	return dl, o.checkAttributes(dl)
}

// padGTIN expands a zero-suppressed GTIN-8/12/13 to GTIN-14.
func padGTIN(v string) string {
	switch len(v) {
	case 8, 12, 13:
		return strings.Repeat("0", 14-len(v)) + v
	}
	return v
}

func (o DLOptions) parseQuery(dl *DigitalLink, query string, base int) error {
	p := Parser{PermitUnknownAIs: o.PermitUnknownAIs}
	pos := base
	for _, param := range strings.Split(query, "&") {
		start := pos
		pos += len(param) + 1
		if param == "" {
			continue
		}
		key, val, hasVal := strings.Cut(param, "=")
		if key == "linkType" && dl.LinkType == "" {
			dl.LinkType, _ = UnescapeURIComponent(val, true)
		}
		if !hasVal || key == "" || firstNot(key, isDigit) >= 0 {
			dl.Ignored = append(dl.Ignored, param)
			continue
		}
		d, err := p.resolveAI(key, start)
		if err != nil {
			return dlErr(start, key, "numeric query parameter is not a known AI")
		}
		if val == "" {
			return dlErr(start, key, "empty value in query")
		}
		v, err := UnescapeURIComponent(val, true)
		if err != nil {
			return dlErr(start, key, "value contains an encoded NUL")
		}
		if key == "01" && o.PermitZeroSuppressedGTIN {
			v = padGTIN(v)
		}
		if err := p.check(key, d, v, start+len(key)+1); err != nil {
			return err
		}
		dl.AIs = append(dl.AIs, AIValue{AI: key, Value: v})
	}
	return nil
}

// checkPath verifies that the path AIs form a primary key followed by an
// allowed, ordered subset of its qualifiers.
func (o DLOptions) checkPath(dl *DigitalLink) error {
	path := dl.AIs[:dl.PathLen]
	if o.ReorderQualifiers && !validKeySequence(aisOf(path)) {
		if sorted, ok := reorderQualifiers(path); ok {
			copy(path, sorted)
		}
	}
	if !validKeySequence(aisOf(path)) {
		return dlErr(-1, path[0].AI, "path AIs are not a valid key and qualifier sequence")
	}
	return nil
}

func aisOf(es ElementString) []string {
	out := make([]string, len(es))
	for i, v := range es {
		out[i] = v.AI
	}
	return out
}

// qualifierPaths lists the qualifier alternatives of a key, each as an
// ordered list of AIs, or nil when ai is not a primary key.
func qualifierPaths(ai string) ([][]string, bool) {
	d := lookupAI(ai)
	if d == nil || !d.dlKey {
		return nil, false
	}
	var out [][]string
	for _, alt := range d.dlQualifiers {
		out = append(out, strings.Split(alt, ","))
	}
	return out, true
}

// validKeySequence reports whether seq is a primary key followed by an
// in-order subsequence of one of its qualifier paths.
func validKeySequence(seq []string) bool {
	if len(seq) == 0 {
		return false
	}
	alts, ok := qualifierPaths(seq[0])
	if !ok {
		return false
	}
	if len(seq) == 1 {
		return true
	}
	for _, alt := range alts {
		if isSubsequence(seq[1:], alt) {
			return true
		}
	}
	return false
}

func isSubsequence(sub, full []string) bool {
	j := 0
	for _, s := range sub {
		for j < len(full) && full[j] != s {
			j++
		}
		if j == len(full) {
			return false
		}
		j++
	}
	return true
}

// reorderQualifiers sorts path qualifiers into the order of the first
// qualifier path that contains them all.
func reorderQualifiers(path ElementString) (ElementString, bool) {
	alts, _ := qualifierPaths(path[0].AI)
	for _, alt := range alts {
		rank := map[string]int{}
		for i, a := range alt {
			rank[a] = i + 1
		}
		ok := true
		for _, q := range path[1:] {
			if rank[q.AI] == 0 {
				ok = false
			}
		}
		if !ok {
			continue
		}
		out := append(ElementString{}, path...)
		sort.SliceStable(out[1:], func(i, j int) bool { return rank[out[1+i].AI] < rank[out[1+j].AI] })
		return out, true
	}
	return nil, false
}

// checkAttributes verifies the query AIs: no AI twice, each one allowed as
// a data attribute, and none that belongs in the path as a qualifier.
func (o DLOptions) checkAttributes(dl DigitalLink) error {
	path := aisOf(dl.AIs[:dl.PathLen])
	for i := dl.PathLen; i < len(dl.AIs); i++ {
		ai := dl.AIs[i].AI
		for _, prev := range dl.AIs[:i] {
			if prev.AI == ai {
				return dlErr(-1, ai, "AI appears more than once")
			}
		}
		d := lookupAI(ai)
		if (d != nil && !d.dlAttr) || (d == nil && !o.PermitUnknownAIAttributes) {
			return dlErr(-1, ai, "AI is not a valid Digital Link data attribute")
		}
		for j := 1; j <= len(path); j++ {
			trial := append(append(append([]string{}, path[:j]...), ai), path[j:]...)
			if validKeySequence(trial) {
				return dlErr(-1, ai, "AI is a key qualifier and belongs in the path")
			}
		}
	}
	return nil
}

// DigitalLinkURI builds a Digital Link URI from the AIs on the given stem
// (DefaultStem when empty is not wanted: an empty stem gives a relative
// URI). The first AI that can be a primary key becomes the key; as many
// of its qualifiers as present go in the path in standard order; the other
// AIs become query attributes, predefined-length AIs first, each in the
// order given. Repeated AIs are emitted once. AIs that are not permitted
// as attributes make generation fail with ErrDigitalLink.
func (es ElementString) DigitalLinkURI(stem string, o DLOptions) (string, error) {
	keyIdx := -1
	for i, v := range es {
		if d := lookupAI(v.AI); d != nil && d.dlKey {
			keyIdx = i
			break
		}
	}
	if keyIdx < 0 {
		return "", dlErr(-1, "", "cannot create a Digital Link without a primary key AI")
	}
	return buildDL(es, bestKeySequence(es[keyIdx].AI, es), stem, o)
}

// buildDL writes the URI with the given path AI sequence; every AI whose
// code is in the path sequence is treated as part of the path.
func buildDL(es ElementString, best []string, stem string, o DLOptions) (string, error) {
	order := make([]int, len(es)) // path position, or -1 for an attribute
	for i, v := range es {
		order[i] = -1
		for j, ai := range best {
			if v.AI == ai {
				order[i] = j
			}
		}
	}
	var b strings.Builder
	b.WriteString(strings.TrimSuffix(stem, "/"))
	for j, ai := range best {
		for i, v := range es {
			if order[i] != j {
				continue
			}
			b.WriteByte('/')
			if name, ok := shortNames[ai]; ok && o.UseShortNames {
				b.WriteString(name)
			} else {
				b.WriteString(ai)
			}
			b.WriteByte('/')
			b.WriteString(EscapeURIComponent(v.Value, false))
			break
		}
	}
	sep := byte('?')
	for _, fixed := range [...]bool{true, false} {
		for i, v := range es {
			if order[i] >= 0 || (lookupAI(v.AI) != nil && lookupAI(v.AI).fixedLen) != fixed {
				continue
			}
			dup := false
			for _, w := range es[:i] {
				if w.AI == v.AI {
					dup = true
					break
				}
			}
			if dup {
				continue
			}
			d := lookupAI(v.AI)
			if (d != nil && !d.dlAttr) || (d == nil && !o.PermitUnknownAIAttributes) {
				return "", dlErr(-1, v.AI, "AI is not a valid Digital Link data attribute")
			}
			b.WriteByte(sep)
			sep = '&'
			b.WriteString(v.AI)
			b.WriteByte('=')
			b.WriteString(EscapeURIComponent(v.Value, true))
		}
	}
	return b.String(), nil
}

// bestKeySequence picks, among the key's valid key-qualifier sequences, the
// one matching most of the given AIs; ties go to the lexically first
// sequence, as GS1's reference implementation does, so output is stable.
func bestKeySequence(key string, es ElementString) []string {
	alts, _ := qualifierPaths(key)
	seen := map[string][]string{key: {key}}
	for _, alt := range alts {
		for mask := 1; mask < 1<<len(alt); mask++ {
			seq := []string{key}
			for k, q := range alt {
				if mask&(1<<k) != 0 {
					seq = append(seq, q)
				}
			}
			seen[strings.Join(seq, " ")] = seq
		}
	}
	names := make([]string, 0, len(seen))
	for n := range seen {
		names = append(names, n)
	}
	sort.Strings(names)
	best, bestN := []string{key}, 0
	for _, n := range names {
		seq := seen[n]
		count := 0
		for _, q := range seq[1:] {
			for _, v := range es {
				if v.AI == q {
					count++
				}
			}
		}
		if count > bestN {
			best, bestN = seq, count
		}
	}
	return best
}
