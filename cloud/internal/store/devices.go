package store

import (
	"cmp"
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strings"
)

type devKey struct {
	store, device string
	epoch         uint64
}

func (k devKey) compare(o devKey) int {
	if c := strings.Compare(k.store, o.store); c != 0 {
		return c
	}
	if c := strings.Compare(k.device, o.device); c != 0 {
		return c
	}
	return cmp.Compare(k.epoch, o.epoch)
}

// devRow is a device_progress row loaded for update.
type devRow struct {
	seqSet
	applied, deadLettered int64
	lastEventHLC          int64
	lastAppliedMS         int64
	dirty                 bool
}

// lockDevices makes sure every device epoch of the batch has a row (not
// asking when all are known to: knownRows), then locks them in (store,
// device, epoch) order and loads their dedup state.
func (s *Store) lockDevices(ctx context.Context, t *applyTx, keys []devKey) ([]*devRow, error) {
	out := make([]*devRow, len(keys))
	if len(keys) == 0 {
		return out, nil
	}
	tx := t.tx
	rs := newRowset(text("store"), text("device"), integer("epoch"))
	known := make([]string, len(keys))
	for i, k := range keys {
		rs.add(k.store, k.device, int64(k.epoch))
		known[i] = devKnownKey(k)
	}
	if t.mustEnsure(known) {
		err := s.execRows(ctx, tx, rs, "k", func(a *args, k string) string {
			return "INSERT INTO device_progress (store, device, epoch) SELECT store, device, epoch FROM " + k +
				` ORDER BY store COLLATE "C", device COLLATE "C", epoch ON CONFLICT DO NOTHING`
		})
		if err != nil {
			return nil, fmt.Errorf("store: ensure devices: %w", err)
		}
	}
	err := s.queryRows(ctx, tx, rs, "k", func(a *args, k string) string {
		return `SELECT d.store, d.device, d.epoch, d.watermark, d.above, d.events_applied, d.dead_lettered, d.last_event_hlc, d.last_applied_ms
FROM device_progress d JOIN ` + k + ` ON d.store = k.store AND d.device = k.device AND d.epoch = k.epoch
ORDER BY d.store, d.device, d.epoch` + s.d.forUpdate("d")
	}, func(rows *sql.Rows) error {
		var k devKey
		var epoch, wm int64
		var above string
		d := &devRow{}
		if err := rows.Scan(&k.store, &k.device, &epoch, &wm, &above, &d.applied, &d.deadLettered, &d.lastEventHLC, &d.lastAppliedMS); err != nil {
			return err
		}
		k.epoch, d.watermark = uint64(epoch), uint64(wm)
		var err error
		if d.above, err = decodeAbove(above); err != nil {
			return fmt.Errorf("device %s/%s epoch %d: %w", k.store, k.device, k.epoch, err)
		}
		i, ok := slices.BinarySearchFunc(keys, k, devKey.compare)
		if !ok {
			return fmt.Errorf("unexpected row %+v", k)
		}
		out[i] = d
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("store: lock devices: %w", err)
	}
	for i, d := range out {
		if d == nil {
			if s.d.rowLocks() {
				return nil, fmt.Errorf("store: lock devices: row %+v missing: %w", keys[i], errUnknownRow)
			}
			out[i] = &devRow{dirty: true} // first seen: write its row even if nothing is processed
		}
	}
	return out, nil
}

func (s *Store) updateDevices(ctx context.Context, tx *sql.Tx, keys []devKey, devs []*devRow) error {
	rs := newRowset(text("store"), text("device"), integer("epoch"), integer("watermark"), text("above"),
		integer("applied"), integer("dead"), integer("last_hlc"), integer("last_ms"))
	for i, d := range devs {
		if d.dirty {
			k := keys[i]
			rs.add(k.store, k.device, int64(k.epoch), int64(d.watermark), d.encodeAbove(), d.applied, d.deadLettered, d.lastEventHLC, d.lastAppliedMS)
		}
	}
	if rs.len() == 0 {
		return nil
	}
	err := s.execRows(ctx, tx, rs, "u", func(a *args, u string) string {
		return `INSERT INTO device_progress (store, device, epoch, watermark, above, events_applied, dead_lettered, last_event_hlc, last_applied_ms)
SELECT store, device, epoch, watermark, above, applied, dead, last_hlc, last_ms FROM ` + u + ` WHERE true
ON CONFLICT (store, device, epoch) DO UPDATE SET watermark = excluded.watermark, above = excluded.above,
	events_applied = excluded.events_applied, dead_lettered = excluded.dead_lettered,
	last_event_hlc = excluded.last_event_hlc, last_applied_ms = excluded.last_applied_ms`
	})
	if err != nil {
		return fmt.Errorf("store: update devices: %w", err)
	}
	return nil
}
