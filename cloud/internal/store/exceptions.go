package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/omnisync/omnisync/cloud/internal/exceptions"
	"github.com/omnisync/omnisync/cloud/internal/inventory"
	"github.com/omnisync/omnisync/shared/events"
	"github.com/omnisync/omnisync/shared/hlc"
	"github.com/omnisync/omnisync/shared/subjects"
)

// Exception is one unknown value the exception queue holds events for.
type Exception struct {
	ID     int64
	Reason exceptions.Reason
	// Value is the unknown SKU, GTIN or location; Store the store whose
	// events named it.
	Value, Store string
	// State: open (events held), resolved (all replayed) or discarded.
	State         string
	First, Last   time.Time
	Count, Held   int64
	Note, DoneBy  string
	DoneAt        time.Time
	SampleEventID string
	SampleKind    string
}

// ExceptionQuery selects exceptions for Exceptions.
type ExceptionQuery struct {
	// State keeps only exceptions in that state ("" : open).
	State string
	// Stores, when not nil, keeps only those stores' (a store manager's;
	// empty keeps nothing).
	Stores []string
	Limit  int
	// id, when set, selects that exception whatever its state.
	id int64
}

// Exceptions lists exceptions, newest seen first.
func (s *Store) Exceptions(ctx context.Context, q ExceptionQuery) ([]Exception, error) {
	if q.Limit <= 0 || q.Limit > 1000 {
		q.Limit = 100
	}
	if q.State == "" {
		q.State = "open"
	}
	var a args
	var where string
	if q.id != 0 {
		where = "x.id = " + a.add(q.id)
	} else {
		where = "x.state = " + a.add(q.State)
	}
	if q.Stores != nil {
		where += " AND " + inList(&a, "x.store", q.Stores)
	}
	rows, err := s.r.QueryContext(ctx, `SELECT x.id, x.reason, x.value, x.store, x.state, x.first_ms, x.last_ms, x.count, x.note, x.done_by, x.done_ms,
	(SELECT count(*) FROM exception_events e WHERE e.exception_id = x.id AND e.state = 'held'),
	COALESCE((SELECT min(e.event_id) FROM exception_events e WHERE e.exception_id = x.id), ''),
	COALESCE((SELECT min(e.kind) FROM exception_events e WHERE e.exception_id = x.id), '')
FROM exceptions x WHERE `+where+` ORDER BY x.last_ms DESC, x.id DESC LIMIT `+a.add(int64(q.Limit)), a...)
	if err != nil {
		return nil, fmt.Errorf("store: exceptions: %w", err)
	}
	defer rows.Close()
	out := []Exception{}
	for rows.Next() {
		var x Exception
		var first, last, done int64
		if err := rows.Scan(&x.ID, &x.Reason, &x.Value, &x.Store, &x.State, &first, &last, &x.Count, &x.Note, &x.DoneBy, &done, &x.Held, &x.SampleEventID, &x.SampleKind); err != nil {
			return nil, err
		}
		x.First, x.Last, x.DoneAt = msTime(first), msTime(last), msTime(done)
		out = append(out, x)
	}
	return out, rows.Err()
}

// Exception returns one exception (ErrNotFound when there is none).
func (s *Store) Exception(ctx context.Context, id int64) (Exception, error) {
	xs, err := s.Exceptions(ctx, ExceptionQuery{id: id})
	if err != nil {
		return Exception{}, err
	}
	if len(xs) == 0 {
		return Exception{}, fmt.Errorf("%w: exception %d", ErrNotFound, id)
	}
	return xs[0], nil
}

// MappingRecord is one of HQ's mappings, with who made it when.
type MappingRecord struct {
	exceptions.Mapping
	By string
	At time.Time
}

// Mappings lists HQ's mappings, by kind and from.
func (s *Store) Mappings(ctx context.Context) ([]MappingRecord, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT kind, from_value, to_value, created_by, created_ms FROM exception_mappings ORDER BY kind, from_value`)
	if err != nil {
		return nil, fmt.Errorf("store: mappings: %w", err)
	}
	defer rows.Close()
	out := []MappingRecord{}
	for rows.Next() {
		var m MappingRecord
		var at int64
		if err := rows.Scan(&m.Kind, &m.From, &m.To, &m.By, &at); err != nil {
			return nil, err
		}
		m.At = msTime(at)
		out = append(out, m)
	}
	return out, rows.Err()
}

// AddMapping stores (or replaces) a mapping: from then on every event
// naming m.From as a SKU or location is applied as naming m.To (held
// events once replayed). A SKU mapping's target must be in the catalog.
// Errors wrap ErrInvalid for a bad mapping.
func (s *Store) AddMapping(ctx context.Context, m exceptions.Mapping, by string) error {
	if err := m.Validate(); err != nil {
		return fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	if m.Kind == exceptions.MapSKU {
		known, _, err := s.knownSKUs(ctx, s.r, []string{m.To})
		if err != nil {
			return err
		}
		if !known[m.To] {
			return fmt.Errorf("%w: SKU %q is not in the catalog", ErrInvalid, m.To)
		}
	}
	return s.retry(ctx, "add mapping", func() error {
		_, err := s.w.ExecContext(ctx, `INSERT INTO exception_mappings (kind, from_value, to_value, created_by, created_ms) VALUES ($1, $2, $3, $4, $5)
ON CONFLICT (kind, from_value) DO UPDATE SET to_value = excluded.to_value, created_by = excluded.created_by, created_ms = excluded.created_ms`,
			string(m.Kind), m.From, m.To, clean(by), s.now().UnixMilli())
		if err != nil {
			return fmt.Errorf("store: add mapping: %w", err)
		}
		return nil
	})
}

// ReplayResult says what a replay did.
type ReplayResult struct {
	// Replayed counts held events (or dead letters) applied now; Held
	// those still held (or dead) with their new reason; Skipped those a
	// replay before this one had settled already.
	Replayed, Held, Skipped int
	// Batch is what the replay's batch changed, as ApplyBatch says it
	// (positions, reservations, ...): for the stores' and the console's
	// copies, like any batch's.
	Batch BatchResult
}

// ReplayException replays the events held under exception id through the
// apply frame, with HQ's mappings substituted: each applies exactly once
// (claimed in the transaction that applies it), however often or by
// however many replicas this is called; one still naming something
// unknown stays held, under its new reason.
func (s *Store) ReplayException(ctx context.Context, id int64, by string) (ReplayResult, error) {
	rows, err := s.w.QueryContext(ctx, `SELECT id, subject, payload, payload_enc FROM exception_events WHERE exception_id = $1 AND state = 'held' ORDER BY id LIMIT 5000`, id)
	if err != nil {
		return ReplayResult{}, fmt.Errorf("store: replay exception: %w", err)
	}
	var items []Item
	for rows.Next() {
		var heldID int64
		var subject string
		var plain, enc []byte
		if err := rows.Scan(&heldID, &subject, &plain, &enc); err != nil {
			rows.Close()
			return ReplayResult{}, err
		}
		payload, err := s.openPayload(plain, enc)
		if err != nil {
			rows.Close()
			return ReplayResult{}, fmt.Errorf("store: replay exception: %w", err)
		}
		it := decodeReplay(subject, payload)
		it.replay = &replaySource{held: heldID, exception: id, by: by}
		items = append(items, it)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return ReplayResult{}, err
	}
	if len(items) == 0 {
		if _, err := s.Exception(ctx, id); err != nil {
			return ReplayResult{}, err
		}
		return ReplayResult{}, nil
	}
	res, err := s.ApplyBatch(ctx, items)
	if err != nil {
		return ReplayResult{}, err
	}
	return ReplayResult{Replayed: res.Applied, Held: res.Held + res.DeadLettered, Skipped: len(items) - res.Applied - res.Held - res.DeadLettered,
		Batch: res}, nil
}

// DiscardException gives up on the events held under exception id: they
// are never applied. reason is required.
func (s *Store) DiscardException(ctx context.Context, id int64, by, reason string) error {
	reason = strings.TrimSpace(reason)
	if reason == "" {
		return fmt.Errorf("%w: a reason is required to discard", ErrInvalid)
	}
	return s.retry(ctx, "discard exception", func() error {
		tx, err := s.w.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		defer tx.Rollback()
		now := s.now().UnixMilli()
		res, err := tx.ExecContext(ctx, `UPDATE exceptions SET state = 'discarded', note = $1, done_by = $2, done_ms = $3 WHERE id = $4 AND state = 'open'`, clean(reason), clean(by), now, id)
		if err != nil {
			return fmt.Errorf("store: discard exception: %w", err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			var st string
			if err := tx.QueryRowContext(ctx, `SELECT state FROM exceptions WHERE id = $1`, id).Scan(&st); errors.Is(err, sql.ErrNoRows) {
				return fmt.Errorf("%w: exception %d", ErrNotFound, id)
			} else if err != nil {
				return err
			}
			return fmt.Errorf("%w: exception %d is %s, not open", ErrInvalid, id, st)
		}
		if _, err := tx.ExecContext(ctx, `UPDATE exception_events SET state = 'discarded', done_by = $1, done_ms = $2 WHERE exception_id = $3 AND state = 'held'`, clean(by), now, id); err != nil {
			return fmt.Errorf("store: discard exception: %w", err)
		}
		return tx.Commit()
	})
}

// ReplayDeadLetter runs dead letter id through the apply frame again (after
// a fix: a mapping, a catalog import, a newer hub). It applies exactly once
// (the dead letter is marked replayed, at, by, in the same transaction),
// goes to the exception queue if it names something unknown (and is marked
// replayed too), or stays a dead letter with the new reason.
func (s *Store) ReplayDeadLetter(ctx context.Context, id int64, by string) (DeadLetter, BatchResult, error) {
	var subject string
	var plain, enc []byte
	var replayed int64
	err := s.w.QueryRowContext(ctx, `SELECT subject, payload, payload_enc, replayed_ms FROM dead_letters WHERE id = $1`, id).Scan(&subject, &plain, &enc, &replayed)
	if errors.Is(err, sql.ErrNoRows) {
		return DeadLetter{}, BatchResult{}, fmt.Errorf("%w: dead letter %d", ErrNotFound, id)
	}
	if err != nil {
		return DeadLetter{}, BatchResult{}, fmt.Errorf("store: replay dead letter: %w", err)
	}
	var res BatchResult
	if replayed == 0 {
		payload, err := s.openPayload(plain, enc)
		if err != nil {
			return DeadLetter{}, BatchResult{}, fmt.Errorf("store: replay dead letter: %w", err)
		}
		it := decodeReplay(subject, payload)
		it.replay = &replaySource{dead: id, by: by}
		if res, err = s.ApplyBatch(ctx, []Item{it}); err != nil {
			return DeadLetter{}, BatchResult{}, err
		}
	}
	d, err := s.deadLetter(ctx, id)
	return d, res, err
}

func (s *Store) deadLetter(ctx context.Context, id int64) (DeadLetter, error) {
	var d DeadLetter
	var epoch, seq, at, replayed int64
	var enc []byte
	err := s.w.QueryRowContext(ctx, `SELECT id, event_id, store, device, epoch, seq, kind, subject, reason, payload, payload_enc, at_ms, replayed_ms, replayed_by FROM dead_letters WHERE id = $1`, id).
		Scan(&d.ID, &d.EventID, &d.Store, &d.Device, &epoch, &seq, &d.Kind, &d.Subject, &d.Reason, &d.Payload, &enc, &at, &replayed, &d.ReplayedBy)
	if err != nil {
		return DeadLetter{}, fmt.Errorf("store: dead letter: %w", err)
	}
	d.Epoch, d.Seq, d.At, d.ReplayedAt = uint64(epoch), uint64(seq), msTime(at), msTime(replayed)
	d.Sealed = len(enc) > 0
	return d, nil
}

// decodeReplay reads a kept message as ingest does (decoded, validated,
// its origin matching its subject when it has one); a message that does
// not pass is refused with the reason.
func decodeReplay(subject string, payload []byte) Item {
	env, err := events.Decode(payload)
	it := Item{Env: env, Raw: payload, Subject: subject}
	if err != nil {
		it.Reject = "undecodable event: " + err.Error()
		return it
	}
	if st, dev, ok := subjects.ParseEvent(subject); ok && (env.Origin.Store != st || env.Origin.Device != dev) {
		it.Reject = fmt.Sprintf("origin %s/%s does not match subject %s", env.Origin.Store, env.Origin.Device, subject)
	}
	it.Env.ID = strings.ToLower(env.ID)
	return it
}

// refusedAgain keeps a replay the rules refuse where it was, with the new
// reason: a dead letter stays one; a held event stays held.
func (s *Store) refusedAgain(ctx context.Context, tx *sql.Tx, src *replaySource, reason string) error {
	var err error
	if src.dead != 0 {
		_, err = tx.ExecContext(ctx, `UPDATE dead_letters SET reason = $1 WHERE id = $2 AND replayed_ms = 0`, clean(reason), src.dead)
	} else {
		_, err = tx.ExecContext(ctx, `UPDATE exception_events SET reasons = $1 WHERE id = $2 AND state = 'held'`, clean(reason), src.held)
	}
	if err != nil {
		return fmt.Errorf("store: keep refused replay: %w", err)
	}
	return nil
}

// Pickup is one click-and-collect reservation as the pickups board shows
// it.
type Pickup struct {
	ReservationID, Location string
	// State: reserved (waiting to be collected), overdue (reserved for
	// longer than the board's limit), collected (fulfilled) or released.
	State string
	// Lines and Units are the reservation's lines and units.
	Lines, Units int64
	// ReservedAt is the newest reserve's time; ClosedAt when it was
	// collected or released.
	ReservedAt, ClosedAt time.Time
	// Uncounted are the releases and fulfils another store sent for this
	// reservation, naming its own location: kept, changing nothing
	// (inventory.Reservation.Uncounted), shown so HQ can ask why.
	Uncounted []UncountedClose
}

// UncountedClose is a release or fulfil that did not close a reservation.
type UncountedClose struct {
	Kind     string
	Location string
	At       time.Time
	EventID  string
}

// PickupQuery selects pickups.
type PickupQuery struct {
	// Stores, when not nil, keeps only those stores' (empty keeps none).
	Stores []string
	// State keeps only that state ("": all).
	State string
	// OverdueAfter is how long a reservation may wait before it is overdue
	// [48h]; Now the time it is measured at [the store's clock].
	OverdueAfter time.Duration
	Now          time.Time
	Limit        int
}

// Pickups lists the reservations held at stores (not at the online
// location), newest first.
func (s *Store) Pickups(ctx context.Context, q PickupQuery) ([]Pickup, error) {
	if q.Limit <= 0 || q.Limit > 1000 {
		q.Limit = 200
	}
	if q.OverdueAfter <= 0 {
		q.OverdueAfter = 48 * time.Hour
	}
	if q.Now.IsZero() {
		q.Now = s.now()
	}
	var a args
	where := []string{"r.reserve_hlc <> 0", "r.location <> " + a.add(s.rules.Online)}
	if q.Stores != nil {
		where = append(where, inList(&a, "r.location", q.Stores))
	}
	switch q.State {
	case "", "reserved", "overdue":
		if q.State != "" {
			where = append(where, "r.active = 1")
		}
	case "collected":
		where = append(where, "r.closed_kind = 'fulfil'")
	case "released":
		where = append(where, "r.closed_kind = 'release'")
	default:
		return nil, fmt.Errorf("%w: state %q (reserved, overdue, collected or released)", ErrInvalid, q.State)
	}
	rows, err := s.r.QueryContext(ctx, `SELECT r.reservation_id, r.location, r.active, r.closed_kind, r.reserve_hlc, r.closed_hlc, r.closes,
	(SELECT count(*) FROM reservation_lines l WHERE l.reservation_id = r.reservation_id),
	COALESCE((SELECT CAST(SUM(l.qty) AS BIGINT) FROM reservation_lines l WHERE l.reservation_id = r.reservation_id), 0)
FROM reservations r WHERE `+strings.Join(where, " AND ")+` ORDER BY r.reserve_hlc DESC, r.reservation_id LIMIT `+a.add(int64(q.Limit)), a...)
	if err != nil {
		return nil, fmt.Errorf("store: pickups: %w", err)
	}
	defer rows.Close()
	out := []Pickup{}
	for rows.Next() {
		var p Pickup
		var active int64
		var closedKind, closes string
		var reserveHLC, closedHLC int64
		if err := rows.Scan(&p.ReservationID, &p.Location, &active, &closedKind, &reserveHLC, &closedHLC, &closes, &p.Lines, &p.Units); err != nil {
			return nil, err
		}
		cs, err := decodeCloses(closes)
		if err != nil {
			return nil, fmt.Errorf("store: pickups: reservation %s: %w", p.ReservationID, err)
		}
		r := inventory.Reservation{Reserved: true, Location: p.Location, Closes: cs}
		for _, c := range r.Uncounted() {
			p.Uncounted = append(p.Uncounted, UncountedClose{Kind: string(c.Kind), Location: c.Location, At: c.Stamp.HLC.Time().UTC(), EventID: c.Stamp.ID})
		}
		p.ReservedAt = hlcTime(reserveHLC)
		switch {
		case active != 0 && q.Now.Sub(p.ReservedAt) > q.OverdueAfter:
			p.State = "overdue"
		case active != 0:
			p.State = "reserved"
		case closedKind == string(events.KindFulfil):
			p.State, p.ClosedAt = "collected", hlcTime(closedHLC)
		default:
			p.State, p.ClosedAt = "released", hlcTime(closedHLC)
		}
		if q.State == "" || q.State == p.State {
			out = append(out, p)
		}
	}
	return out, rows.Err()
}

// PickupStates are the states of the pickups board, in its order.
var PickupStates = []string{"reserved", "overdue", "collected", "released"}

// hlcTime is a packed HLC's wall time (zero for 0).
func hlcTime(packed int64) time.Time {
	if packed == 0 {
		return time.Time{}
	}
	return hlc.Unpack(packed).Time().UTC()
}
