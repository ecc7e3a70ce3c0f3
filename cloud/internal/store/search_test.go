package store

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/omnisync/omnisync/cloud/internal/catalog"
	"github.com/omnisync/omnisync/shared/events"
)

func productIDs(t testing.TB, s *Store, q string) []string {
	t.Helper()
	docs, err := s.SearchCatalog(context.Background(), q, 50)
	if err != nil {
		t.Fatal(err)
	}
	ids := []string{}
	for _, d := range docs {
		ids = append(ids, d.ID)
	}
	return ids
}

// Ensure that the catalog is found by name words (prefixes, any case, all
// words), brand, SKU whole or in part, and GTIN; that a later import
// renaming a product moves its terms; and that a catalog imported before
// the index existed is indexed when the store opens.
func TestSearchCatalog(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, s *Store) {
		shirt := func(sku, size string, g int) catalog.Variant {
			return catalog.Variant{SKU: sku, ProductID: "P-SHIRT", GTINs: []string{testGTIN(g)}, Name: "Linen shirt", Brand: "North Face",
				Size: size, Colour: "White", PriceMinor: 4900, Currency: "EUR", Category: "Shirts"}
		}
		importOK(t, s, []catalog.Variant{shirt("LS-01/S", "S", 1), shirt("LS-01/M", "M", 2), variant("TEE-1", "P-TEE", 3)})
		tests := []struct {
			q    string
			want []string
		}{
			{"linen", []string{"P-SHIRT"}},
			{"LIN sh", []string{"P-SHIRT"}},
			{"linen tee", []string{}},
			{"north face", []string{"P-SHIRT"}},
			{"kestrel", []string{"P-TEE"}},
			{"LS-01/M", []string{"P-SHIRT"}},
			{"ls-01", []string{"P-SHIRT"}},
			{testGTIN(3), []string{"P-TEE"}},
			{"nothing", []string{}},
			{"", []string{}},
		}
		for _, tt := range tests {
			if got := productIDs(t, s, tt.q); !slices.Equal(got, tt.want) {
				t.Errorf("search %q = %v, want %v", tt.q, got, tt.want)
			}
		}
		renamed := shirt("LS-01/S", "S", 1)
		renamed.Name = "Hemp overshirt"
		importOK(t, s, []catalog.Variant{renamed})
		if got := productIDs(t, s, "hemp"); !slices.Equal(got, []string{"P-SHIRT"}) {
			t.Errorf("after renaming, hemp finds %v", got)
		}

		// A catalog from before the index: terms gone, found again after
		// the store reopens (sqlite: same file).
		if _, err := s.w.ExecContext(context.Background(), "DELETE FROM catalog_search"); err != nil {
			t.Fatal(err)
		}
		if err := s.backfillSearchForTest(); err != nil {
			t.Fatal(err)
		}
		if got := productIDs(t, s, "kestrel"); !slices.Equal(got, []string{"P-TEE"}) {
			t.Errorf("after backfill, kestrel finds %v", got)
		}
	})
}

func (s *Store) backfillSearchForTest() error {
	ctx := context.Background()
	conn, err := s.w.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	return s.backfillSearch(ctx, conn)
}

// Ensure that StockForSKUs and SalesSince read many SKUs at once, and that
// sales count sales less returns, since the time asked.
func TestStockAndSalesForSKUs(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		d1, d2 := newDevice("S1", "pos-1", 1), newDevice("S2", "pos-1", 1)
		day := int64(24 * time.Hour / time.Millisecond)
		now := time.Now().UnixMilli()
		apply(t, s,
			d1.ev(now-40*day, events.KindReceipt, sale("S1", line("A", 50), line("B", 5))),
			d1.ev(now-20*day, events.KindSale, sale("S1", line("A", 3))),
			d1.ev(now-2*day, events.KindSale, sale("S1", line("A", 4), line("B", 1))),
			d1.ev(now-1*day, events.KindReturn, sale("S1", line("A", 1))),
			d2.ev(now-1*day, events.KindSale, sale("S2", line("A", 2))),
		)
		st, err := s.StockForSKUs(ctx, []string{"A", "B", "A", "C"})
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, x := range st {
			got = append(got, fmt.Sprintf("%s@%s=%d", x.SKU, x.Location, x.OnHand))
		}
		if want := []string{"A@S1=44", "A@S2=-2", "B@S1=4"}; !slices.Equal(got, want) {
			t.Fatalf("stock %v, want %v", got, want)
		}
		sales := func(days int64) map[string]int64 {
			ps, err := s.SalesSince(ctx, []string{"A", "B"}, time.UnixMilli(now-days*day))
			if err != nil {
				t.Fatal(err)
			}
			m := map[string]int64{}
			for _, p := range ps {
				m[p.SKU+"@"+p.Location] = p.Units
			}
			return m
		}
		if got, want := sales(7), map[string]int64{"A@S1": 3, "B@S1": 1, "A@S2": 2}; fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("7 days: %v, want %v", got, want)
		}
		if got, want := sales(28), map[string]int64{"A@S1": 6, "B@S1": 1, "A@S2": 2}; fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("28 days: %v, want %v", got, want)
		}
	})
}

// Ensure that a position's history lists its ledger lines newest first,
// with who (the origin store) and the event, and the reservations that
// hold it.
func TestPositionHistory(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		d := newDevice("S1", "pos-1", 1)
		web := newDevice("online", "web", 1)
		now := time.Now().UnixMilli()
		apply(t, s,
			d.ev(now-3000, events.KindReceipt, sale("S1", line("A", 10))),
			d.ev(now-2000, events.KindSale, sale("S1", line("A", 2))),
			web.ev(now-1000, events.KindReserve, rmove("ORD-1", "S1", line("A", 1))),
		)
		lines, res, err := s.PositionHistory(ctx, "A", "S1", 10)
		if err != nil {
			t.Fatal(err)
		}
		if len(lines) != 2 || lines[0].Kind != "sale" || lines[0].Delta != -2 || lines[0].Store != "S1" || lines[0].EventID == "" ||
			lines[1].Kind != "receipt" || lines[1].Delta != 10 {
			t.Fatalf("ledger %+v", lines)
		}
		if len(res) != 1 || res[0].ID != "ORD-1" || res[0].Qty != 1 || !res[0].Active {
			t.Fatalf("reservations %+v", res)
		}
		if lines, res, err := s.PositionHistory(ctx, "A", "S9", 10); err != nil || len(lines) != 0 || len(res) != 0 {
			t.Fatalf("unknown position: %v %v %v", lines, res, err)
		}
	})
}
