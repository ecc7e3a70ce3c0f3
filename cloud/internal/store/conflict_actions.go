package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/omnisync/omnisync/shared/events"
)

// HQActionDevice is the device of the events the hub writes for HQ's
// actions on conflicts (origin store inventory.HQ); each action's events
// carry its row id as their epoch and seqs from 1, so writing them again
// (a retry, another replica) is a duplicate the dedup frame drops.
const HQActionDevice = "hq-actions"

// Errors of acting on a conflict, which callers branch on.
var (
	// ErrConflictClosed: the conflict was resolved already.
	ErrConflictClosed = errors.New("store: the conflict is resolved already")
	// ErrConflictStale: the conflict changed since the version the
	// operator saw; she must look again.
	ErrConflictStale = errors.New("store: the conflict changed since it was shown")
	// ErrConflictActed: another action was taken on the conflict.
	ErrConflictActed = errors.New("store: another action was taken on the conflict")
)

// ConflictAction is an HQ action on a conflict.
type ConflictAction struct {
	// ID is the action's row, the epoch of its events.
	ID         int64
	ConflictID int64
	// ActionID is the caller's idempotency key.
	ActionID string
	// Action names what was done (transfer, resource, cancel); Detail
	// holds its parameters as JSON, so the same events can be written
	// again from the row.
	Action, Detail string
	// Actor is the operator who acted.
	Actor string
	At    time.Time
}

// ClaimConflictAction records action a (ActionID, Action, Detail, Actor
// set) on open conflict a.ConflictID at version, and returns the row.
// The claim is the idempotency point: a claim with an ActionID recorded
// already returns that row and true, whatever the conflict's state now,
// so a repeated request writes the same events again (deduplicated). A
// new claim fails with ErrNotFound, ErrConflictClosed, ErrConflictStale
// (version differs) or ErrConflictActed (another action id holds it).
func (s *Store) ClaimConflictAction(ctx context.Context, a ConflictAction, version int64) (ConflictAction, bool, error) {
	if err := events.ValidToken(a.ActionID); err != nil {
		return ConflictAction{}, false, fmt.Errorf("%w: action id: %v", ErrInvalid, err)
	}
	var out ConflictAction
	var existing bool
	err := s.retry(ctx, "claim conflict action", func() error {
		existing = false
		tx, err := s.w.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		defer tx.Rollback()
		if prev, ok, err := s.conflictAction(ctx, tx, "action_id", a.ActionID); err != nil {
			return err
		} else if ok {
			if prev.ConflictID != a.ConflictID {
				return fmt.Errorf("%w: action id %s was used on conflict %d", ErrInvalid, a.ActionID, prev.ConflictID)
			}
			out, existing = prev, true
			return nil
		}
		var resolved, ver int64
		err = tx.QueryRowContext(ctx, "SELECT resolved_ms, version FROM conflicts WHERE id = $1"+s.d.forUpdate("conflicts"), a.ConflictID).Scan(&resolved, &ver)
		if errors.Is(err, sql.ErrNoRows) {
			return ErrNotFound
		} else if err != nil {
			return err
		}
		prev, acted, err := s.conflictAction(ctx, tx, "conflict_id", a.ConflictID)
		switch {
		case err != nil:
			return err
		case acted && prev.ActionID == a.ActionID:
			// The twin of this claim committed while we waited for the
			// conflict's lock.
			out, existing = prev, true
			return nil
		case resolved != 0:
			return ErrConflictClosed
		case acted:
			return ErrConflictActed
		case ver != version:
			return fmt.Errorf("%w (version %d, not %d)", ErrConflictStale, ver, version)
		}
		a.At = s.now().UTC().Truncate(time.Millisecond)
		err = tx.QueryRowContext(ctx, `INSERT INTO conflict_actions (conflict_id, action_id, action, detail, actor, at_ms)
VALUES ($1, $2, $3, $4, $5, $6) RETURNING id`, a.ConflictID, a.ActionID, a.Action, a.Detail, a.Actor, a.At.UnixMilli()).Scan(&a.ID)
		if err != nil {
			return err
		}
		out = a
		return tx.Commit()
	})
	if err != nil {
		return ConflictAction{}, false, fmt.Errorf("store: claim conflict action: %w", err)
	}
	return out, existing, nil
}

func (s *Store) conflictAction(ctx context.Context, db *sql.Tx, col string, v any) (ConflictAction, bool, error) {
	var a ConflictAction
	var at int64
	err := db.QueryRowContext(ctx, "SELECT id, conflict_id, action_id, action, detail, actor, at_ms FROM conflict_actions WHERE "+col+" = $1", v).
		Scan(&a.ID, &a.ConflictID, &a.ActionID, &a.Action, &a.Detail, &a.Actor, &at)
	if errors.Is(err, sql.ErrNoRows) {
		return a, false, nil
	}
	a.At = msTime(at)
	return a, err == nil, err
}

// Conflict returns conflict id as Conflicts shows it.
func (s *Store) Conflict(ctx context.Context, id int64) (Conflict, error) {
	cs, err := s.conflicts(ctx, conflictFilter{id: id, limit: 1})
	if err != nil {
		return Conflict{}, err
	}
	if len(cs) == 0 {
		return Conflict{}, ErrNotFound
	}
	return cs[0], nil
}

// ReservationLines returns the location and lines of active reservation
// id; ok is false when it is not active (unknown, closed).
func (s *Store) ReservationLines(ctx context.Context, id string) (location string, lines []events.Line, ok bool, err error) {
	rows, err := s.r.QueryContext(ctx, `SELECT r.location, l.sku, l.qty FROM reservations r
JOIN reservation_lines l ON l.reservation_id = r.reservation_id WHERE r.reservation_id = $1 AND r.active = 1 ORDER BY l.sku`, id)
	if err != nil {
		return "", nil, false, fmt.Errorf("store: reservation lines: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var l events.Line
		if err := rows.Scan(&location, &l.SKU, &l.Qty); err != nil {
			return "", nil, false, err
		}
		lines = append(lines, l)
	}
	return location, lines, len(lines) > 0, rows.Err()
}

// CartCheckoutConflict is a cart checked out more than once, as the
// conflicts list shows it: Dismissed once an operator looked at it.
type CartCheckoutConflict struct {
	CartID      string
	Checkouts   int
	DismissedBy string
	DismissedAt time.Time
}

// DismissCartConflict records that actor dealt with the double checkout
// of cart id; dismissing twice keeps the first. ErrNotFound when the
// cart was not checked out more than once.
func (s *Store) DismissCartConflict(ctx context.Context, cartID, actor string) error {
	var n int64
	err := s.r.QueryRowContext(ctx, "SELECT checkouts FROM carts WHERE cart_id = $1", cartID).Scan(&n)
	if errors.Is(err, sql.ErrNoRows) || err == nil && n < 2 {
		return ErrNotFound
	}
	if err != nil {
		return fmt.Errorf("store: dismiss cart conflict: %w", err)
	}
	_, err = s.w.ExecContext(ctx, `INSERT INTO cart_conflict_dismissals (cart_id, actor, at_ms) VALUES ($1, $2, $3)
ON CONFLICT (cart_id) DO NOTHING`, cartID, actor, s.now().UnixMilli())
	if err != nil {
		return fmt.Errorf("store: dismiss cart conflict: %w", err)
	}
	return nil
}

// CartCheckoutConflicts lists up to limit carts checked out more than
// once, newest cart id last; dismissed ones only when all.
func (s *Store) CartCheckoutConflicts(ctx context.Context, all bool, limit int) ([]CartCheckoutConflict, error) {
	q := `SELECT c.cart_id, c.checkouts, COALESCE(d.actor, ''), COALESCE(d.at_ms, 0) FROM carts c
LEFT JOIN cart_conflict_dismissals d ON d.cart_id = c.cart_id WHERE c.checkouts > 1`
	if !all {
		q += " AND d.cart_id IS NULL"
	}
	rows, err := s.r.QueryContext(ctx, q+" ORDER BY c.cart_id LIMIT $1", limit)
	if err != nil {
		return nil, fmt.Errorf("store: cart checkout conflicts: %w", err)
	}
	defer rows.Close()
	var out []CartCheckoutConflict
	for rows.Next() {
		var c CartCheckoutConflict
		var at int64
		if err := rows.Scan(&c.CartID, &c.Checkouts, &c.DismissedBy, &at); err != nil {
			return nil, err
		}
		c.DismissedAt = msTime(at)
		out = append(out, c)
	}
	return out, rows.Err()
}
