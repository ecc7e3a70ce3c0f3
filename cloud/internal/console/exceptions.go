package console

import (
	"context"
	"errors"
	"html/template"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/omnisync/omnisync/cloud/internal/auth"
	"github.com/omnisync/omnisync/cloud/internal/exceptions"
	"github.com/omnisync/omnisync/cloud/internal/store"
)

// ExceptionStore is what the exceptions and pickups pages need of the
// store; a store without it serves neither page (404).
type ExceptionStore interface {
	Exceptions(ctx context.Context, q store.ExceptionQuery) ([]store.Exception, error)
	Mappings(ctx context.Context) ([]store.MappingRecord, error)
	AddMapping(ctx context.Context, m exceptions.Mapping, by string) error
	ReplayException(ctx context.Context, id int64, by string) (store.ReplayResult, error)
	DiscardException(ctx context.Context, id int64, by, reason string) error
	DeadLettersOf(ctx context.Context, stores []string, limit int) ([]store.DeadLetter, error)
	ReplayDeadLetter(ctx context.Context, id int64, by string) (store.DeadLetter, store.BatchResult, error)
	Pickups(ctx context.Context, q store.PickupQuery) ([]store.Pickup, error)
}

var _ ExceptionStore = (*store.Store)(nil)

// Paths of the exceptions and pickups pages.
const (
	ExceptionsPath  = "/console/exceptions"
	DeadLettersPath = "/console/deadletters"
	PickupsPath     = "/console/pickups"
)

// registerExceptions adds the exception queue's page (deadletters:read;
// its forms exceptions:write) and the pickups board (inventory:read).
func (c *Console) registerExceptions(rt *auth.Router) {
	rt.HandleFunc("GET "+ExceptionsPath, auth.Page(auth.DeadLettersRead), c.exceptionsPage)
	rt.HandleFunc("POST "+ExceptionsPath+"/{id}/map", auth.Page(auth.ExceptionsWrite), c.mapException)
	rt.HandleFunc("POST "+ExceptionsPath+"/{id}/replay", auth.Page(auth.ExceptionsWrite), c.replayException)
	rt.HandleFunc("POST "+ExceptionsPath+"/{id}/discard", auth.Page(auth.ExceptionsWrite), c.discardException)
	rt.HandleFunc("POST "+DeadLettersPath+"/{id}/replay", auth.Page(auth.ExceptionsWrite), c.replayDeadLetter)
	rt.HandleFunc("GET "+PickupsPath, auth.Page(auth.InventoryRead), c.pickupsPage)
}

var excPages = template.Must(template.New("exceptions").Parse(layout + `
{{define "exceptions"}}{{template "top" .}}<main data-live data-on="exceptions">
<h1>Exceptions</h1>
<p class="muted">Events naming a SKU, GTIN or location the hub does not know are held here instead of making phantom stock. Map the unknown value to a known one and replay: each held event is applied once, with the value substituted, and later events naming it are rewritten as they arrive. Or discard them, with a reason.</p>
{{if .Err}}<p class="bad" id="error">{{.Err}}</p>{{end}}{{if .Msg}}<p class="ok" id="message">{{.Msg}}</p>{{end}}
<div class="scroll"><table id="exceptions"><tr><th>reason</th><th>value</th><th>store</th><th class="num">events</th><th class="num">held</th><th>seen</th></tr>
{{range .Rows}}<tr data-id="{{.ID}}" data-value="{{.Value}}"><td>{{.Reason}}</td><td><b>{{.Value}}</b>{{if .SampleKind}}<small class="muted" style="display:block">e.g. {{.SampleKind}} {{.SampleEventID}}</small>{{end}}</td><td>{{.Store}}</td><td class="num">{{.Count}}</td><td class="num">{{.Held}}</td><td><span style="white-space:nowrap">{{.First.Format "2006-01-02 15:04"}}</span>{{if ne .First .Last}} → <span style="white-space:nowrap">{{.Last.Format "2006-01-02 15:04"}}</span>{{end}}</td></tr>
{{if $.CanWrite}}<tr class="fix" data-id="{{.ID}}" data-value="{{.Value}}"><td colspan="6"><form method="post" action="` + ExceptionsPath + `/{{.ID}}/map" class="map-form" style="display:inline"><input type="hidden" name="csrf_token" value="{{$.CSRF}}"><label>is {{if eq .Reason "unknown_location"}}store{{else}}SKU{{end}} <input name="to" required size="12" class="map-to" aria-label="map {{.Value}} to"></label> <button type="submit" class="map-replay">Map and replay</button></form>
<form method="post" action="` + ExceptionsPath + `/{{.ID}}/replay" style="display:inline"><input type="hidden" name="csrf_token" value="{{$.CSRF}}"><button type="submit" class="replay">Replay</button></form>
<form method="post" action="` + ExceptionsPath + `/{{.ID}}/discard" style="display:inline"><input type="hidden" name="csrf_token" value="{{$.CSRF}}"><input name="reason" required size="10" placeholder="why" aria-label="reason to discard"> <button type="submit" class="discard">Discard</button></form></td></tr>{{end}}
{{else}}<tr><td colspan="6" id="no-exceptions">No open exceptions.</td></tr>{{end}}</table></div>
<h2>Mappings</h2>
<div class="scroll"><table id="mappings"><tr><th>kind</th><th>from</th><th>to</th><th>by</th><th>when</th></tr>
{{range .Mappings}}<tr><td>{{.Kind}}</td><td>{{.From}}</td><td>{{.To}}</td><td>{{.By}}</td><td>{{.At.Format "2006-01-02 15:04"}}</td></tr>
{{else}}<tr><td colspan="5">None.</td></tr>{{end}}</table></div>
<h2>Dead letters</h2>
<p class="muted">Messages the hub could not apply, newest first. After a fix (a newer hub, a catalog import, a mapping) replay one: it applies once, or stays with the new reason.</p>
<div class="scroll"><table id="dead-letters"><tr><th>when</th><th>store</th><th>kind</th><th>reason</th><th>event</th>{{if .CanWrite}}<th></th>{{end}}</tr>
{{range .Dead}}<tr data-id="{{.ID}}"><td>{{.At.Format "2006-01-02 15:04"}}</td><td>{{.Store}}</td><td>{{.Kind}}</td><td>{{.Reason}}</td><td class="muted">{{.EventID}}</td>{{if $.CanWrite}}<td>{{if .ReplayedAt.IsZero}}<form method="post" action="` + DeadLettersPath + `/{{.ID}}/replay"><input type="hidden" name="csrf_token" value="{{$.CSRF}}"><button type="submit" class="replay-dead">Replay</button></form>{{else}}replayed {{.ReplayedAt.Format "2006-01-02 15:04"}} by {{.ReplayedBy}}{{end}}</td>{{end}}</tr>
{{else}}<tr><td colspan="6">None.</td></tr>{{end}}</table></div>
</main>{{template "bottom" .}}{{end}}

{{define "pickups"}}{{template "top" .}}<main data-live>
<h1>Pickups</h1>
<p class="muted">Click-and-collect reservations at the stores, newest first: reserved (waiting), overdue (reserved more than {{.OverdueHours}} h ago), collected, released; a release or collection another store sent for an order, naming itself, changes nothing and is shown in red against the order. Figures as of <time>{{.Now.Format "15:04:05"}}</time>.</p>
{{if .Err}}<p class="bad">{{.Err}}</p>{{end}}
<form method="get" action="` + PickupsPath + `" id="pickups-filter"><label>Store <select name="store"><option value="">all</option>{{range .StoreList}}<option{{if eq . $.Store}} selected{{end}}>{{.}}</option>{{end}}</select></label>
<label>State <select name="state"><option value="">all</option>{{range .States}}<option{{if eq . $.State}} selected{{end}}>{{.}}</option>{{end}}</select></label> <button type="submit">Show</button></form>
<div class="scroll"><table id="pickup-counts"><tr><th>store</th>{{range .States}}<th class="num">{{.}}</th>{{end}}</tr>
{{range .Counts}}<tr><th>{{.Store}}</th>{{range .N}}<td class="num">{{.}}</td>{{end}}</tr>{{end}}</table></div>
<h2>Reservations</h2>
<div class="scroll"><table id="pickups"><tr><th>order</th><th>store</th><th>state</th><th class="num">lines</th><th class="num">units</th><th>reserved</th><th>closed</th></tr>
{{range .Rows}}<tr data-state="{{.State}}"><td>{{.ReservationID}}</td><td>{{.Store}}</td><td class="{{if eq .State "overdue"}}bad{{else if eq .State "collected"}}ok{{end}}">{{.State}}</td><td class="num">{{.Lines}}</td><td class="num">{{.Units}}</td><td>{{if not .ReservedAt.IsZero}}{{.ReservedAt.Format "2006-01-02 15:04"}}{{end}}</td><td>{{if not .ClosedAt.IsZero}}{{.ClosedAt.Format "2006-01-02 15:04"}}{{end}}{{range .Uncounted}}<div class="bad uncounted">{{.Kind}} from {{.Location}} at {{.At.Format "2006-01-02 15:04"}} ignored: not this order's store</div>{{end}}</td></tr>
{{else}}<tr><td colspan="7">No pickups.</td></tr>{{end}}</table></div>
</main>{{template "bottom" .}}{{end}}`))

func (c *Console) renderExc(w http.ResponseWriter, status int, name string, data any) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	if err := excPages.ExecuteTemplate(w, name, data); err != nil {
		c.o.Logger.Error("console page", "page", name, "err", err)
	}
}

func (c *Console) exceptionStore(w http.ResponseWriter, r *http.Request) (ExceptionStore, bool) {
	es, ok := c.o.Store.(ExceptionStore)
	if !ok {
		c.notFound(w, r, "This hub keeps no exception queue.")
	}
	return es, ok
}

type exceptionsPage struct {
	frame
	CanWrite bool
	CSRF     string
	Msg      string
	Rows     []store.Exception
	Mappings []store.MappingRecord
	Dead     []store.DeadLetter
}

func (c *Console) exceptionsPage(w http.ResponseWriter, r *http.Request) {
	es, ok := c.exceptionStore(w, r)
	if !ok {
		return
	}
	ctx := r.Context()
	p := auth.From(ctx)
	d := exceptionsPage{frame: c.frame(r, "Exceptions"), CanWrite: p.Can(auth.ExceptionsWrite), CSRF: p.CSRFToken(),
		Msg: r.URL.Query().Get("msg")}
	d.Err = r.URL.Query().Get("err")
	var stores []string
	if mine, limited := p.Stores(); limited {
		stores = mine
	}
	var err error
	if d.Rows, err = es.Exceptions(ctx, store.ExceptionQuery{Stores: stores, Limit: 200}); err != nil {
		c.internal(w, r, err)
		return
	}
	if d.Mappings, err = es.Mappings(ctx); err != nil {
		c.internal(w, r, err)
		return
	}
	if d.Dead, err = es.DeadLettersOf(ctx, stores, 50); err != nil {
		c.internal(w, r, err)
		return
	}
	c.renderExc(w, http.StatusOK, "exceptions", d)
}

// back sends the browser to the exceptions page with a message (or an
// error) to show.
func back(w http.ResponseWriter, r *http.Request, key, msg string) {
	http.Redirect(w, r, ExceptionsPath+"?"+url.Values{key: {msg}}.Encode(), http.StatusSeeOther)
}

// action reads what every form of the page needs: the store and the
// {id} of the path (missing says what is not found).
func (c *Console) action(w http.ResponseWriter, r *http.Request, missing string) (ExceptionStore, int64, bool) {
	es, ok := c.exceptionStore(w, r)
	if !ok {
		return nil, 0, false
	}
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		c.notFound(w, r, missing)
		return nil, 0, false
	}
	return es, id, true
}

// mapException is the "map and replay" form: the exception's value is the
// given SKU or store, and its held events are replayed at once.
func (c *Console) mapException(w http.ResponseWriter, r *http.Request) {
	es, id, ok := c.action(w, r, "No such exception.")
	if !ok {
		return
	}
	ctx := r.Context()
	xs, err := es.Exceptions(ctx, store.ExceptionQuery{Limit: 1000})
	if err != nil {
		c.internal(w, r, err)
		return
	}
	i := slices.IndexFunc(xs, func(x store.Exception) bool { return x.ID == id })
	if i < 0 {
		back(w, r, "err", "That exception is no longer open.")
		return
	}
	x := xs[i]
	by := auth.From(ctx).User
	m := exceptions.Mapping{Kind: exceptions.MapKindOf(x.Reason), From: x.Value, To: strings.TrimSpace(r.PostFormValue("to"))}
	if err := es.AddMapping(ctx, m, by); err != nil {
		if errors.Is(err, store.ErrInvalid) {
			back(w, r, "err", err.Error())
			return
		}
		c.internal(w, r, err)
		return
	}
	c.o.Logger.Info("exception mapped", "id", id, "kind", m.Kind, "from", m.From, "to", m.To, "by", by)
	c.replayAndBack(w, r, es, id, "Mapped "+m.From+" to "+m.To+". ")
}

func (c *Console) replayException(w http.ResponseWriter, r *http.Request) {
	es, id, ok := c.action(w, r, "No such exception.")
	if !ok {
		return
	}
	c.replayAndBack(w, r, es, id, "")
}

func (c *Console) replayAndBack(w http.ResponseWriter, r *http.Request, es ExceptionStore, id int64, said string) {
	by := auth.From(r.Context()).User
	res, err := es.ReplayException(r.Context(), id, by)
	if err != nil {
		c.internal(w, r, err)
		return
	}
	c.applied(res.Batch)
	c.o.Logger.Info("exception replayed", "id", id, "by", by, "replayed", res.Replayed, "held", res.Held)
	msg := said + "Replayed " + strconv.Itoa(res.Replayed) + " event(s)"
	if res.Held > 0 {
		msg += "; " + strconv.Itoa(res.Held) + " still held (see their new reason)"
	}
	back(w, r, "msg", msg+".")
}

func (c *Console) discardException(w http.ResponseWriter, r *http.Request) {
	es, id, ok := c.action(w, r, "No such exception.")
	if !ok {
		return
	}
	by := auth.From(r.Context()).User
	if err := es.DiscardException(r.Context(), id, by, r.PostFormValue("reason")); err != nil {
		if errors.Is(err, store.ErrInvalid) || errors.Is(err, store.ErrNotFound) {
			back(w, r, "err", err.Error())
			return
		}
		c.internal(w, r, err)
		return
	}
	c.o.Logger.Info("exception discarded", "id", id, "by", by)
	back(w, r, "msg", "Discarded.")
}

func (c *Console) replayDeadLetter(w http.ResponseWriter, r *http.Request) {
	es, id, ok := c.action(w, r, "No such dead letter.")
	if !ok {
		return
	}
	by := auth.From(r.Context()).User
	d, res, err := es.ReplayDeadLetter(r.Context(), id, by)
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			back(w, r, "err", err.Error())
			return
		}
		c.internal(w, r, err)
		return
	}
	c.applied(res)
	if d.ReplayedAt.IsZero() {
		back(w, r, "err", "Dead letter "+strconv.FormatInt(id, 10)+" still fails: "+d.Reason)
		return
	}
	back(w, r, "msg", "Dead letter "+strconv.FormatInt(id, 10)+" replayed.")
}

// applied tells the hub what a replay's batch changed (OnApplied), else
// the stock positions (OnStockChange).
func (c *Console) applied(res store.BatchResult) {
	switch {
	case c.o.OnApplied != nil:
		c.o.OnApplied(res)
	case len(res.Positions) > 0 && c.o.OnStockChange != nil:
		c.o.OnStockChange(res.Positions)
	}
}

type pickupCount struct {
	Store string
	N     []int
}

type pickupsPage struct {
	frame
	Store, State string
	States       []string
	StoreList    []string
	OverdueHours int
	Counts       []pickupCount
	Rows         []pickupRow
}

type pickupRow struct {
	store.Pickup
	Store string
}

// pickupsOverdue is how long a reservation waits before the board calls
// it overdue.
const pickupsOverdue = 48 * time.Hour

func (c *Console) pickupsPage(w http.ResponseWriter, r *http.Request) {
	es, ok := c.exceptionStore(w, r)
	if !ok {
		return
	}
	ctx := r.Context()
	p := auth.From(ctx)
	q := r.URL.Query()
	d := pickupsPage{frame: c.frame(r, "Pickups"), Store: q.Get("store"), State: q.Get("state"), States: store.PickupStates,
		OverdueHours: int(pickupsOverdue / time.Hour)}
	if d.State != "" && !slices.Contains(d.States, d.State) {
		d.State = ""
	}
	var stores []string
	if mine, limited := p.Stores(); limited {
		stores = mine
	}
	all, err := es.Pickups(ctx, store.PickupQuery{Stores: stores, Now: c.o.Now(), OverdueAfter: pickupsOverdue, Limit: 1000})
	if err != nil {
		c.internal(w, r, err)
		return
	}
	counts := map[string][]int{}
	for _, pk := range all {
		if counts[pk.Location] == nil {
			counts[pk.Location] = make([]int, len(d.States))
			d.StoreList = append(d.StoreList, pk.Location)
		}
		counts[pk.Location][slices.Index(d.States, pk.State)]++
		if (d.Store == "" || pk.Location == d.Store) && (d.State == "" || pk.State == d.State) {
			d.Rows = append(d.Rows, pickupRow{Pickup: pk, Store: pk.Location})
		}
	}
	slices.Sort(d.StoreList)
	for _, st := range d.StoreList {
		d.Counts = append(d.Counts, pickupCount{Store: st, N: counts[st]})
	}
	c.renderExc(w, http.StatusOK, "pickups", d)
}
