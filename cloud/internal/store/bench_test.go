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
// in bulk): the apply rate must not fall as the sales history grows.
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
	rng := rand.New(rand.NewSource(1))
	sku := func(i int) string { return fmt.Sprintf("SKU-%05d", i) }
	loc := func(i int) string { return fmt.Sprintf("S%02d", i) }
	wall := time.Now().UnixMilli()
	// With a history, each run starts a UTC day of its own (unless
	// OMNI_BENCH_SAME_DAY is set): SQLite's ledger is keyed by day first,
	// so a batch's cost follows the lines its day already holds, and the
	// run against the history would otherwise write into the day the
	// young run filled, measuring the day's volume rather than the
	// history's size.
	freshDays := history > 0 && os.Getenv("OMNI_BENCH_SAME_DAY") == ""
	const dayMS = 24 * 60 * 60 * 1000
	if freshDays {
		wall = (wall/dayMS + 1) * dayMS
	}
	if os.Getenv("OMNI_BENCH_CATALOG") != "" {
		// The SKUs in the catalog (500 products of four), as in a store
		// whose sales feed the complements.
		vs := make([]catalog.Variant, 0, skus)
		for i := range skus {
			vs = append(vs, variant(sku(i), fmt.Sprintf("PR-%04d", i%500), 100000+i))
		}
		importOK(b, s, vs)
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
	if res, err := s.ApplyBatch(ctx, itemsOf(seed...)); err != nil || res.Applied != len(seed) {
		b.Fatalf("seed: %+v %v", res, err)
	}
	histWall := wall - int64(len(seed)) - 1
	devs := make([]*device, locs)
	for l := range devs {
		devs[l] = newDevice(loc(l), "pos-1", 1)
	}
	next := func() []Item {
		envs := make([]events.Envelope, batch)
		for i := range envs {
			wall++
			l := rng.Intn(locs)
			n := 1 + rng.Intn(3)
			ls := make([]events.Line, 0, n)
			seen := map[int]bool{}
			for len(ls) < n {
				k := rng.Intn(skus)
				if seen[k] {
					continue
				}
				seen[k] = true
				ls = append(ls, line(sku(k), 1+rng.Int63n(3)))
			}
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
	var elapsed, txElapsed, selfCPU, prepCPU, serverCPU time.Duration
	meter := newCPUMeter(b, s)
	steps, stepsDB := map[string]time.Duration{}, map[string]time.Duration{}
	var order []string
	lastDB := meter.server()
	s.ObserveApply(func(step string, d time.Duration) {
		if _, ok := steps[step]; !ok {
			order = append(order, step)
		}
		steps[step] += d
		if s.d.pg() {
			now := meter.server()
			stepsDB[step] += now - lastDB
			lastDB = now
		}
	})
	run := func(batches int) {
		for i := 0; i < batches; i++ {
			b.StopTimer()
			items := next()
			// The garbage of making the batch is not the apply's to collect.
			runtime.GC()
			b.StartTimer()
			start, c0, s0 := time.Now(), meter.self(), meter.server()
			prep := s.Prepare(items)
			prepared, pc := time.Now(), meter.self()
			res, err := s.ApplyPrepared(ctx, prep)
			now := time.Now()
			elapsed += now.Sub(start)
			txElapsed += now.Sub(prepared)
			prepCPU += pc - c0
			selfCPU += meter.self() - c0
			serverCPU += meter.server() - s0
			if err != nil {
				b.Fatal(err)
			}
			if res.Applied != batch {
				b.Fatalf("applied %d", res.Applied)
			}
		}
	}
	// pipelined applies batches as the hub's ingest does
	// (applyPipelined), its batches made before the clock starts.
	pipelined := func(batches int) (wall, hub, server time.Duration) {
		all := make([][]Item, batches)
		for i := range all {
			all[i] = next()
		}
		return applyPipelined(b, s, meter, all)
	}
	if history > 0 {
		// The same batches against the young ledger first, then against
		// the history, in one process: the ratio is what counts.
		b.StopTimer()
		run(b.N)
		youngTx, youngCPU := txElapsed, selfCPU-prepCPU+serverCPU
		elapsed, txElapsed, selfCPU, prepCPU, serverCPU = 0, 0, 0, 0, 0
		fillHistory(b, s, history, histWall)
		if freshDays {
			wall = (wall/dayMS + 1) * dayMS
		}
		lastDB = meter.server()
		clear(steps)
		clear(stepsDB)
		order = order[:0]
		b.ResetTimer()
		run(b.N)
		b.StopTimer()
		n := float64(b.N * batch)
		b.ReportMetric(n/youngTx.Seconds(), "young-tx-events/s")
		b.ReportMetric(youngTx.Seconds()/txElapsed.Seconds(), "history/young-rate")
		b.ReportMetric(float64(youngCPU.Microseconds())/float64(max(1, (selfCPU-prepCPU+serverCPU).Microseconds())), "history/young-cpu-efficiency")
	} else {
		b.ResetTimer()
		run(b.N)
		b.StopTimer()
		// The same number of batches again, pipelined as the hub's ingest
		// runs them (on top of the ledger the first run wrote): the rate
		// the hub sustains, where events/s (prepare, then apply, one
		// batch after the other) and tx-events/s (the apply alone) bound
		// it from below and above.
		wall, hub, server := pipelined(b.N)
		n := float64(b.N * batch)
		b.ReportMetric(n/wall.Seconds(), "pipelined-events/s")
		b.ReportMetric(float64(hub.Microseconds())/n, "pipelined-hub-cpu-µs/event")
		if s.d.pg() {
			b.ReportMetric(float64(server.Microseconds())/n, "pipelined-db-cpu-µs/event")
		}
	}
	n := float64(b.N * batch)
	// Prepare, then apply, one batch after the other.
	b.ReportMetric(n/elapsed.Seconds(), "events/s")
	// The hub prepares a batch (decodes its bodies) while the previous one
	// commits: the transaction alone is what bounds its rate on two cores.
	b.ReportMetric(n/txElapsed.Seconds(), "tx-events/s")
	b.ReportMetric(float64(prepCPU.Microseconds())/n, "prepare-cpu-µs/event")
	// CPU per event, here and in the database server: what the figure
	// would be on an idle machine is about 1e6 / (sum of the two) per core.
	b.ReportMetric(float64(selfCPU.Microseconds())/n, "hub-cpu-µs/event")
	if s.d.pg() {
		b.ReportMetric(float64(serverCPU.Microseconds())/n, "db-cpu-µs/event")
	}
	var line []string
	for _, st := range order {
		l := fmt.Sprintf("%s %.1fµs", st, float64(steps[st].Microseconds())/n)
		if s.d.pg() {
			l += fmt.Sprintf(" (db cpu %.1fµs)", float64(stepsDB[st].Microseconds())/n)
		}
		line = append(line, l)
	}
	b.Logf("wall per event by step: %s", strings.Join(line, ", "))
	if s.d.pg() {
		// Whether the stock updates were HOT (no index writes): they are
		// when the new version of a row fits in its page.
		var upd, hot int64
		_, _ = s.w.ExecContext(ctx, "SELECT pg_stat_force_next_flush()")
		if err := s.w.QueryRowContext(ctx, "SELECT n_tup_upd, n_tup_hot_upd FROM pg_stat_user_tables WHERE relid = 'stock'::regclass").Scan(&upd, &hot); err == nil {
			b.Logf("stock updates: %d, HOT: %d", upd, hot)
		}
		b.Logf("batches redone after a stale cached position: %d", s.StockRedos())
	}

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
