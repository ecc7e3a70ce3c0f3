package catalog

import (
	"slices"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestSearchTerms(t *testing.T) {
	v := Variant{SKU: "TS-001/M", GTINs: []string{"05012345678900"}, Name: "Linen shirt, M", Brand: "North Face", Colour: "Off-white", Category: "Shirts"}
	got := SearchTerms(v, "Linen Shirt", "North Face")
	want := []string{"05012345678900", "face", "linen", "m", "north", "north face", "off", "shirt", "shirts", "ts-001/m", "white"}
	if !slices.Equal(got, want) {
		t.Fatalf("terms\n got %q\nwant %q", got, want)
	}
}

func TestQueryWords(t *testing.T) {
	tests := []struct {
		q    string
		want []string
	}{
		{"", nil},
		{"  ", nil},
		{"Linen", []string{"linen"}},
		{"linen SHIRT", []string{"linen", "shirt"}},
		{"TS-001/M", []string{"ts-001/m", "ts", "001", "m"}},
		{"05012345678900", []string{"05012345678900"}},
		{"a b c d e f g h", []string{"a", "b", "c", "d", "e", "f"}},
	}
	for _, tt := range tests {
		if got := QueryWords(tt.q); !slices.Equal(got, tt.want) {
			t.Errorf("QueryWords(%q) = %q, want %q", tt.q, got, tt.want)
		}
	}
}

// Property: terms are bounded, valid UTF-8, lower-case and sorted, and
// every word of the name finds the variant by itself as a prefix.
func FuzzSearchTerms(f *testing.F) {
	f.Add("Linen shirt", "Acme", "SKU-1")
	f.Add(strings.Repeat("é", 100), "ß", "x")
	f.Fuzz(func(t *testing.T, name, brand, sku string) {
		terms := SearchTerms(Variant{SKU: sku, Name: name, Brand: brand}, name, brand)
		if len(terms) > MaxTerms || !slices.IsSorted(terms) {
			t.Fatalf("terms %q", terms)
		}
		for _, tm := range terms {
			if len(tm) > MaxTermLen || tm == "" || utf8.ValidString(sku) && !utf8.ValidString(tm) {
				t.Fatalf("term %q", tm)
			}
		}
		if len(terms) == MaxTerms {
			return
		}
		for _, w := range Words(name) {
			if !slices.ContainsFunc(terms, func(tm string) bool { return strings.HasPrefix(tm, w) }) {
				t.Fatalf("word %q of %q finds nothing in %q", w, name, terms)
			}
		}
	})
}
