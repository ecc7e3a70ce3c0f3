package catalog

import (
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/omnisync/omnisync/shared/events"
	"github.com/omnisync/omnisync/shared/gs1"
)

// Limits on variant fields. Lengths count characters (runes) except for
// SKU and product id, which are ASCII.
const (
	MaxSKULen       = events.MaxSKULen // the events' SKU rule: 1-64 printable ASCII, no spaces
	MaxProductIDLen = 64
	MaxNameLen      = 200
	MaxBrandLen     = 100
	MaxSizeLen      = 32
	MaxColourLen    = 64
	MaxCategoryLen  = 200
	MaxImageURLLen  = 2048
	MaxGTINs        = 32
	// MaxPriceMinor is the largest price accepted, in minor units; anything
	// larger is taken to be a mistake (a misplaced decimal point).
	MaxPriceMinor = 999_999_999
)

// Variant is one sellable item: a SKU with its GTINs, attributes and price.
type Variant struct {
	SKU       string `json:"sku"`
	ProductID string `json:"product_id"`
	// GTINs are normalised GTIN-14s (see Normalize); the first is the
	// primary one.
	GTINs  []string `json:"gtins"`
	Name   string   `json:"name"`
	Brand  string   `json:"brand,omitempty"`
	Size   string   `json:"size,omitempty"`
	Colour string   `json:"colour,omitempty"`
	// PriceMinor is the price in minor units of Currency (cents for EUR).
	PriceMinor int64 `json:"price_minor"`
	// Currency is an ISO 4217 code, three upper-case letters.
	Currency string `json:"currency"`
	ImageURL string `json:"image_url,omitempty"`
	Category string `json:"category,omitempty"`
}

// Product groups the variants that share a ProductID.
type Product struct {
	ID       string
	Name     string
	Brand    string
	Category string
	Variants []Variant
}

// Group gathers variants into products by ProductID, in order of first
// appearance. Name, Brand and Category come from each product's first
// variant.
func Group(variants []Variant) []Product {
	idx := make(map[string]int)
	var out []Product
	for _, v := range variants {
		i, ok := idx[v.ProductID]
		if !ok {
			i = len(out)
			idx[v.ProductID] = i
			out = append(out, Product{ID: v.ProductID, Name: v.Name, Brand: v.Brand, Category: v.Category})
		}
		out[i].Variants = append(out[i].Variants, v)
	}
	return out
}

// RowError says why one field of one row was rejected.
type RowError struct {
	// Line is the 1-based line the row starts on; 0 when the variant did
	// not come from a file (Validate).
	Line int `json:"line"`
	// Field is the canonical key (sku, product_id, gtin, name, brand, size,
	// colour, price, currency, image_url, category), an unknown key as
	// written, or "" when the row as a whole is malformed.
	Field  string `json:"field"`
	Value  string `json:"value"`
	Reason string `json:"reason"`
}

func (e RowError) Error() string {
	var b strings.Builder
	if e.Line > 0 {
		fmt.Fprintf(&b, "line %d: ", e.Line)
	}
	if e.Field != "" {
		b.WriteString(e.Field)
		if e.Value != "" {
			fmt.Fprintf(&b, " %q", clip(e.Value, 80))
		}
		b.WriteString(": ")
	}
	b.WriteString(e.Reason)
	return b.String()
}

// Normalize tidies a variant as typed by a person: it trims surrounding
// white space from the text fields, upper-cases the currency, rewrites each
// valid GTIN (8, 12, 13 or 14 digits, spaces and hyphens ignored) to its
// GTIN-14 form and drops repeated GTINs. Invalid GTINs are left as they
// are for Validate to report.
func (v *Variant) Normalize() {
	for _, p := range []*string{&v.SKU, &v.ProductID, &v.Name, &v.Brand, &v.Size, &v.Colour, &v.Currency, &v.ImageURL, &v.Category} {
		*p = strings.TrimSpace(*p)
	}
	v.Currency = strings.ToUpper(v.Currency)
	gtins := make([]string, 0, len(v.GTINs))
	for _, g := range v.GTINs {
		g = strings.TrimSpace(g)
		if n, err := gs1.NormalizeGTIN(g); err == nil {
			g = n
		}
		if !slices.Contains(gtins, g) {
			gtins = append(gtins, g)
		}
	}
	v.GTINs = gtins
}

// Validate checks every field of v and returns one RowError (with Line 0)
// per bad field, or nil when v is valid. GTINs must already be normalised
// to GTIN-14; call Normalize first on input from people or other systems.
func (v Variant) Validate() []RowError {
	var errs []RowError
	add := func(field, value, reason string) {
		errs = append(errs, RowError{Field: field, Value: value, Reason: reason})
	}
	if r := checkSKU(v.SKU); r != "" {
		add("sku", v.SKU, r)
	}
	if r := checkToken(v.ProductID, MaxProductIDLen); r != "" {
		add("product_id", v.ProductID, r)
	}
	switch {
	case len(v.GTINs) == 0:
		add("gtin", "", "missing: at least one GTIN is required")
	case len(v.GTINs) > MaxGTINs:
		add("gtin", "", fmt.Sprintf("%d GTINs, at most %d allowed", len(v.GTINs), MaxGTINs))
	default:
		for i, g := range v.GTINs {
			if r := checkGTIN14(g); r != "" {
				add("gtin", g, r)
			} else if slices.Contains(v.GTINs[:i], g) {
				add("gtin", g, "listed twice")
			}
		}
	}
	if r := checkText(v.Name, MaxNameLen, true); r != "" {
		add("name", v.Name, r)
	}
	for _, f := range []struct {
		field, value string
		max          int
	}{{"brand", v.Brand, MaxBrandLen}, {"size", v.Size, MaxSizeLen}, {"colour", v.Colour, MaxColourLen}, {"category", v.Category, MaxCategoryLen}} {
		if r := checkText(f.value, f.max, false); r != "" {
			add(f.field, f.value, r)
		}
	}
	if v.PriceMinor < 0 {
		add("price", fmt.Sprint(v.PriceMinor), "must not be negative")
	} else if v.PriceMinor > MaxPriceMinor {
		add("price", fmt.Sprint(v.PriceMinor), fmt.Sprintf("%d minor units is out of range (at most %d)", v.PriceMinor, MaxPriceMinor))
	}
	if r := checkCurrency(v.Currency); r != "" {
		add("currency", v.Currency, r)
	}
	if r := checkImageURL(v.ImageURL); r != "" {
		add("image_url", v.ImageURL, r)
	}
	return errs
}

func checkSKU(s string) string {
	if s == "" {
		return "missing"
	}
	if len(s) > MaxSKULen {
		return fmt.Sprintf("must be at most %d characters", MaxSKULen)
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= ' ' || c >= 0x7f {
			return fmt.Sprintf("character %q not allowed (printable ASCII without spaces)", c)
		}
	}
	return ""
}

func checkToken(s string, max int) string {
	if s == "" {
		return "missing"
	}
	if len(s) > max {
		return fmt.Sprintf("must be at most %d characters", max)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return fmt.Sprintf("character %q not allowed (letters, digits, '-', '_', '.')", c)
		}
	}
	return ""
}

// checkGTIN14 checks a normalised GTIN-14 and explains the first problem.
func checkGTIN14(g string) string {
	if _, err := gs1.ParseGTIN(g); err != nil {
		var ge *gs1.Error
		if errors.As(err, &ge) {
			return ge.Msg
		}
		return err.Error()
	}
	if len(g) != 14 {
		return "not normalised to 14 digits (call Normalize)"
	}
	return ""
}

func checkText(s string, max int, required bool) string {
	if strings.TrimSpace(s) == "" {
		if required {
			return "missing"
		}
		if s != "" {
			return "only white space"
		}
		return ""
	}
	if !utf8.ValidString(s) {
		return "not valid UTF-8"
	}
	if n := utf8.RuneCountInString(s); n > max {
		return fmt.Sprintf("%d characters, at most %d allowed", n, max)
	}
	for _, r := range s {
		if unicode.IsControl(r) {
			return fmt.Sprintf("control character %U not allowed", r)
		}
	}
	return ""
}

func checkCurrency(s string) string {
	if s == "" {
		return "missing"
	}
	if len(s) != 3 || !isUpper(s[0]) || !isUpper(s[1]) || !isUpper(s[2]) {
		return "must be an ISO 4217 code: three upper-case letters"
	}
	return ""
}

func isUpper(c byte) bool { return c >= 'A' && c <= 'Z' }

func checkImageURL(s string) string {
	if s == "" {
		return ""
	}
	if len(s) > MaxImageURLLen {
		return fmt.Sprintf("must be at most %d bytes", MaxImageURLLen)
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= ' ' || c >= 0x7f {
			return fmt.Sprintf("character %q not allowed (percent-encode it)", c)
		}
	}
	u, err := url.Parse(s)
	if err != nil {
		return "not a URL"
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return "must be an absolute http or https URL"
	}
	if u.Host == "" {
		return "has no host"
	}
	return ""
}

func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}
