package productcache

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"fmt"

	bolt "go.etcd.io/bbolt"

	"github.com/omnisync/omnisync/shared/cartcode"
	"github.com/omnisync/omnisync/shared/downsync"
	"github.com/omnisync/omnisync/shared/gs1"
)

// Lookup answers what a shopper scanned or typed (see downsync.ParseCode):
// an exact SKU first, then the GTIN the code carries. The view shows every
// variant of the product with its stock here, in the nearby stores and
// online; AsOf is when the cache was last known to be caught up with the
// hub, and Stale is set when that is longer ago than Options.StaleAfter (or
// never).
//
// Errors: one wrapping downsync.ErrInvalidCode for a code that looks like
// a GS1 code or an EPC but is not a valid one (and is no known SKU either);
// one wrapping downsync.ErrNotFound for a valid code the catalog does not
// know; ErrClosed after Close.
func (c *Cache) Lookup(ctx context.Context, code string) (downsync.View, error) {
	if err := ctx.Err(); err != nil {
		return downsync.View{}, err
	}
	pc := downsync.ParseCode(code)
	var v downsync.View
	err := c.db.View(func(tx *bolt.Tx) error {
		var (
			m        downsync.Match
			id, sku  string
			products = tx.Bucket(bucketProducts)
		)
		if pc.SKU != "" {
			if p := tx.Bucket(bucketSKUs).Get([]byte(pc.SKU)); p != nil {
				id, sku = string(p), pc.SKU
				m = downsync.Match{By: downsync.BySKU, SKU: sku}
			}
		}
		if id == "" {
			switch {
			case pc.Err != nil:
				return pc.Err
			case pc.GTIN.GTIN == "":
				return fmt.Errorf("%w: %q", downsync.ErrNotFound, code)
			}
			ref := tx.Bucket(bucketGTINs).Get([]byte(pc.GTIN.GTIN))
			if ref == nil {
				return fmt.Errorf("%w: GTIN %s", downsync.ErrNotFound, pc.GTIN.GTIN)
			}
			id, sku = splitRef(ref)
			m = pc.GTIN
			m.SKU = sku
		}
		raw := products.Get([]byte(id))
		if len(raw) < 8 {
			return fmt.Errorf("%w: product %q of %q is not in the cache", downsync.ErrNotFound, id, code)
		}
		var p downsync.ProductDoc
		if err := json.Unmarshal(raw[8:], &p); err != nil {
			return fmt.Errorf("productcache: product %q: %w", id, err)
		}
		if p.ID == "" {
			p.ID = id
		}
		var rev downsync.ReviewSummary
		if r := tx.Bucket(bucketReviews).Get([]byte(id)); len(r) >= 8 {
			if err := json.Unmarshal(r[8:], &rev); err != nil {
				c.log.Warn("cached review summary unreadable", "product", id, "err", err)
				rev = downsync.ReviewSummary{}
			}
		}
		stock := tx.Bucket(bucketStock)
		var key []byte
		v = downsync.NewView(code, m, p, sku, rev, c.opts.Store, c.opts.Nearby, c.opts.Online,
			func(location, sku string) (downsync.StockDoc, bool) {
				key = appendStockKey(key[:0], location, sku)
				b := stock.Get(key)
				if b == nil {
					return downsync.StockDoc{}, false
				}
				d, ok := decodeStock(b)
				d.Location, d.SKU = location, sku
				return d, ok
			})
		v.AsOf = fromUnixNano(int64(getU64(tx.Bucket(bucketMeta), keySyncedAt)))
		return nil
	})
	if err != nil {
		return downsync.View{}, closedErr(err)
	}
	v.Stale = v.AsOf.IsZero() || c.opts.Now().Sub(v.AsOf) > c.opts.StaleAfter
	return v, nil
}

// Variant returns the product and the variant a GTIN (8, 12, 13 or 14
// digits) names, reading neither stock nor reviews: what a scan or an RFID
// read is labelled with. ok is false for a GTIN the catalog does not know,
// one that is not valid, and after Close.
func (c *Cache) Variant(gtin string) (p downsync.ProductDoc, v downsync.VariantDoc, ok bool) {
	g14, err := gs1.NormalizeGTIN(gtin)
	if err != nil {
		return p, v, false
	}
	_ = c.db.View(func(tx *bolt.Tx) error {
		ref := tx.Bucket(bucketGTINs).Get([]byte(g14))
		if ref == nil {
			return nil
		}
		id, sku := splitRef(ref)
		raw := tx.Bucket(bucketProducts).Get([]byte(id))
		if len(raw) < 8 || json.Unmarshal(raw[8:], &p) != nil {
			return nil
		}
		for _, vd := range p.Variants {
			if vd.SKU == sku {
				v, ok = vd, true
			}
		}
		if p.ID == "" {
			p.ID = id
		}
		return nil
	})
	return p, v, ok
}

// CartKeys returns the public keys of cart codes the hub has published,
// by key id: what a till verifies a shopper's cart code with, offline too.
func (c *Cache) CartKeys() cartcode.Keys {
	keys := cartcode.Keys{}
	_ = c.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketCartKeys)
		if b == nil {
			return nil
		}
		return b.ForEach(func(k, v []byte) error {
			if d, err := downsync.DecodeCartKey(v); err == nil {
				keys[string(k)] = ed25519.PublicKey(d.PublicKey)
			}
			return nil
		})
	})
	return keys
}

// Survey returns the active survey HQ asks stores to offer where offer
// says (downsync.OfferPostPurchase, OfferFittingRoom): of several, the
// most recently changed. ok is false when there is none. Served from the
// cache, so a store offline offers the last definition it received.
func (c *Cache) Survey(offer string) (doc downsync.SurveyDoc, ok bool) {
	_ = c.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketSurveys)
		if b == nil {
			return nil
		}
		return b.ForEach(func(_, v []byte) error {
			if len(v) < 8 {
				return nil
			}
			d, err := downsync.DecodeSurvey(v[8:])
			if err != nil || !d.Active || d.Offer != offer {
				return nil
			}
			if !ok || d.Version > doc.Version || (d.Version == doc.Version && d.ID > doc.ID) {
				doc, ok = d, true
			}
			return nil
		})
	})
	return doc, ok
}

// Complements returns the last published complements of a product (ok is
// false when none were published, or after Close). They are served from
// the cache, so a store offline keeps suggesting from the last lists.
func (c *Cache) Complements(productID string) (doc downsync.RecsDoc, ok bool) {
	_ = c.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketRecs)
		if b == nil {
			return nil
		}
		raw := b.Get([]byte(productID))
		if len(raw) < 8 || json.Unmarshal(raw[8:], &doc) != nil {
			return nil
		}
		ok = true
		return nil
	})
	return doc, ok
}

// Product returns a product by id, without stock or reviews (ok is false
// for an unknown id, or after Close).
func (c *Cache) Product(productID string) (p downsync.ProductDoc, ok bool) {
	_ = c.db.View(func(tx *bolt.Tx) error {
		raw := tx.Bucket(bucketProducts).Get([]byte(productID))
		if len(raw) < 8 || json.Unmarshal(raw[8:], &p) != nil {
			return nil
		}
		if p.ID == "" {
			p.ID = productID
		}
		ok = true
		return nil
	})
	return p, ok
}
