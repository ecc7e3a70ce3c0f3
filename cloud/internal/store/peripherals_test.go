package store

import (
	"context"
	"testing"
	"time"

	"github.com/omnisync/omnisync/shared/events"
)

// Ensure that device_status events keep each peripheral's latest status
// per store device: the newest report wins by its stamp whatever the
// arrival order, "since" is when the current state began (carried over
// batches while the state holds), the state before it and the newest
// error are kept, and a report without a name is dead-lettered and
// changes nothing.
func TestPeripherals(t *testing.T) {
	forEachStoreAtOnce(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		base := testNow.UnixMilli()
		at := func(ms int64) time.Time { return time.UnixMilli(base + ms).UTC() }
		st := func(name, state, detail string) events.DeviceStatus {
			return events.DeviceStatus{Name: name, State: state, Detail: detail}
		}
		pos, kiosk, other := newDevice("S1", "pos-1", 1), newDevice("S1", "kiosk-1", 1), newDevice("S2", "pos-1", 1)
		peripherals := func() map[string]map[string]Peripheral {
			t.Helper()
			devs, err := s.Devices(ctx)
			if err != nil {
				t.Fatal(err)
			}
			out := map[string]map[string]Peripheral{}
			for _, d := range devs {
				m := map[string]Peripheral{}
				for _, p := range d.Peripherals {
					m[p.Name] = p
				}
				out[d.Store+"/"+d.Device] = m
			}
			return out
		}

		// One batch: the scanner was missing, then opened; the reader
		// failed; the same names on other devices are theirs.
		res := apply(t, s,
			pos.ev(base+100, events.KindDeviceStatus, st("scanner-1", "reopening", "open /dev/ttyACM0: no such file")),
			pos.ev(base+150, events.KindDeviceStatus, st("rfid-1", "failed", "not a terminal")),
			pos.ev(base+200, events.KindDeviceStatus, st("scanner-1", "open", "")),
			kiosk.ev(base+120, events.KindDeviceStatus, st("scanner-1", "reopening", "gone")),
			other.ev(base+130, events.KindDeviceStatus, st("scanner-1", "open", "")),
		)
		if res.Applied != 5 || res.DeadLettered != 0 {
			t.Fatalf("first batch: %+v", res)
		}
		got := peripherals()
		sc := got["S1/pos-1"]["scanner-1"]
		want := Peripheral{Name: "scanner-1", State: "open", Since: at(200), ReportedAt: at(200), PrevState: "reopening", PrevAt: at(100),
			LastError: "open /dev/ttyACM0: no such file", LastErrorAt: at(100)}
		if sc != want || !sc.Working() {
			t.Fatalf("scanner-1 of pos-1:\n got %+v\nwant %+v", sc, want)
		}
		if rf := got["S1/pos-1"]["rfid-1"]; rf.State != "failed" || rf.Detail != "not a terminal" || rf.Since != at(150) || rf.Working() {
			t.Fatalf("rfid-1: %+v", rf)
		}
		if k := got["S1/kiosk-1"]["scanner-1"]; k.State != "reopening" || k.Detail != "gone" || len(got["S1/kiosk-1"]) != 1 {
			t.Fatalf("kiosk-1: %+v", got["S1/kiosk-1"])
		}
		if o := got["S2/pos-1"]["scanner-1"]; o.State != "open" || o.Since != at(130) {
			t.Fatalf("S2's scanner: %+v", o)
		}

		// Still open: the state keeps its start; a report older than the
		// newest, arriving late, is not applied.
		apply(t, s, pos.ev(base+300, events.KindDeviceStatus, st("scanner-1", "open", "")))
		apply(t, s, pos.ev(base+250, events.KindDeviceStatus, st("scanner-1", "reopening", "late")))
		sc = peripherals()["S1/pos-1"]["scanner-1"]
		want.ReportedAt = at(300)
		if sc != want {
			t.Fatalf("after a repeat and a late report:\n got %+v\nwant %+v", sc, want)
		}

		// Lost again: a new state, the open run before it, the new error.
		apply(t, s, pos.ev(base+400, events.KindDeviceStatus, st("scanner-1", "reopening", "device lost")))
		sc = peripherals()["S1/pos-1"]["scanner-1"]
		want = Peripheral{Name: "scanner-1", State: "reopening", Detail: "device lost", Since: at(400), ReportedAt: at(400), PrevState: "open", PrevAt: at(300),
			LastError: "device lost", LastErrorAt: at(400)}
		if sc != want {
			t.Fatalf("after the loss:\n got %+v\nwant %+v", sc, want)
		}

		// A batch of two runs: the last run's start and the report before.
		apply(t, s,
			pos.ev(base+500, events.KindDeviceStatus, st("scanner-1", "reopening", "")),
			pos.ev(base+600, events.KindDeviceStatus, st("scanner-1", "open", "")),
			pos.ev(base+700, events.KindDeviceStatus, st("scanner-1", "open", "")))
		sc = peripherals()["S1/pos-1"]["scanner-1"]
		if sc.State != "open" || sc.Since != at(600) || sc.PrevState != "reopening" || sc.PrevAt != at(500) || sc.ReportedAt != at(700) || sc.LastError != "device lost" {
			t.Fatalf("after a batch of two runs: %+v", sc)
		}

		// No name: dead-lettered, nothing written.
		res = apply(t, s, pos.ev(base+800, events.KindDeviceStatus, events.DeviceStatus{State: "failed"}))
		if res.DeadLettered != 1 || res.Applied != 0 {
			t.Fatalf("nameless report: %+v", res)
		}
		if n := len(peripherals()["S1/pos-1"]); n != 2 {
			t.Fatalf("pos-1 has %d peripherals after a nameless report", n)
		}
	})
}
