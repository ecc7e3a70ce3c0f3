package ids

import (
	"testing"
	"time"
)

// Ensure that event ids are unique, canonical and version 7.
func TestNewEventID(t *testing.T) {
	now := time.Now()
	seen := make(map[string]bool)
	for i := 0; i < 10000; i++ {
		id := NewEventID(now)
		if !ValidEventID(id) {
			t.Fatalf("invalid id %q", id)
		}
		if id[14] != '7' {
			t.Fatalf("not a v7 uuid: %q", id)
		}
		if seen[id] {
			t.Fatalf("duplicate id %q", id)
		}
		seen[id] = true
	}
}

// Ensure that epochs fit in a JavaScript number and grow with time.
func TestNewEpoch(t *testing.T) {
	a := NewEpoch(time.UnixMilli(1_700_000_000_000))
	b := NewEpoch(time.UnixMilli(1_700_000_000_001))
	if a >= b {
		t.Fatalf("epochs not increasing: %d then %d", a, b)
	}
	if b >= 1<<53 {
		t.Fatalf("epoch %d does not fit in 53 bits", b)
	}
}

func TestValidEventID(t *testing.T) {
	tests := []struct {
		in   string
		want bool
	}{
		{"0190b6a2-7c1e-7b3a-9f00-1234567890ab", true},
		{"0190B6A2-7C1E-7B3A-9F00-1234567890AB", true},
		{"", false},
		{"0190b6a2x7c1e-7b3a-9f00-1234567890ab", false},
		{"0190b6a2-7c1e-7b3a-9f00-1234567890ag", false},
		{"0190b6a2-7c1e-7b3a-9f00-1234567890a", false},
	}
	for _, tt := range tests {
		if got := ValidEventID(tt.in); got != tt.want {
			t.Errorf("ValidEventID(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}
}
