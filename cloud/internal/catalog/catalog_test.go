package catalog

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite testdata/sample-catalog.jsonl")

const (
	gtin13   = "4006381333931"  // EAN-13
	gtin13n  = "04006381333931" // its GTIN-14 form
	gtin12   = "036000291452"   // UPC-A
	gtin12n  = "00036000291452"
	gtin8    = "96385074"
	gtin8n   = "00000096385074"
	gtin13b  = "5012345000015"
	gtin13bn = "05012345000015"
)

func goodVariant() Variant {
	return Variant{
		SKU: "APP-000001-BLK-M", ProductID: "APP-000001", GTINs: []string{gtin13n},
		Name: "Relaxed Linen Shirt", Brand: "Northwind", Size: "M", Colour: "Black",
		PriceMinor: 1999, Currency: "EUR", ImageURL: "https://images.example.com/a.jpg",
		Category: "Apparel > Tops > Shirts",
	}
}

func parseAll(t testing.TB, f Format, in string, opts Options) ([]Variant, Report, error) {
	t.Helper()
	var got []Variant
	rep, err := Parse(strings.NewReader(in), f, opts, func(v Variant) error {
		got = append(got, v)
		return nil
	})
	return got, rep, err
}

// Ensure that every field's rule accepts good values and names the field of bad ones.
func TestVariant_Validate(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*Variant)
		field  string // "" = valid
	}{
		{"good", func(v *Variant) {}, ""},
		{"empty optional fields", func(v *Variant) { v.Brand, v.Size, v.Colour, v.ImageURL, v.Category = "", "", "", "", "" }, ""},
		{"sku 64 chars", func(v *Variant) { v.SKU = strings.Repeat("A", 64) }, ""},
		{"sku punctuation", func(v *Variant) { v.SKU = "A/B#1_x.y" }, ""},
		{"sku missing", func(v *Variant) { v.SKU = "" }, "sku"},
		{"sku 65 chars", func(v *Variant) { v.SKU = strings.Repeat("A", 65) }, "sku"},
		{"sku space", func(v *Variant) { v.SKU = "A B" }, "sku"},
		{"sku non-ascii", func(v *Variant) { v.SKU = "ÄB" }, "sku"},
		{"product id missing", func(v *Variant) { v.ProductID = "" }, "product_id"},
		{"product id slash", func(v *Variant) { v.ProductID = "A/B" }, "product_id"},
		{"product id 65", func(v *Variant) { v.ProductID = strings.Repeat("p", 65) }, "product_id"},
		{"product id dots", func(v *Variant) { v.ProductID = "p.1-2_3" }, ""},
		{"no gtin", func(v *Variant) { v.GTINs = nil }, "gtin"},
		{"bad check digit", func(v *Variant) { v.GTINs = []string{"04006381333932"} }, "gtin"},
		{"not normalised", func(v *Variant) { v.GTINs = []string{gtin13} }, "gtin"},
		{"letters", func(v *Variant) { v.GTINs = []string{"0400638133393X"} }, "gtin"},
		{"gtin twice", func(v *Variant) { v.GTINs = []string{gtin13n, gtin13n} }, "gtin"},
		{"two gtins", func(v *Variant) { v.GTINs = []string{gtin13n, gtin12n} }, ""},
		{"name missing", func(v *Variant) { v.Name = " " }, "name"},
		{"name 200", func(v *Variant) { v.Name = strings.Repeat("é", 200) }, ""},
		{"name 201", func(v *Variant) { v.Name = strings.Repeat("é", 201) }, "name"},
		{"name control", func(v *Variant) { v.Name = "a\x00b" }, "name"},
		{"name bad utf8", func(v *Variant) { v.Name = "a\xffb" }, "name"},
		{"brand long", func(v *Variant) { v.Brand = strings.Repeat("b", MaxBrandLen+1) }, "brand"},
		{"size long", func(v *Variant) { v.Size = strings.Repeat("s", MaxSizeLen+1) }, "size"},
		{"colour long", func(v *Variant) { v.Colour = strings.Repeat("c", MaxColourLen+1) }, "colour"},
		{"colour blank", func(v *Variant) { v.Colour = "  " }, "colour"},
		{"category long", func(v *Variant) { v.Category = strings.Repeat("c", MaxCategoryLen+1) }, "category"},
		{"price zero", func(v *Variant) { v.PriceMinor = 0 }, ""},
		{"price max", func(v *Variant) { v.PriceMinor = MaxPriceMinor }, ""},
		{"price negative", func(v *Variant) { v.PriceMinor = -1 }, "price"},
		{"price too big", func(v *Variant) { v.PriceMinor = MaxPriceMinor + 1 }, "price"},
		{"currency missing", func(v *Variant) { v.Currency = "" }, "currency"},
		{"currency lower", func(v *Variant) { v.Currency = "eur" }, "currency"},
		{"currency long", func(v *Variant) { v.Currency = "EURO" }, "currency"},
		{"image http", func(v *Variant) { v.ImageURL = "http://x.example/a.png" }, ""},
		{"image relative", func(v *Variant) { v.ImageURL = "/img/a.png" }, "image_url"},
		{"image ftp", func(v *Variant) { v.ImageURL = "ftp://x.example/a.png" }, "image_url"},
		{"image no host", func(v *Variant) { v.ImageURL = "https:///a.png" }, "image_url"},
		{"image space", func(v *Variant) { v.ImageURL = "https://x.example/a b.png" }, "image_url"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := goodVariant()
			tt.mutate(&v)
			errs := v.Validate()
			if tt.field == "" {
				if len(errs) != 0 {
					t.Fatalf("want valid, got %v", errs)
				}
				return
			}
			if len(errs) != 1 || errs[0].Field != tt.field || errs[0].Reason == "" {
				t.Fatalf("want one error on %q, got %v", tt.field, errs)
			}
		})
	}
}

// Ensure that several bad fields in one row give one error each.
func TestVariant_Validate_Several(t *testing.T) {
	v := goodVariant()
	v.SKU, v.Currency, v.PriceMinor = "", "x", -5
	if errs := v.Validate(); len(errs) != 3 {
		t.Fatalf("got %v", errs)
	}
}

func TestParsePrice(t *testing.T) {
	tests := []struct {
		in, cur string
		want    int64
		ok      bool
	}{
		{"19.99", "EUR", 1999, true},
		{"19.9", "EUR", 1990, true},
		{"19", "EUR", 1900, true},
		{"0", "EUR", 0, true},
		{"0.01", "EUR", 1, true},
		{"19.990", "EUR", 1999, true},
		{"007.50", "EUR", 750, true},
		{"9999999.99", "EUR", MaxPriceMinor, true},
		{"1500", "JPY", 1500, true},
		{"1.5", "JPY", 0, false},
		{"1.234", "KWD", 1234, true},
		{"0.005", "EUR", 0, false},
		{"-1", "EUR", 0, false},
		{"1e3", "EUR", 0, false},
		{"1E3", "EUR", 0, false},
		{"+1", "EUR", 0, false},
		{"1,99", "EUR", 0, false},
		{"1 000", "EUR", 0, false},
		{".99", "EUR", 0, false},
		{"19.", "EUR", 0, false},
		{"", "EUR", 0, false},
		{"NaN", "EUR", 0, false},
		{"10000000.00", "EUR", 0, false},
		{"99999999999999999999999", "EUR", 0, false},
	}
	for _, tt := range tests {
		got, err := ParsePrice(tt.in, tt.cur)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("ParsePrice(%q, %s) = %d, %v; want %d ok=%v", tt.in, tt.cur, got, err, tt.want, tt.ok)
		}
	}
}

func TestFormatPrice(t *testing.T) {
	for _, tt := range []struct {
		minor int64
		cur   string
		want  string
	}{{1999, "EUR", "19.99"}, {5, "EUR", "0.05"}, {0, "EUR", "0.00"}, {1500, "JPY", "1500"}, {1234, "KWD", "1.234"}, {-150, "EUR", "-1.50"}} {
		if got := FormatPrice(tt.minor, tt.cur); got != tt.want {
			t.Errorf("FormatPrice(%d, %s) = %q, want %q", tt.minor, tt.cur, got, tt.want)
		}
		if tt.minor >= 0 {
			if back, err := ParsePrice(tt.want, tt.cur); err != nil || back != tt.minor {
				t.Errorf("round trip %q: %d, %v", tt.want, back, err)
			}
		}
	}
}

const sameCSV = `sku,product_id,gtin,name,brand,size,color,price,currency,image_url,category
SKU-1,P1,4006381333931|036000291452,Linen Shirt,Northwind,M,Black,19.99,EUR,https://images.example.com/p1.jpg,Apparel
SKU-2,P1,96385074,Linen Shirt,Northwind,L,Black,19.9,eur,,Apparel
"SKU-3",P2," 5012345000015 ","Mug, ""large""",,,,4,EUR,,Home
`

const sameJSONL = `{"sku":"SKU-1","product_id":"P1","gtins":["4006381333931","036000291452"],"name":"Linen Shirt","brand":"Northwind","size":"M","colour":"Black","price":19.99,"currency":"EUR","image_url":"https://images.example.com/p1.jpg","category":"Apparel"}
{"sku":"SKU-2","product_id":"P1","gtin":"96385074","name":"Linen Shirt","brand":"Northwind","size":"L","color":"Black","price":"19.9","currency":"eur","category":"Apparel"}
{"sku":"SKU-3","product_id":"P2","gtin":" 5012345000015 ","name":"Mug, \"large\"","price_minor":400,"currency":"EUR","category":"Home","brand":null}
`

// Ensure that CSV and JSONL with the same content give the same, normalised variants.
func TestParse_CSVAndJSONLAgree(t *testing.T) {
	want := []Variant{
		{SKU: "SKU-1", ProductID: "P1", GTINs: []string{gtin13n, gtin12n}, Name: "Linen Shirt", Brand: "Northwind", Size: "M", Colour: "Black",
			PriceMinor: 1999, Currency: "EUR", ImageURL: "https://images.example.com/p1.jpg", Category: "Apparel"},
		{SKU: "SKU-2", ProductID: "P1", GTINs: []string{gtin8n}, Name: "Linen Shirt", Brand: "Northwind", Size: "L", Colour: "Black",
			PriceMinor: 1990, Currency: "EUR", Category: "Apparel"},
		{SKU: "SKU-3", ProductID: "P2", GTINs: []string{gtin13bn}, Name: `Mug, "large"`, PriceMinor: 400, Currency: "EUR", Category: "Home"},
	}
	for _, tc := range []struct {
		f  Format
		in string
	}{{CSV, sameCSV}, {JSONL, sameJSONL}} {
		got, rep, err := parseAll(t, tc.f, tc.in, Options{})
		if err != nil {
			t.Fatalf("%v: %v (%v)", tc.f, err, rep.Errors)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%v:\n got %+v\nwant %+v", tc.f, got, want)
		}
		if rep.Rows != 3 || rep.Valid != 3 || rep.Invalid != 0 || rep.Bytes != int64(len(tc.in)) {
			t.Errorf("%v: report %+v", tc.f, rep)
		}
	}
	ps := Group(want)
	if len(ps) != 2 || ps[0].ID != "P1" || len(ps[0].Variants) != 2 || ps[1].Name != `Mug, "large"` {
		t.Errorf("Group: %+v", ps)
	}
}

// Ensure that line numbers count the header, blank lines and multi-line quoted fields.
func TestParse_LineNumbers(t *testing.T) {
	csvIn := "\xef\xbb\xbfsku,product_id,gtin,name,price,currency\n" + // line 1
		"A,P,4006381333931,ok,1,EUR\n" + // 2
		"\n" + // 3
		",,,,,\n" + // 4: all-empty record, ignored
		"B,P,4006381333932,bad check,1,EUR\n" + // 5
		"C,P,036000291452,\"two\nlines\",1,EUR\n" + // 6-7 (control char: bad name)
		"D,P,96385074,ok,x,EUR\n" + // 8
		"E,P,5012345000015,too,many,fields,here\n" // 9
	jsonlIn := "\n" + // 1
		`{"sku":"A","product_id":"P","gtin":"4006381333931","name":"ok","price":1,"currency":"EUR"}` + "\r\n" + // 2
		"   \n" + // 3
		`{"sku":"B","product_id":"P","gtin":"4006381333932","name":"bad","price":1,"currency":"EUR"}` + "\n" + // 4
		"not json\n" + // 5
		`[1,2]` + "\n" + // 6
		`{"sku":"D","product_id":"P","gtin":"96385074","name":"ok","price":"x","currency":"EUR"}` // 7, no final newline
	for _, tc := range []struct {
		f    Format
		in   string
		want []RowError
	}{
		{CSV, csvIn, []RowError{{Line: 5, Field: "gtin"}, {Line: 6, Field: "name"}, {Line: 8, Field: "price"}, {Line: 9}}},
		{JSONL, jsonlIn, []RowError{{Line: 4, Field: "gtin"}, {Line: 5}, {Line: 6}, {Line: 7, Field: "price"}}},
	} {
		got, rep, err := parseAll(t, tc.f, tc.in, Options{Mode: Partial})
		if err != nil {
			t.Fatalf("%v: %v", tc.f, err)
		}
		if len(got) != 1 || got[0].SKU != "A" {
			t.Errorf("%v: got %+v", tc.f, got)
		}
		var lf []RowError
		for _, e := range rep.Errors {
			lf = append(lf, RowError{Line: e.Line, Field: e.Field})
		}
		if !reflect.DeepEqual(lf, tc.want) {
			t.Errorf("%v: errors %v, want lines/fields %v", tc.f, rep.Errors, tc.want)
		}
		if rep.Rows != 5 || rep.Valid != 1 || rep.Invalid != 4 {
			t.Errorf("%v: report %+v", tc.f, rep)
		}
	}
}

// Ensure that an unknown CSV column stops the import naming it, and an
// unknown JSONL key rejects its row naming it.
func TestParse_UnknownColumnAndKey(t *testing.T) {
	_, rep, err := parseAll(t, CSV, "sku,product_id,gtin,name,price,currency,colur\nA,P,4006381333931,n,1,EUR,Red\n", Options{Mode: Partial})
	if !errors.Is(err, ErrUnknownColumn) || !strings.Contains(err.Error(), `"colur"`) || rep.Valid != 0 || rep.Errors[0].Field != "colur" {
		t.Fatalf("csv: %v %+v", err, rep)
	}
	got, rep, err := parseAll(t, JSONL, `{"sku":"A","product_id":"P","gtin":"4006381333931","name":"n","price":1,"currency":"EUR","colur":"Red"}`, Options{})
	if !errors.Is(err, ErrInvalidRows) || len(got) != 0 || len(rep.Errors) != 1 || rep.Errors[0].Field != "colur" || rep.Errors[0].Line != 1 {
		t.Fatalf("jsonl: %v %+v", err, rep)
	}
}

func TestParse_HeaderErrors(t *testing.T) {
	for _, tc := range []struct {
		in   string
		opts Options
		want error
	}{
		{"", Options{}, ErrHeader},
		{"sku,product_id,gtin,name,price\n", Options{}, ErrHeader},                       // no currency
		{"sku,product_id,gtin,name,price\n", Options{DefaultCurrency: "EUR"}, nil},       // default fills it
		{"sku,product_id,gtin,name,price,currency,colour,color\n", Options{}, ErrHeader}, // twice
		{"sku,product_id,gtin,name,price,currency,\n", Options{}, ErrHeader},             // unnamed
		{"SKU , Product_ID,GTINS,Name,Price_Minor,Currency\n", Options{}, nil},           // case and aliases
		{"sku,product_id,gtin,name,price,currency\n", Options{DefaultCurrency: "euro"}, ErrInvalidOption},
	} {
		_, _, err := parseAll(t, CSV, tc.in, tc.opts)
		if !errors.Is(err, tc.want) || (tc.want == nil && err != nil) {
			t.Errorf("%q: got %v, want %v", tc.in, err, tc.want)
		}
	}
	if _, _, err := parseAll(t, Format(9), "", Options{}); !errors.Is(err, ErrUnknownFormat) {
		t.Errorf("format 9: %v", err)
	}
	if _, _, err := parseAll(t, CSV, "", Options{Mode: 7}); !errors.Is(err, ErrInvalidOption) {
		t.Errorf("mode 7: %v", err)
	}
}

// Ensure that JSONL type mistakes are reported on the right field.
func TestParse_JSONLTypes(t *testing.T) {
	base := `"sku":"A","product_id":"P","name":"n","currency":"EUR"`
	for _, tc := range []struct{ extra, field string }{
		{`"gtin":4006381333931,"price":1`, "gtin"},
		{`"gtins":"4006381333931","price":1`, "gtin"},
		{`"gtin":"4006381333931","gtins":["036000291452"],"price":1`, "gtin"},
		{`"gtin":"4006381333931","price":true`, "price"},
		{`"gtin":"4006381333931","price":-1`, "price"},
		{`"gtin":"4006381333931","price":1e3`, "price"},
		{`"gtin":"4006381333931","price":1,"price_minor":100`, "price"},
		{`"gtin":"4006381333931","price_minor":1.5`, "price_minor"},
		{`"gtin":"4006381333931","price_minor":-100`, "price_minor"},
		{`"gtin":"4006381333931"`, "price"},
		{`"gtin":"4006381333931","price":1,"brand":7`, "brand"},
		{`"gtin":"4006381333931","price":1,"colour":"a","color":"b"`, "colour"},
	} {
		_, rep, err := parseAll(t, JSONL, "{"+base+","+tc.extra+"}\n", Options{})
		if !errors.Is(err, ErrInvalidRows) || len(rep.Errors) == 0 || rep.Errors[0].Field != tc.field {
			t.Errorf("%s: %v %+v", tc.extra, err, rep.Errors)
		}
	}
	got, _, err := parseAll(t, JSONL, "{"+base+`,"gtin":"4006381333931","price_minor":"1999"}`, Options{})
	if err != nil || got[0].PriceMinor != 1999 {
		t.Errorf("price_minor string: %v %+v", err, got)
	}
}

// Ensure that GTIN-8/12/13 are stored as GTIN-14 and duplicates in one row are dropped.
func TestParse_GTINNormalisation(t *testing.T) {
	in := "sku,product_id,gtin,name,price,currency\n" +
		"A,P,96385074;036000291452|4006381333931|04006381333931,n,1,EUR\n" +
		"B,P,978-0-471-11709-4,n,1,EUR\n"
	got, _, err := parseAll(t, CSV, in, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{gtin8n, gtin12n, gtin13n}; !reflect.DeepEqual(got[0].GTINs, want) {
		t.Errorf("got %v want %v", got[0].GTINs, want)
	}
	if want := []string{"09780471117094"}; !reflect.DeepEqual(got[1].GTINs, want) {
		t.Errorf("got %v want %v", got[1].GTINs, want)
	}
}

// Ensure that a repeated SKU or GTIN is rejected, naming the earlier line.
func TestParse_Duplicates(t *testing.T) {
	in := "sku,product_id,gtin,name,price,currency\n" +
		"A,P,4006381333931,n,1,EUR\n" + // 2
		"B,P,036000291452,n,1,EUR\n" + // 3
		"A,P,96385074,n,1,EUR\n" + // 4: SKU of line 2
		"C,P,00036000291452,n,1,EUR\n" + // 5: GTIN of line 3, other form
		"D,P,4006381333932,n,1,EUR\n" + // 6: invalid
		"D,P,5012345000015,n,1,EUR\n" // 7: duplicate of a rejected row: fine
	got, rep, err := parseAll(t, CSV, in, Options{Mode: Partial})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 || got[2].SKU != "D" {
		t.Errorf("got %+v", got)
	}
	if rep.DuplicateSKUs != 1 || rep.DuplicateGTINs != 1 || len(rep.Errors) != 3 {
		t.Fatalf("report %+v", rep)
	}
	if e := rep.Errors[0]; e.Line != 4 || e.Field != "sku" || !strings.Contains(e.Reason, "line 2") {
		t.Errorf("sku dup: %v", e)
	}
	if e := rep.Errors[1]; e.Line != 5 || e.Field != "gtin" || !strings.Contains(e.Reason, "SKU B on line 3") {
		t.Errorf("gtin dup: %v", e)
	}
}

// Ensure that AllOrNothing stops handing out rows at the first bad one and
// fails, while Partial hands out every good row and succeeds.
func TestParse_Modes(t *testing.T) {
	in := "sku,product_id,gtin,name,price,currency\n" +
		"A,P,4006381333931,n,1,EUR\n" +
		"B,P,036000291452,n,-1,EUR\n" +
		"C,P,96385074,n,1,EUR\n"
	got, rep, err := parseAll(t, CSV, in, Options{})
	if !errors.Is(err, ErrInvalidRows) || len(got) != 1 || rep.Valid != 2 || rep.Invalid != 1 {
		t.Errorf("all-or-nothing: %v, %d handed out, %+v", err, len(got), rep)
	}
	if !strings.Contains(err.Error(), "line 3: price") {
		t.Errorf("error does not name the first bad row: %v", err)
	}
	got, rep, err = parseAll(t, CSV, in, Options{Mode: Partial})
	if err != nil || len(got) != 2 || rep.Valid != 2 || rep.Invalid != 1 {
		t.Errorf("partial: %v, %d handed out, %+v", err, len(got), rep)
	}
	// A callback error stops the parse and is returned with its line.
	stop := errors.New("store full")
	n := 0
	_, err = Parse(strings.NewReader(in), CSV, Options{Mode: Partial}, func(Variant) error {
		n++
		return stop
	})
	if !errors.Is(err, stop) || n != 1 || !strings.Contains(err.Error(), "line 2") {
		t.Errorf("callback error: %v after %d", err, n)
	}
	// A nil callback only validates.
	if _, err := Parse(strings.NewReader(in), CSV, Options{Mode: Partial}, nil); err != nil {
		t.Errorf("nil callback: %v", err)
	}
}

// Ensure that errors past MaxErrors are counted, not kept.
func TestParse_ErrorCap(t *testing.T) {
	var b strings.Builder
	for i := 0; i < 30; i++ {
		b.WriteString(`{"sku":"bad sku"}` + "\n")
	}
	_, rep, err := parseAll(t, JSONL, b.String(), Options{MaxErrors: 10})
	if !errors.Is(err, ErrInvalidRows) || len(rep.Errors) != 10 || rep.Invalid != 30 {
		t.Fatalf("%v %+v", err, rep)
	}
	// Each row has 6 bad fields: sku, product_id, gtin, name, price, currency.
	if rep.ErrorsDropped != 30*6-10 {
		t.Errorf("dropped %d", rep.ErrorsDropped)
	}
	if _, rep, _ = parseAll(t, JSONL, strings.Repeat(`{}`+"\n", 2000), Options{}); len(rep.Errors) != DefaultMaxErrors {
		t.Errorf("default cap: %d", len(rep.Errors))
	}
}

func TestParse_LineTooLong(t *testing.T) {
	long := `{"sku":"A","name":"` + strings.Repeat("x", 5000) + `"}`
	in := long + "\n" + `{"sku":"B","product_id":"P","gtin":"4006381333931","name":"n","price":1,"currency":"EUR"}` + "\n"
	got, rep, err := parseAll(t, JSONL, in, Options{Mode: Partial, MaxLineBytes: 100})
	if err != nil || len(got) != 1 || rep.Errors[0].Line != 1 || !strings.Contains(rep.Errors[0].Reason, "longer") {
		t.Fatalf("%v %+v", err, rep)
	}
}

// Ensure that ParseLines hands out each variant with the line its row
// starts on, multi-line CSV records and blank lines included.
func TestParseLines(t *testing.T) {
	csvIn := "sku,product_id,gtin,name,price,currency\n" +
		"A,P,4006381333931,ok,1,EUR\n" +
		"\n" +
		"B,P,036000291452,\"two, but\n\"\"one\"\" line\",1,EUR\n" + // 4-5: a name with a newline, rejected
		"C,P,96385074,ok,1,EUR\n" // 6
	jsonlIn := "\n" + `{"sku":"A","product_id":"P","gtin":"4006381333931","name":"ok","price":1,"currency":"EUR"}` + "\n\n" +
		`{"sku":"C","product_id":"P","gtin":"96385074","name":"ok","price":1,"currency":"EUR"}`
	for _, tc := range []struct {
		f    Format
		in   string
		want map[string]int
	}{
		{CSV, csvIn, map[string]int{"A": 2, "C": 6}},
		{JSONL, jsonlIn, map[string]int{"A": 2, "C": 4}},
	} {
		got := map[string]int{}
		_, err := ParseLines(strings.NewReader(tc.in), tc.f, Options{Mode: Partial}, func(v Variant, line int) error {
			got[v.SKU] = line
			return nil
		})
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%v: %v %v, want %v", tc.f, got, err, tc.want)
		}
	}
}

// countingReader counts the bytes read through it.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// Ensure that a CSV record longer than MaxLineBytes (here: a quote never
// closed, then megabytes of rows) stops the parse at once, naming the line
// it starts on, instead of buffering the rest of the file as one record.
func TestParse_CSVRecordTooLong(t *testing.T) {
	row := "A%d,P,4006381333931,ok,1,EUR\n"
	var b strings.Builder
	b.WriteString("sku,product_id,gtin,name,price,currency\n")
	b.WriteString(fmt.Sprintf(row, 0))
	b.WriteString("B,P,036000291452,\"never closed,1,EUR\n") // line 3
	for b.Len() < 4<<20 {
		b.WriteString(fmt.Sprintf(row, b.Len()))
	}
	for _, mode := range []Mode{AllOrNothing, Partial} {
		in := &countingReader{r: strings.NewReader(b.String())}
		rep, err := Parse(in, CSV, Options{Mode: mode, MaxLineBytes: 4096}, nil)
		if !errors.Is(err, ErrRecordTooLong) || len(rep.Errors) != 1 || rep.Errors[0].Line != 3 || rep.Rows != rep.Valid+rep.Invalid {
			t.Fatalf("mode %v: %v %+v", mode, err, rep)
		}
		if in.n > 4096+2*csvReadAhead {
			t.Fatalf("mode %v: read %d bytes of the file to refuse it", mode, in.n)
		}
	}
	// A long header too.
	_, err := Parse(strings.NewReader("\""+strings.Repeat("x", 1<<20)), CSV, Options{MaxLineBytes: 1024}, nil)
	if !errors.Is(err, ErrRecordTooLong) {
		t.Fatalf("header: %v", err)
	}
	// Records up to the limit are fine.
	long := strings.Repeat("x", 3000)
	_, rep, err := parseAll(t, CSV, "sku,product_id,gtin,name,price,currency,image_url\nA,P,4006381333931,ok,1,EUR,https://x.example/"+long+"\n",
		Options{Mode: Partial, MaxLineBytes: 4096})
	if err != nil || rep.Rows != 1 {
		t.Fatalf("a 3 KB record: %v %+v", err, rep)
	}
}

// Ensure that Progress is called every N rows and at the end, with growing figures.
func TestParse_Progress(t *testing.T) {
	var buf bytes.Buffer
	vs := Sample(1, 100)
	if err := WriteJSONL(&buf, vs); err != nil {
		t.Fatal(err)
	}
	for _, f := range []Format{CSV, JSONL} {
		in := buf.Bytes()
		if f == CSV {
			var cb bytes.Buffer
			if err := WriteCSV(&cb, vs); err != nil {
				t.Fatal(err)
			}
			in = cb.Bytes()
		}
		var rows []int
		var last int64
		_, err := Parse(bytes.NewReader(in), f, Options{ProgressEvery: 50}, nil)
		if err != nil {
			t.Fatal(err)
		}
		_, err = Parse(bytes.NewReader(in), f, Options{ProgressEvery: 50, Progress: func(r int, b int64) {
			if b < last {
				t.Errorf("%v: bytes went back", f)
			}
			rows, last = append(rows, r), b
		}}, nil)
		if err != nil {
			t.Fatal(err)
		}
		want := []int{}
		for r := 50; r <= len(vs); r += 50 {
			want = append(want, r)
		}
		want = append(want, len(vs))
		if !reflect.DeepEqual(rows, want) || last != int64(len(in)) {
			t.Errorf("%v: progress %v, last bytes %d of %d", f, rows, last, len(in))
		}
	}
}

func TestDetectFormat(t *testing.T) {
	for _, tc := range []struct {
		name, first string
		want        Format
	}{
		{"cat.CSV", "", CSV},
		{"cat.jsonl", "", JSONL},
		{"cat.ndjson", "", JSONL},
		{"-", "\xef\xbb\xbf  {\"sku\":1}", JSONL},
		{"cat.txt", "sku,name\nA,B", CSV},
		{"cat.txt", "hello", 0},
	} {
		got, err := DetectFormat(tc.name, []byte(tc.first))
		if got != tc.want || (tc.want == 0) != errors.Is(err, ErrUnknownFormat) {
			t.Errorf("%q %q: %v %v", tc.name, tc.first, got, err)
		}
	}
	for s, want := range map[string]Format{"csv": CSV, "JSONL": JSONL, "ndjson": JSONL, "xml": 0} {
		if got, _ := ParseFormat(s); got != want {
			t.Errorf("ParseFormat(%q) = %v", s, got)
		}
	}
}

// Ensure that the sample catalog is realistic in shape, valid, unique, and
// reads back unchanged from both formats.
func TestSample(t *testing.T) {
	vs := Sample(1, 1000)
	if len(vs) < 3000 || len(vs) > 6000 {
		t.Fatalf("%d variants", len(vs))
	}
	if !reflect.DeepEqual(vs, Sample(1, 1000)) {
		t.Fatal("not deterministic")
	}
	for _, p := range Group(vs) {
		if n := len(p.Variants); n < 3 || n > 6 {
			t.Errorf("%s has %d variants", p.ID, n)
		}
	}
	for _, v := range vs {
		if errs := v.Validate(); errs != nil {
			t.Fatalf("%s: %v", v.SKU, errs)
		}
		if c := v.PriceMinor % 100; c != 99 && c != 95 {
			t.Fatalf("%s: price %d", v.SKU, v.PriceMinor)
		}
	}
	for _, w := range []struct {
		f     Format
		write func(*bytes.Buffer, []Variant) error
	}{
		{CSV, func(b *bytes.Buffer, v []Variant) error { return WriteCSV(b, v) }},
		{JSONL, func(b *bytes.Buffer, v []Variant) error { return WriteJSONL(b, v) }},
	} {
		var buf bytes.Buffer
		if err := w.write(&buf, vs); err != nil {
			t.Fatal(err)
		}
		got, rep, err := parseAll(t, w.f, buf.String(), Options{})
		if err != nil || len(rep.Errors) != 0 {
			t.Fatalf("%v: %v %v", w.f, err, rep.Errors)
		}
		if !reflect.DeepEqual(got, vs) {
			t.Errorf("%v: round trip differs", w.f)
		}
	}
}

// Ensure that WriteSample streams the same file as writing Sample's
// variants, in both formats, and that an empty catalog is still a file.
func TestWriteSample(t *testing.T) {
	vs := Sample(7, 50)
	for _, f := range []Format{CSV, JSONL} {
		var want, got bytes.Buffer
		if err := writeAll(&want, f, vs); err != nil {
			t.Fatal(err)
		}
		if err := WriteSample(&got, f, 7, 50); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got.Bytes(), want.Bytes()) {
			t.Errorf("%v: WriteSample differs from writing Sample", f)
		}
	}
	var empty bytes.Buffer
	if err := WriteSample(&empty, CSV, 7, 0); err != nil || !strings.HasPrefix(empty.String(), "sku,product_id,") {
		t.Fatalf("empty CSV: %v %q", err, empty.String())
	}
	if _, err := NewWriter(&empty, Format(9)); !errors.Is(err, ErrUnknownFormat) {
		t.Fatalf("unknown format: %v", err)
	}
}

const sampleFile = "testdata/sample-catalog.jsonl"

// Ensure that regenerating the committed sample catalog gives the same bytes.
// Run with -update to rewrite it.
func TestSampleCatalogGolden(t *testing.T) {
	var buf bytes.Buffer
	if err := WriteJSONL(&buf, Sample(1, 1000)); err != nil {
		t.Fatal(err)
	}
	if *update {
		if err := os.WriteFile(sampleFile, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(sampleFile)
	if err != nil {
		t.Fatalf("%v (run go test -run TestSampleCatalogGolden -update)", err)
	}
	if !bytes.Equal(buf.Bytes(), want) {
		t.Fatalf("%s differs from Sample(1, 1000); run with -update if the change is intended", sampleFile)
	}
	f, err := os.Open(filepath.FromSlash(sampleFile))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rep, err := Parse(f, JSONL, Options{}, nil)
	if err != nil || rep.Valid != bytes.Count(want, []byte("\n")) {
		t.Fatalf("%v %+v", err, rep)
	}
}
