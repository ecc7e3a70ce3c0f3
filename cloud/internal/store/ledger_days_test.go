package store

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/omnisync/omnisync/shared/events"
)

// Ensure that ledgerDay is the UTC day of a stamp rounded down, before
// 1970 too, and that the migration's SQL computes the same.
func TestLedgerDay_MatchesSQL(t *testing.T) {
	t.Parallel()
	s := openSQLite(t)
	ms := int64(24 * time.Hour / time.Millisecond)
	for _, c := range []struct{ h, want int64 }{
		{0, 0}, {1, 0}, {hlcDay - 1, 0}, {hlcDay, 1}, {hlcDay + 1, 1},
		{-1, -1}, {-hlcDay, -1}, {-hlcDay - 1, -2},
		{testNow.UnixMilli() << 16, testNow.UnixMilli() / ms},
		{(testNow.UnixMilli()<<16 | 0xffff), testNow.UnixMilli() / ms},
	} {
		if got := ledgerDay(c.h); got != c.want {
			t.Errorf("ledgerDay(%d) = %d, want %d", c.h, got, c.want)
		}
		var sqlDay int64
		if err := s.r.QueryRowContext(context.Background(),
			"SELECT ($1 - (($1 % 5662310400000) + 5662310400000) % 5662310400000) / 5662310400000", c.h).Scan(&sqlDay); err != nil {
			t.Fatal(err)
		}
		if sqlDay != c.want {
			t.Errorf("the migration's day of %d = %d, want %d", c.h, sqlDay, c.want)
		}
	}
}

// Ensure that a count arriving after the sales stamped after it sums
// those of every later day (with days without lines between them, and
// one far in the future) and none stamped before it, that day or
// earlier; and that the readers of a position's lines (history, sales
// since, sales per hour) see the lines of every day.
func TestLedger_CountSumsAcrossDays(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		day := int64(24 * time.Hour / time.Millisecond)
		base := time.Now().Add(-10*24*time.Hour).UTC().Truncate(24*time.Hour).UnixMilli() + day/2 // noon, ten days ago
		future := time.Date(2200, 1, 1, 0, 0, 0, 0, time.UTC).UnixMilli()
		d := newDevice("S1", "pos-1", 1)
		hq := newDevice("S1", "stocktake", 1)
		count := hq.ev(base+2*day, events.KindCount, sale("S1", line("A", 50), line("B", 10)))
		apply(t, s,
			d.ev(base, events.KindReceipt, sale("S1", line("A", 100), line("B", 100))),
			d.ev(base+day, events.KindSale, sale("S1", line("A", 7))),                 // before the count
			d.ev(base+2*day-1, events.KindSale, sale("S1", line("A", 6))),             // its day, before it
			d.ev(base+2*day+1, events.KindSale, sale("S1", line("A", 2))),             // its day, after it
			d.ev(base+2*day+day/2, events.KindSale, sale("S1", line("A", 3))),         // the next day
			d.ev(base+7*day, events.KindSale, sale("S1", line("A", 4), line("B", 1))), // days later
			d.ev(future, events.KindSale, sale("S1", line("A", 1))),                   // far in the future
		)
		apply(t, s, count)
		if st := stockAt(t, s, "A", "S1"); st.OnHand != 50-2-3-4-1 {
			t.Fatalf("A after the late count: %+v, want on hand %d", st, 50-2-3-4-1)
		}
		if st := stockAt(t, s, "B", "S1"); st.OnHand != 10-1 {
			t.Fatalf("B after the late count: %+v, want on hand %d", st, 10-1)
		}

		lines, _, err := s.PositionHistory(ctx, "A", "S1", 100)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, l := range lines {
			got = append(got, fmt.Sprintf("%s%+d", l.Kind, l.Delta))
		}
		want := []string{"sale-1", "sale-4", "sale-3", "sale-2", "count+0", "sale-6", "sale-7", "receipt+100"}
		if !slices.Equal(got, want) {
			t.Fatalf("history of A: %v, want %v", got, want)
		}
		if lines, _, err := s.PositionHistory(ctx, "A", "S1", 3); err != nil || len(lines) != 3 || lines[2].Delta != -3 {
			t.Fatalf("newest three of A: %+v %v", lines, err)
		}

		for _, tt := range []struct {
			since time.Time
			want  int64
		}{
			{time.UnixMilli(0), 7 + 6 + 2 + 3 + 4 + 1},
			{time.UnixMilli(base + 2*day), 2 + 3 + 4 + 1},
			{time.UnixMilli(base + 2*day + 2), 3 + 4 + 1},
			{time.UnixMilli(future + 1), 0},
		} {
			if units, _ := unitsSold(t, s, []string{"A"}, tt.since); units != tt.want {
				t.Errorf("A sold since %v: %d, want %d", tt.since, units, tt.want)
			}
		}

		hours, err := s.SalesPerHour(ctx, time.UnixMilli(base+2*day), "online", nil)
		if err != nil {
			t.Fatal(err)
		}
		var units int64
		for _, h := range hours {
			units += h.Units
		}
		if units != 2+3+4+1+1 { // A's and B's
			t.Fatalf("sales per hour since the count: %+v", hours)
		}
	})
}

// Ensure that retention rolls up lines of many days (one far in the
// past among them), a line at a time across days, and leaves today's
// and the future's.
func TestRetainLedger_AcrossDays(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		s.now = func() time.Time { return testNow }
		day := int64(24 * time.Hour / time.Millisecond)
		now := testNow.UnixMilli()
		d := newDevice("S1", "pos-1", 1)
		apply(t, s,
			d.ev(1, events.KindReceipt, sale("S1", line("A", 100), line("B", 100))), // 1970
			d.ev(now-20*day, events.KindSale, sale("S1", line("A", 1), line("B", 2))),
			d.ev(now-19*day, events.KindSale, sale("S1", line("A", 3))),
			d.ev(now-6*day, events.KindSale, sale("S1", line("B", 4))),
			d.ev(now-day, events.KindSale, sale("S1", line("A", 5))),
			d.ev(now+1000*day, events.KindSale, sale("S1", line("A", 6))),
		)
		before := allStock(t, s)
		res, err := s.RetainLedger(ctx, RetentionOptions{Age: 5 * 24 * time.Hour, Lines: 1})
		if err != nil {
			t.Fatal(err)
		}
		if res.Lines != 6 || res.Transactions != 6 {
			t.Fatalf("retention: %+v, want 6 lines one a transaction", res)
		}
		if after := allStock(t, s); fmt.Sprint(after) != fmt.Sprint(before) {
			t.Fatalf("books changed: %v -> %v", before, after)
		}
		var raw int
		if err := s.r.QueryRowContext(ctx, "SELECT count(*) FROM stock_ledger").Scan(&raw); err != nil || raw != 2 {
			t.Fatalf("raw lines left: %d %v, want 2", raw, err)
		}
		totals, err := s.DailyTotals(ctx, "A")
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, t := range totals {
			got = append(got, fmt.Sprintf("%s %s %d", t.Day.Format(time.DateOnly), t.Kind, t.Delta))
		}
		dayOf := func(w int64) string { return time.UnixMilli(w).UTC().Format(time.DateOnly) }
		want := []string{"1970-01-01 receipt 100", dayOf(now-20*day) + " sale -1", dayOf(now-19*day) + " sale -3"}
		if !slices.Equal(got, want) {
			t.Fatalf("daily totals of A: %v, want %v", got, want)
		}
		ps, err := s.SalesSince(ctx, []string{"A", "B"}, time.UnixMilli(0))
		if err != nil {
			t.Fatal(err)
		}
		var units int64
		for _, p := range ps {
			units += p.Units
		}
		if units != 1+2+3+4+5+6 {
			t.Fatalf("sold since 1970: %d (%+v)", units, ps)
		}
		if again, err := s.RetainLedger(ctx, RetentionOptions{Age: 5 * 24 * time.Hour}); err != nil || again.Lines != 0 {
			t.Fatalf("second pass: %+v %v", again, err)
		}
	})
}

// Ensure that the migrations to the ledger keyed by day (SQLite's, then
// PostgreSQL's) carry every line over, each under its day, and that
// counts sum them after it.
func TestLedgerByDay_MigrationCarriesLines(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		dsn   func(t *testing.T) string
		table string // what the migration creates
		// old is the ledger as the release before left it: keyed by
		// position.
		old string
	}{
		{"sqlite", func(t *testing.T) string { return "sqlite:" + filepath.Join(t.TempDir(), "hub.db") }, "ledger_v5",
			`CREATE TABLE ledger_old (pos_id BIGINT NOT NULL, hlc BIGINT NOT NULL, ev_hi BIGINT NOT NULL, ev_lo BIGINT NOT NULL,
	line_no INTEGER NOT NULL, kind TEXT NOT NULL, qty BIGINT NOT NULL, delta BIGINT NOT NULL, store TEXT NOT NULL,
	xact BIGINT NOT NULL DEFAULT 0, PRIMARY KEY (pos_id, hlc, ev_hi, ev_lo, line_no)) WITHOUT ROWID`},
		{"postgres", func(t *testing.T) string { return migratedPostgres(t) }, "ledger_v6",
			`CREATE TABLE ledger_old (pos_id BIGINT NOT NULL, hlc BIGINT NOT NULL, ev_hi BIGINT NOT NULL, ev_lo BIGINT NOT NULL,
	line_no INTEGER NOT NULL, kind TEXT NOT NULL, qty BIGINT NOT NULL, delta BIGINT NOT NULL, store TEXT COLLATE "C" NOT NULL,
	xact BIGINT NOT NULL DEFAULT 0, PRIMARY KEY (pos_id, hlc, ev_hi, ev_lo, line_no))`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ledgerMigrationCarriesLines(t, tc.dsn(t), tc.table, tc.old)
		})
	}
}

func ledgerMigrationCarriesLines(t *testing.T, dsn, table, old string) {
	ctx := context.Background()
	s := mustOpen(t, dsn)
	day := int64(24 * time.Hour / time.Millisecond)
	now := time.Now().UnixMilli()
	d := newDevice("S1", "pos-1", 1)
	apply(t, s,
		d.ev(now-30*day, events.KindReceipt, sale("S1", line("A", 100), line("B", 100))),
		d.ev(now-3*day, events.KindSale, sale("S1", line("A", 1), line("B", 2))),
		d.ev(now-day, events.KindSale, sale("S1", line("A", 3))),
		d.ev(now, events.KindSale, sale("S1", line("B", 4))),
	)
	dump := func() []string {
		t.Helper()
		rows, err := s.r.QueryContext(ctx, "SELECT pos_id, hlc, ev_hi, ev_lo, line_no, kind, qty, delta, store FROM stock_ledger ORDER BY pos_id, hlc, ev_hi, ev_lo, line_no")
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		var out []string
		for rows.Next() {
			var pos, h, hi, lo, line, qty, delta int64
			var kind, store string
			if err := rows.Scan(&pos, &h, &hi, &lo, &line, &kind, &qty, &delta, &store); err != nil {
				t.Fatal(err)
			}
			out = append(out, fmt.Sprint(pos, h, hi, lo, line, kind, qty, delta, store))
		}
		return out
	}
	want := dump()
	version := 0
	for i, m := range migrations {
		if strings.Contains(m, "CREATE TABLE "+table) {
			version = i + 1
		}
	}
	if version == 0 {
		t.Fatalf("no migration creates %s", table)
	}
	for _, q := range []string{
		old,
		"INSERT INTO ledger_old (pos_id, hlc, ev_hi, ev_lo, line_no, kind, qty, delta, store) SELECT pos_id, hlc, ev_hi, ev_lo, line_no, kind, qty, delta, store FROM stock_ledger",
		"DROP TABLE stock_ledger",
		"ALTER TABLE ledger_old RENAME TO stock_ledger",
		// Only the ledger's migration runs again: those after it
		// built other tables, which stay.
		fmt.Sprintf("DELETE FROM schema_migrations WHERE version = %d", version),
	} {
		if _, err := s.w.ExecContext(ctx, q); err != nil {
			t.Fatalf("%v\n%s", err, q)
		}
	}
	s.Close()
	s = mustOpen(t, dsn)
	if got := dump(); !slices.Equal(got, want) {
		t.Fatalf("lines after the migration:\n%v\nwant\n%v", got, want)
	}
	var wrong int
	if err := s.r.QueryRowContext(ctx, "SELECT count(*) FROM stock_ledger WHERE day <> hlc / 5662310400000").Scan(&wrong); err != nil || wrong != 0 {
		t.Fatalf("lines under another day than their stamp's: %d %v", wrong, err)
	}
	if s.d.pg() {
		var key string
		if err := s.r.QueryRowContext(ctx, `SELECT pg_get_constraintdef(oid) FROM pg_constraint
WHERE conrelid = 'stock_ledger'::regclass AND contype = 'p'`).Scan(&key); err != nil || key != "PRIMARY KEY (day, pos_id, hlc, ev_hi, ev_lo, line_no)" {
			t.Fatalf("the ledger's key: %q %v", key, err)
		}
	}
	// A late count sums the lines carried over.
	apply(t, s, newDevice("S1", "stocktake", 1).ev(now-2*day, events.KindCount, sale("S1", line("A", 50), line("B", 50))))
	if a, b := stockAt(t, s, "A", "S1"), stockAt(t, s, "B", "S1"); a.OnHand != 47 || b.OnHand != 46 {
		t.Fatalf("after a late count: A %+v, B %+v", a, b)
	}
}
