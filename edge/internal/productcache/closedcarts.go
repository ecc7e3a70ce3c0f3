package productcache

import (
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/omnisync/omnisync/shared/downsync"
)

// Closed carts (downsync.ClosedCartKey): the carts the hub knows were
// checked out, by the digest of their id, so a till refuses a code of a
// cart closed on the web or at another store. The hub deletes a key
// downsync.ClosedCartRetention after the cart closed; an agent that missed
// the delete (offline longer than the marker is kept) drops the document
// itself once it expires (pruneEvery).

// bucketClosedCarts: cart digest -> version (8 bytes) + ClosedCartDoc JSON.
// Made when the first one arrives (caches older than it lack it).
var bucketClosedCarts = []byte("closedcarts")

// pruneEvery is how often an Apply also drops the closed carts past their
// expiry.
const pruneEvery = time.Hour

// closedCart keeps (or forgets) a closed cart, the highest version seen.
func (w *writer) closedCart(digest string, u *Update) error {
	return w.versionedDoc(bucketClosedCarts, digest, u, func(v []byte) (string, int64, error) {
		d, err := downsync.DecodeClosedCart(v)
		return d.Cart, d.Version, err
	})
}

// pruneClosedCarts drops the closed carts whose expiry is past, at most
// once per pruneEvery.
func (c *Cache) pruneClosedCarts(tx *bolt.Tx) error {
	now := c.opts.Now()
	if last := c.pruned.Load(); last != 0 && now.Sub(time.Unix(0, last)) < pruneEvery {
		return nil
	}
	c.pruned.Store(now.UnixNano())
	b := tx.Bucket(bucketClosedCarts)
	if b == nil {
		return nil
	}
	var drop [][]byte
	err := b.ForEach(func(k, v []byte) error {
		if len(v) < 8 {
			drop = append(drop, append([]byte(nil), k...))
			return nil
		}
		d, err := downsync.DecodeClosedCart(v[8:])
		if err != nil || d.ExpiresMS < now.UnixMilli() {
			drop = append(drop, append([]byte(nil), k...))
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, k := range drop {
		if err := b.Delete(k); err != nil {
			return err
		}
	}
	return nil
}

// ClosedCart reports whether the hub has said cart id was checked out, and
// where and when (ok is false when the cache knows nothing of it, which
// is no proof it is open: the cache may be behind). Served from the cache,
// so a till offline refuses what it learnt before.
func (c *Cache) ClosedCart(cartID string) (doc downsync.ClosedCartDoc, ok bool) {
	_ = c.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketClosedCarts)
		if b == nil {
			return nil
		}
		raw := b.Get([]byte(downsync.CartDigest(cartID)))
		if len(raw) < 8 {
			return nil
		}
		d, err := downsync.DecodeClosedCart(raw[8:])
		if err != nil {
			return nil
		}
		doc, ok = d, true
		return nil
	})
	return doc, ok
}
