package hub

import "testing"

// Ensure that whatever a build is stamped with, the micro service gets a
// SemVer (an untagged checkout stamps a commit hash, which may start with a
// digit).
func TestServiceVersion(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", "0.0.0-dev"},
		{"dev", "0.0.0-dev"},
		{"v1.4.0", "1.4.0"},
		{"1.4.0-rc.1", "1.4.0-rc.1"},
		{"5a1b2c3", "0.0.0-dev+5a1b2c3"},
		{"e503709-dirty", "0.0.0-dev+e503709-dirty"},
		{"v1.4.0-3-g5a1b2c3", "1.4.0-3-g5a1b2c3"},
		{"weird/ver sion", "0.0.0-dev+weird-ver-sion"},
	}
	for _, tt := range tests {
		got := serviceVersion(tt.in)
		if got != tt.want || !semVer.MatchString(got) {
			t.Errorf("serviceVersion(%q) = %q, want %q (SemVer)", tt.in, got, tt.want)
		}
	}
}
