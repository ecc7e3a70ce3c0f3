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

// sumTracer keeps the statement (and its arguments) that sums the
// ledger's deltas after counts.
type sumTracer struct {
	mu   sync.Mutex
	sql  string
	args []any
}

func (tr *sumTracer) TraceQueryStart(ctx context.Context, _ *pgx.Conn, d pgx.TraceQueryStartData) context.Context {
	if strings.Contains(d.SQL, "SUM(l.delta)") {
		tr.mu.Lock()
		tr.sql, tr.args = d.SQL, d.Args
		tr.mu.Unlock()
	}
	return ctx
}

func (tr *sumTracer) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}

// TestDeltasAfterPlan checks on PostgreSQL how the sum of the deltas
// stamped after a batch's counts reads a ledger with a history: one range
// of the ledger's key per counted position, never a scan of the whole
// ledger, whether the ledger has statistics yet or not. As a join, the
// planner chose a (parallel) scan of the ledger while its statistics
// were missing or old (a new hub, a ledger growing faster than
// autovacuum analyzes it), which made every batch with a count slower
// as the history grew; no functional test notices that.
func TestDeltasAfterPlan(t *testing.T) {
	for _, tc := range []struct {
		name  string
		stats bool
	}{{"analyzed", true}, {"no statistics yet", false}} {
		t.Run(tc.name, func(t *testing.T) {
			s := openPostgres(t)
			tr := &sumTracer{}
			retrace(t, s, tr)
			wall := seedPositions(t, s, 100, 10)
			// 300 lines a position, as after a few months of sales.
			fillHistory(t, s, 100*10*150, wall-1)
			if !tc.stats {
				if _, err := s.w.ExecContext(context.Background(), "DELETE FROM pg_statistic WHERE starelid = 'stock_ledger'::regclass"); err != nil {
					t.Fatal(err)
				}
			}
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
func genericPlan(t *testing.T, s *Store, tr *sumTracer, do func(*sql.Tx) error) string {
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
	// EXPLAIN EXECUTE takes no parameters: the arrays (sent as text) go
	// as literals.
	var params []string
	for _, a := range args {
		if v, ok := a.(string); ok { // not the driver's result formats
			params = append(params, "'"+strings.ReplaceAll(v, "'", "''")+"'")
		}
	}
	rows, err := tx.QueryContext(ctx, "EXPLAIN EXECUTE traced("+strings.Join(params, ", ")+")")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var plan []string
	for rows.Next() {
		var l string
		if err := rows.Scan(&l); err != nil {
			t.Fatal(err)
		}
		plan = append(plan, l)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return strings.Join(plan, "\n")
}
