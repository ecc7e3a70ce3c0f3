package store

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/omnisync/omnisync/shared/hlc"
)

// CountVariance is the record of one count line that set a position
// (countsApplier): what the books expected at the count's snapshot, what
// was counted, and the difference in units and money.
type CountVariance struct {
	EventID  string
	Line     int
	SKU      string
	Location string
	// Store and Device sent the count.
	Store, Device string
	Method        string
	// SnapshotAt is when the shelf was observed (the count's place in the
	// ledger), AppliedAt when the hub applied it.
	SnapshotAt, AppliedAt time.Time
	Expected, Counted     int64
	// Variance is Counted − Expected: negative is shrinkage.
	Variance int64
	// UnitPrice is the catalog price when the count was applied (minor
	// units of Currency; 0 and "" unknown), Value Variance × UnitPrice.
	UnitPrice, Value int64
	Currency         string
}

// VarianceQuery selects count variances.
type VarianceQuery struct {
	// Locations, when not nil, keeps only those locations (a store
	// manager's stores; empty keeps nothing).
	Locations []string
	// Since keeps counts whose snapshot is at or after it.
	Since time.Time
	// Limit bounds the answer (default and most 1000).
	Limit int
}

// CountVariances returns the variance records q selects, newest snapshot
// first.
func (s *Store) CountVariances(ctx context.Context, q VarianceQuery) ([]CountVariance, error) {
	limit := q.Limit
	if limit <= 0 || limit > 1000 {
		limit = 1000
	}
	var a args
	where := []string{"snapshot_hlc >= " + a.add(hlc.Timestamp{Wall: q.Since.UnixMilli()}.Pack())}
	if q.Locations != nil {
		where = append(where, inList(&a, "location", q.Locations))
	}
	rows, err := s.r.QueryContext(ctx, `SELECT event_id, line_no, sku, location, store, device, method, snapshot_hlc, at_ms,
	expected, counted, variance, unit_price, value, currency
FROM count_variances WHERE `+strings.Join(where, " AND ")+`
ORDER BY snapshot_hlc DESC, id DESC LIMIT `+a.add(int64(limit)), a...)
	if err != nil {
		return nil, fmt.Errorf("store: count variances: %w", err)
	}
	defer rows.Close()
	out := []CountVariance{}
	for rows.Next() {
		var v CountVariance
		var line, snap, at int64
		if err := rows.Scan(&v.EventID, &line, &v.SKU, &v.Location, &v.Store, &v.Device, &v.Method, &snap, &at,
			&v.Expected, &v.Counted, &v.Variance, &v.UnitPrice, &v.Value, &v.Currency); err != nil {
			return nil, fmt.Errorf("store: count variances: %w", err)
		}
		v.Line = int(line)
		v.SnapshotAt = hlc.Unpack(snap).Time().UTC()
		v.AppliedAt = time.UnixMilli(at).UTC()
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: count variances: %w", err)
	}
	return out, nil
}

// VarianceTotals sums variance records.
type VarianceTotals struct {
	// Counts is the number of distinct count events, Lines of records.
	Counts, Lines int
	// Short and Over are the units found missing and in excess, Net
	// their sum (Over − Short).
	Short, Over, Net int64
	// ShortValue, OverValue and NetValue are the same in money (minor
	// units).
	ShortValue, OverValue, NetValue int64
}

// SumVariances totals vs.
func SumVariances(vs []CountVariance) VarianceTotals {
	var t VarianceTotals
	seen := map[string]bool{}
	for _, v := range vs {
		if !seen[v.EventID] {
			seen[v.EventID] = true
			t.Counts++
		}
		t.Lines++
		if v.Variance < 0 {
			t.Short -= v.Variance
			t.ShortValue -= v.Value
		} else {
			t.Over += v.Variance
			t.OverValue += v.Value
		}
	}
	t.Net, t.NetValue = t.Over-t.Short, t.OverValue-t.ShortValue
	return t
}

// ParseSince reads a "since" parameter: an RFC 3339 time, a date
// (2006-01-02, UTC midnight) or a duration back from now ("72h"); empty
// is def back from now.
func ParseSince(v string, now time.Time, def time.Duration) (time.Time, error) {
	if v == "" {
		return now.Add(-def), nil
	}
	if t, err := time.Parse(time.RFC3339, v); err == nil {
		return t, nil
	}
	if t, err := time.Parse(time.DateOnly, v); err == nil {
		return t, nil
	}
	if d, err := time.ParseDuration(v); err == nil && d >= 0 {
		return now.Add(-d), nil
	}
	return time.Time{}, fmt.Errorf("%w: since %q: an RFC 3339 time, a date (2006-01-02) or a duration back from now (72h)", ErrInvalid, v)
}
