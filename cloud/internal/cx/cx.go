// Package cx serves the hub's customer-experience routes: HQ's surveys and
// their scores, the shopper's survey page a receipt's QR opens, customer
// analytics (RFM segments, AOV, CLV), automation rules and their
// deliveries, and the HQ page that charts them. Every route declares what
// it needs (package auth); survey comments are redacted for everyone but
// moderators.
package cx

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/omnisync/omnisync/cloud/internal/auth"
	"github.com/omnisync/omnisync/cloud/internal/automation"
	"github.com/omnisync/omnisync/cloud/internal/egress"
	"github.com/omnisync/omnisync/cloud/internal/insights"
	"github.com/omnisync/omnisync/cloud/internal/store"
	"github.com/omnisync/omnisync/cloud/internal/surveys"
)

// Options are what the routes serve from. Insights and OnRulesChange may be
// nil (no analytics yet; rules read on the runner's own schedule).
type Options struct {
	Store    *store.Store
	Insights *insights.Service
	// OnRulesChange runs after HQ changed a rule (the runner reloads).
	OnRulesChange func()
	// OnSurveyChange runs after HQ saved a survey (the hub publishes it
	// to the stores).
	OnSurveyChange func(store.SurveyDef)
	// Webhooks is where a rule's webhook may point (package egress): a
	// URL it refuses is refused when the rule is saved. The zero Policy
	// allows none.
	Webhooks egress.Policy
	Logger   *slog.Logger
}

// Web is the routes.
type Web struct {
	o Options
}

// New returns the routes over o.
func New(o Options) *Web {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return &Web{o: o}
}

// Register adds every route to rt.
func (x *Web) Register(rt *auth.Router) {
	rt.HandleFunc("GET /v1/surveys", auth.Need(auth.InsightsRead), x.listSurveys)
	rt.HandleFunc("PUT /v1/surveys/{id}", auth.Need(auth.SurveysWrite), x.putSurvey)
	rt.HandleFunc("GET /v1/surveys/{id}/scores", auth.Need(auth.InsightsRead), x.scores)
	rt.HandleFunc("GET /v1/surveys/{id}/comments", auth.Need(auth.InsightsRead), x.comments)
	rt.HandleFunc("GET /s/{token}", auth.Public(), x.phonePage)
	rt.HandleFunc("POST /s/{token}", auth.Public(), x.phonePage)
	rt.HandleFunc("GET /v1/insights/segments", auth.Need(auth.InsightsRead), x.segments)
	rt.HandleFunc("GET /v1/insights/aov", auth.Need(auth.InsightsRead), x.aov)
	rt.HandleFunc("GET /v1/insights/clv", auth.Need(auth.InsightsRead), x.clv)
	rt.HandleFunc("GET /v1/insights/customers/{id}", auth.Need(auth.CustomersRead), x.customer)
	rt.HandleFunc("GET /v1/automation/rules", auth.Need(auth.AutomationRead), x.listRules)
	rt.HandleFunc("PUT /v1/automation/rules/{id}", auth.Need(auth.AutomationWrite), x.putRule)
	rt.HandleFunc("DELETE /v1/automation/rules/{id}", auth.Need(auth.AutomationWrite), x.deleteRule)
	rt.HandleFunc("GET /v1/automation/jobs", auth.Need(auth.AutomationRead), x.jobs)
	rt.HandleFunc("GET /insights", auth.Page(auth.InsightsRead), x.page)
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

func writeErr(w http.ResponseWriter, code int, field, msg string) {
	body := map[string]string{"error": msg}
	if field != "" {
		body["field"] = field
	}
	writeJSON(w, code, body)
}

func (x *Web) internal(w http.ResponseWriter, r *http.Request, err error) {
	x.o.Logger.Error("cx", "path", r.URL.Path, "err", err)
	writeErr(w, http.StatusInternalServerError, "", "internal error; see the hub's log")
}

// decode reads a JSON body of at most 64 KiB into v, refusing unknown
// fields.
func decode(w http.ResponseWriter, r *http.Request, v any) bool {
	dec := json.NewDecoder(io.LimitReader(r.Body, 64<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		writeErr(w, http.StatusBadRequest, "", "body: "+err.Error())
		return false
	}
	return true
}

func ctxShort(r *http.Request) (context.Context, context.CancelFunc) {
	return context.WithTimeout(r.Context(), 10*time.Second)
}

func (x *Web) listSurveys(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := ctxShort(r)
	defer cancel()
	ds, err := x.o.Store.Surveys(ctx)
	if err != nil {
		x.internal(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"surveys": nonNil(ds)})
}

// surveyBody is PUT /v1/surveys/{id}.
type surveyBody struct {
	Kind          surveys.Kind `json:"kind"`
	Question      string       `json:"question"`
	CommentPrompt string       `json:"comment_prompt"`
	Offer         string       `json:"offer"`
	Active        *bool        `json:"active"`
}

func (x *Web) putSurvey(w http.ResponseWriter, r *http.Request) {
	var b surveyBody
	if !decode(w, r, &b) {
		return
	}
	d := store.SurveyDef{ID: r.PathValue("id"), Kind: b.Kind, Question: b.Question, CommentPrompt: b.CommentPrompt, Offer: b.Offer, Active: b.Active == nil || *b.Active}
	ctx, cancel := ctxShort(r)
	defer cancel()
	d, err := x.o.Store.PutSurvey(ctx, d)
	switch {
	case errors.Is(err, store.ErrInvalid):
		writeErr(w, http.StatusBadRequest, "", strings.TrimPrefix(err.Error(), "store: invalid argument: "))
	case errors.Is(err, store.ErrSurveyKind):
		writeErr(w, http.StatusConflict, "kind", err.Error())
	case err != nil:
		x.internal(w, r, err)
	default:
		if x.o.OnSurveyChange != nil {
			x.o.OnSurveyChange(d)
		}
		writeJSON(w, http.StatusOK, d)
	}
}

// scoreQuery reads ?by=store,channel,week&since=YYYY-MM-DD&level=0.95.
func scoreQuery(r *http.Request) (by surveys.GroupBy, since time.Time, level float64, field, msg string) {
	q := r.URL.Query()
	for _, g := range strings.FieldsFunc(q.Get("by"), func(r rune) bool { return r == ',' || r == ' ' }) {
		switch g {
		case "store":
			by |= surveys.ByStore
		case "channel":
			by |= surveys.ByChannel
		case "week":
			by |= surveys.ByWeek
		default:
			return 0, since, 0, "by", "group by store, channel and/or week"
		}
	}
	if v := q.Get("since"); v != "" {
		t, err := time.Parse(time.DateOnly, v)
		if err != nil {
			return 0, since, 0, "since", "a date like 2026-01-31"
		}
		since = t
	}
	level = 0.95
	if v := q.Get("level"); v != "" {
		l, err := strconv.ParseFloat(v, 64)
		if err != nil || !(l > 0.5 && l < 1) {
			return 0, since, 0, "level", "a confidence level between 0.5 and 1, like 0.95"
		}
		level = l
	}
	return by, since, level, "", ""
}

func (x *Web) scores(w http.ResponseWriter, r *http.Request) {
	by, since, level, field, msg := scoreQuery(r)
	if msg != "" {
		writeErr(w, http.StatusBadRequest, field, msg)
		return
	}
	ctx, cancel := ctxShort(r)
	defer cancel()
	d, err := x.o.Store.Survey(ctx, r.PathValue("id"))
	if errors.Is(err, store.ErrNotFound) {
		writeErr(w, http.StatusNotFound, "", "no such survey")
		return
	}
	if err != nil {
		x.internal(w, r, err)
		return
	}
	as, err := x.o.Store.SurveyAnswers(ctx, d.ID, since, false)
	if err != nil {
		x.internal(w, r, err)
		return
	}
	// Answers are one per respondent already; Aggregate's Dedupe needs a
	// respondent to keep them apart.
	for i := range as {
		as[i].Respondent = strconv.Itoa(i)
	}
	res, err := surveys.Aggregate(as, by, level)
	if err != nil {
		x.internal(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"survey": d, "level": level, "results": nonNil(res)})
}

// Comment is an answer's comment as HQ reads it.
type Comment struct {
	Survey   string    `json:"survey"`
	Score    *int      `json:"score,omitempty"`
	Comment  string    `json:"comment"`
	Store    string    `json:"store"`
	Channel  string    `json:"channel"`
	At       time.Time `json:"at"`
	Redacted bool      `json:"redacted"`
}

func (x *Web) comments(w http.ResponseWriter, r *http.Request) {
	raw := r.URL.Query().Get("raw") == "1"
	if raw && !auth.From(r.Context()).Can(auth.ReviewsModerate) {
		writeErr(w, http.StatusForbidden, "raw", "only moderators (reviews:moderate) read comments unredacted")
		return
	}
	ctx, cancel := ctxShort(r)
	defer cancel()
	cs, err := x.commentList(ctx, r.PathValue("id"), raw, 200)
	if errors.Is(err, store.ErrNotFound) {
		writeErr(w, http.StatusNotFound, "", "no such survey")
		return
	}
	if err != nil {
		x.internal(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"comments": nonNil(cs)})
}

// commentList is the newest comments of a survey, first the newest.
func (x *Web) commentList(ctx context.Context, survey string, raw bool, limit int) ([]Comment, error) {
	if _, err := x.o.Store.Survey(ctx, survey); err != nil {
		return nil, err
	}
	as, err := x.o.Store.SurveyAnswers(ctx, survey, time.Time{}, raw)
	if err != nil {
		return nil, err
	}
	var out []Comment
	for i := len(as) - 1; i >= 0 && len(out) < limit; i-- {
		a := as[i]
		if strings.TrimSpace(a.Comment) == "" {
			continue
		}
		c := Comment{Survey: survey, Comment: a.Comment, Store: a.Store, Channel: a.Channel, At: a.At, Redacted: !raw}
		if a.Scored {
			c.Score = &a.Score
		}
		out = append(out, c)
	}
	return out, nil
}

func (x *Web) needInsights(w http.ResponseWriter) bool {
	if x.o.Insights == nil {
		writeErr(w, http.StatusServiceUnavailable, "", "customer analytics are not running on this hub")
		return false
	}
	return true
}

func (x *Web) segments(w http.ResponseWriter, r *http.Request) {
	if x.needInsights(w) {
		writeJSON(w, http.StatusOK, x.o.Insights.Segments())
	}
}

func (x *Web) aov(w http.ResponseWriter, r *http.Request) {
	if !x.needInsights(w) {
		return
	}
	rep := x.o.Insights.AOV()
	type seg struct {
		Segment string  `json:"segment"`
		Orders  int64   `json:"orders"`
		Revenue int64   `json:"revenue"`
		AOV     float64 `json:"aov"`
	}
	var bySeg []seg
	for _, s := range x.o.Insights.Segments().Segments {
		bySeg = append(bySeg, seg{string(s.Segment), s.Orders, s.Revenue, s.AOV})
	}
	writeJSON(w, http.StatusOK, map[string]any{"total": rep.Total, "by_store": rep.ByStore, "by_channel": rep.ByChannel, "by_segment": nonNil(bySeg)})
}

func (x *Web) clv(w http.ResponseWriter, r *http.Request) {
	if !x.needInsights(w) {
		return
	}
	rep, err := x.o.Insights.CLV()
	if errors.Is(err, insights.ErrNoFit) {
		writeErr(w, http.StatusServiceUnavailable, "", err.Error())
		return
	}
	writeJSON(w, http.StatusOK, rep)
}

func (x *Web) customer(w http.ResponseWriter, r *http.Request) {
	if !x.needInsights(w) {
		return
	}
	c, ok := x.o.Insights.Customer(r.PathValue("id"))
	if !ok {
		writeErr(w, http.StatusNotFound, "", "no purchases of that customer")
		return
	}
	writeJSON(w, http.StatusOK, c)
}

func (x *Web) listRules(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := ctxShort(r)
	defer cancel()
	rules, err := x.o.Store.Rules(ctx)
	if err != nil {
		x.internal(w, r, err)
		return
	}
	out := make([]automation.Rule, len(rules))
	for i, rl := range rules {
		out[i] = rl.Redacted()
	}
	writeJSON(w, http.StatusOK, map[string]any{"rules": out, "triggers": automation.Triggers})
}

func (x *Web) putRule(w http.ResponseWriter, r *http.Request) {
	var rl automation.Rule
	if !decode(w, r, &rl) {
		return
	}
	id := r.PathValue("id")
	if rl.ID != "" && rl.ID != id {
		writeErr(w, http.StatusBadRequest, "id", "the body names another rule than the path")
		return
	}
	rl.ID = id
	if err := rl.Validate(); err != nil {
		writeErr(w, http.StatusBadRequest, "", strings.TrimPrefix(err.Error(), "automation: invalid rule: "))
		return
	}
	ctx, cancel := ctxShort(r)
	defer cancel()
	if rl.Action.Kind == automation.ActionWebhook {
		if err := x.o.Webhooks.Check(ctx, rl.Action.URL); err != nil {
			writeErr(w, http.StatusBadRequest, "action.url", "refused: "+strings.TrimPrefix(err.Error(), "egress: "))
			return
		}
	}
	made, err := x.o.Store.SaveRule(ctx, rl)
	if err != nil {
		x.internal(w, r, err)
		return
	}
	if x.o.OnRulesChange != nil {
		x.o.OnRulesChange()
	}
	out := ruleSaved{Rule: rl.Redacted(), Secret: made}
	if made != "" {
		out.Note = "the webhook's signing secret is shown this once: keep it now"
	}
	writeJSON(w, http.StatusOK, out)
}

// ruleSaved answers PUT /v1/automation/rules/{id}: the rule without its
// secret, and the secret the hub made for a new webhook rule, this once.
type ruleSaved struct {
	automation.Rule
	Secret string `json:"secret,omitempty"`
	Note   string `json:"note,omitempty"`
}

func (x *Web) deleteRule(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := ctxShort(r)
	defer cancel()
	err := x.o.Store.DeleteRule(ctx, r.PathValue("id"))
	if errors.Is(err, store.ErrNotFound) {
		writeErr(w, http.StatusNotFound, "", "no such rule")
		return
	}
	if err != nil {
		x.internal(w, r, err)
		return
	}
	if x.o.OnRulesChange != nil {
		x.o.OnRulesChange()
	}
	w.WriteHeader(http.StatusNoContent)
}

func (x *Web) jobs(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	st := q.Get("state")
	switch st {
	case "", store.JobScheduled, store.JobDone, store.JobSkipped, store.JobDead:
	default:
		writeErr(w, http.StatusBadRequest, "state", "one of scheduled, done, skipped, dead")
		return
	}
	limit := 100
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1000 {
			writeErr(w, http.StatusBadRequest, "limit", "1 to 1000")
			return
		}
		limit = n
	}
	ctx, cancel := ctxShort(r)
	defer cancel()
	js, err := x.o.Store.Jobs(ctx, store.JobQuery{State: st, Rule: q.Get("rule"), Limit: limit})
	if err != nil {
		x.internal(w, r, err)
		return
	}
	stats, err := x.o.Store.JobStats(ctx)
	if err != nil {
		x.internal(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"jobs": nonNil(js), "rules": nonNil(stats)})
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}
