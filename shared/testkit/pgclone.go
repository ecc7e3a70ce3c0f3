package testkit

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"os"
	"regexp"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// PostgresClone returns the DSN of a fresh database of its own, a copy of
// a template database that prepare filled once (its DSN given), dropped
// when the test ends. Tests that need a migrated hub schema use it instead
// of migrating an empty schema each: the hub's migrations are hundreds of
// DDL statements (most of a second), a copy of the database they leave is
// a fraction of that.
//
// kind names the template ("store"), version what is in it: it must
// change whenever what prepare builds does (the store passes a hash of its
// migrations). A template is made once per version, by whichever test
// process gets there first, and kept for the next run; the templates of
// the kind's other versions are dropped then. prepare must close every
// connection it opens. Without a reachable server the test is
// skipped, or fails when CI is set.
func PostgresClone(t testing.TB, kind, version string, prepare func(ctx context.Context, dsn string) error) string {
	t.Helper()
	if !validName.MatchString(kind) || !validName.MatchString(version) {
		t.Fatalf("testkit: template %q version %q: want 1-24 of [a-z0-9] each", kind, version)
	}
	base := pgBase()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	conn := pgConnect(t, ctx, base)
	defer conn.Close(context.Background())
	family := "omni_tmpl_" + kind + "_"
	tmpl := family + version
	var b [6]byte
	_, _ = rand.Read(b[:])
	name := "t_" + hex.EncodeToString(b[:])
	for attempt := 0; ; attempt++ {
		if err := ensureTemplate(ctx, conn, base, family, tmpl, prepare); err != nil {
			t.Fatalf("testkit: template database %s: %v", tmpl, err)
		}
		_, err := conn.Exec(ctx, "CREATE DATABASE "+name+" TEMPLATE "+tmpl)
		if err == nil {
			break
		}
		// A run of another version dropped it as stale: make it again.
		var pgErr *pgconn.PgError
		if attempt == 0 && errors.As(err, &pgErr) && pgErr.Code == "3D000" {
			templatesReady.Delete(tmpl)
			continue
		}
		t.Fatalf("testkit: create database from %s: %v", tmpl, err)
	}
	// FORCE: a connection the test leaked must not leave the copy behind.
	cleanupExec(t, base, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
	dsn, err := withDatabase(base, name)
	if err != nil {
		t.Fatalf("testkit: %v", err)
	}
	return dsn
}

var validName = regexp.MustCompile(`^[a-z0-9]{1,24}$`)

// templatesReady remembers, per process, the templates known to be whole,
// so only a process's first clone of each pays for the check and its lock.
var templatesReady sync.Map

// templateLock is the advisory lock (in the base database) under which a
// template is checked, made or dropped, so test processes starting
// together build each one once.
const templateLock = 0x6f6d6e74 // "omnt"

func ensureTemplate(ctx context.Context, conn *pgx.Conn, base, family, tmpl string, prepare func(context.Context, string) error) error {
	if _, ok := templatesReady.Load(tmpl); ok {
		return nil
	}
	if _, err := conn.Exec(ctx, "SELECT pg_advisory_lock($1)", int64(templateLock)); err != nil {
		return err
	}
	defer func() { _, _ = conn.Exec(context.Background(), "SELECT pg_advisory_unlock($1)", int64(templateLock)) }()
	// A template is whole once it is marked as one: a process killed
	// while preparing leaves a plain database, made again here.
	var isTemplate bool
	err := conn.QueryRow(ctx, "SELECT datistemplate FROM pg_database WHERE datname = $1", tmpl).Scan(&isTemplate)
	switch {
	case err == nil && isTemplate:
		templatesReady.Store(tmpl, true)
		return nil
	case err == nil:
		if _, err := conn.Exec(ctx, "DROP DATABASE "+tmpl+" WITH (FORCE)"); err != nil {
			return fmt.Errorf("drop unfinished template: %w", err)
		}
	case !errors.Is(err, pgx.ErrNoRows):
		return err
	}
	dropStaleTemplates(ctx, conn, family, tmpl)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+tmpl); err != nil {
		return err
	}
	dsn, err := withDatabase(base, tmpl)
	if err != nil {
		return err
	}
	if err := prepare(ctx, dsn); err != nil {
		_, _ = conn.Exec(context.Background(), "DROP DATABASE "+tmpl+" WITH (FORCE)")
		return fmt.Errorf("prepare: %w", err)
	}
	// No connections from now on: a copy needs the template unused.
	if _, err := conn.Exec(ctx, "ALTER DATABASE "+tmpl+" WITH IS_TEMPLATE true ALLOW_CONNECTIONS false"); err != nil {
		return err
	}
	templatesReady.Store(tmpl, true)
	return nil
}

// dropStaleTemplates drops the family's other templates (older
// migrations), which nothing will copy again. One being copied right now
// refuses to go; it is left for another time.
func dropStaleTemplates(ctx context.Context, conn *pgx.Conn, family, keep string) {
	rows, err := conn.Query(ctx, "SELECT datname FROM pg_database WHERE starts_with(datname, $1) AND datname <> $2", family, keep)
	if err != nil {
		return
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return
	}
	for _, n := range names {
		if _, err := conn.Exec(ctx, "ALTER DATABASE "+pgx.Identifier{n}.Sanitize()+" WITH IS_TEMPLATE false"); err != nil {
			continue
		}
		_, _ = conn.Exec(ctx, "DROP DATABASE "+pgx.Identifier{n}.Sanitize())
	}
}

// withDatabase is the DSN base with its database replaced by name.
func withDatabase(base, name string) (string, error) {
	u, err := url.Parse(base)
	if err != nil {
		return "", fmt.Errorf("test DSN %q: %w", base, err)
	}
	u.Path = "/" + name
	return u.String(), nil
}

// cleanupExec runs stmt on base when the test ends, best effort: what a
// test made in the database goes with it.
func cleanupExec(t testing.TB, base, stmt string) {
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		c, err := pgx.Connect(ctx, base)
		if err != nil {
			return
		}
		defer c.Close(context.Background())
		_, _ = c.Exec(ctx, stmt)
	})
}

// pgBase is the DSN the test databases and schemas are made from.
func pgBase() string {
	if base := os.Getenv("OMNI_TEST_PG"); base != "" {
		return base
	}
	return "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
}

// pgConnect connects to base, skipping the test when it cannot (failing it
// when CI is set).
func pgConnect(t testing.TB, ctx context.Context, base string) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("PostgreSQL is required in CI: %v", err)
		}
		t.Skipf("PostgreSQL not reachable (%v); set CI=1 to make this a failure", err)
	}
	return conn
}
