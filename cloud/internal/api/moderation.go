package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/omnisync/omnisync/cloud/internal/auth"
	"github.com/omnisync/omnisync/cloud/internal/reviews"
	"github.com/omnisync/omnisync/cloud/internal/store"
	"github.com/omnisync/omnisync/shared/ids"
)

// Review moderation: the queue of reviews across products, a moderator's
// decision on one, and the chain's moderation policy (the blocked words,
// and whether reviews wait for a moderator). Reading needs reviews:read;
// deciding and changing the policy reviews:moderate.
func (a *API) registerModeration(rt *auth.Router) {
	rt.HandleFunc("GET /v1/reviews", auth.Need(auth.ReviewsRead), a.reviewQueue)
	rt.HandleFunc("POST /v1/reviews/{event_id}/moderation", auth.Need(auth.ReviewsModerate), a.moderateReview)
	rt.HandleFunc("GET /v1/settings/reviews", auth.Need(auth.ReviewsRead), a.reviewPolicy)
	rt.HandleFunc("PUT /v1/settings/reviews", auth.Need(auth.ReviewsModerate), a.setReviewPolicy)
}

func reviewView(x store.ReviewRecord) ReviewView {
	v := ReviewView{ProductID: x.ProductID, SKU: x.SKU, Store: x.Store, Device: x.Device, Session: x.Session,
		EventID: x.EventID, Rating: x.Rating, Title: x.Title, Text: x.Text, Nickname: x.Nickname, Status: x.Status,
		Reason: x.Reason, At: time.UnixMilli(x.AtMS).UTC(), ModeratedBy: x.ModeratedBy}
	if x.ModeratedMS > 0 {
		t := time.UnixMilli(x.ModeratedMS).UTC()
		v.ModeratedAt = &t
	}
	return v
}

// reviewQueue answers GET /v1/reviews?status=pending&limit=&before=: the
// reviews of every product, newest first, with "next" (the cursor of the
// following page) while there are more.
func (a *API) reviewQueue(w http.ResponseWriter, r *http.Request) {
	q := store.ReviewQuery{Status: r.URL.Query().Get("status")}
	switch q.Status {
	case "", reviews.Pending, reviews.Published, reviews.Rejected:
	default:
		writeErr(w, http.StatusBadRequest, "status", "one of pending, published, rejected")
		return
	}
	limit, ok := limitParam(w, r, 50)
	if !ok {
		return
	}
	q.Limit = min(limit, 500)
	if b := r.URL.Query().Get("before"); b != "" {
		h, id, found := strings.Cut(b, "_")
		v, err := strconv.ParseInt(h, 10, 64)
		if !found || err != nil || v <= 0 || !ids.ValidEventID(id) {
			writeErr(w, http.StatusBadRequest, "before", "a cursor from a previous page's next")
			return
		}
		q.BeforeHLC, q.BeforeEventID = v, id
	}
	rs, err := a.o.Store.ReviewQueue(r.Context(), q)
	if err != nil {
		a.internal(w, r, err)
		return
	}
	body := map[string]any{"reviews": views(rs, reviewView)}
	if len(rs) == q.Limit {
		last := rs[len(rs)-1]
		body["next"] = fmt.Sprintf("%d_%s", last.HLC, last.EventID)
	}
	writeJSON(w, http.StatusOK, body)
}

// moderateReview answers POST /v1/reviews/{event_id}/moderation
// {"action": "approve|reject|unpublish", "note": "..."}.
func (a *API) moderateReview(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("event_id")
	if !ids.ValidEventID(id) {
		writeErr(w, http.StatusBadRequest, "event_id", "not an event id")
		return
	}
	var req struct {
		Action reviews.Action `json:"action"`
		Note   string         `json:"note"`
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		writeErr(w, http.StatusBadRequest, "", "body: "+err.Error())
		return
	}
	if len(req.Note) > 500 {
		writeErr(w, http.StatusBadRequest, "note", "at most 500 characters")
		return
	}
	rec, err := a.moderate(r, id, req.Action, req.Note)
	switch {
	case errors.Is(err, store.ErrNotFound):
		writeErr(w, http.StatusNotFound, "event_id", "no such review (a shopper's earlier review of the same visit may have replaced it)")
	case errors.Is(err, reviews.ErrTransition):
		writeErr(w, http.StatusConflict, "action", err.Error())
	case err != nil:
		a.internal(w, r, err)
	default:
		writeJSON(w, http.StatusOK, reviewView(rec))
	}
}

// moderate records the decision of the caller and has the stores' summary
// republished.
func (a *API) moderate(r *http.Request, id string, action reviews.Action, note string) (store.ReviewRecord, error) {
	who := "unknown"
	if p := auth.From(r.Context()); p != nil {
		who = p.User
	}
	rec, err := a.o.Store.ModerateReview(r.Context(), strings.ToLower(id), action, who, note)
	if err == nil {
		a.log.Info("review moderated", "event_id", rec.EventID, "product", rec.ProductID, "action", action, "status", rec.Status, "moderator", who)
		if a.o.OnReviewsChange != nil {
			a.o.OnReviewsChange([]string{rec.ProductID})
		}
	}
	return rec, err
}

func (a *API) reviewPolicy(w http.ResponseWriter, r *http.Request) {
	p, err := a.o.Store.ReviewPolicy(r.Context())
	if err != nil {
		a.internal(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, p)
}

// setReviewPolicy answers PUT /v1/settings/reviews {"blocked_words": [...],
// "auto_publish": false}: the policy every replica applies to reviews
// arriving from then on.
func (a *API) setReviewPolicy(w http.ResponseWriter, r *http.Request) {
	var p reviews.Policy
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		writeErr(w, http.StatusBadRequest, "", "body: "+err.Error())
		return
	}
	if p.BlockedWords == nil {
		writeErr(w, http.StatusBadRequest, "blocked_words", "required (an empty list blocks nothing)")
		return
	}
	if err := a.o.Store.SetReviewPolicy(r.Context(), p); err != nil {
		if errors.Is(err, store.ErrInvalid) {
			writeErr(w, http.StatusBadRequest, "blocked_words", err.Error())
			return
		}
		a.internal(w, r, err)
		return
	}
	a.reviewPolicy(w, r)
}
