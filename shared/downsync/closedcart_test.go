package downsync

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/omnisync/omnisync/shared/cartcode"
)

// Ensure that a closed cart's key names the digest of the cart id (never
// the id), parses back, is in every agent's filters, and that documents
// that could not come from the hub are refused.
func TestClosedCart(t *testing.T) {
	id := cartcode.NewCartID()
	key := ClosedCartKey(id)
	if strings.Contains(key, id) || CartDigest(id) == CartDigest(cartcode.NewCartID()) {
		t.Fatalf("key %s", key)
	}
	k, err := ParseKey(Subject(key))
	if err != nil || k.Kind != KindClosedCart || k.CartDigest != CartDigest(id) || !IsClosedCartKey(Subject(key)) {
		t.Fatalf("ParseKey: %+v %v", k, err)
	}
	if IsClosedCartKey(CartKeyKey("ab12cd34")) || IsClosedCartKey(ProductKey("P1")) {
		t.Fatal("another key taken for a closed cart")
	}
	if _, err := ParseKey("cart.closed." + id); err == nil {
		t.Fatal("a key naming a cart id in clear parsed")
	}
	if !slices.Contains(Filters("S1"), Subject("cart.closed.>")) {
		t.Fatal("agents do not follow the closed carts")
	}
	good := ClosedCartDoc{Cart: CartDigest(id), State: ClosedCheckedOut, CartVersion: 3, Where: "online", ClosedMS: 1000, ExpiresMS: 2000, Version: 1}
	b, _ := json.Marshal(good)
	if d, err := DecodeClosedCart(b); err != nil || d != good {
		t.Fatalf("DecodeClosedCart: %+v %v", d, err)
	}
	for name, edit := range map[string]func(*ClosedCartDoc){
		"cart id in clear": func(d *ClosedCartDoc) { d.Cart = id },
		"no state":         func(d *ClosedCartDoc) { d.State = "" },
		"no time":          func(d *ClosedCartDoc) { d.ClosedMS = 0 },
		"expires first":    func(d *ClosedCartDoc) { d.ExpiresMS = 10 },
	} {
		d := good
		edit(&d)
		b, _ := json.Marshal(d)
		if _, err := DecodeClosedCart(b); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
