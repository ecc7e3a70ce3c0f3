package store

import (
	"cmp"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/omnisync/omnisync/shared/events"
)

// PeripheralOpen is the state an agent reports for a peripheral it is
// reading (the serial port's "open"): the only state in which the
// peripheral works. Every other one ("reopening": absent or lost, being
// retried; "failed": retrying cannot help) means it does not.
const PeripheralOpen = "open"

// maxPeripheralDetail bounds the error text kept of a report: enough for
// any driver's message, not a place to park a log.
const maxPeripheralDetail = 512

// Peripheral is what the hub knows of one peripheral of a store device (a
// barcode scanner, an RFID reader), from the device's device_status
// events: the newest report wins, by its stamp, whatever the arrival
// order.
type Peripheral struct {
	Name  string
	State string
	// Detail is the newest report's error, if it had one (a report of
	// "open" has none).
	Detail string
	// Since is when the current state began: the stamp of the first
	// report of it after a report of another state (as far as the hub
	// has heard: a report that arrives after a newer one is not applied).
	// ReportedAt is the newest report's stamp.
	Since, ReportedAt time.Time
	// PrevState is the state before the current one, PrevAt the stamp of
	// its last report ("" and zero when the hub never heard of one).
	PrevState string
	PrevAt    time.Time
	// LastError is the newest error any report carried, even when the
	// peripheral has worked since, at LastErrorAt.
	LastError   string
	LastErrorAt time.Time
}

// Working reports whether the peripheral is being read.
func (p Peripheral) Working() bool { return p.State == PeripheralOpen }

// peripheralsApplier keeps the latest status of each peripheral of each
// store device: a row per (store, device, name), upserted by the newest
// report of the batch when it is newer than the row's (last writer wins
// by HLC, then event id, so replicas and redeliveries in any order agree).
type peripheralsApplier struct{}

func (peripheralsApplier) name() string { return "peripherals" }

// peripheralKey names one peripheral.
type peripheralKey struct{ store, device, name string }

func (k peripheralKey) compare(o peripheralKey) int {
	if c := strings.Compare(k.store, o.store); c != 0 {
		return c
	}
	if c := strings.Compare(k.device, o.device); c != 0 {
		return c
	}
	return strings.Compare(k.name, o.name)
}

// peripheralRead is one device_status event as the applier sees it.
type peripheralRead struct {
	key           peripheralKey
	hlc           int64
	id            string
	state, detail string
}

func (p *peripheralRead) before(o *peripheralRead) bool {
	return p.hlc < o.hlc || (p.hlc == o.hlc && p.id < o.id)
}

func (peripheralsApplier) read(_ *Store, env *events.Envelope) (any, error) {
	if env.Kind != events.KindDeviceStatus {
		return nil, nil
	}
	var m events.DeviceStatus
	if err := json.Unmarshal(env.Data, &m); err != nil {
		return nil, fmt.Errorf("device_status: %w", err)
	}
	name, state := clean(strings.TrimSpace(m.Name)), clean(strings.TrimSpace(m.State))
	if name == "" || state == "" {
		return nil, fmt.Errorf("device_status: name and state are required")
	}
	detail := clean(strings.TrimSpace(m.Detail))
	if len(detail) > maxPeripheralDetail {
		detail = strings.ToValidUTF8(detail[:maxPeripheralDetail], "")
	}
	return &peripheralRead{
		key: peripheralKey{store: clean(env.Origin.Store), device: clean(env.Origin.Device), name: name},
		hlc: env.HLC.Pack(), id: env.ID, state: state, detail: detail,
	}, nil
}

func (peripheralsApplier) apply(ctx context.Context, t *applyTx, reads []itemRead) error {
	if len(reads) == 0 {
		return nil
	}
	byKey := map[peripheralKey][]*peripheralRead{}
	for _, r := range reads {
		pr := r.v.(*peripheralRead)
		byKey[pr.key] = append(byKey[pr.key], pr)
	}
	keys := make([]peripheralKey, 0, len(byKey))
	for k := range byKey {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, peripheralKey.compare)
	rs := newRowset(text("store"), text("device"), text("name"), text("state"), text("detail"), integer("hlc"), text("event_id"),
		integer("since_hlc"), text("prev_state"), integer("prev_hlc"), text("error"), integer("error_hlc"))
	for _, k := range keys {
		evs := byKey[k]
		slices.SortFunc(evs, func(a, b *peripheralRead) int {
			if c := cmp.Compare(a.hlc, b.hlc); c != 0 {
				return c
			}
			return strings.Compare(a.id, b.id)
		})
		last := evs[len(evs)-1]
		// The batch's last run of the newest state: when it covers the
		// whole batch (prev_hlc 0), the row's own run may continue it.
		first := len(evs) - 1
		for first > 0 && evs[first-1].state == last.state {
			first--
		}
		var prevState string
		var prevHLC int64
		if first > 0 {
			prevState, prevHLC = evs[first-1].state, evs[first-1].hlc
		}
		var errText string
		var errHLC int64
		for _, e := range slices.Backward(evs) {
			if e.detail != "" {
				errText, errHLC = e.detail, e.hlc
				break
			}
		}
		rs.add(k.store, k.device, k.name, last.state, last.detail, last.hlc, last.id, evs[first].hlc, prevState, prevHLC, errText, errHLC)
	}
	// Every SET expression reads the row as it was (SQL evaluates them all
	// before assigning), so the CASEs compare the old state with the new.
	err := t.s.execRows(ctx, t.tx, rs, "p", func(a *args, p string) string {
		return `INSERT INTO peripherals (store, device, name, state, detail, hlc, event_id, since_hlc, prev_state, prev_hlc, error, error_hlc, updated_ms)
SELECT store, device, name, state, detail, hlc, event_id, since_hlc, prev_state, prev_hlc, error, error_hlc, ` + a.add(t.nowMS) + ` FROM ` + p + t.s.d.inOrder() + `
ON CONFLICT (store, device, name) DO UPDATE SET state = excluded.state, detail = excluded.detail, hlc = excluded.hlc, event_id = excluded.event_id,
	since_hlc = CASE WHEN excluded.prev_hlc = 0 AND peripherals.state = excluded.state THEN peripherals.since_hlc ELSE excluded.since_hlc END,
	prev_state = CASE WHEN excluded.prev_hlc <> 0 THEN excluded.prev_state WHEN peripherals.state = excluded.state THEN peripherals.prev_state ELSE peripherals.state END,
	prev_hlc = CASE WHEN excluded.prev_hlc <> 0 THEN excluded.prev_hlc WHEN peripherals.state = excluded.state THEN peripherals.prev_hlc ELSE peripherals.hlc END,
	error = CASE WHEN excluded.error_hlc > peripherals.error_hlc THEN excluded.error ELSE peripherals.error END,
	error_hlc = CASE WHEN excluded.error_hlc > peripherals.error_hlc THEN excluded.error_hlc ELSE peripherals.error_hlc END,
	updated_ms = excluded.updated_ms
WHERE excluded.hlc > peripherals.hlc OR (excluded.hlc = peripherals.hlc AND excluded.event_id > peripherals.event_id)`
	})
	if err != nil {
		return fmt.Errorf("peripherals: %w", err)
	}
	return nil
}

// peripheralsOf reads every peripheral, by device, in tx (Devices' read
// transaction, so they match its devices).
func peripheralsOf(ctx context.Context, tx *sql.Tx) (map[[2]string][]Peripheral, error) {
	rows, err := tx.QueryContext(ctx, `SELECT store, device, name, state, detail, hlc, since_hlc, prev_state, prev_hlc, error, error_hlc
FROM peripherals ORDER BY store, device, name`)
	if err != nil {
		return nil, fmt.Errorf("store: peripherals: %w", err)
	}
	defer rows.Close()
	out := map[[2]string][]Peripheral{}
	for rows.Next() {
		var store, device string
		var p Peripheral
		var at, since, prev, errAt int64
		if err := rows.Scan(&store, &device, &p.Name, &p.State, &p.Detail, &at, &since, &p.PrevState, &prev, &p.LastError, &errAt); err != nil {
			return nil, fmt.Errorf("store: peripherals: %w", err)
		}
		p.ReportedAt, p.Since, p.PrevAt, p.LastErrorAt = hlcTime(at), hlcTime(since), hlcTime(prev), hlcTime(errAt)
		k := [2]string{store, device}
		out[k] = append(out[k], p)
	}
	return out, rows.Err()
}
