package pickups

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/omnisync/omnisync/shared/downsync"
)

// Limits of GET /v1/pickups.
const (
	DefaultLimit = 100
	MaxLimit     = 1000
)

// API serves the store's pickup orders on the agent's local HTTP API, from
// the cache, so it answers the same whether the store is online or not:
//
//	GET /v1/pickups?state=open|collected|cancelled&limit=N
//	  200 {"store", "orders": [PickupDoc...] newest first, "as_of", "synced"}
//	  synced is true while a session is caught up and live, so the list is
//	  current: as_of is then the time of the answer; otherwise it is when
//	  the cache last caught up with the hub (null: never). limit is 1..MaxLimit, DefaultLimit when absent.
//	  400 {"error", "field": "state" or "limit"} for a bad parameter.
//	GET /v1/pickups/{id}
//	  200 the PickupDoc of reservation id, 404 {"error"} when not held.
type API struct {
	c *Cache
	f *Follower
}

// NewAPI serves c; f (nil: never synced) says whether it is current.
func NewAPI(c *Cache, f *Follower) *API { return &API{c: c, f: f} }

// Register adds the routes to mux.
func (a *API) Register(mux *http.ServeMux) {
	mux.HandleFunc("GET /v1/pickups", a.list)
	mux.HandleFunc("GET /v1/pickups/{id}", a.get)
}

// List is the body of GET /v1/pickups.
type List struct {
	Store  string               `json:"store"`
	Orders []downsync.PickupDoc `json:"orders"`
	AsOf   *time.Time           `json:"as_of"`
	Synced bool                 `json:"synced"`
}

func (a *API) list(w http.ResponseWriter, r *http.Request) {
	q := Query{Limit: DefaultLimit}
	switch st := r.URL.Query().Get("state"); st {
	case "", downsync.PickupOpen, downsync.PickupCollected, downsync.PickupCancelled:
		q.State = st
	default:
		respond(w, http.StatusBadRequest, errorBody{Error: "state must be open, collected or cancelled, not " + strconv.Quote(st), Field: "state"})
		return
	}
	if s := r.URL.Query().Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > MaxLimit {
			respond(w, http.StatusBadRequest, errorBody{Error: "limit must be a whole number from 1 to " + strconv.Itoa(MaxLimit), Field: "limit"})
			return
		}
		q.Limit = n
	}
	// Status and stats before the orders: as_of never claims more than the
	// list holds. While a session is live (caught up and following), the
	// list is current as of this read, not only of the session's start.
	now := time.Now().UTC()
	live := a.f != nil && a.f.Status().Synced
	st := a.c.Stats()
	orders, err := a.c.List(q)
	if err != nil {
		respond(w, http.StatusServiceUnavailable, errorBody{Error: err.Error()})
		return
	}
	body := List{Store: a.c.Store(), Orders: orders, Synced: live}
	switch {
	case live:
		body.AsOf = &now
	case !st.SyncedAt.IsZero():
		t := st.SyncedAt.UTC()
		body.AsOf = &t
	}
	respond(w, http.StatusOK, body)
}

func (a *API) get(w http.ResponseWriter, r *http.Request) {
	d, err := a.c.Get(r.PathValue("id"))
	switch {
	case errors.Is(err, ErrNotFound):
		respond(w, http.StatusNotFound, errorBody{Error: err.Error()})
	case err != nil:
		respond(w, http.StatusServiceUnavailable, errorBody{Error: err.Error()})
	default:
		respond(w, http.StatusOK, d)
	}
}

// errorBody is the body of every answer but a 200.
type errorBody struct {
	Error string `json:"error"`
	Field string `json:"field,omitempty"`
}

func respond(w http.ResponseWriter, code int, body any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(body)
}
