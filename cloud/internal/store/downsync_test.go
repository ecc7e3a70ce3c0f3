package store

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strconv"
	"testing"

	"github.com/omnisync/omnisync/cloud/internal/inventory"
	"github.com/omnisync/omnisync/shared/events"
)

// Ensure that the down-sync sweep's ChangedStock lists exactly the
// positions changed at or after its cursor, in change order, page by
// page, across the minutes its index is kept by (a cursor in the middle
// of a minute leaves out that minute's earlier changes).
func TestChangedStock_PagesInChangeOrder(t *testing.T) {
	forEachStoreAtOnce(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		pos := newDevice("S1", "pos-1", 1)
		var envs []events.Envelope
		for i := range 6 {
			envs = append(envs, pos.ev(1000, events.KindReceipt, sale("S1", line(fmt.Sprintf("SKU-%d", i), 5))))
		}
		applyOK(t, s, envs...)
		// Changes at: SKU-0 minute 9 (end), SKU-1 minute 10 (start),
		// SKU-2 and SKU-3 at the same ms, SKU-4 minute 11, SKU-5 long ago.
		const m = 60_000
		at := map[string]int64{"SKU-0": 10*m - 1, "SKU-1": 10 * m, "SKU-2": 10*m + 500, "SKU-3": 10*m + 500, "SKU-4": 11*m + 7, "SKU-5": 5}
		for sku, ms := range at {
			if _, err := s.w.ExecContext(ctx, "UPDATE stock SET updated_ms = $1 WHERE sku = $2", ms, sku); err != nil {
				t.Fatal(err)
			}
		}
		tests := []struct {
			name  string
			since Cursor
			limit int
			want  []string
		}{
			{"from a minute's first ms", Cursor{MS: 10 * m}, 2, []string{"SKU-1", "SKU-2", "SKU-3", "SKU-4"}},
			{"from the ms before it", Cursor{MS: 10*m - 1}, 10, []string{"SKU-0", "SKU-1", "SKU-2", "SKU-3", "SKU-4"}},
			{"inside a minute", Cursor{MS: 10*m + 1}, 1, []string{"SKU-2", "SKU-3", "SKU-4"}},
			{"after a key at the same ms", Cursor{MS: 10*m + 500, Key: "SKU-2", Key2: "S1"}, 3, []string{"SKU-3", "SKU-4"}},
			{"everything", Cursor{}, 4, []string{"SKU-5", "SKU-0", "SKU-1", "SKU-2", "SKU-3", "SKU-4"}},
			{"nothing newer", Cursor{MS: 12 * m}, 3, nil},
		}
		for _, tc := range tests {
			var got []string
			c := tc.since
			for range 10 {
				keys, next, err := s.ChangedStock(ctx, c, tc.limit)
				if err != nil {
					t.Fatal(err)
				}
				for _, k := range keys {
					if k != (inventory.Key{SKU: k.SKU, Location: "S1"}) {
						t.Fatalf("%s: key %+v", tc.name, k)
					}
					got = append(got, k.SKU)
				}
				if len(keys) < tc.limit {
					break
				}
				c = next
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("%s: got %v, want %v", tc.name, got, tc.want)
			}
		}
	})
}

// Ensure that the sweeps of products, review summaries, pickup documents
// and recommendations (changedIDs) page in change order across the
// minutes their indexes are kept by, as ChangedStock does, and see rows
// whose change moved them to a later minute.
func TestChangedIDs_PagesInChangeOrder(t *testing.T) {
	forEachStoreAtOnce(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		const m = 60_000
		at := map[string]int64{"A": 10*m - 1, "B": 10 * m, "C": 10*m + 500, "D": 10*m + 500, "E": 11*m + 7, "F": 5}
		sweeps := []struct {
			table, col string
			changed    func(context.Context, Cursor, int) ([]string, Cursor, error)
		}{
			{"products", "product_id", s.ChangedProducts},
			{"review_stats", "product_id", s.ChangedReviews},
			{"reservations", "reservation_id", s.ChangedReservations},
			{"product_recs", "product_id", s.ChangedRecs},
		}
		tests := []struct {
			name  string
			since Cursor
			limit int
			want  []string
		}{
			{"from a minute's first ms", Cursor{MS: 10 * m}, 2, []string{"B", "C", "D", "E"}},
			{"from the ms before it", Cursor{MS: 10*m - 1}, 10, []string{"A", "B", "C", "D", "E"}},
			{"inside a minute", Cursor{MS: 10*m + 1}, 1, []string{"C", "D", "E"}},
			{"after a key at the same ms", Cursor{MS: 10*m + 500, Key: "C"}, 3, []string{"D", "E"}},
			{"everything", Cursor{}, 4, []string{"F", "A", "B", "C", "D", "E"}},
			{"nothing newer", Cursor{MS: 12 * m}, 3, nil},
		}
		for _, sw := range sweeps {
			for id, ms := range at {
				// Each row is written at minute 0 first and then moved,
				// as an update moves a row to the minute of its change.
				if _, err := s.w.ExecContext(ctx, "INSERT INTO "+sw.table+" ("+sw.col+", updated_ms) VALUES ($1, 0)", id); err != nil {
					t.Fatal(err)
				}
				if _, err := s.w.ExecContext(ctx, "UPDATE "+sw.table+" SET updated_ms = $1 WHERE "+sw.col+" = $2", ms, id); err != nil {
					t.Fatal(err)
				}
			}
			for _, tc := range tests {
				var got []string
				c := tc.since
				for range 10 {
					ids, next, err := sw.changed(ctx, c, tc.limit)
					if err != nil {
						t.Fatal(err)
					}
					got = append(got, ids...)
					if len(ids) < tc.limit {
						break
					}
					c = next
				}
				if !slices.Equal(got, tc.want) {
					t.Errorf("%s, %s: got %v, want %v", sw.table, tc.name, got, tc.want)
				}
			}
		}
	})
}

// BenchmarkChangedStock measures one down-sync sweep (pages of 1,000 over
// the positions changed in the last two minutes) over a stock table of
// OMNI_BENCH_POSITIONS positions (default 500,000), of which 1% changed in
// that time: through the minute index, and as the sweep read before it
// (every page a scan of the whole table), for the ratio in one run.
func BenchmarkChangedStock(b *testing.B) {
	n := 500_000
	if v, err := strconv.Atoi(os.Getenv("OMNI_BENCH_POSITIONS")); err == nil && v > 0 {
		n = v
	}
	b.Run("sqlite", func(b *testing.B) { benchChangedStock(b, openSQLite(b), n) })
	b.Run("postgres", func(b *testing.B) { benchChangedStock(b, openPostgres(b), n) })
}

func benchChangedStock(b *testing.B, s *Store, n int) {
	ctx := context.Background()
	const now = 1_000 * 60_000
	// Positions changed over the past day; every hundredth in the last
	// two minutes.
	gen := "WITH RECURSIVE g(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM g WHERE i < $1) SELECT i FROM g"
	if s.d.pg() {
		gen = "SELECT generate_series(1, $1) AS i"
	}
	if _, err := s.w.ExecContext(ctx, `INSERT INTO stock (sku, location, updated_ms)
SELECT 'SKU-' || i, 'S' || (i % 50), CASE WHEN i % 100 = 0 THEN $2 - (i % 120000) ELSE $2 - 120001 - (i * 97) % 86400000 END FROM (`+gen+`) g`, n, now); err != nil {
		b.Fatal(err)
	}
	if s.d.pg() {
		if _, err := s.w.ExecContext(ctx, "ANALYZE stock"); err != nil {
			b.Fatal(err)
		}
	} else if _, err := s.w.ExecContext(ctx, "ANALYZE"); err != nil {
		b.Fatal(err)
	}
	fullScan := func(ctx context.Context, since Cursor, limit int) ([]inventory.Key, Cursor, error) {
		rows, err := s.r.QueryContext(ctx, `SELECT sku, location, updated_ms FROM stock
WHERE updated_ms > $1 OR (updated_ms = $1 AND (sku > $2 OR (sku = $2 AND location > $3)))
ORDER BY updated_ms, sku, location LIMIT `+strconv.Itoa(limit), since.MS, since.Key, since.Key2)
		if err != nil {
			return nil, since, err
		}
		defer rows.Close()
		var out []inventory.Key
		for rows.Next() {
			var k inventory.Key
			if err := rows.Scan(&k.SKU, &k.Location, &since.MS); err != nil {
				return nil, since, err
			}
			since.Key, since.Key2 = k.SKU, k.Location
			out = append(out, k)
		}
		return out, since, rows.Err()
	}
	for _, v := range []struct {
		name  string
		sweep func(context.Context, Cursor, int) ([]inventory.Key, Cursor, error)
	}{{"minute-index", s.ChangedStock}, {"full-scan", fullScan}} {
		b.Run(v.name, func(b *testing.B) {
			for b.Loop() {
				total := 0
				for c := (Cursor{MS: now - 120_000}); ; {
					keys, next, err := v.sweep(ctx, c, 1000)
					if err != nil {
						b.Fatal(err)
					}
					total += len(keys)
					if len(keys) < 1000 {
						break
					}
					c = next
				}
				if total != n/100 {
					b.Fatalf("sweep found %d positions, want %d", total, n/100)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/sweep")
		})
	}
}
