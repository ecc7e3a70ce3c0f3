package api

import (
	"bytes"
	"cmp"
	"fmt"
	"html/template"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/omnisync/omnisync/cloud/internal/catalog"
	"github.com/omnisync/omnisync/shared/downsync"
	"github.com/omnisync/omnisync/shared/gs1"
)

// The shopper's product page, GET /products/{sku}: what a phone shows after
// scanning a shelf tag's Digital Link. Server-rendered, mobile-first, one
// request: no script, font, style sheet or icon from anywhere else (the
// product image is the catalog's own URL, dropped if it does not load).

func productPagePath(sku string) string { return "/products/" + url.PathEscape(sku) }

// wantsHTML reports whether the client is a browser asking for a page.
func wantsHTML(r *http.Request) bool { return accepts(r, "text/html") }

// pageErr answers an error as a small HTML page to browsers, as JSON to
// everything else, with the same status.
func (a *API) pageErr(w http.ResponseWriter, r *http.Request, code int, field, msg string) {
	if !wantsHTML(r) {
		writeErr(w, code, field, msg)
		return
	}
	a.renderPage(w, r, code, errorTmpl, map[string]any{"Status": code, "Title": http.StatusText(code), "Message": msg})
}

func (a *API) renderPage(w http.ResponseWriter, r *http.Request, code int, t *template.Template, data any) {
	var buf bytes.Buffer
	if err := t.Execute(&buf, data); err != nil {
		a.internal(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_, _ = w.Write(buf.Bytes())
}

// productPage renders GET /products/{sku}; serial and lot in the query
// (the resolver passes them on from the Digital Link) are shown too.
func (a *API) productPage(w http.ResponseWriter, r *http.Request) {
	sku := r.PathValue("sku")
	page := func(code int, msg string) {
		a.renderPage(w, r, code, errorTmpl, map[string]any{"Status": code, "Title": http.StatusText(code), "Message": msg})
	}
	if err := validSKU(sku); err != nil {
		page(http.StatusBadRequest, "Not a valid SKU: "+err.Error())
		return
	}
	p, ok, err := a.o.Store.ProductBySKU(r.Context(), sku)
	if err != nil {
		a.internal(w, r, err)
		return
	}
	if !ok {
		page(http.StatusNotFound, "We could not find a product with SKU "+sku+".")
		return
	}
	v, err := a.productView(r.Context(), sku, p, downsync.Match{By: downsync.BySKU, SKU: sku})
	if err != nil {
		a.internal(w, r, err)
		return
	}
	q := r.URL.Query()
	a.renderPage(w, r, http.StatusOK, productTmpl, newPageData(v, clipText(q.Get("serial"), 40), clipText(q.Get("lot"), 40)))
}

func clipText(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// pageData is what the product page template shows.
type pageData struct {
	View      downsync.View
	Title     string
	Selected  downsync.VariantView
	Price     string
	PriceFrom string // set when the variants' prices differ
	GTIN      string
	Serial    string
	Lot       string
	Colours   []colourGroup
	Online    string // the selected variant's online availability, in words
	InStock   bool   // ... and whether it is available online
	Nearby    []downsync.Level
	Rating    rating
	Bars      []bar
	Reviews   []reviewLine
	AsOf      string
}

type colourGroup struct {
	Colour   string
	Variants []chip
}

type chip struct {
	SKU, URL, Size, Note string
	Selected, Out        bool
}

type rating struct {
	Stars   string
	Average string
	Count   int64
}

type bar struct {
	Stars   int
	Count   int64
	Percent int
}

type reviewLine struct {
	Stars, Title, Text, Who, When string
}

func newPageData(v downsync.View, serial, lot string) pageData {
	d := pageData{View: v, Serial: serial, Lot: lot, AsOf: v.AsOf.UTC().Format("2 Jan 2006 15:04 UTC")}
	d.Title = v.Product.Name
	if v.Product.Brand != "" {
		d.Title = v.Product.Brand + " " + v.Product.Name
	}
	lo, hi := int64(math.MaxInt64), int64(-1)
	for _, vv := range v.Variants {
		if vv.SKU == v.Selected {
			d.Selected = vv
		}
		lo, hi = min(lo, vv.PriceMinor), max(hi, vv.PriceMinor)
	}
	if d.Selected.SKU == "" && len(v.Variants) > 0 {
		d.Selected = v.Variants[0]
	}
	sel := d.Selected
	d.Price = money(sel.PriceMinor, sel.Currency)
	if lo != hi && len(v.Variants) > 1 {
		d.PriceFrom = money(lo, sel.Currency)
	}
	if len(sel.GTINs) > 0 {
		d.GTIN = gs1.ShortestGTIN(sel.GTINs[0])
	}
	switch o := sel.Stock.Online; {
	case o == nil:
		d.Online = "no online stock information"
	case o.Available > 0:
		d.Online, d.InStock = fmt.Sprintf("%d available online", o.Available), true
	default:
		d.Online = "out of stock online"
	}
	for _, l := range sel.Stock.Nearby {
		if l.Available > 0 {
			d.Nearby = append(d.Nearby, l)
		}
	}
	// Colours in order of first appearance, sizes in shop order (XS..XXL,
	// EU 36..46, then as listed).
	byColour := map[string]int{}
	variants := slices.Clone(v.Variants)
	slices.SortStableFunc(variants, func(a, b downsync.VariantView) int { return cmp.Compare(sizeRank(a.Size), sizeRank(b.Size)) })
	for _, vv := range variants {
		colour := vv.Colour
		if colour == "" {
			colour = "One colour"
		}
		if _, ok := byColour[colour]; !ok {
			byColour[colour] = len(d.Colours)
			d.Colours = append(d.Colours, colourGroup{Colour: colour})
		}
		size := vv.Size
		if size == "" {
			size = vv.SKU
		}
		c := chip{SKU: vv.SKU, URL: productPagePath(vv.SKU), Size: size, Selected: vv.SKU == sel.SKU}
		online := int64(0)
		if vv.Stock.Online != nil {
			online = vv.Stock.Online.Available
		}
		stores := 0
		for _, l := range vv.Stock.Nearby {
			if l.Available > 0 {
				stores++
			}
		}
		c.Note = fmt.Sprintf("%d online · %s", online, plural(stores, "store"))
		c.Out = online == 0 && stores == 0
		g := &d.Colours[byColour[colour]]
		g.Variants = append(g.Variants, c)
	}
	rev := v.Reviews
	d.Rating = rating{Stars: stars(rev.Average), Average: fmt.Sprintf("%.1f", rev.Average), Count: rev.Count}
	for s := 5; s >= 1; s-- {
		n := rev.Distribution[s-1]
		pct := 0
		if rev.Count > 0 {
			pct = int(n * 100 / rev.Count)
		}
		d.Bars = append(d.Bars, bar{Stars: s, Count: n, Percent: pct})
	}
	for _, r := range rev.Latest {
		who := r.Nickname
		if who == "" {
			who = "A shopper"
		}
		if r.Store != "" {
			who += " · " + r.Store
		}
		d.Reviews = append(d.Reviews, reviewLine{Stars: stars(float64(r.Rating)), Title: r.Title, Text: r.Text, Who: who,
			When: time.UnixMilli(r.AtMS).UTC().Format("2 Jan 2006")})
	}
	return d
}

var apparelSizes = []string{"XXS", "XS", "S", "M", "L", "XL", "XXL", "XXXL"}

// sizeRank orders sizes the way a shop shelf does: letter sizes from small
// to large, then sizes by their first number (EU 36, 45x45 cm), then the
// rest; equal ranks keep their order.
func sizeRank(size string) int {
	if i := slices.Index(apparelSizes, strings.ToUpper(strings.TrimSpace(size))); i >= 0 {
		return i
	}
	n, digits := 0, false
	for _, c := range size {
		if c >= '0' && c <= '9' {
			n, digits = min(n*10+int(c-'0'), 1_000_000), true
		} else if digits {
			break
		}
	}
	if digits {
		return 100 + n
	}
	return 10_000_000
}

func plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return fmt.Sprintf("%d %ss", n, word)
}

// stars renders a rating out of five as filled and empty stars.
func stars(avg float64) string {
	n := int(math.Round(avg))
	n = max(0, min(5, n))
	return strings.Repeat("★", n) + strings.Repeat("☆", 5-n)
}

var currencySymbols = map[string]string{"EUR": "€", "GBP": "£", "USD": "$", "JPY": "¥", "CHF": "CHF ", "SEK": "SEK ", "DKK": "DKK ", "NOK": "NOK "}

func money(minor int64, currency string) string {
	amount := catalog.FormatPrice(minor, currency)
	if sym, ok := currencySymbols[currency]; ok {
		return sym + amount
	}
	return amount + " " + currency
}

const pageStyle = `
*{box-sizing:border-box}
body{margin:0;background:#f2f4f7;color:#1d2733;font:16px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif}
main{max-width:34rem;margin:0 auto;padding:.75rem}
.card{background:#fff;border-radius:14px;box-shadow:0 1px 3px rgba(16,24,40,.12);padding:1rem;margin-bottom:.75rem}
.crumb{color:#5b6675;font-size:.8rem;margin:0 0 .25rem}
h1{font-size:1.35rem;line-height:1.25;margin:.1rem 0 .4rem}
h2{font-size:1.05rem;margin:0 0 .6rem}
h3{font-size:.9rem;color:#5b6675;margin:.8rem 0 .4rem;font-weight:600}
.hero{display:block;width:100%;max-height:18rem;object-fit:cover;border-radius:10px;margin:.5rem 0;background:#e8ebf0}
.price{font-size:1.5rem;font-weight:700;margin:.2rem 0}
.from{color:#5b6675;font-size:.85rem;font-weight:400}
.stars{color:#e0a100;letter-spacing:.05em}
.muted{color:#5b6675;font-size:.85rem}
.ok{color:#177245;font-weight:600}.bad{color:#b3261e;font-weight:600}
.chips{display:flex;flex-wrap:wrap;gap:.45rem;list-style:none;margin:0;padding:0}
.chip a{display:block;min-width:4.6rem;padding:.45rem .6rem;border:1.5px solid #cdd3dc;border-radius:10px;text-decoration:none;color:inherit;text-align:center}
.chip.sel a{border-color:#1d4ed8;background:#eef3ff}
.chip.out a{color:#8a94a3;border-style:dashed}
.chip b{display:block;font-size:.95rem}.chip small{display:block;font-size:.7rem;color:#5b6675;white-space:nowrap}
.facts{display:grid;grid-template-columns:auto 1fr;gap:.2rem .8rem;margin:.4rem 0 0;font-size:.9rem}
.facts dt{color:#5b6675}.facts dd{margin:0;overflow-wrap:anywhere}
ul.stores{list-style:none;padding:0;margin:.3rem 0 0}ul.stores li{display:flex;justify-content:space-between;padding:.25rem 0;border-bottom:1px solid #edf0f3}
.bars{display:grid;grid-template-columns:auto 1fr auto;gap:.25rem .5rem;align-items:center;font-size:.8rem}
.bar{height:.5rem;background:#edf0f3;border-radius:4px;overflow:hidden}.bar i{display:block;height:100%;background:#e0a100}
.review{border-top:1px solid #edf0f3;padding:.6rem 0 .2rem}.review p{margin:.2rem 0}
footer{color:#5b6675;font-size:.75rem;text-align:center;padding:.5rem 0 1.5rem}
`

var productTmpl = template.Must(template.New("product").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.Title}}</title>
<style>` + pageStyle + `</style></head>
<body><main>
<section class="card" id="product">
{{with .View.Product.Category}}<p class="crumb">{{.}}</p>{{end}}
{{with .View.Product.Brand}}<p class="crumb" id="brand">{{.}}</p>{{end}}
<h1 id="product-name">{{.View.Product.Name}}</h1>
{{with .Selected.ImageURL}}<img class="hero" src="{{.}}" alt="" loading="lazy" onerror="this.remove()">{{else}}{{with .View.Product.ImageURL}}<img class="hero" src="{{.}}" alt="" loading="lazy" onerror="this.remove()">{{end}}{{end}}
<p class="price" id="price">{{.Price}}{{with .PriceFrom}} <span class="from">other sizes from {{.}}</span>{{end}}</p>
<p id="rating">{{if .Rating.Count}}<span class="stars" aria-hidden="true">{{.Rating.Stars}}</span> {{.Rating.Average}} · <a href="#reviews">{{.Rating.Count}} review{{if ne .Rating.Count 1}}s{{end}}</a>{{else}}<span class="muted">No reviews yet</span>{{end}}</p>
<dl class="facts" id="selected">
{{with .Selected.Colour}}<dt>Colour</dt><dd>{{.}}</dd>{{end}}
{{with .Selected.Size}}<dt>Size</dt><dd id="selected-size">{{.}}</dd>{{end}}
<dt>SKU</dt><dd>{{.Selected.SKU}}</dd>
{{with .GTIN}}<dt>GTIN</dt><dd>{{.}}</dd>{{end}}
{{with .Lot}}<dt>Lot</dt><dd id="lot">{{.}}</dd>{{end}}
{{with .Serial}}<dt>Serial</dt><dd id="serial">{{.}}</dd>{{end}}
</dl>
</section>

<section class="card" id="availability">
<h2>Where to get it</h2>
<p id="online" class="{{if .InStock}}ok{{else}}bad{{end}}">{{.Online}}</p>
<p id="nearby">{{if .Nearby}}In {{len .Nearby}} nearby store{{if ne (len .Nearby) 1}}s{{end}}:{{else}}<span class="muted">Not in stock in any nearby store.</span>{{end}}</p>
{{if .Nearby}}<ul class="stores">{{range .Nearby}}<li><span>{{.Location}}</span><span>{{.Available}} available</span></li>{{end}}</ul>{{end}}
</section>

<section class="card" id="variants">
<h2>Sizes and colours</h2>
{{range .Colours}}<h3>{{.Colour}}</h3>
<ul class="chips">{{range .Variants}}<li class="chip{{if .Selected}} sel{{end}}{{if .Out}} out{{end}}" data-sku="{{.SKU}}"><a href="{{.URL}}"{{if .Selected}} aria-current="true"{{end}}><b>{{.Size}}</b><small>{{.Note}}</small></a></li>{{end}}</ul>
{{end}}
</section>

<section class="card" id="reviews">
<h2>Reviews</h2>
{{if .Rating.Count}}<p><span class="stars">{{.Rating.Stars}}</span> <b>{{.Rating.Average}}</b> out of 5 · {{.Rating.Count}} review{{if ne .Rating.Count 1}}s{{end}}</p>
<div class="bars">{{range .Bars}}<span>{{.Stars}} ★</span><span class="bar"><i style="width:{{.Percent}}%"></i></span><span>{{.Count}}</span>{{end}}</div>
{{range .Reviews}}<div class="review"><p><span class="stars">{{.Stars}}</span> <b>{{.Title}}</b></p>{{with .Text}}<p>{{.}}</p>{{end}}<p class="muted">{{.Who}} · {{.When}}</p></div>{{end}}
{{else}}<p class="muted">No reviews yet. Be the first at one of our stores.</p>{{end}}
</section>
<footer>Stock as of {{.AsOf}}</footer>
</main></body></html>
`))

var errorTmpl = template.Must(template.New("error").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.Title}}</title>
<style>` + pageStyle + `</style></head>
<body><main><section class="card" id="error">
<p class="crumb">{{.Status}} {{.Title}}</p>
<h1>Sorry, we cannot show this product</h1>
<p id="message">{{.Message}}</p>
</section></main></body></html>
`))
