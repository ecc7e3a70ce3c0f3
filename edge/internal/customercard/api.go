package customercard

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"time"
)

// MaxCardBodyBytes bounds a POST /v1/customers/card body.
const MaxCardBodyBytes = 16 << 10

// API serves the card on the agent's local HTTP API, for the till:
//
//	POST /v1/customers/card  {"identifiers": {"loyalty": "LC-1", "email": "..."}}
//	  200 {"card": {customer, first_name, tier, consent, recent, as_of_ms},
//	       "source": "hub"|"cache", "fetched_at"}
//	  400 {"error", "field": "identifiers"} malformed, or identifiers the hub
//	      cannot read
//	  404 {"error"} no shopper with these identifiers identified at this store
//	  503 {"error"} the hub cannot be reached and no card fetched within the
//	      TTL is cached
//
// A POST, not a GET with the identifiers in the query: identifiers are
// personal data and do not belong in URLs (access logs, proxies, browser
// history). The answer is never cached by clients (Cache-Control:
// no-store). The agent's API guard applies (host check, cross-origin
// refusal, the API token); it is not a kiosk route (a paired kiosk's
// cookie does not open it): a shopper-facing screen must not look up
// other people's cards.
type API struct{ c *Client }

// NewAPI serves c.
func NewAPI(c *Client) *API { return &API{c: c} }

// Register adds the route to mux.
func (a *API) Register(mux *http.ServeMux) {
	mux.HandleFunc("POST /v1/customers/card", a.card)
}

type cardBody struct {
	Identifiers map[string]string `json:"identifiers"`
}

type errorBody struct {
	Error string `json:"error"`
	Field string `json:"field,omitempty"`
}

func respond(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

func (a *API) card(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxCardBodyBytes))
	if err != nil {
		respond(w, http.StatusRequestEntityTooLarge, errorBody{Error: "the body is larger than 16 KiB"})
		return
	}
	var b cardBody
	dec := json.NewDecoder(strings.NewReader(string(body)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&b); err != nil {
		respond(w, http.StatusBadRequest, errorBody{Error: `want {"identifiers": {"loyalty": "...", "email": "..."}}: ` + err.Error(), Field: "identifiers"})
		return
	}
	ans, err := a.c.Lookup(r.Context(), b.Identifiers)
	switch {
	case err == nil:
		ans.FetchedAt = ans.FetchedAt.UTC().Truncate(time.Millisecond)
		respond(w, http.StatusOK, ans)
	case errors.Is(err, ErrInvalid):
		respond(w, http.StatusBadRequest, errorBody{Error: err.Error(), Field: "identifiers"})
	case errors.Is(err, ErrNotFound):
		respond(w, http.StatusNotFound, errorBody{Error: "no shopper with these identifiers has identified at this store"})
	default:
		respond(w, http.StatusServiceUnavailable, errorBody{Error: "the hub cannot be reached and no recent card is cached here"})
	}
}
