package downsync

import (
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/omnisync/omnisync/shared/cartcode"
)

// cartKeyPrefix: the public keys that sign cart codes, one key per hub
// signing key (each replica may have its own), so a till verifies a
// shopper's cart code with its uplink down. Public keys are not secret:
// they go into Bucket, which every store reads.
const cartKeyPrefix = "key.cart."

// CartKeyKey is the key of the public key named id (cartcode.KeyID).
func CartKeyKey(id string) string { return cartKeyPrefix + Token(id) }

// CartKeyDoc is the value of CartKeyKey.
type CartKeyDoc struct {
	KeyID string `json:"key_id"`
	// PublicKey is the raw 32-byte Ed25519 public key (base64 in JSON).
	PublicKey []byte `json:"public_key"`
	CreatedMS int64  `json:"created_ms"`
}

// DecodeCartKey reads a CartKeyDoc and checks it: a 32-byte key whose id
// is the one named.
func DecodeCartKey(b []byte) (CartKeyDoc, error) {
	var d CartKeyDoc
	if err := json.Unmarshal(b, &d); err != nil {
		return d, fmt.Errorf("downsync: cart key: %w", err)
	}
	if len(d.PublicKey) != ed25519.PublicKeySize {
		return d, fmt.Errorf("downsync: cart key %s: %d bytes, not an Ed25519 public key", d.KeyID, len(d.PublicKey))
	}
	if id := cartcode.KeyID(d.PublicKey); id != d.KeyID {
		return d, fmt.Errorf("downsync: cart key %s: the key's id is %s", d.KeyID, id)
	}
	return d, nil
}

func parseCartKey(key string) (ParsedKey, bool, error) {
	rest, ok := strings.CutPrefix(key, cartKeyPrefix)
	if !ok {
		return ParsedKey{}, false, nil
	}
	id, err := ParseToken(rest)
	if err != nil {
		return ParsedKey{}, true, fmt.Errorf("%w: %q: %v", ErrKey, key, err)
	}
	return ParsedKey{Kind: KindCartKey, KeyID: id}, true, nil
}
