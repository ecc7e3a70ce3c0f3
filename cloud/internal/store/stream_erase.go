package store

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"time"
)

// The events stream keeps every raw message for its retention (a week by
// default), identify events with their e-mails and phones among them. An
// erasure must reach those copies too. Each observation (every applied
// event naming a customer but an erase) keeps the stream sequence of the
// message it came in (cust_observations.stream_seq, written with the
// observation: no row of its own); eraseTx queues, in the erasure's
// transaction, the messages of the observations naming the customer's
// identifiers, and the erase event's own message, in stream_deletions; a
// late event naming an erased identifier, scrubbed on apply, has its
// message queued under the erasure that erased it. The hub's stream
// eraser (package streamerase) deletes them from the stream under a
// lease, at least once; a message already gone (deleted, or aged out of
// the stream) counts as deleted.
//
// Not covered: an event delivered under two origins (a broken agent) is
// one observation, so only its first message is known; surveys and carts
// naming a customer by master id, receipt or session are not
// observations.

// StreamDeletion is one stream message an erasure must delete.
type StreamDeletion struct {
	Erasure string
	Seq     uint64
	// EventID is an event the message carries: the eraser deletes the
	// message only if it still does (a stream deleted and created again
	// numbers other messages with the same sequences).
	EventID string
}

// ErasureStream is how far an erasure reached the events stream.
type ErasureStream struct {
	// State is "done" when every message naming the customer is gone
	// from the stream, "pending" while some are still to delete.
	State string `json:"state"`
	// Deleted counts the messages deleted (or found already gone);
	// Pending those still to delete.
	Deleted int `json:"deleted"`
	Pending int `json:"pending"`
}

// setStreamSeqs gives the batch's customer reads their stream message,
// and queues the messages of those scrubbed (naming an erased identifier)
// for deletion, under the erasure of each erased identifier they name.
func (t *applyTx) setStreamSeqs(ctx context.Context) error {
	late := newRowset(text("digest"), integer("seq"), text("event_id"))
	for _, r := range t.custReads() {
		seq := t.p.items[r.item].StreamSeq
		if seq == 0 || seq > math.MaxInt64 {
			continue
		}
		cr := r.v.(*custRead)
		cr.streamSeq = int64(seq)
		if t.cust.scrubbed[r.item] {
			for _, d := range cr.digests() {
				late.add(d, cr.streamSeq, cr.stamp.ID)
			}
		}
	}
	if late.n == 0 {
		return nil
	}
	err := t.s.execRows(ctx, t.tx, late, "r", func(a *args, r string) string {
		return `INSERT INTO stream_deletions (erasure, seq, event_id, queued_ms) SELECT t.erasure, r.seq, r.event_id, ` + a.add(t.nowMS) +
			` FROM ` + r + ` JOIN cust_tombstones t ON t.digest = r.digest WHERE true ON CONFLICT (erasure, seq) DO NOTHING`
	})
	if err != nil {
		return fmt.Errorf("stream messages of erased customers: %w", err)
	}
	return nil
}

// queueStreamDeletions queues, in an erasure's transaction, the stream
// messages of the observations obsIDs (those naming the customer) and
// own (the erase request's message) for deletion.
func (s *Store) queueStreamDeletions(ctx context.Context, tx execer, erasureID string, obsIDs []string, own *StreamDeletion, nowMS int64) error {
	rs := newRowset(text("k"))
	for _, id := range obsIDs {
		rs.add(id)
	}
	err := s.execRows(ctx, tx, rs, "r", func(a *args, r string) string {
		return `INSERT INTO stream_deletions (erasure, seq, event_id, queued_ms) SELECT ` + a.add(erasureID) + `, stream_seq, event_id, ` + a.add(nowMS) +
			` FROM cust_observations WHERE stream_seq > 0 AND event_id IN (SELECT k FROM ` + r + `) ON CONFLICT (erasure, seq) DO NOTHING`
	})
	if err != nil {
		return fmt.Errorf("erasure: stream messages: %w", err)
	}
	if own != nil && own.Seq > 0 {
		if _, err := tx.ExecContext(ctx, `INSERT INTO stream_deletions (erasure, seq, event_id, queued_ms) VALUES ($1, $2, $3, $4) ON CONFLICT (erasure, seq) DO NOTHING`,
			erasureID, int64(own.Seq), own.EventID, nowMS); err != nil {
			return fmt.Errorf("erasure: stream messages: %w", err)
		}
	}
	return nil
}

// ClaimStreamDeletions leases up to limit pending stream deletions to
// owner until now+lease: no other replica claims them meanwhile
// (PostgreSQL: FOR UPDATE SKIP LOCKED; SQLite: one writer). A deletion
// whose lease ended unfinished (its replica died, or the stream refused)
// is claimed again.
func (s *Store) ClaimStreamDeletions(ctx context.Context, owner string, now time.Time, lease time.Duration, limit int) ([]StreamDeletion, error) {
	if limit <= 0 {
		return nil, nil
	}
	nowMS := now.UnixMilli()
	q := `UPDATE stream_deletions SET lease_owner = $1, lease_until = $2, attempts = attempts + 1
WHERE (erasure, seq) IN (SELECT erasure, seq FROM stream_deletions WHERE done_ms = 0 AND lease_until <= $3 ORDER BY queued_ms, seq LIMIT ` +
		strconv.Itoa(limit) + s.d.skipLocked() + `)
RETURNING erasure, seq, event_id`
	var out []StreamDeletion
	err := s.retry(ctx, "claim stream deletions", func() error {
		out = out[:0]
		rows, err := s.w.QueryContext(ctx, q, owner, nowMS+lease.Milliseconds(), nowMS)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var (
				d   StreamDeletion
				seq int64
			)
			if err := rows.Scan(&d.Erasure, &seq, &d.EventID); err != nil {
				return err
			}
			d.Seq = uint64(seq)
			out = append(out, d)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("store: claim stream deletions: %w", err)
	}
	return out, nil
}

// FinishStreamDeletions records that the messages of done are gone from
// the stream (deleted now, or already gone), whoever held their lease.
func (s *Store) FinishStreamDeletions(ctx context.Context, done []StreamDeletion, at time.Time) error {
	if len(done) == 0 {
		return nil
	}
	rs := newRowset(text("erasure"), integer("seq"))
	for _, d := range done {
		rs.add(d.Erasure, int64(d.Seq))
	}
	atMS := max(at.UnixMilli(), 1)
	err := s.retry(ctx, "finish stream deletions", func() error {
		return s.execRows(ctx, s.w, rs, "r", func(a *args, r string) string {
			return `UPDATE stream_deletions SET done_ms = ` + a.add(atMS) + `, lease_owner = '', lease_until = 0
WHERE done_ms = 0 AND (erasure, seq) IN (SELECT erasure, seq FROM ` + r + `)`
		})
	})
	if err != nil {
		return fmt.Errorf("store: finish stream deletions: %w", err)
	}
	return nil
}

// erasureStream reads erasure id's stream deletions.
func (s *Store) erasureStream(ctx context.Context, id string) (ErasureStream, error) {
	var st ErasureStream
	err := s.r.QueryRowContext(ctx, `SELECT COALESCE(SUM(CASE WHEN done_ms > 0 THEN 1 ELSE 0 END), 0), COALESCE(SUM(CASE WHEN done_ms = 0 THEN 1 ELSE 0 END), 0)
FROM stream_deletions WHERE erasure = $1`, id).Scan(&st.Deleted, &st.Pending)
	if err != nil {
		return ErasureStream{}, fmt.Errorf("erasure: stream: %w", err)
	}
	st.State = "done"
	if st.Pending > 0 {
		st.State = "pending"
	}
	return st, nil
}
