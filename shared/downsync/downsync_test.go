package downsync

import (
	"errors"
	"strings"
	"testing"
)

// Ensure that keys round-trip through their tokens, plain names stay
// readable and odd ones cannot collide with plain ones.
func TestKeys(t *testing.T) {
	cases := []struct {
		loc, sku, want string
	}{
		{"S1", "SKU-1", "stk.S1.SKU-1"},
		{"online", "A.B", "stk.online.~QS5C"},
		{"_x", "SKU*1", "stk.~X3g.~U0tVKjE"},
	}
	for _, c := range cases {
		k := StockKey(c.loc, c.sku)
		if k != c.want {
			t.Errorf("StockKey(%q,%q) = %q, want %q", c.loc, c.sku, k, c.want)
		}
		p, err := ParseKey(Subject(k))
		if err != nil || p.Kind != KindStock || p.Location != c.loc || p.SKU != c.sku {
			t.Errorf("ParseKey(%q) = %+v, %v", k, p, err)
		}
	}
	for _, id := range []string{"P-1", "p/1 2", "~x"} {
		p, err := ParseKey(ProductKey(id))
		if err != nil || p.Kind != KindProduct || p.ProductID != id {
			t.Errorf("product %q: %+v %v", id, p, err)
		}
		p, err = ParseKey(ReviewKey(id))
		if err != nil || p.Kind != KindReview || p.ProductID != id {
			t.Errorf("review %q: %+v %v", id, p, err)
		}
	}
	for _, bad := range []string{"stk.S1", "nope", "cat.~!!", "cat.a b"} {
		if _, err := ParseKey(bad); !errors.Is(err, ErrKey) {
			t.Errorf("ParseKey(%q) err = %v", bad, err)
		}
	}
}

// Ensure that every carrier of a GTIN reads to the same GTIN, and invalid
// codes say so.
func TestParseCode(t *testing.T) {
	const gtin = "09506000134352"
	cases := []struct {
		name, code string
		by, gtin   string
		serial     string
		invalid    bool
		sku        bool
	}{
		{"gtin13", "9506000134352", ByGTIN, gtin, "", false, true},
		{"gtin14", gtin, ByGTIN, gtin, "", false, true},
		{"bad check", "9506000134353", "", "", "", true, true},
		{"bracketed", "(01)09506000134352(21)ABC", ByElementString, gtin, "ABC", false, false},
		{"unbracketed", "010950600013435221ABC", ByElementString, gtin, "ABC", false, true},
		{"dl", "https://id.gs1.org/01/09506000134352/21/ABC", ByDigitalLink, gtin, "ABC", false, false},
		{"dl short gtin", "https://example.com/01/9506000134352", ByDigitalLink, gtin, "", false, false},
		{"aim ean", "]E09506000134352", ByScan, gtin, "", false, false},
		{"epc uri", "urn:epc:id:sgtin:9506000.013435.1000", ByEPC, gtin, "1000", false, false},
		{"sku", "SKU-123", "", "", "", false, true},
		{"bad dl", "https://example.com/01/123", "", "", "", true, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := ParseCode(c.code)
			if c.invalid != (got.Err != nil) || (got.Err != nil && !errors.Is(got.Err, ErrInvalidCode)) {
				t.Fatalf("err = %v, want invalid=%v", got.Err, c.invalid)
			}
			if got.GTIN.By != c.by || got.GTIN.GTIN != c.gtin || got.GTIN.Serial != c.serial {
				t.Errorf("match = %+v", got.GTIN)
			}
			if c.sku && got.SKU == "" {
				t.Errorf("sku = %q", got.SKU)
			}
		})
	}
}

// Ensure that erasure keys round-trip, escape what is not a plain token,
// and that the filter covers exactly the store's keys.
func TestErasureKey(t *testing.T) {
	for _, c := range [][2]string{{"S1", "E1"}, {"S-2", "0193a4b2-7c1d-7e00-8000-000000000001"}, {"S1", "with.dot"}} {
		k := ErasureKey(c[0], c[1])
		s, e, err := ParseErasureKey(ErasureSubject(k))
		if err != nil || s != c[0] || e != c[1] {
			t.Fatalf("ParseErasureKey(%q) = %q, %q, %v", k, s, e, err)
		}
		if strings.Count(k, ".") != 1 || !strings.HasPrefix(ErasureSubject(k), strings.TrimSuffix(ErasureFilter(c[0]), ">")) {
			t.Fatalf("key %q is outside filter %q", k, ErasureFilter(c[0]))
		}
	}
	if _, _, err := ParseErasureKey("S1"); err == nil {
		t.Fatal("accepted a key without an erasure")
	}
}
