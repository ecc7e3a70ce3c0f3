package kiosk

import (
	_ "embed"
	"encoding/json"
	"errors"
	"html/template"
	"net/http"
	"strconv"

	"github.com/omnisync/omnisync/edge/internal/outbox"
	"github.com/omnisync/omnisync/shared/downsync"
	"github.com/omnisync/omnisync/shared/events"
)

// The kiosk's surveys: HQ's post-purchase survey, offered on the cart
// screen once the session's cart was checked out at the store's till,
// and its fitting-room survey, offered on the mirror when the shopper
// presses "Done". The definitions come from the down-sync
// (Options.Surveys), the answers go through the outbox as survey events:
// a kiosk offline asks and records them the same, and the hub counts them
// when they arrive.
//
// An answer is given in two steps, each its own event: the score (a
// partial answer, kept if the shopper walks away), then the comment and
// the submission (the complete answer). The respondent is the receipt
// (the sale's order id) after a purchase, the kiosk session in the
// fitting room; the hub keeps one answer per respondent and survey. Each
// step is appended once (AppendOnce): a double tap sends one event, and a
// second, different submission for the same respondent is refused here
// ("already answered") before the hub would merge it.

// Survey moments (the for field of the survey form).
const (
	surveyPurchase = "purchase"
	surveyVisit    = "visit"
)

//go:embed survey.html
var surveyHTML string

func init() { template.Must(templates.Parse(surveyHTML)) }

// surveyView is the survey screen.
type surveyView struct {
	ID, Question, CommentPrompt string
	For                         string
	// Scores are the scale's points; Low and High label its ends.
	Scores    []int
	Low, High string
	// Score is the score given (the comment step); -1 before.
	Score int
	// Heading thanks the shopper for what brought the survey.
	Heading string
	Err     string
}

func (k *Kiosk) registerSurvey(mux *http.ServeMux) {
	if k.o.Surveys == nil {
		return
	}
	mux.HandleFunc("GET /kiosk/survey", k.surveyPage)
	mux.HandleFunc("POST /kiosk/survey", k.postSurvey)
}

// surveyFor returns the survey offered at moment m, if HQ has one.
func (k *Kiosk) surveyFor(m string) (downsync.SurveyDoc, bool) {
	if k.o.Surveys == nil {
		return downsync.SurveyDoc{}, false
	}
	offer := downsync.OfferPostPurchase
	if m == surveyVisit {
		offer = downsync.OfferFittingRoom
	}
	return k.o.Surveys(offer)
}

// respondent is who answers at moment m: the receipt of the session's
// checked-out cart, or the session in the fitting room. ok is false when
// there is none (no purchase yet, or not a mirror).
func (k *Kiosk) respondent(r *http.Request, p place, s session, m string) (body events.Survey, ok bool) {
	switch m {
	case surveyPurchase:
		if k.o.Carts == nil {
			return body, false
		}
		id := cartOf(r, s)
		if id == "" {
			return body, false
		}
		c, err := k.o.Carts.Load(id)
		if err != nil || c.OrderID == "" {
			return body, false
		}
		return events.Survey{Receipt: c.OrderID, Channel: "kiosk"}, true
	case surveyVisit:
		if p.Zone == "" {
			return body, false
		}
		return events.Survey{Session: s.ID, Channel: "fitting_room"}, true
	}
	return body, false
}

func (k *Kiosk) surveyView(d downsync.SurveyDoc, m string) *surveyView {
	lo, hi, _ := d.Scale()
	v := &surveyView{ID: d.ID, Question: d.Question, CommentPrompt: d.CommentPrompt, For: m, Score: -1,
		Low: "Not at all likely", High: "Extremely likely", Heading: "Thank you for shopping with us!"}
	switch d.Kind {
	case "csat":
		v.Low, v.High = "Very unsatisfied", "Very satisfied"
	case "ces":
		v.Low, v.High = "Very difficult", "Very easy"
	}
	if m == surveyVisit {
		v.Heading = "Thank you for your visit!"
	}
	for i := lo; i <= hi; i++ {
		v.Scores = append(v.Scores, i)
	}
	return v
}

// surveyPage asks the survey's score.
func (k *Kiosk) surveyPage(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	p := placeOf(q)
	s := k.session(w, r, true)
	m := q.Get("for")
	d, ok := k.surveyFor(m)
	if _, has := k.respondent(r, p, s, m); !ok || !has {
		http.Redirect(w, r, p.Home(), http.StatusSeeOther)
		return
	}
	pg := k.newPage(p, s, "survey", "A quick question")
	pg.Survey = k.surveyView(d, m)
	k.render(w, http.StatusOK, pg)
}

// postSurvey records a step of an answer: step "score" a partial answer
// with the score, step "send" (or "skip", without a comment) the complete
// answer, after which the session ends and the start screen thanks the
// shopper.
func (k *Kiosk) postSurvey(w http.ResponseWriter, r *http.Request) {
	p, s, ok := k.readForm(w, r)
	if !ok {
		return
	}
	f := r.PostForm
	m := f.Get("for")
	d, ok := k.surveyFor(m)
	body, has := k.respondent(r, p, s, m)
	if !ok || !has {
		k.message(w, http.StatusConflict, p, s, message{Heading: "This survey is no longer open", Detail: "Thank you all the same!"})
		return
	}
	v := k.surveyView(d, m)
	pg := k.newPage(p, s, "survey", "A quick question")
	pg.Survey = v
	if f.Get("survey") != d.ID {
		// HQ replaced the survey while the shopper was reading it.
		v.Err = "The survey changed in the meantime: please answer again."
		k.render(w, http.StatusConflict, pg)
		return
	}
	lo, hi, _ := d.Scale()
	score, err := strconv.Atoi(f.Get("score"))
	if err != nil || score < lo || score > hi {
		v.Err = "Please choose a score from " + strconv.Itoa(lo) + " to " + strconv.Itoa(hi) + "."
		k.render(w, http.StatusBadRequest, pg)
		return
	}
	v.Score = score
	body.Survey, body.Score = d.ID, &score
	step := f.Get("step")
	if step == "send" {
		body.Comment = formText(f.Get("comment"))
	}
	body.Complete = step == "send" || step == "skip"
	raw, _ := json.Marshal(body)
	data, err := events.ValidateBody(events.KindSurvey, raw)
	if err != nil {
		var fe *events.FieldError
		if errors.As(err, &fe) && fe.Field == "comment" {
			v.Err = "Your comment " + fe.Reason + "."
		} else {
			v.Err = "We couldn't take this answer."
			k.log.Warn("kiosk: survey answer refused", "err", err)
		}
		k.render(w, http.StatusBadRequest, pg)
		return
	}
	if k.o.Outbox == nil {
		v.Err = "Answers can't be taken on this kiosk. Sorry!"
		k.render(w, http.StatusServiceUnavailable, pg)
		return
	}
	resp := body.Receipt
	if resp == "" {
		resp = body.Session
	}
	key := "survey:" + d.ID + ":" + resp + ":done"
	if !body.Complete {
		key = "survey:" + d.ID + ":" + resp + ":score:" + strconv.Itoa(score)
	}
	envs, replayed, err := k.o.Outbox.AppendOnce(r.Context(), key, []events.Draft{{Kind: events.KindSurvey, Data: data}})
	switch {
	case err == nil:
		if len(envs) > 0 {
			k.log.Info("kiosk: survey answer recorded", "event", envs[0].ID, "survey", d.ID, "complete", body.Complete, "replayed", replayed)
		}
	case errors.Is(err, outbox.ErrKeyReused):
		// Answered already, differently: the first answer stands.
	default:
		status, text := k.appendFailure(err, "answer")
		v.Err = text
		k.render(w, status, pg)
		return
	}
	if !body.Complete {
		k.render(w, http.StatusOK, pg)
		return
	}
	endSession(w, r)
	v2 := p.values()
	v2.Set("thanks", "1")
	http.Redirect(w, r, withQuery("/kiosk/", v2), http.StatusSeeOther)
}

// surveyAfterDone is where "Done" on a mirror goes when HQ has a
// fitting-room survey: its page, the session kept until it is answered or
// skipped. Empty: end the session.
func (k *Kiosk) surveyAfterDone(r *http.Request, p place) string {
	if p.Zone == "" || r.PostForm.Get("skip") != "" {
		return ""
	}
	s, ok := readCookie(r)
	if !ok || k.o.Now().Sub(s.Last) > k.o.SessionIdle {
		return ""
	}
	if _, ok := k.surveyFor(surveyVisit); !ok {
		return ""
	}
	v := p.values()
	v.Set("for", surveyVisit)
	return withQuery("/kiosk/survey", v)
}

// purchaseSurveyURL is the post-purchase survey's page for the session's
// cart, once it was checked out and HQ has the survey; empty otherwise.
func (k *Kiosk) purchaseSurveyURL(r *http.Request, p place, s session) string {
	if _, ok := k.surveyFor(surveyPurchase); !ok {
		return ""
	}
	if _, ok := k.respondent(r, p, s, surveyPurchase); !ok {
		return ""
	}
	v := p.values()
	v.Set("for", surveyPurchase)
	return withQuery("/kiosk/survey", v)
}

// cartSold answers the cart screen's watch: 200 once the session's cart
// was checked out (the page then reloads into the survey), 204 before.
// It does not count as the shopper's activity.
func (k *Kiosk) cartSold(w http.ResponseWriter, r *http.Request) {
	s := k.session(w, r, false)
	w.Header().Set("Cache-Control", "no-store")
	if id := cartOf(r, s); id != "" {
		if c, err := k.o.Carts.Load(id); err == nil && c.OrderID != "" {
			w.WriteHeader(http.StatusOK)
			return
		}
	}
	w.WriteHeader(http.StatusNoContent)
}

// thanksText is the start screen's note after a survey.
const thanksText = "Thank you for your feedback!"
