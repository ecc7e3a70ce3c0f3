package inventory

import (
	"testing"
	"time"

	"github.com/omnisync/omnisync/shared/events"
	"github.com/omnisync/omnisync/shared/hlc"
)

func TestConfidenceOf(t *testing.T) {
	now := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	day := 24 * time.Hour
	for _, tt := range []struct {
		method  string
		counted time.Time
		want    Confidence
	}{
		{events.CountRFIDSweep, time.Time{}, ConfidenceLow},
		{"", time.Time{}, ConfidenceLow},
		{events.CountRFIDSweep, now, ConfidenceHigh},
		{events.CountRFIDSweep, now.Add(time.Hour), ConfidenceHigh},
		{events.CountRFIDSweep, now.Add(-7 * day), ConfidenceHigh},
		{events.CountManual, now, ConfidenceMediumHigh},
		{events.CountCycle, now.Add(-7 * day), ConfidenceMediumHigh},
		{"", now.Add(-day), ConfidenceMediumHigh},
		{events.CountRFIDSweep, now.Add(-7*day - time.Second), ConfidenceMedium},
		{events.CountManual, now.Add(-30 * day), ConfidenceMedium},
		{events.CountRFIDSweep, now.Add(-31 * day), ConfidenceLow},
		{events.CountManual, now.Add(-31 * day), ConfidenceLow},
	} {
		if got := ConfidenceOf(tt.method, tt.counted, now); got != tt.want {
			t.Errorf("%q counted %v: %s, want %s", tt.method, tt.counted, got, tt.want)
		}
	}
	if !(ConfidenceHigh.Rank() > ConfidenceMediumHigh.Rank() && ConfidenceMediumHigh.Rank() > ConfidenceMedium.Rank() &&
		ConfidenceMedium.Rank() > ConfidenceLow.Rank()) {
		t.Error("ranks out of order")
	}
}

func TestCountStamp(t *testing.T) {
	ev := events.Stamp{HLC: hlc.Timestamp{Wall: 1_000_000_000_000, Logical: 7}, ID: "e"}
	at := func(ms int64) time.Time { return time.UnixMilli(ms) }
	for _, tt := range []struct {
		name    string
		snap    time.Time
		want    int64
		wantErr bool
	}{
		{"no snapshot", time.Time{}, ev.HLC.Wall, false},
		{"sweep start", at(ev.HLC.Wall - 60_000), ev.HLC.Wall - 60_000, false},
		{"snapshot in the future", at(ev.HLC.Wall + 5), ev.HLC.Wall, false},
		{"a day before", at(ev.HLC.Wall - events.MaxSnapshotLead.Milliseconds()), ev.HLC.Wall - events.MaxSnapshotLead.Milliseconds(), false},
		{"too old", at(ev.HLC.Wall - events.MaxSnapshotLead.Milliseconds() - 1), 0, true},
	} {
		got, err := CountStamp(ev, tt.snap)
		if (err != nil) != tt.wantErr {
			t.Errorf("%s: err %v", tt.name, err)
			continue
		}
		if err == nil && (got.HLC.Wall != tt.want || got.ID != ev.ID) {
			t.Errorf("%s: %+v, want wall %d", tt.name, got, tt.want)
		}
	}
}
