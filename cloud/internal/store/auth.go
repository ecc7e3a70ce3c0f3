package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"
)

// HQ identities: users, their browser sessions and API tokens. The rules
// (who may do what, how secrets are made and checked) live in package
// auth; this file only keeps the rows. No secret is ever stored: the
// caller hands in a password's hash and the SHA-256 of a session's or a
// token's secret, and looks them up by that hash.

// Errors the auth queries return (wrapped); callers branch on them.
var (
	// ErrNotFound: no user, session or token matches; no customer,
	// erasure or merge (or none the caller may see).
	ErrNotFound = errors.New("store: not found")
	// ErrExists: a user of that name exists already, or (CreateFirstUser)
	// any user does.
	ErrExists = errors.New("store: already exists")
)

// User is an HQ identity.
type User struct {
	ID   int64
	Name string
	// Role is one of package auth's roles; Stores the stores a store
	// manager acts for.
	Role   string
	Stores []string
	// PasswordHash is the PHC-encoded hash, "" when the user cannot log in
	// with a password.
	PasswordHash string
	Disabled     bool
	Created      time.Time
	Updated      time.Time
}

// Session is a logged-in browser.
type Session struct {
	// Hash is the SHA-256 (hex) of the cookie's secret.
	Hash    string
	UserID  int64
	Created time.Time
	Expires time.Time
	Seen    time.Time
}

// APIToken is a bearer token for scripts and integrations.
type APIToken struct {
	ID int64
	// Hash is the SHA-256 (hex) of the token; the token itself is shown
	// to its creator once and kept nowhere.
	Hash     string
	UserID   int64
	UserName string // filled by reads
	Name     string
	// Scopes narrows what the token may do; empty means its user's rights.
	Scopes   []string
	Created  time.Time
	Expires  time.Time // zero: never
	LastUsed time.Time // zero: never
	Revoked  time.Time // zero: not revoked
}

// UserUpdate changes a user; nil fields stay as they are.
type UserUpdate struct {
	Role         *string
	Stores       *[]string
	PasswordHash *string
	Disabled     *bool
}

const userCols = "id, name, role, stores, password, disabled, created_ms, updated_ms"

func scanUser(row interface{ Scan(...any) error }) (User, error) {
	var u User
	var stores string
	var disabled, created, updated int64
	if err := row.Scan(&u.ID, &u.Name, &u.Role, &stores, &u.PasswordHash, &disabled, &created, &updated); err != nil {
		return User{}, err
	}
	u.Stores = splitList(stores, ",")
	u.Disabled = disabled != 0
	u.Created, u.Updated = msTime(created), msTime(updated)
	return u, nil
}

func splitList(s, sep string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, sep)
}

func msOf(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

func boolInt(b bool) int64 {
	if b {
		return 1
	}
	return 0
}

// CountUsers returns how many users exist (disabled ones included).
func (s *Store) CountUsers(ctx context.Context) (int64, error) {
	var n int64
	if err := s.r.QueryRowContext(ctx, "SELECT count(*) FROM auth_users").Scan(&n); err != nil {
		return 0, fmt.Errorf("store: count users: %w", err)
	}
	return n, nil
}

// CreateUser adds a user; ErrExists when the name is taken.
func (s *Store) CreateUser(ctx context.Context, u User) (User, error) {
	var out User
	err := s.retry(ctx, "create user", func() error {
		tx, err := s.w.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		defer tx.Rollback()
		if out, err = s.insertUser(ctx, tx, u); err != nil {
			return err
		}
		return tx.Commit()
	})
	return out, err
}

func (s *Store) insertUser(ctx context.Context, tx *sql.Tx, u User) (User, error) {
	now := s.now().UnixMilli()
	row := tx.QueryRowContext(ctx, `INSERT INTO auth_users (name, role, stores, password, disabled, created_ms, updated_ms)
VALUES ($1, $2, $3, $4, $5, $6, $6) ON CONFLICT (name) DO NOTHING RETURNING `+userCols,
		u.Name, u.Role, strings.Join(u.Stores, ","), u.PasswordHash, boolInt(u.Disabled), now)
	out, err := scanUser(row)
	if errors.Is(err, sql.ErrNoRows) {
		return User{}, fmt.Errorf("%w: user %q", ErrExists, u.Name)
	}
	if err != nil {
		return User{}, fmt.Errorf("store: create user: %w", err)
	}
	return out, nil
}

// CreateFirstUser adds u, and tok for it when tok is not nil, only if no
// user exists yet: the first start of a hub. Several hub replicas starting
// together on one fresh database may all try; exactly one succeeds and
// the others get ErrExists.
func (s *Store) CreateFirstUser(ctx context.Context, u User, tok *APIToken) (User, error) {
	var out User
	err := s.retry(ctx, "create first user", func() error {
		tx, err := s.w.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		defer tx.Rollback()
		var n int64
		if err := tx.QueryRowContext(ctx, "SELECT count(*) FROM auth_users").Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			return fmt.Errorf("%w: users", ErrExists)
		}
		// Replicas racing here all insert the same name; the unique name
		// lets one of them through.
		if out, err = s.insertUser(ctx, tx, u); err != nil {
			return err
		}
		if tok != nil {
			t := *tok
			t.UserID = out.ID
			if _, err := s.insertToken(ctx, tx, t); err != nil {
				return err
			}
		}
		return tx.Commit()
	})
	return out, err
}

// UserByName returns the user called name, or ErrNotFound.
func (s *Store) UserByName(ctx context.Context, name string) (User, error) {
	u, err := scanUser(s.r.QueryRowContext(ctx, "SELECT "+userCols+" FROM auth_users WHERE name = $1", name))
	if errors.Is(err, sql.ErrNoRows) {
		return User{}, fmt.Errorf("%w: user %q", ErrNotFound, name)
	}
	if err != nil {
		return User{}, fmt.Errorf("store: user: %w", err)
	}
	return u, nil
}

// Users lists every user by name.
func (s *Store) Users(ctx context.Context) ([]User, error) {
	rows, err := s.r.QueryContext(ctx, "SELECT "+userCols+" FROM auth_users ORDER BY name")
	if err != nil {
		return nil, fmt.Errorf("store: users: %w", err)
	}
	defer rows.Close()
	out := []User{}
	for rows.Next() {
		u, err := scanUser(rows)
		if err != nil {
			return nil, fmt.Errorf("store: users: %w", err)
		}
		out = append(out, u)
	}
	return out, rows.Err()
}

// UpdateUser changes the user called name and returns it as it now is. A
// new password or disabling the user also ends all of the user's
// sessions, so a stolen session does not outlive a reset.
func (s *Store) UpdateUser(ctx context.Context, name string, upd UserUpdate) (User, error) {
	var out User
	err := s.retry(ctx, "update user", func() error {
		tx, err := s.w.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		defer tx.Rollback()
		var a args
		sets := []string{"updated_ms = " + a.add(s.now().UnixMilli())}
		if upd.Role != nil {
			sets = append(sets, "role = "+a.add(*upd.Role))
		}
		if upd.Stores != nil {
			sets = append(sets, "stores = "+a.add(strings.Join(*upd.Stores, ",")))
		}
		if upd.PasswordHash != nil {
			sets = append(sets, "password = "+a.add(*upd.PasswordHash))
		}
		if upd.Disabled != nil {
			sets = append(sets, "disabled = "+a.add(boolInt(*upd.Disabled)))
		}
		q := "UPDATE auth_users SET " + strings.Join(sets, ", ") + " WHERE name = " + a.add(name) + " RETURNING " + userCols
		out, err = scanUser(tx.QueryRowContext(ctx, q, a...))
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("%w: user %q", ErrNotFound, name)
		}
		if err != nil {
			return err
		}
		if upd.PasswordHash != nil || (upd.Disabled != nil && *upd.Disabled) {
			if _, err := tx.ExecContext(ctx, "DELETE FROM auth_sessions WHERE user_id = $1", out.ID); err != nil {
				return err
			}
		}
		return tx.Commit()
	})
	if err != nil && !errors.Is(err, ErrNotFound) {
		return User{}, fmt.Errorf("store: update user: %w", err)
	}
	return out, err
}

// CreateSession stores a new session, and drops the user's expired ones.
func (s *Store) CreateSession(ctx context.Context, se Session) error {
	return s.retry(ctx, "create session", func() error {
		tx, err := s.w.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		defer tx.Rollback()
		if _, err := tx.ExecContext(ctx, "DELETE FROM auth_sessions WHERE user_id = $1 AND expires_ms <= $2", se.UserID, s.now().UnixMilli()); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, "INSERT INTO auth_sessions (hash, user_id, created_ms, expires_ms, seen_ms) VALUES ($1, $2, $3, $4, $5)",
			se.Hash, se.UserID, msOf(se.Created), msOf(se.Expires), msOf(se.Seen)); err != nil {
			return err
		}
		return tx.Commit()
	})
}

// SessionUser returns the session whose secret hashes to hash, and its
// user; ErrNotFound when there is none. Expiry is the caller's to check.
func (s *Store) SessionUser(ctx context.Context, hash string) (Session, User, error) {
	row := s.r.QueryRowContext(ctx, `SELECT s.created_ms, s.expires_ms, s.seen_ms, u.id, u.name, u.role, u.stores, u.password, u.disabled, u.created_ms, u.updated_ms
FROM auth_sessions s JOIN auth_users u ON u.id = s.user_id WHERE s.hash = $1`, hash)
	var created, expires, seen int64
	var u User
	var stores string
	var disabled, uc, uu int64
	err := row.Scan(&created, &expires, &seen, &u.ID, &u.Name, &u.Role, &stores, &u.PasswordHash, &disabled, &uc, &uu)
	if errors.Is(err, sql.ErrNoRows) {
		return Session{}, User{}, ErrNotFound
	}
	if err != nil {
		return Session{}, User{}, fmt.Errorf("store: session: %w", err)
	}
	u.Stores, u.Disabled, u.Created, u.Updated = splitList(stores, ","), disabled != 0, msTime(uc), msTime(uu)
	return Session{Hash: hash, UserID: u.ID, Created: msTime(created), Expires: msTime(expires), Seen: msTime(seen)}, u, nil
}

// TouchSession records that the session was used at seen.
func (s *Store) TouchSession(ctx context.Context, hash string, seen time.Time) error {
	return s.retry(ctx, "touch session", func() error {
		_, err := s.w.ExecContext(ctx, "UPDATE auth_sessions SET seen_ms = $1 WHERE hash = $2", seen.UnixMilli(), hash)
		return err
	})
}

// DeleteSession ends a session (logout); no error when it is gone already.
func (s *Store) DeleteSession(ctx context.Context, hash string) error {
	return s.retry(ctx, "delete session", func() error {
		_, err := s.w.ExecContext(ctx, "DELETE FROM auth_sessions WHERE hash = $1", hash)
		return err
	})
}

const tokenCols = "t.id, t.hash, t.user_id, u.name, t.name, t.scopes, t.created_ms, t.expires_ms, t.last_used_ms, t.revoked_ms"

func scanToken(row interface{ Scan(...any) error }) (APIToken, error) {
	var t APIToken
	var scopes string
	var created, expires, used, revoked int64
	if err := row.Scan(&t.ID, &t.Hash, &t.UserID, &t.UserName, &t.Name, &scopes, &created, &expires, &used, &revoked); err != nil {
		return APIToken{}, err
	}
	t.Scopes = splitList(scopes, " ")
	t.Created, t.Expires, t.LastUsed, t.Revoked = msTime(created), msTime(expires), msTime(used), msTime(revoked)
	return t, nil
}

// CreateToken stores a token (by its hash) and returns it with its id.
func (s *Store) CreateToken(ctx context.Context, t APIToken) (APIToken, error) {
	var out APIToken
	err := s.retry(ctx, "create token", func() error {
		tx, err := s.w.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		defer tx.Rollback()
		if out, err = s.insertToken(ctx, tx, t); err != nil {
			return err
		}
		return tx.Commit()
	})
	if err != nil {
		return APIToken{}, fmt.Errorf("store: create token: %w", err)
	}
	return out, nil
}

func (s *Store) insertToken(ctx context.Context, tx *sql.Tx, t APIToken) (APIToken, error) {
	if t.Created.IsZero() {
		t.Created = s.now()
	}
	if err := tx.QueryRowContext(ctx, `INSERT INTO auth_tokens (hash, user_id, name, scopes, created_ms, expires_ms)
VALUES ($1, $2, $3, $4, $5, $6) RETURNING id`,
		t.Hash, t.UserID, t.Name, strings.Join(t.Scopes, " "), msOf(t.Created), msOf(t.Expires)).Scan(&t.ID); err != nil {
		return APIToken{}, err
	}
	return t, nil
}

// TokenUser returns the token whose hash is hash, and its user;
// ErrNotFound when there is none. Expiry and revocation are the caller's
// to check.
func (s *Store) TokenUser(ctx context.Context, hash string) (APIToken, User, error) {
	row := s.r.QueryRowContext(ctx, "SELECT "+tokenCols+", "+prefixed("u", userCols)+
		" FROM auth_tokens t JOIN auth_users u ON u.id = t.user_id WHERE t.hash = $1", hash)
	var t APIToken
	var scopes string
	var created, expires, used, revoked int64
	var u User
	var stores string
	var disabled, uc, uu int64
	err := row.Scan(&t.ID, &t.Hash, &t.UserID, &t.UserName, &t.Name, &scopes, &created, &expires, &used, &revoked,
		&u.ID, &u.Name, &u.Role, &stores, &u.PasswordHash, &disabled, &uc, &uu)
	if errors.Is(err, sql.ErrNoRows) {
		return APIToken{}, User{}, ErrNotFound
	}
	if err != nil {
		return APIToken{}, User{}, fmt.Errorf("store: token: %w", err)
	}
	t.Scopes = splitList(scopes, " ")
	t.Created, t.Expires, t.LastUsed, t.Revoked = msTime(created), msTime(expires), msTime(used), msTime(revoked)
	u.Stores, u.Disabled, u.Created, u.Updated = splitList(stores, ","), disabled != 0, msTime(uc), msTime(uu)
	return t, u, nil
}

func prefixed(alias, cols string) string {
	parts := strings.Split(cols, ", ")
	for i, p := range parts {
		parts[i] = alias + "." + p
	}
	return strings.Join(parts, ", ")
}

// TouchToken records that the token was used at at.
func (s *Store) TouchToken(ctx context.Context, id int64, at time.Time) error {
	return s.retry(ctx, "touch token", func() error {
		_, err := s.w.ExecContext(ctx, "UPDATE auth_tokens SET last_used_ms = $1 WHERE id = $2", at.UnixMilli(), id)
		return err
	})
}

// Tokens lists the tokens of userID (every user's when 0), newest first,
// revoked ones included.
func (s *Store) Tokens(ctx context.Context, userID int64) ([]APIToken, error) {
	var a args
	q := "SELECT " + tokenCols + " FROM auth_tokens t JOIN auth_users u ON u.id = t.user_id"
	if userID != 0 {
		q += " WHERE t.user_id = " + a.add(userID)
	}
	q += " ORDER BY t.id DESC"
	rows, err := s.r.QueryContext(ctx, q, a...)
	if err != nil {
		return nil, fmt.Errorf("store: tokens: %w", err)
	}
	defer rows.Close()
	out := []APIToken{}
	for rows.Next() {
		t, err := scanToken(rows)
		if err != nil {
			return nil, fmt.Errorf("store: tokens: %w", err)
		}
		out = append(out, t)
	}
	return out, rows.Err()
}

// TokenByID returns one token, or ErrNotFound.
func (s *Store) TokenByID(ctx context.Context, id int64) (APIToken, error) {
	t, err := scanToken(s.r.QueryRowContext(ctx, "SELECT "+tokenCols+" FROM auth_tokens t JOIN auth_users u ON u.id = t.user_id WHERE t.id = $1", id))
	if errors.Is(err, sql.ErrNoRows) {
		return APIToken{}, fmt.Errorf("%w: token %d", ErrNotFound, id)
	}
	if err != nil {
		return APIToken{}, fmt.Errorf("store: token: %w", err)
	}
	return t, nil
}

// ClaimToken revokes an unrevoked token at at and reports whether this
// call did it: of several racing to use a one-time token (hub replicas
// sharing a database), exactly one claims it.
func (s *Store) ClaimToken(ctx context.Context, id int64, at time.Time) (bool, error) {
	var n int64
	err := s.retry(ctx, "claim token", func() error {
		res, err := s.w.ExecContext(ctx, "UPDATE auth_tokens SET revoked_ms = $1 WHERE id = $2 AND revoked_ms = 0", at.UnixMilli(), id)
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	if err != nil {
		return false, fmt.Errorf("store: claim token: %w", err)
	}
	return n == 1, nil
}

// RevokeToken marks a token revoked at at (an already revoked token keeps
// its first revocation time); ErrNotFound when there is no such token.
func (s *Store) RevokeToken(ctx context.Context, id int64, at time.Time) error {
	var n int64
	err := s.retry(ctx, "revoke token", func() error {
		res, err := s.w.ExecContext(ctx, "UPDATE auth_tokens SET revoked_ms = CASE WHEN revoked_ms = 0 THEN $1 ELSE revoked_ms END WHERE id = $2", at.UnixMilli(), id)
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	if err != nil {
		return fmt.Errorf("store: revoke token: %w", err)
	}
	if n == 0 {
		return fmt.Errorf("%w: token %d", ErrNotFound, id)
	}
	return nil
}
