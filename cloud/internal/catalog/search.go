package catalog

import (
	"slices"
	"strings"
	"unicode"
)

// Search terms: what a variant can be found by in the HQ console. A
// variant's terms are the lower-cased words of its product's and its own
// name, its brand, colour and category, its SKU whole, and each GTIN
// whole; a query matches a variant when every word of the query is a
// prefix of one of its terms. Terms are bounded (MaxTermLen, at most
// MaxTerms per variant) so a pathological name cannot blow up the index.

// Bounds on search terms.
const (
	MaxTermLen = 64
	MaxTerms   = 48
	// MaxQueryWords bounds the words of a query that count.
	MaxQueryWords = 6
)

// SearchTerms returns the distinct terms a variant is found by, sorted.
// productName and productBrand are its product's (which may differ from
// the variant's own name).
func SearchTerms(v Variant, productName, productBrand string) []string {
	var out []string
	add := func(t string) {
		if t = clipTerm(t); t != "" {
			out = append(out, t)
		}
	}
	add(strings.ToLower(v.SKU))
	for _, g := range v.GTINs {
		add(g)
	}
	for _, f := range []string{productName, v.Name, productBrand, v.Brand, v.Colour, v.Category} {
		for _, w := range Words(f) {
			add(w)
		}
	}
	// A brand of several words is also found whole ("north face").
	for _, b := range []string{productBrand, v.Brand} {
		if ws := Words(b); len(ws) > 1 {
			add(strings.Join(ws, " "))
		}
	}
	slices.Sort(out)
	out = slices.Compact(out)
	if len(out) > MaxTerms {
		out = out[:MaxTerms]
	}
	return out
}

// QueryWords returns the words of a search query, lower-cased, at most
// MaxQueryWords of them. A query that is one token (a SKU such as
// "TS-001/M", a GTIN) is kept whole as well, lower-cased, so that SKUs
// with punctuation are found by their full text.
func QueryWords(q string) []string {
	q = strings.TrimSpace(q)
	if q == "" {
		return nil
	}
	if !strings.ContainsFunc(q, unicode.IsSpace) {
		whole := clipTerm(strings.ToLower(q))
		ws := Words(q)
		if len(ws) == 1 && ws[0] == whole {
			return ws
		}
		// Either the whole token (a SKU) or its words: the caller tries
		// the whole first.
		return append([]string{whole}, limitWords(ws)...)
	}
	return limitWords(Words(q))
}

func limitWords(ws []string) []string {
	if len(ws) > MaxQueryWords {
		ws = ws[:MaxQueryWords]
	}
	return ws
}

// Words splits s into lower-cased runs of letters and digits.
func Words(s string) []string {
	f := strings.FieldsFunc(strings.ToLower(s), func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsDigit(r) })
	out := f[:0]
	for _, w := range f {
		if w = clipTerm(w); w != "" {
			out = append(out, w)
		}
	}
	return out
}

// clipTerm cuts t to MaxTermLen bytes at a rune boundary.
func clipTerm(t string) string {
	if len(t) <= MaxTermLen {
		return t
	}
	cut := MaxTermLen
	for cut > 0 && !isRuneStart(t[cut]) {
		cut--
	}
	return t[:cut]
}

func isRuneStart(b byte) bool { return b&0xC0 != 0x80 }

// PrefixEnd is the least string greater than every string that starts
// with prefix (for a range scan: term >= prefix AND term < PrefixEnd).
func PrefixEnd(prefix string) string { return prefix + "\U0010FFFF" }
