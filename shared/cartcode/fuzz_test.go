package cartcode

import (
	"crypto/ed25519"
	"errors"
	"testing"
	"time"
)

// FuzzDecode feeds the decoder any text: it never panics, refuses with one
// of its errors, and what it accepts re-encodes to the same signed bytes
// (one text per snapshot), and verifies only under the key that signed it.
func FuzzDecode(f *testing.F) {
	key := testKey(f)
	pub := key.Public().(ed25519.PublicKey)
	code, _ := Sign(key, tenLines())
	f.Add(code)
	f.Add(Prefix)
	f.Add(Prefix + "AE")
	f.Add("]Q1" + code)
	f.Add("4006381333931")
	f.Fuzz(func(t *testing.T, text string) {
		s, signed, _, err := Decode(text)
		if err != nil {
			if !errors.Is(err, ErrNotCartCode) && !errors.Is(err, ErrMalformed) {
				t.Fatalf("unexpected error kind: %v", err)
			}
			return
		}
		kid := signed[1:5]
		again, err := marshal(s, kid)
		if err != nil {
			t.Fatalf("decoded snapshot does not encode: %v (%+v)", err, s)
		}
		if string(again) != string(signed) {
			t.Fatalf("decode/encode not canonical:\n%x\n%x", signed, again)
		}
		if text != code {
			if _, err := Verify(text, Keys{KeyID(pub): pub}, time.Unix(s.IssuedAt, 0), 0); err == nil {
				t.Fatalf("a code the key never signed verified: %q", text)
			}
		}
	})
}
