// Package testkit starts the real parts tests need, each in one line: an
// embedded NATS server with JetStream, a fresh PostgreSQL schema (or a
// database copied from a prepared template), a built binary, and a polling
// helper.
//
// Nothing here is a mock. PostgreSQL tests fail (not skip) when the CI
// environment variable is set and the server cannot be reached, so a broken
// CI machine cannot pass by testing nothing.
package testkit

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/omnisync/omnisync/shared/natsembed"
)

// NATS is an embedded JetStream server owned by a test.
type NATS struct {
	t    testing.TB
	Dir  string
	Port int
	srv  *natsembed.Server
}

// StartNATS starts an embedded JetStream server on a free port with its data
// in a temporary directory; it is shut down when the test ends.
func StartNATS(t testing.TB) *NATS {
	t.Helper()
	n := &NATS{t: t, Dir: t.TempDir()}
	n.start(0)
	t.Cleanup(n.Stop)
	return n
}

func (n *NATS) start(port int) {
	n.t.Helper()
	var err error
	for i := 0; i < 50; i++ {
		n.srv, err = natsembed.Start(natsembed.Options{
			Listen:   net.JoinHostPort("127.0.0.1", strconv.Itoa(port)),
			StoreDir: n.Dir,
		})
		if err == nil {
			break
		}
		// The port of a server we just stopped can take a moment to free.
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		n.t.Fatalf("start nats: %v", err)
	}
	n.Port = n.srv.Addr().(*net.TCPAddr).Port
}

// URL is the client URL of the server.
func (n *NATS) URL() string { return fmt.Sprintf("nats://127.0.0.1:%d", n.Port) }

// Stop shuts the server down (idempotent).
func (n *NATS) Stop() {
	if n.srv != nil {
		n.srv.Close()
		n.srv = nil
	}
}

// Restart starts the server again on the same port and data directory.
func (n *NATS) Restart() {
	n.t.Helper()
	n.Stop()
	n.start(n.Port)
}

// StartNATSWithUsers starts a JetStream server (in the global account) that
// lets in only users, each with its permissions, and returns its URL; it is
// shut down when the test ends. For tests of what a store's credentials
// allow: StartNATS has no users.
func StartNATSWithUsers(t testing.TB, users ...*server.User) string {
	t.Helper()
	s, err := server.NewServer(&server.Options{
		Host: "127.0.0.1", Port: server.RANDOM_PORT, JetStream: true, StoreDir: t.TempDir(),
		Users: users, NoSigs: true, NoLog: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	go s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats server not ready")
	}
	t.Cleanup(func() { s.Shutdown(); s.WaitForShutdown() })
	return s.ClientURL()
}

// Postgres returns the DSN of a fresh, empty schema in the test database
// (OMNI_TEST_PG, default postgres://postgres@127.0.0.1:5432/test), dropped
// when the test ends. Without a reachable server the test is skipped, or
// fails when CI is set.
func Postgres(t testing.TB) string {
	t.Helper()
	base := pgBase()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn := pgConnect(t, ctx, base)
	defer conn.Close(context.Background())
	var b [6]byte
	_, _ = rand.Read(b[:])
	schema := "t_" + hex.EncodeToString(b[:])
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		t.Fatalf("create schema: %v", err)
	}
	cleanupExec(t, base, "DROP SCHEMA "+schema+" CASCADE")
	sep := "?"
	for i := 0; i < len(base); i++ {
		if base[i] == '?' {
			sep = "&"
		}
	}
	return base + sep + "search_path=" + schema
}

// Eventually polls cond every few milliseconds until it holds or timeout
// passes, then fails the test with msg.
func Eventually(t testing.TB, timeout time.Duration, cond func() bool, msg string, args ...any) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		if cond() {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("condition not met after %v: "+msg, append([]any{timeout}, args...)...)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// FreeAddr returns a 127.0.0.1 address with a port that was free a moment ago.
func FreeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

var (
	buildMu    sync.Mutex
	buildCache = map[string]string{}
)

// BinDirEnv names a directory holding this module's commands, built just
// before the tests (make unit builds them with make bins): BuildBinary
// takes a command from there instead of linking it again, since a dozen
// test processes would otherwise each link the same hub and agent.
const BinDirEnv = "OMNI_TEST_BIN_DIR"

// BuildBinary builds the main package pkg (an import path) once per test
// process and returns the path of the binary; a command of this module
// found in $OMNI_TEST_BIN_DIR is used as it is.
func BuildBinary(t testing.TB, pkg string) string {
	t.Helper()
	buildMu.Lock()
	defer buildMu.Unlock()
	if p, ok := buildCache[pkg]; ok {
		return p
	}
	if dir := os.Getenv(BinDirEnv); dir != "" && strings.HasPrefix(pkg, "github.com/omnisync/omnisync/") {
		p := filepath.Join(dir, filepath.Base(pkg))
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			buildCache[pkg] = p
			return p
		}
	}
	dir, err := os.MkdirTemp("", "omni-bin-")
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, filepath.Base(pkg))
	if runtime.GOOS == "windows" {
		out += ".exe"
	}
	cmd := exec.Command("go", "build", "-o", out, pkg)
	cmd.Stderr = os.Stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("build %s: %v", pkg, err)
	}
	buildCache[pkg] = out
	return out
}
