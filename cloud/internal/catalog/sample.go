package catalog

import (
	"bufio"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/omnisync/omnisync/shared/gs1"
)

// splitmix64 is the sample generator's random source: tiny, and fixed
// forever, so a seed gives the same catalog on every Go release.
type splitmix64 uint64

func (s *splitmix64) next() uint64 {
	*s += 0x9e3779b97f4a7c15
	z := uint64(*s)
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

func (s *splitmix64) intn(n int) int { return int(s.next() % uint64(n)) }

func pick[T any](s *splitmix64, xs []T) T { return xs[s.intn(len(xs))] }

type sampleSize struct{ name, code string }

type sampleCategory struct {
	path   string
	nouns  []string
	sizes  []sampleSize
	lo, hi int // whole-unit price range
	step   int // extra whole units per size step (bedding, cushions)
}

type sampleDept struct {
	prefix     string
	weight     int
	brands     []string
	adjectives []string
	materials  []string
	categories []sampleCategory
}

var (
	apparelSizes = []sampleSize{{"XS", "XS"}, {"S", "S"}, {"M", "M"}, {"L", "L"}, {"XL", "XL"}, {"XXL", "XXL"}}
	shoeSizes    = func() []sampleSize {
		var s []sampleSize
		for eu := 36; eu <= 46; eu++ {
			s = append(s, sampleSize{fmt.Sprintf("EU %d", eu), strconv.Itoa(eu)})
		}
		return s
	}()
	sampleColours = []sampleSize{
		{"Black", "BLK"}, {"White", "WHT"}, {"Navy", "NVY"}, {"Grey Marl", "GRY"}, {"Olive", "OLV"},
		{"Sand", "SND"}, {"Burgundy", "BRG"}, {"Sky Blue", "SKY"}, {"Rust", "RST"}, {"Forest Green", "FGR"},
		{"Charcoal", "CHR"}, {"Cream", "CRM"}, {"Dusty Pink", "PNK"}, {"Ochre", "OCH"},
	}
)

// sampleDepts is read-only reference data for Sample.
var sampleDepts = []sampleDept{
	{
		prefix: "APP", weight: 50,
		brands:     []string{"Northwind", "Harbour & Pine", "Kestrel", "Atelier Nord", "Fieldcraft", "Lumen Basics"},
		adjectives: []string{"Relaxed", "Slim", "Classic", "Oversized", "Essential", "Heritage", "Everyday", "Tailored"},
		materials:  []string{"Organic Cotton", "Linen", "Merino", "Recycled Polyester", "Cotton Twill", "Brushed Cotton", "Jersey"},
		categories: []sampleCategory{
			{path: "Apparel > Tops > T-Shirts", nouns: []string{"T-Shirt", "Crew Tee", "Pocket Tee"}, sizes: apparelSizes, lo: 12, hi: 35},
			{path: "Apparel > Tops > Shirts", nouns: []string{"Oxford Shirt", "Overshirt", "Camp Collar Shirt"}, sizes: apparelSizes, lo: 29, hi: 79},
			{path: "Apparel > Knitwear > Jumpers", nouns: []string{"Jumper", "Cardigan", "Roll Neck"}, sizes: apparelSizes, lo: 39, hi: 119},
			{path: "Apparel > Bottoms > Trousers", nouns: []string{"Chinos", "Joggers", "Wide-Leg Trousers"}, sizes: apparelSizes, lo: 29, hi: 89},
			{path: "Apparel > Outerwear > Jackets", nouns: []string{"Parka", "Bomber Jacket", "Field Jacket", "Rain Shell"}, sizes: apparelSizes, lo: 69, hi: 249},
			{path: "Apparel > Dresses", nouns: []string{"Midi Dress", "Shirt Dress", "Slip Dress"}, sizes: apparelSizes, lo: 35, hi: 129},
		},
	},
	{
		prefix: "FTW", weight: 25,
		brands:     []string{"Stride & Co", "Alpenweg", "Kestrel", "Soleil"},
		adjectives: []string{"Court", "Trail", "Urban", "Classic", "Lightweight", "Waterproof"},
		materials:  []string{"Leather", "Suede", "Canvas", "Knit", "Nubuck"},
		categories: []sampleCategory{
			{path: "Footwear > Trainers", nouns: []string{"Trainers", "Runners", "Low-Tops"}, sizes: shoeSizes, lo: 49, hi: 159},
			{path: "Footwear > Boots", nouns: []string{"Chelsea Boots", "Hiking Boots", "Lace-Up Boots"}, sizes: shoeSizes, lo: 89, hi: 229},
			{path: "Footwear > Sandals", nouns: []string{"Sandals", "Sliders"}, sizes: shoeSizes, lo: 24, hi: 89},
			{path: "Footwear > Loafers", nouns: []string{"Loafers", "Boat Shoes"}, sizes: shoeSizes, lo: 59, hi: 149},
		},
	},
	{
		prefix: "HOM", weight: 25,
		brands:     []string{"Casa Lumo", "Hearth & Loom", "Nordvik Home", "Oakridge"},
		adjectives: []string{"Waffle", "Stonewashed", "Herringbone", "Ribbed", "Plain", "Striped"},
		materials:  []string{"Linen", "Cotton Percale", "Bamboo", "Wool", "Stoneware", "Velvet"},
		categories: []sampleCategory{
			{path: "Home > Bedding > Duvet Covers", nouns: []string{"Duvet Cover", "Bedding Set"},
				sizes: []sampleSize{{"Single", "SGL"}, {"Double", "DBL"}, {"King", "KNG"}, {"Super King", "SKG"}}, lo: 39, hi: 99, step: 10},
			{path: "Home > Bath > Towels", nouns: []string{"Towel"},
				sizes: []sampleSize{{"Hand 50x90 cm", "HND"}, {"Bath 70x140 cm", "BTH"}, {"Bath Sheet 100x150 cm", "SHT"}}, lo: 7, hi: 29, step: 6},
			{path: "Home > Living > Cushions", nouns: []string{"Cushion Cover", "Cushion"},
				sizes: []sampleSize{{"30x50 cm", "3050"}, {"45x45 cm", "4545"}, {"50x50 cm", "5050"}, {"60x60 cm", "6060"}}, lo: 14, hi: 45, step: 4},
			{path: "Home > Kitchen > Tableware", nouns: []string{"Mug", "Bowl", "Side Plate"},
				sizes: []sampleSize{{"Single", "1PK"}, {"Set of 2", "2PK"}, {"Set of 4", "4PK"}}, lo: 6, hi: 24, step: 8},
		},
	},
}

// sampleBrandIndex numbers every brand once; the number picks its GS1 company prefix.
func sampleBrandIndex() map[string]int {
	idx := make(map[string]int)
	for _, d := range sampleDepts {
		for _, b := range d.brands {
			if _, ok := idx[b]; !ok {
				idx[b] = len(idx)
			}
		}
	}
	return idx
}

// Sample generates a deterministic, realistic apparel, footwear and home
// catalog of the given number of products, 3 to 6 variants each, priced in
// EUR (ending .99 or .95). The same seed and count always give the same
// catalog. Each brand has its own (fictitious) GS1 company prefix
// 50123xx, so every variant has a unique GTIN-13 with a correct check
// digit, stored as GTIN-14. SKUs look like APP-000123-BLK-M, product ids
// like APP-000123. The result passes Validate and parses without errors.
func Sample(seed int64, products int) []Variant {
	out := make([]Variant, 0, products*5)
	_ = SampleEach(seed, products, func(v Variant) error {
		out = append(out, v)
		return nil
	})
	return out
}

// SampleEach hands the variants of Sample(seed, products) to each, one at a
// time, without keeping them: a catalog of any size in constant memory. It
// stops at the first error each returns and returns it.
func SampleEach(seed int64, products int, each func(Variant) error) error {
	rng := splitmix64(seed)
	brandIdx := sampleBrandIndex()
	perBrand := make([]int, len(brandIdx))
	total := 0
	for _, d := range sampleDepts {
		total += d.weight
	}
	for p := 1; p <= products; p++ {
		w := rng.intn(total)
		d := sampleDepts[0]
		for _, dd := range sampleDepts {
			if w < dd.weight {
				d = dd
				break
			}
			w -= dd.weight
		}
		cat := pick(&rng, d.categories)
		brand := pick(&rng, d.brands)
		name := pick(&rng, d.adjectives) + " " + pick(&rng, d.materials) + " " + pick(&rng, cat.nouns)
		pid := fmt.Sprintf("%s-%06d", d.prefix, p)
		whole := cat.lo + rng.intn(cat.hi-cat.lo+1)
		cents := []int64{99, 95}[rng.intn(2)]

		k := 3 + rng.intn(4)
		nc := 1 + rng.intn(2)
		if need := (k + len(cat.sizes) - 1) / len(cat.sizes); need > nc {
			nc = need
		}
		window := (k + nc - 1) / nc
		start := rng.intn(len(cat.sizes) - window + 1)
		c0 := rng.intn(len(sampleColours))
		for i := 0; i < k; i++ {
			colour := sampleColours[(c0+i/window)%len(sampleColours)]
			si := start + i%window
			size := cat.sizes[si]
			b := brandIdx[brand]
			n := perBrand[b]
			perBrand[b]++
			body := fmt.Sprintf("50%05d%05d", 12300+b+100*(n/100000), n%100000)
			cd, _ := gs1.CheckDigit(body) // body is all digits
			err := each(Variant{
				SKU:        fmt.Sprintf("%s-%s-%s", pid, colour.code, size.code),
				ProductID:  pid,
				GTINs:      []string{"0" + body + string(cd)},
				Name:       name,
				Brand:      brand,
				Size:       size.name,
				Colour:     colour.name,
				PriceMinor: int64(whole+si*cat.step)*100 + cents - 100,
				Currency:   "EUR",
				ImageURL:   fmt.Sprintf("https://images.example.com/catalog/%s/%s.jpg", strings.ToLower(pid), strings.ToLower(colour.code)),
				Category:   cat.path,
			})
			if err != nil {
				return err
			}
		}
	}
	return nil
}

// fileRow is a variant as written to JSONL, keys in a fixed order.
type fileRow struct {
	SKU       string      `json:"sku"`
	ProductID string      `json:"product_id"`
	GTINs     []string    `json:"gtins"`
	Name      string      `json:"name"`
	Brand     string      `json:"brand,omitempty"`
	Size      string      `json:"size,omitempty"`
	Colour    string      `json:"colour,omitempty"`
	Price     json.Number `json:"price"`
	Currency  string      `json:"currency"`
	ImageURL  string      `json:"image_url,omitempty"`
	Category  string      `json:"category,omitempty"`
}

// Writer writes variants as a catalog file, one at a time, in a format
// Parse reads back to the same variants: in JSONL the GTIN-14s go in a
// "gtins" array and the price is a decimal number ("price": 19.99); in CSV
// a header row comes first, GTINs are joined with '|' and prices written as
// decimals. Call Flush at the end.
type Writer struct {
	bw      *bufio.Writer
	enc     *json.Encoder // JSONL
	cw      *csv.Writer   // CSV
	started bool
	name    string // of the format, for errors
}

// NewWriter writes a catalog file in format to w.
func NewWriter(w io.Writer, format Format) (*Writer, error) {
	cw := &Writer{bw: bufio.NewWriterSize(w, 64<<10), name: strings.ToUpper(format.String())}
	switch format {
	case JSONL:
		cw.enc = json.NewEncoder(cw.bw)
		cw.enc.SetEscapeHTML(false)
	case CSV:
		cw.cw = csv.NewWriter(cw.bw)
	default:
		return nil, fmt.Errorf("%w: %v", ErrUnknownFormat, format)
	}
	return cw, nil
}

// Write adds one variant.
func (w *Writer) Write(v Variant) error {
	price := FormatPrice(v.PriceMinor, v.Currency)
	if w.enc != nil {
		if err := w.enc.Encode(fileRow{
			SKU: v.SKU, ProductID: v.ProductID, GTINs: v.GTINs, Name: v.Name, Brand: v.Brand,
			Size: v.Size, Colour: v.Colour, Price: json.Number(price),
			Currency: v.Currency, ImageURL: v.ImageURL, Category: v.Category,
		}); err != nil {
			return fmt.Errorf("catalog: writing %s: %w", w.name, err)
		}
		return nil
	}
	if err := w.header(); err != nil {
		return err
	}
	if err := w.cw.Write([]string{v.SKU, v.ProductID, strings.Join(v.GTINs, "|"), v.Name, v.Brand,
		v.Size, v.Colour, price, v.Currency, v.ImageURL, v.Category}); err != nil {
		return fmt.Errorf("catalog: writing %s: %w", w.name, err)
	}
	return nil
}

func (w *Writer) header() error {
	if w.cw == nil || w.started {
		return nil
	}
	w.started = true
	if err := w.cw.Write(csvHeader); err != nil {
		return fmt.Errorf("catalog: writing CSV: %w", err)
	}
	return nil
}

// Flush writes out what is buffered (and a CSV file's header, if no
// variant was written).
func (w *Writer) Flush() error {
	if err := w.header(); err != nil {
		return err
	}
	if w.cw != nil {
		w.cw.Flush()
		if err := w.cw.Error(); err != nil {
			return fmt.Errorf("catalog: writing CSV: %w", err)
		}
	}
	if err := w.bw.Flush(); err != nil {
		return fmt.Errorf("catalog: writing %s: %w", w.name, err)
	}
	return nil
}

// WriteJSONL writes variants as JSON Lines (see Writer).
func WriteJSONL(w io.Writer, variants []Variant) error {
	return writeAll(w, JSONL, variants)
}

// csvHeader is the column order WriteCSV uses.
var csvHeader = []string{"sku", "product_id", "gtin", "name", "brand", "size", "colour", "price", "currency", "image_url", "category"}

// WriteCSV writes variants as CSV with a header row (see Writer).
func WriteCSV(w io.Writer, variants []Variant) error {
	return writeAll(w, CSV, variants)
}

func writeAll(w io.Writer, format Format, variants []Variant) error {
	cw, err := NewWriter(w, format)
	if err != nil {
		return err
	}
	for _, v := range variants {
		if err := cw.Write(v); err != nil {
			return err
		}
	}
	return cw.Flush()
}

// WriteSample writes the catalog Sample(seed, products) would give, in
// format, in constant memory: for demos and for loading a hub with a
// catalog of any size.
func WriteSample(w io.Writer, format Format, seed int64, products int) error {
	cw, err := NewWriter(w, format)
	if err != nil {
		return err
	}
	if err := SampleEach(seed, products, cw.Write); err != nil {
		return err
	}
	return cw.Flush()
}
