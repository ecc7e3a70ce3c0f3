package store

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/omnisync/omnisync/cloud/internal/catalog"
	"github.com/omnisync/omnisync/cloud/internal/cooccur"
	"github.com/omnisync/omnisync/shared/events"
	"github.com/omnisync/omnisync/shared/testkit"
)

// foldAll folds until no applied sale is left unfolded. On PostgreSQL a
// fold waits for every transaction older than a sale's (of any database
// of the server) to end, so it may take a few turns.
func foldAll(t testing.TB, s *Store) {
	t.Helper()
	ctx := context.Background()
	testkit.Eventually(t, 30*time.Second, func() bool {
		if _, err := s.FoldBaskets(ctx, 0); err != nil {
			t.Fatal(err)
		}
		f, err := s.BasketFoldState(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return f.Pending == 0
	}, "every basket folded")
}

// boughtPairs reads the bought counts of product_pairs.
func boughtPairs(t testing.TB, s *Store) map[cooccur.Pair]int64 {
	t.Helper()
	rows, err := s.r.QueryContext(context.Background(), "SELECT a, b, bought FROM product_pairs WHERE bought > 0")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	got := map[cooccur.Pair]int64{}
	for rows.Next() {
		var p cooccur.Pair
		var n int64
		if err := rows.Scan(&p.A, &p.B, &n); err != nil {
			t.Fatal(err)
		}
		got[p] = n
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return got
}

// basketCatalog imports products P0..Pn-1, one SKU each (Pi-M).
func basketCatalog(t testing.TB, s *Store, n int) {
	t.Helper()
	var vs []catalog.Variant
	for i := range n {
		vs = append(vs, variant(fmt.Sprintf("P%d-M", i), fmt.Sprintf("P%d", i), 500+i))
	}
	importOK(t, s, vs)
}

// randomSales returns n sales of 1-4 lines over products P0..P(products-1)
// at store, and the baskets they are (by event id) for the oracle.
func randomSales(r *rand.Rand, dev *device, w *int64, products, n int, baskets map[string][]string) []events.Envelope {
	out := make([]events.Envelope, 0, n)
	for range n {
		*w++
		var ls []events.Line
		var ps []string
		for range 1 + r.IntN(4) {
			p := r.IntN(products)
			ls = append(ls, line(fmt.Sprintf("P%d-M", p), 1+r.Int64N(2)))
			ps = append(ps, fmt.Sprintf("P%d", p))
		}
		e := dev.ev(*w, events.KindSale, sale(dev.store, ls...))
		baskets[e.ID] = ps
		out = append(out, e)
	}
	return out
}

// Ensure that the folder counts each sale's basket once: not when it
// crashes between reading the sales and committing (the transaction
// takes the counts and the watermark with it), not again when it runs
// again, not for returns, and not for sales replayed under another
// origin; and that the complements are those of the baskets.
func TestFoldBaskets_ExactlyOnce(t *testing.T) {
	t.Parallel()
	forEachStoreAtOnce(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		basketCatalog(t, s, 8)
		r := rand.New(rand.NewPCG(3, 4))
		baskets := map[string][]string{}
		till := newDevice("store-1", "pos-1", 1)
		w := int64(1_780_000_000_000)
		sales := randomSales(r, till, &w, 8, 40, baskets)
		for i := 0; i < len(sales); i += 7 {
			apply(t, s, sales[i:min(i+7, len(sales))]...)
		}
		// Returns count nothing; a sale relayed under another origin is
		// the same sale.
		w++
		apply(t, s, till.ev(w, events.KindReturn, sale("store-1", line("P0-M", 1), line("P1-M", 1))))
		relay := newDevice("store-1", "relay", 1)
		dup := relay.ev(0, events.KindSale, nil)
		dup.ID, dup.HLC, dup.Data = sales[3].ID, sales[3].HLC, sales[3].Data
		apply(t, s, dup)

		// A crash between the read and the commit folds nothing.
		crash := errors.New("crash")
		s.beforeFoldCommit = func() error { return crash }
		testkit.Eventually(t, 30*time.Second, func() bool {
			_, err := s.FoldBaskets(ctx, 0)
			if err != nil && !errors.Is(err, crash) {
				t.Fatal(err)
			}
			return err != nil
		}, "a fold reached its commit")
		s.beforeFoldCommit = nil
		if got := boughtPairs(t, s); len(got) != 0 {
			t.Fatalf("a crashed fold left counts: %v", got)
		}
		if f, err := s.BasketFoldState(ctx); err != nil || f.Pending == 0 || f.FoldedMS != 0 {
			t.Fatalf("a crashed fold moved the watermark: %+v %v", f, err)
		}
		// Small folds (one transaction each), then again: the same counts.
		for {
			res, err := s.FoldBaskets(ctx, 1)
			if err != nil {
				t.Fatal(err)
			}
			if !res.More {
				break
			}
		}
		foldAll(t, s)
		foldAll(t, s)
		want := cooccur.Count(baskets)
		if got := boughtPairs(t, s); !maps.Equal(got, want) {
			t.Fatalf("bought pairs differ from the oracle:\n got %v\nwant %v", got, want)
		}
		// The complements are ranked on those counts.
		var cands []cooccur.Candidate
		for p, n := range want {
			switch "P0" {
			case p.A:
				cands = append(cands, cooccur.Candidate{Product: p.B, Bought: n})
			case p.B:
				cands = append(cands, cooccur.Candidate{Product: p.A, Bought: n})
			}
		}
		ranked := cooccur.Rank("", "P0", cands, MaxComplements)
		d := recsOf(t, s, "P0")
		if len(ranked) == 0 || len(d.Complements) < len(ranked) {
			t.Fatalf("complements of P0: %+v, want %+v first", d.Complements, ranked)
		}
		for i, c := range ranked {
			if g := d.Complements[i]; g.ProductID != c.Product || g.Reason != c.Reason || int64(g.Score) != c.Score {
				t.Fatalf("complements of P0: %+v, want %+v first", d.Complements, ranked)
			}
		}
	})
}

// Ensure that folders running at once (on several replicas of one
// PostgreSQL, or one SQLite hub's) while sales are applied fold every
// basket exactly once.
func TestFoldBaskets_ConcurrentFolders(t *testing.T) {
	t.Parallel()
	onReplicas(t, 3, func(t *testing.T, stores []*Store, _ *atomic.Int64) {
		ctx := context.Background()
		basketCatalog(t, stores[0], 10)
		baskets := map[string][]string{}
		var logs [][]events.Envelope
		for d := range 3 {
			r := rand.New(rand.NewPCG(uint64(d), 7))
			w := int64(1_780_000_000_000)
			logs = append(logs, randomSales(r, newDevice(fmt.Sprintf("store-%d", d), "pos-1", 1), &w, 10, 150, baskets))
		}
		stop := make(chan struct{})
		var wg sync.WaitGroup
		var folded atomic.Int64
		errs := make(chan error, 6)
		for f := range 6 {
			wg.Add(1)
			go func(s *Store) {
				defer wg.Done()
				for {
					select {
					case <-stop:
						return
					default:
					}
					res, err := s.FoldBaskets(ctx, 1+f*20)
					if err != nil {
						errs <- err
						return
					}
					folded.Add(int64(res.Baskets))
				}
			}(stores[f%len(stores)])
		}
		applyConcurrently(t, stores, 3, func(rep int) [][]events.Envelope {
			var out [][]events.Envelope
			for l := logs[rep]; len(l) > 0; {
				n := min(len(l), 1+rep*4)
				out = append(out, l[:n])
				l = l[n:]
			}
			return out
		})
		close(stop)
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		foldAll(t, stores[0])
		if got, want := boughtPairs(t, stores[0]), cooccur.Count(baskets); !maps.Equal(got, want) {
			t.Fatalf("bought pairs differ from the oracle:\n got %v\nwant %v", got, want)
		}
		var n int64
		if err := stores[0].r.QueryRowContext(ctx, "SELECT count(DISTINCT event_id) FROM basket_items").Scan(&n); err != nil || n != int64(len(baskets)) {
			t.Fatalf("baskets recorded %d of %d: %v", n, len(baskets), err)
		}
	})
}

// Ensure that a sale committed after a later-stamped one (PostgreSQL hands
// out transaction ids in one order, commits them in another) is folded
// all the same: no fold passes a transaction still running.
func TestFoldBaskets_CommitOutOfOrder(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	first := openPostgres(t)
	second, err := Open(ctx, testDSN(t, first), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { second.Close() })
	basketCatalog(t, first, 4)
	w := int64(1_780_000_000_000)
	early := newDevice("store-1", "pos-1", 1).ev(w, events.KindSale, sale("store-1", line("P0-M", 1), line("P1-M", 1)))
	late := newDevice("store-2", "pos-1", 1).ev(w+1, events.KindSale, sale("store-2", line("P2-M", 1), line("P3-M", 1)))
	// The early sale's transaction takes its id and writes its lines, then
	// waits before its commit while the late one commits and folds run.
	waiting, release := make(chan struct{}), make(chan struct{})
	first.beforeCommit = func() error {
		close(waiting)
		<-release
		return nil
	}
	done := make(chan error, 1)
	go func() {
		_, err := first.ApplyBatch(ctx, itemsOf(early))
		done <- err
	}()
	<-waiting
	apply(t, second, late)
	for range 3 {
		res, err := second.FoldBaskets(ctx, 0)
		if err != nil {
			t.Fatal(err)
		}
		if res.Baskets != 0 {
			t.Fatalf("a fold passed a running transaction: %+v", res)
		}
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	foldAll(t, second)
	want := map[cooccur.Pair]int64{cooccur.PairOf("P0", "P1"): 1, cooccur.PairOf("P2", "P3"): 1}
	if got := boughtPairs(t, second); !maps.Equal(got, want) {
		t.Fatalf("bought pairs %v, want %v", got, want)
	}
}

// Ensure that sale lines recorded before the folder existed (stamped 0:
// their baskets were counted as they were applied) are never folded.
func TestFoldBaskets_EarlierSalesStay(t *testing.T) {
	t.Parallel()
	forEachStoreAtOnce(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		basketCatalog(t, s, 2)
		d := newDevice("store-1", "pos-1", 1)
		apply(t, s, d.ev(1_780_000_000_000, events.KindReceipt, sale("store-1", line("P0-M", 5), line("P1-M", 5))))
		// What an older hub wrote: the lines without a stamp.
		_, err := s.w.ExecContext(ctx, `INSERT INTO stock_ledger (pos_id, hlc, ev_hi, ev_lo, line_no, kind, qty, delta, store)
SELECT id, 1, 7, 7, id, 'sale', 1, -1, 'store-1' FROM stock`)
		if err != nil {
			t.Fatal(err)
		}
		foldAll(t, s)
		if got := boughtPairs(t, s); len(got) != 0 {
			t.Fatalf("earlier sales folded again: %v", got)
		}
	})
}

// Ensure that a database whose transaction ids went back below the
// folder's watermark (a dump restored into a new cluster) folds the sales
// it had not folded, and not the others again.
func TestFoldBaskets_TransactionIDsWentBack(t *testing.T) {
	t.Parallel()
	s := openPostgres(t)
	ctx := context.Background()
	basketCatalog(t, s, 4)
	w := int64(1_780_000_000_000)
	folded := newDevice("store-1", "pos-1", 1).ev(w, events.KindSale, sale("store-1", line("P0-M", 1), line("P1-M", 1)))
	apply(t, s, folded)
	foldAll(t, s)
	pending := newDevice("store-2", "pos-1", 1).ev(w+1, events.KindSale, sale("store-2", line("P2-M", 1), line("P3-M", 1)))
	apply(t, s, pending)
	// The old cluster's ids, far above the new one's.
	const old = int64(1) << 50
	hi, lo, err := eventIDKey(pending.ID)
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		fmt.Sprintf("UPDATE stock_ledger SET xact = %d WHERE kind = 'sale' AND xact > 0", old-10),
		fmt.Sprintf("UPDATE stock_ledger SET xact = %d WHERE ev_hi = %d AND ev_lo = %d", old+5, hi, lo),
		fmt.Sprintf("UPDATE basket_fold SET folded = %d", old),
	} {
		if _, err := s.w.ExecContext(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	foldAll(t, s)
	want := map[cooccur.Pair]int64{cooccur.PairOf("P0", "P1"): 1, cooccur.PairOf("P2", "P3"): 1}
	if got := boughtPairs(t, s); !maps.Equal(got, want) {
		t.Fatalf("bought pairs %v, want %v", got, want)
	}
}
