package catalog

import (
	"fmt"
	"testing"
)

// Ensure that seen finds every SKU and GTIN it was given, across many
// growths of its table, and nothing else.
func TestSeen(t *testing.T) {
	s := newSeen()
	const n = 20000
	for i := range n {
		s.add(fmt.Sprintf("SKU-%d", i), i+2, []string{fmt.Sprintf("%014d", 7*i), fmt.Sprintf("not-a-number-%d", i)})
	}
	for i := range n {
		if line, ok := s.skuLine(fmt.Sprintf("SKU-%d", i)); !ok || line != i+2 {
			t.Fatalf("SKU-%d: line %d %v", i, line, ok)
		}
		for _, g := range []string{fmt.Sprintf("%014d", 7*i), fmt.Sprintf("not-a-number-%d", i)} {
			if line, sku, ok := s.gtin(g); !ok || line != i+2 || sku != fmt.Sprintf("SKU-%d", i) {
				t.Fatalf("GTIN %s: %d %q %v", g, line, sku, ok)
			}
		}
	}
	for _, miss := range []string{"SKU-", "SKU-20000", "sku-1", ""} {
		if _, ok := s.skuLine(miss); ok {
			t.Fatalf("found %q", miss)
		}
	}
	if _, _, ok := s.gtin("00000000000001"); ok {
		t.Fatal("found a GTIN never added")
	}
}
