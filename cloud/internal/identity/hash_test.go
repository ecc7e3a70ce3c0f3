package identity

import (
	"bytes"
	"errors"
	"testing"
)

// Ensure that digests depend on the key version and the whole identifier,
// render and parse back, and that short or repeated keys are refused.
func TestHasher(t *testing.T) {
	k1 := Key{Version: 1, Secret: bytes.Repeat([]byte{1}, 32)}
	k2 := Key{Version: 2, Secret: bytes.Repeat([]byte{2}, 32)}
	h, err := NewHasher(k2, k1)
	if err != nil {
		t.Fatal(err)
	}
	id := Identifier{Email, "a@b.example"}
	d := h.Digest(id)
	d1, ok := h.DigestUnder(id, 1)
	if !ok || d.Version != 2 || d1.Version != 1 || d.Sum == d1.Sum {
		t.Fatalf("digests %v %v", d, d1)
	}
	if h.Digest(Identifier{Account, "a@b.example"}) == d || h.Digest(Identifier{Email, "a@b.exampl"}) == d {
		t.Fatal("digest ignores part of the identifier")
	}
	if _, ok := h.DigestUnder(id, 3); ok {
		t.Fatal("digest under a key the hasher lacks")
	}
	back, err := ParseDigest(d.String())
	if err != nil || back != d {
		t.Fatalf("ParseDigest(%s) = %v, %v", d, back, err)
	}
	for _, s := range []string{"", "v1", "x1:00", "v1:zz", "v1:00", "v-1:" + d.String()[3:]} {
		if _, err := ParseDigest(s); err == nil {
			t.Errorf("ParseDigest(%q) accepted", s)
		}
	}
	if v := h.Versions(); len(v) != 2 || v[0] != 1 || h.Current() != 2 {
		t.Fatalf("versions %v current %d", v, h.Current())
	}
	if _, err := NewHasher(Key{Version: 1, Secret: []byte("short")}); !errors.Is(err, ErrKey) {
		t.Fatalf("short key: %v", err)
	}
	if _, err := NewHasher(k1, k1); !errors.Is(err, ErrKey) {
		t.Fatalf("repeated version: %v", err)
	}
}

// Ensure that a digest is still the stored formula, HMAC-SHA256 over
// "omnisync identifier v1\x00" type "\x00" value: every hub's rows are
// keyed by it, so a change would orphan them all. The expected value was
// computed outside Go. Concurrent digests must agree too (the hasher
// clones one keyed HMAC per version).
func TestHasher_KnownAnswer(t *testing.T) {
	h, err := NewHasher(Key{Version: 1, Secret: bytes.Repeat([]byte{1}, 32)})
	if err != nil {
		t.Fatal(err)
	}
	const want = "v1:63a952189af9aef382d8aaa12727db576dbe7e464df8e58dc80c8fb28d925d50"
	id := Identifier{Email, "a@b.example"}
	if got := h.Digest(id).String(); got != want {
		t.Fatalf("digest %s, want %s", got, want)
	}
	done := make(chan string, 8)
	for range 8 {
		go func() {
			var last string
			for range 200 {
				last = h.Digest(id).String()
				if last != want {
					break
				}
			}
			done <- last
		}()
	}
	for range 8 {
		if got := <-done; got != want {
			t.Fatalf("concurrent digest %s, want %s", got, want)
		}
	}
}
