package store

import (
	"context"
	"fmt"
	"math/rand"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/omnisync/omnisync/cloud/internal/catalog"
	"github.com/omnisync/omnisync/shared/events"
	"github.com/omnisync/omnisync/shared/ids"
)

// BenchmarkApplyBatch applies 1000-event batches of 1–3-line sales (with
// about 1% counts) spread over 2000 SKUs × 10 locations, whose positions
// were seeded with a count, and reports events/s. With OMNI_BENCH_CATALOG
// set, the SKUs are in the catalog (as a store's are), so the sales are
// baskets of known products.
func BenchmarkApplyBatch(b *testing.B) {
	b.Run("sqlite", func(b *testing.B) { benchApply(b, openSQLite(b), 0) })
	b.Run("postgres", func(b *testing.B) { benchApply(b, openPostgres(b), 0) })
}

// BenchmarkApplyHistory is BenchmarkApplyBatch against a ledger that
// already holds OMNI_BENCH_HISTORY events (default 10M; two lines each,
// stamped before the positions' counts, written straight into the ledger
// in bulk): the apply rate must not fall as the sales history grows. The
// same batches go to a twin store with an empty ledger, the two in turn,
// and the metrics history/young-rate and history/young-cpu-efficiency
// compare them.
func BenchmarkApplyHistory(b *testing.B) {
	n := 10_000_000
	if v, err := strconv.Atoi(os.Getenv("OMNI_BENCH_HISTORY")); err == nil && v > 0 {
		n = v
	}
	b.Run("sqlite", func(b *testing.B) { benchApply(b, openSQLite(b), n) })
	b.Run("postgres", func(b *testing.B) { benchApply(b, openPostgres(b), n) })
}

// fillHistory writes events old events of two lines each into the ledger,
// spread over the positions, stamped before wall. The SQL generates the
// rows, in the ledger's key order, so a 10M-event history takes a minute
// or two rather than an hour of applying.
func fillHistory(tb testing.TB, s *Store, events int, wall int64) {
	tb.Helper()
	ctx := context.Background()
	var positions int64
	if err := s.w.QueryRowContext(ctx, "SELECT count(*) FROM stock").Scan(&positions); err != nil {
		tb.Fatal(err)
	}
	lines := int64(2 * events)
	perPos := lines / positions
	// The history spans the days before wall, one line per position
	// every span/perPos ms.
	span := int64(90 * 24 * time.Hour / time.Millisecond)
	step := max(1, span/max(perPos, 1))
	start := time.Now()
	// The ledger is keyed by day first (ledger_days.go).
	gen := "generate_series(1, $4::bigint) AS g(n)"
	if !s.d.pg() {
		gen = "g"
	}
	q := `INSERT INTO stock_ledger (day, pos_id, hlc, ev_hi, ev_lo, line_no, kind, qty, delta, store)
SELECT (CAST($1 AS BIGINT) - CAST($2 AS BIGINT) + g.n * CAST($3 AS BIGINT)) / 86400000, p.id,
	((CAST($1 AS BIGINT) - CAST($2 AS BIGINT) + g.n * CAST($3 AS BIGINT)) << 16), -9223372036854775808 + p.id, g.n, 0, 'sale', 1, -1, p.location
FROM (SELECT id, location FROM stock ORDER BY id) p CROSS JOIN ` + gen + ` ORDER BY 1, p.id, g.n`
	if !s.d.pg() {
		q = `WITH RECURSIVE g(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM g WHERE n < $4)
` + q
	}
	if _, err := s.w.ExecContext(ctx, q, wall, span, step, perPos); err != nil {
		tb.Fatal(err)
	}
	if s.d.pg() {
		_, _ = s.w.ExecContext(ctx, "VACUUM ANALYZE stock_ledger")
	} else {
		_, _ = s.w.ExecContext(ctx, "PRAGMA wal_checkpoint(TRUNCATE)")
	}
	tb.Logf("history: %d ledger lines (%d per position) written in %v", perPos*positions, perPos, time.Since(start).Round(time.Second))
}

func benchApply(b *testing.B, s *Store, history int) {
	const skus, locs = 2000, 10
	batch := 1000
	if v, err := strconv.Atoi(os.Getenv("OMNI_BENCH_BATCH")); err == nil && v > 0 {
		batch = v
	}
	ctx := context.Background()
	sku := func(i int) string { return fmt.Sprintf("SKU-%05d", i) }
	loc := func(i int) string { return fmt.Sprintf("S%02d", i) }
	wall := time.Now().UnixMilli()
	// With a history, the batches start a UTC day of their own (unless
	// OMNI_BENCH_SAME_DAY is set): the ledger is keyed by day first, so a
	// batch's cost follows the lines its day already holds, and batches
	// written into the history's last day would measure that day's
	// volume rather than the history's size.
	freshDays := history > 0 && os.Getenv("OMNI_BENCH_SAME_DAY") == ""
	const dayMS = 24 * 60 * 60 * 1000
	if freshDays {
		wall = (wall/dayMS + 1) * dayMS
	}
	stores := []*Store{s}
	if history > 0 {
		// The same batches against this store's empty ledger and against
		// a twin holding the history, in one process, batch by batch: the
		// ratio is what counts, and the machine's speed, which moves over
		// minutes here, moves under both alike.
		if s.d.pg() {
			stores = append(stores, openPostgres(b))
		} else {
			stores = append(stores, openSQLite(b))
		}
	}
	if os.Getenv("OMNI_BENCH_CATALOG") != "" {
		// The SKUs in the catalog (500 products of four), as in a store
		// whose sales feed the complements.
		vs := make([]catalog.Variant, 0, skus)
		for i := range skus {
			vs = append(vs, variant(sku(i), fmt.Sprintf("PR-%04d", i%500), 100000+i))
		}
		for _, st := range stores {
			importOK(b, st, vs)
		}
	}
	hq := stocktakes{} // each store counts its own stock
	var seed []events.Envelope
	for l := 0; l < locs; l++ {
		for start := 0; start < skus; start += events.MaxLines {
			var ls []events.Line
			for i := start; i < start+events.MaxLines && i < skus; i++ {
				ls = append(ls, line(sku(i), 1000))
			}
			wall++
			seed = append(seed, hq.ev(wall, events.KindCount, sale(loc(l), ls...)))
		}
	}
	for _, st := range stores {
		if res, err := st.ApplyBatch(ctx, itemsOf(seed...)); err != nil || res.Applied != len(seed) {
			b.Fatalf("seed: %+v %v", res, err)
		}
	}
	if history > 0 {
		fillHistory(b, stores[1], history, wall-int64(len(seed))-1)
	}
	// batches returns the benchmark's batches one by one; two generators
	// make the same batches (the same random choices, devices and clock).
	batches := func(wall int64) func() []Item {
		rng := rand.New(rand.NewSource(1))
		devs := make([]*device, locs)
		for l := range devs {
			devs[l] = newDevice(loc(l), "pos-1", 1)
		}
		return func() []Item {
			envs := make([]events.Envelope, batch)
			for i := range envs {
				wall++
				l := rng.Intn(locs)
				ls := randomBasket(rng, skus, func(k int) events.Line { return line(sku(k), 1+rng.Int63n(3)) })
				kind := events.KindSale
				if rng.Intn(100) == 0 {
					kind = events.KindCount
					for j := range ls {
						ls[j].Qty = 900 + rng.Int63n(200)
					}
				}
				envs[i] = devs[l].ev(wall, kind, sale(loc(l), ls...))
				envs[i].ID = ids.NewEventID(time.UnixMilli(wall)) // time-ordered, as agents mint them
			}
			return itemsOf(envs...)
		}
	}
	if freshDays {
		wall = (wall/dayMS + 1) * dayMS
	}
	meters := make([]*applyMeter, len(stores))
	gens := make([]func() []Item, len(stores))
	for i, st := range stores {
		meters[i], gens[i] = newApplyMeter(b, st), batches(wall)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		items := make([][]Item, len(stores))
		for j := range stores {
			items[j] = gens[j]()
		}
		// Turn about, so that neither store always follows the other.
		order := []int{0, 1}[:len(stores)]
		if i%2 == 1 && len(stores) == 2 {
			order = []int{1, 0}
		}
		for _, j := range order {
			b.StopTimer()
			// Neither store's write-back runs in the other's batch. A
			// store alone checkpoints beside its next batch, as the
			// hub's does.
			if len(stores) > 1 {
				meters[j].quiesce(b)
			}
			// The garbage of making the batch is not the apply's to
			// collect.
			runtime.GC()
			b.StartTimer()
			meters[j].apply(b, items[j], batch)
		}
	}
	b.StopTimer()
	m := meters[len(meters)-1] // the history's, when there is one
	n := float64(b.N * batch)
	if history > 0 {
		y := meters[0]
		b.ReportMetric(n/y.tx.Seconds(), "young-tx-events/s")
		b.ReportMetric(y.tx.Seconds()/m.tx.Seconds(), "history/young-rate")
		b.ReportMetric(float64(y.applyCPU().Microseconds())/float64(max(1, m.applyCPU().Microseconds())), "history/young-cpu-efficiency")
		y.logSteps(b, "empty ledger")
		m.logSteps(b, fmt.Sprintf("ledger of %d events", history))
	} else {
		m.logSteps(b, "")
		// The same number of batches again, pipelined as the hub's ingest
		// runs them (on top of the ledger the first run wrote): the rate
		// the hub sustains, where events/s (prepare, then apply, one
		// batch after the other) and tx-events/s (the apply alone) bound
		// it from below and above.
		all := make([][]Item, b.N)
		for i := range all {
			all[i] = gens[0]()
		}
		wall, hub, server := applyPipelined(b, s, m.cpu, all)
		b.ReportMetric(n/wall.Seconds(), "pipelined-events/s")
		b.ReportMetric(float64(hub.Microseconds())/n, "pipelined-hub-cpu-µs/event")
		if s.d.pg() {
			b.ReportMetric(float64(server.Microseconds())/n, "pipelined-db-cpu-µs/event")
		}
	}
	// Prepare, then apply, one batch after the other.
	b.ReportMetric(n/m.elapsed.Seconds(), "events/s")
	// The hub prepares a batch (decodes its bodies) while the previous one
	// commits: the transaction alone is what bounds its rate on two cores.
	b.ReportMetric(n/m.tx.Seconds(), "tx-events/s")
	b.ReportMetric(float64(m.prep.Microseconds())/n, "prepare-cpu-µs/event")
	// CPU per event, here and in the database server: what the figure
	// would be on an idle machine is about 1e6 / (sum of the two) per core.
	b.ReportMetric(float64(m.self.Microseconds())/n, "hub-cpu-µs/event")
	if s.d.pg() {
		b.ReportMetric(float64(m.server.Microseconds())/n, "db-cpu-µs/event")
	}
	if s.d.pg() {
		for _, am := range meters {
			st := am.s
			// Whether the stock updates were HOT (no index writes): they
			// are when the new version of a row fits in its page.
			var upd, hot int64
			_, _ = st.w.ExecContext(ctx, "SELECT pg_stat_force_next_flush()")
			if err := st.w.QueryRowContext(ctx, "SELECT n_tup_upd, n_tup_hot_upd FROM pg_stat_user_tables WHERE relid = 'stock'::regclass").Scan(&upd, &hot); err == nil {
				b.Logf("stock updates: %d, HOT: %d", upd, hot)
			}
			b.Logf("batches redone after a stale cached position: %d", st.StockRedos())
		}
	}
}

// randomBasket draws the lines of a sale: 1–3 distinct SKUs of skus,
// each made a line by mk (which may draw from rng too, after the SKU).
func randomBasket(rng *rand.Rand, skus int, mk func(k int) events.Line) []events.Line {
	n := 1 + rng.Intn(3)
	ls := make([]events.Line, 0, n)
	seen := map[int]bool{}
	for len(ls) < n {
		if k := rng.Intn(skus); !seen[k] {
			seen[k] = true
			ls = append(ls, mk(k))
		}
	}
	return ls
}

// applyMeter applies batches to one store and sums what they cost: wall
// time (with and without Prepare), CPU time here and in the database
// server, and wall and server CPU time per step of the apply.
type applyMeter struct {
	s                  *Store
	cpu                *cpuMeter
	elapsed, tx        time.Duration
	self, prep, server time.Duration
	steps, stepsDB     map[string]time.Duration
	order              []string
	lastDB             time.Duration
	events             int
	checkpoints        time.Duration // SQLite's, between batches (quiesce)
}

func newApplyMeter(tb testing.TB, s *Store) *applyMeter {
	m := &applyMeter{s: s, cpu: newCPUMeter(tb, s), steps: map[string]time.Duration{}, stepsDB: map[string]time.Duration{}}
	s.ObserveApply(func(step string, d time.Duration) {
		if _, ok := m.steps[step]; !ok {
			m.order = append(m.order, step)
		}
		m.steps[step] += d
		if s.d.pg() {
			now := m.cpu.server()
			m.stepsDB[step] += now - m.lastDB
			m.lastDB = now
		}
	})
	return m
}

// quiesce has the store's SQLite checkpoint its WAL now, rather than in
// the background while the next batch, perhaps another store's, runs.
func (m *applyMeter) quiesce(tb testing.TB) {
	if !m.s.d.pg() {
		start := time.Now()
		defer func() { m.checkpoints += time.Since(start) }()
		if _, err := m.s.w.Exec("PRAGMA wal_checkpoint(PASSIVE)"); err != nil {
			tb.Fatal(err)
		}
	}
}

func (m *applyMeter) apply(tb testing.TB, items []Item, want int) {
	start, c0, s0 := time.Now(), m.cpu.self(), m.cpu.server()
	m.lastDB = s0
	prep := m.s.Prepare(items)
	prepared, pc := time.Now(), m.cpu.self()
	res, err := m.s.ApplyPrepared(context.Background(), prep)
	now := time.Now()
	m.elapsed += now.Sub(start)
	m.tx += now.Sub(prepared)
	m.prep += pc - c0
	m.self += m.cpu.self() - c0
	m.server += m.cpu.server() - s0
	m.events += len(items)
	if err != nil {
		tb.Fatal(err)
	}
	if res.Applied != want {
		tb.Fatalf("applied %d of %d", res.Applied, want)
	}
}

// applyCPU is the CPU time of the applies, here and in the server,
// without Prepare.
func (m *applyMeter) applyCPU() time.Duration { return m.self - m.prep + m.server }

func (m *applyMeter) logSteps(tb testing.TB, what string) {
	n := float64(max(1, m.events))
	var line []string
	for _, st := range m.order {
		l := fmt.Sprintf("%s %.1fµs", st, float64(m.steps[st].Microseconds())/n)
		if m.s.d.pg() {
			l += fmt.Sprintf(" (db cpu %.1fµs)", float64(m.stepsDB[st].Microseconds())/n)
		}
		line = append(line, l)
	}
	if m.checkpoints > 0 {
		// Off the clock, but a cost the hub pays beside its batches.
		line = append(line, fmt.Sprintf("then the WAL checkpoint %.1fµs", float64(m.checkpoints.Microseconds())/n))
	}
	if what != "" {
		what = " (" + what + ")"
	}
	tb.Logf("wall per event by step%s: %s", what, strings.Join(line, ", "))
}

// BenchmarkPhysicalUpsert is the reference the apply rate is read
// against: PostgreSQL's own upsert of 1,000-row batches from unnest
// arrays (INSERT ... SELECT FROM unnest(...) ON CONFLICT DO UPDATE) into
// a narrow table of 20,000 rows, on this machine, in rows/s. A batch of
// events writes about one position per event and two ledger lines.
func BenchmarkPhysicalUpsert(b *testing.B) {
	s := openPostgres(b)
	ctx := context.Background()
	if _, err := s.w.ExecContext(ctx, `CREATE TABLE bench_upsert (id BIGINT PRIMARY KEY, qty BIGINT NOT NULL, at BIGINT NOT NULL) WITH (fillfactor = 70)`); err != nil {
		b.Fatal(err)
	}
	if _, err := s.w.ExecContext(ctx, `INSERT INTO bench_upsert SELECT g, 0, 0 FROM generate_series(1, 20000) g`); err != nil {
		b.Fatal(err)
	}
	rng := rand.New(rand.NewSource(1))
	const rows = 1000
	ids, qty := make([]int64, rows), make([]int64, rows)
	var elapsed time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		seen := map[int64]bool{}
		for j := range ids {
			for {
				id := 1 + rng.Int63n(20000)
				if !seen[id] {
					seen[id], ids[j] = true, id
					break
				}
			}
			qty[j] = rng.Int63n(10)
		}
		slices.Sort(ids)
		start := time.Now()
		if _, err := s.w.ExecContext(ctx, `INSERT INTO bench_upsert (id, qty, at) SELECT id, q, $3 FROM unnest($1::int8[], $2::int8[]) AS u(id, q)
ON CONFLICT (id) DO UPDATE SET qty = bench_upsert.qty + excluded.qty, at = excluded.at`, ids, qty, int64(i)); err != nil {
			b.Fatal(err)
		}
		elapsed += time.Since(start)
	}
	b.ReportMetric(float64(b.N*rows)/elapsed.Seconds(), "rows/s")
}

// applyPipelined applies batches as the hub's ingest does: batch N+1 is
// prepared on another goroutine while batch N is applied, the two
// handing over through an unbuffered channel. It returns the wall time
// and the CPU time of this process and of the server.
func applyPipelined(tb testing.TB, s *Store, meter *cpuMeter, batches [][]Item) (wall, hub, server time.Duration) {
	runtime.GC()
	obs := s.observer
	s.ObserveApply(nil)
	defer s.ObserveApply(obs)
	start, c0, s0 := time.Now(), meter.self(), meter.server()
	prepared := make(chan *Prepared)
	go func() {
		defer close(prepared)
		for _, items := range batches {
			prepared <- s.Prepare(items)
		}
	}()
	for prep := range prepared {
		want := len(prep.Items())
		res, err := s.ApplyPrepared(context.Background(), prep)
		if err != nil {
			tb.Fatal(err)
		}
		if res.Applied != want {
			tb.Fatalf("applied %d of %d", res.Applied, want)
		}
	}
	return time.Since(start), meter.self() - c0, meter.server() - s0
}
