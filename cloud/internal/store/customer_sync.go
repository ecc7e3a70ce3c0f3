package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/omnisync/omnisync/cloud/internal/consent"
)

// What the rest of the hub asks of the customer books outside the apply
// path: the automation whether a message may be sent now (consent at send
// time), and the stores' customer protocol (custsync) which erasures each
// store still has to carry out.

// ConsentMay answers whether customer id (a master id, or an old id that
// redirects to one) may be addressed for purpose on channel at at, by the
// consent rules (package consent): the newest decision wins, an opt-out
// holds on every channel, no decision means no. An unknown or erased
// customer may not be addressed.
func (s *Store) ConsentMay(ctx context.Context, id, purpose, channel string, at time.Time) (bool, error) {
	p := consent.Purpose(purpose)
	if !p.Valid() {
		return false, fmt.Errorf("%w: purpose %q", ErrInvalid, purpose)
	}
	c := consent.Channel(channel)
	if !c.Valid() {
		return false, fmt.Errorf("%w: channel %q", ErrInvalid, channel)
	}
	v, err := s.Customer(ctx, id, nil)
	if errors.Is(err, ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	var st consent.State
	for _, d := range v.Consent {
		st.Add(d)
	}
	return st.May(p, c, at).Allowed, nil
}

// ErasureNotice is one erasure as told to one store: enough for the store
// to purge the customer and to find the person's events in its outbox
// (through the hub, which compares identifiers against Digests).
type ErasureNotice struct {
	ID       string
	Customer string
	// Requested is when HQ asked.
	Requested time.Time
	// Digests are the keyed digests of every identifier the erasure
	// removed (its tombstones, kept for good).
	Digests []string
}

// StoresWithPendingErasures lists the stores at least one erasure still
// waits for, in order.
func (s *Store) StoresWithPendingErasures(ctx context.Context) ([]string, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT DISTINCT store FROM cust_erasure_stores WHERE done_ms = 0 ORDER BY store`)
	if err != nil {
		return nil, fmt.Errorf("store: pending erasure stores: %w", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var st string
		if err := rows.Scan(&st); err != nil {
			return nil, err
		}
		out = append(out, st)
	}
	return out, rows.Err()
}

// PendingErasureNotices lists the erasures store has not acknowledged,
// oldest first.
func (s *Store) PendingErasureNotices(ctx context.Context, store string) ([]ErasureNotice, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT e.id, e.customer, e.requested_ms FROM cust_erasure_stores x JOIN cust_erasures e ON e.id = x.erasure
WHERE x.store = $1 AND x.done_ms = 0 ORDER BY e.requested_ms, e.id`, store)
	if err != nil {
		return nil, fmt.Errorf("store: pending erasures: %w", err)
	}
	var out []ErasureNotice
	for rows.Next() {
		var n ErasureNotice
		var ms int64
		if err := rows.Scan(&n.ID, &n.Customer, &ms); err != nil {
			rows.Close()
			return nil, err
		}
		n.Requested = msTime(ms)
		out = append(out, n)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	for i := range out {
		if out[i].Digests, err = s.erasureDigests(ctx, out[i].ID); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// StoreErasure returns erasure id as told to store, pending or
// acknowledged; ErrNotFound when store was never asked to carry it out.
func (s *Store) StoreErasure(ctx context.Context, store, id string) (ErasureNotice, error) {
	var n ErasureNotice
	var ms int64
	err := s.r.QueryRowContext(ctx, `SELECT e.id, e.customer, e.requested_ms FROM cust_erasure_stores x JOIN cust_erasures e ON e.id = x.erasure
WHERE x.store = $1 AND x.erasure = $2`, store, id).Scan(&n.ID, &n.Customer, &ms)
	if errors.Is(err, sql.ErrNoRows) {
		return ErasureNotice{}, fmt.Errorf("%w: erasure %s at store %s", ErrNotFound, id, store)
	}
	if err != nil {
		return ErasureNotice{}, fmt.Errorf("store: erasure: %w", err)
	}
	n.Requested = msTime(ms)
	n.Digests, err = s.erasureDigests(ctx, id)
	return n, err
}

func (s *Store) erasureDigests(ctx context.Context, id string) ([]string, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT digest FROM cust_tombstones WHERE erasure = $1 ORDER BY digest`, id)
	if err != nil {
		return nil, fmt.Errorf("store: erasure digests: %w", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var d string
		if err := rows.Scan(&d); err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	return out, rows.Err()
}
