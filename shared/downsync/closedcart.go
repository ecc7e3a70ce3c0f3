package downsync

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// closedCartPrefix: the carts the hub knows are checked out, one key per
// cart, so a till refuses a shopper's code of a cart checked out on the
// web or at another store's till instead of selling it again. A closed
// cart names no one (no customer, no lines): it goes into Bucket, which
// every store reads.
//
// The key is not the cart id but its digest (CartDigest): a cart id is the
// capability of the shopper's phone page, and the bucket every store reads
// must never be a list of them. A till digests the ids a code carries and
// looks them up.
const closedCartPrefix = "cart.closed."

// ClosedCartRetention is how long the hub keeps a closed cart in the
// bucket after its closing checkout. It must exceed the age of the oldest
// code a till accepts (storecart's MaxAge, 24h by default, which is also
// the hub's code lifetime): every code a till accepts was signed before
// its cart closed, so a cart closed longer ago than the retention can
// only be named by a code the till refuses as too old anyway. A till
// refuses a code older than the retention whatever its MaxAge says (see
// storecart), since it could no longer tell whether the cart closed.
const ClosedCartRetention = 48 * time.Hour

// ClosedCheckedOut is the one state of a closed cart today: checked out
// (a sale at a till or an online order).
const ClosedCheckedOut = "checked_out"

// cartDigestContext separates cart digests from any other use of SHA-256
// over a cart id.
const cartDigestContext = "omnisync closed cart v1\x00"

// CartDigest is the key token of a cart id: the hex of the first 16 bytes
// of SHA-256 over a context string and the id.
func CartDigest(cartID string) string {
	h := sha256.Sum256([]byte(cartDigestContext + cartID))
	return hex.EncodeToString(h[:16])
}

// ClosedCartKey is the key of cart id's closed-cart document.
func ClosedCartKey(cartID string) string { return closedCartPrefix + CartDigest(cartID) }

// ClosedCartDoc is the value of ClosedCartKey: that a cart was checked
// out, where and when.
type ClosedCartDoc struct {
	// Cart is CartDigest of the cart's id.
	Cart  string `json:"cart"`
	State string `json:"state"`
	// CartVersion is the cart version the closing checkout named (the
	// snapshot that was sold).
	CartVersion int64 `json:"cart_version"`
	// Where is the store whose checkout closed it (the online channel's
	// location for a web order, and then Online is set).
	Where  string `json:"where"`
	Online bool   `json:"online,omitempty"`
	// ClosedMS is the wall time of the closing checkout; ExpiresMS when
	// the hub drops the document (ClosedMS + ClosedCartRetention): an
	// agent that missed the delete drops it then itself.
	ClosedMS  int64 `json:"closed_ms"`
	ExpiresMS int64 `json:"expires_ms"`
	// Version grows with every checkout of the cart the hub records (a
	// checkout with an earlier stamp arriving late may change which one
	// closed the cart).
	Version int64 `json:"version"`
}

// DecodeClosedCart reads a ClosedCartDoc and checks it: a digest, a state,
// a closing time.
func DecodeClosedCart(b []byte) (ClosedCartDoc, error) {
	var d ClosedCartDoc
	if err := json.Unmarshal(b, &d); err != nil {
		return d, fmt.Errorf("downsync: closed cart: %w", err)
	}
	if !isDigest(d.Cart) {
		return d, fmt.Errorf("downsync: closed cart %q: not a cart digest", d.Cart)
	}
	if d.State == "" || d.ClosedMS <= 0 || d.ExpiresMS < d.ClosedMS {
		return d, fmt.Errorf("downsync: closed cart %s: no state or closing time", d.Cart)
	}
	return d, nil
}

func isDigest(s string) bool {
	if len(s) != 32 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

func parseClosedCartKey(key string) (ParsedKey, bool, error) {
	rest, ok := strings.CutPrefix(key, closedCartPrefix)
	if !ok {
		return ParsedKey{}, false, nil
	}
	if !isDigest(rest) {
		return ParsedKey{}, true, fmt.Errorf("%w: %q: not a cart digest", ErrKey, key)
	}
	return ParsedKey{Kind: KindClosedCart, CartDigest: rest}, true, nil
}

// IsClosedCartKey reports whether key (or its subject) is a closed cart's.
func IsClosedCartKey(key string) bool {
	return strings.HasPrefix(strings.TrimPrefix(key, SubjectPrefix), closedCartPrefix)
}
