package identity

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// MinKeyLen is the shortest index key secret accepted.
const MinKeyLen = 32

// ErrKey is wrapped by every Hasher construction failure.
var ErrKey = errors.New("identity: invalid index key")

// Key is one version of the hub's identifier index key: a secret kept
// outside the database (a file or a secret store), never logged.
type Key struct {
	Version uint32
	Secret  []byte
}

// Digest is an identifier's keyed hash (HMAC-SHA-256) under one key
// version: what the hub indexes identifiers by and what an erasure keeps.
// Without the key it reveals nothing, not even to a dictionary of
// e-mail addresses.
type Digest struct {
	Version uint32
	Sum     [sha256.Size]byte
}

// String renders d as "v<version>:<hex>", the form stored and compared.
func (d Digest) String() string {
	return "v" + strconv.FormatUint(uint64(d.Version), 10) + ":" + hex.EncodeToString(d.Sum[:])
}

// ParseDigest reads String's form.
func ParseDigest(s string) (Digest, error) {
	v, h, ok := strings.Cut(s, ":")
	if !ok || !strings.HasPrefix(v, "v") {
		return Digest{}, fmt.Errorf("identity: digest %q: want v<version>:<hex>", s)
	}
	n, err := strconv.ParseUint(v[1:], 10, 32)
	if err != nil {
		return Digest{}, fmt.Errorf("identity: digest version: %w", err)
	}
	var d Digest
	if len(h) != 2*len(d.Sum) {
		return Digest{}, fmt.Errorf("identity: digest of %d hex digits, want %d", len(h), 2*len(d.Sum))
	}
	if _, err := hex.Decode(d.Sum[:], []byte(h)); err != nil {
		return Digest{}, fmt.Errorf("identity: digest: %w", err)
	}
	d.Version = uint32(n)
	return d, nil
}

// Hasher computes identifiers' digests under the current key and any
// older version still needed. Rotation: add a new current key and keep
// the old ones; the hub re-indexes live identifiers under the new key
// (it can: their raw values are kept encrypted), but an erasure keeps
// only digests, so a key version stays as long as an erasure tombstone
// made under it does (erasure.Register.Versions says which). A Hasher is
// safe for concurrent use.
type Hasher struct {
	current uint32
	keys    map[uint32][]byte
}

// NewHasher returns a hasher whose new digests use current, and which can
// also compute digests under older.
func NewHasher(current Key, older ...Key) (*Hasher, error) {
	h := &Hasher{current: current.Version, keys: map[uint32][]byte{}}
	for _, k := range append([]Key{current}, older...) {
		if len(k.Secret) < MinKeyLen {
			return nil, fmt.Errorf("%w: version %d is %d bytes, at least %d", ErrKey, k.Version, len(k.Secret), MinKeyLen)
		}
		if _, dup := h.keys[k.Version]; dup {
			return nil, fmt.Errorf("%w: version %d given twice", ErrKey, k.Version)
		}
		h.keys[k.Version] = slices.Clone(k.Secret)
	}
	return h, nil
}

// Current returns the version new digests use.
func (h *Hasher) Current() uint32 { return h.current }

// Versions returns every key version the hasher holds, ascending.
func (h *Hasher) Versions() []uint32 {
	out := make([]uint32, 0, len(h.keys))
	for v := range h.keys {
		out = append(out, v)
	}
	slices.Sort(out)
	return out
}

// Digest returns id's digest under the current key.
func (h *Hasher) Digest(id Identifier) Digest {
	d, _ := h.DigestUnder(id, h.current)
	return d
}

// DigestUnder returns id's digest under key version v, false when the
// hasher does not hold v.
func (h *Hasher) DigestUnder(id Identifier, v uint32) (Digest, bool) {
	k, ok := h.keys[v]
	if !ok {
		return Digest{}, false
	}
	m := hmac.New(sha256.New, k)
	m.Write([]byte("omnisync identifier v1\x00"))
	m.Write([]byte(id.Type))
	m.Write([]byte{0})
	m.Write([]byte(id.Value))
	d := Digest{Version: v}
	m.Sum(d.Sum[:0])
	return d, true
}
