package cx

import (
	"errors"
	"html/template"
	"net/http"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/omnisync/omnisync/cloud/internal/store"
	"github.com/omnisync/omnisync/shared/events"
)

// The shopper's survey page, opened from the QR on a receipt: public (the
// token, 128 random bits or more, is the credential), no script, one form
// posting back to itself. An answer without a score is kept as a partial
// answer; the receipt's answer can be changed until the shopper submits a
// complete one, and a complete one can be corrected by another.

type phoneData struct {
	Token, Question, Prompt, Flash, Err string
	Scale                               []int
	Low, High                           string
	Done                                bool
}

var phoneTmpl = template.Must(template.New("phone").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>Tell us how we did</title>
<style>
body{font-family:system-ui,sans-serif;margin:1rem auto;max-width:32rem;padding:0 1rem;color:#1d2733}
h1{font-size:1.3rem}.scale{display:flex;flex-wrap:wrap;gap:.4rem;margin:1rem 0}
.scale label{border:1px solid #99a;border-radius:6px;padding:.6rem .8rem;min-width:1.5rem;text-align:center}
.scale input{margin-right:.3rem}.ends{display:flex;justify-content:space-between;color:#5b6573;font-size:.85rem}
textarea{width:100%;min-height:6rem}button{margin-top:1rem;padding:.6rem 1.2rem;font-size:1rem}
.flash{background:#e8f4ec;padding:.6rem .8rem;border-radius:6px}.bad{color:#b3261e}
</style></head><body>
{{if .Err}}<h1>Survey</h1><p class="bad" id="error">{{.Err}}</p>{{else}}
<h1 id="question">{{.Question}}</h1>
{{if .Flash}}<p class="flash" id="flash">{{.Flash}}</p>{{end}}
{{if not .Done}}<form method="post" action="/s/{{.Token}}">
<div class="scale">{{range .Scale}}<label><input type="radio" name="score" value="{{.}}">{{.}}</label>{{end}}</div>
<div class="ends"><span>{{.Low}}</span><span>{{.High}}</span></div>
<p><label for="comment">{{if .Prompt}}{{.Prompt}}{{else}}Anything to add? (optional){{end}}</label><br>
<textarea id="comment" name="comment" maxlength="4000"></textarea></p>
<p style="font-size:.85rem;color:#5b6573">Please leave out your name, e-mail or phone number.</p>
<button type="submit" id="send">Send</button>
</form>{{end}}{{end}}
</body></html>`))

func (x *Web) phonePage(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Referrer-Policy", "no-referrer") // the token is in the path
	token := r.PathValue("token")
	ctx, cancel := ctxShort(r)
	defer cancel()
	inv, err := x.o.Store.SurveyByToken(ctx, token)
	if err != nil || !inv.Survey.Active {
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			x.o.Logger.Error("cx: survey token", "err", err)
		}
		w.WriteHeader(http.StatusNotFound)
		_ = phoneTmpl.Execute(w, phoneData{Err: "This survey is not available (yet): if you just paid, try again in a few minutes."})
		return
	}
	d := phoneData{Token: token, Question: inv.Survey.Question, Prompt: inv.Survey.CommentPrompt}
	lo, hi, _ := inv.Survey.Kind.Scale()
	for i := lo; i <= hi; i++ {
		d.Scale = append(d.Scale, i)
	}
	d.Low, d.High = "Not at all likely", "Extremely likely"
	switch inv.Survey.Kind {
	case "csat":
		d.Low, d.High = "Very unsatisfied", "Very satisfied"
	case "ces":
		d.Low, d.High = "Very difficult", "Very easy"
	}
	if r.Method == http.MethodPost {
		score := -1
		if v := r.PostFormValue("score"); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < lo || n > hi {
				w.WriteHeader(http.StatusBadRequest)
				d.Flash = "Please pick a score on the scale."
				_ = phoneTmpl.Execute(w, d)
				return
			}
			score = n
		}
		comment := strings.TrimSpace(r.PostFormValue("comment"))
		if !utf8.ValidString(comment) || utf8.RuneCountInString(comment) > events.MaxSurveyComment {
			w.WriteHeader(http.StatusBadRequest)
			d.Flash = "The comment is too long."
			_ = phoneTmpl.Execute(w, d)
			return
		}
		if score < 0 && comment == "" {
			w.WriteHeader(http.StatusBadRequest)
			d.Flash = "Please pick a score."
			_ = phoneTmpl.Execute(w, d)
			return
		}
		if err := x.o.Store.AnswerByToken(ctx, token, score, comment, score >= 0); err != nil {
			if errors.Is(err, store.ErrInvalid) {
				w.WriteHeader(http.StatusBadRequest)
				d.Flash = "That answer could not be taken."
				_ = phoneTmpl.Execute(w, d)
				return
			}
			x.o.Logger.Error("cx: survey answer", "err", err)
			w.WriteHeader(http.StatusInternalServerError)
			d.Flash = "Sorry, your answer could not be saved. Please try again."
			_ = phoneTmpl.Execute(w, d)
			return
		}
		d.Done = score >= 0
		d.Flash = "Thank you!"
		if !d.Done {
			d.Flash = "Thank you! Your comment is saved; a score would help us too."
		}
	}
	_ = phoneTmpl.Execute(w, d)
}
