package auth

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/omnisync/omnisync/cloud/internal/store"
)

// The one-time setup token: how the first admin of a hub started without
// --bootstrap-token gets a password. The hub prints it once, at the start
// that creates the admin (with no password); whoever can read the hub's
// output sets the admin's password with it, once, within SetupTokenTTL, in
// the browser (/setup) or with `omnictl login --setup-token`. It lives in
// the API token table, as the SHA-256 of its secret like every token,
// marked with SetupScope: no bearer request is let in with it, and no
// migration was needed for it.
const (
	// SetupScope marks a setup token. No route needs it and ParseScopes
	// does not know it, so no token can be minted with it through the API.
	SetupScope = "auth:setup"
	// SetupTokenPrefix starts every setup token (so people and secret
	// scanners tell it from an API token).
	SetupTokenPrefix = TokenPrefix + "setup_"
	// SetupTokenTTL bounds a setup token's life.
	SetupTokenTTL = 24 * time.Hour
	// setupTokenName labels it in token lists.
	setupTokenName = "one-time setup"
)

// ErrSetupToken: a setup token that sets nothing (unknown, used, expired,
// or its user disabled).
var ErrSetupToken = errors.New("auth: setup token not accepted (wrong, used or expired)")

func isSetupToken(t store.APIToken) bool { return slices.Contains(t.Scopes, SetupScope) }

// setupToken makes a setup token for u, not yet stored: the row and its
// secret.
func (s *Service) setupToken(u store.User) (store.APIToken, string) {
	secret := SetupTokenPrefix + newSecret()
	now := s.o.Now()
	return store.APIToken{Hash: HashSecret(secret), UserID: u.ID, Name: setupTokenName, Scopes: []string{SetupScope},
		Created: now, Expires: now.Add(SetupTokenTTL)}, secret
}

// printSetup writes the setup token and how to use it to out. The token is
// on one line of its own, and on no other: the one line of the hub's
// output (and so of its journal) that holds it.
func (s *Service) printSetup(out io.Writer, first bool, user, secret string, expires time.Time) {
	head := fmt.Sprintf("omni-hub first start: created the admin user %q without a password.", user)
	if !first {
		head = fmt.Sprintf("omni-hub: nobody can act as an admin yet (no admin has a password or a token): a new setup token for %q.", user)
	}
	fmt.Fprintf(out, "\n%s\nIts one-time setup token (usable once, until %s; stored only as a hash):\n\n    %s\n\n"+
		"Set the admin's password with it in the browser at %s%s\nor with: omnictl --hub %s login --setup-token -   (it asks for the token above)\n\n",
		head, expires.UTC().Format(time.RFC3339), secret, s.o.PublicURL, SetupPath, s.hubURL())
}

// hubURL is the hub's public URL for omnictl's --hub.
func (s *Service) hubURL() string {
	if s.o.PublicURL == "" {
		return "http://127.0.0.1:8080"
	}
	return s.o.PublicURL
}

// reissueSetup gives a hub that has users but on which nobody can act as
// an admin (no enabled admin has a password or a live API token: the
// first start's setup token was lost or expired) a new setup token for
// its first enabled admin, printed to out. Setup tokens printed earlier
// stay good until used or expired; using any one ends them all.
func (s *Service) reissueSetup(ctx context.Context, out io.Writer) error {
	users, err := s.st.Users(ctx)
	if err != nil {
		return fmt.Errorf("auth: bootstrap: %w", err)
	}
	var admins []store.User
	for _, u := range users {
		if Role(u.Role) != Admin || u.Disabled {
			continue
		}
		if u.PasswordHash != "" {
			return nil
		}
		admins = append(admins, u)
	}
	if len(admins) == 0 {
		// Every admin disabled (or none left): a setup token could not
		// let anyone in; that takes the database.
		return nil
	}
	now := s.o.Now()
	for _, u := range admins {
		toks, err := s.st.Tokens(ctx, u.ID)
		if err != nil {
			return fmt.Errorf("auth: bootstrap: %w", err)
		}
		for _, t := range toks {
			if !isSetupToken(t) && t.Revoked.IsZero() && (t.Expires.IsZero() || now.Before(t.Expires)) {
				return nil
			}
		}
	}
	u := admins[0]
	for _, a := range admins {
		if a.Name == FirstAdmin {
			u = a
		}
	}
	t, secret := s.setupToken(u)
	if _, err := s.st.CreateToken(ctx, t); err != nil {
		return fmt.Errorf("auth: bootstrap: %w", err)
	}
	s.log.Warn("no admin can log in yet: printed a new one-time setup token", "user", u.Name)
	s.printSetup(out, false, u.Name, secret, t.Expires)
	return nil
}

// Setup sets the password of the setup token's user to password and ends
// the token, and every other setup token of that user: a token works
// once. password is checked first (a bad one leaves the token good).
// client is throttled like a login. ErrSetupToken for a token that sets
// nothing; ErrInvalid for a bad password.
func (s *Service) Setup(ctx context.Context, token, password, client string) (store.User, error) {
	key := "setup-client:" + client
	if !s.fails.allow(key) {
		return store.User{}, ErrThrottled
	}
	if err := CheckPassword(password); err != nil {
		return store.User{}, err
	}
	refuse := func() (store.User, error) {
		s.fails.fail(key)
		s.log.Info("setup token refused", "client", client)
		return store.User{}, ErrSetupToken
	}
	if !validSecret(token) {
		return refuse()
	}
	t, u, err := s.st.TokenUser(ctx, HashSecret(token))
	if errors.Is(err, store.ErrNotFound) {
		return refuse()
	}
	if err != nil {
		return store.User{}, fmt.Errorf("auth: setup: %w", err)
	}
	now := s.o.Now()
	if !isSetupToken(t) || !t.Revoked.IsZero() || !now.Before(t.Expires) || u.Disabled {
		return refuse()
	}
	hash, err := HashPassword(password)
	if err != nil {
		return store.User{}, err
	}
	// Claim the token by revoking it: of two uses racing (two replicas),
	// the one whose revocation found it unrevoked wins. The token is spent
	// before the password is written: should that write fail, the admin
	// has none yet and the next start prints a new token.
	at := now.Truncate(time.Millisecond)
	claimed, err := s.st.ClaimToken(ctx, t.ID, at)
	if err != nil {
		return store.User{}, fmt.Errorf("auth: setup: %w", err)
	}
	if !claimed {
		return refuse()
	}
	defer s.tokens.flush()
	u, err = s.st.UpdateUser(ctx, u.Name, store.UserUpdate{PasswordHash: &hash})
	if err != nil {
		return store.User{}, fmt.Errorf("auth: setup: %w", err)
	}
	toks, err := s.st.Tokens(ctx, u.ID)
	if err != nil {
		return store.User{}, fmt.Errorf("auth: setup: %w", err)
	}
	for _, o := range toks {
		if isSetupToken(o) && o.Revoked.IsZero() {
			if err := s.st.RevokeToken(ctx, o.ID, at); err != nil {
				return store.User{}, fmt.Errorf("auth: setup: %w", err)
			}
		}
	}
	s.fails.reset(key)
	s.log.Info("password set with the setup token", "user", u.Name, "client", client)
	return u, nil
}
