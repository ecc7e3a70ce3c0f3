package hub

import (
	"context"
	"errors"
	"html/template"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/omnisync/omnisync/cloud/internal/auth"
	"github.com/omnisync/omnisync/cloud/internal/store"
	"github.com/omnisync/omnisync/shared/ids"
)

// The customers page: find a customer by any identifier, see the 360
// (identifiers with the evidence of each link, merges, profile, consent,
// purchases, carts), undo a merge, erase the person and follow the
// erasure's state per store. Reading needs customers:read (a store manager
// finds only customers who identified at their stores); the forms post
// with the session's CSRF token and need customers:admin, and are answered
// with a redirect, so a reload never acts twice.

type customersData struct {
	User, CSRF, Identifier, Flash, Err string
	Admin                              bool
	View                               *store.CustomerView
	Erasure                            *store.Erasure
}

var customersTmpl = template.Must(template.New("cust").Funcs(template.FuncMap{
	"when": func(t time.Time) string {
		if t.IsZero() {
			return ""
		}
		return t.UTC().Format("2006-01-02 15:04:05")
	},
	"money": func(cents int64) string {
		neg := cents < 0
		if neg {
			cents = -cents
		}
		out := itoa(cents/100) + "." + pad2(cents%100)
		if neg {
			out = "-" + out
		}
		return out
	},
}).Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>Customers · omnisync HQ</title>
<style>
body{font-family:system-ui,sans-serif;margin:1.5rem;color:#1d2733;max-width:70rem}
h1{font-size:1.4rem}h2{font-size:1.1rem;margin-top:1.4rem}
table{border-collapse:collapse;margin:.4rem 0}td,th{border-bottom:1px solid #dde;padding:.3rem .6rem;text-align:left;font-size:.92rem}
.meta{color:#5b6573;font-size:.9rem}.flash{background:#e8f4ec;padding:.5rem .8rem;border-radius:6px}.bad{color:#b3261e;font-weight:600}
.pending{color:#9a6700;font-weight:600}.done{color:#1a7f37;font-weight:600}.danger{background:#fbe9e7;padding:.6rem .8rem;border-radius:6px}
input[name=identifier]{width:22rem}button{padding:.35rem .8rem}
</style></head><body>
<h1>Customers</h1>
<p><a href="/">← HQ</a> · <span id="user">{{.User}}</span></p>
<form method="get" action="/customers" id="search"><input name="identifier" value="{{.Identifier}}" placeholder="email:ann@shop.example, loyalty:LC-1, phone:+8210…" required>
<button type="submit">Find</button></form>
{{if .Flash}}<p class="flash" id="flash">{{.Flash}}</p>{{end}}
{{if .Err}}<p class="bad" id="error">{{.Err}}</p>{{end}}
{{with .Erasure}}<section id="erasure"><h2>Erasure {{.ID}}</h2>
<p class="meta">requested {{when .RequestedAt}} by {{.Operator}} · {{if .Done}}<span class="done" id="erasure-state">done everywhere</span>{{else}}<span class="pending" id="erasure-state">waiting for stores</span>{{end}}</p>
<table id="erasure-stores"><tr><th>store</th><th>state</th><th>since / at</th></tr>
{{range .Stores}}<tr class="store-{{.Store}}"><td>{{.Store}}</td><td class="{{.State}}">{{.State}}</td><td>{{if eq .State "done"}}{{when .At}}{{else}}pending since {{when .Since}}{{end}}</td></tr>{{else}}<tr><td colspan="3">no store held this customer</td></tr>{{end}}
</table></section>{{end}}
{{with .View}}<section id="customer"><h2>Customer <span id="customer-id">{{.ID}}</span></h2>
{{if .Requested}}<p class="meta">{{.Requested}} was merged into this customer.</p>{{end}}
<p class="meta">identified at: {{range .Stores}}{{.}} {{end}}</p>
<h2>Identifiers</h2><table id="identifiers"><tr><th>type</th><th>value</th><th>linked by</th><th>at</th></tr>
{{range .Identifiers}}<tr><td>{{.Type}}</td><td class="value">{{.Value}}</td><td>{{.Evidence.Rule}}{{if .Evidence.Store}} at {{.Evidence.Store}}/{{.Evidence.Device}}{{end}}{{if .Evidence.Operator}} by {{.Evidence.Operator}}{{end}} <span class="meta">({{.Via}})</span></td><td>{{when .At}}</td></tr>{{end}}</table>
<h2>Merges</h2>{{if .Merges}}<table id="merges"><tr><th>merged</th><th>by</th><th>at</th><th></th></tr>
{{range .Merges}}<tr><td>{{range .Joined}}{{.}} {{end}}</td><td>{{.Evidence.Rule}}{{if .Evidence.Store}} at {{.Evidence.Store}}/{{.Evidence.Device}}{{end}}</td><td>{{when .At}}</td>
<td>{{if $.Admin}}<form method="post" action="/customers"><input type="hidden" name="csrf_token" value="{{$.CSRF}}"><input type="hidden" name="action" value="unmerge">
<input type="hidden" name="id" value="{{$.View.ID}}"><input type="hidden" name="observation" value="{{.Observation}}"><button class="unmerge">Unmerge</button></form>{{end}}</td></tr>{{end}}</table>
{{else}}<p id="no-merges">None.</p>{{end}}
<h2>Profile</h2><table id="profile">{{range $k, $v := .Profile}}<tr><th>{{$k}}</th><td>{{$v}}</td></tr>{{else}}<tr><td>nothing recorded</td></tr>{{end}}</table>
<h2>Consent</h2><table id="consent"><tr><th>purpose</th><th>now</th><th>why</th></tr>
{{range .Flags}}<tr class="consent-{{.Purpose}}"><td>{{.Purpose}}</td><td class="allowed">{{if .Allowed}}allowed{{else}}not allowed{{end}}</td><td>{{.Reason}}</td></tr>{{end}}</table>
<table id="decisions"><tr><th>purpose</th><th>decision</th><th>channel</th><th>where</th><th>text</th></tr>
{{range .Consent}}<tr><td>{{.Purpose}}</td><td>{{.Status}}</td><td>{{if .Channel}}{{.Channel}}{{else}}every channel{{end}}</td><td>{{.Evidence.Source}} {{.Evidence.Store}}/{{.Evidence.Device}}{{.Evidence.Operator}}</td><td>{{.Evidence.TextVersion}}</td></tr>{{end}}</table>
<h2>Purchases</h2><table id="purchases"><tr><th>at</th><th>kind</th><th>where</th><th>items</th><th>amount</th></tr>
{{range .Purchases}}<tr><td>{{when .At}}</td><td>{{.Kind}}</td><td>{{.Location}}{{if .OrderID}} order {{.OrderID}}{{end}}</td><td>{{.Items}}</td><td>{{money .Amount}}</td></tr>{{else}}<tr><td colspan="5">none</td></tr>{{end}}</table>
<h2>Open carts</h2><p id="carts">{{len .Carts}} open</p>
{{if $.Admin}}<div class="danger"><form method="post" action="/customers" id="erase"><input type="hidden" name="csrf_token" value="{{$.CSRF}}"><input type="hidden" name="action" value="erase">
<input type="hidden" name="id" value="{{.ID}}"><label><input type="checkbox" name="confirm" value="yes" required> Erase this person everywhere (cannot be undone)</label>
<input name="reason" placeholder="reason (e.g. request by e-mail)" maxlength="500"> <button class="erase">Erase</button></form></div>{{end}}
</section>{{end}}
</body></html>`))

func itoa(n int64) string {
	if n == 0 {
		return "0"
	}
	var b []byte
	for n > 0 {
		b = append([]byte{byte('0' + n%10)}, b...)
		n /= 10
	}
	return string(b)
}

func pad2(n int64) string {
	if n < 10 {
		return "0" + itoa(n)
	}
	return itoa(n)
}

// customersPage serves GET and POST /customers.
func customersPage(st *store.Store, changed func([]string), erased func(string)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := auth.From(r.Context())
		ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
		defer cancel()
		if r.Method == http.MethodPost {
			customersPost(ctx, w, r, st, p, changed, erased)
			return
		}
		q := r.URL.Query()
		d := customersData{User: p.User, CSRF: p.CSRFToken(), Admin: p.Can(auth.CustomersAdmin), Identifier: q.Get("identifier"), Flash: q.Get("done")}
		var limit []string
		if stores, limited := p.Stores(); limited {
			limit = append([]string{}, stores...)
		}
		id := q.Get("id")
		if d.Identifier != "" && id == "" {
			found, err := st.FindCustomer(ctx, d.Identifier, "")
			switch {
			case errors.Is(err, store.ErrInvalid):
				d.Err = "Not an identifier: write type:value, e.g. email:ann@shop.example."
			case errors.Is(err, store.ErrNotFound):
				d.Err = "No customer has this identifier."
			case err != nil:
				d.Err = "The customer could not be found: see the hub's log."
			default:
				id = found
			}
		}
		if id != "" && ids.ValidEventID(id) {
			v, err := st.Customer(ctx, id, limit)
			switch {
			case errors.Is(err, store.ErrNotFound):
				d.Err = "No customer has this identifier."
			case err != nil:
				d.Err = "The customer could not be read: see the hub's log."
			default:
				d.View = &v
			}
		}
		if e := q.Get("erasure"); e != "" && ids.ValidEventID(e) && d.Admin {
			if er, err := st.ErasureStatus(ctx, e); err == nil {
				d.Erasure = &er
			}
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		_ = customersTmpl.Execute(w, d)
	})
}

func customersPost(ctx context.Context, w http.ResponseWriter, r *http.Request, st *store.Store, p *auth.Principal, changed func([]string), erased func(string)) {
	id := r.PostFormValue("id")
	back := url.Values{}
	if !ids.ValidEventID(id) {
		back.Set("done", "That is not a customer.")
		redirectCustomers(w, back)
		return
	}
	back.Set("id", id)
	switch r.PostFormValue("action") {
	case "unmerge":
		obs := r.PostFormValue("observation")
		if obs != "" && !ids.ValidEventID(obs) {
			back.Set("done", "That is not a merge of this customer.")
			break
		}
		cs, err := st.Unmerge(ctx, id, obs, p.User, r.PostFormValue("reason"))
		switch {
		case errors.Is(err, store.ErrNotFound):
			back.Set("done", "That merge is no longer there.")
		case err != nil:
			http.Error(w, "could not unmerge; see the hub's log", http.StatusInternalServerError)
			return
		default:
			if changed != nil {
				changed(cs)
			}
			back.Set("done", "Merge undone: "+strings.Join(cs, ", ")+".")
		}
	case "erase":
		if r.PostFormValue("confirm") != "yes" {
			back.Set("done", "Tick the box to confirm the erasure.")
			break
		}
		reason := r.PostFormValue("reason")
		if len(reason) > 500 {
			reason = reason[:500]
		}
		eid, err := st.EraseCustomer(ctx, id, p.User, reason)
		switch {
		case errors.Is(err, store.ErrNotFound):
			back.Set("done", "That customer is no longer there.")
		case err != nil:
			http.Error(w, "could not erase; see the hub's log", http.StatusInternalServerError)
			return
		default:
			if erased != nil {
				erased(eid)
			}
			if changed != nil {
				changed([]string{id})
			}
			back = url.Values{"erasure": {eid}, "done": {"Customer erased at the hub; the stores follow."}}
		}
	default:
		back.Set("done", "Unknown action.")
	}
	redirectCustomers(w, back)
}

// redirectCustomers answers a form with a relative redirect, never built
// from the request's Host.
func redirectCustomers(w http.ResponseWriter, q url.Values) {
	w.Header().Set("Location", "/customers?"+q.Encode())
	w.WriteHeader(http.StatusSeeOther)
}
