package console

import (
	"cmp"
	"context"
	"html/template"
	"net/http"
	"slices"
	"time"

	"github.com/omnisync/omnisync/cloud/internal/auth"
	"github.com/omnisync/omnisync/cloud/internal/store"
)

// OverviewPath is the console's first page: every store's sync health,
// the money not yet synced, open conflicts, low stock and dead letters,
// of the viewer's stores.
const OverviewPath = "/"

// overviewPage is what the overview shows, to one user: a store manager
// sees only their stores.
type overviewPage struct {
	frame
	Version   string
	Metrics   bool
	Health    healthView
	Unsynced  unsyncedBadge
	Below     int64
	Low       []store.Stock
	Conflicts []store.Conflict
	Dead      []store.DeadLetter
}

// unsyncedBadge is the overview's line on the money the viewer's devices
// hold that HQ has not confirmed: the devices holding any, oldest first,
// and how many passed Options.UnsyncedAlert (the store page's limit).
type unsyncedBadge struct {
	Devices  []deviceHealth
	Total    store.UnsyncedSales
	Alerting int
	Limit    time.Duration
}

func badgeOf(devs []deviceHealth, limit time.Duration) unsyncedBadge {
	b := unsyncedBadge{Limit: limit}
	for _, d := range devs {
		if d.Unsynced.Count == 0 {
			continue
		}
		b.Devices = append(b.Devices, d)
		b.Total = b.Total.Add(d.Unsynced)
		if d.UnsyncedAlert {
			b.Alerting++
		}
	}
	slices.SortStableFunc(b.Devices, func(x, y deviceHealth) int { return cmp.Compare(y.UnsyncedAge, x.UnsyncedAge) })
	return b
}

func init() {
	template.Must(pages.New("overview").Parse(`{{template "top" .}}<main data-live>
<h1>Overview</h1>
{{if .Err}}<p class="bad">{{.Err}}</p>{{end}}
{{with .Unsynced}}{{if .Devices}}<p id="unsynced-badge" class="{{if .Alerting}}bad{{else}}muted{{end}}">{{if .Alerting}}Warning: {{.Alerting}} device{{if ne .Alerting 1}}s{{end}} hold{{if eq .Alerting 1}}s{{end}} sales older than {{.Limit}} not yet synced to HQ. {{end}}Not yet synced to HQ: {{.Total.Count}} sale{{if ne .Total.Count 1}}s{{end}} worth {{amount .Total.Value}}:
{{range .Devices}}<span class="{{if .UnsyncedAlert}}bad{{end}}" data-device="{{.Store}}/{{.Device}}">{{.Store}}/{{.Device}}: {{.Unsynced.Count}} sale{{if ne .Unsynced.Count 1}}s{{end}} worth {{amount .Unsynced.Value}}, oldest {{.UnsyncedAge}}</span>; {{end}}</p>
{{else}}<p id="unsynced-badge" class="ok">Every sale of {{if $.Stores}}your stores'{{else}}the stores'{{end}} devices has reached HQ.</p>{{end}}{{end}}
<h2>Stores and devices</h2>
{{template "devices" .Health}}
<h2>Open conflicts (oversold)</h2>
<div class="scroll"><table id="overview-conflicts"><tr><th>SKU</th><th>location</th><th class="num">available</th><th>reservations at risk</th><th>could fill</th></tr>
{{range .Conflicts}}<tr><td>{{.SKU}}</td><td>{{.Location}}</td><td class="num bad">{{.Available}}</td><td>{{range .Reservations}}{{.}} {{end}}</td>
<td>{{range .Suggestions}}{{.Location}} ({{.Available}}) {{end}}</td></tr>
{{else}}<tr><td colspan="5">None.</td></tr>{{end}}
</table></div>
<h2>Low stock (available &lt; {{.Below}})</h2>
<p class="muted">{{if .Stores}}Including, at 0, the sizes and colours of the products your stores carry that they have no stock of.{{else}}Positions only: the sizes and colours a store carries but never had are listed on its store page.{{end}}</p>
<div class="scroll"><table id="overview-low"><tr><th>SKU</th><th>location</th><th class="num">on hand</th><th class="num">reserved</th><th class="num">available</th></tr>
{{range .Low}}<tr data-sku="{{.SKU}}" data-loc="{{.Location}}"><td><a href="` + SKUPath + `{{.SKU}}">{{.SKU}}</a></td><td>{{.Location}}</td><td class="num">{{.OnHand}}</td><td class="num">{{.Reserved}}</td><td class="num">{{.Available}}</td></tr>
{{else}}<tr><td colspan="5">None.</td></tr>{{end}}
</table></div>
<h2>Dead letters</h2>
<div class="scroll"><table id="overview-dead"><tr><th>when</th><th>store</th><th>device</th><th>seq</th><th>reason</th></tr>
{{range .Dead}}<tr><td>{{ago $.Now .At}}</td><td>{{.Store}}</td><td>{{.Device}}</td><td>{{.Seq}}</td><td class="wrap">{{.Reason}}</td></tr>
{{else}}<tr><td colspan="5">None.</td></tr>{{end}}
</table></div>
<p class="wrap">API: <a href="/v1/stores">/v1/stores</a> · <a href="/v1/inventory?below={{.Below}}">/v1/inventory?below={{.Below}}</a> · <a href="/v1/conflicts">/v1/conflicts</a> · <a href="/v1/deadletters">/v1/deadletters</a>{{if .Metrics}} · <a href="/metrics">/metrics</a>{{end}}</p>
<p class="muted">Figures as of {{.Now.Format "15:04:05"}}; this page follows the hub live.{{with .Version}} Hub {{.}}.{{end}}</p>
</main>{{template "bottom" .}}`))
}

// overview is the console's first page.
func (c *Console) overview(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
	defer cancel()
	p := auth.From(r.Context())
	stores, limited := p.Stores()
	d := overviewPage{frame: c.frame(r, "Overview"), Version: c.o.Version, Metrics: p.Can(auth.MetricsRead), Below: c.o.LowStock}
	below := d.Below
	low := store.StockQuery{Below: &below, Limit: 25}
	var dead []string // nil: every store
	if limited {
		// A store manager's few stores list the sizes they carry and
		// never had, as their store pages do; across every store that
		// query takes seconds (StockQuery.Carried), too slow for a page
		// that re-reads itself at every change, so HQ finds them on each
		// store's page.
		low.Locations, dead, low.Carried = stores, stores, true
	}
	err := func() error {
		devs, err := c.o.Store.Devices(ctx)
		if err != nil {
			return err
		}
		devs = slices.DeleteFunc(devs, func(dv store.DeviceStatus) bool { return !p.MayStore(dv.Store) })
		d.Health = healthView{ShowStore: true, Now: d.Now, Devices: c.health(devs, d.Now)}
		d.Unsynced = badgeOf(d.Health.Devices, c.o.UnsyncedAlert)
		if d.Low, err = c.o.Store.ListStock(ctx, low); err != nil {
			return err
		}
		if limited {
			d.Conflicts, err = c.o.Store.Conflicts(ctx, true, 25, stores...)
		} else {
			d.Conflicts, err = c.o.Store.Conflicts(ctx, true, 25)
		}
		if err != nil {
			return err
		}
		d.Dead, err = c.o.Store.DeadLettersOf(ctx, dead, 10)
		return err
	}()
	if err != nil {
		// What could be read is shown; the error is the hub's log's.
		c.o.Logger.Error("console overview", "err", err)
		d.Err = "Some figures could not be read; see the hub's log."
	}
	c.render(w, http.StatusOK, "overview", d)
}
