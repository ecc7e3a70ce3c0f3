package store

import (
	"context"
	"fmt"
	"sort"
	"testing"
	"time"

	"github.com/omnisync/omnisync/shared/events"
)

// feedModel is what a reader of the purchase feed makes of it: each
// customer's purchases and the overall revenue and orders (AOV).
type feedModel struct {
	pos       int64
	customers map[string]map[string]bool
	revenue   int64
	orders    int64
}

func (m *feedModel) read(t *testing.T, s *Store) {
	t.Helper()
	if err := m.next(s); err != nil {
		t.Fatal(err)
	}
}

// next reads the feed to its end.
func (m *feedModel) next(s *Store) error {
	for {
		es, err := s.PurchasesAfter(context.Background(), m.pos, 3)
		if err != nil {
			return err
		}
		for _, e := range es {
			if e.Pos <= m.pos {
				return fmt.Errorf("feed went back from %d to %d", m.pos, e.Pos)
			}
			m.pos = e.Pos
			switch e.Op {
			case FeedReset:
				delete(m.customers, e.Customer)
				continue
			case FeedSale:
				m.revenue += e.Amount
				m.orders++
			case FeedReturn:
				m.revenue -= e.Amount
			}
			if e.Customer == "" {
				continue
			}
			if m.customers[e.Customer] == nil {
				m.customers[e.Customer] = map[string]bool{}
			}
			m.customers[e.Customer][e.EventID] = true
		}
		if len(es) < 3 {
			return nil
		}
	}
}

// want is the store's own attribution of the customers' purchases.
func wantPurchases(t *testing.T, s *Store, ids ...string) map[string]map[string]bool {
	t.Helper()
	out := map[string]map[string]bool{}
	for _, id := range ids {
		v := view(t, s, id)
		if v.ID != id || len(v.Purchases) == 0 {
			continue
		}
		out[id] = map[string]bool{}
		for _, p := range v.Purchases {
			out[id][p.EventID] = true
		}
	}
	return out
}

func keysSorted(m map[string]map[string]bool) []string {
	var out []string
	for k, v := range m {
		for e := range v {
			out = append(out, k+"/"+e)
		}
	}
	sort.Strings(out)
	return out
}

// Ensure that a reader of the purchase feed attributes every purchase to
// the customer the store does, through a merge, an unmerge and an
// erasure, and counts each sale once in AOV; and that an erased
// customer's entries lose their id.
func TestPurchaseFeed_MergeUnmergeErase(t *testing.T) {
	forEachStore(t, func(t *testing.T, s *Store) {
		withKeys(s)
		ctx := context.Background()
		a := newDevice("S1", "pos-1", 1)
		b := newDevice("online", "webshop", 1)
		m := &feedModel{customers: map[string]map[string]bool{}}
		apply(t, s,
			a.ev(1000, events.KindIdentify, identify(map[string]string{"loyalty": "LC-1", "email": "ann@shop.test"})),
			a.ev(1300, events.KindSale, saleBy("S1", map[string]string{"loyalty": "LC-1"}, events.Line{SKU: "A", Qty: 1, UnitPrice: price(1000)})),
			b.ev(2000, events.KindIdentify, identify(map[string]string{"account": "W-9", "phone": "+821034561122"})),
			b.ev(2300, events.KindSale, saleBy("online", map[string]string{"account": "W-9"}, events.Line{SKU: "B", Qty: 3, UnitPrice: price(200)})),
			b.ev(2400, events.KindSale, saleBy("online", map[string]string{"account": "W-9"}, events.Line{SKU: "B", Qty: 1, UnitPrice: price(200)})),
			a.ev(2500, events.KindSale, sale("S1", events.Line{SKU: "A", Qty: 1, UnitPrice: price(999)})), // anonymous
		)
		ca, cb := find(t, s, "loyalty:LC-1"), find(t, s, "account:W-9")
		check := func(stage string) {
			t.Helper()
			m.read(t, s)
			want := wantPurchases(t, s, ca, cb)
			if got, w := keysSorted(m.customers), keysSorted(want); !reflectDeepEqual(got, w) {
				t.Fatalf("%s: feed attributes %v, store %v", stage, got, w)
			}
			if m.revenue != 1800 || m.orders != 3 {
				t.Fatalf("%s: AOV from the feed %d/%d, want 1800/3", stage, m.revenue, m.orders)
			}
		}
		check("before the merge")
		apply(t, s, b.ev(3000, events.KindIdentify, identify(map[string]string{"email": "ann@shop.test", "account": "W-9"})))
		if find(t, s, "account:W-9") != ca {
			t.Fatal("not merged")
		}
		check("after the merge")
		if _, ok := m.customers[cb]; ok {
			t.Fatalf("the absorbed id keeps purchases: %v", m.customers)
		}
		if _, err := s.Unmerge(ctx, ca, "", "hq-anna", ""); err != nil {
			t.Fatal(err)
		}
		check("after the unmerge")
		if len(m.customers[ca]) != 1 || len(m.customers[cb]) != 2 {
			t.Fatalf("after the unmerge: %v", m.customers)
		}
		erasedSales := map[string]bool{}
		for _, p := range view(t, s, cb).Purchases {
			erasedSales[p.EventID] = true
		}
		if _, err := s.EraseCustomer(ctx, cb, "hq-dpo", ""); err != nil {
			t.Fatal(err)
		}
		m.read(t, s)
		if _, ok := m.customers[cb]; ok || len(m.customers[ca]) != 1 {
			t.Fatalf("after the erasure: %v", m.customers)
		}
		// A reader starting now sees the same, and nothing of the erased
		// customer but the id of a reset.
		fresh := &feedModel{customers: map[string]map[string]bool{}}
		fresh.read(t, s)
		if got, w := keysSorted(fresh.customers), keysSorted(m.customers); !reflectDeepEqual(got, w) {
			t.Fatalf("from the start: %v, following: %v", got, w)
		}
		if fresh.revenue != 1800 || fresh.orders != 3 {
			t.Fatalf("AOV from the start %d/%d", fresh.revenue, fresh.orders)
		}
		es, err := s.PurchasesAfter(ctx, 0, 1000)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range es {
			if e.Op != FeedReset && (e.Customer == cb || erasedSales[e.EventID] && e.Customer != "") {
				t.Fatalf("erased customer's entry kept its id: %+v", e)
			}
		}
	})
}

// BenchmarkPurchaseFeedSales measures sales naming known customers
// applied per second on PostgreSQL, in batches of 1,000, each one
// attributed and appended to the purchase feed, and reading the feed
// back; the purchases step (attribution and feed) is reported apart.
func BenchmarkPurchaseFeedSales(b *testing.B) {
	s := withKeys(openPostgres(b))
	const customers, batch = 10_000, 1000
	l := &identifyLoad{devs: map[int]*device{}, w: 1_000_000}
	l.apply(b, s, 0, customers, 5000)
	till := newDevice("S1", "pos-9", 1)
	steps := map[string]time.Duration{}
	s.ObserveApply(func(step string, d time.Duration) { steps[step] += d })
	b.ResetTimer()
	start := time.Now()
	w := int64(2_000_000)
	for i := 0; i < b.N; i++ {
		envs := make([]events.Envelope, 0, batch)
		for k := range batch {
			w++
			c := (i*batch + k) % customers
			envs = append(envs, till.ev(w, events.KindSale, saleBy("S1", map[string]string{"loyalty": fmt.Sprintf("LC-%09d", c)},
				events.Line{SKU: "A", Qty: 1, UnitPrice: price(1000)})))
		}
		res, err := s.ApplyBatch(context.Background(), itemsOf(envs...))
		if err != nil || res.Applied != batch {
			b.Fatalf("apply: %+v %v", res, err)
		}
	}
	elapsed := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(b.N*batch)/elapsed.Seconds(), "sales/s")
	b.ReportMetric(steps["purchases"].Seconds()*1000/float64(b.N), "purchases-ms/batch")
	rs := time.Now()
	var pos int64
	n := 0
	for {
		es, err := s.PurchasesAfter(context.Background(), pos, 10_000)
		if err != nil {
			b.Fatal(err)
		}
		n += len(es)
		if len(es) < 10_000 {
			break
		}
		pos = es[len(es)-1].Pos
	}
	b.ReportMetric(float64(n)/time.Since(rs).Seconds(), "feed-reads/s")
}
