package downsync

import (
	"crypto/ed25519"
	"encoding/json"
	"testing"

	"github.com/omnisync/omnisync/shared/cartcode"
)

// Ensure that a cart key's key parses back, is in every agent's filters,
// and that a document whose key does not match its id is refused.
func TestCartKey(t *testing.T) {
	pub, _, _ := ed25519.GenerateKey(nil)
	id := cartcode.KeyID(pub)
	k, err := ParseKey(Subject(CartKeyKey(id)))
	if err != nil || k.Kind != KindCartKey || k.KeyID != id {
		t.Fatalf("ParseKey: %+v %v", k, err)
	}
	found := false
	for _, f := range Filters("S1") {
		found = found || f == Subject("key.cart.>")
	}
	if !found {
		t.Fatal("agents do not follow the cart keys")
	}
	good, _ := json.Marshal(CartKeyDoc{KeyID: id, PublicKey: pub})
	if d, err := DecodeCartKey(good); err != nil || !ed25519.PublicKey(d.PublicKey).Equal(pub) {
		t.Fatalf("DecodeCartKey: %v", err)
	}
	other, _, _ := ed25519.GenerateKey(nil)
	bad, _ := json.Marshal(CartKeyDoc{KeyID: id, PublicKey: other})
	if _, err := DecodeCartKey(bad); err == nil {
		t.Fatal("a key under another key's id accepted")
	}
}
