package console

import (
	"cmp"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/omnisync/omnisync/cloud/internal/auth"
	"github.com/omnisync/omnisync/cloud/internal/inventory"
	"github.com/omnisync/omnisync/cloud/internal/store"
	"github.com/omnisync/omnisync/shared/downsync"
	"github.com/omnisync/omnisync/shared/events"
)

// Layout is the console's frame: header, navigation, the live state and
// the script. Pages define "main".
const layout = `{{define "top"}}<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>{{.Title}} · omnisync HQ</title>
<style>` + CSS + `</style></head><body>
<header><a class="brand" href="/">omnisync HQ</a>
<nav><a href="/">Overview</a><a href="` + InventoryPath + `">Inventory</a><a href="` + ConflictsPath + `">Conflicts</a><a href="` + TransfersPath + `">Transfers</a><a href="` + CountsPath + `">Counts</a><a href="` + PickupsPath + `">Pickups</a><a href="` + ExceptionsPath + `">Exceptions</a><a href="` + ChartsPath + `">Charts</a>{{if .CanFitting}}<a href="` + FittingPath + `">Fitting rooms</a>{{end}}</nav>
<form class="search" method="get" action="` + InventoryPath + `"><input type="search" name="q" id="q" value="{{.Query}}" placeholder="Name, SKU, GTIN or brand" aria-label="Search the catalog"><button type="submit" id="search">Search</button></form>
<div id="who" class="who"><span id="user">{{.User}}</span> · {{.Role}}{{if .Stores}} · stores: <span id="stores">{{range $i, $s := .Stores}}{{if $i}}, {{end}}{{$s}}{{end}}</span>{{end}} · <span id="live-state">connecting</span>{{if .LogoutCSRF}}
<form method="post" action="/logout"><input type="hidden" name="csrf_token" value="{{.LogoutCSRF}}"><button type="submit" id="logout">Log out</button></form>{{end}}</div>
</header>{{end}}
{{define "bottom"}}<script src="` + ScriptPath + `"></script></body></html>{{end}}`

// CSS is the console's style sheet (also the dashboard's): readable at
// tablet width, tables scroll sideways rather than squeeze.
const CSS = `body{font-family:system-ui,sans-serif;margin:0;color:#1d2733;background:#fff}
header{display:flex;flex-wrap:wrap;gap:.6rem 1.2rem;align-items:center;padding:.7rem 1.2rem;background:#f3f5f8;border-bottom:1px solid #dde}
header .brand{font-weight:700;color:#1d2733;text-decoration:none}nav a{margin-right:.8rem}
.search{display:flex;gap:.3rem;flex:1 1 16rem}.search input{flex:1;padding:.4rem;border:1px solid #b8c0cc;border-radius:4px;font-size:1rem}
.who{font-size:.9rem}.who form{display:inline}main{padding:1rem 1.2rem}
h1{font-size:1.35rem;margin:.2rem 0 .8rem}h2{font-size:1.08rem;margin-top:1.5rem}
.scroll{overflow-x:auto}table{border-collapse:collapse}td,th{padding:.3rem .6rem;border-bottom:1px solid #dde;text-align:left;vertical-align:top}
th{background:#f3f5f8;position:sticky;top:0}.num{text-align:right;font-variant-numeric:tabular-nums}
.ok,.live-live{color:#177245}.bad,.live-stale,.live-offline{color:#b3261e;font-weight:600}.live-reconnecting,.live-connecting{color:#8a6d00}
.cell b{font-size:1.05rem}.cell small{display:block;color:#5b6675;white-space:nowrap}.zero{color:#8a94a3}.low{background:#fff4e5}.neg{background:#fde8e6}
.conf-low{color:#b3261e}.conf-medium{color:#8a6d00}.conf-high{color:#177245}.muted{color:#5b6675}.hits li{margin:.35rem 0}
td small{display:block;color:#5b6675}.periph{margin-bottom:.3rem;min-width:12rem}.periph small.bad{color:#b3261e;font-weight:400}
.wrap,main p{overflow-wrap:anywhere}`

var pages = template.Must(template.New("console").Funcs(template.FuncMap{
	"money": func(minor int64, cur string) string {
		if cur == "" {
			return ""
		}
		return fmt.Sprintf("%d.%02d %s", minor/100, abs(minor%100), cur)
	},
	"join":   strings.Join,
	"amount": amount,
	"f1":     func(v float64) string { return fmt.Sprintf("%.1f", v) },
	// The sync health's (health.go).
	"signed":  signed,
	"ago":     ago,
	"sinceAt": sinceAt,
}).Parse(layout + `
{{define "inventory"}}{{template "top" .}}<main>
<h1>Inventory</h1>
{{if .Err}}<p class="bad">{{.Err}}</p>{{end}}
{{if .Query}}<p class="muted" id="hits-count">{{len .Hits}} product{{if ne (len .Hits) 1}}s{{end}} for “{{.Query}}”{{if .More}} (first {{len .Hits}}; be more precise){{end}}</p>
<ul class="hits" id="hits">{{range .Hits}}<li><a class="hit" href="` + ProductPath + `{{.ID}}">{{.Name}}</a> <span class="muted">{{.Brand}} · {{.ID}} · {{len .Variants}} variant{{if ne (len .Variants) 1}}s{{end}}: {{range $i, $v := .Variants}}{{if $i}}, {{end}}{{$v.SKU}}{{end}}</span></li>
{{else}}<li>Nothing found. Search by a word of the name, the brand, a SKU or a GTIN.</li>{{end}}</ul>
{{else}}<p class="muted">Search the catalog by a word of the name, the brand, a SKU (or its beginning) or a GTIN.</p>{{end}}
</main>{{template "bottom" .}}{{end}}

{{define "position"}}{{template "top" .}}<main data-live data-skus="{{.SKU}}">
<h1>{{.SKU}} at {{.Location}}</h1>
<p class="muted"><a href="` + SKUPath + `{{.SKU}}">back to the product</a> · figures as of <time>{{.Now.Format "15:04:05"}}</time></p>
{{if .Err}}<p class="bad">{{.Err}}</p>{{end}}
<p id="position-confidence">Confidence <b class="conf-{{.Confidence}}">{{.Confidence}}</b>: {{if .Stock.CountedAt.IsZero}}never counted since stock arrived{{else}}last counted {{.Stock.CountedAt.Format "2006-01-02 15:04"}} UTC{{end}} {{with .Stock.CountMethod}} by {{.}}{{end}} (high: an RFID sweep within 7 days; medium_high: a count by hand within 7 days; medium: any count within 30).</p>
<p id="position-figures">available <b id="position-available">{{.Stock.Available}}</b> · on hand {{.Stock.OnHand}} · reserved {{.Stock.Reserved}} · safety stock <span id="position-safety">{{.Stock.Safety}}</span></p>
{{if .CanWrite}}<form method="post" action="` + PositionPath + `/safety" id="safety-form"><input type="hidden" name="csrf_token" value="{{.CSRF}}"><input type="hidden" name="sku" value="{{.SKU}}"><input type="hidden" name="location" value="{{.Location}}">
<label>Safety stock (kept out of available, never promised online) <input type="number" min="0" name="safety_stock" id="safety" value="{{.Stock.Safety}}" style="width:6rem"></label> <button type="submit" id="set-safety">Set</button></form>{{end}}
<h2>Ledger</h2>
<p class="muted">Newest first; lines older than the ledger's retention are kept as daily totals only. Who: the store whose device sent the event.</p>
<div class="scroll"><table id="ledger"><tr><th>when (event time, UTC)</th><th>what</th><th class="num">qty</th><th class="num">change</th><th>who</th><th>event</th></tr>
{{range .Lines}}<tr><td>{{.At.Format "2006-01-02 15:04:05"}}</td><td>{{.Kind}}</td><td class="num">{{.Qty}}</td><td class="num">{{if eq .Kind "count"}}counted{{else}}{{.Delta}}{{end}}</td><td>{{.Store}}</td><td class="muted">{{.EventID}}</td></tr>
{{else}}<tr><td colspan="6">No ledger lines.</td></tr>{{end}}</table></div>
<h2>Reservations</h2>
<div class="scroll"><table id="reservations"><tr><th>order</th><th class="num">qty</th><th>state</th><th>reserved</th><th>closed</th></tr>
{{range .Reservations}}<tr><td>{{.ID}}</td><td class="num">{{.Qty}}</td><td>{{if .Active}}holding{{else if .ClosedBy}}{{.ClosedBy}}{{else}}not held{{end}}</td><td>{{if not .ReservedAt.IsZero}}{{.ReservedAt.Format "2006-01-02 15:04:05"}}{{end}}</td><td>{{if not .ClosedAt.IsZero}}{{.ClosedAt.Format "2006-01-02 15:04:05"}}{{end}}</td></tr>
{{else}}<tr><td colspan="5">None.</td></tr>{{end}}</table></div>
</main>{{template "bottom" .}}{{end}}

{{define "store"}}{{template "top" .}}<main data-live>
<h1>{{.Store}}</h1>
{{if .Err}}<p class="bad">{{.Err}}</p>{{end}}
{{template "unsynced" .}}
<h2>Sync health</h2>
{{template "devices" .Health}}
<h2>Low stock</h2>
<p class="muted">Positions of {{.Store}} with less than {{.Below}} available, lowest first, with what they sold; figures as of <time>{{.Now.Format "15:04:05"}}</time>. The sizes and colours of a product {{.Store}} carries (holds any variant of) that it has no stock of are listed at 0 as never stocked.</p>
<div class="scroll"><table id="low-stock"><tr><th>SKU</th><th class="num">available</th><th class="num">on hand</th><th class="num">reserved</th><th class="num">sold 7 d</th><th class="num">sold 28 d</th><th class="num">per day</th><th class="num">days of cover</th><th>confidence</th></tr>
{{range .Rows}}<tr data-sku="{{.SKU}}"{{if .Never}} data-never-stocked{{end}}><td><a href="` + PositionPath + `?sku={{.SKU}}&amp;location={{$.Store}}">{{.SKU}}</a>{{if .Never}} <small class="muted">never stocked</small>{{end}}</td><td class="num{{if lt .Available 0}} bad{{end}}">{{.Available}}</td><td class="num">{{.OnHand}}</td><td class="num">{{.Reserved}}</td><td class="num">{{.Sold7}}</td><td class="num">{{.Sold28}}</td><td class="num">{{f1 .PerDay}}</td><td class="num{{if .CoverLow}} bad{{end}}">{{.Cover}}</td><td class="conf-{{.Confidence}}">{{.Confidence}}</td></tr>
{{else}}<tr><td colspan="9">Nothing below {{.Below}}.</td></tr>{{end}}</table></div>
</main>{{template "bottom" .}}{{end}}

{{define "product"}}{{template "top" .}}<main data-live data-skus="{{join .SKUs " "}}">
<h1 id="product-name">{{.Name}}</h1>
<p class="muted">{{if .Brand}}{{.Brand}} · {{end}}{{if .ProductID}}product {{.ProductID}}{{else}}not in the catalog{{end}} · {{len .Cols}} variant{{if ne (len .Cols) 1}}s{{end}} · figures as of <time id="as-of">{{.Now.Format "15:04:05"}}</time></p>
{{if .Err}}<p class="bad">{{.Err}}</p>{{end}}
<h2>Stock by store and size</h2>
<p class="muted">Each cell: <b>available</b> (on hand − reserved − safety), with on hand / reserved below. A position not counted within 7 days says how far to trust it (medium: counted within 30 days; low: longer, or never since stock arrived). Every variant of the catalog is listed, stock or not.</p>
<div class="scroll"><table id="grid"><tr><th>store</th>{{range .Cols}}<th class="num" title="{{.SKU}}">{{.Label}}<small class="muted" style="display:block">{{.SKU}}</small></th>{{end}}<th class="num">total</th></tr>
{{range .Rows}}<tr data-loc="{{.Loc}}"><th>{{.Loc}}</th>{{range .Cells}}<td class="num cell{{if lt .Available 0}} neg{{else if .Low}} low{{end}}{{if not .Has}} zero{{end}}" data-sku="{{.SKU}}" data-loc="{{.Loc}}" data-available="{{.Available}}" data-on-hand="{{.OnHand}}"><a href="` + PositionPath + `?sku={{.SKU}}&amp;location={{.Loc}}" title="history"><b>{{.Available}}</b></a><small>{{.OnHand}} / {{.Reserved}}{{if .Safety}} · s{{.Safety}}{{end}}{{if .InTransit}} · <span class="transit" title="in transit here">+{{.InTransit}} in transit</span>{{end}}{{if and .Has (ne .Confidence "high")}} · <span class="conf-{{.Confidence}}" title="confidence {{.Confidence}}: last count {{if .CountedAt.IsZero}}never{{else}}{{.CountedAt.Format "2006-01-02"}}{{end}}">{{.Confidence}}</span>{{end}}</small></td>{{end}}<td class="num cell"><b>{{.Total.Available}}</b><small>{{.Total.OnHand}} / {{.Total.Reserved}}</small></td></tr>
{{else}}<tr><td colspan="{{len .Cols}}">No store has reported and no stock is recorded.</td></tr>{{end}}
<tr><th>all stores</th>{{range .ColTotals}}<td class="num cell"><b>{{.Available}}</b><small>{{.OnHand}} / {{.Reserved}}</small></td>{{end}}<td class="num cell"><b>{{.All.Available}}</b><small>{{.All.OnHand}} / {{.All.Reserved}}</small></td></tr>
</table></div>
<h2>Sell-through by store</h2>
<div class="scroll"><table id="sell-through"><tr><th>store</th><th class="num">sold 7 d</th><th class="num">per day (7 d)</th><th class="num">sold 28 d</th><th class="num">per day (28 d)</th><th class="num">available</th><th class="num">days of cover</th></tr>
{{range .Rows}}<tr data-loc="{{.Loc}}"><th>{{.Loc}}</th><td class="num">{{.Sold7}}</td><td class="num">{{f1 .PerDay7}}</td><td class="num">{{.Sold28}}</td><td class="num">{{f1 .PerDay28}}</td><td class="num">{{.Total.Available}}</td><td class="num{{if .CoverLow}} bad{{end}}">{{.Cover}}</td></tr>{{end}}
</table></div>
<p class="muted">Per day: units sold less returned over the window. Days of cover: available ÷ the 28-day rate (the 7-day rate when faster).</p>
{{if .Cols}}<h2>Variants</h2><div class="scroll"><table><tr><th>SKU</th><th>size</th><th>colour</th><th>GTIN</th><th class="num">price</th><th>API</th></tr>
{{range .Cols}}<tr><td>{{.SKU}}</td><td>{{.Size}}</td><td>{{.Colour}}</td><td>{{.GTIN}}</td><td class="num">{{money .PriceMinor .Currency}}</td><td><a href="/v1/inventory/{{.SKU}}">JSON</a></td></tr>{{end}}
</table></div>{{end}}
</main>{{template "bottom" .}}{{end}}`))

func abs(v int64) int64 {
	if v < 0 {
		return -v
	}
	return v
}

// FittingPath is the fitting rooms' try-on page (package api), which the
// navigation links to for those who may read it.
const FittingPath = "/fitting"

// frame is what every console page's frame shows.
type frame struct {
	Title  string
	Query  string
	User   string
	Role   auth.Role
	Stores []string
	Now    time.Time
	Err    string
	// LogoutCSRF is the session's CSRF token for the logout form (""
	// for API tokens: nothing to log out of).
	LogoutCSRF string
	CanFitting bool
}

func (c *Console) frame(r *http.Request, title string) frame {
	p := auth.From(r.Context())
	stores, _ := p.Stores()
	return frame{Title: title, User: p.User, Role: p.Role, Stores: stores, Now: c.o.Now(),
		LogoutCSRF: p.CSRFToken(), CanFitting: p.Can(auth.FittingRead)}
}

func (c *Console) render(w http.ResponseWriter, status int, name string, data any) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	if err := pages.ExecuteTemplate(w, name, data); err != nil {
		c.o.Logger.Error("console page", "page", name, "err", err)
	}
}

// maxQuery bounds a search query.
const maxQuery = 200

type inventoryPage struct {
	frame
	Hits []downsync.ProductDoc
	More bool
}

func (c *Console) inventory(w http.ResponseWriter, r *http.Request) {
	d := inventoryPage{frame: c.frame(r, "Inventory")}
	d.Query = strings.TrimSpace(r.URL.Query().Get("q"))
	if len(d.Query) > maxQuery {
		d.Err = fmt.Sprintf("A search is at most %d characters.", maxQuery)
		d.Query = ""
		c.render(w, http.StatusBadRequest, "inventory", d)
		return
	}
	if d.Query != "" {
		const limit = 50
		hits, err := c.o.Store.SearchCatalog(r.Context(), d.Query, limit+1)
		if err != nil {
			c.o.Logger.Error("console search", "err", err)
			d.Err = "The search failed; see the hub's log."
		}
		if len(hits) > limit {
			hits, d.More = hits[:limit], true
		}
		d.Hits = hits
	}
	c.render(w, http.StatusOK, "inventory", d)
}

// A grid column is one variant; a row is one location.
type gridCol struct {
	SKU, Label, Size, Colour, GTIN string
	PriceMinor                     int64
	Currency                       string
}

type gridCell struct {
	SKU, Loc                            string
	OnHand, Reserved, Safety, Available int64
	Has, Low                            bool
	CountedAt                           time.Time
	Confidence                          inventory.Confidence
	// InTransit is what open transfers are bringing here.
	InTransit int64
}

type totals struct{ OnHand, Reserved, Available int64 }

func (t *totals) add(c gridCell) {
	t.OnHand += c.OnHand
	t.Reserved += c.Reserved
	t.Available += c.Available
}

type gridRow struct {
	Loc               string
	Cells             []gridCell
	Total             totals
	Sold7, Sold28     int64
	PerDay7, PerDay28 float64
	Cover             string
	CoverLow          bool
}

type productPage struct {
	frame
	ProductID, Name, Brand string
	SKUs                   []string
	Cols                   []gridCol
	Rows                   []gridRow
	ColTotals              []totals
	All                    totals
}

func (c *Console) product(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if err := validKey(id); err != nil {
		c.notFound(w, r, "No such product.")
		return
	}
	doc, ok, err := c.o.Store.ProductByID(r.Context(), id)
	if err != nil {
		c.internal(w, r, err)
		return
	}
	if !ok {
		c.notFound(w, r, "No product "+id+" in the catalog.")
		return
	}
	c.productGrid(w, r, doc)
}

// sku is a SKU's grid: its product's when the catalog has it, else the
// SKU alone (a hub without a catalog still shows its stock).
func (c *Console) sku(w http.ResponseWriter, r *http.Request) {
	sku := r.PathValue("sku")
	if err := validKey(sku); err != nil {
		c.notFound(w, r, "No such SKU.")
		return
	}
	doc, ok, err := c.o.Store.ProductBySKU(r.Context(), sku)
	if err != nil {
		c.internal(w, r, err)
		return
	}
	if ok {
		http.Redirect(w, r, ProductPath+doc.ID, http.StatusSeeOther)
		return
	}
	rows, err := c.o.Store.StockForSKUs(r.Context(), []string{sku})
	if err != nil {
		c.internal(w, r, err)
		return
	}
	if len(rows) == 0 {
		c.notFound(w, r, "SKU "+sku+" is neither in the catalog nor in any store's books.")
		return
	}
	c.productGrid(w, r, downsync.ProductDoc{Name: sku, Variants: []downsync.VariantDoc{{SKU: sku}}})
}

func (c *Console) productGrid(w http.ResponseWriter, r *http.Request, doc downsync.ProductDoc) {
	ctx := r.Context()
	p := auth.From(ctx)
	d := productPage{frame: c.frame(r, doc.Name), ProductID: doc.ID, Name: doc.Name, Brand: doc.Brand}
	for _, v := range doc.Variants {
		col := gridCol{SKU: v.SKU, Size: v.Size, Colour: v.Colour, PriceMinor: v.PriceMinor, Currency: v.Currency}
		col.Label = strings.TrimSpace(v.Colour + " " + v.Size)
		if col.Label == "" {
			col.Label = v.SKU
		}
		if len(v.GTINs) > 0 {
			col.GTIN = v.GTINs[0]
		}
		d.Cols = append(d.Cols, col)
		d.SKUs = append(d.SKUs, v.SKU)
	}
	stock, err := c.o.Store.StockForSKUs(ctx, d.SKUs)
	if err != nil {
		c.internal(w, r, err)
		return
	}
	devs, err := c.o.Store.Devices(ctx)
	if err != nil {
		c.internal(w, r, err)
		return
	}
	transit, err := c.o.Store.InTransit(ctx, d.SKUs)
	if err != nil {
		c.internal(w, r, err)
		return
	}
	now := c.o.Now()
	sold7, err := c.o.Store.SalesSince(ctx, d.SKUs, now.Add(-7*24*time.Hour))
	if err != nil {
		c.internal(w, r, err)
		return
	}
	sold28, err := c.o.Store.SalesSince(ctx, d.SKUs, now.Add(-28*24*time.Hour))
	if err != nil {
		c.internal(w, r, err)
		return
	}

	// Locations: every store that reported, every location holding one of
	// the SKUs, and the online warehouse; the viewer's only.
	locs := []string{}
	addLoc := func(l string) {
		if p.MayStore(l) && !slices.Contains(locs, l) {
			locs = append(locs, l)
		}
	}
	for _, s := range stock {
		addLoc(s.Location)
	}
	for _, dv := range devs {
		addLoc(dv.Store)
	}
	slices.Sort(locs)
	if i := slices.Index(locs, c.o.OnlineLocation); i > 0 {
		locs = append(append([]string{c.o.OnlineLocation}, locs[:i]...), locs[i+1:]...)
	}
	type key struct{ sku, loc string }
	byKey := make(map[key]store.Stock, len(stock))
	for _, s := range stock {
		byKey[key{s.SKU, s.Location}] = s
	}
	sales := func(ps []store.PositionSales) map[string]int64 {
		m := map[string]int64{}
		for _, s := range ps {
			m[s.Location] += s.Units
		}
		return m
	}
	s7, s28 := sales(sold7), sales(sold28)
	d.ColTotals = make([]totals, len(d.Cols))
	for _, loc := range locs {
		row := gridRow{Loc: loc, Sold7: s7[loc], Sold28: s28[loc]}
		for i, col := range d.Cols {
			cell := gridCell{SKU: col.SKU, Loc: loc}
			if s, ok := byKey[key{col.SKU, loc}]; ok {
				cell.OnHand, cell.Reserved, cell.Safety, cell.Available, cell.Has = s.OnHand, s.Reserved, s.Safety, s.Available, true
				cell.CountedAt, cell.Confidence = s.CountedAt, inventory.ConfidenceOf(s.CountMethod, s.CountedAt, now)
			}
			cell.InTransit = transit[inventory.Key{SKU: col.SKU, Location: loc}]
			cell.Low = cell.Available < c.o.LowStock
			row.Cells = append(row.Cells, cell)
			row.Total.add(cell)
			d.ColTotals[i].add(cell)
			d.All.add(cell)
		}
		row.PerDay7 = float64(row.Sold7) / 7
		row.PerDay28 = float64(row.Sold28) / 28
		row.Cover, row.CoverLow = cover(row.Total.Available, max(row.PerDay7, row.PerDay28))
		d.Rows = append(d.Rows, row)
	}
	c.render(w, http.StatusOK, "product", d)
}

type positionPage struct {
	frame
	CanWrite      bool
	CSRF          string
	Confidence    inventory.Confidence
	SKU, Location string
	Stock         store.Stock
	Lines         []store.LedgerLine
	Reservations  []store.PositionReservation
}

// position is a position's history: its ledger lines and reservations.
func (c *Console) position(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	p := auth.From(r.Context())
	d := positionPage{frame: c.frame(r, "History"), SKU: q.Get("sku"), Location: q.Get("location"), CanWrite: p.Can(auth.InventoryWrite), CSRF: p.CSRFToken()}
	if validKey(d.SKU) != nil || events.ValidToken(d.Location) != nil {
		c.notFound(w, r, "Name a position: ?sku=…&location=….")
		return
	}
	if !auth.From(r.Context()).MayStore(d.Location) {
		c.notFound(w, r, "Not one of your stores.")
		return
	}
	stock, err := c.o.Store.StockForSKUs(r.Context(), []string{d.SKU})
	if err != nil {
		c.internal(w, r, err)
		return
	}
	d.Stock = store.Stock{SKU: d.SKU, Location: d.Location}
	for _, s := range stock {
		if s.Location == d.Location {
			d.Stock = s
		}
	}
	d.Confidence = inventory.ConfidenceOf(d.Stock.CountMethod, d.Stock.CountedAt, c.o.Now())
	if d.Lines, d.Reservations, err = c.o.Store.PositionHistory(r.Context(), d.SKU, d.Location, 200); err != nil {
		c.internal(w, r, err)
		return
	}
	c.render(w, http.StatusOK, "position", d)
}

type lowRow struct {
	store.Stock
	// Never: the store carries the variant's product but has no position
	// of it (StockQuery.Carried).
	Never         bool
	Sold7, Sold28 int64
	PerDay        float64
	Cover         string
	CoverLow      bool
	Confidence    inventory.Confidence
}

type storePage struct {
	frame
	Store    string
	Below    int64
	Rows     []lowRow
	Unsynced unsyncedView
	Health   healthView
}

// storeLow is a store's low stock, lowest first, with sell-through and
// days of cover.
func (c *Console) storeLow(w http.ResponseWriter, r *http.Request) {
	d := storePage{frame: c.frame(r, "Store"), Store: r.PathValue("store"), Below: c.o.LowStock}
	if events.ValidToken(d.Store) != nil || !auth.From(r.Context()).MayStore(d.Store) {
		c.notFound(w, r, "Not one of your stores.")
		return
	}
	d.Title = d.Store
	devs, err := c.o.Store.Devices(r.Context())
	if err != nil {
		c.internal(w, r, err)
		return
	}
	devs = slices.DeleteFunc(devs, func(dv store.DeviceStatus) bool { return dv.Store != d.Store })
	d.Unsynced = c.unsyncedOf(devs, d.Store)
	d.Health = healthView{Now: d.Now, Devices: c.health(devs, d.Now)}
	below := d.Below
	low, err := c.o.Store.ListStock(r.Context(), store.StockQuery{Location: d.Store, Below: &below, Limit: 500, Carried: true})
	if err != nil {
		c.internal(w, r, err)
		return
	}
	skus := make([]string, len(low))
	for i, s := range low {
		skus[i] = s.SKU
	}
	now := c.o.Now()
	sold := func(days int) map[string]int64 {
		ps, e := c.o.Store.SalesSince(r.Context(), skus, now.Add(-time.Duration(days)*24*time.Hour))
		if e != nil {
			err = e
		}
		m := map[string]int64{}
		for _, p := range ps {
			if p.Location == d.Store {
				m[p.SKU] += p.Units
			}
		}
		return m
	}
	s7, s28 := sold(7), sold(28)
	if err != nil {
		c.internal(w, r, err)
		return
	}
	for _, s := range low {
		row := lowRow{Stock: s, Never: s == store.Stock{SKU: s.SKU, Location: s.Location},
			Sold7: s7[s.SKU], Sold28: s28[s.SKU], Confidence: inventory.ConfidenceOf(s.CountMethod, s.CountedAt, now)}
		row.PerDay = max(float64(row.Sold7)/7, float64(row.Sold28)/28)
		row.Cover, row.CoverLow = cover(s.Available, row.PerDay)
		d.Rows = append(d.Rows, row)
	}
	slices.SortStableFunc(d.Rows, func(a, b lowRow) int { return cmp.Compare(a.Available, b.Available) })
	c.render(w, http.StatusOK, "store", d)
}

// setSafety is the position page's form: set the safety stock, then back
// to the page.
func (c *Console) setSafety(w http.ResponseWriter, r *http.Request) {
	sku, loc := r.PostFormValue("sku"), r.PostFormValue("location")
	if validKey(sku) != nil || events.ValidToken(loc) != nil {
		c.notFound(w, r, "Name a position.")
		return
	}
	if !auth.From(r.Context()).MayStore(loc) {
		c.notFound(w, r, "Not one of your stores.")
		return
	}
	qty, err := strconv.ParseInt(strings.TrimSpace(r.PostFormValue("safety_stock")), 10, 64)
	if err != nil || qty < 0 || qty > events.MaxCountQty {
		d := inventoryPage{frame: c.frame(r, "Safety stock")}
		d.Err = fmt.Sprintf("Safety stock must be a whole number from 0 to %d.", events.MaxCountQty)
		c.render(w, http.StatusBadRequest, "inventory", d)
		return
	}
	if err := c.o.Store.SetSafetyStock(r.Context(), sku, loc, qty); err != nil {
		c.internal(w, r, err)
		return
	}
	c.o.Logger.Info("safety stock set", "sku", sku, "location", loc, "safety_stock", qty, "by", auth.From(r.Context()).User)
	if c.o.OnStockChange != nil {
		c.o.OnStockChange([]inventory.Key{{SKU: sku, Location: loc}})
	}
	http.Redirect(w, r, PositionPath+"?"+url.Values{"sku": {sku}, "location": {loc}}.Encode(), http.StatusSeeOther)
}

// cover is days of cover at rate units a day: "—" without sales, and low
// under two weeks.
func cover(available int64, rate float64) (string, bool) {
	if rate <= 0 {
		return "—", false
	}
	if available <= 0 {
		return "0", true
	}
	days := float64(available) / rate
	return fmt.Sprintf("%.0f", days), days < 14
}

func (c *Console) notFound(w http.ResponseWriter, r *http.Request, msg string) {
	d := inventoryPage{frame: c.frame(r, "Not found")}
	d.Err = msg
	c.render(w, http.StatusNotFound, "inventory", d)
}

func (c *Console) internal(w http.ResponseWriter, r *http.Request, err error) {
	c.o.Logger.Error("console", "path", r.URL.Path, "err", err)
	d := inventoryPage{frame: c.frame(r, "Error")}
	d.Err = "Internal error; see the hub's log."
	c.render(w, http.StatusInternalServerError, "inventory", d)
}

func validKey(s string) error {
	if s == "" || len(s) > events.MaxSKULen {
		return fmt.Errorf("must be 1 to %d characters", events.MaxSKULen)
	}
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] >= 0x7f {
			return fmt.Errorf("must be printable ASCII without spaces")
		}
	}
	return nil
}
