package api

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/omnisync/omnisync/cloud/internal/auth"
	"github.com/omnisync/omnisync/cloud/internal/exceptions"
	"github.com/omnisync/omnisync/cloud/internal/store"
	"github.com/omnisync/omnisync/shared/events"
)

// ExceptionStore is what the exception queue, the dead letters' replay and
// the pickups board need of the store.
type ExceptionStore interface {
	Exceptions(ctx context.Context, q store.ExceptionQuery) ([]store.Exception, error)
	Exception(ctx context.Context, id int64) (store.Exception, error)
	Mappings(ctx context.Context) ([]store.MappingRecord, error)
	AddMapping(ctx context.Context, m exceptions.Mapping, by string) error
	ReplayException(ctx context.Context, id int64, by string) (store.ReplayResult, error)
	DiscardException(ctx context.Context, id int64, by, reason string) error
	ReplayDeadLetter(ctx context.Context, id int64, by string) (store.DeadLetter, store.BatchResult, error)
	Pickups(ctx context.Context, q store.PickupQuery) ([]store.Pickup, error)
}

var _ ExceptionStore = (*store.Store)(nil)

// The exception queue (events naming an unknown SKU, GTIN or location,
// held instead of applied), HQ's mappings and replays, the dead letters'
// replay, and the pickups board. Reading the queue needs deadletters:read
// (a store manager sees their stores'); acting on it exceptions:write; the
// pickups board inventory:read.
func (a *API) registerExceptions(rt *auth.Router) {
	rt.HandleFunc("GET /v1/exceptions", auth.Need(auth.DeadLettersRead), a.exceptionList)
	rt.HandleFunc("GET /v1/exceptions/mappings", auth.Need(auth.DeadLettersRead), a.mappingList)
	rt.HandleFunc("POST /v1/exceptions/mappings", auth.Need(auth.ExceptionsWrite), a.addMapping)
	rt.HandleFunc("POST /v1/exceptions/{id}/replay", auth.Need(auth.ExceptionsWrite), a.replayException)
	rt.HandleFunc("POST /v1/exceptions/{id}/discard", auth.Need(auth.ExceptionsWrite), a.discardException)
	rt.HandleFunc("POST /v1/deadletters/{id}/replay", auth.Need(auth.ExceptionsWrite), a.replayDeadLetter)
	rt.HandleFunc("GET /v1/pickups", auth.Need(auth.InventoryRead), a.pickups)
}

func (a *API) exceptionStore(w http.ResponseWriter) (ExceptionStore, bool) {
	es, ok := a.o.Store.(ExceptionStore)
	if !ok {
		writeErr(w, http.StatusNotImplemented, "", "this hub's store keeps no exception queue")
	}
	return es, ok
}

// ExceptionView is one exception in the API.
type ExceptionView struct {
	ID     int64  `json:"id"`
	Reason string `json:"reason"`
	Value  string `json:"value"`
	Store  string `json:"store"`
	State  string `json:"state"`
	// MapKind is the kind of mapping that fixes it (sku or location).
	MapKind       string    `json:"map_kind"`
	FirstSeen     time.Time `json:"first_seen"`
	LastSeen      time.Time `json:"last_seen"`
	Count         int64     `json:"count"`
	Held          int64     `json:"held"`
	SampleEventID string    `json:"sample_event_id,omitempty"`
	SampleKind    string    `json:"sample_kind,omitempty"`
	Note          string    `json:"note,omitempty"`
	DoneBy        string    `json:"done_by,omitempty"`
	DoneAt        time.Time `json:"done_at,omitzero"`
}

// ExceptionViewOf is x as the API and the console show it.
func ExceptionViewOf(x store.Exception) ExceptionView {
	return ExceptionView{ID: x.ID, Reason: string(x.Reason), Value: x.Value, Store: x.Store, State: x.State,
		MapKind: string(exceptions.MapKindOf(x.Reason)), FirstSeen: x.First.UTC(), LastSeen: x.Last.UTC(), Count: x.Count,
		Held: x.Held, SampleEventID: x.SampleEventID, SampleKind: x.SampleKind, Note: x.Note, DoneBy: x.DoneBy, DoneAt: x.DoneAt.UTC()}
}

// exceptionList answers GET /v1/exceptions?state=open|resolved|discarded&store=&limit=.
func (a *API) exceptionList(w http.ResponseWriter, r *http.Request) {
	es, ok := a.exceptionStore(w)
	if !ok {
		return
	}
	q := store.ExceptionQuery{State: r.URL.Query().Get("state")}
	switch q.State {
	case "", "open", "resolved", "discarded":
	default:
		writeErr(w, http.StatusBadRequest, "state", "one of open, resolved, discarded")
		return
	}
	stores, ok := a.storeFilter(w, r)
	if !ok {
		return
	}
	q.Stores = stores
	if q.Limit, ok = limitParam(w, r, 100); !ok {
		return
	}
	xs, err := es.Exceptions(r.Context(), q)
	if err != nil {
		a.internal(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"exceptions": views(xs, ExceptionViewOf)})
}

// storeFilter reads ?store= within the caller's stores: nil for every
// store.
func (a *API) storeFilter(w http.ResponseWriter, r *http.Request) ([]string, bool) {
	p := auth.From(r.Context())
	if st := r.URL.Query().Get("store"); st != "" {
		if err := events.ValidToken(st); err != nil {
			writeErr(w, http.StatusBadRequest, "store", err.Error())
			return nil, false
		}
		if !p.MayStore(st) {
			writeErr(w, http.StatusForbidden, "store", "not one of your stores")
			return nil, false
		}
		return []string{st}, true
	}
	if mine, limited := p.Stores(); limited {
		return mine, true
	}
	return nil, true
}

// MappingView is one of HQ's mappings.
type MappingView struct {
	Kind string    `json:"kind"`
	From string    `json:"from"`
	To   string    `json:"to"`
	By   string    `json:"by,omitempty"`
	At   time.Time `json:"at,omitzero"`
}

func (a *API) mappingList(w http.ResponseWriter, r *http.Request) {
	es, ok := a.exceptionStore(w)
	if !ok {
		return
	}
	ms, err := es.Mappings(r.Context())
	if err != nil {
		a.internal(w, r, err)
		return
	}
	out := make([]MappingView, 0, len(ms))
	for _, m := range ms {
		out = append(out, MappingView{Kind: string(m.Kind), From: m.From, To: m.To, By: m.By, At: m.At.UTC()})
	}
	writeJSON(w, http.StatusOK, map[string]any{"mappings": out})
}

// MappingRequest is the body of POST /v1/exceptions/mappings: from, as a
// kind (sku or location), is to; with replay, the exception it fixes
// (by id) is replayed at once.
type MappingRequest struct {
	Kind   string `json:"kind"`
	From   string `json:"from"`
	To     string `json:"to"`
	Replay int64  `json:"replay,omitempty"`
}

func (a *API) addMapping(w http.ResponseWriter, r *http.Request) {
	es, ok := a.exceptionStore(w)
	if !ok {
		return
	}
	var req MappingRequest
	if !decodeBody(w, r, &req) {
		return
	}
	m := exceptions.Mapping{Kind: exceptions.MapKind(req.Kind), From: req.From, To: req.To}
	if err := es.AddMapping(r.Context(), m, caller(r)); err != nil {
		a.exceptionErr(w, r, err)
		return
	}
	body := map[string]any{"mapping": MappingView{Kind: req.Kind, From: req.From, To: req.To, By: caller(r)}}
	if req.Replay > 0 {
		res, err := a.replay(r, es, req.Replay)
		if err != nil {
			a.exceptionErr(w, r, err)
			return
		}
		body["replay"] = res
	}
	writeJSON(w, http.StatusOK, body)
}

// ReplayView is what a replay did.
type ReplayView struct {
	Replayed int `json:"replayed"`
	Held     int `json:"held"`
	Skipped  int `json:"skipped"`
}

func (a *API) replay(r *http.Request, es ExceptionStore, id int64) (ReplayView, error) {
	res, err := es.ReplayException(r.Context(), id, caller(r))
	if err != nil {
		return ReplayView{}, err
	}
	a.applied(res.Batch)
	a.log.Info("api: exception replayed", "id", id, "by", caller(r), "replayed", res.Replayed, "held", res.Held)
	return ReplayView{Replayed: res.Replayed, Held: res.Held, Skipped: res.Skipped}, nil
}

// exceptionAction reads what every action needs: the store and the {id}
// of the path.
func (a *API) exceptionAction(w http.ResponseWriter, r *http.Request) (ExceptionStore, int64, bool) {
	es, ok := a.exceptionStore(w)
	if !ok {
		return nil, 0, false
	}
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		writeErr(w, http.StatusBadRequest, "id", "a positive integer")
		return nil, 0, false
	}
	return es, id, true
}

func (a *API) replayException(w http.ResponseWriter, r *http.Request) {
	es, id, ok := a.exceptionAction(w, r)
	if !ok {
		return
	}
	res, err := a.replay(r, es, id)
	if err != nil {
		a.exceptionErr(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"replay": res})
}

// DiscardRequest is the body of POST /v1/exceptions/{id}/discard.
type DiscardRequest struct {
	Reason string `json:"reason"`
}

func (a *API) discardException(w http.ResponseWriter, r *http.Request) {
	es, id, ok := a.exceptionAction(w, r)
	if !ok {
		return
	}
	var req DiscardRequest
	if !decodeBody(w, r, &req) {
		return
	}
	if err := es.DiscardException(r.Context(), id, caller(r), req.Reason); err != nil {
		a.exceptionErr(w, r, err)
		return
	}
	a.log.Info("api: exception discarded", "id", id, "by", caller(r))
	writeJSON(w, http.StatusOK, map[string]any{"discarded": id})
}

func (a *API) replayDeadLetter(w http.ResponseWriter, r *http.Request) {
	es, id, ok := a.exceptionAction(w, r)
	if !ok {
		return
	}
	d, res, err := es.ReplayDeadLetter(r.Context(), id, caller(r))
	if err != nil {
		a.exceptionErr(w, r, err)
		return
	}
	a.applied(res)
	out := map[string]any{"id": d.ID, "event_id": d.EventID, "store": d.Store, "reason": d.Reason, "replayed": !d.ReplayedAt.IsZero()}
	if !d.ReplayedAt.IsZero() {
		out["replayed_at"], out["replayed_by"] = d.ReplayedAt.UTC(), d.ReplayedBy
	}
	writeJSON(w, http.StatusOK, map[string]any{"dead_letter": out})
}

// applied tells the hub what a replay's batch changed: everything, when it
// listens (OnApplied), else the stock positions.
func (a *API) applied(res store.BatchResult) {
	switch {
	case a.o.OnApplied != nil:
		a.o.OnApplied(res)
	case len(res.Positions) > 0 && a.o.OnStockChange != nil:
		a.o.OnStockChange(res.Positions)
	}
}

func (a *API) exceptionErr(w http.ResponseWriter, r *http.Request, err error) {
	switch {
	case errors.Is(err, store.ErrInvalid):
		writeErr(w, http.StatusBadRequest, "", err.Error())
	case errors.Is(err, store.ErrNotFound):
		writeErr(w, http.StatusNotFound, "id", err.Error())
	default:
		a.internal(w, r, err)
	}
}

// PickupView is one click-and-collect reservation on the pickups board.
type PickupView struct {
	ReservationID string    `json:"reservation_id"`
	Store         string    `json:"store"`
	State         string    `json:"state"`
	Lines         int64     `json:"lines"`
	Units         int64     `json:"units"`
	ReservedAt    time.Time `json:"reserved_at,omitzero"`
	ClosedAt      time.Time `json:"closed_at,omitzero"`
	// UncountedCloses are the releases and fulfils another store sent for
	// this order naming its own location: kept, changing nothing.
	UncountedCloses []UncountedCloseView `json:"uncounted_closes,omitempty"`
}

// UncountedCloseView is a release or fulfil that did not close an order.
type UncountedCloseView struct {
	Kind     string    `json:"kind"`
	Location string    `json:"location"`
	At       time.Time `json:"at"`
	EventID  string    `json:"event_id"`
}

// pickups answers GET /v1/pickups?store=&state=&overdue_hours=&limit=.
func (a *API) pickups(w http.ResponseWriter, r *http.Request) {
	es, ok := a.exceptionStore(w)
	if !ok {
		return
	}
	q := store.PickupQuery{State: r.URL.Query().Get("state"), Now: a.o.Now()}
	stores, ok := a.storeFilter(w, r)
	if !ok {
		return
	}
	q.Stores = stores
	if v := r.URL.Query().Get("overdue_hours"); v != "" {
		h, err := strconv.Atoi(v)
		if err != nil || h <= 0 || h > 24*365 {
			writeErr(w, http.StatusBadRequest, "overdue_hours", "a whole number of hours, 1 to 8760")
			return
		}
		q.OverdueAfter = time.Duration(h) * time.Hour
	}
	if q.Limit, ok = limitParam(w, r, 200); !ok {
		return
	}
	ps, err := es.Pickups(r.Context(), q)
	if err != nil {
		if errors.Is(err, store.ErrInvalid) {
			writeErr(w, http.StatusBadRequest, "state", err.Error())
			return
		}
		a.internal(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"pickups": PickupViews(ps)})
}

// PickupViews is ps as the API and the console show them.
func PickupViews(ps []store.Pickup) []PickupView {
	out := make([]PickupView, 0, len(ps))
	for _, p := range ps {
		v := PickupView{ReservationID: p.ReservationID, Store: p.Location, State: p.State, Lines: p.Lines,
			Units: p.Units, ReservedAt: p.ReservedAt.UTC(), ClosedAt: p.ClosedAt.UTC()}
		for _, c := range p.Uncounted {
			v.UncountedCloses = append(v.UncountedCloses, UncountedCloseView(c))
		}
		out = append(out, v)
	}
	return out
}
