package downsync

import (
	"errors"
	"testing"
)

// FuzzParseCode feeds ParseCode whatever a scanner or a shopper might send:
// it must never panic, a failure must wrap ErrInvalidCode, and a GTIN it
// reports is always 14 digits.
func FuzzParseCode(f *testing.F) {
	for _, s := range []string{
		"9506000134352", "09506000134352", "(01)09506000134352(21)ABC", "010950600013435221ABC",
		"https://id.gs1.org/01/09506000134352/21/ABC?17=261231", "]E09506000134352", "]Q3https://example.com/01/09506000134352",
		"urn:epc:id:sgtin:9506000.013435.1000", "30395DFA8313A4C000000001", "SKU-1", "^0109506000134352", "",
		"https://example.com/01/123", "urn:epc:tag:sgtin-96:1.9506000.013435.1000",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c := ParseCode(s)
		if c.Err != nil && !errors.Is(c.Err, ErrInvalidCode) {
			t.Fatalf("ParseCode(%q) error %v does not wrap ErrInvalidCode", s, c.Err)
		}
		if g := c.GTIN.GTIN; g != "" && (len(g) != 14 || !allDigits(g)) {
			t.Fatalf("ParseCode(%q) GTIN %q", s, g)
		}
		if c.Err == nil && c.GTIN.GTIN == "" && c.GTIN.By != "" {
			t.Fatalf("ParseCode(%q) matched %q without a GTIN", s, c.GTIN.By)
		}
	})
}

// FuzzParseKey checks that keys never panic and that what parses
// re-encodes to the same key.
func FuzzParseKey(f *testing.F) {
	for _, s := range []string{"stk.S1.SKU-1", "cat.P-1", "rev.~QS5C", "tick", "stk.~X3g.~U0tVKjE", "stk..", "cat.", "rec.P-1", "key.cart.k1", "svy.post-purchase"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := ParseKey(s)
		if err != nil {
			return
		}
		var back string
		switch p.Kind {
		case KindProduct:
			back = ProductKey(p.ProductID)
		case KindReview:
			back = ReviewKey(p.ProductID)
		case KindStock:
			back = StockKey(p.Location, p.SKU)
		case KindTick:
			back = TickKey
		case KindRecs:
			back = RecsKey(p.ProductID)
		case KindCartKey:
			back = CartKeyKey(p.KeyID)
		case KindSurvey:
			back = SurveyKey(p.SurveyID)
		default:
			t.Fatalf("ParseKey(%q) = %+v: a kind this test cannot re-encode", s, p)
		}
		if q, err := ParseKey(back); err != nil || q != p {
			t.Fatalf("ParseKey(%q) = %+v; re-encoded %q parses to %+v, %v", s, p, back, q, err)
		}
	})
}
