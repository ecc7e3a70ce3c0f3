package store

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/omnisync/omnisync/cloud/internal/inventory"
	"github.com/omnisync/omnisync/cloud/internal/inventory/inventorytest"
	"github.com/omnisync/omnisync/shared/events"
)

// compareWithOracle checks every stock position and every open conflict
// whose SKU starts with prefix against the oracle's books.
func compareWithOracle(t *testing.T, s *Store, book *inventory.Book, prefix, what string) {
	t.Helper()
	if d := oracleDiff(t, s, book, prefix); d != "" {
		t.Fatalf("%s: %s", what, d)
	}
}

// oracleDiff is compareWithOracle's verdict: the first difference, or "".
func oracleDiff(t *testing.T, s *Store, book *inventory.Book, prefix string) string {
	t.Helper()
	want := book.Positions()
	got := map[inventory.Key]Stock{}
	for k, st := range allStock(t, s) {
		if strings.HasPrefix(k.SKU, prefix) {
			got[k] = st
		}
	}
	keys := map[inventory.Key]bool{}
	for k := range want {
		keys[k] = true
	}
	for k := range got {
		keys[k] = true
	}
	for k := range keys {
		w, g := want[k], got[k]
		if g.OnHand != w.OnHand || g.Reserved != w.Reserved || g.Safety != w.Safety || g.Available != w.Available() {
			return fmt.Sprintf("%v: store on_hand=%d reserved=%d safety=%d available=%d; oracle on_hand=%d reserved=%d safety=%d available=%d",
				k, g.OnHand, g.Reserved, g.Safety, g.Available, w.OnHand, w.Reserved, w.Safety, w.Available())
		}
	}
	open := map[inventory.Key]Conflict{}
	for k, c := range openConflicts(t, s) {
		if strings.HasPrefix(k.SKU, prefix) {
			open[k] = c
		}
	}
	oversold := book.Oversold()
	var gotKeys []inventory.Key
	for k := range open {
		gotKeys = append(gotKeys, k)
	}
	slices.SortFunc(gotKeys, inventory.Key.Compare)
	if !slices.Equal(gotKeys, oversold) {
		return fmt.Sprintf("open conflicts %v, oracle oversold %v", gotKeys, oversold)
	}
	for _, k := range oversold {
		c := open[k]
		if c.Available != want[k].Available() {
			return fmt.Sprintf("conflict %v available %d, oracle %d", k, c.Available, want[k].Available())
		}
		if ar := book.AtRisk(k); !slices.Equal(c.Reservations, ar) && !(len(ar) == 0 && len(c.Reservations) == 0) {
			return fmt.Sprintf("conflict %v reservations %v, oracle %v", k, c.Reservations, ar)
		}
		var sug []inventory.Candidate
		for _, st := range c.Suggestions {
			sug = append(sug, inventory.Candidate{Location: st.Location, Available: st.Available})
		}
		if ws := book.Suggestions(k); !slices.Equal(sug, ws) {
			return fmt.Sprintf("conflict %v suggestions %v, oracle %v", k, sug, ws)
		}
	}
	return ""
}

// Ensure that random logs, delivered shuffled, ~30% duplicated, partly
// delayed, in random batches and with safety stock changes in between,
// leave the store's books and open conflicts equal to the oracle's.
func TestProperty_BooksMatchOracle(t *testing.T) {
	t.Parallel()
	iterations := map[string]int{"sqlite": 500, "postgres": 80}
	if testing.Short() {
		iterations = map[string]int{"sqlite": 200, "postgres": 25}
	}
	forEachStoreAtOnce(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		for it := 0; it < iterations[s.Dialect()]; it++ {
			seed := int64(it)
			rng := rand.New(rand.NewSource(seed))
			opts := inventorytest.Options{
				Prefix:    fmt.Sprintf("p%d-", it),
				Devices:   1 + rng.Intn(4),
				SKUs:      1 + rng.Intn(5),
				Locations: 1 + rng.Intn(4),
				Events:    10 + rng.Intn(150),
			}
			log := inventorytest.Log(rng, opts)
			book := inventory.NewBook()
			for _, e := range log {
				if err := book.Add(e); err != nil {
					t.Fatalf("seed %d: %v", seed, err)
				}
			}
			applied := 0
			for _, b := range inventorytest.Batches(rng, inventorytest.Deliveries(rng, log, 0.3), 40) {
				if rng.Intn(10) == 0 {
					k := inventory.Key{SKU: opts.SKU(rng.Intn(opts.SKUs)), Location: opts.Location(rng.Intn(opts.Locations))}
					q := rng.Int63n(4)
					if err := s.SetSafetyStock(ctx, k.SKU, k.Location, q); err != nil {
						t.Fatal(err)
					}
					book.SetSafety(k, q)
				}
				res := apply(t, s, b...)
				if res.DeadLettered != 0 || len(res.Deferred) != 0 {
					t.Fatalf("seed %d: %+v", seed, res)
				}
				applied += res.Applied
			}
			if applied != len(log) {
				t.Fatalf("seed %d: applied %d of %d distinct events", seed, applied, len(log))
			}
			compareWithOracle(t, s, book, opts.Prefix, fmt.Sprintf("seed %d", seed))
		}
	})
}

// countingHandler counts log records whose message contains substr.
type countingHandler struct {
	slog.Handler
	substr string
	n      *atomic.Int64
}

func (h countingHandler) Handle(ctx context.Context, r slog.Record) error {
	if strings.Contains(r.Message, h.substr) {
		h.n.Add(1)
	}
	return nil
}

// Ensure that several replicas applying overlapping, duplicated deliveries
// of one log at once apply every event exactly once, reach the oracle's
// books, and never surface a deadlock.
func TestConcurrentReplicas(t *testing.T) {
	t.Parallel()
	opts := inventorytest.Options{Prefix: "c-", Devices: 8, SKUs: 6, Locations: 3, Events: 3000}
	if testing.Short() {
		opts.Events = 1500
	}
	log := inventorytest.Log(rand.New(rand.NewSource(42)), opts)
	onReplicas(t, 4, func(t *testing.T, stores []*Store, retries *atomic.Int64) {
		applied := applyConcurrently(t, stores, 4, func(r int) [][]events.Envelope {
			return inventorytest.Batches(rand.New(rand.NewSource(int64(r))), inventorytest.Deliveries(rand.New(rand.NewSource(int64(100+r))), log, 0.3), 80)
		})
		if applied != int64(len(log)) {
			t.Fatalf("applied %d times for %d distinct events", applied, len(log))
		}
		compareWithOracle(t, stores[0], bookOf(t, log), opts.Prefix, "after concurrent replicas")
		var redos int64
		for _, s := range stores {
			redos += s.StockRedos()
		}
		t.Logf("%d events, 4 replicas on %d stores, %d retried transactions, %d batches redone after a stale cached position", len(log), len(stores), retries.Load(), redos)
	})
}

// onReplicas runs fn with n stores on one fresh PostgreSQL schema (their
// retried transactions counted), and with one SQLite store.
func onReplicas(t *testing.T, n int, fn func(t *testing.T, stores []*Store, retries *atomic.Int64)) {
	t.Run("postgres", func(t *testing.T) {
		dsn := testDSN(t, openPostgres(t))
		var retries atomic.Int64
		var stores []*Store
		for r := 0; r < n; r++ {
			s, err := Open(context.Background(), dsn, slog.New(countingHandler{Handler: slog.DiscardHandler, substr: "retrying", n: &retries}))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.Close() })
			stores = append(stores, s)
		}
		fn(t, stores, &retries)
	})
	t.Run("sqlite", func(t *testing.T) {
		var retries atomic.Int64
		fn(t, []*Store{openSQLite(t)}, &retries)
	})
}

// applyConcurrently runs replicas goroutines at once, replica r applying
// the batches of batchesOf(r) to stores[r%len(stores)], and returns how many
// events they applied in all.
func applyConcurrently(t *testing.T, stores []*Store, replicas int, batchesOf func(r int) [][]events.Envelope) int64 {
	t.Helper()
	var applied atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, replicas)
	for r := 0; r < replicas; r++ {
		batches := batchesOf(r)
		wg.Add(1)
		go func(s *Store) {
			defer wg.Done()
			for _, b := range batches {
				res, err := s.ApplyBatch(context.Background(), itemsOf(b...))
				if err != nil {
					errs <- err
					return
				}
				applied.Add(int64(res.Applied))
			}
		}(stores[r%len(stores)])
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("ApplyBatch: %v", err)
	}
	return applied.Load()
}

// bookOf is the oracle's books for log.
func bookOf(t *testing.T, log []events.Envelope) *inventory.Book {
	t.Helper()
	book := inventory.NewBook()
	for _, e := range log {
		if err := book.Add(e); err != nil {
			t.Fatal(err)
		}
	}
	return book
}
