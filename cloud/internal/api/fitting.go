package api

import (
	"html/template"
	"net/http"
	"time"

	"github.com/omnisync/omnisync/cloud/internal/auth"
	"github.com/omnisync/omnisync/cloud/internal/store"
	"github.com/omnisync/omnisync/shared/events"
)

// maxTryOnDays bounds the period of a try-on query.
const maxTryOnDays = 92

// registerFitting adds the try-on analytics: GET /v1/fitting/tryons (JSON)
// and GET /fitting (the page), both fitting:read; a store manager sees
// their stores only.
func (a *API) registerFitting(rt *auth.Router) {
	rt.HandleFunc("GET /v1/fitting/tryons", auth.Need(auth.FittingRead), a.tryOns)
	rt.HandleFunc("GET /fitting", auth.Page(auth.FittingRead), a.tryOnPage)
}

// tryOnQuery reads ?from=&to= (days, YYYY-MM-DD, UTC; default the last 7
// days) and ?store=, answering the error itself when they are bad.
func (a *API) tryOnQuery(w http.ResponseWriter, r *http.Request) (from, to string, stores []string, ok bool) {
	q := r.URL.Query()
	now := time.Now
	if a.o.Now != nil {
		now = a.o.Now
	}
	today := now().UTC()
	to, from = today.Format(time.DateOnly), today.AddDate(0, 0, -6).Format(time.DateOnly)
	var tf, tt time.Time
	var err error
	if v := q.Get("to"); v != "" {
		if tt, err = time.Parse(time.DateOnly, v); err != nil {
			writeErr(w, http.StatusBadRequest, "to", "must be a day, YYYY-MM-DD")
			return "", "", nil, false
		}
		to = v
	} else {
		tt, _ = time.Parse(time.DateOnly, to)
	}
	if v := q.Get("from"); v != "" {
		if tf, err = time.Parse(time.DateOnly, v); err != nil {
			writeErr(w, http.StatusBadRequest, "from", "must be a day, YYYY-MM-DD")
			return "", "", nil, false
		}
		from = v
	} else {
		tf = tt.AddDate(0, 0, -6)
		from = tf.Format(time.DateOnly)
	}
	if tf.After(tt) {
		writeErr(w, http.StatusBadRequest, "from", "must not be after to")
		return "", "", nil, false
	}
	if tt.Sub(tf) > maxTryOnDays*24*time.Hour {
		writeErr(w, http.StatusBadRequest, "from", "the period is at most 92 days")
		return "", "", nil, false
	}
	p := auth.From(r.Context())
	if st := q.Get("store"); st != "" {
		if err := events.ValidToken(st); err != nil {
			writeErr(w, http.StatusBadRequest, "store", err.Error())
			return "", "", nil, false
		}
		if !p.MayStore(st) {
			writeErr(w, http.StatusForbidden, "store", "not one of your stores")
			return "", "", nil, false
		}
		stores = []string{st}
	} else if mine, limited := p.Stores(); limited {
		stores = mine
		if len(stores) == 0 {
			stores = []string{"\x00none"} // a manager of no store sees nothing
		}
	}
	return from, to, stores, true
}

// tryOns answers the try-on analytics: per store and room, the visits
// and requests to staff; per room and product, the visits that tried it,
// of those the ones that bought it within the visit (an hour) and the
// same day, the try-to-buy rate and the sizes asked for.
func (a *API) tryOns(w http.ResponseWriter, r *http.Request) {
	from, to, stores, ok := a.tryOnQuery(w, r)
	if !ok {
		return
	}
	t, err := a.o.Store.TryOnStats(r.Context(), from, to, stores)
	if err != nil {
		a.internal(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, t)
}

var tryOnTmpl = template.Must(template.New("tryon").Funcs(template.FuncMap{"pct": func(f float64) float64 { return f * 100 }}).Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Fitting rooms · omnisync</title>
<style>body{font:15px/1.4 system-ui,sans-serif;margin:1.5rem;color:#1b1b1b}table{border-collapse:collapse;margin:.5rem 0 1.5rem}
th,td{padding:.3rem .6rem;border-bottom:1px solid #ddd;text-align:left}td.n{text-align:right;font-variant-numeric:tabular-nums}
form{margin:0 0 1rem}input{font:inherit}</style></head><body>
<p><a href="/">← Dashboard</a></p>
<h1>Fitting rooms</h1>
<form method="get" action="/fitting">From <input type="date" name="from" value="{{.From}}"> to <input type="date" name="to" value="{{.To}}">
 store <input name="store" value="{{.Store}}" size="10" placeholder="all"> <button>Show</button></form>
<h2>Rooms</h2>
{{if .T.Rooms}}<table id="rooms"><tr><th>Store</th><th>Room</th><th>Visits</th><th>Requests to staff</th><th>Escalated</th></tr>
{{range .T.Rooms}}<tr><td>{{.Store}}</td><td>{{.Zone}}</td><td class="n">{{.Visits}}</td><td class="n">{{.Requests}}</td><td class="n">{{.Escalated}}</td></tr>{{end}}
</table>{{else}}<p>No fitting-room visits in this period.</p>{{end}}
<h2>Products tried</h2>
{{if .T.Products}}<table id="products"><tr><th>Store</th><th>Room</th><th>Product</th><th>Tried</th><th>Bought in the visit</th><th>Bought the same day</th><th>Try-to-buy</th><th>Sizes asked for</th></tr>
{{range .T.Products}}<tr><td>{{.Store}}</td><td>{{.Zone}}</td><td>{{if .Name}}{{.Name}} {{end}}<small>{{.ProductID}}</small></td><td class="n">{{.Tried}}</td><td class="n">{{.BoughtVisit}}</td><td class="n">{{.BoughtDay}}</td>
<td class="n">{{printf "%.0f%%" (pct .Rate)}}</td><td>{{range $s, $n := .Sizes}}{{$s}}×{{$n}} {{end}}</td></tr>{{end}}
</table>{{else}}<p>No products tried in this period.</p>{{end}}
<p>API: <a href="/v1/fitting/tryons?from={{.From}}&amp;to={{.To}}">/v1/fitting/tryons</a></p>
</body></html>`))

// tryOnPage is the try-on analytics for people: the same figures as
// tryOns, as tables.
func (a *API) tryOnPage(w http.ResponseWriter, r *http.Request) {
	from, to, stores, ok := a.tryOnQuery(w, r)
	if !ok {
		return
	}
	t, err := a.o.Store.TryOnStats(r.Context(), from, to, stores)
	if err != nil {
		a.internal(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	_ = tryOnTmpl.Execute(w, struct {
		From, To, Store string
		T               store.TryOn
	}{from, to, r.URL.Query().Get("store"), t})
}
