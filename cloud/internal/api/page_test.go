package api

import (
	"slices"
	"testing"
)

// Ensure that sizes sort the way a shop shelf shows them.
func TestSizeRank(t *testing.T) {
	tests := []struct{ in, want []string }{
		{[]string{"XL", "M", "S", "XS", "L"}, []string{"XS", "S", "M", "L", "XL"}},
		{[]string{"EU 42", "EU 39", "EU 40"}, []string{"EU 39", "EU 40", "EU 42"}},
		{[]string{"60x60 cm", "30x50 cm", "45x45 cm"}, []string{"30x50 cm", "45x45 cm", "60x60 cm"}},
		{[]string{"King", "Single", "Double"}, []string{"King", "Single", "Double"}},
	}
	for _, tt := range tests {
		got := slices.Clone(tt.in)
		slices.SortStableFunc(got, func(a, b string) int { return sizeRank(a) - sizeRank(b) })
		if !slices.Equal(got, tt.want) {
			t.Errorf("%v sorted to %v, want %v", tt.in, got, tt.want)
		}
	}
}
