package console

import (
	"fmt"
	"html/template"
	"net/http"
	"slices"
	"time"

	"github.com/omnisync/omnisync/cloud/internal/auth"
	"github.com/omnisync/omnisync/cloud/internal/store"
	"github.com/omnisync/omnisync/shared/events"
)

// CountsPath is the console's page of recent counts and their variances.
const CountsPath = "/console/counts"

// countsWindow is how far back the counts page looks without a since.
const countsWindow = 7 * 24 * time.Hour

var countPages = template.Must(template.Must(pages.Clone()).Parse(`{{define "counts"}}{{template "top" .}}<main>
<h1>Counts and variances</h1>
<p class="muted">Every count line that set a position since <time>{{.Since.Format "2006-01-02 15:04"}}</time> UTC{{if .Store}} at {{.Store}}{{end}}, newest first: what the books expected at the count's snapshot (an RFID sweep's start), what was counted, and the difference at the catalog price.</p>
<form method="get" action="` + CountsPath + `" class="filters"><label>Store <input name="store" value="{{.Store}}" size="10" placeholder="all"></label> <label>Since <input name="since" value="{{.SinceParam}}" size="20" placeholder="168h or 2026-01-31"></label> <button type="submit">Show</button></form>
{{if .Err}}<p class="bad">{{.Err}}</p>{{end}}
<p id="count-totals">{{.Totals.Counts}} count{{if ne .Totals.Counts 1}}s{{end}}, {{.Totals.Lines}} line{{if ne .Totals.Lines 1}}s{{end}}: <b class="bad">{{.Totals.Short}} short</b> ({{amount .Totals.ShortValue}}), {{.Totals.Over}} over ({{amount .Totals.OverValue}}), net <b id="count-net-units">{{.Totals.Net}}</b> units, <b id="count-net-value">{{amount .Totals.NetValue}}</b>.</p>
<h2>Counts</h2>
<div class="scroll"><table id="counts"><tr><th>snapshot (UTC)</th><th>store</th><th>device</th><th>method</th><th class="num">lines</th><th class="num">short</th><th class="num">over</th><th class="num">value</th></tr>
{{range .Counts}}<tr data-event="{{.EventID}}"><td>{{.SnapshotAt.Format "2006-01-02 15:04:05"}}</td><td>{{.Store}}</td><td>{{.Device}}</td><td>{{or .Method "unknown"}}</td><td class="num">{{.Lines}}</td><td class="num">{{.Short}}</td><td class="num">{{.Over}}</td><td class="num{{if lt .Value 0}} bad{{end}}">{{amount .Value}}</td></tr>
{{else}}<tr><td colspan="8">No counts in this window.</td></tr>{{end}}</table></div>
<h2>Lines</h2>
<div class="scroll"><table id="variances"><tr><th>SKU</th><th>location</th><th class="num">expected</th><th class="num">counted</th><th class="num">variance</th><th class="num">unit price</th><th class="num">value</th><th>method</th><th>snapshot (UTC)</th></tr>
{{range .Lines}}<tr data-sku="{{.SKU}}"><td><a href="` + PositionPath + `?sku={{.SKU}}&amp;location={{.Location}}">{{.SKU}}</a></td><td>{{.Location}}</td><td class="num">{{.Expected}}</td><td class="num">{{.Counted}}</td><td class="num{{if lt .Variance 0}} bad{{end}}">{{.Variance}}</td><td class="num">{{if .UnitPrice}}{{amount .UnitPrice}} {{.Currency}}{{else}}<span class="muted">no price</span>{{end}}</td><td class="num">{{amount .Value}}</td><td>{{or .Method "unknown"}}</td><td>{{.SnapshotAt.Format "2006-01-02 15:04:05"}}</td></tr>
{{else}}<tr><td colspan="9">None.</td></tr>{{end}}</table></div>
<p class="muted">Also as JSON: <a href="/v1/counts/variances">/v1/counts/variances</a>. A count that a newer count of the same position had already overtaken records nothing.</p>
</main>{{template "bottom" .}}{{end}}`))

// amount formats minor currency units as 12.34 (the catalog's currency).
func amount(minor int64) string {
	sign := ""
	if minor < 0 {
		sign, minor = "-", -minor
	}
	return fmt.Sprintf("%s%d.%02d", sign, minor/100, minor%100)
}

// countRow is one count event on the counts page.
type countRow struct {
	EventID, Store, Device, Method string
	SnapshotAt                     time.Time
	Lines                          int
	Short, Over, Value             int64
}

type countsPage struct {
	frame
	Store, SinceParam string
	Since             time.Time
	Totals            store.VarianceTotals
	Counts            []countRow
	Lines             []store.CountVariance
}

// counts lists recent counts and their variance lines with totals in
// units and money; a store manager sees only their stores.
func (c *Console) counts(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	d := countsPage{frame: c.frame(r, "Counts"), Store: q.Get("store"), SinceParam: q.Get("since")}
	since, err := store.ParseSince(d.SinceParam, d.Now, countsWindow)
	if err != nil {
		d.Err, since = err.Error(), d.Now.Add(-countsWindow)
	}
	d.Since = since.UTC()
	vq := store.VarianceQuery{Since: since}
	p := auth.From(r.Context())
	if d.Store != "" {
		if events.ValidToken(d.Store) != nil || !p.MayStore(d.Store) {
			c.notFound(w, r, "Not one of your stores.")
			return
		}
		vq.Locations = []string{d.Store}
	} else if stores, limited := p.Stores(); limited {
		vq.Locations = stores
	}
	if d.Lines, err = c.o.Store.CountVariances(r.Context(), vq); err != nil {
		c.internal(w, r, err)
		return
	}
	d.Totals = store.SumVariances(d.Lines)
	d.Counts = countRows(d.Lines)
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	if err := countPages.ExecuteTemplate(w, "counts", d); err != nil {
		c.o.Logger.Error("console page", "page", "counts", "err", err)
	}
}

// countRows groups variance lines by count event, newest snapshot first.
func countRows(vs []store.CountVariance) []countRow {
	idx := map[string]int{}
	var out []countRow
	for _, v := range vs {
		i, ok := idx[v.EventID]
		if !ok {
			i = len(out)
			idx[v.EventID] = i
			out = append(out, countRow{EventID: v.EventID, Store: v.Store, Device: v.Device, Method: v.Method, SnapshotAt: v.SnapshotAt})
		}
		r := &out[i]
		r.Lines++
		r.Value += v.Value
		if v.Variance < 0 {
			r.Short -= v.Variance
		} else {
			r.Over += v.Variance
		}
	}
	slices.SortStableFunc(out, func(a, b countRow) int { return b.SnapshotAt.Compare(a.SnapshotAt) })
	return out
}
