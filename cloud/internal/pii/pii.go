// Package pii keeps customers' personal data unreadable at rest at the
// hub: identifiers are indexed by a keyed hash (HMAC-SHA-256 through
// identity.Hasher) and their raw values, like profile attributes, are
// sealed with AES-256-GCM. The keys live in a file outside the database
// (the hub's --customer-keys, by default in its data directory, mode
// 0600), so a copy of the database alone, or a backup of it, reveals no
// person.
//
// Guarantee: every sealed value names the key that sealed it (its key id
// is in the ciphertext's header) and is bound to where it is stored (the
// additional data: table and row key), so a value copied to another row
// does not open. Rotation adds a sealing key and makes it current; values
// sealed under older keys still open while their key is in the file, and
// the hub re-seals them under the current one (store.RekeyCustomers), after
// which the old key can go.
//
// Sharp edge: the index key is not rotated that way. Digests are what the
// identity graph and the erasure tombstones are keyed by; a new index key
// means a re-index of every identifier (their raw values are sealed, so it
// can be done) and keeping the old key for the tombstones. Keep it secret
// and keep it; rotate it only after a compromise.
package pii

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"

	"github.com/omnisync/omnisync/cloud/internal/identity"
)

// Errors callers branch on.
var (
	// ErrKeys is returned for a key file that cannot be used.
	ErrKeys = errors.New("pii: invalid key file")
	// ErrOpen is returned for a sealed value that does not open: tampered,
	// moved to another row, or sealed under a key the file no longer has.
	ErrOpen = errors.New("pii: sealed value does not open")
)

// KeyLen is the length of a sealing key (AES-256).
const KeyLen = 32

// header is the sealed format's first byte, so the format can change.
const header = 0x01

// File is the key file's content (JSON).
type File struct {
	// Index is the identifier index key (HMAC-SHA-256), at least 32 bytes.
	Index KeyEntry `json:"index"`
	// Seal are the sealing keys (AES-256-GCM), by id; Current seals.
	Seal    []KeyEntry `json:"seal"`
	Current uint32     `json:"current"`
}

// KeyEntry is one key: its id and its bytes (standard base64 in the file).
type KeyEntry struct {
	ID  uint32 `json:"id"`
	Key []byte `json:"key"`
}

// Keyring seals and opens values and hashes identifiers. It is safe for
// concurrent use.
type Keyring struct {
	current uint32
	aeads   map[uint32]cipher.AEAD
	hasher  *identity.Hasher
}

// New returns the keyring of f.
func New(f File) (*Keyring, error) {
	h, err := identity.NewHasher(identity.Key{Version: f.Index.ID, Secret: f.Index.Key})
	if err != nil {
		return nil, fmt.Errorf("%w: index key: %w", ErrKeys, err)
	}
	k := &Keyring{current: f.Current, aeads: map[uint32]cipher.AEAD{}, hasher: h}
	for _, e := range f.Seal {
		if len(e.Key) != KeyLen {
			return nil, fmt.Errorf("%w: seal key %d is %d bytes, want %d", ErrKeys, e.ID, len(e.Key), KeyLen)
		}
		if _, dup := k.aeads[e.ID]; dup {
			return nil, fmt.Errorf("%w: seal key %d given twice", ErrKeys, e.ID)
		}
		b, err := aes.NewCipher(e.Key)
		if err != nil {
			return nil, fmt.Errorf("%w: seal key %d: %w", ErrKeys, e.ID, err)
		}
		a, err := cipher.NewGCM(b)
		if err != nil {
			return nil, fmt.Errorf("%w: seal key %d: %w", ErrKeys, e.ID, err)
		}
		k.aeads[e.ID] = a
	}
	if _, ok := k.aeads[f.Current]; !ok {
		return nil, fmt.Errorf("%w: current seal key %d is not in the file", ErrKeys, f.Current)
	}
	return k, nil
}

// Generate returns a new key file: a random index key and one sealing key.
func Generate() File {
	return File{
		Index:   KeyEntry{ID: 1, Key: random(KeyLen)},
		Seal:    []KeyEntry{{ID: 1, Key: random(KeyLen)}},
		Current: 1,
	}
}

// AddSealKey adds a new random sealing key to f and makes it current: the
// first step of a rotation.
func (f *File) AddSealKey() uint32 {
	var next uint32 = 1
	for _, e := range f.Seal {
		next = max(next, e.ID+1)
	}
	f.Seal = append(f.Seal, KeyEntry{ID: next, Key: random(KeyLen)})
	f.Current = next
	return next
}

// DropSealKey removes sealing key id (not the current one): the last step
// of a rotation, once nothing is sealed under it.
func (f *File) DropSealKey(id uint32) error {
	if id == f.Current {
		return fmt.Errorf("%w: key %d is current", ErrKeys, id)
	}
	n := len(f.Seal)
	f.Seal = slices.DeleteFunc(f.Seal, func(e KeyEntry) bool { return e.ID == id })
	if len(f.Seal) == n {
		return fmt.Errorf("%w: no seal key %d", ErrKeys, id)
	}
	return nil
}

func random(n int) []byte {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand does not fail on supported platforms
	}
	return b
}

// ReadFile reads a key file.
func ReadFile(path string) (File, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return File{}, fmt.Errorf("pii: %w", err)
	}
	var f File
	if err := json.Unmarshal(b, &f); err != nil {
		return File{}, fmt.Errorf("%w: %s: %v", ErrKeys, path, err)
	}
	return f, nil
}

// WriteFile writes f to path (mode 0600) through a temporary file and a
// rename, so a crash leaves the old file or the new one.
func WriteFile(path string, f File) error {
	b, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".keys-*")
	if err != nil {
		return fmt.Errorf("pii: %w", err)
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return fmt.Errorf("pii: %w", err)
	}
	if _, err := tmp.Write(append(b, '\n')); err != nil {
		tmp.Close()
		return fmt.Errorf("pii: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("pii: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("pii: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("pii: %w", err)
	}
	return nil
}

// LoadOrCreate opens the key file at path, creating it with new keys when
// there is none (a fresh hub). A file readable by others than its owner is
// refused.
func LoadOrCreate(path string) (*Keyring, error) {
	st, err := os.Stat(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		if err := WriteFile(path, Generate()); err != nil {
			return nil, err
		}
	case err != nil:
		return nil, fmt.Errorf("pii: %w", err)
	case st.Mode().Perm()&0o077 != 0:
		return nil, fmt.Errorf("%w: %s is readable by others (mode %v); chmod 600 it", ErrKeys, path, st.Mode().Perm())
	}
	f, err := ReadFile(path)
	if err != nil {
		return nil, err
	}
	return New(f)
}

// Hasher returns the identifier index hasher.
func (k *Keyring) Hasher() *identity.Hasher { return k.hasher }

// Digest returns id's index digest as stored ("v1:<hex>").
func (k *Keyring) Digest(id identity.Identifier) string { return k.hasher.Digest(id).String() }

// Current returns the id of the key new values are sealed under.
func (k *Keyring) Current() uint32 { return k.current }

// Seal encrypts plain, bound to ad (where it is stored).
// Layout: header byte, key id (4 bytes, big endian), nonce, ciphertext.
func (k *Keyring) Seal(plain []byte, ad string) []byte {
	return k.seal(plain, []byte(ad))
}

func (k *Keyring) seal(plain, ad []byte) []byte {
	a := k.aeads[k.current]
	out := make([]byte, 5+a.NonceSize(), 5+a.NonceSize()+len(plain)+a.Overhead())
	out[0] = header
	binary.BigEndian.PutUint32(out[1:5], k.current)
	if _, err := rand.Read(out[5:]); err != nil {
		panic(err) // crypto/rand does not fail on supported platforms
	}
	return a.Seal(out, out[5:], plain, ad)
}

// SealString is Seal of a string. The hub seals every identifier new to
// it: plain and ad share one copy as bytes.
func (k *Keyring) SealString(plain, ad string) []byte {
	b := make([]byte, 0, len(plain)+len(ad))
	b = append(append(b, plain...), ad...)
	return k.seal(b[:len(plain)], b[len(plain):])
}

// KeyID returns the id of the key sealed was sealed under.
func KeyID(sealed []byte) (uint32, bool) {
	if len(sealed) < 5 || sealed[0] != header {
		return 0, false
	}
	return binary.BigEndian.Uint32(sealed[1:5]), true
}

// Open decrypts sealed, which must have been sealed with ad.
func (k *Keyring) Open(sealed []byte, ad string) ([]byte, error) {
	id, ok := KeyID(sealed)
	if !ok {
		return nil, fmt.Errorf("%w: not a sealed value", ErrOpen)
	}
	a, ok := k.aeads[id]
	if !ok {
		return nil, fmt.Errorf("%w: key %d is not in the key file", ErrOpen, id)
	}
	if len(sealed) < 5+a.NonceSize() {
		return nil, fmt.Errorf("%w: too short", ErrOpen)
	}
	nonce := sealed[5 : 5+a.NonceSize()]
	out, err := a.Open(nil, nonce, sealed[5+a.NonceSize():], []byte(ad))
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrOpen, err)
	}
	return out, nil
}

// OpenString is Open of a string.
func (k *Keyring) OpenString(sealed []byte, ad string) (string, error) {
	b, err := k.Open(sealed, ad)
	return string(b), err
}

// Stale reports whether sealed is under another key than the current one:
// a value a rotation re-seals.
func (k *Keyring) Stale(sealed []byte) bool {
	id, ok := KeyID(sealed)
	return ok && id != k.current
}

// EncodeKey renders a key as the file holds it (for tests and tools).
func EncodeKey(b []byte) string { return base64.StdEncoding.EncodeToString(b) }
