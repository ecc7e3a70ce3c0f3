package store

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/omnisync/omnisync/cloud/internal/catalog"
	"github.com/omnisync/omnisync/shared/downsync"
	"github.com/omnisync/omnisync/shared/testkit"
)

// Ensure that the catalog lock is taken without waiting and refused while
// held, on one hub and across replicas on PostgreSQL, and that an import
// that waits (ImportCatalog) runs once it is given back.
func TestLockCatalog(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	check := func(t *testing.T, a, b *Store) {
		l, err := a.LockCatalog(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for name, s := range map[string]*Store{"same hub": a, "other replica": b} {
			if _, err := s.LockCatalog(ctx); !errors.Is(err, ErrImportRunning) {
				t.Fatalf("%s: second lock: %v", name, err)
			}
		}
		res, err := l.Import(ctx, Variants([]catalog.Variant{variant("A", "P", 1)}), ImportOptions{Source: "locked"})
		if err != nil || res.Created != 1 {
			t.Fatalf("import under the lock: %+v %v", res, err)
		}
		waited := make(chan error, 1)
		go func() {
			_, err := b.ImportCatalog(ctx, []catalog.Variant{variant("B", "P", 2)}, ImportOptions{})
			waited <- err
		}()
		if b.d.pg() {
			select {
			case err := <-waited:
				t.Fatalf("ImportCatalog did not wait for the lock: %v", err)
			case <-time.After(200 * time.Millisecond):
			}
		}
		l.Unlock()
		l.Unlock() // twice is harmless
		if err := <-waited; err != nil {
			t.Fatal(err)
		}
		l2, err := b.LockCatalog(ctx)
		if err != nil {
			t.Fatalf("lock after unlock: %v", err)
		}
		l2.Unlock()
		if _, v, _ := a.CatalogStats(ctx); v != 2 {
			t.Fatalf("%d variants", v)
		}
	}
	t.Run("sqlite", func(t *testing.T) {
		s := openSQLite(t)
		check(t, s, s)
	})
	t.Run("postgres", func(t *testing.T) {
		dsn := testkit.Postgres(t)
		a, b := mustOpen(t, dsn), mustOpen(t, dsn)
		check(t, a, b)
		// Another schema of the same database is another hub cluster.
		other := mustOpen(t, testkit.Postgres(t))
		l, err := a.LockCatalog(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer l.Unlock()
		lo, err := other.LockCatalog(ctx)
		if err != nil {
			t.Fatalf("a hub in another schema is locked out: %v", err)
		}
		lo.Unlock()
	})
}

// Ensure that an import larger than a staging chunk keeps the rules: a
// product's fields come from its first variant even when its variants are
// chunks apart, its version grows once per import, and the counts add up.
func TestImport_ManyChunks(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, s *Store) {
		vs := catalog.Sample(5, 2*stageChunk/4)
		first, last := vs[0], vs[len(vs)-1]
		last.SKU, last.GTINs, last.ProductID = "LATE-1", []string{testGTIN(77)}, first.ProductID
		last.Name = "Not the product's name"
		vs = append(vs, last)
		if len(vs) < 2*stageChunk {
			t.Fatalf("only %d variants", len(vs))
		}
		res := importOK(t, s, vs)
		if res.Created != len(vs) || res.Variants != len(vs) || len(res.ProductsChanged) != 2*stageChunk/4 {
			t.Fatalf("created %d of %d, %d products changed", res.Created, len(vs), len(res.ProductsChanged))
		}
		p := productDoc(t, s, first.ProductID)
		if p.Name != first.Name || p.Version != 1 || !slices.ContainsFunc(p.Variants, func(v downsync.VariantDoc) bool { return v.SKU == "LATE-1" }) {
			t.Fatalf("product %+v", p)
		}
		// A change of the late variant bumps the product once.
		vs[len(vs)-1].PriceMinor += 100
		res = importOK(t, s, vs)
		if !slices.Equal(res.ProductsChanged, []string{first.ProductID}) || res.Updated != 1 || res.Unchanged != len(vs)-1 {
			t.Fatalf("%+v", res)
		}
		if p := productDoc(t, s, first.ProductID); p.Version != 2 || p.Name != first.Name {
			t.Fatalf("product %s version %d name %q", p.ID, p.Version, p.Name)
		}
	})
}

// Ensure that a streamed import that repeats a SKU or a GTIN, hands out
// an invalid variant or fails to read, stores nothing and says why.
func TestImport_StreamRefused(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		vs := catalog.Sample(6, stageChunk/2) // > one chunk
		dupSKU := append(slices.Clone(vs), vs[3])
		dupSKU[len(dupSKU)-1].GTINs = []string{testGTIN(1)}
		dupGTIN := append(slices.Clone(vs), variant("NEW", "P", 0))
		dupGTIN[len(dupGTIN)-1].GTINs = vs[len(vs)-1].GTINs
		invalid := append(slices.Clone(vs), variant("", "P", 1))
		failing := errors.New("upload cut")
		tests := []struct {
			name string
			src  VariantSource
			want error
			msg  string
		}{
			{"SKU twice, chunks apart", Variants(dupSKU), ErrInvalid, "SKU " + vs[3].SKU + " given twice (lines 4 and"},
			{"GTIN twice, same chunk", Variants(dupGTIN), ErrInvalid, "GTIN " + vs[len(vs)-1].GTINs[0] + " given twice"},
			{"invalid variant", Variants(invalid), ErrInvalid, "SKU \"\""},
			{"source fails", func(each func(catalog.Variant, int) error) error {
				if err := Variants(vs)(each); err != nil {
					return err
				}
				return failing
			}, failing, "upload cut"},
		}
		for _, tt := range tests {
			l, err := s.LockCatalog(ctx)
			if err != nil {
				t.Fatal(err)
			}
			_, err = l.Import(ctx, tt.src, ImportOptions{})
			l.Unlock()
			if !errors.Is(err, tt.want) || !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("%s: %v, want %v with %q", tt.name, err, tt.want, tt.msg)
			}
			if p, v, _ := s.CatalogStats(ctx); p != 0 || v != 0 {
				t.Fatalf("%s: stored %d products, %d variants", tt.name, p, v)
			}
		}
		// The staging tables went with the transaction: a good import runs.
		if res := importOK(t, s, vs); res.Created != len(vs) {
			t.Fatalf("%+v", res)
		}
	})
}

// Ensure that SkipGTINConflicts leaves out the variants whose GTINs other
// SKUs hold, then those that only a left-out variant freed a GTIN for,
// and imports the rest.
func TestImport_SkipGTINConflicts(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		importOK(t, s, []catalog.Variant{variant("X", "P", 1), variant("Y", "P", 2)})
		y := variant("Y", "P", 1) // takes X's GTIN, gives up its own
		in := []catalog.Variant{variant("OK-1", "Q", 10), y, variant("B", "Q", 2), variant("OK-2", "Q", 11)}
		res, err := s.ImportCatalog(ctx, in, ImportOptions{SkipGTINConflicts: true, Mode: catalog.Partial, RowsRejected: 3})
		if err != nil {
			t.Fatal(err)
		}
		want := []GTINConflict{{GTIN: testGTIN(1), SKU: "Y", HeldBy: "X", Line: 2}, {GTIN: testGTIN(2), SKU: "B", HeldBy: "Y", Line: 3}}
		if res.SkippedVariants != 2 || !slices.Equal(res.Skipped, want) || res.Variants != 2 || res.Created != 2 {
			t.Fatalf("%+v", res)
		}
		for g, sku := range map[int]string{1: "X", 2: "Y", 10: "OK-1", 11: "OK-2"} {
			if got := skuOf(t, s, g); got != sku {
				t.Fatalf("GTIN %d belongs to %q, want %q", g, got, sku)
			}
		}
		imps, err := s.CatalogImports(ctx, 1)
		if err != nil || imps[0].RowsRejected != 5 || imps[0].RowsAccepted != 2 || imps[0].RowsRead != 7 || imps[0].Mode != "partial" {
			t.Fatalf("audit %+v %v", imps, err)
		}
	})
}
