package store

import (
	"context"
	"database/sql"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/omnisync/omnisync/shared/events"
)

// The plan guards: a statement joining a batch's arrays to a table that
// grows must probe that table by an index under the generic plan a busy
// hub settles on (PostgreSQL guesses ten array elements), with the
// table analyzed and before it has statistics (a new hub, a restored or
// upgraded database before its ANALYZE). A scan of such a table makes
// every batch slower as the table grows, which no functional test sees.

// stmtLog keeps every distinct statement (with the arguments of its
// first run) whose text holds all of match.
type stmtLog struct {
	match []string
	mu    sync.Mutex
	order []string
	args  map[string][]any
}

func (l *stmtLog) TraceQueryStart(ctx context.Context, _ *pgx.Conn, d pgx.TraceQueryStartData) context.Context {
	for _, m := range l.match {
		if !strings.Contains(d.SQL, m) {
			return ctx
		}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, ok := l.args[d.SQL]; !ok {
		l.args[d.SQL] = d.Args
		l.order = append(l.order, d.SQL)
	}
	return ctx
}

func (l *stmtLog) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}

// statsCases are the two states of the statistics a guard checks in.
var statsCases = []struct {
	name  string
	stats bool
}{{"no statistics yet", false}, {"analyzed", true}}

// setStatistics analyzes every table of s's schema, or removes their
// statistics.
func setStatistics(t *testing.T, s *Store, analyzed bool) {
	t.Helper()
	q := "ANALYZE"
	if !analyzed {
		q = `DELETE FROM pg_statistic WHERE starelid IN
			(SELECT c.oid FROM pg_class c WHERE c.relnamespace = current_schema()::regnamespace)`
	}
	if _, err := s.w.ExecContext(context.Background(), q); err != nil {
		t.Fatal(err)
	}
}

// bigTables returns the tables of s's schema named with prefix that
// hold 10,000 rows or more: a scan of a smaller one can be the right
// plan.
func bigTables(t *testing.T, s *Store, prefix string) map[string]bool {
	t.Helper()
	ctx := context.Background()
	big := map[string]bool{}
	for _, name := range stringsOf(t)(s.w.QueryContext(ctx, `SELECT c.relname FROM pg_class c
		WHERE starts_with(c.relname, $1) AND c.relkind = 'r' AND c.relnamespace = current_schema()::regnamespace`, prefix)) {
		var n int
		if err := s.w.QueryRowContext(ctx, "SELECT count(*) FROM "+name).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n >= 10_000 {
			big[name] = true
		}
	}
	return big
}

// checkPlans fails the test for each statement log kept whose generic
// plan scans a whole table of big.
func checkPlans(t *testing.T, s *Store, log *stmtLog, big map[string]bool) {
	t.Helper()
	log.mu.Lock()
	stmts := slices.Clone(log.order)
	log.mu.Unlock()
	if len(stmts) == 0 {
		t.Fatalf("no statement held %q", log.match)
	}
	for _, q := range stmts {
		tr := &stmtTracer{sql: q, args: log.args[q]}
		plan := genericPlan(t, s, tr, func(*sql.Tx) error { return nil })
		for _, l := range strings.Split(plan, "\n") {
			_, scan, ok := strings.Cut(l, "Seq Scan on ")
			if name, _, _ := strings.Cut(scan, " "); ok && big[name] {
				t.Errorf("a statement reads the whole of %s under the generic plan:\n%s\n%s", name, q, plan)
				break
			}
		}
	}
	t.Logf("%d statements checked", len(stmts))
}

// fillWith applies n events made by ev, batch at a time, and fails the
// test unless every one applies.
func fillWith(t *testing.T, s *Store, n, batch int, ev func(i int) events.Envelope) {
	t.Helper()
	for lo := 0; lo < n; lo += batch {
		var envs []events.Envelope
		for i := lo; i < min(lo+batch, n); i++ {
			envs = append(envs, ev(i))
		}
		if res, err := s.ApplyBatch(context.Background(), itemsOf(envs...)); err != nil || res.Applied != len(envs) {
			t.Fatalf("fill: %+v %v", res, err)
		}
	}
}

// guardPlans runs workload (given the case's index) in each state of the
// statistics, recording the statements that hold every string of match,
// and checks their plans against big.
func guardPlans(t *testing.T, s *Store, match []string, big map[string]bool, workload func(t *testing.T, c int)) {
	for c, tc := range statsCases {
		t.Run(tc.name, func(t *testing.T) {
			setStatistics(t, s, tc.stats)
			log := &stmtLog{match: match, args: map[string][]any{}}
			retrace(t, s, log)
			workload(t, c)
			checkPlans(t, s, log, big)
		})
	}
}
