package auth

import (
	"bytes"
	"errors"
	"html/template"
	"net"
	"net/http"
	"strings"

	"github.com/omnisync/omnisync/cloud/internal/store"
)

// Paths of the login and logout pages.
const (
	LoginPath  = "/login"
	LogoutPath = "/logout"
	// SetupPath is where the first admin sets a password with the
	// one-time setup token.
	SetupPath = "/setup"
)

// ContentSecurityPolicy is sent with every answer. The hub's pages load
// nothing from elsewhere but product images (the catalog's own URLs, any
// host); their scripts are the image's onerror="this.remove()", allowed
// by its hash, and the console's own script file (which may only talk to
// the hub: connect-src, for its event stream and re-reads); nobody may
// frame them.
const ContentSecurityPolicy = "default-src 'none'; img-src * data:; style-src 'unsafe-inline'; " +
	"script-src 'self' 'unsafe-hashes' 'sha256-9f8ZK5epjuMsYtXFjPqrgJI0L4QOAUYmJdHtT+RSH/c='; connect-src 'self'; " +
	"form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

// Protect wraps the hub's whole handler: security headers on every
// answer, and every state-changing request a browser sends from another
// origin refused (Sec-Fetch-Site, else Origin against the host and
// publicURL), whether or not it carries a session.
func Protect(next http.Handler, publicURL string, tls bool) (http.Handler, error) {
	cop := http.NewCrossOriginProtection()
	if publicURL != "" {
		if err := cop.AddTrustedOrigin(strings.TrimRight(publicURL, "/")); err != nil {
			return nil, err
		}
	}
	cop.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeErr(w, http.StatusForbidden, "cross-origin request refused")
	}))
	guarded := cop.Handler(next)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "same-origin")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Content-Security-Policy", ContentSecurityPolicy)
		h.Set("Cross-Origin-Opener-Policy", "same-origin")
		if tls {
			h.Set("Strict-Transport-Security", "max-age=31536000")
		}
		guarded.ServeHTTP(w, r)
	}), nil
}

// localPath returns next if it is a path on this hub, else "/": a login
// must not send the browser to another site.
func localPath(next string) string {
	if next == "" || next[0] != '/' || strings.HasPrefix(next, "//") || strings.HasPrefix(next, "/\\") ||
		strings.ContainsAny(next, "\r\n\\") {
		return "/"
	}
	return next
}

func clientAddr(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

type loginData struct {
	Next, User, Error string
}

var loginTmpl = template.Must(template.New("login").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>Log in · omnisync HQ</title>
<style>
body{font-family:system-ui,sans-serif;background:#f3f5f8;color:#1d2733;display:flex;justify-content:center;margin:0;padding-top:12vh}
form{background:#fff;border:1px solid #dde;border-radius:8px;padding:1.6rem 1.8rem;width:18rem}
h1{font-size:1.2rem;margin:0 0 1rem}label{display:block;margin:.7rem 0 .2rem;font-size:.9rem}
input{width:100%;box-sizing:border-box;padding:.45rem;border:1px solid #b8c0cc;border-radius:4px;font-size:1rem}
button{margin-top:1.1rem;width:100%;padding:.55rem;border:0;border-radius:4px;background:#1d4ed8;color:#fff;font-size:1rem}
.err{color:#b3261e;font-size:.9rem}.alt{font-size:.8rem;margin:1rem 0 0}.alt a{color:#4a5568}
</style></head><body>
<form method="post" action="/login">
<h1>omnisync HQ</h1>
{{if .Error}}<p class="err" id="error">{{.Error}}</p>{{end}}
<input type="hidden" name="next" value="{{.Next}}">
<label for="user">User</label><input id="user" name="user" autocomplete="username" value="{{.User}}" required autofocus>
<label for="password">Password</label><input id="password" name="password" type="password" autocomplete="current-password" required>
<button type="submit" id="login">Log in</button>
<p class="alt"><a href="/setup">First start? Set the admin's password with the setup token</a></p>
</form></body></html>`))

type setupData struct {
	Error string
}

var setupTmpl = template.Must(template.New("setup").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>First start · omnisync HQ</title>
<style>
body{font-family:system-ui,sans-serif;background:#f3f5f8;color:#1d2733;display:flex;justify-content:center;margin:0;padding-top:12vh}
form{background:#fff;border:1px solid #dde;border-radius:8px;padding:1.6rem 1.8rem;width:20rem}
h1{font-size:1.2rem;margin:0 0 .6rem}p{font-size:.9rem;margin:.3rem 0}label{display:block;margin:.7rem 0 .2rem;font-size:.9rem}
input{width:100%;box-sizing:border-box;padding:.45rem;border:1px solid #b8c0cc;border-radius:4px;font-size:1rem}
button{margin-top:1.1rem;width:100%;padding:.55rem;border:0;border-radius:4px;background:#1d4ed8;color:#fff;font-size:1rem}
.err{color:#b3261e;font-size:.9rem}
</style></head><body>
<form method="post" action="/setup">
<h1>Set the admin's password</h1>
<p>Paste the one-time setup token the hub printed when it first started (in its output or journal). It works once, for 24 hours.</p>
{{if .Error}}<p class="err" id="error">{{.Error}}</p>{{end}}
<label for="token">Setup token</label><input id="token" name="token" autocomplete="off" spellcheck="false" required autofocus>
<label for="password">New password (at least 10 characters)</label><input id="password" name="password" type="password" autocomplete="new-password" minlength="10" required>
<label for="password2">The same again</label><input id="password2" name="password2" type="password" autocomplete="new-password" minlength="10" required>
<button type="submit" id="setup">Set the password and log in</button>
</form></body></html>`))

var forbiddenTmpl = template.Must(template.New("forbidden").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Not allowed · omnisync HQ</title>
<style>body{font-family:system-ui,sans-serif;margin:2rem;color:#1d2733}</style></head><body>
<h1>Not allowed</h1><p id="message">{{.User}} ({{.Role}}) may not see this page: it needs {{.Scope}}.</p>
<form method="post" action="/logout"><input type="hidden" name="csrf_token" value="{{.CSRF}}"><button type="submit">Log out</button></form>
</body></html>`))

func renderHTML(w http.ResponseWriter, code int, t *template.Template, data any) {
	var buf bytes.Buffer
	if err := t.Execute(&buf, data); err != nil {
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_, _ = w.Write(buf.Bytes())
}

func forbiddenPage(w http.ResponseWriter, p *Principal, s Scope) {
	renderHTML(w, http.StatusForbidden, forbiddenTmpl, map[string]any{"User": p.User, "Role": p.Role, "Scope": s, "CSRF": p.CSRFToken()})
}

func (s *Service) loginPage(w http.ResponseWriter, r *http.Request) {
	next := localPath(r.URL.Query().Get("next"))
	if p, err := s.Authenticate(r); err == nil && p.TokenID == 0 {
		s.redirect(w, r, next)
		return
	}
	renderHTML(w, http.StatusOK, loginTmpl, loginData{Next: next})
}

func (s *Service) loginSubmit(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		renderHTML(w, http.StatusBadRequest, loginTmpl, loginData{Next: "/", Error: "The form could not be read."})
		return
	}
	next := localPath(r.PostForm.Get("next"))
	name := r.PostForm.Get("user")
	u, err := s.Login(r.Context(), name, r.PostForm.Get("password"), clientAddr(r))
	switch {
	case errors.Is(err, ErrThrottled):
		renderHTML(w, http.StatusTooManyRequests, loginTmpl, loginData{Next: next, User: name, Error: "Too many failed attempts; wait a few minutes."})
		return
	case errors.Is(err, ErrUnauthenticated):
		renderHTML(w, http.StatusUnauthorized, loginTmpl, loginData{Next: next, User: name, Error: "Wrong user or password."})
		return
	case err != nil:
		s.log.Error("login", "err", err)
		renderHTML(w, http.StatusInternalServerError, loginTmpl, loginData{Next: next, User: name, Error: "The hub could not log you in; see its log."})
		return
	}
	if !s.startBrowserSession(w, r, u) {
		renderHTML(w, http.StatusInternalServerError, loginTmpl, loginData{Next: next, User: name, Error: "The hub could not log you in; see its log."})
		return
	}
	s.log.Info("logged in", "user", u.Name, "client", clientAddr(r))
	s.redirect(w, r, next)
}

// startBrowserSession starts a browser session for u, or answers the error.
func (s *Service) startBrowserSession(w http.ResponseWriter, r *http.Request, u store.User) bool {
	secret, err := s.StartSession(r.Context(), u)
	if err != nil {
		s.log.Error("session", "err", err)
		return false
	}
	http.SetCookie(w, &http.Cookie{
		Name: s.CookieName(), Value: secret, Path: "/", MaxAge: int(s.o.SessionTTL.Seconds()),
		HttpOnly: true, Secure: s.Secure(), SameSite: http.SameSiteLaxMode,
	})
	return true
}

func (s *Service) setupPage(w http.ResponseWriter, r *http.Request) {
	renderHTML(w, http.StatusOK, setupTmpl, setupData{})
}

// setupSubmit sets the admin's password with the setup token and logs the
// browser in. Like the login form it has no session, so no session CSRF
// token to send: a cross-site post is refused by Protect (Sec-Fetch-Site,
// Origin) for every route, and the token itself is the credential, which
// a forging page would not have. The token is never written back into
// the page.
func (s *Service) setupSubmit(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		renderHTML(w, http.StatusBadRequest, setupTmpl, setupData{Error: "The form could not be read."})
		return
	}
	f := r.PostForm
	if f.Get("password") != f.Get("password2") {
		renderHTML(w, http.StatusBadRequest, setupTmpl, setupData{Error: "The two passwords differ."})
		return
	}
	u, err := s.Setup(r.Context(), strings.TrimSpace(f.Get("token")), f.Get("password"), clientAddr(r))
	switch {
	case errors.Is(err, ErrThrottled):
		renderHTML(w, http.StatusTooManyRequests, setupTmpl, setupData{Error: "Too many failed attempts; wait a few minutes."})
		return
	case errors.Is(err, ErrSetupToken):
		renderHTML(w, http.StatusUnauthorized, setupTmpl, setupData{Error: "That setup token is wrong, used or expired. Restarting the hub prints a new one while no admin can log in."})
		return
	case errors.Is(err, ErrInvalid):
		renderHTML(w, http.StatusBadRequest, setupTmpl, setupData{Error: strings.TrimPrefix(err.Error(), ErrInvalid.Error()+": ")})
		return
	case err != nil:
		s.log.Error("setup", "err", err)
		renderHTML(w, http.StatusInternalServerError, setupTmpl, setupData{Error: "The hub could not set the password; see its log."})
		return
	}
	if !s.startBrowserSession(w, r, u) {
		// The password is set: the login page takes it.
		s.redirect(w, r, LoginPath)
		return
	}
	s.redirect(w, r, "/")
}

// logout ends the session. It is public so that a browser whose session
// has already ended can still clear its cookie; a live session must send
// its CSRF token, like any state change.
func (s *Service) logout(w http.ResponseWriter, r *http.Request) {
	if p, err := s.Authenticate(r); err == nil && p.TokenID == 0 && !validCSRF(r, p) {
		writeErr(w, http.StatusForbidden, "missing or wrong CSRF token (reload the page)")
		return
	}
	if c, err := r.Cookie(s.CookieName()); err == nil && c.Value != "" {
		if err := s.EndSession(r.Context(), c.Value); err != nil {
			s.log.Error("logout", "err", err)
		}
	}
	http.SetCookie(w, &http.Cookie{Name: s.CookieName(), Value: "", Path: "/", MaxAge: -1, HttpOnly: true, Secure: s.Secure(), SameSite: http.SameSiteLaxMode})
	s.redirect(w, r, LoginPath)
}
