package rfid

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/omnisync/omnisync/shared/events"
)

// sweepReads returns reads of n serials of GTIN i, each read reps times
// through different spellings and antennas.
func sweepReads(i, n, reps int) []TagRead {
	var out []TagRead
	for r := 0; r < reps; r++ {
		for s := 0; s < n; s++ {
			h := tagHex(i, s+1)
			if r%2 == 1 {
				h = strings.ToLower(h)
			}
			out = append(out, TagRead{Reader: "handheld", EPC: h, Antenna: 1 + r%4, RSSI: -55, At: at(time.Duration(r) * time.Second)})
		}
	}
	return out
}

// Ensure that a sweep collapses duplicates and counts serials per GTIN,
// with and without a scope.
func TestSweep_Counts(t *testing.T) {
	reads := append(append(sweepReads(1, 5, 4), sweepReads(2, 3, 7)...), sweepReads(3, 2, 1)...)
	reads = append(reads,
		TagRead{EPC: tdsSSCC96}, TagRead{EPC: tdsSSCC96}, TagRead{EPC: "nonsense"},
		TagRead{EPC: tagHex(4, 1), RSSI: -90}, // weak
	)
	tests := []struct {
		name    string
		scope   []string
		want    []GTINCount
		items   int
		outside int
	}{
		{name: "whole store", want: []GTINCount{{gtin(1), 5}, {gtin(2), 3}, {gtin(3), 2}}, items: 10},
		{name: "scope with an unseen GTIN", scope: []string{gtin(2), gtin(9), gtin(1)[1:]}, // GTIN-13 form accepted
			want: []GTINCount{{gtin(1), 5}, {gtin(2), 3}, {gtin(9), 0}}, items: 8, outside: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sw, err := NewSweep(SweepConfig{Area: "store", Scope: tt.scope, MinRSSI: -80}, t0)
			if err != nil {
				t.Fatal(err)
			}
			if err := sw.Observe(reads...); err != nil {
				t.Fatal(err)
			}
			res, err := sw.End(at(time.Minute))
			if err != nil {
				t.Fatal(err)
			}
			if len(res.Counts) != len(tt.want) {
				t.Fatalf("counts %+v, want %+v", res.Counts, tt.want)
			}
			for i := range tt.want {
				if res.Counts[i] != tt.want[i] {
					t.Errorf("counts[%d] = %+v, want %+v", i, res.Counts[i], tt.want[i])
				}
			}
			if res.Items != tt.items || res.OutOfScope != tt.outside || res.Reads != uint64(len(reads)) ||
				res.NotItems["sscc-96"] != 2 || res.Rejects[ReasonHex] != 1 || res.Weak != 1 || res.Truncated {
				t.Errorf("result %+v", res)
			}
			if err := sw.Observe(reads[0]); !errors.Is(err, ErrSweepEnded) {
				t.Errorf("Observe after End = %v", err)
			}
			if _, err := sw.End(at(time.Hour)); !errors.Is(err, ErrSweepEnded) {
				t.Errorf("second End = %v", err)
			}
		})
	}
}

// Ensure that a truncated sweep refuses to become a count event.
func TestSweep_Truncated(t *testing.T) {
	sw, err := NewSweep(SweepConfig{MaxItems: 4}, t0)
	if err != nil {
		t.Fatal(err)
	}
	sw.Observe(sweepReads(1, 10, 2)...)
	res, _ := sw.End(at(time.Second))
	if !res.Truncated || res.Items != 4 || res.Overflow != 12 {
		t.Errorf("result %+v", res)
	}
	if _, _, err := res.CountEvents(""); !errors.Is(err, ErrSweepTruncated) {
		t.Errorf("CountEvents = %v, want ErrSweepTruncated", err)
	}
}

// Ensure that bad sweep settings are refused.
func TestSweep_Config(t *testing.T) {
	for _, c := range []SweepConfig{{Scope: []string{"123"}}, {Scope: []string{gtin(1)[:13] + "0"}}, {MaxItems: -1}, {MinRSSI: 5}} {
		if _, err := NewSweep(c, t0); !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("NewSweep(%+v) = %v", c, err)
		}
	}
}

// Ensure that sweep counts become valid count bodies, split at
// events.MaxLines lines.
func TestSweep_CountEvents(t *testing.T) {
	sw, _ := NewSweep(SweepConfig{}, t0)
	for i := 0; i < events.MaxLines+20; i++ {
		sw.Observe(sweepReads(i, 1+i%3, 1)...)
	}
	res, _ := sw.End(at(time.Minute))
	kind, moves, err := res.CountEvents("store-1")
	if err != nil || kind != events.KindCount || len(moves) != 2 || len(moves[0].Lines) != events.MaxLines || len(moves[1].Lines) != 20 {
		t.Fatalf("CountEvents = %v, %d moves, %v", kind, len(moves), err)
	}
	drafts, err := res.CountDrafts("")
	if err != nil || len(drafts) != 2 {
		t.Fatalf("CountDrafts = %d, %v", len(drafts), err)
	}
	// What the agent does with them: the location defaults to its store.
	body, _ := json.Marshal(drafts)
	parsed, err := events.ParseDrafts(body, "store-9")
	if err != nil {
		t.Fatalf("invalid count drafts: %v", err)
	}
	var total int64
	for _, d := range parsed {
		m, _ := events.DecodeStockMove(d.Data)
		if m.Reason != SweepReason || m.Location != "store-9" {
			t.Errorf("reason %q location %q", m.Reason, m.Location)
		}
		if m.Method != events.CountRFIDSweep || !m.SnapshotAt.Equal(res.Started) {
			t.Errorf("method %q snapshot %v, want rfid_sweep at the sweep's start %v", m.Method, m.SnapshotAt, res.Started)
		}
		for _, l := range m.Lines {
			total += l.Qty
		}
	}
	if total != int64(res.Items) {
		t.Errorf("lines total %d, items %d", total, res.Items)
	}
	// A scoped sweep that saw nothing still counts its GTINs, at 0.
	empty, _ := NewSweep(SweepConfig{Scope: []string{gtin(5)}}, t0)
	res, _ = empty.End(at(time.Second))
	_, moves, _ = res.CountEvents("")
	if len(moves) != 1 || moves[0].Lines[0] != (events.Line{SKU: gtin(5), Qty: 0}) {
		t.Errorf("empty scoped sweep: %+v", moves)
	}
	// An unscoped sweep that saw nothing makes no event.
	none, _ := NewSweep(SweepConfig{}, t0)
	res, _ = none.End(at(time.Second))
	if _, moves, err := res.CountEvents(""); len(moves) != 0 || err != nil {
		t.Errorf("empty sweep: %+v, %v", moves, err)
	}
}

// Ensure that enter and leave bodies carry the fields the agent sends.
func TestPresence_Event(t *testing.T) {
	it := Item{EPC: tdsSGTIN96, GTIN: "80614141123458", Serial: "6789"}
	enter := Presence{Change: Enter, Zone: "booth-1", Reader: "fr-1", Antenna: 2, Item: it, RSSI: -51.5, At: t0}
	leave := enter
	leave.Change, leave.At, leave.Dwell, leave.Cause = Leave, at(90*time.Second), 90*time.Second, CauseGone
	tests := []struct {
		p    Presence
		kind events.Kind
		json string
	}{
		{enter, events.KindEnter, `{"zone":"booth-1","epc":"3074257BF7194E4000001A85","gtin":"80614141123458","serial":"6789","reader":"fr-1","antenna":2,"rssi":-51.5,"at":"2025-03-14T10:00:00Z"}`},
		{leave, events.KindLeave, `{"zone":"booth-1","epc":"3074257BF7194E4000001A85","gtin":"80614141123458","serial":"6789","dwell_ms":90000,"reader":"fr-1","antenna":2,"rssi":-51.5,"at":"2025-03-14T10:01:30Z","cause":"gone"}`},
	}
	for _, tt := range tests {
		d, err := tt.p.Draft()
		if err != nil {
			t.Fatal(err)
		}
		if d.Kind != tt.kind || string(d.Data) != tt.json {
			t.Errorf("draft %s %s\nwant  %s %s", d.Kind, d.Data, tt.kind, tt.json)
		}
		var m map[string]any
		if err := json.Unmarshal(d.Data, &m); err != nil {
			t.Fatal(err)
		}
	}
	// The bodies must pass the shared contract's validation.
	for _, p := range []Presence{enter, leave} {
		d, _ := p.Draft()
		if _, err := events.ValidateBody(d.Kind, d.Data); err != nil {
			t.Errorf("%s body refused by shared/events: %v", d.Kind, err)
		}
	}
	// A zero dwell is still sent on leave.
	leave.Dwell = 0
	if _, b := leave.Event(); b.DwellMS == nil || *b.DwellMS != 0 {
		t.Errorf("zero dwell dropped: %+v", b)
	}
}
