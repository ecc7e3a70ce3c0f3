package main

import (
	"bytes"
	"context"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/omnisync/omnisync/cloud/internal/auth"
	"github.com/omnisync/omnisync/cloud/internal/store"
)

// omnictl runs the whole CLI in-process with stdin and returns its output
// and exit status.
func omnictl(t *testing.T, stdin string, args ...string) (string, int) {
	t.Helper()
	var out bytes.Buffer
	root := rootCmd(strings.NewReader(stdin), &out, &out)
	root.SetArgs(args)
	root.SetOut(&out)
	root.SetErr(&out)
	err := root.Execute()
	if err != nil {
		out.WriteString("error: " + err.Error() + "\n")
	}
	return out.String(), exitCode(err)
}

// Ensure that an admin manages users and tokens with omnictl, that
// `omnictl login` keeps a token only the user can read and every later
// command sends it, that a store manager sees only their store, and that
// logout and revocation lock the door again.
func TestUsersTokensLogin(t *testing.T) {
	db := filepath.Join(t.TempDir(), "hub.db")
	srv, _ := hubAPIAt(t, db)
	t.Setenv("XDG_CONFIG_HOME", t.TempDir())
	t.Setenv("OMNI_TOKEN", "")
	hub := "--hub=" + srv.URL
	must := func(stdin string, args ...string) string {
		t.Helper()
		out, code := omnictl(t, stdin, args...)
		if code != 0 {
			t.Fatalf("omnictl %v: exit %d\n%s", args, code, out)
		}
		return out
	}

	// Nothing without a token.
	if out, code := omnictl(t, "", hub, "stores"); code != 1 || !strings.Contains(out, "401") {
		t.Fatalf("stores without a token: exit %d\n%s", code, out)
	}
	// The admin's bootstrap token, by flag and by environment.
	must("", hub, "--token", testToken, "whoami")
	t.Setenv("OMNI_TOKEN", testToken)
	if out := must("", hub, "whoami"); !strings.Contains(out, "role    admin") {
		t.Fatalf("whoami: %s", out)
	}
	must("correct horse battery\n", hub, "users", "create", "maria", "--role", "store_manager", "--stores", "S1", "--password-stdin")
	must("", hub, "users", "create", "webshop", "--role", "integration", "--no-password")
	if out, code := omnictl(t, "short\n", hub, "users", "create", "bob", "--role", "analyst", "--password-stdin"); code != 1 || !strings.Contains(out, "at least 10") {
		t.Fatalf("short password: exit %d\n%s", code, out)
	}
	if out := must("", hub, "users", "list"); !regexp.MustCompile(`maria\s+store_manager\s+S1\s+active\s+yes`).MatchString(out) ||
		!regexp.MustCompile(`webshop\s+integration\s+active\s+no`).MatchString(out) {
		t.Fatalf("users list:\n%s", out)
	}
	shopToken := strings.TrimSpace(must("", hub, "tokens", "create", "shop-sync", "--user", "webshop", "--scopes", "catalog:write,inventory:read", "--expires-in", "30d"))
	if lines := strings.Split(shopToken, "\n"); !strings.HasPrefix(lines[len(lines)-1], "omni_") {
		t.Fatalf("token create printed:\n%s", shopToken)
	}
	lines := strings.Split(shopToken, "\n")
	shopToken = lines[len(lines)-1]
	if out, code := omnictl(t, "", hub, "tokens", "create", "x", "--user", "webshop"); code != 1 || !strings.Contains(out, "must name its scopes") {
		t.Fatalf("integration token without scopes: exit %d\n%s", code, out)
	}
	if out := must("", hub, "--token", shopToken, "whoami"); !strings.Contains(out, "scopes  inventory:read catalog:write") {
		t.Fatalf("webshop whoami:\n%s", out)
	}

	// maria logs in; the token is saved 0600 and used without flags.
	t.Setenv("OMNI_TOKEN", "")
	out := must("maria\ncorrect horse battery\n", hub, "login")
	if !strings.Contains(out, "logged in to "+srv.URL+" as maria") {
		t.Fatalf("login:\n%s", out)
	}
	creds := filepath.Join(os.Getenv("XDG_CONFIG_HOME"), "omnisync", "credentials.json")
	fi, err := os.Stat(creds)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("credentials file: %v %v", fi, err)
	}
	if out := must("", hub, "whoami"); !strings.Contains(out, "user    maria") || !strings.Contains(out, "stores  S1") {
		t.Fatalf("maria whoami:\n%s", out)
	}
	if out, code := omnictl(t, "", hub, "users", "list"); code != 1 || !strings.Contains(out, "403") {
		t.Fatalf("a store manager listing users: exit %d\n%s", code, out)
	}
	if out, code := omnictl(t, "wrong password!\n", hub, "login", "--user", "maria", "--password-stdin"); code != 1 || !strings.Contains(out, "wrong user or password") {
		t.Fatalf("wrong password: exit %d\n%s", code, out)
	}
	// The database holds no token, password or secret in clear.
	for _, secret := range []string{shopToken, testToken, "correct horse battery"} {
		if dbHolds(t, db, secret) {
			t.Fatalf("the database holds %q", secret)
		}
	}
	must("", hub, "logout")
	if out, code := omnictl(t, "", hub, "whoami"); code != 1 || !strings.Contains(out, "401") {
		t.Fatalf("after logout: exit %d\n%s", code, out)
	}

	// Disabling a user stops their tokens; revoking a token stops it.
	t.Setenv("OMNI_TOKEN", testToken)
	list := must("", hub, "tokens", "list", "--all")
	m := regexp.MustCompile(`(?m)^(\d+)\s+webshop\s+shop-sync\s+catalog:write inventory:read`).FindStringSubmatch(list)
	if m == nil {
		t.Fatalf("tokens list --all:\n%s", list)
	}
	if strings.Contains(list, shopToken) {
		t.Fatal("tokens list shows a secret")
	}
	must("", hub, "tokens", "revoke", m[1])
	if out, code := omnictl(t, "", hub, "--token", shopToken, "inventory", "SKU-1"); code != 1 || !strings.Contains(out, "401") {
		t.Fatalf("revoked token: exit %d\n%s", code, out)
	}
	if out, code := omnictl(t, "", hub, "users", "disable", "admin"); code != 1 || !strings.Contains(out, "yourself") {
		t.Fatalf("admin disabling itself: exit %d\n%s", code, out)
	}
}

// dbHolds reports whether the SQLite database's files (the database and
// its write-ahead log) hold s anywhere.
func dbHolds(t *testing.T, db, s string) bool {
	t.Helper()
	for _, f := range []string{db, db + "-wal"} {
		b, err := os.ReadFile(f)
		if err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
		if bytes.Contains(b, []byte(s)) {
			return true
		}
	}
	return false
}

// Ensure that `omnictl login --setup-token` sets the admin's password on a
// hub's first start with the token the hub printed, and logs in with it;
// that the token works once; and that a bad password leaves it good.
func TestLoginSetupToken(t *testing.T) {
	st, err := store.Open(context.Background(), "sqlite:"+filepath.Join(t.TempDir(), "hub.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	svc := auth.New(auth.Options{Store: st})
	var printed bytes.Buffer
	if err := svc.Bootstrap(context.Background(), "", &printed); err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^ +(` + auth.SetupTokenPrefix + `\S+)$`).FindStringSubmatch(printed.String())
	if m == nil {
		t.Fatalf("no setup token printed:\n%s", printed.String())
	}
	rt := auth.NewRouter(svc)
	svc.Register(rt)
	srv := httptest.NewServer(rt)
	t.Cleanup(srv.Close)
	t.Setenv("XDG_CONFIG_HOME", t.TempDir())
	t.Setenv("OMNI_TOKEN", "")
	hub := "--hub=" + srv.URL

	if out, code := omnictl(t, "short\n", hub, "login", "--setup-token", m[1], "--password-stdin"); code != 1 || !strings.Contains(out, "at least 10") {
		t.Fatalf("a short password: exit %d\n%s", code, out)
	}
	// "-" reads the token as the first line, kept off the command line.
	out, code := omnictl(t, m[1]+"\nthe admin's first password\n", hub, "login", "--setup-token", "-", "--password-stdin")
	if code != 0 || !strings.Contains(out, "set the admin's password and logged in to "+srv.URL+" as admin") {
		t.Fatalf("login --setup-token: exit %d\n%s", code, out)
	}
	if out, code := omnictl(t, "", hub, "whoami"); code != 0 || !strings.Contains(out, "role    admin") {
		t.Fatalf("whoami after setup: exit %d\n%s", code, out)
	}
	if out, code := omnictl(t, "another long password\n", hub, "login", "--setup-token", m[1], "--password-stdin"); code != 1 || !strings.Contains(out, "wrong, used or expired") {
		t.Fatalf("the setup token again: exit %d\n%s", code, out)
	}
	if out, code := omnictl(t, "the admin's first password\n", hub, "login", "--user", "admin", "--password-stdin"); code != 0 {
		t.Fatalf("login with the password set: exit %d\n%s", code, out)
	}
}
