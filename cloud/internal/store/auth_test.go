package store

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

// Ensure that the first user is created once however many hub replicas
// bootstrap one fresh database together, with its token.
func TestAuth_FirstUserOnce(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		var wg sync.WaitGroup
		errs := make([]error, 4)
		for i := range errs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, errs[i] = s.CreateFirstUser(ctx, User{Name: "admin", Role: "admin", PasswordHash: "h"},
					&APIToken{Hash: "tokenhash", Name: "bootstrap"})
			}()
		}
		wg.Wait()
		ok := 0
		for _, err := range errs {
			switch {
			case err == nil:
				ok++
			case !errors.Is(err, ErrExists):
				t.Fatalf("bootstrap: %v", err)
			}
		}
		n, err := s.CountUsers(ctx)
		if ok != 1 || err != nil || n != 1 {
			t.Fatalf("%d bootstraps succeeded, %d users (%v)", ok, n, err)
		}
		tok, u, err := s.TokenUser(ctx, "tokenhash")
		if err != nil || u.Name != "admin" || tok.Name != "bootstrap" || !tok.Expires.IsZero() {
			t.Fatalf("bootstrap token: %+v %+v %v", tok, u, err)
		}
		if _, err := s.CreateUser(ctx, User{Name: "admin", Role: "analyst"}); !errors.Is(err, ErrExists) {
			t.Fatalf("second admin: %v", err)
		}
	})
}

// Ensure that users, sessions and tokens round-trip, that a new password
// or disabling ends the user's sessions, and that revocation is recorded
// once.
func TestAuth_Rows(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		u, err := s.CreateUser(ctx, User{Name: "maria", Role: "store_manager", Stores: []string{"S1", "S2"}, PasswordHash: "h1"})
		if err != nil || u.ID == 0 || len(u.Stores) != 2 {
			t.Fatalf("create: %+v %v", u, err)
		}
		now := time.Now().Truncate(time.Millisecond)
		if err := s.CreateSession(ctx, Session{Hash: "s1", UserID: u.ID, Created: now, Expires: now.Add(time.Hour), Seen: now}); err != nil {
			t.Fatal(err)
		}
		se, su, err := s.SessionUser(ctx, "s1")
		if err != nil || su.Name != "maria" || !se.Expires.Equal(now.Add(time.Hour)) || su.Stores[1] != "S2" {
			t.Fatalf("session: %+v %+v %v", se, su, err)
		}
		if err := s.TouchSession(ctx, "s1", now.Add(time.Minute)); err != nil {
			t.Fatal(err)
		}
		role := "analyst"
		noStores := []string{}
		if u, err = s.UpdateUser(ctx, "maria", UserUpdate{Role: &role, Stores: &noStores}); err != nil || u.Role != "analyst" || len(u.Stores) != 0 {
			t.Fatalf("update: %+v %v", u, err)
		}
		if _, _, err := s.SessionUser(ctx, "s1"); err != nil {
			t.Fatalf("a role change ended the session: %v", err)
		}
		pw := "h2"
		if _, err := s.UpdateUser(ctx, "maria", UserUpdate{PasswordHash: &pw}); err != nil {
			t.Fatal(err)
		}
		if _, _, err := s.SessionUser(ctx, "s1"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("session after a password change: %v", err)
		}
		if _, err := s.UpdateUser(ctx, "nobody", UserUpdate{PasswordHash: &pw}); !errors.Is(err, ErrNotFound) {
			t.Fatalf("update of a missing user: %v", err)
		}

		tok, err := s.CreateToken(ctx, APIToken{Hash: "t1", UserID: u.ID, Name: "omnictl", Scopes: []string{"inventory:read", "stores:read"}, Expires: now.Add(time.Hour)})
		if err != nil || tok.ID == 0 {
			t.Fatal(err)
		}
		if err := s.TouchToken(ctx, tok.ID, now); err != nil {
			t.Fatal(err)
		}
		got, err := s.TokenByID(ctx, tok.ID)
		if err != nil || got.UserName != "maria" || len(got.Scopes) != 2 || !got.LastUsed.Equal(now) || !got.Revoked.IsZero() {
			t.Fatalf("token: %+v %v", got, err)
		}
		if err := s.RevokeToken(ctx, tok.ID, now.Add(time.Second)); err != nil {
			t.Fatal(err)
		}
		if err := s.RevokeToken(ctx, tok.ID, now.Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
		if got, _ := s.TokenByID(ctx, tok.ID); !got.Revoked.Equal(now.Add(time.Second)) {
			t.Fatalf("revoked at %v", got.Revoked)
		}
		if err := s.RevokeToken(ctx, 9999, now); !errors.Is(err, ErrNotFound) {
			t.Fatalf("revoking a missing token: %v", err)
		}
		list, err := s.Tokens(ctx, u.ID)
		if err != nil || len(list) != 1 {
			t.Fatalf("tokens: %v %v", list, err)
		}
		disabled := true
		if err := s.CreateSession(ctx, Session{Hash: "s2", UserID: u.ID, Created: now, Expires: now.Add(time.Hour), Seen: now}); err != nil {
			t.Fatal(err)
		}
		if _, err := s.UpdateUser(ctx, "maria", UserUpdate{Disabled: &disabled}); err != nil {
			t.Fatal(err)
		}
		if _, _, err := s.SessionUser(ctx, "s2"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("session of a disabled user: %v", err)
		}
	})
}
