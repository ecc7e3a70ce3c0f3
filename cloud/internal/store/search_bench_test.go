package store

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/omnisync/omnisync/cloud/internal/catalog"
)

// BenchmarkSearchCatalog searches a catalog of 20,000 variants (2,000
// products of 10 sizes) by a common word, a rare word pair, a SKU and a
// GTIN, on SQLite. Run: go test -run - -bench SearchCatalog -benchtime 200x
// ./cloud/internal/store/
func BenchmarkSearchCatalog(b *testing.B) {
	s := openSQLite(b)
	var vs []catalog.Variant
	for p := range 2000 {
		for z := range 10 {
			n := p*10 + z
			vs = append(vs, catalog.Variant{SKU: fmt.Sprintf("SKU-%05d-%d", p, z), ProductID: fmt.Sprintf("P%05d", p), GTINs: []string{testGTIN(n)},
				Name: fmt.Sprintf("Shirt model%d", p), Brand: fmt.Sprintf("Brand%d", p%50), Size: fmt.Sprint(z), PriceMinor: 100, Currency: "EUR"})
		}
	}
	importOK(b, s, vs)
	ctx := context.Background()
	for _, q := range []string{"shirt", "brand34 model1234", "SKU-01234-5", testGTIN(777)} {
		b.Run(q, func(b *testing.B) {
			for b.Loop() {
				if docs, err := s.SearchCatalog(ctx, q, 20); err != nil || len(docs) == 0 {
					b.Fatalf("%d %v", len(docs), err)
				}
			}
		})
	}
}

// BenchmarkSearchAndGrid1M is what the console's search and product page
// read, over 1,000,000 stock positions (10,000 SKUs at 100 locations) on
// SQLite: a search by a name word, then the grid of the product found
// (10 variants × 100 locations) and its sales over 28 days.
//
//	go test -run - -bench SearchAndGrid1M -benchtime 100x ./cloud/internal/store/
func BenchmarkSearchAndGrid1M(b *testing.B) {
	s := openSQLite(b)
	var vs []catalog.Variant
	for p := range 1000 {
		for z := range 10 {
			vs = append(vs, catalog.Variant{SKU: fmt.Sprintf("SKU-%05d", p*10+z), ProductID: fmt.Sprintf("P%04d", p), GTINs: []string{testGTIN(p*10 + z)},
				Name: fmt.Sprintf("Shirt model%d", p), Brand: "Acme", Size: fmt.Sprint(z), PriceMinor: 100, Currency: "EUR"})
		}
	}
	importOK(b, s, vs)
	ctx := context.Background()
	if _, err := s.w.ExecContext(ctx, `WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < 999999)
INSERT INTO stock (sku, location, on_hand, available) SELECT printf('SKU-%05d', i / 100), printf('S%03d', i % 100), i % 17, i % 17 FROM n`); err != nil {
		b.Fatal(err)
	}
	since := time.Now().Add(-28 * 24 * time.Hour)
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		docs, err := s.SearchCatalog(ctx, fmt.Sprintf("model%d", 100+i%800), 20)
		if err != nil || len(docs) == 0 {
			b.Fatalf("%d %v", len(docs), err)
		}
		var skus []string
		for _, v := range docs[0].Variants {
			skus = append(skus, v.SKU)
		}
		st, err := s.StockForSKUs(ctx, skus)
		if err != nil || len(st) != 1000 {
			b.Fatalf("%d positions, %v", len(st), err)
		}
		if _, err := s.SalesSince(ctx, skus, since); err != nil {
			b.Fatal(err)
		}
	}
}
