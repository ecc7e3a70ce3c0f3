package store

import (
	"context"
	"fmt"
	"testing"

	"github.com/omnisync/omnisync/shared/events"
)

// TestCustomerStatementPlans checks on PostgreSQL every statement that
// joins a batch's arrays to the identity tables, as the hub runs them
// for identify events and sales naming customers and as HQ reads a
// customer: under the generic
// plan a busy hub settles on (ten array elements guessed), with the
// tables analyzed and with no statistics yet, none may read a whole
// customer table. The identity tables grow with every shopper, so a
// scan would make each batch slower as the chain's customer base grows,
// which no functional test notices (the ledger's statements have their
// own guards, ledger_plan_test.go).
func TestCustomerStatementPlans(t *testing.T) {
	s := withKeys(openPostgres(t))
	l := &identifyLoad{devs: map[int]*device{}, w: 1_000_000}
	const shoppers = 10_000
	loadIdentifyHistory(t, s, l, 0, shoppers, 5_000, true)
	ctx := context.Background()
	// Their purchases: 20,000 sales naming them.
	till := newDevice("S90", "till-1", 1)
	fillWith(t, s, 20_000, 5_000, func(i int) events.Envelope {
		l.w++
		return till.ev(l.w, events.KindSale, saleBy("S90",
			map[string]string{"loyalty": fmt.Sprintf("LC-%09d", i%shoppers)}, line("SKU-1", 1)))
	})
	big := bigTables(t, s, "cust_")
	if !big["cust_identifiers"] || !big["cust_purchases"] {
		t.Fatalf("the identity tables were not filled: %v", big)
	}
	guardPlans(t, s, []string{"cust_", "unnest"}, big, func(t *testing.T, c int) {
		// Known shoppers seen again, new ones, and sales naming both.
		var items []Item
		var envs []events.Envelope
		for i := range 40 {
			n := i * 97 % shoppers
			if i%4 == 0 {
				n = shoppers + int(l.w) + i // new
			}
			envs = append(envs, l.event(n))
		}
		d := newDevice("S91", fmt.Sprintf("till-%d", c), 1)
		for i := range 20 {
			l.w++
			envs = append(envs, d.ev(l.w, events.KindSale, saleBy("S91",
				map[string]string{"loyalty": fmt.Sprintf("LC-%09d", i*131%shoppers)}, line("SKU-1", 1))))
		}
		items = itemsOf(envs...)
		res, err := s.ApplyBatch(ctx, items)
		if err != nil || res.Applied != len(items) {
			t.Fatalf("apply: %+v %v", res, err)
		}
		// And what HQ reads of a customer (their identifiers and
		// purchases).
		if len(res.Customers) == 0 {
			t.Fatal("the batch named no customer")
		}
		if _, err := s.Customer(ctx, res.Customers[0], nil); err != nil {
			t.Fatal(err)
		}
	})
}
