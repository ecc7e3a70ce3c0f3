package productcache

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/omnisync/omnisync/shared/cartcode"
	"github.com/omnisync/omnisync/shared/downsync"
)

func closedCart(id string, d downsync.ClosedCartDoc) Update {
	b, _ := json.Marshal(d)
	return Update{Key: downsync.Subject(downsync.ClosedCartKey(id)), Value: b}
}

// Ensure that a closed cart is found by its cart id (offline too, after a
// reopen), that an older version never replaces a newer one, that a
// document under another cart's key is refused, that a delete marker
// removes it, and that one whose delete the agent missed is dropped once
// it expires.
func TestApply_ClosedCarts(t *testing.T) {
	clk := newClock()
	o := testOptions(t)
	o.Now = clk.Now
	c := mustOpen(t, o)
	a, b, other := cartcode.NewCartID(), cartcode.NewCartID(), cartcode.NewCartID()
	closed := clk.Now().UnixMilli()
	doc := func(id string, version int64, where string) downsync.ClosedCartDoc {
		return downsync.ClosedCartDoc{Cart: downsync.CartDigest(id), State: downsync.ClosedCheckedOut, CartVersion: 4, Where: where,
			ClosedMS: closed, ExpiresMS: closed + downsync.ClosedCartRetention.Milliseconds(), Version: version}
	}
	if _, ok := c.ClosedCart(a); ok {
		t.Fatal("a cart closed before anything was applied")
	}
	misfiled := doc(other, 1, "S2")
	mustApply(t, c, 1, true, closedCart(a, doc(a, 2, "online")), closedCart(a, doc(a, 1, "S9")), closedCart(b, doc(b, 1, "S2")),
		closedCart(a+"x", misfiled))
	if d, ok := c.ClosedCart(a); !ok || d.Where != "online" || d.CartVersion != 4 {
		t.Fatalf("cart a: %+v %v", d, ok)
	}
	if _, ok := c.ClosedCart(other); ok {
		t.Fatal("a document filed under another cart's key was kept")
	}
	if st := c.Stats(); st.Rejected != 1 || st.Ignored != 1 {
		t.Fatalf("stats %+v", st)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	c = mustOpen(t, o)
	if _, ok := c.ClosedCart(b); !ok {
		t.Fatal("cart b forgotten by a reopen")
	}
	mustApply(t, c, 2, true, deleted(downsync.ClosedCartKey(b)))
	if _, ok := c.ClosedCart(b); ok {
		t.Fatal("cart b still closed after its delete")
	}
	// The hub's delete of a never reached this agent: it drops it once
	// expired, with the next batch it applies.
	clk.Add(downsync.ClosedCartRetention + pruneEvery + time.Minute)
	if _, ok := c.ClosedCart(a); !ok {
		t.Fatal("dropped before any apply")
	}
	mustApply(t, c, 3, true)
	if _, ok := c.ClosedCart(a); ok {
		t.Fatal("an expired closed cart kept")
	}
}
