package productcache

import (
	"context"
	"encoding/json"
	"maps"
	"slices"
	"strings"
	"testing"

	bolt "go.etcd.io/bbolt"

	"github.com/omnisync/omnisync/edge/internal/productcache/cachetest"
	"github.com/omnisync/omnisync/shared/downsync"
	"github.com/omnisync/omnisync/shared/gs1"
)

// fuzzOnline is the fuzzed cache's online location: as long as a location
// may be, so that stock keys reach bbolt's limits.
const fuzzOnline = "online-warehouse-of-a-chain-with-a-location-name-as-long-as-allow"

// fuzzBase is what the fuzzed cache holds before each message: two
// products, a review summary, stock here and online, a tick.
func fuzzBase() []Update {
	p1, p2 := cachetest.ProductDoc(1, 3), cachetest.ProductDoc(2, 1)
	return []Update{
		product(p1), product(p2),
		review(cachetest.ReviewSummary(1, 2)),
		stock(cachetest.StockDoc("S1", cachetest.SKU(1, 0), 4, 7)),
		stock(cachetest.StockDoc(fuzzOnline, cachetest.SKU(2, 1), 12, 2)),
		{Key: downsync.TickKey, Value: cachetest.JSON(downsync.Tick{AtMS: 1_700_000_000_000, Hub: "hub-1"})},
	}
}

// FuzzApply feeds Apply one message of a hostile bucket, on top of a cache
// holding real documents: whatever the key and the document, Apply must
// not fail the batch (one bad document must not stop a store's down-sync)
// or panic; a message it rejects or ignores changes nothing; one it applies
// changes only its own key (and a product's index entries); the counts
// match the buckets, every index entry names a product that lists it,
// every product answers a lookup, and the same message again changes
// nothing.
func FuzzApply(f *testing.F) {
	for _, u := range fuzzBase() {
		f.Add(u.Key, u.Value, false)
	}
	for _, u := range fuzzBase() {
		f.Add(u.Key, []byte(nil), true)
	}
	f.Add(downsync.ProductKey(cachetest.Product(1)), cachetest.JSON(cachetest.ProductDoc(1, 2)), false) // older
	f.Add("$KV.omni_down.p.P-000009", []byte(`{"id":"P-000009","version":1,"variants":[{"sku":"P-000001-S","gtins":["4006381333931"]}]}`), false)
	f.Add(downsync.ProductKey("P-000003"), []byte(`null`), false)
	f.Add(downsync.StockKey("S2", "X"), []byte(`{"version":"1"}`), false)
	f.Add(downsync.ReviewKey("P-000001"), []byte(`{"version":9,"count":-1}`), false)
	// Documents under another key than their own.
	f.Add(downsync.ProductKey(cachetest.Product(2)), cachetest.JSON(cachetest.ProductDoc(1, 9)), false)
	f.Add(downsync.ReviewKey(cachetest.Product(2)), cachetest.JSON(cachetest.ReviewSummary(1, 9)), false)
	f.Add(downsync.StockKey("S1", cachetest.SKU(2, 0)), cachetest.JSON(cachetest.StockDoc("S1", cachetest.SKU(1, 0), 3, 9)), false)
	// A SKU as long as a bbolt key may be, at the longest location.
	f.Add(downsync.StockKey(fuzzOnline, strings.Repeat("S", bolt.MaxKeySize-16)), cachetest.JSON(cachetest.StockDoc(fuzzOnline, "S", 1, 1)), false)

	opts := testOptions(f)
	opts.Online = fuzzOnline
	c, err := Open(opts)
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { c.Close() })
	c.db.NoSync = true // a cache is rebuilt after a crash anyway; here, speed
	ctx := context.Background()

	f.Fuzz(func(t *testing.T, key string, value []byte, deleted bool) {
		if err := c.Reset(ctx); err != nil {
			t.Fatal(err)
		}
		if err := c.Apply(ctx, fuzzBase(), 10, true); err != nil {
			t.Fatal(err)
		}
		before, st0 := dumpCache(t, c), c.Stats()
		u := Update{Key: key, Value: value, Deleted: deleted}
		if err := c.Apply(ctx, []Update{u}, 0, false); err != nil {
			t.Fatalf("one message failed the batch: %v", err)
		}
		after, st1 := dumpCache(t, c), c.Stats()
		if st1.Rejected > st0.Rejected || st1.Ignored > st0.Ignored {
			if !maps.EqualFunc(before, after, maps.Equal) {
				t.Fatalf("a rejected or ignored message changed the cache")
			}
		} else {
			checkOnlyItsKey(t, key, before, after)
		}
		checkCounts(t, c)
		checkIndexes(t, c, after)
		if err := c.Apply(ctx, []Update{u}, 0, false); err != nil {
			t.Fatalf("the message again: %v", err)
		}
		if again := dumpCache(t, c); !maps.EqualFunc(after, again, maps.Equal) {
			t.Fatal("the same message applied twice changed the cache twice")
		}
	})
}

// dumpCache reads every data bucket.
func dumpCache(t *testing.T, c *Cache) map[string]map[string]string {
	t.Helper()
	out := map[string]map[string]string{}
	err := c.db.View(func(tx *bolt.Tx) error {
		for _, name := range dataBuckets {
			m := map[string]string{}
			err := tx.Bucket(name).ForEach(func(k, v []byte) error {
				m[string(k)] = string(v)
				return nil
			})
			if err != nil {
				return err
			}
			out[string(name)] = m
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// checkOnlyItsKey fails when an applied message changed another document
// than its key's (a product also moves index entries).
func checkOnlyItsKey(t *testing.T, key string, before, after map[string]map[string]string) {
	t.Helper()
	k, err := downsync.ParseKey(key)
	if err != nil {
		t.Fatalf("a message with a bad key %q was not rejected", key)
	}
	own := map[string]string{} // bucket -> its key
	switch k.Kind {
	case downsync.KindProduct:
		own[string(bucketProducts)] = k.ProductID
	case downsync.KindReview:
		own[string(bucketReviews)] = k.ProductID
	case downsync.KindStock:
		own[string(bucketStock)] = string(appendStockKey(nil, k.Location, k.SKU))
	}
	for name, b := range before {
		a := after[name]
		if k.Kind == downsync.KindProduct && (name == string(bucketSKUs) || name == string(bucketGTINs)) {
			continue
		}
		for key := range mapsUnion(a, b) {
			if a[key] != b[key] && own[name] != key {
				t.Fatalf("applying %+v changed %s[%q]", k, name, key)
			}
		}
	}
}

func mapsUnion(a, b map[string]string) map[string]bool {
	out := map[string]bool{}
	for k := range a {
		out[k] = true
	}
	for k := range b {
		out[k] = true
	}
	return out
}

// checkIndexes fails when a stored product cannot be read or looked up,
// or an index entry names a product that does not list it.
func checkIndexes(t *testing.T, c *Cache, d map[string]map[string]string) {
	t.Helper()
	docs := map[string]downsync.ProductDoc{}
	for id, raw := range d[string(bucketProducts)] {
		var p downsync.ProductDoc
		if len(raw) < 8 || json.Unmarshal([]byte(raw[8:]), &p) != nil {
			t.Fatalf("stored product %q is unreadable", id)
		}
		if strings.TrimSpace(raw[8:])[0] != '{' {
			t.Fatalf("stored product %q is not an object: %q", id, raw[8:])
		}
		if p.ID != "" && p.ID != id {
			t.Fatalf("product %q is stored under %q", p.ID, id)
		}
		docs[id] = p
	}
	lists := func(id, sku, g14 string) bool {
		return slices.ContainsFunc(docs[id].Variants, func(v downsync.VariantDoc) bool {
			return v.SKU == sku && (g14 == "" || slices.ContainsFunc(v.GTINs, func(g string) bool {
				n, err := gs1.NormalizeGTIN(g)
				return err == nil && n == g14
			}))
		})
	}
	for sku, id := range d[string(bucketSKUs)] {
		if !lists(id, sku, "") {
			t.Fatalf("SKU %q names product %q, which does not list it", sku, id)
		}
		if _, err := c.Lookup(context.Background(), sku); err != nil {
			t.Fatalf("lookup of indexed SKU %q: %v", sku, err)
		}
	}
	for g, ref := range d[string(bucketGTINs)] {
		id, sku := splitRef([]byte(ref))
		if !lists(id, sku, g) {
			t.Fatalf("GTIN %s names product %q variant %q, which does not list it", g, id, sku)
		}
	}
}
