package uplink

import (
	"context"
	"encoding/json"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/omnisync/omnisync/shared/events"
	"github.com/omnisync/omnisync/shared/subjects"
	"github.com/omnisync/omnisync/shared/syncproto"
)

// Ensure that the heartbeat carries the sales the hub has not confirmed
// (count, value, age of the oldest) from a real outbox, and drops them
// once the hub confirms them.
func TestHeartbeat_CarriesUnsyncedSales(t *testing.T) {
	r := newRig(t, time.Hour)
	var mu sync.Mutex
	var last syncproto.Heartbeat
	sub, err := r.nc.Subscribe(subjects.HubSync("S1", "pos-1"), func(m *nats.Msg) {
		var hb syncproto.Heartbeat
		if json.Unmarshal(m.Data, &hb) == nil {
			mu.Lock()
			last = hb
			mu.Unlock()
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sub.Unsubscribe() })
	drafts := []events.Draft{
		{Kind: events.KindSale, Data: json.RawMessage(`{"location":"S1","lines":[{"sku":"A","qty":2,"unit_price":150},{"sku":"B","qty":1,"unit_price":1000}]}`)},
		{Kind: events.KindReceipt, Data: json.RawMessage(`{"location":"S1","lines":[{"sku":"A","qty":50,"unit_price":90}]}`)},
		{Kind: events.KindSale, Data: json.RawMessage(`{"location":"S1","lines":[{"sku":"C","qty":1}]}`)},
	}
	envs, err := r.ob.Append(context.Background(), drafts)
	if err != nil {
		t.Fatal(err)
	}
	wait := func(what string, ok func(hb syncproto.Heartbeat) bool) syncproto.Heartbeat {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for time.Now().Before(deadline) {
			mu.Lock()
			hb := last
			mu.Unlock()
			if ok(hb) {
				return hb
			}
			time.Sleep(20 * time.Millisecond)
		}
		mu.Lock()
		defer mu.Unlock()
		t.Fatalf("no heartbeat with %s; last %+v", what, last)
		return syncproto.Heartbeat{}
	}
	hb := wait("two unsynced sales", func(hb syncproto.Heartbeat) bool { return hb.UnsyncedSales == 2 })
	if hb.UnsyncedSalesValue != 1300 || hb.OldestUnsyncedSaleMS < 0 || hb.OldestUnsyncedSaleMS > 5000 {
		t.Errorf("heartbeat %+v, want value 1300 and a young oldest sale", hb)
	}
	// The hub confirms the first sale and the receipt: one sale is left.
	r.hub.Store(envs[1].Origin.Seq)
	hb = wait("one unsynced sale", func(hb syncproto.Heartbeat) bool { return hb.UnsyncedSales == 1 })
	if hb.UnsyncedSalesValue != 0 {
		t.Errorf("heartbeat %+v, want the unpriced sale only", hb)
	}
	r.hub.Store(envs[2].Origin.Seq)
	wait("none", func(hb syncproto.Heartbeat) bool {
		return hb.UnsyncedSales == 0 && hb.UnsyncedSalesValue == 0 && hb.OldestUnsyncedSaleMS == 0 && hb.Backlog == 0
	})
}
