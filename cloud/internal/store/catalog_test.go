package store

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/omnisync/omnisync/cloud/internal/catalog"
	"github.com/omnisync/omnisync/shared/downsync"
	"github.com/omnisync/omnisync/shared/gs1"
)

// testGTIN returns the n-th of a series of valid GTIN-14s.
func testGTIN(n int) string {
	body := fmt.Sprintf("0599999%06d", n)
	cd, err := gs1.CheckDigit(body)
	if err != nil {
		panic(err)
	}
	return body + string(cd)
}

// variant returns a valid variant of product pid with one GTIN.
func variant(sku, pid string, gtin int) catalog.Variant {
	return catalog.Variant{SKU: sku, ProductID: pid, GTINs: []string{testGTIN(gtin)}, Name: "Tee " + pid, Brand: "Kestrel",
		Size: "M", Colour: "Black", PriceMinor: 1999, Currency: "EUR", Category: "Tops"}
}

func importOK(t testing.TB, s *Store, vs []catalog.Variant) ImportResult {
	t.Helper()
	res, err := s.ImportCatalog(context.Background(), vs, ImportOptions{Source: "test"})
	if err != nil {
		t.Fatalf("ImportCatalog: %v", err)
	}
	return res
}

func productDoc(t testing.TB, s *Store, id string) downsync.ProductDoc {
	t.Helper()
	docs, err := s.ProductDocs(context.Background(), []string{id})
	if err != nil {
		t.Fatal(err)
	}
	if len(docs) != 1 {
		t.Fatalf("product %s: %d docs", id, len(docs))
	}
	return docs[0]
}

func skuOf(t testing.TB, s *Store, gtin int) string {
	t.Helper()
	sku, ok, err := s.SKUByGTIN(context.Background(), testGTIN(gtin))
	if err != nil {
		t.Fatal(err)
	}
	if !ok {
		return ""
	}
	return sku
}

// Ensure that an import stores products, variants and the GTIN index, that
// importing the same variants again changes nothing, and that a change
// bumps only the products it touches.
func TestImportCatalog_Versions(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		clock := testNow
		s.now = func() time.Time { return clock }
		base := []catalog.Variant{
			variant("P1-M", "P1", 1), variant("P1-L", "P1", 2),
			variant("P2-M", "P2", 3),
			variant("P3-M", "P3", 4),
		}
		base[1].Size = "L"
		base[1].GTINs = append(base[1].GTINs, testGTIN(5))
		res := importOK(t, s, base)
		if res.Variants != 4 || res.Created != 4 || res.Unchanged != 0 || !slices.Equal(res.ProductsChanged, []string{"P1", "P2", "P3"}) {
			t.Fatalf("first import: %+v", res)
		}
		p1 := productDoc(t, s, "P1")
		if p1.Version != 1 || p1.UpdatedMS != testNow.UnixMilli() || p1.Name != "Tee P1" || p1.Brand != "Kestrel" || p1.Category != "Tops" {
			t.Fatalf("P1 = %+v", p1)
		}
		if len(p1.Variants) != 2 || p1.Variants[0].SKU != "P1-L" || p1.Variants[1].SKU != "P1-M" ||
			!slices.Equal(p1.Variants[0].GTINs, []string{testGTIN(2), testGTIN(5)}) || p1.Variants[0].PriceMinor != 1999 || p1.Variants[0].Size != "L" {
			t.Fatalf("P1 variants (by SKU) = %+v", p1.Variants)
		}
		if got := skuOf(t, s, 5); got != "P1-L" {
			t.Fatalf("second GTIN of P1-L names %q", got)
		}

		tests := []struct {
			name    string
			edit    func(vs []catalog.Variant) []catalog.Variant
			changed []string
			unch    int
			version map[string]int64 // expected versions after the import
		}{
			{"same file again", func(vs []catalog.Variant) []catalog.Variant { return vs }, []string{}, 4,
				map[string]int64{"P1": 1, "P2": 1, "P3": 1}},
			{"a subset changes nothing", func(vs []catalog.Variant) []catalog.Variant { return vs[2:3] }, []string{}, 1,
				map[string]int64{"P1": 1, "P2": 1, "P3": 1}},
			{"price change", func(vs []catalog.Variant) []catalog.Variant { vs[2].PriceMinor = 1499; return vs }, []string{"P2"}, 3,
				map[string]int64{"P1": 1, "P2": 2, "P3": 1}},
			{"product field from first variant", func(vs []catalog.Variant) []catalog.Variant { vs[0].Brand = "Northwind"; return vs }, []string{"P1"}, 3,
				map[string]int64{"P1": 2, "P2": 2, "P3": 1}},
			{"image of a later variant is not the product's", func(vs []catalog.Variant) []catalog.Variant {
				vs[1].ImageURL = "https://img.example.com/p1-l.jpg" // a variant change still bumps P1
				return vs
			}, []string{"P1"}, 3, map[string]int64{"P1": 3, "P2": 2, "P3": 1}},
			{"variant moves to another product", func(vs []catalog.Variant) []catalog.Variant { vs[3].ProductID = "P2"; return vs[3:] },
				[]string{"P2", "P3"}, 0, map[string]int64{"P1": 3, "P2": 3, "P3": 2}},
		}
		vs := slices.Clone(base)
		for _, tt := range tests {
			clock = clock.Add(time.Minute)
			in := tt.edit(slices.Clone(vs))
			res := importOK(t, s, in)
			if !slices.Equal(res.ProductsChanged, tt.changed) || res.Unchanged != tt.unch || res.Variants != len(in) {
				t.Fatalf("%s: %+v, want changed %v, unchanged %d", tt.name, res, tt.changed, tt.unch)
			}
			for id, want := range tt.version {
				d := productDoc(t, s, id)
				if d.Version != want {
					t.Fatalf("%s: %s version %d, want %d", tt.name, id, d.Version, want)
				}
				if slices.Contains(tt.changed, id) && d.UpdatedMS != clock.UnixMilli() {
					t.Fatalf("%s: %s updated_ms %d, want now %d", tt.name, id, d.UpdatedMS, clock.UnixMilli())
				}
				if !slices.Contains(tt.changed, id) && d.UpdatedMS == clock.UnixMilli() {
					t.Fatalf("%s: unchanged %s got updated_ms now", tt.name, id)
				}
			}
			// The next case starts from what is stored.
			for _, v := range in {
				i := slices.IndexFunc(vs, func(o catalog.Variant) bool { return o.SKU == v.SKU })
				vs[i] = v
			}
		}
		if d := productDoc(t, s, "P3"); len(d.Variants) != 0 {
			t.Fatalf("P3 still lists %+v after its variant moved", d.Variants)
		}
		if d := productDoc(t, s, "P2"); len(d.Variants) != 2 || d.Variants[1].SKU != "P3-M" || d.Variants[0].PriceMinor != 1499 {
			t.Fatalf("P2 = %+v", d.Variants)
		}
		p, ok, err := s.ProductBySKU(ctx, "P3-M")
		if err != nil || !ok || p.ID != "P2" {
			t.Fatalf("ProductBySKU(P3-M) = %v %v %v", p.ID, ok, err)
		}
		if _, ok, err := s.ProductBySKU(ctx, "NOPE"); ok || err != nil {
			t.Fatalf("ProductBySKU(NOPE) = %v %v", ok, err)
		}
		docs, err := s.ProductDocs(ctx, []string{"P3", "NOPE", "P1", "P3"})
		if err != nil || len(docs) != 2 || docs[0].ID != "P3" || docs[1].ID != "P1" {
			t.Fatalf("ProductDocs in order asked: %v %v", docs, err)
		}
		products, variants, err := s.CatalogStats(ctx)
		if err != nil || products != 3 || variants != 4 {
			t.Fatalf("stats %d %d %v", products, variants, err)
		}
		imps, err := s.CatalogImports(ctx, 3)
		if err != nil || len(imps) != 3 || imps[0].ProductsChanged != 2 || imps[0].RowsAccepted != 1 || imps[0].Source != "test" ||
			imps[0].Mode != "all" || !imps[0].At.Equal(clock) || imps[0].ID <= imps[1].ID {
			t.Fatalf("imports %+v %v", imps, err)
		}
		changedIDs, _, err := s.ChangedProducts(ctx, Cursor{MS: clock.UnixMilli()}, 10)
		if err != nil || !slices.Equal(changedIDs, []string{"P2", "P3"}) {
			t.Fatalf("ChangedProducts since the last import = %v %v", changedIDs, err)
		}
	})
}

// Ensure that GTINs move between SKUs only when the import re-assigns
// them, that a GTIN a variant drops leaves the index, and that a conflict
// stores nothing and names the GTIN and both SKUs.
func TestImportCatalog_GTINs(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		importOK(t, s, []catalog.Variant{variant("A", "P", 1), variant("B", "P", 2), variant("C", "Q", 3)})
		withGTINs := func(v catalog.Variant, gs ...int) catalog.Variant {
			v.GTINs = nil
			for _, g := range gs {
				v.GTINs = append(v.GTINs, testGTIN(g))
			}
			return v
		}
		tests := []struct {
			name      string
			in        []catalog.Variant
			conflicts []GTINConflict
			owners    map[int]string // GTIN number -> SKU ("" = none) afterwards
		}{
			{"new SKU takes a held GTIN", []catalog.Variant{variant("D", "Q", 1)},
				[]GTINConflict{{GTIN: testGTIN(1), SKU: "D", HeldBy: "A", Line: 1}}, map[int]string{1: "A"}},
			{"two conflicts, listed in import order", []catalog.Variant{variant("E", "Q", 9), withGTINs(variant("D", "Q", 0), 3, 2)},
				[]GTINConflict{{GTIN: testGTIN(2), SKU: "D", HeldBy: "B", Line: 2}, {GTIN: testGTIN(3), SKU: "D", HeldBy: "C", Line: 2}}, map[int]string{2: "B", 3: "C", 9: ""}},
			{"swap within the import", []catalog.Variant{variant("A", "P", 2), variant("B", "P", 1)}, nil,
				map[int]string{1: "B", 2: "A"}},
			{"drop a GTIN", []catalog.Variant{withGTINs(variant("A", "P", 0), 2, 4)}, nil,
				map[int]string{2: "A", 4: "A"}},
			{"dropped GTIN leaves the index", []catalog.Variant{withGTINs(variant("A", "P", 0), 4)}, nil,
				map[int]string{2: "", 4: "A"}},
			{"free GTIN can be taken", []catalog.Variant{withGTINs(variant("D", "Q", 0), 2)}, nil,
				map[int]string{2: "D"}},
			{"re-assigned by its holder in the same import", []catalog.Variant{withGTINs(variant("C", "Q", 0), 5), variant("E", "Q", 3)}, nil,
				map[int]string{3: "E", 5: "C"}},
		}
		for _, tt := range tests {
			before, _, _ := s.CatalogStats(ctx)
			_, err := s.ImportCatalog(ctx, tt.in, ImportOptions{})
			var ce *GTINConflictError
			switch {
			case tt.conflicts == nil && err != nil:
				t.Fatalf("%s: %v", tt.name, err)
			case tt.conflicts != nil && (!errors.As(err, &ce) || !errors.Is(err, ErrInvalid)):
				t.Fatalf("%s: err %v, want a GTINConflictError", tt.name, err)
			case tt.conflicts != nil:
				if !slices.Equal(ce.Conflicts, tt.conflicts) {
					t.Fatalf("%s: conflicts %+v, want %+v", tt.name, ce.Conflicts, tt.conflicts)
				}
				if after, _, _ := s.CatalogStats(ctx); after != before {
					t.Fatalf("%s: a refused import stored products (%d -> %d)", tt.name, before, after)
				}
			}
			for g, want := range tt.owners {
				if got := skuOf(t, s, g); got != want {
					t.Fatalf("%s: GTIN %d belongs to %q, want %q", tt.name, g, got, want)
				}
			}
		}
		// The conflict error names the GTIN and both SKUs.
		_, err := s.ImportCatalog(ctx, []catalog.Variant{variant("Z", "Q", 8), variant("Y", "Q", 5)}, ImportOptions{})
		var ce *GTINConflictError
		if !errors.As(err, &ce) || !slices.Equal(ce.SKUs(), []string{"Y"}) {
			t.Fatalf("err %v", err)
		}
		if msg := err.Error(); msg != "store: GTIN "+testGTIN(5)+" given to SKU Y is held by SKU C, which this import does not re-assign" {
			t.Fatalf("message %q", msg)
		}
		// A zero-suppressed GTIN finds its SKU too.
		if sku, ok, err := s.SKUByGTIN(ctx, gs1.ShortestGTIN(testGTIN(4))); err != nil || !ok || sku != "A" {
			t.Fatalf("SKUByGTIN(GTIN-13) = %q %v %v", sku, ok, err)
		}
	})
}

// Ensure that variants breaking the catalog rules, or repeating a SKU or a
// GTIN, are refused whole.
func TestImportCatalog_Invalid(t *testing.T) {
	t.Parallel()
	s := openSQLite(t)
	bad := variant("X", "P", 1)
	bad.GTINs = []string{"04006381333932"}
	tests := []struct {
		name string
		in   []catalog.Variant
	}{
		{"bad check digit", []catalog.Variant{bad}},
		{"SKU twice", []catalog.Variant{variant("A", "P", 1), variant("A", "P", 2)}},
		{"GTIN twice", []catalog.Variant{variant("A", "P", 1), variant("B", "P", 1)}},
		{"no name", []catalog.Variant{func() catalog.Variant { v := variant("A", "P", 1); v.Name = ""; return v }()}},
	}
	for _, tt := range tests {
		if _, err := s.ImportCatalog(context.Background(), tt.in, ImportOptions{}); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: %v, want ErrInvalid", tt.name, err)
		}
	}
	if p, v, _ := s.CatalogStats(context.Background()); p != 0 || v != 0 {
		t.Fatalf("stored %d products, %d variants", p, v)
	}
}

// Ensure that the sample catalog imports whole, then not at all again.
func TestImportCatalog_Sample(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, s *Store) {
		vs := catalog.Sample(7, 300)
		res := importOK(t, s, vs)
		if res.Created != len(vs) || len(res.ProductsChanged) != 300 {
			t.Fatalf("%+v", res)
		}
		res = importOK(t, s, vs)
		if res.Unchanged != len(vs) || len(res.ProductsChanged) != 0 {
			t.Fatalf("again: %+v", res)
		}
		p, v, err := s.CatalogStats(context.Background())
		if err != nil || p != 300 || v != int64(len(vs)) {
			t.Fatalf("stats %d %d %v", p, v, err)
		}
	})
}

// BenchmarkImportCatalog imports 100,000 sample variants into an empty
// store (create), again unchanged (unchanged), and with every price
// changed (update), and reports variants/s for each.
func BenchmarkImportCatalog(b *testing.B) {
	vs := catalog.Sample(1, 23000)[:100_000]
	b.Run("sqlite", func(b *testing.B) { benchImport(b, vs, func() *Store { return openSQLite(b) }) })
	b.Run("postgres", func(b *testing.B) { benchImport(b, vs, func() *Store { return openPostgres(b) }) })
}

func benchImport(b *testing.B, vs []catalog.Variant, open func() *Store) {
	ctx := context.Background()
	var create, unchanged, update time.Duration
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		s := open()
		b.StartTimer()
		for _, step := range []struct {
			d  *time.Duration
			in []catalog.Variant
		}{{&create, vs}, {&unchanged, vs}, {&update, repriced(vs)}} {
			start := time.Now()
			if _, err := s.ImportCatalog(ctx, step.in, ImportOptions{Source: "bench"}); err != nil {
				b.Fatal(err)
			}
			*step.d += time.Since(start)
		}
		b.StopTimer()
		s.Close()
		b.StartTimer()
	}
	n := float64(b.N * len(vs))
	b.ReportMetric(n/create.Seconds(), "create-variants/s")
	b.ReportMetric(n/unchanged.Seconds(), "unchanged-variants/s")
	b.ReportMetric(n/update.Seconds(), "update-variants/s")
}

func repriced(vs []catalog.Variant) []catalog.Variant {
	out := slices.Clone(vs)
	for i := range out {
		out[i].PriceMinor += 100
	}
	return out
}
