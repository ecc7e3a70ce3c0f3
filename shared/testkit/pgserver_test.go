package testkit

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// Ensure that a private server survives a crash as PostgreSQL promises:
// what was committed is there after the restart, what was in flight is not.
func TestPGServerCrashAndRecover(t *testing.T) {
	s := StartPGServer(t)
	ctx := context.Background()
	c, err := pgx.Connect(ctx, s.DSN())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Exec(ctx, "CREATE TABLE books (n int); INSERT INTO books VALUES (1)"); err != nil {
		t.Fatal(err)
	}
	tx, err := c.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, "INSERT INTO books VALUES (2)"); err != nil {
		t.Fatal(err)
	}
	s.Crash()
	// The backend dies with its postmaster's process group, but on a busy
	// machine the kernel may not have torn it down (and closed its socket)
	// by the first pings, which then answer at once: wait by the clock,
	// not by a count of pings.
	dead := false
	for deadline := time.Now().Add(10 * time.Second); !dead && time.Now().Before(deadline); {
		pctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
		dead = c.Ping(pctx) != nil
		cancel()
		if !dead {
			time.Sleep(20 * time.Millisecond)
		}
	}
	if !dead {
		t.Fatal("connection alive after a crash")
	}
	c.Close(ctx)
	s.Start()
	c, err = pgx.Connect(ctx, s.DSN())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	var n, sum int
	if err := c.QueryRow(ctx, "SELECT count(*), coalesce(sum(n), 0) FROM books").Scan(&n, &sum); err != nil {
		t.Fatal(err)
	}
	if n != 1 || sum != 1 {
		t.Fatalf("after recovery: %d rows summing %d, want the committed row only", n, sum)
	}
}
