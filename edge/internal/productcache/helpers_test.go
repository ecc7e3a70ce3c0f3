package productcache

import (
	"context"
	"path/filepath"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/omnisync/omnisync/edge/internal/productcache/cachetest"
	"github.com/omnisync/omnisync/shared/downsync"
)

// clock is a settable wall clock.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock() *clock { return &clock{now: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }

func (c *clock) Add(d time.Duration) { c.mu.Lock(); c.now = c.now.Add(d); c.mu.Unlock() }

// testOptions are the options of a store S1 with nearby S2 and S3 and the
// online warehouse, in a temporary directory.
func testOptions(t testing.TB) Options {
	return Options{
		Path:  filepath.Join(t.TempDir(), "cache.db"),
		Store: "S1", Nearby: []string{"S2", "S3"}, Online: "online",
	}
}

// mustOpen opens a cache that is closed when the test ends.
func mustOpen(t testing.TB, o Options) *Cache {
	t.Helper()
	c, err := Open(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// mustApply applies updates as one batch ending at lastSeq.
func mustApply(t testing.TB, c *Cache, lastSeq uint64, caughtUp bool, us ...Update) {
	t.Helper()
	if err := c.Apply(context.Background(), us, lastSeq, caughtUp); err != nil {
		t.Fatal(err)
	}
}

func product(p downsync.ProductDoc) Update {
	return Update{Key: downsync.ProductKey(p.ID), Value: cachetest.JSON(p)}
}

func stock(d downsync.StockDoc) Update {
	return Update{Key: downsync.StockKey(d.Location, d.SKU), Value: cachetest.JSON(d)}
}

func review(r downsync.ReviewSummary) Update {
	return Update{Key: downsync.ReviewKey(r.ProductID), Value: cachetest.JSON(r)}
}

func deleted(key string) Update { return Update{Key: key, Deleted: true} }

// checkCounts fails the test when the counts Stats reports differ from the
// keys the buckets hold.
func checkCounts(t testing.TB, c *Cache) {
	t.Helper()
	st := c.Stats()
	err := c.db.View(func(tx *bolt.Tx) error {
		for _, b := range []struct {
			name []byte
			want int64
		}{
			{bucketProducts, st.Products}, {bucketSKUs, st.Variants}, {bucketGTINs, st.GTINs},
			{bucketStock, st.StockPositions}, {bucketReviews, st.Reviews},
		} {
			if got := int64(tx.Bucket(b.name).Stats().KeyN); got != b.want {
				t.Errorf("bucket %s holds %d keys, Stats says %d", b.name, got, b.want)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// stockOf reads a stock position straight from the file.
func stockOf(t testing.TB, c *Cache, location, sku string) (downsync.StockDoc, bool) {
	t.Helper()
	var d downsync.StockDoc
	var ok bool
	err := c.db.View(func(tx *bolt.Tx) error {
		if b := tx.Bucket(bucketStock).Get(appendStockKey(nil, location, sku)); b != nil {
			d, ok = decodeStock(b)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return d, ok
}
