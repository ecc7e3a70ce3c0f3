package hub

import (
	"cmp"
	"context"
	"html/template"
	"net/http"
	"slices"
	"time"

	"github.com/omnisync/omnisync/cloud/internal/api"
	"github.com/omnisync/omnisync/cloud/internal/auth"
	"github.com/omnisync/omnisync/cloud/internal/console"
	"github.com/omnisync/omnisync/cloud/internal/store"
)

// dashboardData is what the HQ page shows, to one user: a store
// manager sees only their stores.
type dashboardData struct {
	User      string
	Role      auth.Role
	Stores    []string // a store manager's; empty: every store
	CSRF      string
	Metrics   bool
	Version   string
	Now       time.Time
	Devices   []store.DeviceStatus
	Low       []store.Stock
	Conflicts []store.Conflict
	Dead      []store.DeadLetter
	Err       string
	// Unsynced lists the devices holding events the books lack, oldest
	// first; Overdue those past UnsyncedAlertAge (the console's badge, as
	// the OmniSalesNotInBooks alert in deploy/prometheus).
	Unsynced []unsynced
	Overdue  int
	AlertAge time.Duration
}

// UnsyncedAlertAge is the age of the oldest sale still only at a store
// past which the overview raises its badge; deploy/prometheus/alerts.yml
// (OmniSalesNotInBooks) alerts at the same age.
const UnsyncedAlertAge = 4 * time.Hour

// unsynced is one device's events not yet in the books: how many, and how
// old the oldest is now (its age at the last heartbeat plus the time
// since, so a store offline all day counts all day).
type unsynced struct {
	Store, Device string
	Events        int64
	Age           time.Duration
	Overdue       bool
}

func unsyncedOf(devs []store.DeviceStatus, now time.Time) (out []unsynced, overdue int) {
	for _, d := range devs {
		if d.Backlog <= 0 {
			continue
		}
		age := d.OldestUnackedAge
		if !d.LastHeartbeat.IsZero() {
			age += now.Sub(d.LastHeartbeat)
		}
		u := unsynced{Store: d.Store, Device: d.Device, Events: d.Backlog, Age: age.Round(time.Second), Overdue: age >= UnsyncedAlertAge}
		if u.Overdue {
			overdue++
		}
		out = append(out, u)
	}
	slices.SortFunc(out, func(a, b unsynced) int { return cmp.Compare(b.Age, a.Age) })
	return out, overdue
}

var dashboardTmpl = template.Must(template.New("dash").Funcs(template.FuncMap{
	"ago": func(now, t time.Time) string {
		if t.IsZero() {
			return "never"
		}
		return now.Sub(t).Round(time.Second).String() + " ago"
	},
	"connected": func(now, t time.Time) bool { return !t.IsZero() && now.Sub(t) <= api.DefaultConnectedWithin },
}).Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1"><title>omnisync HQ</title>
<style>` + console.CSS + `</style></head><body>
<header><a class="brand" href="/">omnisync HQ <small>{{.Version}}</small></a>
<nav><a href="/">Overview</a><a href="` + console.InventoryPath + `">Inventory</a></nav>
<form class="search" method="get" action="` + console.InventoryPath + `"><input type="search" name="q" id="q" placeholder="Name, SKU, GTIN or brand" aria-label="Search the catalog"><button type="submit" id="search">Search</button></form>
<div id="who" class="who"><span id="user">{{.User}}</span> · {{.Role}}{{if .Stores}} · stores: <span id="stores">{{range $i, $s := .Stores}}{{if $i}}, {{end}}{{$s}}{{end}}</span>{{end}} · <span id="live-state">connecting</span>
<form method="post" action="/logout"><input type="hidden" name="csrf_token" value="{{.CSRF}}"><button type="submit" id="logout">Log out</button></form></div></header>
<main data-live>
<h1>Overview</h1>
{{if .Err}}<p class="bad">{{.Err}}</p>{{end}}
{{if .Unsynced}}<p id="unsynced-badge" class="{{if .Overdue}}bad{{else}}muted{{end}}">{{if .Overdue}}⚠ {{.Overdue}} device{{if ne .Overdue 1}}s{{end}} hold sales older than {{.AlertAge}} that are not in the books.{{else}}Sales still only at the stores (not yet in the books):{{end}}
{{range .Unsynced}}<span class="{{if .Overdue}}bad{{end}}">{{.Store}}/{{.Device}}: {{.Events}} event{{if ne .Events 1}}s{{end}}, oldest {{.Age}}</span>; {{end}}</p>{{end}}
<h2>Stores and devices</h2>
<div class="scroll"><table><tr><th>store</th><th>device</th><th>state</th><th class="num">applied</th><th class="num">backlog</th><th>oldest unsynced</th><th>last event</th><th>last heartbeat</th></tr>
{{range .Devices}}<tr><td><a href="` + console.StorePath + `{{.Store}}">{{.Store}}</a></td><td>{{.Device}}</td>
<td>{{if connected $.Now .LastHeartbeat}}<span class="ok">connected</span>{{else}}<span class="bad">offline</span>{{end}}</td>
<td class="num">{{.EventsApplied}}</td><td class="num">{{.Backlog}}</td><td>{{.OldestUnackedAge}}</td>
<td>{{ago $.Now .LastEventAt}}</td><td>{{ago $.Now .LastHeartbeat}}</td></tr>
{{else}}<tr><td colspan="8">No store has reported yet.</td></tr>{{end}}
</table></div>
<h2>Open conflicts (oversold)</h2>
<div class="scroll"><table><tr><th>SKU</th><th>location</th><th class="num">available</th><th>reservations at risk</th><th>could fill</th></tr>
{{range .Conflicts}}<tr><td>{{.SKU}}</td><td>{{.Location}}</td><td class="num bad">{{.Available}}</td><td>{{range .Reservations}}{{.}} {{end}}</td>
<td>{{range .Suggestions}}{{.Location}} ({{.Available}}) {{end}}</td></tr>
{{else}}<tr><td colspan="5">None.</td></tr>{{end}}
</table></div>
<h2>Low stock (available &lt; 5)</h2>
<div class="scroll"><table><tr><th>SKU</th><th>location</th><th class="num">on hand</th><th class="num">reserved</th><th class="num">available</th></tr>
{{range .Low}}<tr><td><a href="` + console.SKUPath + `{{.SKU}}">{{.SKU}}</a></td><td>{{.Location}}</td><td class="num">{{.OnHand}}</td><td class="num">{{.Reserved}}</td><td class="num">{{.Available}}</td></tr>
{{else}}<tr><td colspan="5">None.</td></tr>{{end}}
</table></div>
<h2>Dead letters</h2>
<div class="scroll"><table><tr><th>when</th><th>store</th><th>device</th><th>seq</th><th>reason</th></tr>
{{range .Dead}}<tr><td>{{ago $.Now .At}}</td><td>{{.Store}}</td><td>{{.Device}}</td><td>{{.Seq}}</td><td>{{.Reason}}</td></tr>
{{else}}<tr><td colspan="5">None.</td></tr>{{end}}
</table></div>
<p>API: <a href="/v1/stores">/v1/stores</a> · <a href="/v1/inventory?below=5">/v1/inventory?below=5</a> · <a href="/v1/conflicts">/v1/conflicts</a> · <a href="/v1/deadletters">/v1/deadletters</a>{{if .Metrics}} · <a href="/metrics">/metrics</a>{{end}}</p>
<p class="muted">Figures as of {{.Now.Format "15:04:05"}}; this page follows the hub live.</p>
</main><script src="` + console.ScriptPath + `"></script>
</body></html>`))

func dashboard(st *store.Store, version string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
		defer cancel()
		p := auth.From(r.Context())
		stores, limited := p.Stores()
		d := dashboardData{User: p.User, Role: p.Role, Stores: stores, CSRF: p.CSRFToken(), Metrics: p.Can(auth.MetricsRead),
			Version: version, Now: time.Now()}
		var err error
		below := int64(5)
		low := store.StockQuery{Below: &below, Limit: 25}
		var dead []string // nil: every store
		if limited {
			low.Locations, dead = stores, stores
		}
		if d.Devices, err = st.Devices(ctx); err == nil {
			d.Devices = slices.DeleteFunc(d.Devices, func(dv store.DeviceStatus) bool { return !p.MayStore(dv.Store) })
			d.Unsynced, d.Overdue = unsyncedOf(d.Devices, d.Now)
			d.AlertAge = UnsyncedAlertAge
			if d.Low, err = st.ListStock(ctx, low); err == nil {
				if limited {
					d.Conflicts, err = st.Conflicts(ctx, true, 25, stores...)
				} else {
					d.Conflicts, err = st.Conflicts(ctx, true, 25)
				}
				if err == nil {
					d.Dead, err = st.DeadLettersOf(ctx, dead, 10)
				}
			}
		}
		if err != nil {
			d.Err = "Some figures could not be read: " + err.Error()
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		_ = dashboardTmpl.Execute(w, d)
	})
}
