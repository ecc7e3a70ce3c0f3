package api

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/omnisync/omnisync/cloud/internal/auth"
	"github.com/omnisync/omnisync/cloud/internal/hqact"
	"github.com/omnisync/omnisync/cloud/internal/inventory"
	"github.com/omnisync/omnisync/cloud/internal/store"
	"github.com/omnisync/omnisync/cloud/internal/transfers"
)

// Conflict types in GET /v1/conflicts.
const (
	TypeOversell     = "oversell"
	TypeCartCheckout = "cart_checkout"
)

func (a *API) registerConflicts(rt *auth.Router) {
	rt.HandleFunc("GET /v1/conflicts", auth.Need(auth.ConflictsRead), a.conflicts)
	rt.HandleFunc("POST /v1/conflicts/{id}/actions", auth.Need(auth.ConflictsAct), a.conflictAct)
	rt.HandleFunc("POST /v1/conflicts/carts/{cart}/dismiss", auth.Need(auth.ConflictsAct), a.cartConflictDismiss)
	rt.HandleFunc("GET /v1/transfers", auth.Need(auth.InventoryRead), a.transfers)
}

// conflicts lists the conflicts the caller may see, newest first: the
// oversells (a store manager's at their stores only) and, for those who
// see every store, the carts checked out twice. ?all=1 adds the resolved
// ones, ?type= keeps one type.
func (a *API) conflicts(w http.ResponseWriter, r *http.Request) {
	openOnly := r.URL.Query().Get("all") == ""
	typ := r.URL.Query().Get("type")
	if typ != "" && typ != TypeOversell && typ != TypeCartCheckout {
		writeErr(w, http.StatusBadRequest, "type", "type must be oversell or cart_checkout")
		return
	}
	limit, ok := limitParam(w, r, 100)
	if !ok {
		return
	}
	out, err := a.conflictList(r, openOnly, typ, limit)
	if err != nil {
		a.internal(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"conflicts": out})
}

func (a *API) conflictList(r *http.Request, openOnly bool, typ string, limit int) ([]ConflictView, error) {
	out := []ConflictView{}
	stores, limited := auth.From(r.Context()).Stores()
	if typ != TypeCartCheckout {
		var cs []store.Conflict
		var err error
		if !limited {
			cs, err = a.o.Store.Conflicts(r.Context(), openOnly, limit)
		} else if len(stores) > 0 {
			cs, err = a.o.Store.Conflicts(r.Context(), openOnly, limit, stores...)
		}
		if err != nil {
			return nil, err
		}
		for _, c := range cs {
			out = append(out, conflictView(c))
		}
	}
	// A cart's checkouts may be at any store: only those who see every
	// store see them.
	if typ != TypeOversell && !limited {
		ccs, err := a.o.Store.CartCheckoutConflicts(r.Context(), !openOnly, limit)
		if err != nil {
			return nil, err
		}
		for _, c := range ccs {
			out = append(out, cartConflictView(c))
		}
	}
	return out, nil
}

// ConflictView is one conflict in GET /v1/conflicts.
type ConflictView struct {
	// Type is oversell or cart_checkout.
	Type string `json:"type"`
	// ID, SKU, Location, Kind, Available, Version and the rest are an
	// oversell's; CartID and Checkouts a cart checked out more than once.
	ID        int64  `json:"id,omitempty"`
	SKU       string `json:"sku,omitempty"`
	Location  string `json:"location,omitempty"`
	Kind      string `json:"kind"`
	Available int64  `json:"available"`
	Version   int64  `json:"version,omitempty"`
	CartID    string `json:"cart_id,omitempty"`
	Checkouts int    `json:"checkouts,omitempty"`
	// Reservations are the active reservations at the position, and
	// Suggestions other locations that could fill them (open conflicts
	// only).
	Reservations []string        `json:"reservations"`
	Suggestions  []LocationStock `json:"suggestions"`
	OpenedAt     time.Time       `json:"opened_at,omitzero"`
	ResolvedAt   *time.Time      `json:"resolved_at,omitempty"`
	// ResolvedBy is what closed it: receipt, count, transfer, return,
	// adjust, release, fulfil, reserve, safety, hq_action or dismissed.
	ResolvedBy string `json:"resolved_by,omitempty"`
	// Action is what HQ did about it, if anything.
	Action *ActionView `json:"action,omitempty"`
	// Proposals are the actions on offer (open conflicts only).
	Proposals []ProposalView `json:"proposals"`
}

// ActionView is HQ's action on a conflict.
type ActionView struct {
	ActionID string    `json:"action_id,omitempty"`
	Action   string    `json:"action"`
	Actor    string    `json:"actor"`
	At       time.Time `json:"at"`
}

// ProposalView is an action on offer; POST it (with action_id and
// version) to /v1/conflicts/{id}/actions.
type ProposalView struct {
	Action        string `json:"action"`
	From          string `json:"from,omitempty"`
	Qty           int64  `json:"qty,omitempty"`
	ReservationID string `json:"reservation_id,omitempty"`
	To            string `json:"to,omitempty"`
	Label         string `json:"label"`
}

func conflictView(c store.Conflict) ConflictView {
	v := ConflictView{Type: TypeOversell, ID: c.ID, SKU: c.SKU, Location: c.Location, Kind: c.Kind, Available: c.Available, Version: c.Version,
		Reservations: c.Reservations, Suggestions: make([]LocationStock, 0, len(c.Suggestions)), OpenedAt: c.OpenedAt.UTC(), ResolvedAt: c.ResolvedAt,
		ResolvedBy: c.ResolvedBy, Proposals: []ProposalView{}}
	if v.Reservations == nil {
		v.Reservations = []string{}
	}
	for _, s := range c.Suggestions {
		v.Suggestions = append(v.Suggestions, locationStock(s))
	}
	if c.Action != "" {
		v.Action = &ActionView{Action: c.Action, Actor: c.ActedBy, At: c.ActedAt.UTC()}
	}
	for _, p := range hqact.Proposals(c) {
		v.Proposals = append(v.Proposals, ProposalView{Action: p.Action, From: p.From, Qty: p.Qty, ReservationID: p.Reservation, To: p.To, Label: p.Label})
	}
	return v
}

func cartConflictView(c store.CartCheckoutConflict) ConflictView {
	v := ConflictView{Type: TypeCartCheckout, Kind: TypeCartCheckout, CartID: c.CartID, Checkouts: c.Checkouts,
		Reservations: []string{}, Suggestions: []LocationStock{}, Proposals: []ProposalView{}}
	if c.DismissedBy != "" {
		at := c.DismissedAt.UTC()
		v.ResolvedAt, v.ResolvedBy = &at, inventory.CauseDismissed
		v.Action = &ActionView{Action: "dismiss", Actor: c.DismissedBy, At: at}
	} else {
		v.Proposals = append(v.Proposals, ProposalView{Action: "dismiss", Label: "Dismiss: the double checkout was dealt with"})
	}
	return v
}

// ActionRequest is the body of POST /v1/conflicts/{id}/actions.
type ActionRequest struct {
	// ActionID makes the action idempotent: the same id acts once.
	ActionID string `json:"action_id"`
	// Version is the conflict version the decision was made on.
	Version       int64  `json:"version"`
	Action        string `json:"action"`
	From          string `json:"from,omitempty"`
	Qty           int64  `json:"qty,omitempty"`
	ReservationID string `json:"reservation_id,omitempty"`
	To            string `json:"to,omitempty"`
}

// ActionResult answers an action.
type ActionResult struct {
	ActionView
	ConflictID int64 `json:"conflict_id"`
	// Repeated: the action id had acted already; nothing new happened.
	Repeated bool     `json:"repeated"`
	EventIDs []string `json:"event_ids"`
}

// ConflictActor carries out HQ's actions (hqact.Service).
type ConflictActor interface {
	Act(ctx context.Context, r hqact.Request) (hqact.Result, error)
}

func (a *API) conflictAct(w http.ResponseWriter, r *http.Request) {
	if a.o.Acts == nil {
		writeErr(w, http.StatusServiceUnavailable, "", "this hub does not act on conflicts")
		return
	}
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		writeErr(w, http.StatusBadRequest, "id", "conflict id must be a positive integer")
		return
	}
	var req ActionRequest
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		writeErr(w, http.StatusBadRequest, "", "body must be {\"action_id\": ..., \"version\": n, \"action\": \"transfer\"|\"resource\"|\"cancel\", ...}: "+err.Error())
		return
	}
	p := auth.From(r.Context())
	res, err := a.o.Acts.Act(r.Context(), hqact.Request{ConflictID: id, Version: req.Version, ActionID: req.ActionID, Action: req.Action,
		From: req.From, Qty: req.Qty, Reservation: req.ReservationID, To: req.To, Actor: p.User})
	if code, msg := hqact.ErrorStatus(err); code != 0 {
		if code == http.StatusInternalServerError {
			a.internal(w, r, err)
			return
		}
		writeErr(w, code, "", msg)
		return
	}
	out := ActionResult{ActionView: ActionView{ActionID: res.Action.ActionID, Action: res.Action.Action, Actor: res.Action.Actor, At: res.Action.At.UTC()},
		ConflictID: id, Repeated: res.Repeated, EventIDs: []string{}}
	for _, e := range res.Events {
		out.EventIDs = append(out.EventIDs, e.ID)
	}
	writeJSON(w, http.StatusOK, out)
}

func (a *API) cartConflictDismiss(w http.ResponseWriter, r *http.Request) {
	cart := r.PathValue("cart")
	err := a.o.Store.DismissCartConflict(r.Context(), cart, auth.From(r.Context()).User)
	switch {
	case errors.Is(err, store.ErrNotFound):
		writeErr(w, http.StatusNotFound, "cart", "no cart "+cart+" checked out more than once")
		return
	case err != nil:
		a.internal(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"cart_id": cart, "resolved_by": inventory.CauseDismissed})
}

// TransferView is one transfer in GET /v1/transfers.
type TransferView struct {
	TransferID  string             `json:"transfer_id"`
	Source      string             `json:"source"`
	Destination string             `json:"destination"`
	State       string             `json:"state"`
	Lines       []TransferLineView `json:"lines"`
	ShippedAt   time.Time          `json:"shipped_at,omitzero"`
	ReceivedAt  time.Time          `json:"received_at,omitzero"`
}

// TransferLineView is one SKU of a transfer.
type TransferLineView struct {
	SKU       string `json:"sku"`
	Shipped   int64  `json:"shipped"`
	Received  int64  `json:"received"`
	InTransit int64  `json:"in_transit"`
}

// TransferViewOf renders t.
func TransferViewOf(t transfers.Transfer) TransferView {
	v := TransferView{TransferID: t.ID, Source: t.Source, Destination: t.Destination, State: t.State,
		ShippedAt: t.ShippedAt.UTC(), ReceivedAt: t.ReceivedAt.UTC(), Lines: []TransferLineView{}}
	if t.ShippedAt.IsZero() {
		v.ShippedAt = time.Time{}
	}
	if t.ReceivedAt.IsZero() {
		v.ReceivedAt = time.Time{}
	}
	for _, l := range t.Lines {
		lv := TransferLineView{SKU: l.SKU, Shipped: l.Shipped, Received: l.Received}
		if t.Open() || t.State == transfers.StateOverdue {
			lv.InTransit = l.InTransit()
		}
		v.Lines = append(v.Lines, lv)
	}
	return v
}

// transfers lists transfers (?state=in_transit|partial|received|overdue),
// a store manager's only those from or to their stores.
func (a *API) transfers(w http.ResponseWriter, r *http.Request) {
	state := r.URL.Query().Get("state")
	if state != "" && !transfers.ValidState(state) {
		writeErr(w, http.StatusBadRequest, "state", "state must be in_transit, partial, received or overdue")
		return
	}
	limit, ok := limitParam(w, r, 100)
	if !ok {
		return
	}
	stores, limited := auth.From(r.Context()).Stores()
	ts, err := a.o.Store.Transfers(r.Context(), store.TransferQuery{State: state, Locations: stores, Limited: limited,
		Now: a.o.Now(), Overdue: a.o.TransferOverdue, Limit: limit})
	if err != nil {
		a.internal(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"transfers": views(ts, TransferViewOf)})
}
