// Package cachetest builds catalogs of any size, with valid GTINs, for the
// tests and benchmarks of the product cache and the down-sync. Only tests
// import it.
//
// Product i (from 0) has id Product(i) and Variants variants; variant v has
// SKU SKU(i, v) and the GTIN-14 GTIN(i*Variants+v), under the GS1 Company
// Prefix CompanyPrefix, so an EPC can be built for it with
// epc.SGTINFromGTIN(gtin, CompanyPrefixLen, serial).
package cachetest

import (
	"encoding/json"
	"fmt"

	"github.com/omnisync/omnisync/shared/downsync"
	"github.com/omnisync/omnisync/shared/gs1"
)

// The GS1 Company Prefix of generated GTINs (950 is GS1's prefix for
// examples and demonstrations).
const (
	CompanyPrefix    = "950600"
	CompanyPrefixLen = len(CompanyPrefix)
)

// Variants is how many variants (sizes) a generated product has.
const Variants = 4

var sizes = [Variants]string{"S", "M", "L", "XL"}

// GTIN returns the n-th GTIN-14 (n below 1,000,000), check digit included.
func GTIN(n int) string {
	if n < 0 || n >= 1_000_000 {
		panic(fmt.Sprintf("cachetest: GTIN %d out of range", n))
	}
	body := fmt.Sprintf("0%s%06d", CompanyPrefix, n)
	cd, err := gs1.CheckDigit(body)
	if err != nil {
		panic(err)
	}
	return body + string(cd)
}

// Product returns the id of product i.
func Product(i int) string { return fmt.Sprintf("P-%06d", i) }

// SKU returns the SKU of variant v of product i.
func SKU(i, v int) string { return fmt.Sprintf("%s-%s", Product(i), sizes[v%Variants]) }

// ProductDoc returns product i at version.
func ProductDoc(i int, version int64) downsync.ProductDoc {
	p := downsync.ProductDoc{
		ID: Product(i), Name: fmt.Sprintf("Trail runner %d", i), Brand: "Omni", Category: "footwear",
		ImageURL: fmt.Sprintf("https://img.example.com/%s.jpg", Product(i)),
		Version:  version, UpdatedMS: 1_700_000_000_000 + version,
	}
	for v := range Variants {
		p.Variants = append(p.Variants, downsync.VariantDoc{
			SKU: SKU(i, v), GTINs: []string{GTIN(i*Variants + v)}, Size: sizes[v], Colour: "navy",
			PriceMinor: 11495, Currency: "EUR",
		})
	}
	return p
}

// StockDoc returns a stock position.
func StockDoc(location, sku string, available, version int64) downsync.StockDoc {
	return downsync.StockDoc{
		SKU: sku, Location: location, OnHand: available + 1, Reserved: 1, Available: available,
		Version: version, UpdatedMS: 1_700_000_000_000 + version,
	}
}

// ReviewSummary returns product i's review summary at version.
func ReviewSummary(i int, version int64) downsync.ReviewSummary {
	return downsync.ReviewSummary{
		ProductID: Product(i), Count: 3, Average: 4.33, Distribution: [5]int64{0, 0, 0, 2, 1},
		Latest: []downsync.Review{
			{Rating: 5, Title: "Great grip", Text: "Wore them on a wet trail, no slipping.", Nickname: "ana", AtMS: 1_700_000_000_000},
		},
		Version: version, UpdatedMS: 1_700_000_000_000 + version,
	}
}

// JSON encodes v, panicking on error (the documents above always encode).
func JSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}
