package runner

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/omnisync/omnisync/cloud/internal/automation"
	"github.com/omnisync/omnisync/cloud/internal/store"
	"github.com/omnisync/omnisync/shared/events"
	"github.com/omnisync/omnisync/shared/hlc"
	"github.com/omnisync/omnisync/shared/ids"
	"github.com/omnisync/omnisync/shared/testkit"
)

// bookConsent is the hub's consent checker: the customer books' answer
// (store.ConsentMay) at the moment a job is sent.
type bookConsent struct{ s *store.Store }

func (b bookConsent) May(ctx context.Context, customer, purpose, channel string, at time.Time) (bool, error) {
	return b.s.ConsentMay(ctx, customer, purpose, channel, at)
}

// storeEvents applies customer events to the books as a store's till
// would send them.
type storeEvents struct {
	s   *store.Store
	seq uint64
}

func (e *storeEvents) apply(t *testing.T, k events.Kind, body any) {
	t.Helper()
	e.seq++
	data, _ := json.Marshal(body)
	now := time.Now()
	env := events.Envelope{V: events.CurrentVersion, ID: ids.NewEventID(now), Origin: events.Origin{Store: "S1", Device: "pos-1", Epoch: 1, Seq: e.seq},
		HLC: hlc.Timestamp{Wall: now.UnixMilli(), Logical: uint32(e.seq)}, Kind: k, Data: data}
	res, err := e.s.ApplyBatch(context.Background(), []store.Item{{Env: env}})
	if err != nil || res.Applied != 1 {
		t.Fatalf("apply %s: %+v %v", k, res, err)
	}
}

// Ensure that, with the hub's real consent checker over the customer
// books, a customer who withdraws her consent (a consent event applied
// while her job waits) gets nothing, while another customer whose consent
// stands gets his message: consent is read from the books when a job is
// sent, not when it was scheduled.
func TestRunner_OptOutInTheBooksBeforeSending(t *testing.T) {
	ctx := context.Background()
	s := openStore(t, "")
	rec := startReceiver(t)
	rule := webhookRule("carts", "http://"+rec.addr+"/hook")
	rule.DelaySeconds = 1
	if err := s.PutRule(ctx, rule); err != nil {
		t.Fatal(err)
	}
	ev := &storeEvents{s: s}
	yes, no := true, false
	var customers []string
	for i, email := range []string{"ann@shop.test", "bo@shop.test"} {
		ev.apply(t, events.KindIdentify, events.Identify{Identifiers: map[string]string{"email": email, "loyalty": fmt.Sprint("LC-", i)}})
		ev.apply(t, events.KindConsent, events.Consent{Customer: events.CustomerRef{"email": email}, Purpose: "marketing_email", Granted: &yes, Channel: "email"})
		id, err := s.FindCustomer(ctx, "email:"+email, "")
		if err != nil {
			t.Fatal(err)
		}
		customers = append(customers, id)
	}
	r := newRunner(t, s, bookConsent{s}, "hub-1")
	var evs []automation.Event
	for i, c := range customers {
		evs = append(evs, automation.Event{ID: fmt.Sprintf("cart-%d:abandoned:1", i), Trigger: automation.CartAbandoned, At: time.Now(),
			Customer: c, Attrs: map[string]string{"cart.value": "4200"}})
	}
	if got, err := r.Handle(ctx, evs...); err != nil || got != 2 {
		t.Fatalf("scheduled %d %v", got, err)
	}
	run(t, r)
	// Bo withdraws at the till while his job waits.
	ev.apply(t, events.KindConsent, events.Consent{Customer: events.CustomerRef{"loyalty": "LC-1"}, Purpose: "marketing_email", Granted: &no, Source: "till"})
	testkit.Eventually(t, 10*time.Second, func() bool { return jobState(t, s, store.JobScheduled) == 0 }, "jobs settled")
	ds := rec.deliveries()
	if len(ds) != 1 || ds[0].key != automation.JobID("carts", "cart-0:abandoned:1") {
		t.Fatalf("deliveries %+v", ds)
	}
	sk, _ := s.Jobs(ctx, store.JobQuery{State: store.JobSkipped})
	if len(sk) != 1 || sk[0].Customer != customers[1] || sk[0].Reason != "no consent for marketing_email" {
		t.Fatalf("skipped %+v", sk)
	}
}
