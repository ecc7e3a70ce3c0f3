package testkit

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// Ensure that every clone starts as the template left it, that a clone's
// writes stay in it, and that a template is prepared once per key.
func TestPostgresClone(t *testing.T) {
	var prepared atomic.Int32
	version := fmt.Sprint(time.Now().UnixNano())
	prepare := func(ctx context.Context, dsn string) error {
		prepared.Add(1)
		c, err := pgx.Connect(ctx, dsn)
		if err != nil {
			return err
		}
		defer c.Close(ctx)
		_, err = c.Exec(ctx, "CREATE TABLE items (n INT); INSERT INTO items VALUES (1)")
		return err
	}
	t.Cleanup(func() {
		// This version is the test's own: its template goes with it.
		ctx := context.Background()
		c, err := pgx.Connect(ctx, pgBase())
		if err != nil {
			return
		}
		defer c.Close(ctx)
		tmpl := pgx.Identifier{"omni_tmpl_testkit_" + version}.Sanitize()
		_, _ = c.Exec(ctx, "ALTER DATABASE "+tmpl+" WITH IS_TEMPLATE false")
		_, _ = c.Exec(ctx, "DROP DATABASE "+tmpl)
	})
	ctx := context.Background()
	for i := range 2 {
		dsn := PostgresClone(t, "testkit", version, prepare)
		c, err := pgx.Connect(ctx, dsn)
		if err != nil {
			t.Fatal(err)
		}
		var n int
		if err := c.QueryRow(ctx, "SELECT count(*) FROM items").Scan(&n); err != nil || n != 1 {
			t.Fatalf("clone %d: %d rows, %v; want the template's 1", i, n, err)
		}
		if _, err := c.Exec(ctx, "INSERT INTO items VALUES (2)"); err != nil {
			t.Fatal(err)
		}
		c.Close(ctx)
	}
	if n := prepared.Load(); n != 1 {
		t.Fatalf("template prepared %d times, want once", n)
	}
}
