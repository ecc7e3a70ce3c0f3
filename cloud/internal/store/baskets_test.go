package store

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/omnisync/omnisync/cloud/internal/catalog"
	"github.com/omnisync/omnisync/cloud/internal/cooccur"
	"github.com/omnisync/omnisync/shared/events"
	"github.com/omnisync/omnisync/shared/testkit"
)

// foldAll folds until no applied sale is left unfolded (a fold may find
// another replica folding, so it may take a few turns).
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
// takes the counts and the inbox rows with it), not again when it runs
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
			t.Fatalf("a crashed fold took inbox rows: %+v %v", f, err)
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

// Ensure that a sale whose batch is still running while folds run is
// folded once it commits, and that those folds fold the sales committed
// meanwhile: on PostgreSQL the running batch took its inbox row's id
// before the committed one, and nothing waits for it.
func TestFoldBaskets_RunningBatch(t *testing.T) {
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
	// The early sale's transaction writes its lines and its inbox row,
	// then waits before its commit while the late one commits and folds
	// run.
	waiting, held := make(chan struct{}), make(chan struct{})
	var once sync.Once
	release := func() { once.Do(func() { close(held) }) }
	t.Cleanup(release) // before the stores close, should the test fail
	first.beforeCommit = func() error {
		close(waiting)
		<-held
		return nil
	}
	done := make(chan error, 1)
	go func() {
		_, err := first.ApplyBatch(ctx, itemsOf(early))
		done <- err
	}()
	<-waiting
	apply(t, second, late)
	for i := range 3 {
		res, err := second.FoldBaskets(ctx, 0)
		if err != nil {
			t.Fatal(err)
		}
		if want := max(0, 1-i); res.Baskets != want {
			t.Fatalf("fold %d folded %d baskets, want %d", i, res.Baskets, want)
		}
	}
	lateOnly := map[cooccur.Pair]int64{cooccur.PairOf("P2", "P3"): 1}
	if got := boughtPairs(t, second); !maps.Equal(got, lateOnly) {
		t.Fatalf("bought pairs with the early sale running %v, want %v", got, lateOnly)
	}
	release()
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
		_, err := s.w.ExecContext(ctx, `INSERT INTO stock_ledger (day, pos_id, hlc, ev_hi, ev_lo, line_no, kind, qty, delta, store)
SELECT 0, id, 1, 7, 7, id, 'sale', 1, -1, 'store-1' FROM stock`)
		if err != nil {
			t.Fatal(err)
		}
		foldAll(t, s)
		if got := boughtPairs(t, s); len(got) != 0 {
			t.Fatalf("earlier sales folded again: %v", got)
		}
	})
}

// Ensure that the migration to the basket inbox carries over the sales
// a hub from before it had not folded (stamped at or above the watermark)
// and no other: not those folded (below it), not those from before the
// folder (stamp 0); and that the hub folds on from there.
func TestFoldBaskets_MigrationCarriesUnfolded(t *testing.T) {
	t.Parallel()
	run := func(t *testing.T, dsn string) {
		ctx := context.Background()
		s, err := Open(ctx, dsn, nil)
		if err != nil {
			t.Fatal(err)
		}
		basketCatalog(t, s, 8)
		d := newDevice("store-1", "pos-1", 1)
		w := int64(1_780_000_000_000)
		sold := func(a, b int) events.Envelope {
			w++
			return d.ev(w, events.KindSale, sale("store-1", line(fmt.Sprintf("P%d-M", a), 1), line(fmt.Sprintf("P%d-M", b), 2)))
		}
		folded, pending, pending2, pending3, unstamped := sold(0, 1), sold(2, 3), sold(4, 5), sold(5, 6), sold(6, 7)
		apply(t, s, folded, pending, pending2, pending3, unstamped)
		var mig string
		version := 0
		for i, m := range migrations {
			if strings.Contains(m, "CREATE TABLE basket_inbox") {
				mig, version = m, i+1
			}
		}
		if mig == "" {
			t.Fatal("no migration makes the basket inbox")
		}
		// The hub as the release before left it: no inbox, the index of
		// stamped sales, a watermark, lines stamped below it, at it and
		// above it, and lines without a stamp.
		stamp := func(e events.Envelope, x int64) string {
			hi, lo, err := eventIDKey(e.ID)
			if err != nil {
				t.Fatal(err)
			}
			return fmt.Sprintf("UPDATE stock_ledger SET xact = %d WHERE ev_hi = %d AND ev_lo = %d", x, hi, lo)
		}
		before := []string{
			"DROP TABLE basket_inbox",
			"DROP TABLE basket_backlog",
		}
		if s.d.pg() {
			// A later migration left PostgreSQL's ledger without xact.
			before = append(before, "ALTER TABLE stock_ledger ADD COLUMN xact BIGINT NOT NULL DEFAULT 0")
		}
		for _, q := range append(before,
			"CREATE INDEX stock_ledger_sales_by_xact ON stock_ledger (xact) WHERE kind = 'sale' AND xact > 0",
			"UPDATE basket_fold SET folded = 1000, next_xact = 1010",
			stamp(folded, 999),
			stamp(pending, 1000),
			stamp(pending2, 1007),
			stamp(pending3, 1007),
			fmt.Sprintf("DELETE FROM schema_migrations WHERE version = %d", version),
		) {
			if _, err := s.w.ExecContext(ctx, q); err != nil {
				t.Fatalf("%v\n%s", err, q)
			}
		}
		s.Close()
		// The new release opens it.
		s = mustOpen(t, dsn)
		var rows, backlog, index int
		q := "SELECT count(*) FROM sqlite_master WHERE name = 'stock_ledger_sales_by_xact'"
		if s.d.pg() {
			q = "SELECT count(*) FROM pg_indexes WHERE schemaname = current_schema() AND indexname = 'stock_ledger_sales_by_xact'"
		}
		if err := s.r.QueryRowContext(ctx, q).Scan(&index); err != nil || index != 0 {
			t.Fatalf("the index of stamped sales: %d %v", index, err)
		}
		if err := s.r.QueryRowContext(ctx, "SELECT (SELECT count(*) FROM basket_inbox), (SELECT count(*) FROM basket_backlog)").Scan(&rows, &backlog); err != nil || rows != 2 || backlog != 0 {
			t.Fatalf("inbox rows %d (want one per transaction), backlog %d: %v", rows, backlog, err)
		}
		if f, err := s.BasketFoldState(ctx); err != nil || f.Pending != 6 {
			t.Fatalf("pending after the migration: %+v %v", f, err)
		}
		foldAll(t, s)
		want := map[cooccur.Pair]int64{cooccur.PairOf("P2", "P3"): 1, cooccur.PairOf("P4", "P5"): 1, cooccur.PairOf("P5", "P6"): 1}
		if got := boughtPairs(t, s); !maps.Equal(got, want) {
			t.Fatalf("bought pairs after the migration %v, want %v", got, want)
		}
		// Folding goes on with the new sales.
		apply(t, s, sold(0, 7))
		foldAll(t, s)
		want[cooccur.PairOf("P0", "P7")] = 1
		if got := boughtPairs(t, s); !maps.Equal(got, want) {
			t.Fatalf("bought pairs after a new sale %v, want %v", got, want)
		}
	}
	t.Run("sqlite", func(t *testing.T) { t.Parallel(); run(t, "sqlite:"+filepath.Join(t.TempDir(), "hub.db")) })
	t.Run("postgres", func(t *testing.T) { t.Parallel(); run(t, testkit.Postgres(t)) })
}

// Ensure that an inbox row's sales decode to the lines encoded, and that
// a malformed one is refused rather than misread.
func TestSalesCodec(t *testing.T) {
	t.Parallel()
	e := newSalesEncoder(0)
	var want []saleLine
	r := rand.New(rand.NewPCG(1, 2))
	stamp := int64(1) << 40
	for i := range 50 {
		hi, lo := int64(r.Uint64()), int64(r.Uint64())
		stamp += r.Int64N(2000) - 500
		store := fmt.Sprintf("S%d", r.IntN(4))
		var pos, qty []int64
		for range 1 + r.IntN(4) {
			p, q := r.Int64N(1<<40), r.Int64N(20)-5
			pos, qty = append(pos, p), append(qty, q)
			want = append(want, saleLine{hi: hi, lo: lo, hlc: stamp, store: store, pos: p, qty: q})
		}
		if i == 7 {
			store = ""
			for k := range want[len(want)-len(pos):] {
				want[len(want)-len(pos)+k].store = ""
			}
		}
		e.add(hi, lo, stamp, store, pos, qty)
	}
	got, err := decodeSales(e.buf, nil)
	if err != nil || !slices.Equal(got, want) || e.lines != int64(len(want)) {
		t.Fatalf("decoded %d lines (%v), want %d (%d counted)", len(got), err, len(want), e.lines)
	}
	for _, bad := range [][]byte{nil, {0}, {2}, e.buf[:len(e.buf)-1], e.buf[:20], append(slices.Clone(e.buf), 1, 2, 3)} {
		if _, err := decodeSales(bad, nil); !errors.Is(err, errBadSales) {
			t.Fatalf("%x decoded: %v", bad, err)
		}
	}
}
