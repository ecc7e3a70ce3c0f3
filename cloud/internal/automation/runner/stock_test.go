package runner

import (
	"context"
	"encoding/json"
	"sync"
	"testing"
	"time"

	"github.com/omnisync/omnisync/cloud/internal/automation"
	"github.com/omnisync/omnisync/cloud/internal/store"
	"github.com/omnisync/omnisync/shared/events"
	"github.com/omnisync/omnisync/shared/hlc"
	"github.com/omnisync/omnisync/shared/ids"
	"github.com/omnisync/omnisync/shared/testkit"
)

// interest is an in-memory Interest.
type interest struct {
	mu    sync.Mutex
	bySKU map[string][]string
}

func (i *interest) InterestedIn(_ context.Context, sku string, _ time.Time) ([]string, error) {
	i.mu.Lock()
	defer i.mu.Unlock()
	return append([]string(nil), i.bySKU[sku]...), nil
}

func stockEvent(seq uint64, kind events.Kind, sku string, qty int64) store.Item {
	body, _ := json.Marshal(events.StockMove{Location: "S1", Lines: []events.Line{{SKU: sku, Qty: qty}}})
	now := time.Now()
	env := events.Envelope{V: events.CurrentVersion, ID: ids.NewEventID(now), Origin: events.Origin{Store: "S1", Device: "pos-1", Epoch: 3, Seq: seq},
		HLC: hlc.Timestamp{Wall: now.UnixMilli()}, Kind: kind, Data: body}
	raw, _ := json.Marshal(env)
	return store.Item{Env: env, Raw: raw}
}

// Ensure that when a sold-out item is received again, the customers who
// looked at it get the back-in-stock message, once each, with consent
// asked when it is sent.
func TestRunner_BackInStock(t *testing.T) {
	ctx := context.Background()
	s := openStore(t, "")
	rec := startReceiver(t)
	rule := webhookRule("restock", "http://"+rec.addr+"/hook")
	rule.Trigger = automation.BackInStock
	if err := s.PutRule(ctx, rule); err != nil {
		t.Fatal(err)
	}
	c := &consents{allow: map[string]bool{"C1": true, "C2": false}}
	in := &interest{bySKU: map[string][]string{"SKU-9": {"C1", "C2", "C1"}}}
	r := newRunner(t, s, c, "hub-1", func(cfg *Config) { cfg.Interest, cfg.Stock = in, s })
	run(t, r)
	apply := func(items ...store.Item) {
		t.Helper()
		if _, err := s.ApplyBatch(ctx, items); err != nil {
			t.Fatal(err)
		}
		n := r.stockChecked.Load()
		r.StockChanged("SKU-9")
		testkit.Eventually(t, 5*time.Second, func() bool { return r.stockChecked.Load() > n }, "the change read")
	}
	apply(stockEvent(1, events.KindCount, "SKU-9", 0))   // sold out
	apply(stockEvent(2, events.KindReceipt, "SKU-9", 3)) // back
	apply(stockEvent(3, events.KindSale, "SKU-9", 1))    // still in stock: nothing new
	testkit.Eventually(t, 10*time.Second, func() bool {
		return jobState(t, s, store.JobDone) == 1 && jobState(t, s, store.JobSkipped) == 1
	}, "C1 told, C2 (no consent) not")
	ds := rec.deliveries()
	if len(ds) != 1 {
		t.Fatalf("deliveries %d", len(ds))
	}
	var p Payload
	if err := json.Unmarshal(ds[0].body, &p); err != nil || p.Customer != "C1" || p.Event.SKU != "SKU-9" || p.Event.Store != "S1" {
		t.Fatalf("%+v %v", p, err)
	}
}

// Ensure that SKUs changed together are read together and each one back
// in stock tells its own interested customers, once each.
func TestRunner_BackInStockSeveralSKUs(t *testing.T) {
	ctx := context.Background()
	s := openStore(t, "")
	rec := startReceiver(t)
	rule := webhookRule("restock", "http://"+rec.addr+"/hook")
	rule.Trigger = automation.BackInStock
	if err := s.PutRule(ctx, rule); err != nil {
		t.Fatal(err)
	}
	c := &consents{allow: map[string]bool{"C1": true, "C2": true}}
	in := &interest{bySKU: map[string][]string{"SKU-7": {"C1"}, "SKU-8": {"C2"}, "SKU-9": {"C1", "C2"}}}
	r := newRunner(t, s, c, "hub-1", func(cfg *Config) { cfg.Interest, cfg.Stock = in, s })
	run(t, r)
	apply := func(items ...store.Item) {
		t.Helper()
		if _, err := s.ApplyBatch(ctx, items); err != nil {
			t.Fatal(err)
		}
		n := r.stockChecked.Load()
		r.StockChanged("SKU-9", "SKU-7", "SKU-8", "SKU-9")
		testkit.Eventually(t, 5*time.Second, func() bool { return r.stockChecked.Load() >= n+3 }, "the changes read")
	}
	apply(stockEvent(1, events.KindCount, "SKU-7", 0), stockEvent(2, events.KindCount, "SKU-8", 0), stockEvent(3, events.KindCount, "SKU-9", 0))
	// SKU-7 and SKU-9 come back; SKU-8 stays sold out.
	apply(stockEvent(4, events.KindReceipt, "SKU-7", 2), stockEvent(5, events.KindReceipt, "SKU-9", 3))
	testkit.Eventually(t, 10*time.Second, func() bool { return jobState(t, s, store.JobDone) == 3 }, "C1 of SKU-7, C1 and C2 of SKU-9 told")
	got := map[string]bool{}
	for _, d := range rec.deliveries() {
		var p Payload
		if err := json.Unmarshal(d.body, &p); err != nil {
			t.Fatal(err)
		}
		got[p.Customer+" "+p.Event.SKU] = true
	}
	if len(got) != 3 || !got["C1 SKU-7"] || !got["C1 SKU-9"] || !got["C2 SKU-9"] {
		t.Fatalf("told %v", got)
	}
}

func assistEvent(seq uint64, zone, sku string, at time.Time) store.Item {
	body, _ := json.Marshal(events.Assist{Zone: zone, SKU: sku})
	env := events.Envelope{V: events.CurrentVersion, ID: ids.NewEventID(at), Origin: events.Origin{Store: "S1", Device: "mirror-1", Epoch: 5, Seq: seq},
		HLC: hlc.Timestamp{Wall: at.UnixMilli()}, Kind: events.KindAssist, Data: body}
	raw, _ := json.Marshal(env)
	return store.Item{Env: env, Raw: raw}
}

// Ensure that fitting-room help requests applied at the hub reach staff
// after the rule's delay unless answered meanwhile, once each.
func TestRunner_FittingRoomUnanswered(t *testing.T) {
	ctx := context.Background()
	s := openStore(t, "")
	rec := startReceiver(t)
	rule := automation.Rule{ID: "help", Enabled: true, Trigger: automation.FittingRoomUnanswered, DelaySeconds: 1,
		Action: automation.Action{Kind: automation.ActionWebhook, URL: "http://" + rec.addr + "/staff", Secret: secret}}
	if err := s.PutRule(ctx, rule); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	a1, a2 := assistEvent(1, "fr-1", "SKU-M", now), assistEvent(2, "fr-2", "SKU-L", now)
	if _, err := s.ApplyBatch(ctx, []store.Item{a1, a2, a1}); err != nil {
		t.Fatal(err)
	}
	if err := s.AnswerAssist(ctx, a2.Env.ID); err != nil {
		t.Fatal(err)
	}
	r := newRunner(t, s, &consents{allow: map[string]bool{}}, "hub-1", func(cfg *Config) { cfg.Assists = s })
	run(t, r)
	testkit.Eventually(t, 10*time.Second, func() bool {
		return jobState(t, s, store.JobDone) == 1 && jobState(t, s, store.JobSkipped) == 1
	}, "the unanswered request sent, the answered one skipped")
	ds := rec.deliveries()
	var p Payload
	if len(ds) != 1 || json.Unmarshal(ds[0].body, &p) != nil || p.Event.Attrs["zone"] != "fr-1" || p.Event.SKU != "SKU-M" {
		t.Fatalf("deliveries %+v", ds)
	}
	if reqs, _ := s.NewAssistRequests(ctx, 10); len(reqs) != 0 {
		t.Errorf("requests not marked: %+v", reqs)
	}
}
