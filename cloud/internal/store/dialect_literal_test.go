package store

import (
	"math"
	"testing"
)

// Ensure that row sets travel to PostgreSQL as exact array literals,
// whatever the width of their numbers and the characters of their text.
func TestArrayLiterals(t *testing.T) {
	ints := []struct {
		in   []int64
		want string
	}{
		{nil, "{}"},
		{[]int64{0}, "{0}"},
		{[]int64{1, -2, 3}, "{1,-2,3}"},
		{[]int64{math.MinInt64, math.MaxInt64, 7}, "{-9223372036854775808,9223372036854775807,7}"},
		{[]int64{5, 1234567890123}, "{5,1234567890123}"},
	}
	for _, tt := range ints {
		if got := intArrayLiteral(tt.in); got != tt.want {
			t.Errorf("intArrayLiteral(%v) = %s, want %s", tt.in, got, tt.want)
		}
	}
	texts := []struct {
		in   []string
		want string
	}{
		{nil, "{}"},
		{[]string{""}, `{""}`},
		{[]string{"a", "NULL", "b c"}, `{"a","NULL","b c"}`},
		{[]string{`q"uote`, `back\slash`, `\"`}, `{"q\"uote","back\\slash","\\\""}`},
		{[]string{"café", "{,}"}, `{"café","{,}"}`},
	}
	for _, tt := range texts {
		if got := textArrayLiteral(tt.in); got != tt.want {
			t.Errorf("textArrayLiteral(%q) = %s, want %s", tt.in, got, tt.want)
		}
	}
}
