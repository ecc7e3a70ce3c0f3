package store

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/omnisync/omnisync/shared/events"
)

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

// TestCustomerStatementPlans checks on PostgreSQL every statement that
// joins a batch's arrays to the identity tables, as the hub runs them
// for identify events and sales naming customers and as HQ reads a
// customer: under the generic
// plan a busy hub settles on (ten array elements guessed), with the
// tables analyzed and with no statistics yet, none may read a whole
// customer table. The identity tables grow with every shopper, so a
// scan would make each batch slower as the chain's customer base grows,
// which no functional test notices (the ledger's statements have their
// own guards, ledger_plan_test.go).
func TestCustomerStatementPlans(t *testing.T) {
	s := withKeys(openPostgres(t))
	l := &identifyLoad{devs: map[int]*device{}, w: 1_000_000}
	const shoppers = 10_000
	loadIdentifyHistory(t, s, l, 0, shoppers, 5_000, true)
	ctx := context.Background()
	// Their purchases: 20,000 sales naming them.
	till := newDevice("S90", "till-1", 1)
	for lo := 0; lo < 20_000; lo += 5_000 {
		var envs []events.Envelope
		for i := lo; i < lo+5_000; i++ {
			l.w++
			envs = append(envs, till.ev(l.w, events.KindSale, saleBy("S90",
				map[string]string{"loyalty": fmt.Sprintf("LC-%09d", i%shoppers)}, line("SKU-1", 1))))
		}
		if res, err := s.ApplyBatch(ctx, itemsOf(envs...)); err != nil || res.Applied != len(envs) {
			t.Fatalf("purchases: %+v %v", res, err)
		}
	}
	// The tables a scan would hurt: a seq scan of a small one is the
	// right plan.
	big := map[string]bool{}
	for _, name := range stringsOf(t)(s.w.QueryContext(ctx, `SELECT c.relname FROM pg_class c
		WHERE c.relname LIKE 'cust\_%' AND c.relkind = 'r' AND c.relnamespace = current_schema()::regnamespace`)) {
		var n int
		if err := s.w.QueryRowContext(ctx, "SELECT count(*) FROM "+name).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n >= 10_000 {
			big[name] = true
		}
	}
	if !big["cust_identifiers"] || !big["cust_purchases"] {
		t.Fatalf("the identity tables were not filled: %v", big)
	}
	for _, tc := range []struct {
		name  string
		stats bool
	}{{"no statistics yet", false}, {"analyzed", true}} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.stats {
				if _, err := s.w.ExecContext(ctx, "ANALYZE"); err != nil {
					t.Fatal(err)
				}
			} else if _, err := s.w.ExecContext(ctx, `DELETE FROM pg_statistic WHERE starelid IN
				(SELECT c.oid FROM pg_class c WHERE c.relname LIKE 'cust\_%' AND c.relnamespace = current_schema()::regnamespace)`); err != nil {
				t.Fatal(err)
			}
			log := &stmtLog{match: []string{"cust_", "unnest"}, args: map[string][]any{}}
			retrace(t, s, log)
			// Known shoppers seen again, new ones, and sales naming both.
			var items []Item
			var envs []events.Envelope
			for i := range 40 {
				n := i * 97 % shoppers
				if i%4 == 0 {
					n = shoppers + int(l.w) + i // new
				}
				envs = append(envs, l.event(n))
			}
			d := newDevice("S91", "till-"+strings.ReplaceAll(tc.name, " ", "-"), 1)
			for i := range 20 {
				l.w++
				envs = append(envs, d.ev(l.w, events.KindSale, saleBy("S91",
					map[string]string{"loyalty": fmt.Sprintf("LC-%09d", i*131%shoppers)}, line("SKU-1", 1))))
			}
			items = itemsOf(envs...)
			res, err := s.ApplyBatch(ctx, items)
			if err != nil || res.Applied != len(items) {
				t.Fatalf("apply: %+v %v", res, err)
			}
			// And what HQ reads of a customer (their identifiers and
			// purchases).
			if len(res.Customers) == 0 {
				t.Fatal("the batch named no customer")
			}
			if _, err := s.Customer(ctx, res.Customers[0], nil); err != nil {
				t.Fatal(err)
			}
			log.mu.Lock()
			stmts := slices.Clone(log.order)
			log.mu.Unlock()
			if len(stmts) == 0 {
				t.Fatal("no statement joined arrays to the identity tables")
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
		})
	}
}
