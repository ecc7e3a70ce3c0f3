package store

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/omnisync/omnisync/shared/hlc"
)

// Ledger retention: the stock ledger's raw lines older than a retention
// age are rolled up into daily totals per position and kind (ledger_daily,
// the sales history analytics keep) and deleted, a few thousand lines per
// transaction so that apply never waits long for them.
//
// What the rules need of the ledger is the deltas stamped after a count,
// to apply a count that arrives after them. The retention horizon (a
// stored setting, the start of a UTC day) only moves forward, and no line
// stamped at or after it is ever deleted; a count stamped before it would
// need lines that may be gone, so the ledger's gate refuses it: such a
// count is dead-lettered ("older than the ledger's retention"), and the
// books stay exact. A count a year late is an anomaly worth a person's
// look anyway.
//
// On PostgreSQL the horizon moves under an exclusive advisory lock that
// every batch holding a count takes shared while it reads the horizon,
// so no batch can have read an older horizon while lines behind the new
// one are deleted. SQLite has one writer and needs none.

const settingLedgerHorizon = "ledger.horizon"

// horizonLockKey is the advisory lock key of the ledger's horizon
// ("omni-hzn").
const horizonLockKey = 0x6f6d6e692d687a6e

// RetentionResult says what a retention pass did.
type RetentionResult struct {
	// Horizon is the retention horizon: lines stamped before it are
	// rolled up.
	Horizon time.Time
	// Lines were deleted and rolled into Days daily totals (rows of
	// ledger_daily written or added to).
	Lines, Days int64
	// Transactions counts the small transactions the pass took.
	Transactions int
}

// RetentionOptions tunes a retention pass.
type RetentionOptions struct {
	// Age is the retention age: lines stamped more than Age before now
	// (rounded down to the start of a UTC day) are rolled up. Required.
	Age time.Duration
	// Lines bounds the lines one transaction deletes (default 5,000).
	Lines int
	// Pause is waited between transactions (default none), to leave the
	// writer to apply on a busy SQLite hub.
	Pause time.Duration
}

// RetainLedger moves the retention horizon forward to now − o.Age (start
// of that UTC day) and rolls up, then deletes, every ledger line stamped
// before it. Safe to run on several replicas at once (on PostgreSQL one
// runs at a time; the others return at once) and to interrupt: a later
// pass carries on.
func (s *Store) RetainLedger(ctx context.Context, o RetentionOptions) (RetentionResult, error) {
	var res RetentionResult
	if o.Age <= 0 {
		return res, fmt.Errorf("%w: retention age %v", ErrInvalid, o.Age)
	}
	if o.Lines <= 0 {
		o.Lines = 5000
	}
	conn, err := s.w.Conn(ctx)
	if err != nil {
		return res, fmt.Errorf("store: retention: %w", err)
	}
	defer conn.Close()
	if s.d.pg() {
		// One replica at a time: the lock goes with this connection.
		var got bool
		if err := conn.QueryRowContext(ctx, "SELECT pg_try_advisory_lock($1)", int64(horizonLockKey)+1).Scan(&got); err != nil {
			return res, fmt.Errorf("store: retention lock: %w", err)
		}
		if !got {
			return res, nil
		}
		defer func() {
			uctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_, _ = conn.ExecContext(uctx, "SELECT pg_advisory_unlock($1)", int64(horizonLockKey)+1)
		}()
	}
	day := s.now().Add(-o.Age).UTC().Truncate(24 * time.Hour)
	horizon := hlc.Timestamp{Wall: day.UnixMilli()}.Pack()
	if err := s.moveHorizon(ctx, conn, horizon); err != nil {
		return res, err
	}
	h, err := s.ledgerHorizon(ctx, conn)
	if err != nil {
		return res, err
	}
	res.Horizon = hlc.Unpack(h).Time().UTC()
	// The basket folder reads the sales it has yet to fold from its
	// inbox, not from the ledger (baskets.go): sale lines go like the
	// others.
	err = s.retainByDay(ctx, conn, h, o, &res)
	return res, err
}

// retainByDay rolls up the lines stamped before h, the ledger being keyed
// by day first (ledger_days.go): day after day, each in key order, every
// line of a day before h's (the horizon starts a day).
func (s *Store) retainByDay(ctx context.Context, conn *sql.Conn, h int64, o RetentionOptions, res *RetentionResult) error {
	last := ledgerDay(h - 1) // the last day with lines that may be before h
	from := int64(math.MinInt64)
	for {
		var day int64
		err := s.r.QueryRowContext(ctx, "SELECT day FROM stock_ledger WHERE day >= $1 ORDER BY day LIMIT 1", from).Scan(&day)
		if errors.Is(err, sql.ErrNoRows) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("store: retention days: %w", err)
		}
		if day > last {
			return nil
		}
		err = s.retainChunks(ctx, conn, o, res, func() (*rowset, error) { return s.oldLinesOfDay(ctx, day, h, o.Lines) })
		if err != nil {
			return err
		}
		from = day + 1
	}
}

// retainChunks rolls up the lines next finds, o.Lines at most a
// transaction, until it finds fewer.
func (s *Store) retainChunks(ctx context.Context, conn *sql.Conn, o RetentionOptions, res *RetentionResult, next func() (*rowset, error)) error {
	for {
		keys, err := next()
		if err != nil {
			return err
		}
		if keys.len() == 0 {
			return nil
		}
		n, days, err := s.rollUp(ctx, conn, keys)
		if err != nil {
			return err
		}
		res.Lines += n
		res.Days += days
		res.Transactions++
		if o.Pause > 0 {
			t := time.NewTimer(o.Pause)
			select {
			case <-ctx.Done():
				t.Stop()
				return ctx.Err()
			case <-t.C:
			}
		}
		if keys.len() < o.Lines {
			return nil
		}
	}
}

// moveHorizon stores h as the horizon if it is later than the stored one.
func (s *Store) moveHorizon(ctx context.Context, conn *sql.Conn, h int64) error {
	return s.retry(ctx, "move ledger horizon", func() error {
		tx, err := conn.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		defer tx.Rollback()
		if s.d.pg() {
			// Waits for every batch that read the old horizon.
			if _, err := tx.ExecContext(ctx, "SELECT pg_advisory_xact_lock($1)", int64(horizonLockKey)); err != nil {
				return err
			}
		}
		v, _, ok, err := readSetting(ctx, tx, settingLedgerHorizon)
		if err != nil {
			return err
		}
		if ok {
			if old, err := strconv.ParseInt(v, 10, 64); err == nil && old >= h {
				return nil
			}
		}
		if err := s.writeSetting(ctx, tx, settingLedgerHorizon, strconv.FormatInt(h, 10)); err != nil {
			return err
		}
		return tx.Commit()
	})
}

// ledgerHorizon reads the stored horizon (0: none).
func (s *Store) ledgerHorizon(ctx context.Context, q querier) (int64, error) {
	v, _, ok, err := readSetting(ctx, q, settingLedgerHorizon)
	if err != nil || !ok {
		return 0, err
	}
	h, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("store: stored ledger horizon %q: %w", v, err)
	}
	return h, nil
}

// oldLinesOfDay returns the keys (day first) of up to limit
// lines of one day stamped before h, in key order.
func (s *Store) oldLinesOfDay(ctx context.Context, day, h int64, limit int) (*rowset, error) {
	keys := newRowset(integer("day"), integer("pos_id"), integer("hlc"), integer("ev_hi"), integer("ev_lo"), integer("line_no"))
	rows, err := s.r.QueryContext(ctx, `SELECT day, pos_id, hlc, ev_hi, ev_lo, line_no FROM stock_ledger
WHERE day = $1 AND hlc < $2 ORDER BY day, pos_id, hlc, ev_hi, ev_lo, line_no LIMIT $3`, day, h, int64(limit))
	if err != nil {
		return nil, fmt.Errorf("store: retention scan: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var d, pos, hl, hi, lo, line int64
		if err := rows.Scan(&d, &pos, &hl, &hi, &lo, &line); err != nil {
			return nil, err
		}
		keys.add(d, pos, hl, hi, lo, line)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: retention scan: %w", err)
	}
	return keys, nil
}

// rollUp deletes the ledger lines keys names, in one transaction, adding
// those it deleted (another replica may have been first) to their daily
// totals.
func (s *Store) rollUp(ctx context.Context, conn *sql.Conn, keys *rowset) (lines, days int64, err error) {
	err = s.retry(ctx, "retain ledger", func() error {
		lines, days = 0, 0
		tx, err := conn.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		defer tx.Rollback()
		type dayKey struct {
			pos  int64
			day  int64
			kind string
		}
		type total struct{ lines, qty, delta int64 }
		totals := map[dayKey]*total{}
		var order []dayKey
		key := "day, pos_id, hlc, ev_hi, ev_lo, line_no" // oldLinesOfDay's
		err = s.queryRows(ctx, tx, keys, "k", func(a *args, k string) string {
			return `DELETE FROM stock_ledger WHERE (` + key + `) IN (SELECT ` + key + ` FROM ` + k + `)
RETURNING pos_id, hlc, kind, qty, delta`
		}, func(rows *sql.Rows) error {
			var pos, hl, qty, delta int64
			var kind string
			if err := rows.Scan(&pos, &hl, &kind, &qty, &delta); err != nil {
				return err
			}
			k := dayKey{pos, hlc.Unpack(hl).Wall / int64(24*time.Hour/time.Millisecond), kind}
			t := totals[k]
			if t == nil {
				t = &total{}
				totals[k] = t
				order = append(order, k)
			}
			t.lines++
			t.qty += qty
			t.delta += delta
			lines++
			return nil
		})
		if err != nil {
			return fmt.Errorf("store: retention delete: %w", err)
		}
		slices.SortFunc(order, func(a, b dayKey) int {
			if c := cmp.Compare(a.pos, b.pos); c != 0 {
				return c
			}
			if c := cmp.Compare(a.day, b.day); c != 0 {
				return c
			}
			return strings.Compare(a.kind, b.kind)
		})
		up := newRowset(integer("pos_id"), integer("day"), text("kind"), integer("lines"), integer("qty"), integer("delta"))
		for _, k := range order {
			t := totals[k]
			up.add(k.pos, k.day, k.kind, t.lines, t.qty, t.delta)
		}
		err = s.execRows(ctx, tx, up, "u", func(a *args, u string) string {
			return `INSERT INTO ledger_daily (pos_id, day, kind, lines, qty, delta) SELECT pos_id, day, kind, lines, qty, delta FROM ` + u + s.d.inOrder() + `
ON CONFLICT (pos_id, day, kind) DO UPDATE SET lines = ledger_daily.lines + excluded.lines,
	qty = ledger_daily.qty + excluded.qty, delta = ledger_daily.delta + excluded.delta`
		})
		if err != nil {
			return fmt.Errorf("store: retention roll-up: %w", err)
		}
		days = int64(len(order))
		return tx.Commit()
	})
	return lines, days, err
}

// DailyTotal is one day's total of one kind of stock line at a position.
type DailyTotal struct {
	SKU, Location, Kind string
	// Day is the UTC day of the lines' HLC.
	Day               time.Time
	Lines, Qty, Delta int64
}

// DailyTotals returns the rolled-up daily totals of a SKU (every
// location), oldest first.
func (s *Store) DailyTotals(ctx context.Context, sku string) ([]DailyTotal, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT s.sku, s.location, d.kind, d.day, d.lines, d.qty, d.delta
FROM ledger_daily d JOIN stock s ON s.id = d.pos_id WHERE s.sku = $1 ORDER BY d.day, s.location, d.kind`, sku)
	if err != nil {
		return nil, fmt.Errorf("store: daily totals: %w", err)
	}
	defer rows.Close()
	out := []DailyTotal{}
	for rows.Next() {
		var d DailyTotal
		var day int64
		if err := rows.Scan(&d.SKU, &d.Location, &d.Kind, &day, &d.Lines, &d.Qty, &d.Delta); err != nil {
			return nil, err
		}
		d.Day = time.UnixMilli(day * int64(24*time.Hour/time.Millisecond)).UTC()
		out = append(out, d)
	}
	return out, rows.Err()
}

// gate refuses the batch's counts stamped before the ledger's retention
// horizon (see the top of this file).
func (l ledgerApplier) gate(ctx context.Context, t *applyTx) error {
	// A count sits in the ledger at its snapshot (inventory.CountStamp),
	// which may be before the event's own stamp: that is what must not be
	// before the horizon.
	var counts []itemRead
	var at []hlc.Timestamp
	for _, r := range t.readsOf(l) {
		for _, m := range r.v.(*ledgerRead).moves {
			if m.IsCount() {
				counts = append(counts, r)
				at = append(at, m.Stamp.HLC)
				break
			}
		}
	}
	if len(counts) == 0 {
		return nil
	}
	if t.s.d.pg() {
		if _, err := t.tx.ExecContext(ctx, "SELECT pg_advisory_xact_lock_shared($1)", int64(horizonLockKey)); err != nil {
			return fmt.Errorf("horizon lock: %w", err)
		}
	}
	h, err := t.s.ledgerHorizon(ctx, t.tx)
	if err != nil || h == 0 {
		return err
	}
	for i, r := range counts {
		if at[i].Pack() < h {
			t.reject(r.item, fmt.Sprintf("%v: a count stamped %s, before the ledger's retention horizon %s (the lines it would supersede are rolled up); count again",
				errBeforeHorizon, at[i].Time().UTC().Format(time.RFC3339), hlc.Unpack(h).Time().UTC().Format(time.DateOnly)))
		}
	}
	return nil
}

// errBeforeHorizon is the reason a count older than the ledger's
// retention is dead-lettered.
var errBeforeHorizon = errors.New("count older than the ledger's retention")

var _ gate = ledgerApplier{}
