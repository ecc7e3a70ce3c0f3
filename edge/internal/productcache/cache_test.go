package productcache

import (
	"context"
	"errors"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/omnisync/omnisync/edge/internal/productcache/cachetest"
	"github.com/omnisync/omnisync/shared/downsync"
	"github.com/omnisync/omnisync/shared/epc"
)

// fill applies products 0..n-1, their review summaries, and stock of every
// variant at S1 (3), S2 (7), S3 (oversold: -2), online (5) and S9 (not a
// configured location), as one batch ending at seq 100.
func fill(t testing.TB, c *Cache, n int) {
	t.Helper()
	var us []Update
	for i := range n {
		us = append(us, product(cachetest.ProductDoc(i, 1)), review(cachetest.ReviewSummary(i, 1)))
		for v := range cachetest.Variants {
			sku := cachetest.SKU(i, v)
			for _, l := range []struct {
				loc   string
				avail int64
			}{{"S1", 3}, {"S2", 7}, {"S3", -2}, {"online", 5}, {"S9", 100}} {
				us = append(us, stock(cachetest.StockDoc(l.loc, sku, l.avail, 1)))
			}
		}
	}
	mustApply(t, c, 100, true, us...)
}

// Ensure that every way of writing a code finds its product and variant,
// with stock here, nearby (most available first) and online, and nothing of
// a location the store was not configured with.
func TestLookup_Codes(t *testing.T) {
	clk := newClock()
	o := testOptions(t)
	o.Now = clk.Now
	c := mustOpen(t, o)
	fill(t, c, 10)

	const i, v = 7, 2
	sku, gtin := cachetest.SKU(i, v), cachetest.GTIN(i*cachetest.Variants+v)
	sg, err := epc.SGTINFromGTIN(gtin, cachetest.CompanyPrefixLen, "12345")
	if err != nil {
		t.Fatal(err)
	}
	epcHex, err := sg.Encode(epc.SGTIN96, 1)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, code string
		by, serial string
	}{
		{"sku", sku, downsync.BySKU, ""},
		{"gtin13", gtin[1:], downsync.ByGTIN, ""},
		{"gtin14", gtin, downsync.ByGTIN, ""},
		{"element string", "(01)" + gtin + "(21)ABC", downsync.ByElementString, "ABC"},
		{"unbracketed element string", "01" + gtin + "21ABC", downsync.ByElementString, "ABC"},
		{"digital link", "https://id.example.com/01/" + gtin + "/21/XYZ", downsync.ByDigitalLink, "XYZ"},
		{"scan with AIM id", "]E0" + gtin[1:], downsync.ByScan, ""},
		{"epc sgtin-96 hex", epcHex, downsync.ByEPC, "12345"},
		{"epc pure identity", sg.PureURI(), downsync.ByEPC, "12345"},
		{"padded", "  " + sku + "\n", downsync.BySKU, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := c.Lookup(context.Background(), tc.code)
			if err != nil {
				t.Fatal(err)
			}
			if got.Product.ID != cachetest.Product(i) || got.Selected != sku || got.Code != tc.code {
				t.Fatalf("product %q selected %q code %q", got.Product.ID, got.Selected, got.Code)
			}
			if got.Match.By != tc.by || got.Match.Serial != tc.serial || got.Match.SKU != sku {
				t.Errorf("match = %+v", got.Match)
			}
			if tc.by != downsync.BySKU && got.Match.GTIN != gtin {
				t.Errorf("match GTIN = %q, want %q", got.Match.GTIN, gtin)
			}
			if len(got.Variants) != cachetest.Variants || got.Product.Variants != nil {
				t.Fatalf("variants = %d, product variants = %d", len(got.Variants), len(got.Product.Variants))
			}
			if got.Reviews.Count != 3 || got.Reviews.ProductID != cachetest.Product(i) {
				t.Errorf("reviews = %+v", got.Reviews)
			}
			for _, vv := range got.Variants {
				s := vv.Stock
				if s.Here == nil || s.Here.Available != 3 || s.Here.Location != "S1" {
					t.Errorf("%s here = %+v", vv.SKU, s.Here)
				}
				if s.Online == nil || s.Online.Available != 5 {
					t.Errorf("%s online = %+v", vv.SKU, s.Online)
				}
				var nearby []string
				for _, l := range s.Nearby {
					nearby = append(nearby, l.Location)
				}
				if !slices.Equal(nearby, []string{"S2", "S3"}) || s.Nearby[0].Available != 7 || s.Nearby[1].Available != 0 {
					t.Errorf("%s nearby = %+v", vv.SKU, s.Nearby)
				}
			}
			if !got.AsOf.Equal(clk.Now()) || got.Stale {
				t.Errorf("as_of %v stale %v, want %v fresh", got.AsOf, got.Stale, clk.Now())
			}
		})
	}
	// S9 is not one of the store's locations: its stock was not kept.
	if _, ok := stockOf(t, c, "S9", sku); ok {
		t.Error("stock of an unconfigured location was cached")
	}
	if st := c.Stats(); st.StockPositions != 10*cachetest.Variants*4 || st.Products != 10 || st.GTINs != 40 || st.Variants != 40 {
		t.Errorf("stats = %+v", st)
	}
	checkCounts(t, c)
}

// Ensure that a code that is not valid says so, a valid one the catalog
// does not know is not found, and a SKU that looks like a bad GTIN is still
// found as a SKU.
func TestLookup_BadCodes(t *testing.T) {
	c := mustOpen(t, testOptions(t))
	fill(t, c, 3)
	numeric := cachetest.ProductDoc(100, 1)
	numeric.Variants[0].SKU = "9506000134353" // a GTIN-13 with a wrong check digit
	mustApply(t, c, 101, true, product(numeric))

	good := cachetest.GTIN(5)
	bad := good[:13] + string('0'+(good[13]-'0'+1)%10)
	cases := []struct {
		name, code string
		want       error
	}{
		{"wrong check digit", bad, downsync.ErrInvalidCode},
		{"wrong check digit gtin13", bad[1:], downsync.ErrInvalidCode},
		{"malformed digital link", "https://id.example.com/01/123", downsync.ErrInvalidCode},
		{"element string without gtin", "(10)ABC", downsync.ErrInvalidCode},
		{"empty", "", downsync.ErrInvalidCode},
		{"unknown gtin", "4006381333931", downsync.ErrNotFound},
		{"unknown sku", "NOPE-1", downsync.ErrNotFound},
		{"unknown epc", "urn:epc:id:sgtin:4006381.033393.1", downsync.ErrNotFound},
		{"numeric sku that is no valid gtin", "9506000134353", nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			v, err := c.Lookup(context.Background(), tc.code)
			if tc.want == nil {
				if err != nil || v.Match.By != downsync.BySKU || v.Product.ID != numeric.ID {
					t.Fatalf("got %+v, %v", v.Match, err)
				}
				return
			}
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			other := downsync.ErrNotFound
			if tc.want == downsync.ErrNotFound {
				other = downsync.ErrInvalidCode
			}
			if errors.Is(err, other) {
				t.Fatalf("err = %v is also %v", err, other)
			}
		})
	}
}

// Ensure that a document older than the one held is ignored, whatever its
// kind, and that an equal or newer one replaces it.
func TestApply_Versions(t *testing.T) {
	c := mustOpen(t, testOptions(t))
	p2 := cachetest.ProductDoc(1, 2)
	p2.Name = "v2"
	mustApply(t, c, 1, false, product(p2), stock(cachetest.StockDoc("S1", cachetest.SKU(1, 0), 5, 2)),
		review(cachetest.ReviewSummary(1, 2)))

	p1 := cachetest.ProductDoc(1, 1)
	p1.Name = "v1"
	r1 := cachetest.ReviewSummary(1, 1)
	r1.Count = 99
	mustApply(t, c, 2, false, product(p1), stock(cachetest.StockDoc("S1", cachetest.SKU(1, 0), 1, 1)), review(r1))
	v, err := c.Lookup(context.Background(), cachetest.SKU(1, 0))
	if err != nil {
		t.Fatal(err)
	}
	if v.Product.Name != "v2" || v.Variants[0].Stock.Here.Available != 5 || v.Reviews.Count != 3 {
		t.Fatalf("an older document won: name %q stock %+v reviews %d", v.Product.Name, v.Variants[0].Stock.Here, v.Reviews.Count)
	}
	if st := c.Stats(); st.Ignored != 3 || st.LastSeq != 2 {
		t.Errorf("stats = %+v", st)
	}

	p3 := cachetest.ProductDoc(1, 3)
	p3.Name = "v3"
	mustApply(t, c, 3, false, product(p3), stock(cachetest.StockDoc("S1", cachetest.SKU(1, 0), 4, 2)))
	v, _ = c.Lookup(context.Background(), cachetest.SKU(1, 0))
	if v.Product.Name != "v3" || v.Variants[0].Stock.Here.Available != 4 {
		t.Fatalf("a newer or equal document lost: %q %+v", v.Product.Name, v.Variants[0].Stock.Here)
	}
	checkCounts(t, c)
}

// Ensure that the SKU and GTIN indexes follow products as their variants
// change, move between products, and go away with a deleted product.
func TestApply_Indexes(t *testing.T) {
	ctx := context.Background()
	c := mustOpen(t, testOptions(t))
	a, b := cachetest.ProductDoc(1, 1), cachetest.ProductDoc(2, 1)
	mustApply(t, c, 1, false, product(a), product(b))
	gA0, gA1 := a.Variants[0].GTINs[0], a.Variants[1].GTINs[0]

	// A drops its variant 0, and renames variant 1 and gives it another
	// GTIN.
	a2 := cachetest.ProductDoc(1, 2)
	a2.Variants = a2.Variants[1:]
	a2.Variants[0].SKU, a2.Variants[0].GTINs = "RENAMED", []string{cachetest.GTIN(900)}
	// B claims A's variant-1 GTIN as a second one.
	b2 := cachetest.ProductDoc(2, 2)
	b2.Variants[0].GTINs = append(b2.Variants[0].GTINs, gA1)
	// B first: when A lets go of gA1, the entry is B's and must stay.
	mustApply(t, c, 2, false, product(b2), product(a2))

	cases := []struct {
		code    string
		product string
		sku     string
		err     error
	}{
		{gA0, "", "", downsync.ErrNotFound},
		{a.Variants[0].SKU, "", "", downsync.ErrNotFound},
		{a.Variants[1].SKU, "", "", downsync.ErrNotFound},
		{"RENAMED", a.ID, "RENAMED", nil},
		{cachetest.GTIN(900), a.ID, "RENAMED", nil},
		{gA1, b.ID, b.Variants[0].SKU, nil}, // B wrote it last
		{a.Variants[2].GTINs[0], a.ID, a.Variants[2].SKU, nil},
	}
	check := func(stage string) {
		t.Helper()
		for _, tc := range cases {
			v, err := c.Lookup(ctx, tc.code)
			if !errors.Is(err, tc.err) || (err == nil && (v.Product.ID != tc.product || v.Selected != tc.sku)) {
				t.Errorf("%s: lookup %q = %q/%q, %v; want %q/%q, %v", stage, tc.code, v.Product.ID, v.Selected, err, tc.product, tc.sku, tc.err)
			}
		}
		checkCounts(t, c)
	}
	check("after changes")

	// A changes again: B's claim on A's old GTIN stays.
	a3 := a2
	a3.Version = 3
	mustApply(t, c, 3, false, product(a3))
	check("after A changes again")

	// A is deleted: its SKUs and GTINs are gone, B's are not.
	mustApply(t, c, 4, false, deleted(downsync.ProductKey(a.ID)))
	for _, code := range []string{"RENAMED", a.Variants[2].GTINs[0], a.Variants[3].SKU} {
		if _, err := c.Lookup(ctx, code); !errors.Is(err, downsync.ErrNotFound) {
			t.Errorf("after delete, lookup %q: %v", code, err)
		}
	}
	if v, err := c.Lookup(ctx, gA1); err != nil || v.Product.ID != b.ID {
		t.Errorf("B's GTIN after A's delete: %v %v", v.Product.ID, err)
	}
	if st := c.Stats(); st.Products != 1 || st.Variants != 4 || st.GTINs != 5 {
		t.Errorf("stats = %+v", st)
	}
	checkCounts(t, c)
}

// Ensure that delete and purge markers remove what they name, and that
// unreadable messages are skipped without failing the batch.
func TestApply_DeletesAndRejects(t *testing.T) {
	ctx := context.Background()
	c := mustOpen(t, testOptions(t))
	fill(t, c, 2)
	sku := cachetest.SKU(0, 0)
	mustApply(t, c, 101, false,
		deleted(downsync.StockKey("S1", sku)),
		deleted(downsync.ReviewKey(cachetest.Product(0))),
		deleted(downsync.StockKey("S1", "NEVER-THERE")),
		Update{Key: "cat.~!!", Value: []byte(`{}`)},
		Update{Key: downsync.ProductKey("P-BAD"), Value: []byte(`{"variants": 7}`)},
		Update{Key: downsync.StockKey("S2", sku), Value: []byte(`not json`)},
		Update{Key: downsync.TickKey, Value: cachetest.JSON(downsync.Tick{AtMS: 1_700_000_123_000})},
		stock(cachetest.StockDoc("S2", sku, 42, 2)),
	)
	v, err := c.Lookup(ctx, sku)
	if err != nil {
		t.Fatal(err)
	}
	if v.Variants[0].Stock.Here != nil {
		t.Errorf("deleted stock still shown: %+v", v.Variants[0].Stock.Here)
	}
	if v.Reviews.Count != 0 || v.Reviews.ProductID != cachetest.Product(0) {
		t.Errorf("deleted reviews still shown: %+v", v.Reviews)
	}
	if v.Variants[0].Stock.Nearby[0].Available != 42 {
		t.Errorf("the batch stopped at a bad message: %+v", v.Variants[0].Stock.Nearby)
	}
	st := c.Stats()
	if st.Rejected != 3 || st.LastSeq != 101 || !st.HubTick.Equal(time.UnixMilli(1_700_000_123_000)) {
		t.Errorf("stats = %+v", st)
	}
	checkCounts(t, c)
}

// Ensure that a committed batch and its sequence survive a reopen exactly,
// and that a batch whose Apply failed left nothing behind.
func TestApply_Reopen(t *testing.T) {
	ctx := context.Background()
	o := testOptions(t)
	c, err := Open(o)
	if err != nil {
		t.Fatal(err)
	}
	created := time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)
	if err := c.SetStream(ctx, created); err != nil {
		t.Fatal(err)
	}
	fill(t, c, 5)
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if err := c.Apply(cancelled, []Update{product(cachetest.ProductDoc(50, 1))}, 200, true); !errors.Is(err, context.Canceled) {
		t.Fatalf("apply with a cancelled context: %v", err)
	}
	before := c.Stats()
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.Apply(ctx, nil, 300, true); !errors.Is(err, ErrClosed) {
		t.Fatalf("apply after close: %v", err)
	}
	if _, err := c.Lookup(ctx, cachetest.SKU(0, 0)); !errors.Is(err, ErrClosed) {
		t.Fatalf("lookup after close: %v", err)
	}

	c = mustOpen(t, o)
	after := c.Stats()
	if after.LastSeq != 100 || !after.StreamCreated.Equal(created) || !after.SyncedAt.Equal(before.SyncedAt) ||
		after.Products != before.Products || after.StockPositions != before.StockPositions {
		t.Fatalf("reopened: %+v\nbefore: %+v", after, before)
	}
	if _, err := c.Lookup(ctx, cachetest.SKU(50, 0)); !errors.Is(err, downsync.ErrNotFound) {
		t.Fatalf("the failed batch left something: %v", err)
	}
	if _, err := c.Lookup(ctx, cachetest.SKU(4, 3)); err != nil {
		t.Fatal(err)
	}
	checkCounts(t, c)
}

// Ensure that as_of is the moment the cache last caught up, and that views
// say stale once that is older than StaleAfter, or when it never caught up.
func TestLookup_Stale(t *testing.T) {
	clk := newClock()
	o := testOptions(t)
	o.Now, o.StaleAfter = clk.Now, 10*time.Second
	c := mustOpen(t, o)
	mustApply(t, c, 1, false, product(cachetest.ProductDoc(1, 1)))
	sku := cachetest.SKU(1, 1)

	steps := []struct {
		name      string
		do        func()
		stale     bool
		asOfAtNow bool
	}{
		{"never caught up", func() {}, true, false},
		{"caught up", func() { mustApply(t, c, 2, true) }, false, true},
		{"just fresh", func() { clk.Add(10 * time.Second) }, false, false},
		{"stale", func() { clk.Add(time.Millisecond) }, true, false},
		{"a batch while behind keeps as_of", func() { mustApply(t, c, 3, false, product(cachetest.ProductDoc(2, 1))) }, true, false},
		{"caught up again", func() { mustApply(t, c, 4, true) }, false, true},
	}
	var asOf time.Time
	for _, s := range steps {
		s.do()
		v, err := c.Lookup(context.Background(), sku)
		if err != nil {
			t.Fatal(err)
		}
		if v.Stale != s.stale {
			t.Errorf("%s: stale = %v", s.name, v.Stale)
		}
		switch {
		case s.asOfAtNow && !v.AsOf.Equal(clk.Now()):
			t.Errorf("%s: as_of %v, want now %v", s.name, v.AsOf, clk.Now())
		case !s.asOfAtNow && !v.AsOf.Equal(asOf):
			t.Errorf("%s: as_of moved from %v to %v", s.name, asOf, v.AsOf)
		}
		asOf = v.AsOf
	}
}

// Ensure that reopening with other nearby stores drops the stock of those
// no longer listed and reports new ones as missing until marked complete,
// and that Reset empties everything.
func TestOpen_LocationsAndReset(t *testing.T) {
	ctx := context.Background()
	o := testOptions(t)
	c, err := Open(o)
	if err != nil {
		t.Fatal(err)
	}
	if m := c.MissingLocations(); len(m) != 0 {
		t.Fatalf("a new cache misses %v", m)
	}
	fill(t, c, 2)
	c.Close()

	o.Nearby = []string{"S2", "S4", "S1", "S2"}
	c = mustOpen(t, o)
	if got := c.Locations(); !slices.Equal(got, []string{"S1", "S2", "S4", "online"}) {
		t.Errorf("locations = %v", got)
	}
	st := c.Stats()
	if !slices.Equal(st.Missing, []string{"S4"}) || !slices.Equal(st.Locations, []string{"S1", "S2", "online"}) {
		t.Errorf("missing %v held %v", st.Missing, st.Locations)
	}
	if _, ok := stockOf(t, c, "S3", cachetest.SKU(0, 0)); ok || st.StockPositions != 2*cachetest.Variants*3 {
		t.Errorf("S3's stock was kept: %d positions", st.StockPositions)
	}
	checkCounts(t, c)
	if err := c.MarkLocationsComplete(ctx, []string{"S4", "S9"}); err != nil {
		t.Fatal(err)
	}
	if m := c.MissingLocations(); len(m) != 0 {
		t.Errorf("missing after marking: %v", m)
	}

	if err := c.Reset(ctx); err != nil {
		t.Fatal(err)
	}
	st = c.Stats()
	if st.LastSeq != 0 || !st.StreamCreated.IsZero() || !st.SyncedAt.IsZero() || st.Products+st.StockPositions+st.GTINs+st.Variants+st.Reviews != 0 {
		t.Errorf("after reset: %+v", st)
	}
	if _, err := c.Lookup(ctx, cachetest.SKU(0, 0)); !errors.Is(err, downsync.ErrNotFound) {
		t.Errorf("lookup after reset: %v", err)
	}
	checkCounts(t, c)
}

// Ensure that a second Open of the same file fails fast with ErrLocked, and
// that bad options are refused.
func TestOpen_Errors(t *testing.T) {
	o := testOptions(t)
	mustOpen(t, o)
	o2 := o
	o2.lockTimeout = 50 * time.Millisecond
	if _, err := Open(o2); !errors.Is(err, ErrLocked) {
		t.Errorf("second open: %v", err)
	}
	for _, bad := range []Options{
		{Store: "S1"},
		{Path: filepath.Join(t.TempDir(), "c.db")},
		{Path: filepath.Join(t.TempDir(), "c.db"), Store: "S.1"},
		{Path: filepath.Join(t.TempDir(), "c.db"), Store: "S1", StaleAfter: -time.Second},
	} {
		if _, err := Open(bad); !errors.Is(err, ErrInvalidOption) {
			t.Errorf("Open(%+v) = %v", bad, err)
		}
	}
}

// Ensure that a bootstrap's per-filter progress is kept with its batches,
// survives a reopen, and ends when the cache's sequence is set; and that
// Reset forgets it.
func TestApplyPass(t *testing.T) {
	ctx := context.Background()
	o := testOptions(t)
	c, err := Open(o)
	if err != nil {
		t.Fatal(err)
	}
	cat, stk := downsync.Filters()[0], downsync.Filters("S1")[3]
	if err := c.ApplyPass(ctx, []Update{product(cachetest.ProductDoc(1, 1))}, 90, cat, 7); err != nil {
		t.Fatal(err)
	}
	if err := c.ApplyPass(ctx, []Update{stock(cachetest.StockDoc("S1", cachetest.SKU(1, 0), 2, 1))}, 90, stk, 40); err != nil {
		t.Fatal(err)
	}
	c.Close()

	c = mustOpen(t, o)
	st := c.Stats()
	if st.LastSeq != 0 || st.BootstrapUpTo != 90 || st.BootstrapRead[cat] != 7 || st.BootstrapRead[stk] != 40 || st.Products != 1 {
		t.Fatalf("after reopen: %+v", st)
	}
	if v, err := c.Lookup(ctx, cachetest.SKU(1, 0)); err != nil || v.Variants[0].Stock.Here.Available != 2 {
		t.Fatalf("lookup during a bootstrap: %v", err)
	}
	mustApply(t, c, 90, false)
	if st := c.Stats(); st.LastSeq != 90 || st.BootstrapUpTo != 0 || st.BootstrapRead != nil {
		t.Fatalf("after the bootstrap: %+v", st)
	}

	if err := c.ApplyPass(ctx, nil, 120, cat, 3); err != nil {
		t.Fatal(err)
	}
	if err := c.Reset(ctx); err != nil {
		t.Fatal(err)
	}
	if st := c.Stats(); st.BootstrapUpTo != 0 || st.BootstrapRead != nil {
		t.Fatalf("after reset: %+v", st)
	}
}

// Ensure that Variant names the product and variant of any GTIN form, and
// nothing for unknown or invalid ones.
func TestVariant(t *testing.T) {
	c := mustOpen(t, testOptions(t))
	fill(t, c, 3)
	gtin := cachetest.GTIN(2*cachetest.Variants + 3)
	for _, g := range []string{gtin, gtin[1:]} {
		p, v, ok := c.Variant(g)
		if !ok || p.ID != cachetest.Product(2) || v.SKU != cachetest.SKU(2, 3) {
			t.Errorf("Variant(%q) = %q %q %v", g, p.ID, v.SKU, ok)
		}
	}
	for _, g := range []string{"4006381333931", gtin[:13] + "x", ""} {
		if _, _, ok := c.Variant(g); ok {
			t.Errorf("Variant(%q) found something", g)
		}
	}
}
