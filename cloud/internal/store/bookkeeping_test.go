package store

import (
	"context"
	"fmt"
	"math/rand"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/omnisync/omnisync/cloud/internal/inventory"
	"github.com/omnisync/omnisync/cloud/internal/inventory/inventorytest"
	"github.com/omnisync/omnisync/shared/events"
)

// rawStock is every column of a stock row.
type rawStock struct {
	onHand, reserved, safety, available int64
	hasCount, countQty, countHLC        int64
	countID                             string
	lastHLC, version, atMS              int64
}

func rawStockRows(t *testing.T, s *Store, prefix string) map[inventory.Key]rawStock {
	t.Helper()
	rows, err := s.r.QueryContext(context.Background(), `SELECT sku, location, on_hand, reserved, safety, available, has_count, count_qty,
	count_hlc, count_id, last_hlc, version, updated_ms FROM stock WHERE sku LIKE $1`, prefix+"%")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[inventory.Key]rawStock{}
	for rows.Next() {
		var k inventory.Key
		var r rawStock
		if err := rows.Scan(&k.SKU, &k.Location, &r.onHand, &r.reserved, &r.safety, &r.available, &r.hasCount, &r.countQty,
			&r.countHLC, &r.countID, &r.lastHLC, &r.version, &r.atMS); err != nil {
			t.Fatal(err)
		}
		out[k] = r
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// Ensure that, whatever the order and duplication of deliveries, every
// column of a stock row is kept as the rules say: the version grows by one
// for each batch that reports the position written (and only then), with
// updated_ms the time of that batch; the count columns are the latest
// count's, or zero without one; a position has an open conflict exactly
// while its available stock is below zero.
func TestApplyBatch_StockRowBookkeeping(t *testing.T) {
	t.Parallel()
	iterations := map[string]int{"sqlite": 60, "postgres": 20}
	if testing.Short() {
		iterations = map[string]int{"sqlite": 20, "postgres": 8}
	}
	forEachStore(t, func(t *testing.T, s *Store) {
		clock := testNow
		s.now = func() time.Time { return clock }
		for it := 0; it < iterations[s.Dialect()]; it++ {
			rng := rand.New(rand.NewSource(int64(1000 + it)))
			opts := inventorytest.Options{
				Prefix:    fmt.Sprintf("bk%d-", it),
				Devices:   1 + rng.Intn(3),
				SKUs:      1 + rng.Intn(4),
				Locations: 1 + rng.Intn(3),
				Events:    20 + rng.Intn(120),
			}
			log := inventorytest.Log(rng, opts)
			book := bookOf(t, log)
			versions := map[inventory.Key]int64{}
			writtenAt := map[inventory.Key]int64{}
			for _, b := range inventorytest.Batches(rng, inventorytest.Deliveries(rng, log, 0.3), 30) {
				clock = clock.Add(time.Millisecond)
				res := apply(t, s, b...)
				if !slices.IsSortedFunc(res.Positions, inventory.Key.Compare) || len(slices.CompactFunc(slices.Clone(res.Positions), func(a, b inventory.Key) bool { return a == b })) != len(res.Positions) {
					t.Fatalf("iteration %d: positions not sorted and unique: %v", it, res.Positions)
				}
				for _, k := range res.Positions {
					versions[k]++
					writtenAt[k] = clock.UnixMilli()
				}
			}
			want := book.Positions()
			open := openConflicts(t, s)
			for k, r := range rawStockRows(t, s, opts.Prefix) {
				what := fmt.Sprintf("iteration %d: %v: %+v", it, k, r)
				if r.version != versions[k] || (r.version > 0 && r.atMS != writtenAt[k]) {
					t.Fatalf("%s: version %d at %d, want %d at %d", what, r.version, r.atMS, versions[k], writtenAt[k])
				}
				if r.available != r.onHand-r.reserved-r.safety {
					t.Fatalf("%s: available", what)
				}
				w := want[k]
				if (r.hasCount != 0) != w.HasCount || r.countQty != w.CountQty || r.countHLC != w.CountStamp.HLC.Pack() || r.countID != w.CountStamp.ID {
					t.Fatalf("%s: count columns, want %+v", what, w)
				}
				if c, ok := open[k]; ok != (r.available < 0) || ok && c.Available != r.available {
					t.Fatalf("%s: open conflict %+v", what, c)
				}
			}
			compareWithOracle(t, s, book, opts.Prefix, fmt.Sprintf("iteration %d", it))
		}
	})
}

// Ensure that a batch mixing new lines with lines already in the ledger
// (an event id resent under another origin) applies the new ones once and
// only the new ones, whether the positions take the fast path or not.
func TestApplyBatch_LedgerSeenInMixedBatch(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, s *Store) {
		a, b := newDevice("S1", "pos-1", 1), newDevice("S1", "pos-2", 1)
		hq := stocktakes{}
		apply(t, s, hq.ev(5, events.KindCount, sale("S1", line("A", 10), line("B", 10))))
		e1 := a.ev(10, events.KindSale, sale("S1", line("A", 1), line("B", 2)))
		apply(t, s, e1)
		e1b := b.ev(10, events.KindSale, sale("S1", line("A", 1), line("B", 2)))
		e1b.ID = e1.ID
		res := apply(t, s,
			e1b,
			b.ev(11, events.KindSale, sale("S1", line("A", 3))),
			b.ev(12, events.KindCount, sale("S1", line("C", 7))),
		)
		if res.Applied != 3 || !slices.Equal(res.Positions, []inventory.Key{{SKU: "A", Location: "S1"}, {SKU: "C", Location: "S1"}}) {
			t.Fatalf("result %+v", res)
		}
		for sku, want := range map[string]int64{"A": 6, "B": 8, "C": 7} {
			if got := stockAt(t, s, sku, "S1").OnHand; got != want {
				t.Fatalf("%s on_hand = %d, want %d", sku, got, want)
			}
		}
		rows := rawStockRows(t, s, "")
		if v := rows[inventory.Key{SKU: "B", Location: "S1"}].version; v != 2 {
			t.Fatalf("B version = %d, want 2", v)
		}
	})
}

// Ensure that a batch whose deltas at a position cancel out, stamped before
// what the position already shows, leaves it unwritten (same version, not
// in Positions), while one stamped later, or one that changes on_hand, is
// written once.
func TestApplyBatch_UnchangedPositionNotWritten(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, s *Store) {
		d, hq := newDevice("S1", "pos-1", 1), stocktakes{}
		a := inventory.Key{SKU: "A", Location: "S1"}
		apply(t, s, hq.ev(5, events.KindCount, sale("S1", line("A", 10), line("B", 10))))
		apply(t, s, d.ev(20, events.KindSale, sale("S1", line("A", 1))))
		before := rawStockRows(t, s, "")[a]
		res := apply(t, s, d.ev(12, events.KindSale, sale("S1", line("A", 2))), d.ev(13, events.KindReturn, sale("S1", line("A", 2))))
		if len(res.Positions) != 0 || res.Applied != 2 {
			t.Fatalf("cancelling deltas: %+v", res)
		}
		if after := rawStockRows(t, s, "")[a]; after != before {
			t.Fatalf("cancelling deltas wrote %+v, was %+v", after, before)
		}
		res = apply(t, s, d.ev(30, events.KindSale, sale("S1", line("A", 2))), d.ev(31, events.KindReturn, sale("S1", line("A", 2), line("B", 1))))
		if !slices.Equal(res.Positions, []inventory.Key{a, {SKU: "B", Location: "S1"}}) {
			t.Fatalf("later deltas: %+v", res)
		}
		if after := rawStockRows(t, s, "")[a]; after.version != before.version+1 || after.onHand != 9 || after.lastHLC <= before.lastHLC {
			t.Fatalf("later deltas: %+v, was %+v", after, before)
		}
	})
}

// Ensure that replicas applying one log at once, each receiving every event
// under an origin of its own (so only the ledger's key tells the copies
// apart), apply each event's effect once, reach the oracle's books and
// never deadlock.
func TestConcurrentReplicas_EventsUnderManyOrigins(t *testing.T) {
	t.Parallel()
	opts := inventorytest.Options{Prefix: "mo-", Devices: 4, SKUs: 5, Locations: 3, Events: 1500}
	if testing.Short() {
		opts.Events = 600
	}
	log := inventorytest.Log(rand.New(rand.NewSource(7)), opts)
	onReplicas(t, 4, func(t *testing.T, stores []*Store, retries *atomic.Int64) {
		applyConcurrently(t, stores, 4, func(r int) [][]events.Envelope {
			mine := make([]events.Envelope, len(log))
			for i, e := range log {
				e.Origin.Device = fmt.Sprintf("%s-via-%d", e.Origin.Device, r)
				mine[i] = e
			}
			return inventorytest.Batches(rand.New(rand.NewSource(int64(r))), inventorytest.Deliveries(rand.New(rand.NewSource(int64(50+r))), mine, 0.2), 60)
		})
		compareWithOracle(t, stores[0], bookOf(t, log), opts.Prefix, "after replicas with many origins")
		if n := retries.Load(); n != 0 {
			t.Fatalf("%d transactions retried after a deadlock or serialization failure", n)
		}
	})
}
