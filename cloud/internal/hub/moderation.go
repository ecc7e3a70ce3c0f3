package hub

import (
	"context"
	"errors"
	"html/template"
	"net/http"
	"strings"
	"time"

	"github.com/omnisync/omnisync/cloud/internal/auth"
	"github.com/omnisync/omnisync/cloud/internal/reviews"
	"github.com/omnisync/omnisync/cloud/internal/store"
	"github.com/omnisync/omnisync/shared/ids"
)

// The moderation page: the reviews waiting for a moderator (or those of
// another status), each with the decisions its status allows. A decision
// is a form post (with the session's CSRF token), answered with a redirect
// back to the list, so a reload never decides twice.

type moderationData struct {
	User, CSRF, Status, Flash, Err string
	Statuses                       []string
	Reviews                        []store.ReviewRecord
}

var moderationTmpl = template.Must(template.New("mod").Funcs(template.FuncMap{
	"when": func(ms int64) string { return time.UnixMilli(ms).UTC().Format("2006-01-02 15:04") },
	"stars": func(n int) string {
		n = min(max(n, 0), 5)
		return strings.Repeat("★", n) + strings.Repeat("☆", 5-n)
	},
}).Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>Review moderation · omnisync HQ</title>
<style>
body{font-family:system-ui,sans-serif;margin:1.5rem;color:#1d2733;max-width:60rem}
h1{font-size:1.4rem}nav a{margin-right:.8rem}nav a.on{font-weight:700;text-decoration:none;color:#1d2733}
.review{border:1px solid #dde;border-radius:8px;padding:.8rem 1rem;margin:.8rem 0}
.meta{color:#5b6573;font-size:.9rem}.stars{color:#c78a00}.reason{color:#b3261e}
form{display:inline}button{margin:.4rem .4rem 0 0;padding:.35rem .8rem}input[name=note]{width:16rem}
.flash{background:#e8f4ec;padding:.5rem .8rem;border-radius:6px}.bad{color:#b3261e;font-weight:600}
</style></head><body>
<h1>Review moderation</h1>
<p><a href="/">← HQ</a> · <span id="user">{{.User}}</span></p>
<nav>{{range .Statuses}}<a href="/moderation?status={{.}}"{{if eq . $.Status}} class="on"{{end}}>{{.}}</a>{{end}}</nav>
{{if .Flash}}<p class="flash" id="flash">{{.Flash}}</p>{{end}}
{{if .Err}}<p class="bad" id="error">{{.Err}}</p>{{end}}
{{range .Reviews}}<div class="review" id="r-{{.EventID}}">
<div><span class="stars">{{stars .Rating}}</span> <strong>{{.Title}}</strong></div>
<p>{{.Text}}</p>
<div class="meta">{{.Nickname}} · product {{.ProductID}}{{if .SKU}} ({{.SKU}}){{end}} · {{.Store}}/{{.Device}} · {{when .AtMS}} · <span class="status">{{.Status}}</span>
{{if .Reason}} · <span class="reason">{{.Reason}}</span>{{end}}{{if .ModeratedBy}} · by {{.ModeratedBy}}{{end}}</div>
<form method="post" action="/moderation"><input type="hidden" name="csrf_token" value="{{$.CSRF}}">
<input type="hidden" name="event_id" value="{{.EventID}}"><input type="hidden" name="status" value="{{$.Status}}">
{{if ne .Status "published"}}<button name="action" value="approve" class="approve">Publish</button>{{end}}
{{if eq .Status "pending"}}<button name="action" value="reject" class="reject">Reject</button>{{end}}
{{if eq .Status "published"}}<button name="action" value="unpublish" class="unpublish">Unpublish</button>{{end}}
{{if ne .Status "rejected"}}<input name="note" placeholder="note (optional)" maxlength="500">{{end}}
</form></div>
{{else}}<p id="empty">No {{.Status}} reviews.</p>{{end}}
</body></html>`))

// moderationPage serves GET and POST /moderation.
func moderationPage(st *store.Store, republish func([]string)) http.Handler {
	statuses := []string{reviews.Pending, reviews.Published, reviews.Rejected}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := auth.From(r.Context())
		ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
		defer cancel()
		status := r.FormValue("status")
		if status != reviews.Published && status != reviews.Rejected {
			status = reviews.Pending
		}
		if r.Method == http.MethodPost {
			id, action := r.PostFormValue("event_id"), reviews.Action(r.PostFormValue("action"))
			flash := ""
			if !ids.ValidEventID(id) {
				flash = "That is not a review."
			} else if rec, err := st.ModerateReview(ctx, id, action, p.User, r.PostFormValue("note")); err != nil {
				switch {
				case errors.Is(err, store.ErrNotFound):
					flash = "That review is no longer there."
				case errors.Is(err, reviews.ErrTransition):
					flash = "Someone decided on it already: " + err.Error()
				default:
					http.Error(w, "could not record the decision; see the hub's log", http.StatusInternalServerError)
					return
				}
			} else {
				if republish != nil {
					republish([]string{rec.ProductID})
				}
				flash = "Review " + string(action) + "d: " + rec.Status + "."
				if action == reviews.Approve {
					flash = "Review published."
				}
			}
			// Back to the list, with what happened: a relative location,
			// never built from the request's Host.
			w.Header().Set("Location", "/moderation?status="+status+"&done="+template.URLQueryEscaper(flash))
			w.WriteHeader(http.StatusSeeOther)
			return
		}
		d := moderationData{User: p.User, CSRF: p.CSRFToken(), Status: status, Statuses: statuses, Flash: r.URL.Query().Get("done")}
		var err error
		if d.Reviews, err = st.ReviewQueue(ctx, store.ReviewQuery{Status: status, Limit: 100}); err != nil {
			d.Err = "The reviews could not be read: " + err.Error()
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		_ = moderationTmpl.Execute(w, d)
	})
}
