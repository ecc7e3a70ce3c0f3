package store

import (
	"math/rand"
	"strings"
	"testing"
)

// Ensure that the word-at-a-time test finds every byte COPY's text form
// escapes, wherever it stands, and lets the plain values (digests, ids,
// names) through without escaping.
func TestMayNeedCopyEscape(t *testing.T) {
	exact := func(s string) bool { return strings.ContainsAny(s, "\\\t\n\r") }
	plain := []string{"", "a", "v1:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
		"0190b2c4-5e6f-7a8b-9c0d-1e2f3a4b5c6d", "zoë@shop.test", "S12 pos-1 identify ~{}[]|"}
	for _, s := range plain {
		if mayNeedCopyEscape(s) {
			t.Errorf("%q: escape asked for", s)
		}
	}
	rng := rand.New(rand.NewSource(1))
	for range 20000 {
		b := make([]byte, rng.Intn(40))
		for i := range b {
			b[i] = byte(0x20 + rng.Intn(0x5f))
		}
		if len(b) > 0 && rng.Intn(2) == 0 {
			b[rng.Intn(len(b))] = "\\\t\n\r\x00\x7f\xff"[rng.Intn(7)]
		}
		s := string(b)
		if got := mayNeedCopyEscape(s); got != exact(s) && !(got && strings.ContainsAny(s, "\x00\x01\x02\x03\x04\x05\x06\x07\x08\x0b\x0c")) {
			t.Fatalf("%q: %v, want %v", s, got, exact(s))
		}
		var c copyBuf
		c.text(s)
		if want := appendCopyText(nil, s); string(c.b) != string(want) {
			t.Fatalf("%q: copied %q, want %q", s, c.b, want)
		}
	}
}
