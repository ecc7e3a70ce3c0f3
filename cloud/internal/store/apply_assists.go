package store

import (
	"context"
	"fmt"
	"slices"
	"time"
)

// AssistRequest is a fitting-room help request.
type AssistRequest struct {
	EventID, Store, Device, Zone, SKU, From string
	At                                      time.Time
}

// NewAssistRequests returns up to limit requests not yet handed to the
// automation, oldest first. The caller hands them over, then marks them
// (MarkAssistsNotified): a replica dying in between leaves them to be
// handed over again, which schedules nothing twice (job ids are the
// event ids).
func (s *Store) NewAssistRequests(ctx context.Context, limit int) ([]AssistRequest, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT event_id, store, device, zone, sku, from_sku, at_ms FROM assist_requests
WHERE notified_ms = 0 AND escalated = 0 ORDER BY at_ms, event_id LIMIT $1`, limit)
	if err != nil {
		return nil, fmt.Errorf("store: assist requests: %w", err)
	}
	defer rows.Close()
	var out []AssistRequest
	for rows.Next() {
		var a AssistRequest
		var at int64
		if err := rows.Scan(&a.EventID, &a.Store, &a.Device, &a.Zone, &a.SKU, &a.From, &at); err != nil {
			return nil, err
		}
		a.At = msTime(at)
		out = append(out, a)
	}
	return out, rows.Err()
}

// MarkAssistsNotified records that requests were handed to the automation.
func (s *Store) MarkAssistsNotified(ctx context.Context, ids []string) error {
	if len(ids) == 0 {
		return nil
	}
	ids = slices.Sorted(slices.Values(ids))
	rs := newRowset(text("event_id"))
	for _, id := range ids {
		rs.add(id)
	}
	now := s.now().UnixMilli()
	return s.retry(ctx, "mark assists", func() error {
		return s.execRows(ctx, s.w, rs, "i", func(a *args, i string) string {
			return `UPDATE assist_requests SET notified_ms = ` + a.add(now) + ` WHERE notified_ms = 0 AND event_id IN (SELECT event_id FROM ` + i + `)`
		})
	})
}

// AnswerAssist records that staff answered a request (the
// fitting_room_unanswered message is then skipped); ErrNotFound for an
// unknown request. Answering twice keeps the first time.
func (s *Store) AnswerAssist(ctx context.Context, eventID string) error {
	var n int64
	err := s.retry(ctx, "answer assist", func() error {
		res, err := s.w.ExecContext(ctx, `UPDATE assist_requests SET answered_ms = CASE WHEN answered_ms = 0 THEN $1 ELSE answered_ms END
WHERE event_id = $2`, s.now().UnixMilli(), eventID)
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	if err == nil && n == 0 {
		err = fmt.Errorf("%w: assist request %q", ErrNotFound, eventID)
	}
	return err
}

// AssistAnswered reports whether staff answered a request.
func (s *Store) AssistAnswered(ctx context.Context, eventID string) (bool, error) {
	var at int64
	err := s.r.QueryRowContext(ctx, "SELECT answered_ms FROM assist_requests WHERE event_id = $1", eventID).Scan(&at)
	if err != nil {
		return false, fmt.Errorf("store: assist answered: %w", err)
	}
	return at != 0, nil
}
