package store

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/omnisync/omnisync/cloud/internal/inventory"
	"github.com/omnisync/omnisync/shared/events"
	"github.com/omnisync/omnisync/shared/hlc"
)

const stockCols = "sku, location, on_hand, reserved, safety, available, last_hlc, has_count, count_hlc, count_method"

func scanStockRow(rows *sql.Rows) (Stock, error) {
	var st Stock
	var last, hasCount, countHLC int64
	if err := rows.Scan(&st.SKU, &st.Location, &st.OnHand, &st.Reserved, &st.Safety, &st.Available, &last, &hasCount, &countHLC, &st.CountMethod); err != nil {
		return st, err
	}
	if last != 0 {
		st.AsOf = hlc.Unpack(last).Time().UTC()
	}
	if hasCount != 0 && countHLC != 0 {
		st.CountedAt = hlc.Unpack(countHLC).Time().UTC()
	}
	return st, nil
}

func scanStock(rows *sql.Rows) ([]Stock, error) {
	defer rows.Close()
	out := []Stock{}
	for rows.Next() {
		st, err := scanStockRow(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, st)
	}
	return out, rows.Err()
}

// StockForSKU returns every position of sku, ordered by location. An
// unknown SKU yields an empty slice and no error: whether that is a 404 is
// the API's call.
func (s *Store) StockForSKU(ctx context.Context, sku string) ([]Stock, error) {
	rows, err := s.r.QueryContext(ctx, "SELECT "+stockCols+" FROM stock WHERE sku = $1 ORDER BY location", sku)
	if err != nil {
		return nil, fmt.Errorf("store: stock for sku: %w", err)
	}
	return scanStock(rows)
}

// ListStock returns positions matching q, ordered by (sku, location); page
// with q.AfterSKU/q.AfterLocation set to the last row returned.
func (s *Store) ListStock(ctx context.Context, q StockQuery) ([]Stock, error) {
	limit := q.Limit
	switch {
	case limit <= 0:
		limit = 100
	case limit > 10000:
		limit = 10000
	}
	var a args
	// locs filters col by the query's locations.
	locs := func(col string) []string {
		var where []string
		if q.Location != "" {
			where = append(where, col+" = "+a.add(q.Location))
		}
		if q.Locations != nil {
			where = append(where, inList(&a, col, q.Locations))
		}
		return where
	}
	where := locs("location")
	if q.Below != nil {
		where = append(where, "available < "+a.add(*q.Below))
	}
	var after string
	if q.AfterSKU != "" || q.AfterLocation != "" {
		after = "(sku, location) > (" + a.add(q.AfterSKU) + ", " + a.add(q.AfterLocation) + ")"
		where = append(where, after)
	}
	stmt := "SELECT " + stockCols + " FROM stock"
	if len(where) > 0 {
		stmt += " WHERE " + strings.Join(where, " AND ")
	}
	if q.Carried && (q.Below == nil || *q.Below > 0) {
		// The carried variants without a row, at zero (StockQuery.Carried):
		// each variant with the locations of its product's other
		// variants' positions, less those it has a row at. Cost: about
		// 0.2 s for one store of 8,000 positions among 800,000 on
		// PostgreSQL, 4 s for every store, which only the paging reads
		// of small sets should ask for.
		zero := `SELECT v.sku, s.location, 0 AS on_hand, 0 AS reserved, 0 AS safety, 0 AS available, 0 AS last_hlc, 0 AS has_count, 0 AS count_hlc, '' AS count_method
FROM variants v JOIN variants w ON w.product_id = v.product_id AND w.sku <> v.sku JOIN stock s ON s.sku = w.sku
WHERE NOT EXISTS (SELECT 1 FROM stock x WHERE x.sku = v.sku AND x.location = s.location)`
		if w := locs("s.location"); len(w) > 0 {
			zero += " AND " + strings.Join(w, " AND ")
		}
		if after != "" {
			zero += " AND (v.sku, s.location) > (" + a.add(q.AfterSKU) + ", " + a.add(q.AfterLocation) + ")"
		}
		zero += " GROUP BY v.sku, s.location"
		stmt = "SELECT " + stockCols + " FROM (" + stmt + "\nUNION ALL\n" + zero + ") z"
	}
	stmt += " ORDER BY sku, location LIMIT " + a.add(int64(limit))
	rows, err := s.r.QueryContext(ctx, stmt, a...)
	if err != nil {
		return nil, fmt.Errorf("store: list stock: %w", err)
	}
	return scanStock(rows)
}

// SetSafetyStock sets the safety stock of a position (creating it if need
// be), which changes its available stock and may open or resolve an
// oversell conflict. qty must be >= 0.
func (s *Store) SetSafetyStock(ctx context.Context, sku, location string, qty int64) error {
	if sku == "" || len(sku) > events.MaxSKULen {
		return fmt.Errorf("%w: sku %q", ErrInvalid, sku)
	}
	if err := events.ValidToken(location); err != nil {
		return fmt.Errorf("%w: location %q: %v", ErrInvalid, location, err)
	}
	if qty < 0 || qty > events.MaxCountQty {
		return fmt.Errorf("%w: safety stock %d (0 to %d)", ErrInvalid, qty, events.MaxCountQty)
	}
	k := inventory.Key{SKU: sku, Location: location}
	return s.retry(ctx, "set safety stock", func() error {
		conn, err := s.w.Conn(ctx)
		if err != nil {
			return fmt.Errorf("store: connection: %w", err)
		}
		defer conn.Close()
		tx, err := conn.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		defer tx.Rollback()
		// The same path as an event's: the stock applier runs the rules on
		// the new safety stock, the conflicts applier follows.
		t := newApplyTx(s, conn, tx, nil, s.now().UnixMilli(), nil)
		t.safety = map[inventory.Key]int64{k: qty}
		if err := (stockApplier{}).apply(ctx, t, nil); err != nil {
			return fmt.Errorf("store: set safety stock: %w", err)
		}
		if err := (conflictsApplier{}).apply(ctx, t, nil); err != nil {
			return fmt.Errorf("store: set safety stock: %w", err)
		}
		if err := tx.Commit(); err != nil {
			t.commitFailed()
			return err
		}
		t.committed()
		return nil
	})
}

// AddDeadLetter keeps a message that could not even be decoded far enough
// to be deduplicated (no usable origin). At defaults to now.
func (s *Store) AddDeadLetter(ctx context.Context, d DeadLetter) error {
	if d.At.IsZero() {
		d.At = s.now()
	}
	return s.retry(ctx, "add dead letter", func() error {
		return s.insertDeadLetters(ctx, s.w, []DeadLetter{d})
	})
}

// DeadLetters returns up to limit dead letters (default 100), newest
// first; store "" means every store.
func (s *Store) DeadLetters(ctx context.Context, store string, limit int) ([]DeadLetter, error) {
	var stores []string
	if store != "" {
		stores = []string{store}
	}
	return s.DeadLettersOf(ctx, stores, limit)
}

// DeadLettersOf is DeadLetters of several stores (every store's when
// stores is nil; none when it is empty).
func (s *Store) DeadLettersOf(ctx context.Context, stores []string, limit int) ([]DeadLetter, error) {
	if limit <= 0 {
		limit = 100
	}
	var a args
	// A sealed payload is not read: no listing shows it (payload_seal.go).
	q := "SELECT id, event_id, store, device, epoch, seq, kind, subject, reason, payload, payload_enc IS NOT NULL AND length(payload_enc) > 0, at_ms, replayed_ms, replayed_by FROM dead_letters"
	if stores != nil {
		q += " WHERE " + inList(&a, "store", stores)
	}
	q += " ORDER BY id DESC LIMIT " + a.add(int64(limit))
	rows, err := s.r.QueryContext(ctx, q, a...)
	if err != nil {
		return nil, fmt.Errorf("store: dead letters: %w", err)
	}
	defer rows.Close()
	out := []DeadLetter{}
	for rows.Next() {
		var d DeadLetter
		var epoch, seq, at, replayed int64
		if err := rows.Scan(&d.ID, &d.EventID, &d.Store, &d.Device, &epoch, &seq, &d.Kind, &d.Subject, &d.Reason, &d.Payload, &d.Sealed, &at, &replayed, &d.ReplayedBy); err != nil {
			return nil, err
		}
		d.Epoch, d.Seq, d.At, d.ReplayedAt = uint64(epoch), uint64(seq), msTime(at), msTime(replayed)
		out = append(out, d)
	}
	return out, rows.Err()
}

// RecordHeartbeat stores a device's heartbeat unless a newer one (by At) is
// already stored.
func (s *Store) RecordHeartbeat(ctx context.Context, hb Heartbeat) error {
	return s.RecordHeartbeats(ctx, []Heartbeat{hb})
}

// RecordHeartbeats stores many devices' heartbeats in one statement, each
// unless a newer one (by At) is already stored; of several for one device
// the newest counts. So hub replicas that each flush the heartbeats they
// received, in any order and at the same time, leave every device's
// newest. Rows are written in (store, device) order, the same in every
// replica, so two concurrent flushes on PostgreSQL wait for each other's
// row locks instead of deadlocking. An empty store or device rejects the
// whole call with ErrInvalid.
func (s *Store) RecordHeartbeats(ctx context.Context, hbs []Heartbeat) error {
	type key struct{ store, device string }
	newest := make(map[key]Heartbeat, len(hbs))
	now := s.now()
	for _, hb := range hbs {
		if hb.Store == "" || hb.Device == "" {
			return fmt.Errorf("%w: heartbeat without store or device", ErrInvalid)
		}
		if hb.At.IsZero() {
			hb.At = now
		}
		k := key{clean(hb.Store), clean(hb.Device)}
		if old, ok := newest[k]; !ok || !hb.At.Before(old.At) {
			newest[k] = hb
		}
	}
	if len(newest) == 0 {
		return nil
	}
	keys := make([]key, 0, len(newest))
	for k := range newest {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b key) int {
		if c := strings.Compare(a.store, b.store); c != 0 {
			return c
		}
		return strings.Compare(a.device, b.device)
	})
	rows := newRowset(text("store"), text("device"), text("version"), integer("epoch"), integer("backlog"),
		integer("oldest_unacked_ms"), integer("clock_skew_ms"), integer("connected"), integer("at_ms"),
		integer("unsynced_sales"), integer("unsynced_value"), integer("oldest_unsynced_ms"))
	for _, k := range keys {
		hb := newest[k]
		rows.add(k.store, k.device, clean(hb.Version), clampInt(hb.Epoch), hb.Backlog,
			hb.OldestUnackedAge.Milliseconds(), hb.ClockSkew.Milliseconds(), b2i(hb.Connected), hb.At.UnixMilli(),
			hb.Unsynced.Count, hb.Unsynced.Value, hb.Unsynced.OldestAge.Milliseconds())
	}
	for _, part := range s.d.chunks(rows) {
		var a args
		q := `INSERT INTO device_heartbeats (store, device, version, epoch, backlog, oldest_unacked_ms, clock_skew_ms, connected, at_ms,
	unsynced_sales, unsynced_value, oldest_unsynced_ms)
SELECT h.store, h.device, h.version, h.epoch, h.backlog, h.oldest_unacked_ms, h.clock_skew_ms, h.connected, h.at_ms,
	h.unsynced_sales, h.unsynced_value, h.oldest_unsynced_ms
FROM ` + s.d.from(&a, part, "h") + s.d.inOrder() + `
ON CONFLICT (store, device) DO UPDATE SET version = excluded.version, epoch = excluded.epoch, backlog = excluded.backlog,
	oldest_unacked_ms = excluded.oldest_unacked_ms, clock_skew_ms = excluded.clock_skew_ms,
	connected = excluded.connected, at_ms = excluded.at_ms, unsynced_sales = excluded.unsynced_sales,
	unsynced_value = excluded.unsynced_value, oldest_unsynced_ms = excluded.oldest_unsynced_ms
WHERE device_heartbeats.at_ms <= excluded.at_ms`
		err := s.retry(ctx, "record heartbeats", func() error {
			_, err := s.w.ExecContext(ctx, q, a...)
			return err
		})
		if err != nil {
			return fmt.Errorf("store: record heartbeats: %w", err)
		}
	}
	return s.recordLag(ctx, hbs, now)
}

// Watermarks returns the watermark of every epoch of a device, by epoch.
func (s *Store) Watermarks(ctx context.Context, store, device string) ([]Watermark, error) {
	rows, err := s.r.QueryContext(ctx, "SELECT epoch, watermark FROM device_progress WHERE store = $1 AND device = $2 ORDER BY epoch", store, device)
	if err != nil {
		return nil, fmt.Errorf("store: watermarks: %w", err)
	}
	defer rows.Close()
	out := []Watermark{}
	for rows.Next() {
		var epoch, wm int64
		if err := rows.Scan(&epoch, &wm); err != nil {
			return nil, err
		}
		out = append(out, Watermark{Store: store, Device: device, Epoch: uint64(epoch), Seq: uint64(wm)})
	}
	return out, rows.Err()
}

// HubDevicePrefix starts the device name under which a hub process writes
// the online channel's events (the cart service): a new name per process.
const HubDevicePrefix = "hub-"

// hubWriter reports whether events under store and device are written by
// the hub itself (HQ's actions, the online channel's cart service), not
// by a store's device: such origins have no sync health to show, and the
// cart service's per-process names would pile up a row per hub restart.
// A store's agent cannot write under either: HQ's origin is refused from
// NATS, and a store's credentials speak only for that store.
func (s *Store) hubWriter(store, device string) bool {
	return store == inventory.HQ || (store == s.rules.Online && strings.HasPrefix(device, HubDevicePrefix))
}

// Devices returns every store device ever seen, through its events or its
// heartbeats, ordered by store and device; the hub's own writers are left
// out (hubWriter).
func (s *Store) Devices(ctx context.Context) ([]DeviceStatus, error) {
	tx, err := s.r.BeginTx(ctx, s.d.readTx())
	if err != nil {
		return nil, fmt.Errorf("store: devices: %w", err)
	}
	defer tx.Rollback()
	type key struct{ store, device string }
	byKey := map[key]*DeviceStatus{}
	epochs := map[key]map[uint64]uint64{} // epoch -> watermark
	get := func(k key) *DeviceStatus {
		d := byKey[k]
		if d == nil {
			d = &DeviceStatus{Store: k.store, Device: k.device}
			byKey[k] = d
			epochs[k] = map[uint64]uint64{}
		}
		return d
	}
	rows, err := tx.QueryContext(ctx, "SELECT store, device, epoch, watermark, events_applied, last_event_hlc, last_applied_ms FROM device_progress")
	if err != nil {
		return nil, fmt.Errorf("store: devices: %w", err)
	}
	for rows.Next() {
		var k key
		var epoch, wm, applied, lastHLC, lastMS int64
		if err := rows.Scan(&k.store, &k.device, &epoch, &wm, &applied, &lastHLC, &lastMS); err != nil {
			rows.Close()
			return nil, err
		}
		d := get(k)
		epochs[k][uint64(epoch)] = uint64(wm)
		if uint64(epoch) > d.Epoch {
			d.Epoch = uint64(epoch)
		}
		d.EventsApplied += applied
		if lastHLC != 0 {
			if t := hlc.Unpack(lastHLC).Time().UTC(); t.After(d.LastEventAt) {
				d.LastEventAt = t
			}
		}
		if t := msTime(lastMS); t.After(d.LastAppliedAt) {
			d.LastAppliedAt = t
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	rows, err = tx.QueryContext(ctx, `SELECT store, device, version, epoch, backlog, oldest_unacked_ms, clock_skew_ms, connected, at_ms,
	unsynced_sales, unsynced_value, oldest_unsynced_ms FROM device_heartbeats`)
	if err != nil {
		return nil, fmt.Errorf("store: devices: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var k key
		var version string
		var epoch, backlog, oldest, skew, connected, at, unsyncedMS int64
		var un UnsyncedSales
		if err := rows.Scan(&k.store, &k.device, &version, &epoch, &backlog, &oldest, &skew, &connected, &at,
			&un.Count, &un.Value, &unsyncedMS); err != nil {
			return nil, err
		}
		d := get(k)
		un.OldestAge = time.Duration(unsyncedMS) * time.Millisecond
		d.Unsynced = un
		d.Version, d.Backlog, d.Connected = version, backlog, connected != 0
		d.OldestUnackedAge, d.ClockSkew = time.Duration(oldest)*time.Millisecond, time.Duration(skew)*time.Millisecond
		d.LastHeartbeat = msTime(at)
		if epoch != 0 {
			d.Epoch = uint64(epoch)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	rows.Close()
	periph, err := peripheralsOf(ctx, tx)
	if err != nil {
		return nil, err
	}
	out := make([]DeviceStatus, 0, len(byKey))
	for k, d := range byKey {
		if s.hubWriter(k.store, k.device) {
			continue
		}
		d.Watermark = epochs[k][d.Epoch]
		d.Peripherals = periph[[2]string{k.store, k.device}]
		out = append(out, *d)
	}
	slices.SortFunc(out, func(a, b DeviceStatus) int {
		if c := strings.Compare(a.Store, b.Store); c != 0 {
			return c
		}
		return strings.Compare(a.Device, b.Device)
	})
	return out, nil
}

// Conflicts returns up to limit conflicts (default 100), newest first; only
// open ones when openOnly, and only at the given locations when any are
// given. Open conflicts carry the reservations at risk and the suggested
// locations, computed from the current books in the same snapshot.
func (s *Store) Conflicts(ctx context.Context, openOnly bool, limit int, locations ...string) ([]Conflict, error) {
	return s.conflicts(ctx, conflictFilter{openOnly: openOnly, limit: limit, locations: locations, byLocation: len(locations) > 0})
}

type conflictFilter struct {
	openOnly   bool
	limit      int
	id         int64
	byLocation bool
	locations  []string
}

func (s *Store) conflicts(ctx context.Context, f conflictFilter) ([]Conflict, error) {
	if f.limit <= 0 {
		f.limit = 100
	}
	tx, err := s.r.BeginTx(ctx, s.d.readTx())
	if err != nil {
		return nil, fmt.Errorf("store: conflicts: %w", err)
	}
	defer tx.Rollback()
	var a args
	q := `SELECT c.id, c.sku, c.location, c.kind, c.available, c.opened_ms, c.resolved_ms, c.resolved_by, c.version,
	COALESCE(x.action, ''), COALESCE(x.actor, ''), COALESCE(x.at_ms, 0), COALESCE(x.detail, '')
FROM conflicts c LEFT JOIN conflict_actions x ON x.conflict_id = c.id`
	var where []string
	if f.openOnly {
		where = append(where, "c.resolved_ms = 0")
	}
	if f.id != 0 {
		where = append(where, "c.id = "+a.add(f.id))
	}
	if f.byLocation {
		where = append(where, inList(&a, "c.location", f.locations))
	}
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	q += " ORDER BY c.id DESC LIMIT " + a.add(int64(f.limit))
	rows, err := tx.QueryContext(ctx, q, a...)
	if err != nil {
		return nil, fmt.Errorf("store: conflicts: %w", err)
	}
	out := []Conflict{}
	for rows.Next() {
		var c Conflict
		var opened, resolved, actedAt int64
		if err := rows.Scan(&c.ID, &c.SKU, &c.Location, &c.Kind, &c.Available, &opened, &resolved, &c.ResolvedBy, &c.Version,
			&c.Action, &c.ActedBy, &actedAt, &c.ActionDetail); err != nil {
			rows.Close()
			return nil, err
		}
		c.OpenedAt = msTime(opened)
		c.ActedAt = msTime(actedAt)
		if resolved != 0 {
			t := msTime(resolved)
			c.ResolvedAt = &t
		}
		out = append(out, c)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if err := s.enrichConflicts(ctx, tx, out); err != nil {
		return nil, err
	}
	return out, nil
}

// enrichConflicts fills Reservations and Suggestions of the open conflicts
// in cs with two queries.
func (s *Store) enrichConflicts(ctx context.Context, tx *sql.Tx, cs []Conflict) error {
	positions := newRowset(text("sku"), text("location"))
	skus := newRowset(text("sku"))
	seenSKU := map[string]bool{}
	for _, c := range cs {
		if c.ResolvedAt != nil {
			continue
		}
		positions.add(c.SKU, c.Location)
		if !seenSKU[c.SKU] {
			seenSKU[c.SKU] = true
			skus.add(c.SKU)
		}
	}
	if positions.len() == 0 {
		return nil
	}
	atRisk := map[inventory.Key][]string{}
	err := s.queryRows(ctx, tx, positions, "k", func(a *args, k string) string {
		return `SELECT l.sku, l.location, l.reservation_id FROM reservation_lines l
JOIN reservations r ON r.reservation_id = l.reservation_id
JOIN ` + k + ` ON l.sku = k.sku AND l.location = k.location
WHERE r.active = 1 ORDER BY l.sku, l.location, l.reservation_id`
	}, func(rows *sql.Rows) error {
		var k inventory.Key
		var id string
		if err := rows.Scan(&k.SKU, &k.Location, &id); err != nil {
			return err
		}
		atRisk[k] = append(atRisk[k], id)
		return nil
	})
	if err != nil {
		return fmt.Errorf("store: reservations at risk: %w", err)
	}
	var stock []Stock
	err = s.queryRows(ctx, tx, skus, "k", func(a *args, k string) string {
		return "SELECT s." + strings.ReplaceAll(stockCols, ", ", ", s.") + " FROM stock s JOIN " + k +
			" ON s.sku = k.sku WHERE s.available > 0 ORDER BY s.sku, s.location"
	}, func(rows *sql.Rows) error {
		st, err := scanStockRow(rows)
		stock = append(stock, st)
		return err
	})
	if err != nil {
		return fmt.Errorf("store: suggestions: %w", err)
	}
	bySKU := map[string][]Stock{}
	for _, st := range stock {
		bySKU[st.SKU] = append(bySKU[st.SKU], st)
	}
	for i := range cs {
		c := &cs[i]
		if c.ResolvedAt != nil {
			continue
		}
		k := inventory.Key{SKU: c.SKU, Location: c.Location}
		c.Reservations = atRisk[k]
		if c.Reservations == nil {
			c.Reservations = []string{}
		}
		var cands []inventory.Candidate
		byLoc := map[string]Stock{}
		for _, st := range bySKU[c.SKU] {
			cands = append(cands, inventory.Candidate{Location: st.Location, Available: st.Available})
			byLoc[st.Location] = st
		}
		c.Suggestions = []Stock{}
		for _, cand := range inventory.Suggest(c.Location, cands) {
			c.Suggestions = append(c.Suggestions, byLoc[cand.Location])
		}
	}
	return nil
}

// inList renders "col IN (...)" with vals as parameters; no values match
// nothing.
func inList(a *args, col string, vals []string) string {
	if len(vals) == 0 {
		return "false"
	}
	ph := make([]string, len(vals))
	for i, v := range vals {
		ph[i] = a.add(v)
	}
	return col + " IN (" + strings.Join(ph, ", ") + ")"
}
