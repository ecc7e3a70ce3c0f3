package pii

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/omnisync/omnisync/cloud/internal/identity"
)

// Ensure that a sealed value opens only where it was stored, and not once
// tampered with.
func TestSealOpen(t *testing.T) {
	k, err := New(Generate())
	if err != nil {
		t.Fatal(err)
	}
	s := k.SealString("a@b.example", "cust_identifiers:v1:ab")
	if bytes.Contains(s, []byte("a@b.example")) {
		t.Fatal("plain text in the sealed value")
	}
	if got, err := k.OpenString(s, "cust_identifiers:v1:ab"); err != nil || got != "a@b.example" {
		t.Fatalf("open: %q %v", got, err)
	}
	if _, err := k.Open(s, "cust_identifiers:v1:cd"); !errors.Is(err, ErrOpen) {
		t.Fatalf("moved to another row: %v", err)
	}
	s[len(s)-1] ^= 1
	if _, err := k.Open(s, "cust_identifiers:v1:ab"); !errors.Is(err, ErrOpen) {
		t.Fatalf("tampered: %v", err)
	}
	if _, err := k.Open([]byte("plain"), ""); !errors.Is(err, ErrOpen) {
		t.Fatalf("not sealed: %v", err)
	}
}

// Ensure that after a rotation old values still open, are reported stale,
// and that dropping the old key makes them unreadable.
func TestRotation(t *testing.T) {
	f := Generate()
	k1, _ := New(f)
	old := k1.SealString("LC-1", "x")
	f.AddSealKey()
	k2, err := New(f)
	if err != nil {
		t.Fatal(err)
	}
	if !k2.Stale(old) {
		t.Fatal("old value not stale")
	}
	if v, err := k2.OpenString(old, "x"); err != nil || v != "LC-1" {
		t.Fatalf("old value under the new ring: %q %v", v, err)
	}
	fresh := k2.SealString("LC-1", "x")
	if k2.Stale(fresh) {
		t.Fatal("fresh value stale")
	}
	if err := f.DropSealKey(f.Current); err == nil {
		t.Fatal("dropped the current key")
	}
	if err := f.DropSealKey(1); err != nil {
		t.Fatal(err)
	}
	k3, _ := New(f)
	if _, err := k3.Open(old, "x"); !errors.Is(err, ErrOpen) {
		t.Fatalf("old key dropped, value still opens: %v", err)
	}
	// The index key is untouched by a rotation: digests stay.
	id := identity.Identifier{Type: identity.Loyalty, Value: "LC-1"}
	if k1.Digest(id) != k3.Digest(id) {
		t.Fatal("digest changed with the seal key")
	}
}

// Ensure that the key file is created 0600 and that a world-readable one
// is refused.
func TestLoadOrCreate(t *testing.T) {
	p := filepath.Join(t.TempDir(), "customer-keys.json")
	k, err := LoadOrCreate(p)
	if err != nil {
		t.Fatal(err)
	}
	st, _ := os.Stat(p)
	if st.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v", st.Mode().Perm())
	}
	again, err := LoadOrCreate(p)
	if err != nil {
		t.Fatal(err)
	}
	id := identity.Identifier{Type: identity.Email, Value: "a@b.example"}
	if k.Digest(id) != again.Digest(id) {
		t.Fatal("keys changed on reload")
	}
	if v, err := again.OpenString(k.SealString("x", "ad"), "ad"); err != nil || v != "x" {
		t.Fatal("value sealed before reload does not open", err)
	}
	os.Chmod(p, 0o644)
	if _, err := LoadOrCreate(p); !errors.Is(err, ErrKeys) {
		t.Fatalf("world-readable file accepted: %v", err)
	}
	if _, err := New(File{Index: KeyEntry{ID: 1, Key: make([]byte, 8)}}); !errors.Is(err, ErrKeys) {
		t.Fatalf("short index key: %v", err)
	}
}

// FuzzOpen feeds arbitrary bytes to Open: never a panic, and nothing
// opens that was not sealed.
func FuzzOpen(f *testing.F) {
	k, _ := New(Generate())
	f.Add(k.SealString("a@b.example", "ad"), "ad")
	f.Add([]byte{1, 0, 0, 0, 1}, "")
	f.Add([]byte{}, "x")
	f.Fuzz(func(t *testing.T, sealed []byte, ad string) {
		if _, err := k.Open(sealed, ad); err != nil && !errors.Is(err, ErrOpen) {
			t.Fatalf("error not ErrOpen: %v", err)
		}
	})
}
