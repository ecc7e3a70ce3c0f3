package console

import (
	"cmp"
	"html/template"
	"net/http"
	"slices"
	"time"

	"github.com/omnisync/omnisync/cloud/internal/auth"
	"github.com/omnisync/omnisync/cloud/internal/store"
)

// ChartsPath is the console's page of charts.
const ChartsPath = "/console/charts"

// The charts' windows.
const (
	salesWindow     = 48 * time.Hour
	lagWindow       = 48 * time.Hour
	conflictsWindow = 14 * 24 * time.Hour
)

var chartPages = template.Must(template.Must(pages.Clone()).Parse(`{{define "charts"}}{{template "top" .}}<main>
<h1>Charts</h1>
<p class="muted">Figures as of <time>{{.Now.Format "2006-01-02 15:04"}}</time> UTC{{if .Stores}}, for your stores{{end}}. Times on the axes are UTC (day hour:minute).</p>
{{if .Err}}<p class="bad">{{.Err}}</p>{{end}}
<h2>Sales per hour, last 48 hours</h2>
<p class="muted">Units sold per hour: online (the online warehouse's sales) and in store (every other location).</p>
<figure>{{.Sales}}</figure>
<h2>Sync lag per store, last 48 hours</h2>
<p class="muted">Per five minutes, the age of the oldest event a store's devices held that the hub had not confirmed (seconds; 0 when caught up). The stores with the most lag, at most eight.</p>
<figure>{{.Lag}}</figure>
<h2>Conflicts opened and closed per day, last 14 days</h2>
<figure>{{.Conflicts}}</figure>
<div class="scroll"><table id="conflicts-per-day"><tr><th>day (UTC)</th><th class="num">opened</th><th class="num">closed</th></tr>
{{range .ConflictDays}}<tr><td>{{.Day.Format "2006-01-02"}}</td><td class="num">{{.Opened}}</td><td class="num">{{.Closed}}</td></tr>
{{else}}<tr><td colspan="3">None.</td></tr>{{end}}</table></div>
</main>{{template "bottom" .}}{{end}}`))

type chartsPage struct {
	frame
	Sales, Lag, Conflicts template.HTML
	ConflictDays          []store.DayConflicts
}

// charts draws the sales, sync lag and conflicts charts; a store manager
// sees their stores' only.
func (c *Console) charts(w http.ResponseWriter, r *http.Request) {
	d := chartsPage{frame: c.frame(r, "Charts")}
	var locations []string
	if stores, limited := auth.From(r.Context()).Stores(); limited {
		locations = stores
		if locations == nil {
			locations = []string{}
		}
	}
	now := d.Now.UTC()
	ctx := r.Context()
	sales, err := c.o.Store.SalesPerHour(ctx, now.Add(-salesWindow).Truncate(time.Hour), c.o.OnlineLocation, locations)
	if err != nil {
		c.internal(w, r, err)
		return
	}
	lag, err := c.o.Store.LagHistory(ctx, now.Add(-lagWindow), locations)
	if err != nil {
		c.internal(w, r, err)
		return
	}
	if d.ConflictDays, err = c.o.Store.ConflictsPerDay(ctx, now.Add(-conflictsWindow).Truncate(24*time.Hour), locations); err != nil {
		c.internal(w, r, err)
		return
	}
	d.Sales = salesChart(sales, now).render()
	d.Lag = lagChart(lag, now).render()
	d.Conflicts = conflictsChart(d.ConflictDays, now).render()
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	if err := chartPages.ExecuteTemplate(w, "charts", d); err != nil {
		c.o.Logger.Error("console page", "page", "charts", "err", err)
	}
}

// salesChart is units sold per hour and channel over the last 48 hours,
// every hour present (0 when nothing sold).
func salesChart(hs []store.HourSales, now time.Time) chartSpec {
	to := now.Truncate(time.Hour).Add(time.Hour)
	from := to.Add(-salesWindow)
	spec := chartSpec{ID: "chart-sales", Title: "Units sold per hour by channel", From: from, To: to, Step: time.Hour, Bars: true}
	for _, ch := range []struct{ key, name string }{{"store", "in store"}, {"online", "online"}} {
		byHour := map[time.Time]float64{}
		for _, h := range hs {
			if h.Channel == ch.key {
				byHour[h.Hour] += float64(h.Units)
			}
		}
		s := series{Name: ch.name}
		for t := from; t.Before(to); t = t.Add(time.Hour) {
			s.Points = append(s.Points, point{At: t, V: byHour[t]})
		}
		spec.Series = append(spec.Series, s)
	}
	return spec
}

// lagChart is each store's lag in seconds, the laggiest stores first.
func lagChart(ps []store.LagPoint, now time.Time) chartSpec {
	spec := chartSpec{ID: "chart-lag", Title: "Sync lag per store (seconds)", From: now.Add(-lagWindow), To: now, Format: "%.0f s"}
	worst := map[string]time.Duration{}
	var stores []string
	byStore := map[string][]point{}
	for _, p := range ps {
		if _, ok := byStore[p.Store]; !ok {
			stores = append(stores, p.Store)
		}
		byStore[p.Store] = append(byStore[p.Store], point{At: p.At, V: p.Lag.Seconds()})
		worst[p.Store] = max(worst[p.Store], p.Lag)
	}
	slices.SortStableFunc(stores, func(a, b string) int {
		if c := cmp.Compare(worst[b], worst[a]); c != 0 {
			return c
		}
		return cmp.Compare(a, b)
	})
	for _, s := range stores {
		spec.Series = append(spec.Series, series{Name: s, Points: byStore[s]})
	}
	return spec
}

// conflictsChart is conflicts opened and closed per day.
func conflictsChart(ds []store.DayConflicts, now time.Time) chartSpec {
	to := now.Truncate(24 * time.Hour).Add(24 * time.Hour)
	spec := chartSpec{ID: "chart-conflicts", Title: "Conflicts opened and closed per day", From: to.Add(-conflictsWindow), To: to,
		Step: 24 * time.Hour, Bars: true, DayLabels: true}
	opened, closed := series{Name: "opened"}, series{Name: "closed"}
	for _, d := range ds {
		opened.Points = append(opened.Points, point{At: d.Day, V: float64(d.Opened)})
		closed.Points = append(closed.Points, point{At: d.Day, V: float64(d.Closed)})
	}
	spec.Series = []series{opened, closed}
	return spec
}
