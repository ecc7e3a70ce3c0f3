package store

import (
	"context"
	"testing"
	"time"

	"github.com/omnisync/omnisync/cloud/internal/inventory"
	"github.com/omnisync/omnisync/shared/events"
)

// optimisticAgain lets s's next batch write from its cache of positions,
// whatever stale batches it met before (stockMode's pause).
func optimisticAgain(s *Store) {
	s.stockMode.mu.Lock()
	s.stockMode.skip, s.stockMode.backoff = 0, 0
	s.stockMode.mu.Unlock()
}

// sameBooks fails unless every stock row of got has the columns of want's
// (all but the time of the last write).
func sameBooks(t *testing.T, got, want *Store, when string) {
	t.Helper()
	g, w := rawStockRows(t, got, ""), rawStockRows(t, want, "")
	if len(g) != len(w) {
		t.Fatalf("%s: %d positions, want %d", when, len(g), len(w))
	}
	for k, wr := range w {
		gr := g[k]
		gr.atMS, wr.atMS = 0, 0
		if gr != wr {
			t.Fatalf("%s: %v is %+v, want %+v", when, k, gr, wr)
		}
	}
}

// Ensure that a replica whose cached state of a position another replica
// has since changed finds out when it writes the position, and redoes the
// batch from the stored state: the books are those of one store applying
// the same batches. Both a position the batch changes and one it leaves as
// it was (whose state the batch's decisions still rest on) are checked.
func TestApplyBatch_StaleCachedPositionRedone(t *testing.T) {
	t.Parallel()
	s1 := openPostgres(t)
	s2 := mustOpen(t, testDSN(t, s1))
	ref := openPostgres(t)
	hq, d1, d2 := stocktakes{}, newDevice("S1", "pos-1", 1), newDevice("S1", "pos-2", 1)
	a, b := inventory.Key{SKU: "A", Location: "S1"}, inventory.Key{SKU: "B", Location: "S1"}
	both := func(s *Store, envs ...events.Envelope) {
		t.Helper()
		apply(t, s, envs...)
		apply(t, ref, envs...)
	}
	onHand := func(k inventory.Key) int64 {
		t.Helper()
		return rawStockRows(t, s1, "")[k].onHand
	}

	// s1 counts A and B (and caches them), then s2 sells 3 A and 2 B.
	both(s1, hq.ev(5, events.KindCount, sale("S1", line("A", 10), line("B", 10))))
	both(s2, d2.ev(40, events.KindSale, sale("S1", line("A", 3), line("B", 2))))
	if s1.StockRedos() != 0 || s2.StockRedos() != 0 {
		t.Fatalf("redos before any stale state: %d, %d", s1.StockRedos(), s2.StockRedos())
	}

	// s1 sells one A from its cached 10: the write finds A moved on.
	both(s1, d1.ev(41, events.KindSale, sale("S1", line("A", 1))))
	if n := s1.StockRedos(); n != 1 {
		t.Fatalf("redos after a stale changed position: %d, want 1", n)
	}
	if got := onHand(a); got != 6 {
		t.Fatalf("A on hand %d, want 6", got)
	}
	sameBooks(t, s1, ref, "after a stale changed position")

	// s1 applies a sale and a return of B stamped before B's count: B
	// stays as it is, by its cached state and by the stored one alike, but
	// the cached one is stale (s2's sale), so the batch is redone all the
	// same.
	optimisticAgain(s1)
	early := []events.Envelope{d1.ev(3, events.KindSale, sale("S1", line("B", 2))), d1.ev(4, events.KindReturn, sale("S1", line("B", 2)))}
	res := apply(t, s1, early...)
	apply(t, ref, early...)
	if len(res.Positions) != 0 || res.Applied != 2 {
		t.Fatalf("deltas before the count: %+v", res)
	}
	if n := s1.StockRedos(); n != 2 {
		t.Fatalf("redos after a stale unchanged position: %d, want 2", n)
	}
	if got := onHand(b); got != 8 {
		t.Fatalf("B on hand %d, want 8", got)
	}
	sameBooks(t, s1, ref, "after a stale unchanged position")

	// The redone batches refreshed s1's cache: its next write needs no
	// redo.
	optimisticAgain(s1)
	both(s1, d1.ev(50, events.KindSale, sale("S1", line("A", 1), line("B", 1))))
	if n := s1.StockRedos(); n != 2 {
		t.Fatalf("redos with a fresh cache: %d, want 2", n)
	}
	sameBooks(t, s1, ref, "with a fresh cache")
}

// Ensure that the optimistic write does not wait for a position another
// transaction holds (it cannot know the order PostgreSQL locks in, so
// waiting could close a cycle): it gives up at once, and the redone batch,
// which locks in id order, waits for the holder and then applies.
func TestApplyBatch_HeldPositionRedoneLocked(t *testing.T) {
	t.Parallel()
	s1 := openPostgres(t)
	s2 := mustOpen(t, testDSN(t, s1))
	hq, d1 := stocktakes{}, newDevice("S1", "pos-1", 1)
	apply(t, s1, hq.ev(5, events.KindCount, sale("S1", line("A", 10))))

	ctx := context.Background()
	tx, err := s2.w.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, "SELECT id FROM stock WHERE sku = 'A' FOR UPDATE"); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := s1.ApplyBatch(ctx, itemsOf(d1.ev(20, events.KindSale, sale("S1", line("A", 4)))))
		done <- err
	}()
	// The optimistic attempt gives up, the redo waits for the lock.
	deadline := time.Now().Add(10 * time.Second)
	for s1.StockRedos() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the optimistic write did not give up on a held position")
		}
		time.Sleep(5 * time.Millisecond)
	}
	select {
	case err := <-done:
		t.Fatalf("applied while the position was held: %v", err)
	case <-time.After(100 * time.Millisecond):
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if got := rawStockRows(t, s1, "")[inventory.Key{SKU: "A", Location: "S1"}]; got.onHand != 6 || got.version != 2 {
		t.Fatalf("A is %+v, want on hand 6 at version 2", got)
	}
	if n := s1.StockRedos(); n != 1 {
		t.Fatalf("redos: %d, want 1", n)
	}
}

// Ensure that after a stale batch the next ones lock their positions, for
// longer after each stale one in a row, and that a batch whose cache held
// ends the pause's growth.
func TestStockMode_PausesAfterStale(t *testing.T) {
	var m stockMode
	run := func(n int) (optimistic int) {
		for range n {
			if m.optimistic() {
				optimistic++
			}
		}
		return optimistic
	}
	if got := run(3); got != 3 {
		t.Fatalf("fresh: %d of 3 optimistic", got)
	}
	m.stale()
	if got := run(2); got != 1 {
		t.Fatalf("after one stale batch: %d of 2 optimistic, want 1", got)
	}
	m.stale()
	if got := run(3); got != 1 {
		t.Fatalf("after two stale batches: %d of 3 optimistic, want 1", got)
	}
	for range 10 {
		m.stale()
	}
	if got := run(65); got != 1 {
		t.Fatalf("after many stale batches: %d of 65 optimistic, want 1 (pause capped at 64)", got)
	}
	m.held()
	m.stale()
	if got := run(2); got != 1 {
		t.Fatalf("stale after a held batch: %d of 2 optimistic, want 1", got)
	}
}
