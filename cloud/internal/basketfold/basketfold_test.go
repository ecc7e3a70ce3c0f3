package basketfold

import (
	"context"
	"encoding/json"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/omnisync/omnisync/cloud/internal/catalog"
	"github.com/omnisync/omnisync/cloud/internal/store"
	"github.com/omnisync/omnisync/shared/events"
	"github.com/omnisync/omnisync/shared/hlc"
	"github.com/omnisync/omnisync/shared/ids"
	"github.com/omnisync/omnisync/shared/testkit"
)

func forEachDB(t *testing.T, fn func(t *testing.T, dsn string)) {
	t.Run("sqlite", func(t *testing.T) {
		t.Parallel()
		fn(t, "sqlite:"+filepath.Join(t.TempDir(), "hub.db"))
	})
	t.Run("postgres", func(t *testing.T) { t.Parallel(); fn(t, testkit.Postgres(t)) })
}

// Ensure that the folders of two replicas (on SQLite, one hub's store)
// fold the baskets of sales applied while they run, each basket once, and
// hand the products whose complements changed to Folded; and that Close
// stops Run.
func TestFolder_FoldsAppliedSales(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, dsn string) {
		ctx := context.Background()
		open := func() *store.Store {
			st, err := store.Open(ctx, dsn, nil)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { st.Close() })
			return st
		}
		st := open()
		replica := st
		if dsn[:7] != "sqlite:" {
			replica = open()
		}
		vs := catalog.Sample(3, 6)
		if _, err := st.ImportCatalog(ctx, vs, store.ImportOptions{Source: "test", Mode: catalog.AllOrNothing}); err != nil {
			t.Fatal(err)
		}
		// One SKU of each of the first three products.
		var skus, products []string
		for _, v := range vs {
			if !slices.Contains(products, v.ProductID) && len(products) < 3 {
				skus, products = append(skus, v.SKU), append(products, v.ProductID)
			}
		}
		var mu sync.Mutex
		changed := map[string]bool{}
		var folders []*Folder
		for _, s := range []*store.Store{st, replica} {
			f, err := New(Options{Store: s, Poll: 50 * time.Millisecond, Folded: func(ps []string) {
				mu.Lock()
				defer mu.Unlock()
				for _, p := range ps {
					changed[p] = true
				}
			}})
			if err != nil {
				t.Fatal(err)
			}
			folders = append(folders, f)
			done := make(chan error, 1)
			go func() { done <- f.Run(ctx) }()
			t.Cleanup(func() {
				if err := f.Close(); err != nil {
					t.Error(err)
				}
				if err := <-done; err != nil {
					t.Error(err)
				}
			})
		}
		// Ten sales of the three products, the first two in each.
		for i := range 10 {
			m := events.StockMove{Location: "store-1", Lines: []events.Line{{SKU: skus[0], Qty: 1}, {SKU: skus[1], Qty: 1}}}
			if i%2 == 0 {
				m.Lines = append(m.Lines, events.Line{SKU: skus[2], Qty: 1})
			}
			data, err := json.Marshal(m)
			if err != nil {
				t.Fatal(err)
			}
			env := events.Envelope{V: events.CurrentVersion, ID: ids.NewEventID(time.Now()),
				Origin: events.Origin{Store: "store-1", Device: "pos-1", Epoch: 1, Seq: uint64(i + 1)},
				HLC:    hlc.Timestamp{Wall: time.Now().UnixMilli(), Logical: uint32(i)}, Kind: events.KindSale, Data: data}
			if res, err := []*store.Store{st, replica}[i%2].ApplyBatch(ctx, []store.Item{{Env: env}}); err != nil || res.Applied != 1 {
				t.Fatalf("apply: %+v %v", res, err)
			}
			folders[i%2].Notify()
		}
		testkit.Eventually(t, 30*time.Second, func() bool {
			docs, err := st.RecsDocs(ctx, products[:1])
			if err != nil {
				t.Fatal(err)
			}
			got := map[string]int64{}
			for _, c := range docs[0].Complements {
				got[c.ProductID] = int64(c.Score)
			}
			// Bought together ten and five times, a purchase weighing two tries.
			return got[products[1]] == 20 && got[products[2]] == 10
		}, "the baskets folded into the complements")
		// The replicas' stats add up to each basket once, and a replica
		// that folded the last of them says when it caught up.
		testkit.Eventually(t, 10*time.Second, func() bool {
			var baskets int64
			var caughtUp time.Time
			for _, f := range folders {
				st := f.Stats()
				baskets += st.Baskets
				if st.CaughtUp.After(caughtUp) {
					caughtUp = st.CaughtUp
				}
			}
			return baskets == 10 && time.Since(caughtUp) < 10*time.Second
		}, "folder stats: %+v, %+v", folders[0].Stats(), folders[1].Stats())
		mu.Lock()
		defer mu.Unlock()
		for _, p := range products {
			if !changed[p] {
				t.Errorf("Folded was not told of %s (%v)", p, changed)
			}
		}
	})
}

// Ensure that New refuses a folder without a store.
func TestNew_RequiresStore(t *testing.T) {
	if _, err := New(Options{}); err == nil {
		t.Fatal("a folder without a store")
	}
}

// countingStore is a real store that records each fold's line limit.
type countingStore struct {
	*store.Store
	// slow is added to each fold, as a fold of a big batch would take.
	slow  time.Duration
	mu    sync.Mutex
	folds []int
}

func (c *countingStore) FoldBaskets(ctx context.Context, lines int) (store.FoldResult, error) {
	c.mu.Lock()
	c.folds = append(c.folds, lines)
	c.mu.Unlock()
	time.Sleep(c.slow)
	return c.Store.FoldBaskets(ctx, lines)
}

func (c *countingStore) calls() []int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.folds)
}

// Ensure that while the hub is busy applying, Notify after every batch
// does not make the folder fold after every batch: it folds at most
// BusyLines once per Poll, and folds normally again once the hub is idle.
func TestFolder_YieldsToApply(t *testing.T) {
	t.Parallel()
	st, err := store.Open(context.Background(), "sqlite:"+filepath.Join(t.TempDir(), "hub.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	cs := &countingStore{Store: st}
	var mu sync.Mutex
	busy := true
	f, err := New(Options{Store: cs, Poll: 300 * time.Millisecond, Lines: 777, BusyLines: 55,
		Busy: func() bool { mu.Lock(); defer mu.Unlock(); return busy }})
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = f.Run(context.Background()) }()
	t.Cleanup(func() { f.Close() })
	start := time.Now()
	for time.Since(start) < 1200*time.Millisecond {
		f.Notify() // a batch applied every 5 ms
		time.Sleep(5 * time.Millisecond)
	}
	got := cs.calls()
	if len(got) == 0 || len(got) > 6 {
		t.Fatalf("busy for 1.2 s at a 300 ms poll: %d folds %v, want 1 to 6", len(got), got)
	}
	for _, n := range got {
		if n != 55 {
			t.Fatalf("a fold while busy read up to %d lines, want 55", n)
		}
	}
	mu.Lock()
	busy = false
	mu.Unlock()
	f.Notify()
	testkit.Eventually(t, 5*time.Second, func() bool {
		c := cs.calls()
		return len(c) > len(got) && c[len(c)-1] == 777
	}, "a full fold once idle")
}

// Ensure that while the hub is busy, slow folds are spaced by busyShare
// times their duration, not only by Poll: a fold takes at least one whole
// applied batch, whatever BusyLines says, and must not take the database
// from the apply most of the time.
func TestFolder_SlowFoldsYieldMore(t *testing.T) {
	t.Parallel()
	st, err := store.Open(context.Background(), "sqlite:"+filepath.Join(t.TempDir(), "hub.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	cs := &countingStore{Store: st, slow: 150 * time.Millisecond}
	f, err := New(Options{Store: cs, Poll: 20 * time.Millisecond, Busy: func() bool { return true }})
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = f.Run(context.Background()) }()
	t.Cleanup(func() { f.Close() })
	start := time.Now()
	for time.Since(start) < 1200*time.Millisecond {
		f.Notify()
		time.Sleep(5 * time.Millisecond)
	}
	// The first fold at once, the next 1.35 s after it ended.
	if got := cs.calls(); len(got) != 1 {
		t.Fatalf("busy for 1.2 s with folds of 150 ms: %d folds, want 1", len(got))
	}
}
