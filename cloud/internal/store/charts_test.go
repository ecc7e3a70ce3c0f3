package store

import (
	"context"
	"testing"
	"time"

	"github.com/omnisync/omnisync/shared/events"
)

// Ensure that the charts' series read sales per hour and channel, lag per
// store and five minutes, and conflicts per day.
func TestCharts_Series(t *testing.T) {
	forEachStoreAtOnce(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		hour := int64(time.Hour / time.Millisecond)
		now := time.Now().UnixMilli()
		h0 := (now/hour - 3) * hour // three hours ago, on the hour
		pos, web := newDevice("S1", "pos", 1), newDevice("online", "web", 1)
		apply(t, s,
			pos.ev(h0-50*hour, events.KindReceipt, sale("S1", line("A", 100))),
			web.ev(h0-50*hour, events.KindReceipt, sale("online", line("A", 100))),
			pos.ev(h0-49*hour, events.KindSale, sale("S1", line("A", 9))), // before the window
			pos.ev(h0+10, events.KindSale, sale("S1", line("A", 2), line("B", 1))),
			pos.ev(h0+20, events.KindSale, sale("S1", line("A", 1))),
			web.ev(h0+hour+5, events.KindSale, sale("online", line("A", 4))),
			pos.ev(h0+hour+6, events.KindReturn, sale("S1", line("A", 1))),
		)
		hs, err := s.SalesPerHour(ctx, time.UnixMilli(now-48*hour), "online", nil)
		if err != nil {
			t.Fatal(err)
		}
		want := []HourSales{{time.UnixMilli(h0).UTC(), "store", 4}, {time.UnixMilli(h0 + hour).UTC(), "online", 4}}
		if len(hs) != len(want) || hs[0] != want[0] || hs[1] != want[1] {
			t.Errorf("sales per hour %+v, want %+v", hs, want)
		}
		if hs, err := s.SalesPerHour(ctx, time.UnixMilli(now-48*hour), "online", []string{"S2"}); err != nil || len(hs) != 0 {
			t.Errorf("S2's sales %+v %v", hs, err)
		}

		at := time.UnixMilli(now)
		if err := s.RecordHeartbeats(ctx, []Heartbeat{
			{Store: "S1", Device: "pos", Backlog: 3, OldestUnackedAge: 40 * time.Second, At: at},
			{Store: "S1", Device: "pos-2", Backlog: 1, OldestUnackedAge: 90 * time.Second, At: at},
			{Store: "S2", Device: "pos", Backlog: 0, OldestUnackedAge: time.Hour, At: at},
		}); err != nil {
			t.Fatal(err)
		}
		lag, err := s.LagHistory(ctx, at.Add(-time.Hour), nil)
		if err != nil {
			t.Fatal(err)
		}
		if len(lag) != 2 || lag[0].Store != "S1" || lag[0].Lag != 90*time.Second || lag[1].Store != "S2" || lag[1].Lag != 0 {
			t.Errorf("lag %+v", lag)
		}
		if lag, _ := s.LagHistory(ctx, at.Add(-time.Hour), []string{"S2"}); len(lag) != 1 {
			t.Errorf("S2's lag %+v", lag)
		}

		// An oversell opens a conflict, a receipt closes it.
		apply(t, s, pos.ev(h0+2*hour, events.KindSale, sale("S1", line("B", 5))))
		apply(t, s, pos.ev(h0+2*hour+1, events.KindReceipt, sale("S1", line("B", 10))))
		cs, err := s.ConflictsPerDay(ctx, time.UnixMilli(now-48*hour), nil)
		if err != nil {
			t.Fatal(err)
		}
		var opened, closed int64
		for _, d := range cs {
			opened, closed = opened+d.Opened, closed+d.Closed
		}
		if opened != 1 || closed != 1 {
			t.Errorf("conflicts per day %+v", cs)
		}
	})
}
