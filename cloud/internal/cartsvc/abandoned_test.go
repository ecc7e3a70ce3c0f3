package cartsvc

import (
	"context"
	"crypto/ed25519"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/omnisync/omnisync/cloud/internal/automation"
	"github.com/omnisync/omnisync/cloud/internal/consent"
	"github.com/omnisync/omnisync/cloud/internal/store"
)

// noFacts: the rules below read the cart alone.
type noFacts struct{}

func (noFacts) Segment(string) string                 { return "" }
func (noFacts) Profile(string, string) (string, bool) { return "", false }

// Ensure that carts the service finds abandoned reach the automation as
// events its rules can read: a rule on cart.value matches the big cart
// and not the small one, cart.lines and cart.skus are the cart's, and
// the event carries the customer's master id and nothing else of her. A
// claimed cart she emptied is not abandoned.
func TestFindAbandoned_EventsMatchCartRules(t *testing.T) {
	for name, dsn := range databases(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			st, err := store.Open(ctx, dsn, nil)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { st.Close() })
			_, key, _ := ed25519.GenerateKey(nil)
			var mu sync.Mutex
			now := time.Now()
			clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
			var handed []store.AbandonedCart
			svc, err := New(Options{Store: st, Online: "online", Key: key, ExpiryEvery: time.Hour, AbandonAfter: time.Hour, Now: clock,
				OnAbandoned: func(ab []store.AbandonedCart) { handed = append(handed, ab...) }})
			if err != nil {
				t.Fatal(err)
			}
			runCtx, cancel := context.WithCancel(ctx)
			done := make(chan struct{})
			go func() { defer close(done); _ = svc.Run(runCtx) }()
			t.Cleanup(func() { cancel(); <-done })

			p := func(v int64) *int64 { return &v }
			big, _, err := svc.Create(ctx, "C-big", "web", []LineInput{{SKU: "COAT", Qty: 1, UnitPrice: p(8900)}, {SKU: "SCARF", Qty: 2, UnitPrice: p(1250)}})
			if err != nil {
				t.Fatal(err)
			}
			small, _, err := svc.Create(ctx, "C-small", "web", []LineInput{{SKU: "SOCKS", Qty: 1, UnitPrice: p(900)}})
			if err != nil {
				t.Fatal(err)
			}
			emptied, _, err := svc.Create(ctx, "C-gone", "web", []LineInput{{SKU: "HAT", Qty: 1, UnitPrice: p(3000)}})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := svc.SetLine(ctx, emptied, "web", LineInput{SKU: "HAT", Qty: 0}); err != nil {
				t.Fatal(err)
			}
			mu.Lock()
			now = now.Add(2 * time.Hour)
			at := now
			mu.Unlock()
			ab, err := svc.FindAbandoned(ctx)
			if err != nil || len(ab) != 2 || len(handed) != 2 {
				t.Fatalf("abandoned %+v %v (handed on %d)", ab, err, len(handed))
			}

			rule := func(id string, c automation.Condition) automation.Rule {
				return automation.Rule{ID: id, Enabled: true, Trigger: automation.CartAbandoned, Purpose: consent.MarketingEmail,
					Channel: consent.ChannelEmail, Conditions: []automation.Condition{c},
					Action: automation.Action{Kind: automation.ActionNATS, Subject: "crm.carts.abandoned"}}
			}
			engine := automation.NewEngine([]automation.Rule{
				rule("big-carts", automation.Condition{Field: "cart.value", Op: automation.OpGte, Value: "5000"}),
				rule("two-lines", automation.Condition{Field: "cart.lines", Op: automation.OpEq, Value: "2"}),
			})
			if engine.Rules() != 2 {
				t.Fatalf("rules: %d", engine.Rules())
			}
			matched := map[string][]string{}
			for _, ev := range AbandonedEvents(ab, at) {
				switch ev.Attrs["cart.id"] {
				case big:
					if ev.Customer != "C-big" || ev.Attrs["cart.value"] != "11400" || ev.Attrs["cart.skus"] != "COAT,SCARF" || ev.Attrs["cart.lines"] != "2" {
						t.Fatalf("big cart's event %+v", ev)
					}
				case small:
					if ev.Attrs["cart.value"] != "900" || ev.Attrs["cart.lines"] != "1" {
						t.Fatalf("small cart's event %+v", ev)
					}
				default:
					t.Fatalf("event of cart %s", ev.Attrs["cart.id"])
				}
				for k := range ev.Attrs {
					if !slices.Contains([]string{"cart.id", "cart.value", "cart.lines", "cart.skus", "cart.currency"}, k) {
						t.Fatalf("event carries %s", k)
					}
				}
				jobs, err := engine.Plan(ev, noFacts{}, nil)
				if err != nil {
					t.Fatal(err)
				}
				for _, j := range jobs {
					matched[ev.Attrs["cart.id"]] = append(matched[ev.Attrs["cart.id"]], j.Rule)
				}
			}
			if got := matched[big]; !slices.Equal(got, []string{"big-carts", "two-lines"}) || len(matched[small]) != 0 {
				t.Fatalf("rules matched: %v", matched)
			}
		})
	}
}
