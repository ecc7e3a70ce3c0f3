package identity

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
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
	// One allocation: the hub writes one per identifier of every event.
	var buf [1 + 10 + 1 + 2*len(d.Sum)]byte
	b := append(buf[:0], 'v')
	b = strconv.AppendUint(b, uint64(d.Version), 10)
	b = append(b, ':')
	return string(hex.AppendEncode(b, d.Sum[:]))
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
	// bases holds, per key version, an HMAC that has taken the key and
	// the domain prefix; a digest clones it instead of keying a new HMAC
	// (half the cost: identify hashes every identifier of every event).
	// Never written after NewHasher, so concurrent clones are safe.
	bases map[uint32]hash.Hash
}

// digestPrefix separates identifier digests from any other use of the key.
const digestPrefix = "omnisync identifier v1\x00"

// NewHasher returns a hasher whose new digests use current, and which can
// also compute digests under older.
func NewHasher(current Key, older ...Key) (*Hasher, error) {
	h := &Hasher{current: current.Version, keys: map[uint32][]byte{}, bases: map[uint32]hash.Hash{}}
	for _, k := range append([]Key{current}, older...) {
		if len(k.Secret) < MinKeyLen {
			return nil, fmt.Errorf("%w: version %d is %d bytes, at least %d", ErrKey, k.Version, len(k.Secret), MinKeyLen)
		}
		if _, dup := h.keys[k.Version]; dup {
			return nil, fmt.Errorf("%w: version %d given twice", ErrKey, k.Version)
		}
		h.keys[k.Version] = slices.Clone(k.Secret)
		m := hmac.New(sha256.New, h.keys[k.Version])
		m.Write([]byte(digestPrefix))
		h.bases[k.Version] = m
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
	base, ok := h.bases[v]
	if !ok {
		return Digest{}, false
	}
	var m hash.Hash
	c, err := base.(hash.Cloner).Clone()
	if err == nil {
		m = c
	} else {
		// The standard library's HMAC over SHA-256 always clones; key a
		// new one should that ever change.
		m = hmac.New(sha256.New, h.keys[v])
		m.Write([]byte(digestPrefix))
	}
	// One write of type, zero byte and value (what three writes hash):
	// each write's bytes escape through the interface, one allocation.
	msg := make([]byte, 0, len(id.Type)+1+len(id.Value))
	msg = append(msg, id.Type...)
	msg = append(msg, 0)
	msg = append(msg, id.Value...)
	m.Write(msg)
	d := Digest{Version: v}
	m.Sum(d.Sum[:0])
	return d, true
}
