package productcache

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/omnisync/omnisync/shared/downsync"
	"github.com/omnisync/omnisync/shared/gs1"
)

// fillPercent is how full bbolt fills a page before splitting it. The
// hub publishes a bootstrap mostly in key order, and later changes rewrite
// keys in place, so pages are filled well above bbolt's default half
// (BenchmarkApplyBootstrap: 100k variants with stock of 3 locations take
// 49 MiB instead of 88).
const fillPercent = 0.9

// errBadID rejects a message whose id cannot be a bbolt key; errOtherID
// one whose document names another product, SKU or location than its key
// (a document under the wrong key would move another product's index
// entries to it).
var (
	errBadID   = errors.New("empty or over-long id")
	errOtherID = errors.New("the document is not its key's")
)

// Update is one message of the down-sync bucket: a key's new value, or its
// removal.
type Update struct {
	// Key is the bucket key (downsync.ProductKey, ReviewKey, StockKey or
	// TickKey) or its subject.
	Key string
	// Value is the document as the hub published it (JSON). Ignored when
	// Deleted.
	Value []byte
	// Deleted is set for a KV delete or purge marker (header KV-Operation
	// DEL or PURGE): the key is removed from the cache.
	Deleted bool
}

// Apply writes batch, in order, and lastSeq, the stream sequence of its last
// message, in one fsync'd transaction: after a crash the cache holds either
// all of it or none of it, and Stats().LastSeq says which. A lastSeq below
// the one held leaves it (a catch-up of MissingLocations passes 0).
// caughtUp says the batch ends with the last message the stream had
// pending: synced_at becomes now (an empty batch may be applied just for
// that).
//
// What each message does:
//   - a product replaces the one held unless its Version is lower, and
//     moves the SKU and GTIN indexes from the old variants to the new ones
//     (an index entry another product has claimed since is left alone);
//   - a review summary or stock position replaces the one held unless its
//     Version is lower; stock of a location not in Locations is skipped;
//   - a tick records the hub's time;
//   - a delete or purge marker removes the key (and a product's index
//     entries).
//
// A message whose key or document cannot be read, or whose document names
// another product, SKU or location than its key, is skipped and counted
// (Stats().Rejected) rather than failing the batch: one bad document must
// not stop the store's down-sync. Apply returns an error only when the
// transaction fails, and then nothing of the batch is applied.
func (c *Cache) Apply(ctx context.Context, batch []Update, lastSeq uint64, caughtUp bool) error {
	return c.apply(ctx, batch, func(st *state) {
		st.lastSeq = max(st.lastSeq, lastSeq)
		if st.lastSeq > 0 {
			st.boot = bootstrap{} // following the stream now
		}
		if caughtUp {
			st.syncedAt = c.opts.Now()
		}
	})
}

// ApplyPass applies a batch of a bootstrap: an empty cache's first reading
// of the stream, one subject filter at a time (one of
// downsync.Filters(Locations()...)), up to sequence upTo. In the same
// transaction it records that filter has been read up to seq, so a
// bootstrap interrupted by a crash resumes exactly there
// (Stats().BootstrapUpTo and BootstrapRead). The Apply that sets the
// cache's sequence, to upTo once every filter is read, ends the bootstrap.
//
// Why filter by filter: the keys of different filters are disjoint, so
// each key's messages are still applied in order; and JetStream reads a
// single filter from the start of a long-lived bucket (with many deleted
// revisions) many times faster than several filters at once.
func (c *Cache) ApplyPass(ctx context.Context, batch []Update, upTo uint64, filter string, seq uint64) error {
	return c.apply(ctx, batch, func(st *state) {
		if st.boot.Read == nil || st.boot.UpTo != upTo {
			st.boot = bootstrap{UpTo: upTo, Read: map[string]uint64{}}
		}
		st.boot.Read[filter] = max(st.boot.Read[filter], seq)
	})
}

// apply writes batch and then lets mark update the state, in one
// transaction.
func (c *Cache) apply(ctx context.Context, batch []Update, mark func(st *state)) error {
	var res applyResult
	err := c.update(ctx, func(tx *bolt.Tx, st *state) error {
		res = applyResult{}
		w := &writer{
			c: c, tx: tx, st: st, res: &res,
			products: tx.Bucket(bucketProducts), gtins: tx.Bucket(bucketGTINs), skus: tx.Bucket(bucketSKUs),
			stock: tx.Bucket(bucketStock), reviews: tx.Bucket(bucketReviews), recsB: tx.Bucket(bucketRecs),
		}
		for _, b := range []*bolt.Bucket{w.products, w.gtins, w.skus, w.stock, w.reviews} {
			b.FillPercent = fillPercent
		}
		for i := range batch {
			if err := w.apply(&batch[i]); err != nil {
				return err
			}
		}
		mark(st)
		return c.pruneClosedCarts(tx)
	})
	if err != nil {
		return err
	}
	c.applied.Add(res.applied)
	c.ignored.Add(res.ignored)
	c.rejected.Add(res.rejected)
	return nil
}

type applyResult struct {
	applied, ignored, rejected uint64
}

// writer applies messages inside one write transaction.
type writer struct {
	c                                     *Cache
	tx                                    *bolt.Tx
	st                                    *state
	res                                   *applyResult
	products, gtins, skus, stock, reviews *bolt.Bucket
	recsB                                 *bolt.Bucket
	oldVariants                           struct{ Variants []variantKeys }
	keyBuf                                []byte
}

// variantKeys is what the indexes need of a variant.
type variantKeys struct {
	SKU   string   `json:"sku"`
	GTINs []string `json:"gtins"`
}

func (w *writer) apply(u *Update) error {
	k, err := downsync.ParseKey(u.Key)
	if err != nil {
		w.reject(u.Key, err)
		return nil
	}
	switch k.Kind {
	case downsync.KindProduct:
		return w.product(k.ProductID, u)
	case downsync.KindReview:
		return w.review(k.ProductID, u)
	case downsync.KindRecs:
		return w.recs(k.ProductID, u)
	case downsync.KindStock:
		if !w.c.inScope[k.Location] {
			// The down-sync filters these out; a caller that did not is
			// not an error.
			return nil
		}
		return w.stockPosition(k.Location, k.SKU, u)
	case downsync.KindCartKey:
		return w.cartKey(k.KeyID, u)
	case downsync.KindSurvey:
		return w.survey(k.SurveyID, u)
	case downsync.KindClosedCart:
		return w.closedCart(k.CartDigest, u)
	case downsync.KindTick:
		if u.Deleted {
			return nil
		}
		var t downsync.Tick
		if err := decodeDoc(u.Value, &t); err != nil {
			w.reject(u.Key, err)
			return nil
		}
		if t.AtMS > 0 {
			w.st.tickAt = time.UnixMilli(t.AtMS)
		}
		w.res.applied++
	}
	return nil
}

func (w *writer) reject(key string, err error) {
	w.res.rejected++
	w.c.log.Warn("down-sync message skipped: cannot read it", "key", key, "err", err)
}

// usableKey reports whether k can be a bbolt key.
func usableKey(k string) bool { return k != "" && len(k) <= bolt.MaxKeySize-16 }

func (w *writer) product(id string, u *Update) error {
	if !usableKey(id) {
		w.reject(u.Key, errBadID)
		return nil
	}
	key := []byte(id)
	old := w.products.Get(key)
	var doc downsync.ProductDoc
	if u.Deleted {
		if old == nil {
			return nil
		}
	} else {
		if err := decodeDoc(u.Value, &doc); err != nil {
			w.reject(u.Key, err)
			return nil
		}
		if doc.ID != "" && doc.ID != id {
			w.reject(u.Key, errOtherID)
			return nil
		}
		if old != nil && doc.Version < versionOf(old) {
			w.res.ignored++
			return nil
		}
	}
	if old != nil {
		if err := w.unindex(id, old); err != nil {
			return err
		}
	}
	w.res.applied++
	if u.Deleted {
		w.st.n.products--
		return w.products.Delete(key)
	}
	if old == nil {
		w.st.n.products++
	}
	if err := w.products.Put(key, versioned(doc.Version, u.Value)); err != nil {
		return err
	}
	return w.index(id, doc.Variants)
}

// unindex removes the SKU and GTIN index entries of the product stored as
// old that still point to it.
func (w *writer) unindex(id string, old []byte) error {
	w.oldVariants.Variants = w.oldVariants.Variants[:0]
	if err := json.Unmarshal(old[8:], &w.oldVariants); err != nil {
		// Written by Apply, so readable; if not, its entries stay until
		// another product claims them.
		w.c.log.Warn("cached product unreadable", "product", id, "err", err)
		return nil
	}
	for _, v := range w.oldVariants.Variants {
		if v.SKU != "" {
			if p := w.skus.Get([]byte(v.SKU)); p != nil && string(p) == id {
				if err := w.skus.Delete([]byte(v.SKU)); err != nil {
					return err
				}
				w.st.n.skus--
			}
		}
		for _, g := range v.GTINs {
			g14, err := gs1.NormalizeGTIN(g)
			if err != nil {
				continue
			}
			if ref := w.gtins.Get([]byte(g14)); ref != nil {
				if pid, _ := splitRef(ref); pid == id {
					if err := w.gtins.Delete([]byte(g14)); err != nil {
						return err
					}
					w.st.n.gtins--
				}
			}
		}
	}
	return nil
}

// index points the SKUs and GTINs of variants at product id; a SKU or GTIN
// another product held moves to this one (the newest document wins).
func (w *writer) index(id string, variants []downsync.VariantDoc) error {
	for _, v := range variants {
		if !usableKey(v.SKU) {
			continue
		}
		if w.skus.Get([]byte(v.SKU)) == nil {
			w.st.n.skus++
		}
		if err := w.skus.Put([]byte(v.SKU), []byte(id)); err != nil {
			return err
		}
		for _, g := range v.GTINs {
			g14, err := gs1.NormalizeGTIN(g)
			if err != nil {
				w.c.log.Debug("product variant with an invalid GTIN: not indexed", "product", id, "sku", v.SKU, "gtin", g, "err", err)
				continue
			}
			if w.gtins.Get([]byte(g14)) == nil {
				w.st.n.gtins++
			}
			ref := make([]byte, 0, len(id)+1+len(v.SKU))
			ref = append(append(append(ref, id...), 0), v.SKU...)
			if err := w.gtins.Put([]byte(g14), ref); err != nil {
				return err
			}
		}
	}
	return nil
}

func (w *writer) review(id string, u *Update) error {
	if !usableKey(id) {
		w.reject(u.Key, errBadID)
		return nil
	}
	key := []byte(id)
	old := w.reviews.Get(key)
	if u.Deleted {
		if old != nil {
			w.res.applied++
			w.st.n.reviews--
			return w.reviews.Delete(key)
		}
		return nil
	}
	var doc struct {
		ProductID string `json:"product_id"`
		Version   int64  `json:"version"`
	}
	if err := decodeDoc(u.Value, &doc); err != nil {
		w.reject(u.Key, err)
		return nil
	}
	if doc.ProductID != "" && doc.ProductID != id {
		w.reject(u.Key, errOtherID)
		return nil
	}
	if old != nil && doc.Version < versionOf(old) {
		w.res.ignored++
		return nil
	}
	if old == nil {
		w.st.n.reviews++
	}
	w.res.applied++
	return w.reviews.Put(key, versioned(doc.Version, u.Value))
}

// recs keeps a product's complements, the newest version winning.
func (w *writer) recs(id string, u *Update) error {
	if !usableKey(id) {
		w.reject(u.Key, errBadID)
		return nil
	}
	key := []byte(id)
	old := w.recsB.Get(key)
	if u.Deleted {
		if old != nil {
			w.res.applied++
			return w.recsB.Delete(key)
		}
		return nil
	}
	var doc downsync.RecsDoc
	if err := decodeDoc(u.Value, &doc); err != nil {
		w.reject(u.Key, err)
		return nil
	}
	if doc.ProductID != "" && doc.ProductID != id {
		w.reject(u.Key, errOtherID)
		return nil
	}
	if old != nil && doc.Version < versionOf(old) {
		w.res.ignored++
		return nil
	}
	w.res.applied++
	return w.recsB.Put(key, versioned(doc.Version, u.Value))
}

func (w *writer) stockPosition(location, sku string, u *Update) error {
	w.keyBuf = appendStockKey(w.keyBuf[:0], location, sku)
	key := w.keyBuf
	if location == "" || sku == "" || len(key) > bolt.MaxKeySize {
		// Each part may be short enough and the two together not: bbolt
		// would fail the whole batch, and the down-sync would retry it
		// forever.
		w.reject(u.Key, errBadID)
		return nil
	}
	old := w.stock.Get(key)
	if u.Deleted {
		if old != nil {
			w.res.applied++
			w.st.n.stock--
			return w.stock.Delete(key)
		}
		return nil
	}
	var d downsync.StockDoc
	if err := decodeDoc(u.Value, &d); err != nil {
		w.reject(u.Key, err)
		return nil
	}
	if (d.Location != "" && d.Location != location) || (d.SKU != "" && d.SKU != sku) {
		w.reject(u.Key, errOtherID)
		return nil
	}
	if old != nil {
		if od, ok := decodeStock(old); ok && d.Version < od.Version {
			w.res.ignored++
			return nil
		}
	}
	if old == nil {
		w.st.n.stock++
	}
	w.res.applied++
	// bbolt keeps the key slice until the transaction commits.
	return w.stock.Put(append([]byte(nil), key...), encodeStock(d))
}

// errNotObject rejects a document that is not a JSON object ("null"
// would decode to an empty document and be stored).
var errNotObject = errors.New("not a JSON object")

// decodeDoc decodes a published document, which is always a JSON object.
func decodeDoc(data []byte, v any) error {
	if b := bytes.TrimLeft(data, " \t\r\n"); len(b) == 0 || b[0] != '{' {
		return errNotObject
	}
	return json.Unmarshal(data, v)
}

// versioned prefixes a document with its version, so that Apply can
// compare versions without decoding what it holds.
func versioned(version int64, doc []byte) []byte {
	out := make([]byte, 8, 8+len(doc))
	binary.BigEndian.PutUint64(out, uint64(version))
	return append(out, doc...)
}

func versionOf(v []byte) int64 {
	if len(v) < 8 {
		return 0
	}
	return int64(binary.BigEndian.Uint64(v))
}

// stockPrefix is the key prefix of one location's positions: its length
// as a uvarint, then the location, so no location is a prefix of another.
func stockPrefix(location string) []byte {
	return append(binary.AppendUvarint(nil, uint64(len(location))), location...)
}

func appendStockKey(dst []byte, location, sku string) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(location)))
	return append(append(dst, location...), sku...)
}

// encodeStock stores what a view shows of a position, as varints: version,
// on hand, reserved, available, updated (ms). The key holds location and
// SKU.
func encodeStock(d downsync.StockDoc) []byte {
	b := make([]byte, 0, 5*binary.MaxVarintLen64)
	for _, v := range []int64{d.Version, d.OnHand, d.Reserved, d.Available, d.UpdatedMS} {
		b = binary.AppendVarint(b, v)
	}
	return b
}

func decodeStock(b []byte) (downsync.StockDoc, bool) {
	var f [5]int64
	for i := range f {
		v, n := binary.Varint(b)
		if n <= 0 {
			return downsync.StockDoc{}, false
		}
		f[i], b = v, b[n:]
	}
	return downsync.StockDoc{Version: f[0], OnHand: f[1], Reserved: f[2], Available: f[3], UpdatedMS: f[4]}, true
}

// splitRef splits a GTIN index value into product id and SKU.
func splitRef(ref []byte) (id, sku string) {
	for i, c := range ref {
		if c == 0 {
			return string(ref[:i]), string(ref[i+1:])
		}
	}
	return string(ref), ""
}

// survey keeps (or forgets) one of HQ's survey definitions, the highest
// version seen.
func (w *writer) survey(id string, u *Update) error {
	if !usableKey(id) {
		w.reject(u.Key, errBadID)
		return nil
	}
	return w.versionedDoc(bucketSurveys, id, u, func(v []byte) (string, int64, error) {
		d, err := downsync.DecodeSurvey(v)
		return d.ID, d.Version, err
	})
}

// versionedDoc keeps (or forgets) the document of id in bucket, the
// highest version seen: decode reads a value's own id (which must be id)
// and version.
func (w *writer) versionedDoc(bucket []byte, id string, u *Update, decode func([]byte) (string, int64, error)) error {
	b, err := w.tx.CreateBucketIfNotExists(bucket)
	if err != nil {
		return err
	}
	old := b.Get([]byte(id))
	if u.Deleted {
		if old != nil {
			w.res.applied++
			return b.Delete([]byte(id))
		}
		return nil
	}
	own, version, err := decode(u.Value)
	if err == nil && own != id {
		err = errOtherID
	}
	if err != nil {
		w.reject(u.Key, err)
		return nil
	}
	if old != nil && version < versionOf(old) {
		w.res.ignored++
		return nil
	}
	w.res.applied++
	return b.Put([]byte(id), versioned(version, u.Value))
}

// cartKey keeps (or forgets) a public key of cart codes.
func (w *writer) cartKey(id string, u *Update) error {
	b, err := w.tx.CreateBucketIfNotExists(bucketCartKeys)
	if err != nil {
		return err
	}
	if u.Deleted {
		if b.Get([]byte(id)) != nil {
			w.res.applied++
		}
		return b.Delete([]byte(id))
	}
	d, err := downsync.DecodeCartKey(u.Value)
	if err == nil && d.KeyID != id {
		err = errOtherID
	}
	if err != nil || !usableKey(id) {
		w.reject(u.Key, errors.Join(err, errBadID))
		return nil
	}
	w.res.applied++
	return b.Put([]byte(id), u.Value)
}
