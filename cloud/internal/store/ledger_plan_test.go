package store

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/omnisync/omnisync/shared/events"
	"github.com/omnisync/omnisync/shared/hlc"
)

// stmtTracer keeps the last statement (and its arguments) whose text
// holds match.
type stmtTracer struct {
	match string
	mu    sync.Mutex
	sql   string
	args  []any
}

func (tr *stmtTracer) TraceQueryStart(ctx context.Context, _ *pgx.Conn, d pgx.TraceQueryStartData) context.Context {
	if strings.Contains(d.SQL, tr.match) {
		tr.mu.Lock()
		tr.sql, tr.args = d.SQL, d.Args
		tr.mu.Unlock()
	}
	return ctx
}

func (tr *stmtTracer) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}

// TestDeltasAfterPlan checks on PostgreSQL how the sum of the deltas
// stamped after a batch's counts reads a ledger with a history: one range
// of the ledger's key per counted position, never a scan of the whole
// ledger, whether the ledger has statistics yet or not. As a join, the
// planner chose a (parallel) scan of the ledger while its statistics
// were missing or old (a new hub, a ledger growing faster than
// autovacuum analyzes it), which made every batch with a count slower
// as the history grew; no functional test notices that.
func TestDeltasAfterPlan(t *testing.T) {
	withLedgerHistory(t, func(t *testing.T, s *Store, wall int64) {
		tr := &stmtTracer{match: "SUM(l.delta)"}
		retrace(t, s, tr)
		counts := map[int64]events.Stamp{}
		for id := int64(1); id <= 400; id++ {
			counts[id] = events.Stamp{HLC: hlc.Timestamp{Wall: wall - 30*24*60*60*1000}, ID: "00000000-0000-7000-8000-000000000000"}
		}
		plan := genericPlan(t, s, tr, func(tx *sql.Tx) error {
			_, err := s.deltasAfter(context.Background(), tx, counts)
			return err
		})
		if strings.Contains(plan, "Seq Scan on stock_ledger") || !strings.Contains(plan, "stock_ledger") {
			t.Errorf("the sum of deltas after counts does not read the ledger by its key:\n%s", plan)
		}
	})
}

// TestLedgerReadsPlan checks on PostgreSQL that what the console reads
// of a position's ledger lines (sales since a day, a position's history)
// seeks each position's lines of each day by the ledger's key, under the
// generic plan, with statistics and without: joined to the days, the
// planner read every line of those days and hashed them by position,
// 2 ms becoming 200 ms at a 1M-event ledger (BenchmarkLedgerReads).
func TestLedgerReadsPlan(t *testing.T) {
	withLedgerHistory(t, func(t *testing.T, s *Store, wall int64) {
		for _, r := range []struct {
			name, match, pos string
			read             func() error
		}{
			{"sales since", "-l.delta AS units", "p.id", func() error {
				_, err := s.SalesSince(context.Background(), []string{"SKU-001", "SKU-002"}, time.UnixMilli(wall).Add(-28*24*time.Hour))
				return err
			}},
			{"position history", "ORDER BY l.hlc DESC", "s.id", func() error {
				_, _, err := s.PositionHistory(context.Background(), "SKU-001", "S01", 100)
				return err
			}},
		} {
			tr := &stmtTracer{match: r.match}
			retrace(t, s, tr)
			plan := genericPlan(t, s, tr, func(*sql.Tx) error { return r.read() })
			if strings.Contains(plan, "Seq Scan on stock_ledger") || !strings.Contains(plan, "(pos_id = "+r.pos+")") {
				t.Errorf("%s does not seek each position's lines by the ledger's key:\n%s", r.name, plan)
			}
		}
	})
}

// withLedgerHistory runs check twice, on a PostgreSQL store with 1,000
// positions and 300 ledger lines each (as after a few months of sales)
// and the wall time of its last count: with the ledger analyzed, and with
// no statistics yet.
func withLedgerHistory(t *testing.T, check func(t *testing.T, s *Store, wall int64)) {
	for _, tc := range []struct {
		name  string
		stats bool
	}{{"analyzed", true}, {"no statistics yet", false}} {
		t.Run(tc.name, func(t *testing.T) {
			s := openPostgres(t)
			wall := seedPositions(t, s, 100, 10)
			fillHistory(t, s, 100*10*150, wall-1)
			if !tc.stats {
				if _, err := s.w.ExecContext(context.Background(), "DELETE FROM pg_statistic WHERE starelid = 'stock_ledger'::regclass"); err != nil {
					t.Fatal(err)
				}
			}
			check(t, s, wall)
		})
	}
}

// seedPositions counts skus SKUs at locs locations into s, and returns
// the wall time of the last count.
func seedPositions(t *testing.T, s *Store, skus, locs int) int64 {
	t.Helper()
	hq := stocktakes{}
	wall := time.Now().UnixMilli()
	var seed []events.Envelope
	for l := range locs {
		var ls []events.Line
		for i := range skus {
			ls = append(ls, line(fmt.Sprintf("SKU-%03d", i), 100))
		}
		wall++
		seed = append(seed, hq.ev(wall, events.KindCount, sale(fmt.Sprintf("S%02d", l), ls...)))
	}
	if res, err := s.ApplyBatch(context.Background(), itemsOf(seed...)); err != nil || res.Applied != len(seed) {
		t.Fatalf("seed: %+v %v", res, err)
	}
	return wall
}

// genericPlan runs do in a transaction, and returns PostgreSQL's generic
// plan of the statement tr kept from it. The hub's statements are
// prepared, and after a few runs PostgreSQL plans them once for any
// arrays, guessing ten elements: that is the plan a busy hub runs.
func genericPlan(t *testing.T, s *Store, tr *stmtTracer, do func(*sql.Tx) error) string {
	t.Helper()
	ctx := context.Background()
	tx, end := beginTx(t, s)
	defer end()
	if err := do(tx); err != nil {
		t.Fatal(err)
	}
	tr.mu.Lock()
	q, args := tr.sql, tr.args
	tr.mu.Unlock()
	if q == "" {
		t.Fatal("no statement was sent")
	}
	for _, stmt := range []string{"SET LOCAL plan_cache_mode = force_generic_plan", "PREPARE traced AS " + q} {
		if _, err := tx.ExecContext(ctx, stmt); err != nil {
			t.Fatal(err)
		}
	}
	// A prepared statement outlives the transaction, on a connection the
	// pool hands out again.
	defer tx.ExecContext(ctx, "DEALLOCATE traced")
	// EXPLAIN EXECUTE takes no parameters: the arrays (sent as text) and
	// numbers go as literals.
	var params []string
	for _, a := range args {
		switch v := a.(type) { // not the driver's result formats
		case string:
			params = append(params, "'"+strings.ReplaceAll(v, "'", "''")+"'")
		case int64:
			params = append(params, fmt.Sprint(v))
		}
	}
	return strings.Join(stringsOf(t)(tx.QueryContext(ctx, "EXPLAIN EXECUTE traced("+strings.Join(params, ", ")+")")), "\n")
}
