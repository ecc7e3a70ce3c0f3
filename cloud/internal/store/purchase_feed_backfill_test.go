package store

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/omnisync/omnisync/shared/events"
)

// Ensure that the migration that makes the purchase feed logs the
// purchases recorded before it, by the customer they belong to, each once.
func TestPurchaseFeed_MigrationBackfill(t *testing.T) {
	forEachStore(t, func(t *testing.T, s *Store) {
		withKeys(s)
		ctx := context.Background()
		a := newDevice("S1", "pos-1", 1)
		apply(t, s,
			a.ev(1000, events.KindIdentify, identify(map[string]string{"loyalty": "LC-1", "email": "ann@shop.test"})),
			a.ev(1100, events.KindSale, saleBy("S1", map[string]string{"loyalty": "LC-1"}, events.Line{SKU: "A", Qty: 1, UnitPrice: price(700)})),
			a.ev(1200, events.KindSale, saleBy("S1", map[string]string{"email": "ann@shop.test"}, events.Line{SKU: "A", Qty: 2, UnitPrice: price(700)})),
			a.ev(1300, events.KindIdentify, identify(map[string]string{"loyalty": "LC-2"})),
			a.ev(1400, events.KindSale, saleBy("S1", map[string]string{"loyalty": "LC-2"}, events.Line{SKU: "B", Qty: 1, UnitPrice: price(300)})),
		)
		c1, c2 := find(t, s, "loyalty:LC-1"), find(t, s, "loyalty:LC-2")
		var mig string
		for _, m := range migrations {
			if strings.Contains(m, "CREATE TABLE cust_feed_head") {
				mig = m
			}
		}
		// The store as it was before the migration: no log.
		for _, q := range []string{"DELETE FROM cust_feed", "DELETE FROM cust_feed_attr", "DELETE FROM cust_feed_head"} {
			if _, err := s.w.ExecContext(ctx, q); err != nil {
				t.Fatal(err)
			}
		}
		for _, st := range splitStatements(s.d.ddl(mig)) {
			if strings.HasPrefix(st, "INSERT") {
				if _, err := s.w.ExecContext(ctx, st); err != nil {
					t.Fatalf("%v\n%s", err, st)
				}
			}
		}
		m := &feedModel{customers: map[string]map[string]bool{}}
		m.read(t, s)
		if got, w := keysSorted(m.customers), keysSorted(wantPurchases(t, s, c1, c2)); !reflectDeepEqual(got, w) || m.revenue != 2400 || m.orders != 3 {
			t.Fatalf("backfilled feed %v (AOV %d/%d), store %v", got, m.revenue, m.orders, w)
		}
		// New purchases go on after the backfilled ones.
		apply(t, s, a.ev(1500, events.KindSale, saleBy("S1", map[string]string{"loyalty": "LC-2"}, events.Line{SKU: "B", Qty: 1, UnitPrice: price(100)})))
		m.read(t, s)
		if m.pos != 4 || m.orders != 4 || len(m.customers[c2]) != 2 {
			t.Fatalf("after the backfill: pos %d, %d orders, %v", m.pos, m.orders, m.customers)
		}
	})
}

// Ensure that a reader following the purchase feed while four replicas
// apply sales and merges at once misses nothing and counts nothing twice:
// it ends with what a reader from the start sees, and with the store's
// attribution (positions in commit order).
func TestPurchaseFeed_ConcurrentReplicas(t *testing.T) {
	onReplicas(t, 4, func(t *testing.T, stores []*Store, _ *atomic.Int64) {
		for _, s := range stores {
			withKeys(s)
		}
		const customers, perReplica, batch = 12, 240, 20
		// Even customers have a card, odd ones a web shop account; each
		// an e-mail.
		ref := func(c int) map[string]string {
			if c%2 == 0 {
				return map[string]string{"loyalty": fmt.Sprintf("LC-%d", c), "email": fmt.Sprintf("c%d@shop.test", c)}
			}
			return map[string]string{"account": fmt.Sprintf("W-%d", c), "email": fmt.Sprintf("c%d@shop.test", c)}
		}
		hq := newDevice("S0", "pos-0", 1)
		var envs []events.Envelope
		for c := range customers {
			envs = append(envs, hq.ev(int64(100+c), events.KindIdentify, identify(ref(c))))
		}
		apply(t, stores[0], envs...)
		ids := make([]string, customers)
		for c := range customers {
			ids[c] = find(t, stores[0], fmt.Sprintf("email:c%d@shop.test", c))
		}
		follow := &feedModel{customers: map[string]map[string]bool{}}
		done := make(chan struct{})
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-done:
					return
				default:
				}
				if err := follow.next(stores[len(stores)-1]); err != nil {
					t.Error(err)
					return
				}
			}
		}()
		var apps sync.WaitGroup
		for r, s := range stores {
			apps.Add(1)
			go func() {
				defer apps.Done()
				d := newDevice(fmt.Sprintf("S%d", r+1), "pos-1", 1)
				for lo := 0; lo < perReplica; lo += batch {
					var envs []events.Envelope
					for i := lo; i < lo+batch; i++ {
						w := int64(1000 + i)
						if r == 0 && i%60 == 59 {
							// Now and then the web shop's login merges a
							// card's customer with an account's.
							k := i / 60
							envs = append(envs, d.ev(w, events.KindIdentify, identify(map[string]string{"email": fmt.Sprintf("c%d@shop.test", 2*k), "account": fmt.Sprintf("W-%d", 2*k+1)})))
							continue
						}
						envs = append(envs, d.ev(w, events.KindSale, saleBy(d.store, ref((i+r)%customers),
							events.Line{SKU: "A", Qty: 1, UnitPrice: price(int64(100 + r))})))
					}
					if _, err := s.ApplyBatch(context.Background(), itemsOf(envs...)); err != nil {
						t.Error(err)
						return
					}
				}
			}()
		}
		apps.Wait()
		close(done)
		wg.Wait()
		follow.read(t, stores[0])
		fresh := &feedModel{customers: map[string]map[string]bool{}}
		fresh.read(t, stores[0])
		want := wantPurchases(t, stores[0], ids...)
		if got, w := keysSorted(follow.customers), keysSorted(want); !reflectDeepEqual(got, w) {
			t.Fatalf("following reader %d entries, store %d", len(got), len(w))
		}
		if got, w := keysSorted(fresh.customers), keysSorted(want); !reflectDeepEqual(got, w) {
			t.Fatalf("reader from the start %d entries, store %d", len(got), len(w))
		}
		if follow.orders != fresh.orders || follow.revenue != fresh.revenue || follow.orders == 0 {
			t.Fatalf("AOV following %d/%d, from the start %d/%d", follow.revenue, follow.orders, fresh.revenue, fresh.orders)
		}
		if fresh.pos <= fresh.orders {
			t.Fatalf("%d feed entries for %d sales: no merge re-attributed anything", fresh.pos, fresh.orders)
		}
		t.Logf("%d sales by %d replicas, %d feed entries", fresh.orders, len(stores), fresh.pos)
	})
}
