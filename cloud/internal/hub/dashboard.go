package hub

import (
	"context"
	"html/template"
	"net/http"
	"slices"
	"time"

	"github.com/omnisync/omnisync/cloud/internal/api"
	"github.com/omnisync/omnisync/cloud/internal/auth"
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
<html lang="en"><head><meta charset="utf-8"><title>omnisync HQ</title>
<meta http-equiv="refresh" content="5">
<style>
body{font-family:system-ui,sans-serif;margin:1.5rem;color:#1d2733}
h1{font-size:1.4rem}h2{font-size:1.1rem;margin-top:1.6rem}
table{border-collapse:collapse;min-width:40rem}td,th{padding:.3rem .7rem;border-bottom:1px solid #dde;text-align:left}
th{background:#f3f5f8}.ok{color:#177245}.bad{color:#b3261e;font-weight:600}.num{text-align:right}
header{display:flex;justify-content:space-between;align-items:center}header form{display:inline;margin-left:.6rem}
</style></head><body>
<header><h1>omnisync HQ <small>{{.Version}}</small></h1>
<div id="who"><span id="user">{{.User}}</span> · {{.Role}}{{if .Stores}} · stores: <span id="stores">{{range $i, $s := .Stores}}{{if $i}}, {{end}}{{$s}}{{end}}</span>{{end}}
<form method="post" action="/logout"><input type="hidden" name="csrf_token" value="{{.CSRF}}"><button type="submit" id="logout">Log out</button></form></div></header>
{{if .Err}}<p class="bad">{{.Err}}</p>{{end}}
<h2>Stores and devices</h2>
<table><tr><th>store</th><th>device</th><th>state</th><th class="num">applied</th><th class="num">backlog</th><th>oldest unsynced</th><th>last event</th><th>last heartbeat</th></tr>
{{range .Devices}}<tr><td>{{.Store}}</td><td>{{.Device}}</td>
<td>{{if connected $.Now .LastHeartbeat}}<span class="ok">connected</span>{{else}}<span class="bad">offline</span>{{end}}</td>
<td class="num">{{.EventsApplied}}</td><td class="num">{{.Backlog}}</td><td>{{.OldestUnackedAge}}</td>
<td>{{ago $.Now .LastEventAt}}</td><td>{{ago $.Now .LastHeartbeat}}</td></tr>
{{else}}<tr><td colspan="8">No store has reported yet.</td></tr>{{end}}
</table>
<h2>Open conflicts (oversold)</h2>
<table><tr><th>SKU</th><th>location</th><th class="num">available</th><th>reservations at risk</th><th>could fill</th></tr>
{{range .Conflicts}}<tr><td>{{.SKU}}</td><td>{{.Location}}</td><td class="num bad">{{.Available}}</td><td>{{range .Reservations}}{{.}} {{end}}</td>
<td>{{range .Suggestions}}{{.Location}} ({{.Available}}) {{end}}</td></tr>
{{else}}<tr><td colspan="5">None.</td></tr>{{end}}
</table>
<h2>Low stock (available &lt; 5)</h2>
<table><tr><th>SKU</th><th>location</th><th class="num">on hand</th><th class="num">reserved</th><th class="num">available</th></tr>
{{range .Low}}<tr><td><a href="/v1/inventory/{{.SKU}}">{{.SKU}}</a></td><td>{{.Location}}</td><td class="num">{{.OnHand}}</td><td class="num">{{.Reserved}}</td><td class="num">{{.Available}}</td></tr>
{{else}}<tr><td colspan="5">None.</td></tr>{{end}}
</table>
<h2>Dead letters</h2>
<table><tr><th>when</th><th>store</th><th>device</th><th>seq</th><th>reason</th></tr>
{{range .Dead}}<tr><td>{{ago $.Now .At}}</td><td>{{.Store}}</td><td>{{.Device}}</td><td>{{.Seq}}</td><td>{{.Reason}}</td></tr>
{{else}}<tr><td colspan="5">None.</td></tr>{{end}}
</table>
<p>API: <a href="/v1/stores">/v1/stores</a> · <a href="/v1/inventory?below=5">/v1/inventory?below=5</a> · <a href="/v1/conflicts">/v1/conflicts</a> · <a href="/v1/deadletters">/v1/deadletters</a>{{if .Metrics}} · <a href="/metrics">/metrics</a>{{end}}</p>
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
