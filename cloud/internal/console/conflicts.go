package console

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"html/template"
	"net/http"
	"net/url"
	"strconv"

	"github.com/omnisync/omnisync/cloud/internal/auth"
	"github.com/omnisync/omnisync/cloud/internal/hqact"
	"github.com/omnisync/omnisync/cloud/internal/store"
)

// Paths of the conflicts and transfers pages.
const (
	ConflictsPath = "/console/conflicts"
	TransfersPath = "/console/transfers"
)

// Actor carries out HQ's actions on conflicts (hqact.Service).
type Actor interface {
	Act(ctx context.Context, r hqact.Request) (hqact.Result, error)
}

func (c *Console) registerConflicts(rt *auth.Router) {
	rt.HandleFunc("GET "+ConflictsPath, auth.Page(auth.ConflictsRead), c.conflicts)
	rt.HandleFunc("POST "+ConflictsPath+"/act", auth.Page(auth.ConflictsAct), c.conflictAct)
	rt.HandleFunc("POST "+ConflictsPath+"/dismiss", auth.Page(auth.ConflictsAct), c.cartDismiss)
	rt.HandleFunc("GET "+TransfersPath, auth.Page(auth.InventoryRead), c.transfers)
}

// extraPages are the console's pages beyond pages.go's, sharing its frame.
var extraPages = template.Must(template.Must(pages.Clone()).Parse(`
{{define "conflicts"}}{{template "top" .}}<main data-live>
<h1>Conflicts</h1>
<p class="muted">Open conflicts, newest first; figures as of <time>{{.Now.Format "15:04:05"}}</time>. An oversell closes by itself when its cause does (stock received or counted, the order collected or released), or when HQ acts on it. <a href="` + TransfersPath + `">Transfers</a></p>
{{if .Done}}<p class="ok" id="done">{{.Done}}</p>{{end}}
{{if .Err}}<p class="bad" id="error">{{.Err}}</p>{{end}}
<h2>Oversold</h2>
<div class="scroll"><table id="open-conflicts"><tr><th>#</th><th>position</th><th class="num">available</th><th>orders at risk</th><th>{{if .CanAct}}act{{else}}proposals{{end}}</th></tr>
{{range .Open}}<tr data-conflict="{{.ID}}"><td>{{.ID}}</td><td><a href="` + PositionPath + `?sku={{.SKU}}&amp;location={{.Location}}">{{.SKU}} at {{.Location}}</a></td><td class="num bad">{{.Available}}</td><td>{{join .Reservations ", "}}</td><td>
{{$c := .}}{{range .Proposals}}{{if $.CanAct}}<form method="post" action="` + ConflictsPath + `/act" class="act"><input type="hidden" name="csrf_token" value="{{$.CSRF}}"><input type="hidden" name="id" value="{{$c.ID}}"><input type="hidden" name="version" value="{{$c.Version}}"><input type="hidden" name="action_id" value="{{.ActionID}}"><input type="hidden" name="action" value="{{.Action}}"><input type="hidden" name="from" value="{{.From}}"><input type="hidden" name="qty" value="{{.Qty}}"><input type="hidden" name="reservation_id" value="{{.Reservation}}"><input type="hidden" name="to" value="{{.To}}"><button type="submit" data-action="{{.Action}}" data-from="{{.From}}">{{.Label}}</button></form>{{else}}<div>{{.Label}}</div>{{end}}{{else}}<span class="muted">No other location has stock; wait for a receipt or cancel at the till.</span>{{end}}</td></tr>
{{else}}<tr><td colspan="5">No open oversell.</td></tr>{{end}}</table></div>
{{if .ShowCarts}}<h2>Carts checked out twice</h2>
<p class="muted">A till's checkout the hub heard of late, after the cart was checked out elsewhere: both sales happened; refund or fulfil, then dismiss.</p>
<div class="scroll"><table id="cart-conflicts"><tr><th>cart</th><th class="num">checkouts</th><th></th></tr>
{{range .Carts}}<tr data-cart="{{.CartID}}"><td>{{.CartID}}</td><td class="num">{{.Checkouts}}</td><td>{{if $.CanAct}}<form method="post" action="` + ConflictsPath + `/dismiss"><input type="hidden" name="csrf_token" value="{{$.CSRF}}"><input type="hidden" name="cart_id" value="{{.CartID}}"><button type="submit">Dismiss</button></form>{{end}}</td></tr>
{{else}}<tr><td colspan="3">None.</td></tr>{{end}}</table></div>{{end}}
<h2>Recently resolved</h2>
<div class="scroll"><table id="resolved-conflicts"><tr><th>#</th><th>position</th><th>resolved</th><th>by</th><th>action</th></tr>
{{range .Resolved}}<tr data-conflict="{{.ID}}"><td>{{.ID}}</td><td>{{.SKU}} at {{.Location}}</td><td>{{if .ResolvedAt}}{{.ResolvedAt.Format "2006-01-02 15:04:05"}}{{end}}</td><td class="resolved-by">{{.ResolvedBy}}</td><td>{{if .Action}}{{.Action}} by {{.ActedBy}}{{end}}</td></tr>
{{else}}<tr><td colspan="5">None.</td></tr>{{end}}</table></div>
</main>{{template "bottom" .}}{{end}}

{{define "transfers"}}{{template "top" .}}<main data-live>
<h1>Transfers</h1>
<p class="muted">Stock moving between locations, paired by transfer id; overdue: in transit for more than {{.Overdue}}. Show: <a href="` + TransfersPath + `">all</a> · <a href="?state=in_transit">in transit</a> · <a href="?state=partial">partial</a> · <a href="?state=overdue">overdue</a> · <a href="?state=received">received</a></p>
{{if .Err}}<p class="bad">{{.Err}}</p>{{end}}
<div class="scroll"><table id="transfers"><tr><th>transfer</th><th>from</th><th>to</th><th>state</th><th>lines (shipped / received)</th><th>shipped</th><th>received</th></tr>
{{range .Rows}}<tr data-transfer="{{.ID}}"><td>{{.ID}}</td><td>{{.Source}}</td><td>{{.Destination}}</td><td class="state{{if eq .State "overdue"}} bad{{end}}">{{.State}}</td><td>{{range $i, $l := .Lines}}{{if $i}}, {{end}}{{$l.SKU}} {{$l.Shipped}}/{{$l.Received}}{{end}}</td><td>{{if not .ShippedAt.IsZero}}{{.ShippedAt.Format "2006-01-02 15:04"}}{{end}}</td><td>{{if not .ReceivedAt.IsZero}}{{.ReceivedAt.Format "2006-01-02 15:04"}}{{end}}</td></tr>
{{else}}<tr><td colspan="7">No transfers.</td></tr>{{end}}</table></div>
</main>{{template "bottom" .}}{{end}}`))

func (c *Console) renderExtra(w http.ResponseWriter, status int, name string, data any) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	if err := extraPages.ExecuteTemplate(w, name, data); err != nil {
		c.o.Logger.Error("console page", "page", name, "err", err)
	}
}

type proposalRow struct {
	hqact.Proposal
	// ActionID is fresh for every proposal shown: a double click sends
	// the same id and acts once.
	ActionID string
}

type conflictRow struct {
	store.Conflict
	Proposals []proposalRow
}

type conflictsPage struct {
	frame
	Done      string
	CanAct    bool
	CSRF      string
	ShowCarts bool
	Open      []conflictRow
	Resolved  []store.Conflict
	Carts     []store.CartCheckoutConflict
}

func newActionID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return "ui-" + hex.EncodeToString(b[:])
}

func (c *Console) conflicts(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	p := auth.From(ctx)
	d := conflictsPage{frame: c.frame(r, "Conflicts"), CanAct: p.Can(auth.ConflictsAct) && c.o.Acts != nil, CSRF: p.CSRFToken(), Done: r.URL.Query().Get("done")}
	d.Err = r.URL.Query().Get("err")
	stores, limited := p.Stores()
	var all []store.Conflict
	var err error
	switch {
	case !limited:
		all, err = c.o.Store.Conflicts(ctx, false, 100)
	case len(stores) > 0:
		all, err = c.o.Store.Conflicts(ctx, false, 100, stores...)
	}
	if err != nil {
		c.internal(w, r, err)
		return
	}
	for _, cf := range all {
		if cf.ResolvedAt != nil {
			d.Resolved = append(d.Resolved, cf)
			continue
		}
		row := conflictRow{Conflict: cf}
		for _, pr := range hqact.Proposals(cf) {
			row.Proposals = append(row.Proposals, proposalRow{Proposal: pr, ActionID: newActionID()})
		}
		d.Open = append(d.Open, row)
	}
	if !limited {
		d.ShowCarts = true
		if d.Carts, err = c.o.Store.CartCheckoutConflicts(ctx, false, 100); err != nil {
			c.internal(w, r, err)
			return
		}
	}
	c.renderExtra(w, http.StatusOK, "conflicts", d)
}

// conflictAct is a proposal's button: act, then back to the list with
// what happened.
func (c *Console) conflictAct(w http.ResponseWriter, r *http.Request) {
	if c.o.Acts == nil {
		c.notFound(w, r, "This hub does not act on conflicts.")
		return
	}
	id, _ := strconv.ParseInt(r.PostFormValue("id"), 10, 64)
	version, _ := strconv.ParseInt(r.PostFormValue("version"), 10, 64)
	qty, _ := strconv.ParseInt(r.PostFormValue("qty"), 10, 64)
	p := auth.From(r.Context())
	if !c.mayActOn(r, id) {
		c.notFound(w, r, "Not one of your stores.")
		return
	}
	res, err := c.o.Acts.Act(r.Context(), hqact.Request{ConflictID: id, Version: version, ActionID: r.PostFormValue("action_id"),
		Action: r.PostFormValue("action"), From: r.PostFormValue("from"), Qty: qty, Reservation: r.PostFormValue("reservation_id"),
		To: r.PostFormValue("to"), Actor: p.User})
	q := url.Values{}
	if code, msg := hqact.ErrorStatus(err); code == http.StatusInternalServerError {
		c.internal(w, r, err)
		return
	} else if code != 0 {
		q.Set("err", "Conflict "+strconv.FormatInt(id, 10)+": "+msg+".")
	} else if res.Repeated {
		q.Set("done", "Conflict "+strconv.FormatInt(id, 10)+": that action was taken already.")
	} else {
		q.Set("done", "Conflict "+strconv.FormatInt(id, 10)+": "+res.Action.Action+" done.")
	}
	http.Redirect(w, r, ConflictsPath+"?"+q.Encode(), http.StatusSeeOther)
}

// mayActOn reports whether the caller may act on conflict id: any for
// those who see every store, a store manager only at hers.
func (c *Console) mayActOn(r *http.Request, id int64) bool {
	p := auth.From(r.Context())
	stores, limited := p.Stores()
	if !limited {
		return true
	}
	cs, err := c.o.Store.Conflicts(r.Context(), true, 1000, stores...)
	if err != nil {
		return false
	}
	for _, cf := range cs {
		if cf.ID == id {
			return true
		}
	}
	return false
}

func (c *Console) cartDismiss(w http.ResponseWriter, r *http.Request) {
	if _, limited := auth.From(r.Context()).Stores(); limited {
		c.notFound(w, r, "Carts are HQ's.")
		return
	}
	cart := r.PostFormValue("cart_id")
	q := url.Values{}
	err := c.o.Store.DismissCartConflict(r.Context(), cart, auth.From(r.Context()).User)
	switch {
	case errors.Is(err, store.ErrNotFound):
		q.Set("err", "Cart "+cart+" was not checked out twice.")
	case err != nil:
		c.internal(w, r, err)
		return
	default:
		q.Set("done", "Cart "+cart+" dismissed.")
	}
	http.Redirect(w, r, ConflictsPath+"?"+q.Encode(), http.StatusSeeOther)
}
