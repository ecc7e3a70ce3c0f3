package auth

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/omnisync/omnisync/cloud/internal/store"
	"github.com/omnisync/omnisync/shared/events"
)

// Errors callers branch on.
var (
	// ErrInvalid: a bad user name, role, scope, password or duration.
	ErrInvalid = errors.New("auth: invalid")
	// ErrNoCredentials: the request carries neither a session cookie nor a
	// bearer token.
	ErrNoCredentials = errors.New("auth: no credentials")
	// ErrUnauthenticated: credentials that let nobody in (a wrong
	// password, an unknown, expired or revoked token, an ended session, a
	// disabled user).
	ErrUnauthenticated = errors.New("auth: not authenticated")
	// ErrForbidden: authenticated, but not allowed.
	ErrForbidden = errors.New("auth: forbidden")
	// ErrThrottled: too many failed logins; try later.
	ErrThrottled = errors.New("auth: too many failed logins")
	// ErrNotFound and ErrExists come from the store.
	ErrNotFound = store.ErrNotFound
	ErrExists   = store.ErrExists
)

// Store keeps users, sessions and tokens (package store).
type Store interface {
	CountUsers(ctx context.Context) (int64, error)
	CreateUser(ctx context.Context, u store.User) (store.User, error)
	CreateFirstUser(ctx context.Context, u store.User, tok *store.APIToken) (store.User, error)
	UserByName(ctx context.Context, name string) (store.User, error)
	Users(ctx context.Context) ([]store.User, error)
	UpdateUser(ctx context.Context, name string, upd store.UserUpdate) (store.User, error)
	CreateSession(ctx context.Context, se store.Session) error
	SessionUser(ctx context.Context, hash string) (store.Session, store.User, error)
	TouchSession(ctx context.Context, hash string, seen time.Time) error
	DeleteSession(ctx context.Context, hash string) error
	CreateToken(ctx context.Context, t store.APIToken) (store.APIToken, error)
	TokenUser(ctx context.Context, hash string) (store.APIToken, store.User, error)
	TouchToken(ctx context.Context, id int64, at time.Time) error
	Tokens(ctx context.Context, userID int64) ([]store.APIToken, error)
	TokenByID(ctx context.Context, id int64) (store.APIToken, error)
	ClaimToken(ctx context.Context, id int64, at time.Time) (bool, error)
	RevokeToken(ctx context.Context, id int64, at time.Time) error
}

var _ Store = (*store.Store)(nil)

// Options configures a Service.
type Options struct {
	Store Store
	// PublicURL is the hub's external base URL; redirects are built on it
	// (never on a request's Host), and an https one makes cookies Secure.
	PublicURL string
	// TLS says the hub serves HTTPS itself: cookies are Secure.
	TLS bool
	// SessionTTL bounds a session's life (default 12h); SessionIdle ends
	// one unused for that long (default 2h).
	SessionTTL, SessionIdle time.Duration
	Now                     func() time.Time
	Logger                  *slog.Logger
}

// Defaults.
const (
	DefaultSessionTTL   = 12 * time.Hour
	DefaultSessionIdle  = 2 * time.Hour
	DefaultTokenTTL     = 90 * 24 * time.Hour
	DefaultLoginToken   = 30 * 24 * time.Hour
	MaxTokenTTL         = 2 * 366 * 24 * time.Hour
	touchEvery          = time.Minute
	loginFailuresPerKey = 10
	loginWindow         = 10 * time.Minute
)

// Service authenticates requests and manages users, sessions and tokens.
type Service struct {
	o     Options
	log   *slog.Logger
	st    Store
	fails *throttle
	// tokens caches token lookups for TokenCacheTTL.
	tokens tokenCache
}

// New builds a Service.
func New(o Options) *Service {
	if o.SessionTTL <= 0 {
		o.SessionTTL = DefaultSessionTTL
	}
	if o.SessionIdle <= 0 {
		o.SessionIdle = DefaultSessionIdle
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	o.PublicURL = strings.TrimRight(o.PublicURL, "/")
	return &Service{o: o, log: o.Logger, st: o.Store, fails: newThrottle(loginFailuresPerKey, loginWindow, o.Now)}
}

// Secure reports whether cookies must be Secure: the hub is reached over
// HTTPS.
func (s *Service) Secure() bool {
	return s.o.TLS || strings.HasPrefix(s.o.PublicURL, "https://")
}

// FirstAdmin is the user a fresh hub creates.
const FirstAdmin = "admin"

// Bootstrap runs at every start. On a hub with no user yet it creates the
// admin user without a password. With token, it makes token an admin API
// token that never expires (revocable like any other), for automation:
// the token's holder sets a password (omnictl users passwd admin), and
// nothing secret is printed. Without, it makes a one-time setup token
// (see Setup), kept only as a hash, and writes it to out once: whoever
// reads the hub's output sets the admin's password with it. Both lines
// written to out start "omni-hub first start", which deploy/local/run.sh
// looks for.
//
// With users already there, a token is ignored with a warning; and a hub
// on which nobody can act as an admin (the setup token was never used)
// prints a new setup token (reissueSetup). Several replicas may bootstrap
// one fresh database together; one creates the admin, the others see it.
func (s *Service) Bootstrap(ctx context.Context, token string, out io.Writer) error {
	n, err := s.st.CountUsers(ctx)
	if err != nil {
		return fmt.Errorf("auth: bootstrap: %w", err)
	}
	if n > 0 {
		if token != "" {
			// Restarts with the same bootstrap token (make run) are quiet;
			// any other token is not made an admin's.
			if _, _, err := s.st.TokenUser(ctx, HashSecret(token)); err != nil {
				s.log.Warn("bootstrap token ignored: the hub has users already; use an admin's token or omnictl tokens create")
			}
		}
		return s.reissueSetup(ctx, out)
	}
	if token != "" && !validSecret(token) {
		return fmt.Errorf("%w: bootstrap token must be 16 to 256 printable ASCII characters", ErrInvalid)
	}
	admin := store.User{Name: FirstAdmin, Role: string(Admin)}
	var tok store.APIToken
	var secret string
	if token != "" {
		tok = store.APIToken{Hash: HashSecret(token), Name: "bootstrap", Created: s.o.Now()}
	} else {
		tok, secret = s.setupToken(admin)
	}
	if _, err := s.st.CreateFirstUser(ctx, admin, &tok); err != nil {
		if errors.Is(err, store.ErrExists) {
			return nil // another replica bootstrapped
		}
		return fmt.Errorf("auth: bootstrap: %w", err)
	}
	s.log.Info("first start: created the admin user", "user", FirstAdmin, "bootstrap_token", token != "", "setup_token", token == "")
	if token != "" {
		fmt.Fprintf(out, "\nomni-hub first start: created the admin user %q without a password; the bootstrap token is its API token.\n"+
			"  Give it a password with: omnictl --hub %s users passwd %s\n\n", FirstAdmin, s.hubURL(), FirstAdmin)
		return nil
	}
	s.printSetup(out, true, FirstAdmin, secret, tok.Expires)
	return nil
}

// Login checks a user's password. client (the caller's address) and the
// user name are throttled separately: after 10 failures in 10 minutes,
// further attempts are refused with ErrThrottled until the window passes.
func (s *Service) Login(ctx context.Context, name, password, client string) (store.User, error) {
	keys := []string{"user:" + strings.ToLower(name), "client:" + client}
	for _, k := range keys {
		if !s.fails.allow(k) {
			return store.User{}, ErrThrottled
		}
	}
	u, err := s.st.UserByName(ctx, name)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return store.User{}, err
	}
	hash := u.PasswordHash
	if hash == "" {
		hash = dummyHash()
	}
	ok := VerifyPassword(hash, password) && err == nil && u.PasswordHash != "" && !u.Disabled
	if !ok {
		for _, k := range keys {
			s.fails.fail(k)
		}
		s.log.Info("login refused", "user", name, "client", client)
		return store.User{}, ErrUnauthenticated
	}
	s.fails.reset(keys[0])
	return u, nil
}

// StartSession opens a session for u and returns the cookie's secret.
func (s *Service) StartSession(ctx context.Context, u store.User) (string, error) {
	secret := newSecret()
	now := s.o.Now()
	err := s.st.CreateSession(ctx, store.Session{Hash: HashSecret(secret), UserID: u.ID, Created: now, Expires: now.Add(s.o.SessionTTL), Seen: now})
	if err != nil {
		return "", fmt.Errorf("auth: session: %w", err)
	}
	return secret, nil
}

// EndSession ends the session whose cookie secret is secret.
func (s *Service) EndSession(ctx context.Context, secret string) error {
	return s.st.DeleteSession(ctx, HashSecret(secret))
}

// Authenticate finds who r comes from: a bearer token if it carries one,
// else the session cookie. ErrNoCredentials when it carries neither.
func (s *Service) Authenticate(r *http.Request) (*Principal, error) {
	ctx := r.Context()
	if h := r.Header.Get("Authorization"); h != "" {
		scheme, tok, ok := strings.Cut(h, " ")
		if !ok || !strings.EqualFold(scheme, "Bearer") {
			return nil, ErrUnauthenticated
		}
		return s.tokenPrincipal(ctx, strings.TrimSpace(tok))
	}
	c, err := r.Cookie(s.CookieName())
	if err != nil || c.Value == "" {
		return nil, ErrNoCredentials
	}
	return s.sessionPrincipal(ctx, c.Value)
}

func (s *Service) tokenPrincipal(ctx context.Context, tok string) (*Principal, error) {
	if !validSecret(tok) {
		return nil, ErrUnauthenticated
	}
	hash := HashSecret(tok)
	t, u, err := s.tokens.lookup(ctx, s.st, hash, s.o.Now())
	if errors.Is(err, store.ErrNotFound) {
		return nil, ErrUnauthenticated
	}
	if err != nil {
		return nil, err
	}
	now := s.o.Now()
	// A setup token sets a password (Setup) and does nothing else.
	if u.Disabled || !t.Revoked.IsZero() || (!t.Expires.IsZero() && !now.Before(t.Expires)) || isSetupToken(t) {
		return nil, ErrUnauthenticated
	}
	if now.Sub(t.LastUsed) >= touchEvery {
		if err := s.st.TouchToken(ctx, t.ID, now); err != nil {
			s.log.Warn("token last-used not recorded", "token", t.ID, "err", err)
		}
		s.tokens.touched(hash, now)
	}
	var scopes []Scope
	if len(t.Scopes) > 0 {
		scopes = make([]Scope, len(t.Scopes))
		for i, sc := range t.Scopes {
			scopes[i] = Scope(sc)
		}
	}
	p := NewPrincipal(u.ID, u.Name, Role(u.Role), u.Stores, scopes)
	p.TokenID = t.ID
	return p, nil
}

func (s *Service) sessionPrincipal(ctx context.Context, secret string) (*Principal, error) {
	if !validSecret(secret) {
		return nil, ErrUnauthenticated
	}
	hash := HashSecret(secret)
	se, u, err := s.st.SessionUser(ctx, hash)
	if errors.Is(err, store.ErrNotFound) {
		return nil, ErrUnauthenticated
	}
	if err != nil {
		return nil, err
	}
	now := s.o.Now()
	if u.Disabled || !now.Before(se.Expires) || now.Sub(se.Seen) >= s.o.SessionIdle {
		return nil, ErrUnauthenticated
	}
	if now.Sub(se.Seen) >= touchEvery {
		if err := s.st.TouchSession(ctx, hash, now); err != nil {
			s.log.Warn("session last-seen not recorded", "user", u.Name, "err", err)
		}
	}
	p := NewPrincipal(u.ID, u.Name, Role(u.Role), u.Stores, nil)
	p.csrf = csrfFor(secret)
	return p, nil
}

// CookieName is the session cookie's name: __Host- prefixed over HTTPS,
// so the browser keeps it to this host, path / and Secure.
func (s *Service) CookieName() string {
	if s.Secure() {
		return "__Host-omni_session"
	}
	return "omni_session"
}

// NewUser is what creating a user takes.
type NewUser struct {
	Name     string   `json:"name"`
	Role     string   `json:"role"`
	Stores   []string `json:"stores,omitempty"`
	Password string   `json:"password,omitempty"`
}

// checkUser validates a user's name, role and stores.
func checkUser(name string, role Role, stores []string) error {
	if err := events.ValidToken(name); err != nil {
		return fmt.Errorf("%w: name: %v", ErrInvalid, err)
	}
	if role == StoreManager && len(stores) == 0 {
		return fmt.Errorf("%w: stores: a store manager needs at least one store", ErrInvalid)
	}
	if role != StoreManager && len(stores) > 0 {
		return fmt.Errorf("%w: stores: only a store manager has stores", ErrInvalid)
	}
	for _, st := range stores {
		if err := events.ValidToken(st); err != nil {
			return fmt.Errorf("%w: stores: %q: %v", ErrInvalid, st, err)
		}
	}
	return nil
}

// CreateUser adds a user. A user without a password (an integration, say)
// can only use tokens an admin makes for it.
func (s *Service) CreateUser(ctx context.Context, in NewUser) (store.User, error) {
	role, err := ParseRole(in.Role)
	if err != nil {
		return store.User{}, err
	}
	stores := cleanStores(in.Stores)
	if err := checkUser(in.Name, role, stores); err != nil {
		return store.User{}, err
	}
	u := store.User{Name: in.Name, Role: string(role), Stores: stores}
	if in.Password != "" {
		if u.PasswordHash, err = HashPassword(in.Password); err != nil {
			return store.User{}, err
		}
	}
	return s.st.CreateUser(ctx, u)
}

func cleanStores(in []string) []string {
	var out []string
	for _, s := range in {
		if s = strings.TrimSpace(s); s != "" && !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	slices.Sort(out)
	return out
}

// UserChange is a change to a user; nil fields stay.
type UserChange struct {
	Role     *string   `json:"role,omitempty"`
	Stores   *[]string `json:"stores,omitempty"`
	Disabled *bool     `json:"disabled,omitempty"`
	Password *string   `json:"password,omitempty"`
}

// UpdateUser changes a user. A new password or disabling ends the user's
// sessions. by may not disable or demote itself (an admin locking
// everyone out).
func (s *Service) UpdateUser(ctx context.Context, by *Principal, name string, ch UserChange) (store.User, error) {
	cur, err := s.st.UserByName(ctx, name)
	if err != nil {
		return store.User{}, err
	}
	role, stores := Role(cur.Role), cur.Stores
	var upd store.UserUpdate
	if ch.Role != nil {
		if role, err = ParseRole(*ch.Role); err != nil {
			return store.User{}, err
		}
		r := string(role)
		upd.Role = &r
		if role != StoreManager && ch.Stores == nil {
			stores = nil
			upd.Stores = &stores
		}
	}
	if ch.Stores != nil {
		stores = cleanStores(*ch.Stores)
		upd.Stores = &stores
	}
	if err := checkUser(name, role, stores); err != nil {
		return store.User{}, err
	}
	if by != nil && by.UserID == cur.ID && ((ch.Disabled != nil && *ch.Disabled) || role != Admin) {
		return store.User{}, fmt.Errorf("%w: you cannot disable or demote yourself", ErrInvalid)
	}
	upd.Disabled = ch.Disabled
	if ch.Password != nil {
		h, err := HashPassword(*ch.Password)
		if err != nil {
			return store.User{}, err
		}
		upd.PasswordHash = &h
	}
	defer s.tokens.flush()
	return s.st.UpdateUser(ctx, name, upd)
}

// ChangeOwnPassword sets p's password after checking the current one.
func (s *Service) ChangeOwnPassword(ctx context.Context, p *Principal, current, next, client string) error {
	if _, err := s.Login(ctx, p.User, current, client); err != nil {
		return err
	}
	_, err := s.UpdateUser(ctx, nil, p.User, UserChange{Password: &next})
	return err
}

// NewTokenRequest is what creating a token takes.
type NewTokenRequest struct {
	Name string `json:"name"`
	// User owns the token (an admin may name anyone; others only
	// themselves, the default).
	User string `json:"user,omitempty"`
	// Scopes narrows the owner's rights; required for an integration.
	Scopes string `json:"scopes,omitempty"`
	// ExpiresIn: "90d", "720h"... (default 90 days, at most 2 years).
	ExpiresIn string `json:"expires_in,omitempty"`
}

// CreateToken mints a token as p asks and returns it with its secret,
// which is not kept: the caller shows it once.
func (s *Service) CreateToken(ctx context.Context, p *Principal, req NewTokenRequest) (store.APIToken, string, error) {
	owner := cmpOr(req.User, p.User)
	if owner != p.User && !p.Can(UsersAdmin) {
		return store.APIToken{}, "", fmt.Errorf("%w: only an admin makes tokens for other users", ErrForbidden)
	}
	u, err := s.st.UserByName(ctx, owner)
	if err != nil {
		return store.APIToken{}, "", err
	}
	if u.Disabled {
		return store.APIToken{}, "", fmt.Errorf("%w: user %q is disabled", ErrInvalid, owner)
	}
	name := strings.TrimSpace(req.Name)
	if name == "" || len(name) > 100 {
		return store.APIToken{}, "", fmt.Errorf("%w: name: 1 to 100 characters", ErrInvalid)
	}
	scopes, err := ParseScopes(req.Scopes)
	if err != nil {
		return store.APIToken{}, "", err
	}
	role := Role(u.Role)
	for _, sc := range scopes {
		if !slices.Contains(roleScopes[role], sc) {
			return store.APIToken{}, "", fmt.Errorf("%w: scope %s is not within role %s", ErrInvalid, sc, role)
		}
		// A token made by someone else than its owner's admin may not
		// widen what its maker may do.
		if owner == p.User && !p.Can(sc) {
			return store.APIToken{}, "", fmt.Errorf("%w: you do not have scope %s", ErrForbidden, sc)
		}
	}
	if role == Integration && len(scopes) == 0 {
		return store.APIToken{}, "", fmt.Errorf("%w: scopes: an integration's token must name its scopes", ErrInvalid)
	}
	if owner == p.User && len(scopes) == 0 && p.scopes != nil {
		// A narrowed token cannot mint a token with its user's full rights.
		scopes = slices.Clone(p.scopes)
	}
	ttl := DefaultTokenTTL
	if req.ExpiresIn != "" {
		if ttl, err = ParseTTL(req.ExpiresIn); err != nil {
			return store.APIToken{}, "", err
		}
	}
	secret := NewToken()
	now := s.o.Now()
	t := store.APIToken{Hash: HashSecret(secret), UserID: u.ID, UserName: u.Name, Name: name, Created: now, Expires: now.Add(ttl)}
	for _, sc := range scopes {
		t.Scopes = append(t.Scopes, string(sc))
	}
	out, err := s.st.CreateToken(ctx, t)
	if err != nil {
		return store.APIToken{}, "", err
	}
	out.UserName = u.Name
	s.log.Info("token created", "token", out.ID, "user", u.Name, "by", p.User, "scopes", strings.Join(t.Scopes, " "))
	return out, secret, nil
}

// LoginToken is `omnictl login`: a token with the user's own rights for
// ttl (default 30 days).
func (s *Service) LoginToken(ctx context.Context, u store.User, name string, ttl time.Duration) (store.APIToken, string, error) {
	if ttl <= 0 {
		ttl = DefaultLoginToken
	}
	if ttl > MaxTokenTTL {
		return store.APIToken{}, "", fmt.Errorf("%w: expires_in: at most %s", ErrInvalid, MaxTokenTTL)
	}
	secret := NewToken()
	now := s.o.Now()
	t, err := s.st.CreateToken(ctx, store.APIToken{Hash: HashSecret(secret), UserID: u.ID, Name: cmpOr(name, "login"), Created: now, Expires: now.Add(ttl)})
	if err != nil {
		return store.APIToken{}, "", err
	}
	t.UserName = u.Name
	return t, secret, nil
}

// Tokens lists p's tokens, or everyone's when all and p is an admin.
func (s *Service) Tokens(ctx context.Context, p *Principal, all bool) ([]store.APIToken, error) {
	if all {
		if !p.Can(UsersAdmin) {
			return nil, fmt.Errorf("%w: only an admin lists everyone's tokens", ErrForbidden)
		}
		return s.st.Tokens(ctx, 0)
	}
	return s.st.Tokens(ctx, p.UserID)
}

// RevokeToken revokes a token of p's own, or anyone's for an admin.
func (s *Service) RevokeToken(ctx context.Context, p *Principal, id int64) error {
	t, err := s.st.TokenByID(ctx, id)
	if err != nil {
		return err
	}
	if t.UserID != p.UserID && !p.Can(UsersAdmin) {
		return fmt.Errorf("%w: token %d", ErrNotFound, id) // do not tell others' ids apart
	}
	err = s.st.RevokeToken(ctx, id, s.o.Now())
	s.tokens.flush()
	if err != nil {
		return err
	}
	s.log.Info("token revoked", "token", id, "by", p.User)
	return nil
}

// ParseTTL reads a token lifetime: a Go duration ("720h") or days ("90d"),
// positive and at most MaxTokenTTL.
func ParseTTL(s string) (time.Duration, error) {
	var d time.Duration
	var err error
	if days, ok := strings.CutSuffix(s, "d"); ok {
		var n int
		n, err = strconv.Atoi(days)
		d = time.Duration(n) * 24 * time.Hour
	} else {
		d, err = time.ParseDuration(s)
	}
	if err != nil || d <= 0 || d > MaxTokenTTL {
		return 0, fmt.Errorf("%w: expires_in %q: a duration like 90d or 720h, at most %dd", ErrInvalid, s, MaxTokenTTL/(24*time.Hour))
	}
	return d, nil
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// throttle counts failures per key in a fixed window.
type throttle struct {
	mu     sync.Mutex
	limit  int
	window time.Duration
	now    func() time.Time
	m      map[string]*window
}

type window struct {
	start time.Time
	n     int
}

func newThrottle(limit int, w time.Duration, now func() time.Time) *throttle {
	return &throttle{limit: limit, window: w, now: now, m: map[string]*window{}}
}

func (t *throttle) allow(key string) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	w := t.m[key]
	return w == nil || t.now().Sub(w.start) >= t.window || w.n < t.limit
}

func (t *throttle) fail(key string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.now()
	if len(t.m) > 100000 {
		// Bound memory under a spray of names: forget finished windows.
		for k, w := range t.m {
			if now.Sub(w.start) >= t.window {
				delete(t.m, k)
			}
		}
	}
	w := t.m[key]
	if w == nil || now.Sub(w.start) >= t.window {
		w = &window{start: now}
		t.m[key] = w
	}
	w.n++
}

func (t *throttle) reset(key string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.m, key)
}
