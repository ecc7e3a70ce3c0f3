package api

import (
	"encoding/json"
	"errors"
	"net/http"
	"time"

	"github.com/omnisync/omnisync/cloud/internal/auth"
	"github.com/omnisync/omnisync/cloud/internal/store"
	"github.com/omnisync/omnisync/shared/events"
	"github.com/omnisync/omnisync/shared/ids"
)

// Customers: the single customer view and what HQ and the web shop do
// with it. Personal data is answered only to callers with customers:read
// (admins, integrations such as the web shop; store managers only for
// customers who identified at one of their stores, others answer 404 as
// unknown ones do); the web shop's identification, consent and reports of
// a shopper's interest in an item need customers:write; unmerging, erasing and erasure states customers:admin
// (admins). Analysts, who read everything else, see no persons.
func (a *API) registerCustomers(rt *auth.Router) {
	rt.HandleFunc("POST /v1/identify", auth.Need(auth.CustomersWrite), a.identify)
	rt.HandleFunc("GET /v1/customers", auth.Need(auth.CustomersRead), a.findCustomer)
	rt.HandleFunc("GET /v1/customers/{id}", auth.Need(auth.CustomersRead), a.customer)
	rt.HandleFunc("POST /v1/customers/{id}/consent", auth.Need(auth.CustomersWrite), a.customerConsent)
	rt.HandleFunc("POST /v1/customers/{id}/interests", auth.Need(auth.CustomersWrite), a.customerInterest)
	rt.HandleFunc("POST /v1/customers/{id}/unmerge", auth.Need(auth.CustomersAdmin), a.unmerge)
	rt.HandleFunc("POST /v1/customers/{id}/erase", auth.Need(auth.CustomersAdmin), a.erase)
	rt.HandleFunc("GET /v1/erasures/{id}", auth.Need(auth.CustomersAdmin), a.erasure)
}

// maxCustomerBody bounds the bodies of the customer routes.
const maxCustomerBody = 64 << 10

func decodeBody(w http.ResponseWriter, r *http.Request, v any) bool {
	return decodeBodyMax(w, r, v, maxCustomerBody, "64 KiB")
}

// decodeBodyMax is decodeBody with a body of at most limit bytes (size
// says it in the 413's words).
func decodeBodyMax(w http.ResponseWriter, r *http.Request, v any, limit int64, size string) bool {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, limit))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var mb *http.MaxBytesError
		if errors.As(err, &mb) {
			writeErr(w, http.StatusRequestEntityTooLarge, "", "body larger than "+size)
			return false
		}
		writeErr(w, http.StatusBadRequest, "", "body: "+err.Error())
		return false
	}
	return true
}

func caller(r *http.Request) string {
	if p := auth.From(r.Context()); p != nil {
		return p.User
	}
	return "unknown"
}

// IdentifyAnswer is the answer of POST /v1/identify.
type IdentifyAnswer struct {
	Customer string `json:"customer"`
}

// identify answers POST /v1/identify {"identifiers": {...}, "rule"?,
// "region"?}: the web shop's identification, linked as an identify event
// would be; answers the master id.
func (a *API) identify(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Identifiers events.CustomerRef `json:"identifiers"`
		Rule        string             `json:"rule"`
		Region      string             `json:"region"`
	}
	if !decodeBody(w, r, &req) {
		return
	}
	if err := events.ValidateCustomerRef("identifiers", req.Identifiers); err != nil {
		var fe *events.FieldError
		if errors.As(err, &fe) {
			writeErr(w, http.StatusBadRequest, fe.Field, fe.Reason)
			return
		}
		writeErr(w, http.StatusBadRequest, "identifiers", err.Error())
		return
	}
	if len(req.Rule) > 64 || len(req.Region) > 2 {
		writeErr(w, http.StatusBadRequest, "rule", "rule at most 64 characters, region an ISO 3166-1 alpha-2 code")
		return
	}
	id, err := a.o.Store.Identify(r.Context(), store.IdentifyRequest{Identifiers: req.Identifiers, Region: req.Region, Rule: req.Rule, Source: caller(r)})
	switch {
	case errors.Is(err, store.ErrInvalid):
		writeErr(w, http.StatusBadRequest, "identifiers", err.Error())
	case errors.Is(err, store.ErrNotFound):
		// An erased person: nothing is linked, and the shop must not
		// recreate them without HQ's reinstatement.
		writeErr(w, http.StatusConflict, "identifiers", "these identifiers were erased")
	case err != nil:
		a.internal(w, r, err)
	default:
		writeJSON(w, http.StatusOK, IdentifyAnswer{Customer: id})
	}
}

// findCustomer answers GET /v1/customers?identifier=email:a@b.example with
// {"customer": id}, or 404.
func (a *API) findCustomer(w http.ResponseWriter, r *http.Request) {
	ident := r.URL.Query().Get("identifier")
	if ident == "" || len(ident) > 400 {
		writeErr(w, http.StatusBadRequest, "identifier", "type:value, e.g. email:a@b.example")
		return
	}
	id, err := a.o.Store.FindCustomer(r.Context(), ident, r.URL.Query().Get("region"))
	switch {
	case errors.Is(err, store.ErrInvalid):
		writeErr(w, http.StatusBadRequest, "identifier", err.Error())
		return
	case errors.Is(err, store.ErrNotFound):
		writeErr(w, http.StatusNotFound, "identifier", "no customer has this identifier")
		return
	case err != nil:
		a.internal(w, r, err)
		return
	}
	if stores, limited := auth.From(r.Context()).Stores(); limited {
		if _, err := a.o.Store.Customer(r.Context(), id, stores); err != nil {
			if errors.Is(err, store.ErrNotFound) {
				writeErr(w, http.StatusNotFound, "identifier", "no customer has this identifier")
				return
			}
			a.internal(w, r, err)
			return
		}
	}
	writeJSON(w, http.StatusOK, IdentifyAnswer{Customer: id})
}

// customerView fetches the 360 the caller may see, or answers the error.
func (a *API) customerView(w http.ResponseWriter, r *http.Request, id string) (store.CustomerView, bool) {
	if !ids.ValidEventID(id) {
		writeErr(w, http.StatusBadRequest, "id", "not a customer id")
		return store.CustomerView{}, false
	}
	var limit []string
	if stores, limited := auth.From(r.Context()).Stores(); limited {
		limit = append([]string{}, stores...)
	}
	v, err := a.o.Store.Customer(r.Context(), id, limit)
	if errors.Is(err, store.ErrNotFound) {
		writeErr(w, http.StatusNotFound, "id", "no such customer")
		return v, false
	}
	if err != nil {
		a.internal(w, r, err)
		return v, false
	}
	return v, true
}

// customer answers GET /v1/customers/{id}: the 360.
func (a *API) customer(w http.ResponseWriter, r *http.Request) {
	v, ok := a.customerView(w, r, r.PathValue("id"))
	if ok {
		writeJSON(w, http.StatusOK, v)
	}
}

// customerConsent answers POST /v1/customers/{id}/consent {"purpose",
// "granted"|"status", "channel"?, "source"?, "text_version"?,
// "expires_at"?}: a decision stamped now, by the caller.
func (a *API) customerConsent(w http.ResponseWriter, r *http.Request) {
	id, ok := customerID(w, r)
	if !ok {
		return
	}
	var req struct {
		Purpose     string     `json:"purpose"`
		Granted     *bool      `json:"granted"`
		Status      string     `json:"status"`
		Channel     string     `json:"channel"`
		Source      string     `json:"source"`
		TextVersion string     `json:"text_version"`
		ExpiresAt   *time.Time `json:"expires_at"`
	}
	if !decodeBody(w, r, &req) {
		return
	}
	d, err := a.o.Store.AddConsent(r.Context(), id, store.ConsentRequest{Purpose: req.Purpose, Granted: req.Granted, Status: req.Status,
		Channel: req.Channel, Source: req.Source, TextVersion: req.TextVersion, ExpiresAt: req.ExpiresAt, Operator: caller(r)})
	switch {
	case errors.Is(err, store.ErrInvalid):
		writeErr(w, http.StatusBadRequest, "", err.Error())
	case errors.Is(err, store.ErrNotFound):
		writeErr(w, http.StatusNotFound, "id", "no such customer")
	case err != nil:
		a.internal(w, r, err)
	default:
		a.customersChanged(id)
		writeJSON(w, http.StatusOK, d)
	}
}

// maxInterestBody bounds an interest's body: a SKU and a kind.
const maxInterestBody = 1 << 10

// customerInterest answers POST /v1/customers/{id}/interests {"sku",
// "kind": "viewed"|"notify_me"} with 204: the web shop saw the signed-in
// shopper look at an item or ask to hear when it is back, which the
// back_in_stock trigger acts on. The SKU must be in the catalog. An
// unknown or erased customer answers 404, as the other routes do, and
// nothing is stored.
func (a *API) customerInterest(w http.ResponseWriter, r *http.Request) {
	id, ok := customerID(w, r)
	if !ok {
		return
	}
	var req struct {
		SKU  string `json:"sku"`
		Kind string `json:"kind"`
	}
	if !decodeBodyMax(w, r, &req, maxInterestBody, "1 KiB") {
		return
	}
	if err := validSKU(req.SKU); err != nil {
		writeErr(w, http.StatusBadRequest, "sku", err.Error())
		return
	}
	if !store.ValidInterestKind(req.Kind) {
		writeErr(w, http.StatusBadRequest, "kind", `must be "viewed" or "notify_me"`)
		return
	}
	err := a.o.Store.AddInterest(r.Context(), id, req.SKU, req.Kind)
	switch {
	case errors.Is(err, store.ErrUnknownSKU):
		writeErr(w, http.StatusBadRequest, "sku", "not in the catalog")
	case errors.Is(err, store.ErrInvalid):
		writeErr(w, http.StatusBadRequest, "", err.Error())
	case errors.Is(err, store.ErrNotFound):
		writeErr(w, http.StatusNotFound, "id", "no such customer")
	case err != nil:
		a.internal(w, r, err)
	default:
		w.WriteHeader(http.StatusNoContent)
	}
}

// unmerge answers POST /v1/customers/{id}/unmerge {"observation"?,
// "reason"?}: undoes the named merge (default: the newest) and answers the
// customers it gave back.
func (a *API) unmerge(w http.ResponseWriter, r *http.Request) {
	id, ok := customerID(w, r)
	if !ok {
		return
	}
	var req struct {
		Observation string `json:"observation"`
		Reason      string `json:"reason"`
	}
	if !decodeBody(w, r, &req) {
		return
	}
	if req.Observation != "" && !ids.ValidEventID(req.Observation) || len(req.Reason) > 500 {
		writeErr(w, http.StatusBadRequest, "observation", "an event id from the customer's merges; reason at most 500 characters")
		return
	}
	changed, err := a.o.Store.Unmerge(r.Context(), id, req.Observation, caller(r), req.Reason)
	switch {
	case errors.Is(err, store.ErrNotFound):
		writeErr(w, http.StatusNotFound, "id", err.Error())
	case err != nil:
		a.internal(w, r, err)
	default:
		a.log.Info("customer unmerged", "customer", id, "operator", caller(r))
		a.customersChanged(changed...)
		if changed == nil {
			changed = []string{}
		}
		writeJSON(w, http.StatusOK, map[string]any{"customers": changed})
	}
}

// erase answers POST /v1/customers/{id}/erase {"reason"?} with 202
// {"erasure": id}: the person is gone from the hub; the stores follow.
func (a *API) erase(w http.ResponseWriter, r *http.Request) {
	id, ok := customerID(w, r)
	if !ok {
		return
	}
	var req struct {
		Reason string `json:"reason"`
	}
	if r.ContentLength != 0 && !decodeBody(w, r, &req) {
		return
	}
	if len(req.Reason) > 500 {
		writeErr(w, http.StatusBadRequest, "reason", "at most 500 characters")
		return
	}
	eid, err := a.o.Store.EraseCustomer(r.Context(), id, caller(r), req.Reason)
	switch {
	case errors.Is(err, store.ErrNotFound):
		writeErr(w, http.StatusNotFound, "id", "no such customer")
	case err != nil:
		a.internal(w, r, err)
	default:
		a.log.Info("customer erased", "erasure", eid, "operator", caller(r))
		if a.o.OnErasure != nil {
			a.o.OnErasure(eid)
		}
		a.customersChanged(id)
		writeJSON(w, http.StatusAccepted, map[string]string{"erasure": eid})
	}
}

// erasure answers GET /v1/erasures/{id}: each store's state.
func (a *API) erasure(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if !ids.ValidEventID(id) {
		writeErr(w, http.StatusBadRequest, "id", "not an erasure id")
		return
	}
	e, err := a.o.Store.ErasureStatus(r.Context(), id)
	switch {
	case errors.Is(err, store.ErrNotFound):
		writeErr(w, http.StatusNotFound, "id", "no such erasure")
	case err != nil:
		a.internal(w, r, err)
	default:
		writeJSON(w, http.StatusOK, e)
	}
}

func (a *API) customersChanged(ids ...string) {
	if a.o.OnCustomersChange != nil && len(ids) > 0 {
		a.o.OnCustomersChange(ids)
	}
}

// customerID is the request's {id}, a master id; a malformed one is
// answered 400 here.
func customerID(w http.ResponseWriter, r *http.Request) (string, bool) {
	id := r.PathValue("id")
	if !ids.ValidEventID(id) {
		writeErr(w, http.StatusBadRequest, "id", "not a customer id")
		return "", false
	}
	return id, true
}
