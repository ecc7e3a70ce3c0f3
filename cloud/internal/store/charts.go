package store

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/omnisync/omnisync/shared/hlc"
)

// The console's charts read three cheap series: sales per hour from the
// ledger (one index range per position, the window's lines only), each
// store's sync lag from lag_history (written with the heartbeats, a row
// per store and five minutes), conflicts from their open and close times.

// LagHistoryKeep is how long lag_history keeps a store's lag.
const LagHistoryKeep = 7 * 24 * time.Hour

// lagSlot is lag_history's resolution.
const lagSlot = 5 * time.Minute

// recordLag keeps, per store and five minutes, the largest lag the
// heartbeats hbs report (the age of a device's oldest unconfirmed event,
// 0 when it has none), and forgets what is older than LagHistoryKeep.
func (s *Store) recordLag(ctx context.Context, hbs []Heartbeat, now time.Time) error {
	type key struct {
		store string
		slot  int64
	}
	lags := map[key]int64{}
	for _, hb := range hbs {
		at := hb.At
		if at.IsZero() {
			at = now
		}
		k := key{clean(hb.Store), at.UnixMilli() / lagSlot.Milliseconds()}
		lag := int64(0)
		if hb.Backlog > 0 {
			lag = hb.OldestUnackedAge.Milliseconds()
		}
		if old, ok := lags[k]; !ok || lag > old {
			lags[k] = lag
		}
	}
	if len(lags) == 0 {
		return nil
	}
	keys := make([]key, 0, len(lags))
	for k := range lags {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b key) int {
		if c := strings.Compare(a.store, b.store); c != 0 {
			return c
		}
		return int(a.slot - b.slot)
	})
	rows := newRowset(text("store"), integer("slot"), integer("lag_ms"))
	for _, k := range keys {
		rows.add(k.store, k.slot, lags[k])
	}
	cutoff := now.Add(-LagHistoryKeep).UnixMilli() / lagSlot.Milliseconds()
	err := s.retry(ctx, "record lag", func() error {
		err := s.execRows(ctx, s.w, rows, "h", func(a *args, h string) string {
			return `INSERT INTO lag_history (store, slot, lag_ms) SELECT store, slot, lag_ms FROM ` + h + s.d.inOrder() + `
ON CONFLICT (store, slot) DO UPDATE SET lag_ms = CASE WHEN excluded.lag_ms > lag_history.lag_ms THEN excluded.lag_ms ELSE lag_history.lag_ms END`
		})
		if err != nil {
			return err
		}
		_, err = s.w.ExecContext(ctx, "DELETE FROM lag_history WHERE slot < $1", cutoff)
		return err
	})
	if err != nil {
		return fmt.Errorf("store: record lag: %w", err)
	}
	return nil
}

// LagPoint is a store's largest sync lag in five minutes.
type LagPoint struct {
	Store string
	At    time.Time
	Lag   time.Duration
}

// LagHistory returns the stores' lag since since, by store then time;
// locations, when not nil, keeps only those stores.
func (s *Store) LagHistory(ctx context.Context, since time.Time, locations []string) ([]LagPoint, error) {
	var a args
	q := "SELECT store, slot, lag_ms FROM lag_history WHERE slot >= " + a.add(since.UnixMilli()/lagSlot.Milliseconds())
	if locations != nil {
		q += " AND " + inList(&a, "store", locations)
	}
	rows, err := s.r.QueryContext(ctx, q+" ORDER BY store, slot", a...)
	if err != nil {
		return nil, fmt.Errorf("store: lag history: %w", err)
	}
	defer rows.Close()
	out := []LagPoint{}
	for rows.Next() {
		var p LagPoint
		var slot, lag int64
		if err := rows.Scan(&p.Store, &slot, &lag); err != nil {
			return nil, fmt.Errorf("store: lag history: %w", err)
		}
		p.At, p.Lag = time.UnixMilli(slot*lagSlot.Milliseconds()).UTC(), time.Duration(lag)*time.Millisecond
		out = append(out, p)
	}
	return out, rows.Err()
}

// HourSales is the units sold in one hour through one channel.
type HourSales struct {
	Hour time.Time
	// Channel is "online" (the online warehouse's location) or "store"
	// (every other location).
	Channel string
	Units   int64
}

// hourOfHLC is an hour in packed-HLC units.
const hourOfHLC = int64(time.Hour/time.Millisecond) << 16

// SalesPerHour sums the units of sale lines stamped since since per hour
// and channel; locations, when not nil, keeps only those.
func (s *Store) SalesPerHour(ctx context.Context, since time.Time, online string, locations []string) ([]HourSales, error) {
	var a args
	from := hlc.Timestamp{Wall: since.UnixMilli()}.Pack()
	where := ""
	if locations != nil {
		where = " WHERE " + inList(&a, "s.location", locations)
	}
	// The ledger is keyed by day first (ledger_days.go): the lines since
	// from are one range of it.
	onDay := " AND l.day >= " + a.add(ledgerDay(from))
	q := `SELECT CASE WHEN s.location = ` + a.add(online) + ` THEN 'online' ELSE 'store' END AS ch, l.hlc / ` + a.add(hourOfHLC) + ` AS h, -l.delta AS u
FROM stock s JOIN stock_ledger l ON l.pos_id = s.id AND l.hlc >= ` + a.add(from) + onDay + ` AND l.kind = 'sale'` + where
	q = `SELECT ch, h, CAST(sum(u) AS BIGINT) FROM (` + q + `) x GROUP BY ch, h ORDER BY h, ch`
	rows, err := s.r.QueryContext(ctx, q, a...)
	if err != nil {
		return nil, fmt.Errorf("store: sales per hour: %w", err)
	}
	defer rows.Close()
	out := []HourSales{}
	for rows.Next() {
		var h HourSales
		var hour int64
		if err := rows.Scan(&h.Channel, &hour, &h.Units); err != nil {
			return nil, fmt.Errorf("store: sales per hour: %w", err)
		}
		h.Hour = time.UnixMilli(hour * int64(time.Hour/time.Millisecond)).UTC()
		out = append(out, h)
	}
	return out, rows.Err()
}

// DayConflicts counts the conflicts opened and closed on one UTC day.
type DayConflicts struct {
	Day            time.Time
	Opened, Closed int64
}

// ConflictsPerDay counts conflicts opened and closed per UTC day since
// since (oldest first, days with neither left out); locations, when not
// nil, keeps only those.
func (s *Store) ConflictsPerDay(ctx context.Context, since time.Time, locations []string) ([]DayConflicts, error) {
	var a args
	ms := since.UnixMilli()
	q := "SELECT opened_ms, resolved_ms FROM conflicts WHERE (opened_ms >= " + a.add(ms) + " OR resolved_ms >= " + a.add(ms) + ")"
	if locations != nil {
		q += " AND " + inList(&a, "location", locations)
	}
	rows, err := s.r.QueryContext(ctx, q, a...)
	if err != nil {
		return nil, fmt.Errorf("store: conflicts per day: %w", err)
	}
	defer rows.Close()
	byDay := map[time.Time]*DayConflicts{}
	day := func(ms int64) *DayConflicts {
		d := time.UnixMilli(ms).UTC().Truncate(24 * time.Hour)
		if byDay[d] == nil {
			byDay[d] = &DayConflicts{Day: d}
		}
		return byDay[d]
	}
	for rows.Next() {
		var opened, resolved int64
		if err := rows.Scan(&opened, &resolved); err != nil {
			return nil, fmt.Errorf("store: conflicts per day: %w", err)
		}
		if opened >= ms {
			day(opened).Opened++
		}
		if resolved != 0 && resolved >= ms {
			day(resolved).Closed++
		}
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	out := make([]DayConflicts, 0, len(byDay))
	for _, d := range byDay {
		out = append(out, *d)
	}
	slices.SortFunc(out, func(a, b DayConflicts) int { return a.Day.Compare(b.Day) })
	return out, nil
}
