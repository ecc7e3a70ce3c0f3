package auth

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/omnisync/omnisync/cloud/internal/store"
)

// Register adds the login and logout pages and the identity API to rt:
//
//	GET  /login, POST /login, POST /logout        the dashboard's login
//	GET  /setup, POST /setup                      the first admin's password, with the setup token
//	POST /v1/auth/login                           user+password -> API token (omnictl login)
//	POST /v1/auth/setup                           setup token+password -> API token (omnictl login --setup-token)
//	GET  /v1/auth/me                              who am I, with my scopes and stores
//	POST /v1/auth/password                        change my password
//	GET|POST /v1/users, PATCH /v1/users/{name}    user management (admin)
//	GET|POST /v1/tokens, DELETE /v1/tokens/{id}   API tokens: mine, or anyone's for an admin
func (s *Service) Register(rt *Router) {
	rt.HandleFunc("GET "+LoginPath, Public(), s.loginPage)
	rt.HandleFunc("POST "+LoginPath, Public(), s.loginSubmit)
	rt.HandleFunc("POST "+LogoutPath, Public(), s.logout)
	rt.HandleFunc("POST /v1/auth/login", Public(), s.apiLogin)
	// Public because nobody can log in yet when they are needed: the
	// setup token is the credential (one use, 24 hours, throttled per
	// client), and a cross-site post is refused by Protect.
	rt.HandleFunc("GET "+SetupPath, Public(), s.setupPage)
	rt.HandleFunc("POST "+SetupPath, Public(), s.setupSubmit)
	rt.HandleFunc("POST /v1/auth/setup", Public(), s.apiSetup)
	rt.HandleFunc("GET /v1/auth/me", LoggedIn(), s.me)
	rt.HandleFunc("POST /v1/auth/password", LoggedIn(), s.changePassword)
	rt.HandleFunc("GET /v1/users", Need(UsersAdmin), s.listUsers)
	rt.HandleFunc("POST /v1/users", Need(UsersAdmin), s.createUser)
	rt.HandleFunc("PATCH /v1/users/{name}", Need(UsersAdmin), s.updateUser)
	rt.HandleFunc("GET /v1/tokens", LoggedIn(), s.listTokens)
	rt.HandleFunc("POST /v1/tokens", LoggedIn(), s.createToken)
	rt.HandleFunc("DELETE /v1/tokens/{id}", LoggedIn(), s.revokeToken)
}

// UserView is a user as the API shows it (never the password hash).
type UserView struct {
	Name        string    `json:"name"`
	Role        string    `json:"role"`
	Stores      []string  `json:"stores,omitempty"`
	Disabled    bool      `json:"disabled"`
	HasPassword bool      `json:"has_password"`
	Created     time.Time `json:"created"`
	Updated     time.Time `json:"updated"`
}

func userView(u store.User) UserView {
	return UserView{Name: u.Name, Role: u.Role, Stores: u.Stores, Disabled: u.Disabled, HasPassword: u.PasswordHash != "",
		Created: u.Created.UTC(), Updated: u.Updated.UTC()}
}

// TokenView is a token as the API lists it: never its secret.
type TokenView struct {
	ID       int64      `json:"id"`
	User     string     `json:"user"`
	Name     string     `json:"name"`
	Scopes   []string   `json:"scopes,omitempty"`
	Created  time.Time  `json:"created"`
	Expires  *time.Time `json:"expires,omitempty"`
	LastUsed *time.Time `json:"last_used,omitempty"`
	Revoked  *time.Time `json:"revoked,omitempty"`
	// Token is the secret, set only in the answer that creates it.
	Token string `json:"token,omitempty"`
}

func optTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	u := t.UTC()
	return &u
}

func tokenView(t store.APIToken) TokenView {
	return TokenView{ID: t.ID, User: t.UserName, Name: t.Name, Scopes: t.Scopes, Created: t.Created.UTC(),
		Expires: optTime(t.Expires), LastUsed: optTime(t.LastUsed), Revoked: optTime(t.Revoked)}
}

// decode reads a JSON body of at most 64 KiB into v, refusing unknown
// fields so a misspelt "disabled" does not silently do nothing.
func decode(w http.ResponseWriter, r *http.Request, v any) bool {
	dec := json.NewDecoder(io.LimitReader(r.Body, 64<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		writeErr(w, http.StatusBadRequest, "body: "+err.Error())
		return false
	}
	return true
}

// fail answers err with its status.
func (s *Service) fail(w http.ResponseWriter, r *http.Request, err error) {
	switch {
	case errors.Is(err, ErrInvalid):
		writeErr(w, http.StatusBadRequest, err.Error())
	case errors.Is(err, ErrForbidden):
		writeErr(w, http.StatusForbidden, err.Error())
	case errors.Is(err, ErrNotFound):
		writeErr(w, http.StatusNotFound, err.Error())
	case errors.Is(err, ErrExists):
		writeErr(w, http.StatusConflict, err.Error())
	case errors.Is(err, ErrThrottled):
		writeErr(w, http.StatusTooManyRequests, err.Error())
	case errors.Is(err, ErrUnauthenticated):
		writeErr(w, http.StatusUnauthorized, "wrong user or password")
	default:
		s.log.Error("auth api", "path", r.URL.Path, "err", err)
		writeErr(w, http.StatusInternalServerError, "internal error; see the hub's log")
	}
}

// LoginRequest is POST /v1/auth/login.
type LoginRequest struct {
	User     string `json:"user"`
	Password string `json:"password"`
	// TokenName labels the token (omnictl: "omnictl on HOST").
	TokenName string `json:"token_name,omitempty"`
	// ExpiresIn: default 30 days.
	ExpiresIn string `json:"expires_in,omitempty"`
}

func (s *Service) apiLogin(w http.ResponseWriter, r *http.Request) {
	var req LoginRequest
	if !decode(w, r, &req) {
		return
	}
	ttl, ok := s.requestTTL(w, r, req.ExpiresIn)
	if !ok {
		return
	}
	u, err := s.Login(r.Context(), req.User, req.Password, clientAddr(r))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.answerLoginToken(w, r, u, req.TokenName, ttl, "logged in (token)")
}

// requestTTL reads a request's expires_in (none: the default), answering
// the error itself when it is not a duration.
func (s *Service) requestTTL(w http.ResponseWriter, r *http.Request, expiresIn string) (time.Duration, bool) {
	if expiresIn == "" {
		return 0, true
	}
	ttl, err := ParseTTL(expiresIn)
	if err != nil {
		s.fail(w, r, err)
		return 0, false
	}
	return ttl, true
}

// answerLoginToken makes u's login token and answers it, the secret shown
// this once; msg is the log line's.
func (s *Service) answerLoginToken(w http.ResponseWriter, r *http.Request, u store.User, name string, ttl time.Duration, msg string) {
	t, secret, err := s.LoginToken(r.Context(), u, name, ttl)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.log.Info(msg, "user", u.Name, "token", t.ID, "client", clientAddr(r))
	v := tokenView(t)
	v.Token = secret
	writeJSON(w, http.StatusCreated, v)
}

// SetupRequest is POST /v1/auth/setup.
type SetupRequest struct {
	// Token is the one-time setup token the hub printed.
	Token    string `json:"token"`
	Password string `json:"password"`
	// TokenName and ExpiresIn are the API token's, as for a login.
	TokenName string `json:"token_name,omitempty"`
	ExpiresIn string `json:"expires_in,omitempty"`
}

// apiSetup sets the admin's password with the setup token and answers an
// API token for the admin, as a login does.
func (s *Service) apiSetup(w http.ResponseWriter, r *http.Request) {
	var req SetupRequest
	if !decode(w, r, &req) {
		return
	}
	ttl, ok := s.requestTTL(w, r, req.ExpiresIn)
	if !ok {
		return
	}
	u, err := s.Setup(r.Context(), strings.TrimSpace(req.Token), req.Password, clientAddr(r))
	if errors.Is(err, ErrSetupToken) {
		writeErr(w, http.StatusUnauthorized, "setup token not accepted: wrong, used or expired (restarting the hub prints a new one while no admin can log in)")
		return
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.answerLoginToken(w, r, u, req.TokenName, ttl, "logged in (token) after setup")
}

// Me is GET /v1/auth/me.
type Me struct {
	User   string   `json:"user"`
	Role   Role     `json:"role"`
	Stores []string `json:"stores,omitempty"`
	Scopes []Scope  `json:"scopes"`
	// TokenID is the token the request came with (0: a session).
	TokenID int64 `json:"token_id,omitempty"`
}

func (s *Service) me(w http.ResponseWriter, r *http.Request) {
	p := From(r.Context())
	stores, _ := p.Stores()
	writeJSON(w, http.StatusOK, Me{User: p.User, Role: p.Role, Stores: stores, Scopes: p.Scopes(), TokenID: p.TokenID})
}

func (s *Service) changePassword(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Current string `json:"current"`
		New     string `json:"new"`
	}
	if !decode(w, r, &req) {
		return
	}
	if err := s.ChangeOwnPassword(r.Context(), From(r.Context()), req.Current, req.New, clientAddr(r)); err != nil {
		if errors.Is(err, ErrUnauthenticated) {
			// The caller is logged in: a wrong current password is a bad
			// request, not a reason to log in again (401).
			writeErr(w, http.StatusBadRequest, "current: wrong password")
			return
		}
		s.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Service) listUsers(w http.ResponseWriter, r *http.Request) {
	us, err := s.st.Users(r.Context())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	out := make([]UserView, 0, len(us))
	for _, u := range us {
		out = append(out, userView(u))
	}
	writeJSON(w, http.StatusOK, map[string]any{"users": out})
}

func (s *Service) createUser(w http.ResponseWriter, r *http.Request) {
	var req NewUser
	if !decode(w, r, &req) {
		return
	}
	u, err := s.CreateUser(r.Context(), req)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.log.Info("user created", "user", u.Name, "role", u.Role, "by", From(r.Context()).User)
	writeJSON(w, http.StatusCreated, userView(u))
}

func (s *Service) updateUser(w http.ResponseWriter, r *http.Request) {
	var req UserChange
	if !decode(w, r, &req) {
		return
	}
	by := From(r.Context())
	u, err := s.UpdateUser(r.Context(), by, r.PathValue("name"), req)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.log.Info("user changed", "user", u.Name, "role", u.Role, "disabled", u.Disabled, "password", req.Password != nil, "by", by.User)
	writeJSON(w, http.StatusOK, userView(u))
}

func (s *Service) listTokens(w http.ResponseWriter, r *http.Request) {
	ts, err := s.Tokens(r.Context(), From(r.Context()), r.URL.Query().Get("all") != "")
	if err != nil {
		s.fail(w, r, err)
		return
	}
	out := make([]TokenView, 0, len(ts))
	for _, t := range ts {
		out = append(out, tokenView(t))
	}
	writeJSON(w, http.StatusOK, map[string]any{"tokens": out})
}

func (s *Service) createToken(w http.ResponseWriter, r *http.Request) {
	var req NewTokenRequest
	if !decode(w, r, &req) {
		return
	}
	t, secret, err := s.CreateToken(r.Context(), From(r.Context()), req)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	v := tokenView(t)
	v.Token = secret
	writeJSON(w, http.StatusCreated, v)
}

func (s *Service) revokeToken(w http.ResponseWriter, r *http.Request) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		writeErr(w, http.StatusBadRequest, "id: must be a token id")
		return
	}
	if err := s.RevokeToken(r.Context(), From(r.Context()), id); err != nil {
		s.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
