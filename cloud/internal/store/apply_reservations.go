package store

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/omnisync/omnisync/cloud/internal/inventory"
	"github.com/omnisync/omnisync/shared/events"
	"github.com/omnisync/omnisync/shared/hlc"
)

// reservationsApplier keeps reservations (online orders and pickups in
// store) by the rules of inventory.Reservation, and hands the change to
// each position's holds to the stock applier.
type reservationsApplier struct{}

func (reservationsApplier) name() string { return "reservations" }

func (reservationsApplier) read(s *Store, env *events.Envelope) (any, error) {
	switch env.Kind {
	case events.KindReserve, events.KindRelease, events.KindFulfil:
	default:
		return nil, nil
	}
	eff, err := s.rules.Effect(*env)
	if err != nil {
		return nil, err
	}
	return eff.Reservation, nil
}

func (reservationsApplier) apply(ctx context.Context, t *applyTx, reads []itemRead) error {
	if len(reads) == 0 {
		return nil
	}
	rids := make([]string, 0, len(reads))
	for _, r := range reads {
		rids = append(rids, r.v.(*inventory.ReservationOp).ID)
	}
	slices.Sort(rids)
	rids = slices.Compact(rids)
	resv, err := t.s.lockReservations(ctx, t, rids)
	if err != nil {
		return err
	}
	for _, r := range reads {
		op := r.v.(*inventory.ReservationOp)
		row := resv[op.ID]
		next := row.cur.Apply(*op)
		hq := t.p.items[r.item].Env.Origin.Store == inventory.HQ
		for k, d := range inventory.HoldChange(row.cur, next) {
			t.held[k] += d
			t.heldBy[k] = append(t.heldBy[k], op.Kind)
			t.heldHQ[k] = t.heldHQ[k] || hq
			if op.Stamp.HLC.Compare(t.heldAt[k]) > 0 {
				t.heldAt[k] = op.Stamp.HLC
			}
		}
		row.cur = next
	}
	changed, err := t.s.writeReservations(ctx, t.tx, rids, resv, t.nowMS)
	if err != nil {
		return err
	}
	t.out.reservations = changed
	return nil
}

// resRow is a reservation loaded for update: as loaded and as changed.
type resRow struct {
	orig, cur inventory.Reservation
}

// lockReservations makes sure every reservation id has a row (not asking
// when all are known to: knownRows), locks them in id order and loads
// them with their lines.
func (s *Store) lockReservations(ctx context.Context, t *applyTx, ids []string) (map[string]*resRow, error) {
	out := make(map[string]*resRow, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	tx := t.tx
	rs := newRowset(text("id"))
	known := make([]string, len(ids))
	for i, id := range ids {
		rs.add(id)
		known[i] = knownKey("reservations", id)
	}
	if t.mustEnsure(known) {
		err := s.execRows(ctx, tx, rs, "k", func(a *args, k string) string {
			return "INSERT INTO reservations (reservation_id) SELECT id FROM " + k + ` ORDER BY id COLLATE "C" ON CONFLICT DO NOTHING`
		})
		if err != nil {
			return nil, fmt.Errorf("store: ensure reservations: %w", err)
		}
	}
	err := s.queryRows(ctx, tx, rs, "k", func(a *args, k string) string {
		return `SELECT r.reservation_id, r.location, r.reserved, r.reserve_hlc, r.reserve_id, r.closed, r.closed_hlc, r.closed_id, r.closed_kind, r.closes
FROM reservations r JOIN ` + k + ` ON r.reservation_id = k.id
ORDER BY r.reservation_id` + s.d.forUpdate("r")
	}, func(rows *sql.Rows) error {
		var r inventory.Reservation
		var reserved, closed int64
		var reserveHLC, closedHLC int64
		var closedKind, closes string
		if err := rows.Scan(&r.ID, &r.Location, &reserved, &reserveHLC, &r.ReserveStamp.ID, &closed, &closedHLC, &r.ClosedStamp.ID, &closedKind, &closes); err != nil {
			return err
		}
		r.Reserved, r.Closed, r.ClosedBy = reserved != 0, closed != 0, events.Kind(closedKind)
		r.ReserveStamp.HLC, r.ClosedStamp.HLC = hlc.Unpack(reserveHLC), hlc.Unpack(closedHLC)
		var err error
		if r.Closes, err = decodeCloses(closes); err != nil {
			return fmt.Errorf("reservation %s: %w", r.ID, err)
		}
		out[r.ID] = &resRow{orig: r, cur: r}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("store: lock reservations: %w", err)
	}
	err = s.reservationLines(ctx, tx, rs, func(id string, l events.Line) {
		if r := out[id]; r != nil {
			r.orig.Lines = append(r.orig.Lines, l)
			r.cur.Lines = r.orig.Lines
		}
	})
	if err != nil {
		return nil, fmt.Errorf("store: load reservation lines: %w", err)
	}
	for _, id := range ids {
		if out[id] == nil {
			if s.d.rowLocks() {
				return nil, fmt.Errorf("store: lock reservations: row %q missing: %w", id, errUnknownRow)
			}
			out[id] = &resRow{orig: inventory.Reservation{ID: id}, cur: inventory.Reservation{ID: id}}
		}
	}
	return out, nil
}

// reservationLines hands each line of the reservations in ids (a rowset of
// one text column, id) to fn, in (reservation, SKU) order.
func (s *Store) reservationLines(ctx context.Context, db querier, ids *rowset, fn func(id string, l events.Line)) error {
	return s.queryRows(ctx, db, ids, "k", func(a *args, k string) string {
		// Probed reservation by reservation: without statistics
		// PostgreSQL hashed the whole table (TestStockStatementPlans).
		return `SELECT l.reservation_id, l.sku, l.qty FROM ` + s.probe(k, "reservation_lines", "l", "reservation_id", "k.id") + `
ORDER BY l.reservation_id, l.sku`
	}, func(rows *sql.Rows) error {
		var id string
		var l events.Line
		if err := rows.Scan(&id, &l.SKU, &l.Qty); err != nil {
			return err
		}
		fn(id, l)
		return nil
	})
}

func sameReservation(a, b inventory.Reservation) bool {
	return a.Reserved == b.Reserved && a.Location == b.Location && a.ReserveStamp == b.ReserveStamp &&
		a.Closed == b.Closed && a.ClosedStamp == b.ClosedStamp && a.ClosedBy == b.ClosedBy && slices.Equal(a.Lines, b.Lines) &&
		slices.Equal(a.Closes, b.Closes)
}

// encodeCloses renders a reservation's closes for its closes column:
// "hlc|event id|kind|location|online" each, ';' between them. Event ids,
// kinds and locations hold neither separator.
func encodeCloses(cs []inventory.Close) string {
	var b strings.Builder
	for i, c := range cs {
		if i > 0 {
			b.WriteByte(';')
		}
		fmt.Fprintf(&b, "%d|%s|%s|%s|%d", c.Stamp.HLC.Pack(), c.Stamp.ID, c.Kind, c.Location, b2i(c.Online))
	}
	return b.String()
}

// decodeCloses reads what encodeCloses wrote.
func decodeCloses(text string) ([]inventory.Close, error) {
	if text == "" {
		return nil, nil
	}
	var out []inventory.Close
	for _, part := range strings.Split(text, ";") {
		f := strings.Split(part, "|")
		if len(f) != 5 {
			return nil, fmt.Errorf("closes %q: bad entry %q", text, part)
		}
		h, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return nil, fmt.Errorf("closes %q: %w", text, err)
		}
		out = append(out, inventory.Close{Stamp: events.Stamp{HLC: hlc.Unpack(h), ID: f[1]}, Kind: events.Kind(f[2]), Location: f[3], Online: f[4] == "1"})
	}
	return out, nil
}

// writeReservations writes the reservations that changed and returns their
// ids. Of a reservation's lines only those that changed are written (a
// cart's hold is re-reserved whole at each edit of one line): a line gone
// is deleted, a new or changed one upserted; a reservation that moved
// location has its lines replaced, as each line row carries the location.
func (s *Store) writeReservations(ctx context.Context, tx *sql.Tx, ids []string, resv map[string]*resRow, nowMS int64) ([]string, error) {
	head := newRowset(text("id"), text("location"), integer("reserved"), integer("reserve_hlc"), text("reserve_id"),
		integer("closed"), integer("closed_hlc"), text("closed_id"), text("closed_kind"), integer("active"), text("closes"))
	relined := newRowset(text("id"))
	gone := newRowset(text("id"), text("sku"), text("location"))
	lines := newRowset(text("id"), text("sku"), text("location"), integer("qty"))
	var changed []string
	for _, id := range ids {
		r := resv[id]
		if sameReservation(r.orig, r.cur) {
			continue
		}
		c := r.cur
		changed = append(changed, c.ID)
		head.add(c.ID, c.Location, b2i(c.Reserved), c.ReserveStamp.HLC.Pack(), c.ReserveStamp.ID,
			b2i(c.Closed), c.ClosedStamp.HLC.Pack(), c.ClosedStamp.ID, string(c.ClosedBy), b2i(c.Active()), encodeCloses(c.Closes))
		switch {
		case slices.Equal(c.Lines, r.orig.Lines) && c.Location == r.orig.Location:
		case c.Location != r.orig.Location:
			if len(r.orig.Lines) > 0 {
				relined.add(c.ID)
			}
			for _, l := range c.Lines {
				lines.add(c.ID, l.SKU, c.Location, l.Qty)
			}
		default:
			diffLines(r.orig.Lines, c.Lines, func(l events.Line) {
				gone.add(c.ID, l.SKU, c.Location)
			}, func(l events.Line) {
				lines.add(c.ID, l.SKU, c.Location, l.Qty)
			})
		}
	}
	// A reservation that moved has its lines deleted first; then the
	// heads and the lines that changed (disjoint keys) are one statement.
	err := s.execRows(ctx, tx, relined, "k", func(a *args, k string) string {
		return "DELETE FROM reservation_lines WHERE reservation_id IN (SELECT id FROM " + k + ")"
	})
	if err != nil {
		return nil, fmt.Errorf("store: replace reservation lines: %w", err)
	}
	err = s.execAll(ctx, tx, writePart{"reservations", head, "u", func(a *args, u string) string {
		return `INSERT INTO reservations (reservation_id, location, reserved, reserve_hlc, reserve_id, closed, closed_hlc, closed_id, closed_kind, active, closes, updated_ms, version)
SELECT id, location, reserved, reserve_hlc, reserve_id, closed, closed_hlc, closed_id, closed_kind, active, closes, ` + a.add(nowMS) + `, 1 FROM ` + u + ` WHERE true
ON CONFLICT (reservation_id) DO UPDATE SET location = excluded.location, reserved = excluded.reserved,
	reserve_hlc = excluded.reserve_hlc, reserve_id = excluded.reserve_id, closed = excluded.closed,
	closed_hlc = excluded.closed_hlc, closed_id = excluded.closed_id, closed_kind = excluded.closed_kind,
	active = excluded.active, closes = excluded.closes, updated_ms = excluded.updated_ms, version = reservations.version + 1`
	}}, writePart{"reservation lines gone", gone, "g", func(a *args, k string) string {
		return "DELETE FROM reservation_lines WHERE (reservation_id, sku, location) IN (SELECT id, sku, location FROM " + k + ")"
	}}, writePart{"reservation lines", lines, "k", func(a *args, k string) string {
		return `INSERT INTO reservation_lines (reservation_id, sku, location, qty) SELECT id, sku, location, qty FROM ` + k + ` WHERE true
ON CONFLICT (reservation_id, sku, location) DO UPDATE SET qty = excluded.qty`
	}})
	if err != nil {
		return nil, fmt.Errorf("store: write reservations: %w", err)
	}
	return changed, nil
}

// diffLines walks two line sets sorted by SKU (one line per SKU) and
// calls gone with each line of from whose SKU to lacks, and set with each
// line of to that from lacks or holds with another quantity.
func diffLines(from, to []events.Line, gone, set func(events.Line)) {
	i, j := 0, 0
	for i < len(from) || j < len(to) {
		switch {
		case j == len(to) || (i < len(from) && from[i].SKU < to[j].SKU):
			gone(from[i])
			i++
		case i == len(from) || to[j].SKU < from[i].SKU:
			set(to[j])
			j++
		default:
			if from[i].Qty != to[j].Qty {
				set(to[j])
			}
			i++
			j++
		}
	}
}
