package kiosk

import (
	"fmt"
	"html/template"
	"net/url"
	"strings"
	"time"

	"github.com/omnisync/omnisync/shared/downsync"
	"github.com/omnisync/omnisync/shared/events"
)

// place is where the page runs: a fitting-room zone (a mirror) and the
// scanner whose scans it follows. Both are kept in every link.
type place struct {
	Zone    string
	Scanner string
}

// placeOf reads zone and scanner from a query or form; values that are not
// acceptable names are dropped.
func placeOf(v url.Values) place {
	var p place
	if z := strings.TrimSpace(v.Get("zone")); z != "" && len(z) <= 64 && !strings.ContainsFunc(z, isControl) {
		p.Zone = z
	}
	if s := v.Get("scanner"); events.ValidToken(s) == nil {
		p.Scanner = s
	}
	return p
}

func isControl(r rune) bool { return r < ' ' || r == 0x7f }

func (p place) values() url.Values {
	v := url.Values{}
	if p.Zone != "" {
		v.Set("zone", p.Zone)
	}
	if p.Scanner != "" {
		v.Set("scanner", p.Scanner)
	}
	return v
}

// Home is the start screen's URL.
func (p place) Home() string { return withQuery("/kiosk/", p.values()) }

// Product is the URL of a product page: /kiosk/p/CODE when the code is a
// plain name (SKU, GTIN, EPC hex), /kiosk/p/?code=... otherwise (Digital
// Link URIs have slashes the router would clean away).
func (p place) Product(code string, extra url.Values) string {
	v := p.values()
	for k, vs := range extra {
		v[k] = vs
	}
	if code != "" && events.ValidToken(code) == nil {
		return withQuery("/kiosk/p/"+code, v)
	}
	v.Set("code", code)
	return withQuery("/kiosk/p/", v)
}

// Room is the URL of the fitting room's item list fragment, for the page
// shown as view (see room.View).
func (p place) Room(view string) string {
	v := url.Values{}
	if p.Scanner != "" {
		v.Set("scanner", p.Scanner)
	}
	if view != "" {
		v.Set("view", view)
	}
	return withQuery("/kiosk/room/"+url.PathEscape(p.Zone), v)
}

// validView keeps a view id from a query or form when it is one the page
// could have made (nonce: 22 characters of [A-Za-z0-9_-]), else "".
func validView(v string) string {
	if len(v) > 32 || events.ValidToken(v) != nil {
		return ""
	}
	return v
}

func withQuery(path string, v url.Values) string {
	if len(v) == 0 {
		return path
	}
	return path + "?" + v.Encode()
}

// banner is a note across the top of a page.
type banner struct {
	Kind string // ok, warn, err
	Text string
}

// page is everything the layout needs.
type page struct {
	Title     string
	Page      string // start, product, message
	Nonce     string
	CSS       template.CSS
	JS        template.JS
	Place     place
	CSRF      string
	IdleMS    int64
	RefreshMS int64
	Banner    *banner
	Code      string // prefilled in the search box
	Room      *room
	P         *product
	Msg       *message
	// CartOn: the kiosk keeps carts (cart.go); CartURL is its screen.
	CartOn  bool
	CartURL string
	Cart    *cartView
	// Survey is the survey screen (survey.go).
	Survey *surveyView
}

// message is an error or information page.
type message struct {
	Heading string
	Detail  string
	Code    string
	Back    string // link back to a product, if any
}

// product is a product page.
type product struct {
	Name, Brand string
	Image, Alt  string
	Price       string
	PriceFrom   bool
	Selected    *variant
	Groups      []colourGroup
	Rating      rating
	Reviews     []review
	Fresh       string
	Stale       bool
	Form        reviewForm
	// Reviewed hides the form: this visit has reviewed the product.
	Reviewed bool
}

type colourGroup struct {
	Colour   string
	Variants []variant
}

type variant struct {
	SKU, Label, Size, Colour, Price string
	Link                            string
	Selected                        bool
	Here                            stockLabel
	Nearby                          []storeStock
	NearbyWith                      int // nearby stores that have it
	Online                          *stockLabel
}

type storeStock struct {
	Location string
	stockLabel
}

type rating struct {
	Count   int64
	Average string
	Stars   string
	Label   string // "Rated 4.3 out of 5"
	Bars    []bar
}

type bar struct {
	Stars int
	Count int64
	Max   int64
}

type review struct {
	Stars, Label, Title, Text, Nickname, Date string
}

// reviewForm is the review form's state: what the shopper typed and what
// was wrong with it.
type reviewForm struct {
	Code, SKU      string
	Rating         int
	Title, Text    string
	Nickname       string
	Err            map[string]string
	Choices        []int
	MaxTitle       int
	MaxText        int
	MaxNickname    int
	GeneralProblem string
}

func newReviewForm(code, sku string) reviewForm {
	return reviewForm{Code: code, SKU: sku, Choices: []int{5, 4, 3, 2, 1},
		MaxTitle: events.MaxReviewTitle, MaxText: events.MaxReviewText, MaxNickname: events.MaxReviewNickname}
}

// room is a fitting room's item list.
type room struct {
	Zone string
	// URL is the item list's, Stream its changes' (roomstream.go).
	URL, Stream string
	CSRF        string
	Place       place
	// View names one showing of the mirror page (made when the page is
	// rendered, kept by its refreshes): a call for help is sent once per
	// view, so a double tap sends one, and a later call from a new page
	// (after the first was answered) is a new request.
	View  string
	Items []roomItem
	// Suggestions go with the items (suggest.go).
	Suggestions []suggestion
}

type roomItem struct {
	GTIN, Name, Image, Alt string
	Tried, Price, Link     string
	SKU                    string
	Known                  bool
	Options                []assistOption
	// ProductID and Size (of the variant tried) feed the suggestions.
	ProductID, Size string
}

type assistOption struct {
	SKU, Label, Stock string
	Disabled          bool
}

// variantLabel names a variant on its tile: its size, else its name, else
// its SKU.
func variantLabel(v downsync.VariantDoc) string {
	switch {
	case v.Size != "":
		return v.Size
	case v.Name != "":
		return v.Name
	}
	return v.SKU
}

// describe names a variant in a sentence: "size M, Blue".
func describe(v downsync.VariantDoc) string {
	var parts []string
	if v.Size != "" {
		parts = append(parts, "size "+v.Size)
	} else if v.Name != "" {
		parts = append(parts, v.Name)
	}
	if v.Colour != "" {
		parts = append(parts, v.Colour)
	}
	if len(parts) == 0 {
		return v.SKU
	}
	return strings.Join(parts, ", ")
}

// selectedOf returns the index of the variant the view selected (the only
// one when there is one), or -1.
func selectedOf(v downsync.View) int {
	for i, vv := range v.Variants {
		if vv.SKU == v.Selected && v.Selected != "" {
			return i
		}
	}
	if len(v.Variants) == 1 {
		return 0
	}
	return -1
}

// productPage turns a view into the product page.
func productPage(v downsync.View, p place, now time.Time) *product {
	out := &product{
		Name: v.Product.Name, Brand: v.Product.Brand, Image: v.Product.ImageURL,
		Fresh: Freshness(v.AsOf, now, v.Stale), Stale: v.Stale,
	}
	if out.Name == "" {
		out.Name = v.Product.ID
	}
	sel := selectedOf(v)
	minPrice, maxPrice, cur := int64(-1), int64(-1), ""
	byColour := map[string]int{}
	for i, vv := range v.Variants {
		d := variant{
			SKU: vv.SKU, Label: variantLabel(vv.VariantDoc), Size: vv.Size, Colour: vv.Colour,
			Price: FormatPrice(vv.PriceMinor, vv.Currency), Selected: i == sel,
			Link: p.Product(vv.SKU, nil), Here: levelLabel(vv.Stock.Here),
		}
		for j := range vv.Stock.Nearby {
			l := &vv.Stock.Nearby[j]
			d.Nearby = append(d.Nearby, storeStock{Location: l.Location, stockLabel: levelLabel(l)})
			if l.Available > 0 {
				d.NearbyWith++
			}
		}
		if vv.Stock.Online != nil {
			o := levelLabel(vv.Stock.Online)
			d.Online = &o
		}
		if minPrice < 0 || vv.PriceMinor < minPrice {
			minPrice, cur = vv.PriceMinor, vv.Currency
		}
		maxPrice = max(maxPrice, vv.PriceMinor)
		g, ok := byColour[vv.Colour]
		if !ok {
			g = len(out.Groups)
			byColour[vv.Colour] = g
			out.Groups = append(out.Groups, colourGroup{Colour: vv.Colour})
		}
		out.Groups[g].Variants = append(out.Groups[g].Variants, d)
		if i == sel {
			dd := d
			out.Selected = &dd
			out.Price = d.Price
			if vv.ImageURL != "" {
				out.Image = vv.ImageURL
			}
		}
	}
	if out.Selected == nil && minPrice >= 0 {
		out.Price, out.PriceFrom = FormatPrice(minPrice, cur), minPrice != maxPrice
	}
	out.Alt = out.Name
	if out.Selected != nil {
		out.Alt += ", " + describe(v.Variants[sel].VariantDoc)
	}
	r := v.Reviews
	out.Rating = rating{Count: r.Count, Average: fmt.Sprintf("%.1f", r.Average), Stars: stars(r.Average),
		Label: fmt.Sprintf("Rated %.1f out of 5", r.Average)}
	var total int64
	for _, n := range r.Distribution {
		total += n
	}
	for s := 5; s >= 1; s-- {
		out.Rating.Bars = append(out.Rating.Bars, bar{Stars: s, Count: r.Distribution[s-1], Max: max(total, 1)})
	}
	for _, rv := range r.Latest {
		d := review{Stars: stars(float64(rv.Rating)), Label: fmt.Sprintf("%d out of 5 stars", rv.Rating),
			Title: rv.Title, Text: rv.Text, Nickname: rv.Nickname}
		if rv.AtMS > 0 {
			d.Date = time.UnixMilli(rv.AtMS).In(now.Location()).Format("2 Jan 2006")
		}
		if d.Nickname == "" {
			d.Nickname = "A shopper"
		}
		out.Reviews = append(out.Reviews, d)
	}
	sku := ""
	if out.Selected != nil {
		sku = out.Selected.SKU
	}
	out.Form = newReviewForm(v.Code, sku)
	return out
}
