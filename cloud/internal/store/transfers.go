package store

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"

	"github.com/omnisync/omnisync/cloud/internal/inventory"
	"github.com/omnisync/omnisync/cloud/internal/transfers"
)

// TransferQuery filters Transfers.
type TransferQuery struct {
	// State is one of transfers' states, or empty for all. Overdue
	// (open, shipped more than Overdue before Now) is taken out of
	// in_transit and partial.
	State string
	// Locations, when Limited, keeps the transfers from or to them.
	Locations []string
	Limited   bool
	Now       time.Time
	Overdue   time.Duration
	Limit     int
}

// Transfers lists transfers, newest shipment first, with their lines;
// each State is as of q.Now (transfers.Transfer.StateAt).
func (s *Store) Transfers(ctx context.Context, q TransferQuery) ([]transfers.Transfer, error) {
	if q.State != "" && !transfers.ValidState(q.State) {
		return nil, fmt.Errorf("%w: transfer state %q", ErrInvalid, q.State)
	}
	if q.Limit <= 0 {
		q.Limit = 100
	}
	if q.Overdue <= 0 {
		q.Overdue = transfers.DefaultOverdue
	}
	if q.Now.IsZero() {
		q.Now = s.now()
	}
	cut := q.Now.Add(-q.Overdue).UnixMilli()
	var a args
	where := []string{"t.source <> ''"}
	switch q.State {
	case transfers.StateOverdue:
		where = append(where, "t.state IN ('in_transit', 'partial') AND t.shipped_ms > 0 AND t.shipped_ms < "+a.add(cut))
	case transfers.StateInTransit, transfers.StatePartial:
		where = append(where, "t.state = "+a.add(q.State)+" AND (t.shipped_ms = 0 OR t.shipped_ms >= "+a.add(cut)+")")
	case transfers.StateReceived:
		where = append(where, "t.state = "+a.add(q.State))
	}
	if q.Limited {
		where = append(where, "("+inList(&a, "t.source", q.Locations)+" OR "+inList(&a, "t.destination", q.Locations)+")")
	}
	tx, err := s.r.BeginTx(ctx, s.d.readTx())
	if err != nil {
		return nil, fmt.Errorf("store: transfers: %w", err)
	}
	defer tx.Rollback()
	rows, err := tx.QueryContext(ctx, `SELECT t.transfer_id, t.source, t.destination, t.state, t.shipped_ms, t.received_ms FROM transfers t
WHERE `+strings.Join(where, " AND ")+` ORDER BY t.shipped_ms DESC, t.transfer_id LIMIT `+a.add(int64(q.Limit)), a...)
	if err != nil {
		return nil, fmt.Errorf("store: transfers: %w", err)
	}
	out := []transfers.Transfer{}
	ids := newRowset(text("id"))
	for rows.Next() {
		var t transfers.Transfer
		var shipped, received int64
		if err := rows.Scan(&t.ID, &t.Source, &t.Destination, &t.State, &shipped, &received); err != nil {
			rows.Close()
			return nil, err
		}
		t.ShippedAt, t.ReceivedAt = msTime(shipped), msTime(received)
		out = append(out, t)
		ids.add(t.ID)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: transfers: %w", err)
	}
	lines := map[string][]transfers.Line{}
	err = s.queryRows(ctx, tx, ids, "k", func(a *args, k string) string {
		return `SELECT l.transfer_id, l.sku, l.shipped, l.received FROM transfer_lines l JOIN ` + k + ` ON l.transfer_id = k.id ORDER BY l.transfer_id, l.sku`
	}, func(rows *sql.Rows) error {
		var id string
		var l transfers.Line
		if err := rows.Scan(&id, &l.SKU, &l.Shipped, &l.Received); err != nil {
			return err
		}
		lines[id] = append(lines[id], l)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("store: transfer lines: %w", err)
	}
	for i := range out {
		out[i].Lines = lines[out[i].ID]
		out[i].State = out[i].StateAt(q.Now, q.Overdue)
	}
	return out, nil
}

// InTransit returns the stock on its way to each position of skus: the
// open transfers' lines not received yet, by destination.
func (s *Store) InTransit(ctx context.Context, skus []string) (map[inventory.Key]int64, error) {
	out := map[inventory.Key]int64{}
	set := newRowset(text("sku"))
	for _, sku := range skus {
		set.add(sku)
	}
	err := s.queryRows(ctx, s.r, set, "k", func(a *args, k string) string {
		return `SELECT l.sku, l.destination, SUM(l.in_transit) FROM transfer_lines l JOIN ` + k + ` ON l.sku = k.sku
WHERE l.in_transit > 0 GROUP BY l.sku, l.destination`
	}, func(rows *sql.Rows) error {
		var k inventory.Key
		var n int64
		if err := rows.Scan(&k.SKU, &k.Location, &n); err != nil {
			return err
		}
		out[k] = n
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("store: in transit: %w", err)
	}
	return out, nil
}
