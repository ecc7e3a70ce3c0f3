package store

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/omnisync/omnisync/shared/events"
)

// stmtCounter counts the statements (queries, execs, and the
// transaction's begin and commit) a store sends to PostgreSQL, by the
// step of ApplyBatch they were sent in (ObserveApply). COPYs sent on the
// raw connection (the ledger's, the identity graph's) are not seen.
type stmtCounter struct {
	mu      sync.Mutex
	pending []string
	by      map[string][]string
	order   []string
	// With prof set, each statement's wall time and its server process's
	// CPU time (sampled by the kernel's ticks: exact over many runs) are
	// summed by statement in cost.
	prof bool
	cost map[string]*stmtCost
}

type stmtCost struct {
	n         int
	wall, cpu time.Duration
}

type stmtStart struct {
	sql string
	at  time.Time
	cpu time.Duration
	pid uint32
}

type stmtStartKey struct{}

func (c *stmtCounter) start(ctx context.Context, conn *pgx.Conn, sql string) context.Context {
	c.add(sql)
	if !c.prof {
		return ctx
	}
	pid := conn.PgConn().PID()
	return context.WithValue(ctx, stmtStartKey{}, &stmtStart{sql: sql, at: time.Now(), cpu: procCPU(int(pid)), pid: pid})
}

func (c *stmtCounter) end(ctx context.Context) {
	st, ok := ctx.Value(stmtStartKey{}).(*stmtStart)
	if !ok {
		return
	}
	wall, cpu := time.Since(st.at), procCPU(int(st.pid))-st.cpu
	key := strings.Join(strings.Fields(st.sql), " ")
	if len(key) > 100 {
		key = key[:100]
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	sc := c.cost[key]
	if sc == nil {
		sc = &stmtCost{}
		c.cost[key] = sc
	}
	sc.n++
	sc.wall += wall
	sc.cpu += cpu
}

// procCPU is the CPU time of process pid (on this machine), 0 when it
// cannot be read.
func procCPU(pid int) time.Duration {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+2:]))
	if len(f) < 13 {
		return 0
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * time.Second / 100 // USER_HZ
}

func (c *stmtCounter) TraceQueryStart(ctx context.Context, conn *pgx.Conn, d pgx.TraceQueryStartData) context.Context {
	return c.start(ctx, conn, d.SQL)
}

func (c *stmtCounter) TraceQueryEnd(ctx context.Context, _ *pgx.Conn, _ pgx.TraceQueryEndData) {
	c.end(ctx)
}

func (c *stmtCounter) TraceCopyFromStart(ctx context.Context, conn *pgx.Conn, d pgx.TraceCopyFromStartData) context.Context {
	return c.start(ctx, conn, "COPY "+d.TableName.Sanitize())
}

func (c *stmtCounter) TraceCopyFromEnd(ctx context.Context, _ *pgx.Conn, _ pgx.TraceCopyFromEndData) {
	c.end(ctx)
}

// costs is the statements' cost table, costliest first, per unit (an
// operation or event) of n.
func (c *stmtCounter) costs(n int) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	keys := make([]string, 0, len(c.cost))
	var wall, cpu time.Duration
	for k, v := range c.cost {
		keys = append(keys, k)
		wall += v.wall
		cpu += v.cpu
	}
	slices.SortFunc(keys, func(a, b string) int { return int(c.cost[b].cpu - c.cost[a].cpu) })
	var b strings.Builder
	per := func(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e3 / float64(n) }
	fmt.Fprintf(&b, "per unit: wall %.1fµs, server cpu %.1fµs\n", per(wall), per(cpu))
	for _, k := range keys {
		v := c.cost[k]
		fmt.Fprintf(&b, "  %6d× wall %7.1fµs cpu %7.1fµs  %s\n", v.n, per(v.wall), per(v.cpu), k)
	}
	return b.String()
}

func (c *stmtCounter) add(sql string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.pending = append(c.pending, sql)
}

// step files the statements sent since the previous step under name.
func (c *stmtCounter) step(name string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.by[name]; !ok {
		c.order = append(c.order, name)
	}
	c.by[name] = append(c.by[name], c.pending...)
	c.pending = nil
}

// reset forgets what was counted.
func (c *stmtCounter) reset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.pending, c.by, c.order, c.cost = nil, map[string][]string{}, nil, map[string]*stmtCost{}
}

// counts returns the statements counted per step.
func (c *stmtCounter) counts() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := map[string]int{}
	for k, v := range c.by {
		out[k] = len(v)
	}
	return out
}

// String is the count per step, in step order, with the statements.
func (c *stmtCounter) String() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var b strings.Builder
	total := 0
	for _, st := range c.order {
		total += len(c.by[st])
	}
	fmt.Fprintf(&b, "%d statements\n", total)
	for _, st := range c.order {
		if len(c.by[st]) == 0 {
			continue
		}
		fmt.Fprintf(&b, "  %-20s %d\n", st, len(c.by[st]))
		for _, q := range c.by[st] {
			q = strings.Join(strings.Fields(q), " ")
			if len(q) > 110 {
				q = q[:110] + "..."
			}
			fmt.Fprintf(&b, "      %s\n", q)
		}
	}
	return b.String()
}

// tracedPostgres opens a PostgreSQL store whose statements c counts by
// ApplyBatch step.
func tracedPostgres(tb testing.TB) (*Store, *stmtCounter) {
	tb.Helper()
	s := mustOpen(tb, migratedPostgres(tb))
	c := &stmtCounter{by: map[string][]string{}, cost: map[string]*stmtCost{}}
	retrace(tb, s, c)
	s.ObserveApply(func(step string, _ time.Duration) { c.step(step) })
	return s, c
}

// stmtWorkload is a batch whose statements TestApplyStatements counts.
type stmtWorkload struct {
	name string
	// warm applies what comes before (carts and positions that exist,
	// earlier batches); batch is the batch counted.
	warm  func(tb testing.TB, s *Store)
	batch func() []events.Envelope
	// concerned are the steps that may send statements for the batch;
	// budget is how many the batch may send in all.
	concerned []string
	budget    int
}

// stmtWorkloads are what the cart API, the identify flow and the tills
// send: 63 line_set events of 63 carts (a group commit of the cart API
// under load), 1,000 identify events of new shoppers, 1,000 sales.
func stmtWorkloads() []stmtWorkload {
	frame := []string{"dedup", "devices", "commit"}
	web := newDevice("online", "hub-1", 1)
	w := int64(1000)
	cartBatch := func(n, from int) []events.Envelope {
		var out []events.Envelope
		for i := range n {
			w++
			p := int64(999)
			c := (from + i) % 128
			out = append(out, web.ev(w, events.KindLineSet, events.LineSet{CartID: testCartID(c), Channel: "app",
				Lines: []events.CartLine{{SKU: fmt.Sprintf("SKU-%d", int(w)%20), Qty: int64(i%4 + 1), UnitPrice: &p}}}))
		}
		return out
	}
	cartNext := 0
	// The web channel reserves on cart: each edit also re-reserves the
	// cart's whole line set at the online location (cartsvc.holdDrafts).
	held := map[int]map[string]int64{}
	webBatch := func(n, from int) []events.Envelope {
		var out []events.Envelope
		for i := range n {
			w++
			p := int64(999)
			c := (from + i) % 128
			sku, qty := fmt.Sprintf("SKU-%d", int(w)%20), int64(int(w)%5)
			out = append(out, web.ev(w, events.KindLineSet, events.LineSet{CartID: testCartID(c), Channel: "web",
				Lines: []events.CartLine{{SKU: sku, Qty: qty, UnitPrice: &p}}}))
			if held[c] == nil {
				held[c] = map[string]int64{}
			}
			held[c][sku] = qty
			var ls []events.Line
			for _, k := range slices.Sorted(maps.Keys(held[c])) {
				if held[c][k] > 0 {
					ls = append(ls, events.Line{SKU: k, Qty: held[c][k]})
				}
			}
			if len(ls) == 0 {
				continue
			}
			w++
			out = append(out, web.ev(w, events.KindReserve, map[string]any{"reservation_id": CartHoldPrefix + testCartID(c) + "-1",
				"location": "online", "lines": ls, "channel": "web", "cart_id": testCartID(c), "expires_ms": w + 3_600_000}))
		}
		return out
	}
	webNext := 0
	idl := &identifyLoad{devs: map[int]*device{}, w: 1_000_000}
	idBatch := func(from, n int) []events.Envelope {
		var out []events.Envelope
		for i := from; i < from+n; i++ {
			out = append(out, idl.event(i))
		}
		return out
	}
	idNext := 0
	till := newDevice("S01", "pos-1", 1)
	hq := stocktakes{}
	sku := func(i int) string { return fmt.Sprintf("SKU-%05d", i) }
	return []stmtWorkload{
		{
			name: "cart",
			warm: func(tb testing.TB, s *Store) {
				apply(tb, s, cartBatch(128, 0)...)
				apply(tb, s, cartBatch(63, 64)...)
			},
			batch: func() []events.Envelope {
				cartNext += 63
				return cartBatch(63, cartNext)
			},
			concerned: append([]string{"carts-gate", "carts"}, frame...),
			budget:    6,
		},
		{
			name: "cart-web",
			warm: func(tb testing.TB, s *Store) {
				apply(tb, s, webBatch(128, 0)...)
				apply(tb, s, webBatch(63, 64)...)
			},
			batch: func() []events.Envelope {
				webNext += 63
				return webBatch(63, webNext)
			},
			// Reserves name SKUs and a location (the exceptions gate),
			// and their holds move stock (ledger, stock, conflicts).
			concerned: append([]string{"exceptions-gate", "carts-gate", "carts", "reservations", "ledger", "stock", "conflicts"}, frame...),
			budget:    13,
		},
		{
			name: "identify",
			warm: func(tb testing.TB, s *Store) {
				withKeys(s)
				apply(tb, s, idBatch(0, 1000)...)
			},
			batch: func() []events.Envelope {
				idNext += 1000
				return idBatch(idNext, 1000)
			},
			concerned: append([]string{"identity-gate", "identity", "identity.load", "identity.graph", "identity.observations", "identity.identifiers", "identity.masters"}, frame...),
			// One more than the 10 it took with a lookup of every digest:
			// the digest filter reads the generations logged since the
			// last batch and logs this one's (customer_digests.go), and
			// spares the batch's lookups of new shoppers.
			budget: 11,
		},
		{
			name: "stock",
			warm: func(tb testing.TB, s *Store) {
				var seed []events.Envelope
				for start := 0; start < 500; start += events.MaxLines {
					var ls []events.Line
					for i := start; i < start+events.MaxLines && i < 500; i++ {
						ls = append(ls, line(sku(i), 1000))
					}
					w++
					seed = append(seed, hq.ev(w, events.KindCount, sale("S01", ls...)))
				}
				apply(tb, s, seed...)
				apply(tb, s, salesBatch(till, &w, sku, 1000)...)
			},
			batch: func() []events.Envelope { return salesBatch(till, &w, sku, 1000) },
			// Sales name SKUs (the exceptions gate reads HQ's mappings)
			// and feed the basket analytics (fitting).
			concerned: append([]string{"exceptions-gate", "ledger", "stock", "fitting"}, frame...),
			budget:    9,
		},
	}
}

// salesBatch is n sales of 1–3 lines at the till's store over 500 SKUs.
func salesBatch(till *device, w *int64, sku func(int) string, n int) []events.Envelope {
	out := make([]events.Envelope, n)
	for i := range out {
		*w++
		k := int(*w)
		ls := []events.Line{line(sku(k%500), 1)}
		for j := 1; j < 1+k%3; j++ {
			ls = append(ls, line(sku((k+j*7)%500), 1))
		}
		out[i] = till.ev(*w, events.KindSale, sale(till.store, ls...))
	}
	return out
}

// Ensure that a batch sends statements only in the steps of the
// aggregates its kinds concern: an applier (or gate) whose kinds are not
// in the batch costs no round trip.
func TestApplyStatements(t *testing.T) {
	t.Parallel()
	for i, w := range stmtWorkloads() {
		t.Run(w.name, func(t *testing.T) {
			w := stmtWorkloads()[i]
			s, c := tracedPostgres(t)
			w.warm(t, s)
			c.reset()
			apply(t, s, w.batch()...)
			t.Logf("%s:\n%s", w.name, c)
			total := 0
			for st, n := range c.counts() {
				total += n
				if n > 0 && !slices.Contains(w.concerned, st) {
					t.Errorf("step %q sent %d statements for a %s batch", st, n, w.name)
				}
			}
			if total > w.budget {
				t.Errorf("a %s batch sent %d statements, more than %d", w.name, total, w.budget)
			}
		})
	}
}

// BenchmarkStatementCost applies the workloads of TestApplyStatements
// (b.N batches each, the cart one after reading its carts as the cart
// service does) and logs what each statement costs per operation: wall
// time and PostgreSQL CPU.
//
//	go test -run '^$' -bench StatementCost -benchtime 100x ./cloud/internal/store/
func BenchmarkStatementCost(b *testing.B) {
	for i, w := range stmtWorkloads() {
		b.Run(w.name, func(b *testing.B) {
			w := stmtWorkloads()[i] // fresh devices for each run
			s, c := tracedPostgres(b)
			w.warm(b, s)
			meter := newCPUMeter(b, s)
			c.reset()
			c.prof = true
			ctx := context.Background()
			n := 0
			self0, db0 := meter.self(), meter.server()
			b.ResetTimer()
			for range b.N {
				envs := w.batch()
				if w.name == "cart" {
					var ids []string
					for _, e := range envs {
						var ls events.LineSet
						_ = json.Unmarshal(e.Data, &ls)
						ids = append(ids, ls.CartID)
					}
					cs, err := s.CartsAndCustomers(ctx, ids, nil)
					if err != nil {
						b.Fatal(err)
					}
					var all []string
					for _, c := range cs {
						all = append(all, c.ID)
					}
					if _, err := s.CartHolds(ctx, all); err != nil {
						b.Fatal(err)
					}
				}
				apply(b, s, envs...)
				n += len(envs)
			}
			b.StopTimer()
			b.ReportMetric(float64((meter.self()-self0).Microseconds())/float64(n), "hub-cpu-µs/op")
			b.ReportMetric(float64((meter.server()-db0).Microseconds())/float64(n), "pg-cpu-µs/op")
			if b.N > 1 {
				rows, err := s.w.Query(`SELECT relname, n_tup_upd, n_tup_hot_upd, n_dead_tup FROM pg_stat_user_tables WHERE schemaname = current_schema() AND n_tup_upd > 0 ORDER BY relname`)
				if err == nil {
					for rows.Next() {
						var name string
						var upd, hot, dead int64
						_ = rows.Scan(&name, &upd, &hot, &dead)
						b.Logf("%s: %d updates, %d HOT, %d dead", name, upd, hot, dead)
					}
					rows.Close()
				}
				b.Logf("%s, %d ops in %d batches: %s", w.name, n, b.N, c.costs(n))
			}
		})
	}
}

// retrace moves s onto a pool of its own, configured as its own was,
// whose connections report to tracer (and to its other pgx tracer
// interfaces, such as CopyFromTracer).
func retrace(tb testing.TB, s *Store, tracer pgx.QueryTracer) {
	tb.Helper()
	cfg := s.pool.Config()
	cfg.ConnConfig.Tracer = tracer
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		tb.Fatal(err)
	}
	s.w.Close()
	s.pool.Close()
	s.pool, s.w = pool, stdlib.OpenDBFromPool(pool)
	s.r = s.w
}
