package store

import (
	"context"
	"fmt"
	"slices"
	"testing"

	"github.com/omnisync/omnisync/cloud/internal/catalog"
	"github.com/omnisync/omnisync/shared/events"
)

// Ensure that ListStock with Carried lists, at zero, the catalog variants
// a location carries (another variant of their product has a position
// there) but has no row for, merged in (sku, location) order with the
// rows, filtered by location and by Below, and paged by the same keyset;
// that a product a location never had stays off its list; and that
// without Carried nothing changes.
func TestListStock_Carried(t *testing.T) {
	forEachStoreAtOnce(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		importOK(t, s, []catalog.Variant{
			variant("A-S", "P-A", 1), variant("A-M", "P-A", 2), variant("A-L", "P-A", 3),
			variant("B-M", "P-B", 4), variant("B-L", "P-B", 5),
			variant("C-1", "P-C", 6),
		})
		s1, s2 := newDevice("S1", "pos-1", 1), newDevice("S2", "pos-1", 1)
		apply(t, s,
			s1.ev(100, events.KindReceipt, sale("S1", line("A-M", 10), line("A-L", 2))),
			s2.ev(100, events.KindReceipt, sale("S2", line("B-M", 1), line("A-S", 7))))
		keys := func(rows []Stock) []string {
			var out []string
			for _, r := range rows {
				if r.SKU != "A-M" && r.SKU != "A-L" && r.SKU != "A-S" && r.SKU != "B-M" && r.SKU != "B-L" {
					t.Fatalf("unexpected row %+v", r)
				}
				out = append(out, r.SKU+"@"+r.Location)
			}
			return out
		}
		five, zero := int64(5), int64(0)
		for _, c := range []struct {
			name string
			q    StockQuery
			want []string
		}{
			{"one store", StockQuery{Location: "S1", Below: &five, Carried: true}, []string{"A-L@S1", "A-S@S1"}},
			{"every store", StockQuery{Below: &five, Carried: true}, []string{"A-L@S1", "A-L@S2", "A-M@S2", "A-S@S1", "B-L@S2", "B-M@S2"}},
			{"a manager's stores", StockQuery{Locations: []string{"S2"}, Below: &five, Carried: true}, []string{"A-L@S2", "A-M@S2", "B-L@S2", "B-M@S2"}},
			{"no stores", StockQuery{Locations: []string{}, Carried: true}, nil},
			{"every position", StockQuery{Location: "S1", Carried: true}, []string{"A-L@S1", "A-M@S1", "A-S@S1"}},
			{"below zero", StockQuery{Below: &zero, Carried: true}, nil},
			{"rows only", StockQuery{Below: &five}, []string{"A-L@S1", "B-M@S2"}},
		} {
			rows, err := s.ListStock(ctx, c.q)
			if err != nil {
				t.Fatalf("%s: %v", c.name, err)
			}
			if got := keys(rows); !slices.Equal(got, c.want) {
				t.Fatalf("%s: %v, want %v", c.name, got, c.want)
			}
		}
		// A zero row is a position at zero, never counted.
		rows, err := s.ListStock(ctx, StockQuery{Location: "S1", Below: &five, Carried: true})
		if err != nil {
			t.Fatal(err)
		}
		if z := rows[1]; z != (Stock{SKU: "A-S", Location: "S1"}) {
			t.Fatalf("zero row %+v", z)
		}
		// Pages of two through the keyset: the same list.
		var paged []Stock
		q := StockQuery{Below: &five, Carried: true, Limit: 2}
		for {
			page, err := s.ListStock(ctx, q)
			if err != nil {
				t.Fatal(err)
			}
			paged = append(paged, page...)
			if len(page) < q.Limit {
				break
			}
			q.AfterSKU, q.AfterLocation = page[len(page)-1].SKU, page[len(page)-1].Location
		}
		if got := keys(paged); !slices.Equal(got, []string{"A-L@S1", "A-L@S2", "A-M@S2", "A-S@S1", "B-L@S2", "B-M@S2"}) {
			t.Fatalf("paged: %v", got)
		}
	})
}

// BenchmarkListStockCarried lists low stock with the carried variants on
// PostgreSQL over 800,000 positions (100 stores, 10,000 variants of 1,000
// products, each store missing a fifth of the sizes of every product): for
// one store, as its console page asks, and for every store, which is why
// HQ's overview lists rows only.
func BenchmarkListStockCarried(b *testing.B) {
	s := openPostgres(b)
	var vs []catalog.Variant
	for p := range 1000 {
		for z := range 10 {
			vs = append(vs, catalog.Variant{SKU: fmt.Sprintf("SKU-%05d", p*10+z), ProductID: fmt.Sprintf("P%04d", p), GTINs: []string{testGTIN(p*10 + z)},
				Name: fmt.Sprintf("Shirt model%d", p), Brand: "Acme", Size: fmt.Sprint(z), PriceMinor: 100, Currency: "EUR"})
		}
	}
	importOK(b, s, vs)
	ctx := context.Background()
	for _, q := range []string{
		`INSERT INTO stock (sku, location, on_hand, available)
SELECT 'SKU-' || lpad((g % 10000)::text, 5, '0'), 'S' || lpad((g / 10000)::text, 3, '0'), g % 17, g % 17
FROM generate_series(0, 999999) g WHERE (g % 10000 + g / 10000) % 5 <> 0`,
		`ANALYZE stock`,
	} {
		if _, err := s.w.ExecContext(ctx, q); err != nil {
			b.Fatal(err)
		}
	}
	below := int64(5)
	for _, c := range []struct {
		name string
		q    StockQuery
	}{
		{"one store", StockQuery{Location: "S042", Below: &below, Limit: 500, Carried: true}},
		{"every store", StockQuery{Below: &below, Limit: 500, Carried: true}},
	} {
		b.Run(c.name, func(b *testing.B) {
			for b.Loop() {
				rows, err := s.ListStock(ctx, c.q)
				if err != nil || len(rows) == 0 {
					b.Fatalf("%d rows, %v", len(rows), err)
				}
			}
		})
	}
}
