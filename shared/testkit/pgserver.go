package testkit

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// PGServer is a PostgreSQL server of the test's own, in a fresh data
// directory on a free port, so a test can crash and restart the database
// under the hub (Crash, Start) without touching the machine's shared server
// that other tests use at the same time.
type PGServer struct {
	t       testing.TB
	bin     string // directory of initdb, pg_ctl and postgres
	dir     string // the data directory
	Port    int
	asUser  *user.User // non-nil when running as root: the server runs as postgres
	cmd     *exec.Cmd
	stopped chan struct{}
}

// StartPGServer initialises and starts a private server (trust auth, user
// postgres, database postgres). Without PostgreSQL's server binaries the
// test is skipped, or fails when CI is set.
func StartPGServer(t testing.TB) *PGServer {
	t.Helper()
	bin := pgBinDir()
	if bin == "" {
		if os.Getenv("CI") != "" {
			t.Fatal("PostgreSQL server binaries (initdb, postgres) are required in CI")
		}
		t.Skip("PostgreSQL server binaries not found")
	}
	s := &PGServer{t: t, bin: bin}
	dir, err := os.MkdirTemp("", "omni-pg-*")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	s.dir = filepath.Join(dir, "data")
	// initdb and postgres refuse to run as root; there they run as the
	// postgres account the Debian package made.
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			t.Fatalf("running as root needs the postgres account: %v", err)
		}
		s.asUser = u
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		if err := os.Chown(dir, uid, gid); err != nil {
			t.Fatal(err)
		}
	}
	out, err := s.command("initdb", "-D", s.dir, "-U", "postgres", "--auth=trust", "--no-sync", "-E", "UTF8").CombinedOutput()
	if err != nil {
		t.Fatalf("initdb: %v\n%s", err, out)
	}
	_, port, _ := net.SplitHostPort(FreeAddr(t))
	s.Port, _ = strconv.Atoi(port)
	s.Start()
	t.Cleanup(s.stop)
	return s
}

// DSN is the server's connection string for the postgres database.
func (s *PGServer) DSN() string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", s.Port)
}

// Start starts the server (again, after Crash) and waits until it accepts
// connections, crash recovery included.
func (s *PGServer) Start() {
	s.t.Helper()
	// After a Crash, a killed backend may still be leaving the kernel with
	// the old shared memory attached; the server then refuses to start
	// ("pre-existing shared memory block ... is still in use") until it
	// has gone, which on a busy machine can take a moment.
	for range 50 {
		if s.start() {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	s.t.Fatalf("postgres kept refusing to start while a killed server's shared memory was in use:\n%s", s.logTail())
}

// start starts the server once and waits until it accepts connections. It
// returns false if the server refused to start because a killed server's
// shared memory is still in use, and fails the test on anything else.
func (s *PGServer) start() bool {
	s.t.Helper()
	s.cmd = s.command("postgres", "-D", s.dir, "-p", strconv.Itoa(s.Port), "-h", "127.0.0.1", "-k", filepath.Dir(s.dir),
		"-c", "max_connections=200", "-c", "shared_buffers=64MB")
	// Its own process group, so Crash takes the backends down with it.
	s.cmd.SysProcAttr.Setpgid = true
	logPath := filepath.Join(filepath.Dir(s.dir), "server.log")
	before := int64(0)
	if fi, err := os.Stat(logPath); err == nil {
		before = fi.Size()
	}
	log, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		s.t.Fatal(err)
	}
	s.cmd.Stdout, s.cmd.Stderr = log, log
	if err := s.cmd.Start(); err != nil {
		log.Close()
		s.t.Fatalf("start postgres: %v", err)
	}
	stopped := make(chan struct{})
	s.stopped = stopped
	go func() { _ = s.cmd.Wait(); log.Close(); close(stopped) }()
	deadline := time.Now().Add(60 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		c, err := pgx.Connect(ctx, s.DSN())
		cancel()
		if err == nil {
			c.Close(context.Background())
			return true
		}
		select {
		case <-stopped:
			s.cmd = nil
			if b, _ := os.ReadFile(logPath); int64(len(b)) > before && bytes.Contains(b[before:], []byte("pre-existing shared memory block")) {
				return false
			}
			s.t.Fatalf("postgres exited while starting: %s", s.logTail())
		default:
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("postgres not accepting connections: %v\n%s", err, s.logTail())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Crash kills the server and every backend with SIGKILL, as a power cut
// of the database host would, short of losing what the OS had written. The
// next Start runs crash recovery.
func (s *PGServer) Crash() {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
	<-s.stopped
	// Backends that were mid-fork may outlive the postmaster briefly;
	// the next start refuses while they hold the shared memory.
	_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
	s.cmd = nil
}

func (s *PGServer) stop() {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	_ = s.cmd.Process.Signal(syscall.SIGINT) // fast shutdown
	select {
	case <-s.stopped:
	case <-time.After(20 * time.Second):
		s.Crash()
	}
	s.cmd = nil
}

func (s *PGServer) logTail() string {
	b, _ := os.ReadFile(filepath.Join(filepath.Dir(s.dir), "server.log"))
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}

// command runs a PostgreSQL binary, as the postgres account when root.
func (s *PGServer) command(name string, args ...string) *exec.Cmd {
	cmd := exec.Command(filepath.Join(s.bin, name), args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{}
	if s.asUser != nil {
		uid, _ := strconv.Atoi(s.asUser.Uid)
		gid, _ := strconv.Atoi(s.asUser.Gid)
		cmd.SysProcAttr.Credential = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
		cmd.Env = append(os.Environ(), "HOME="+s.asUser.HomeDir)
		cmd.Dir = filepath.Dir(s.dir)
	}
	return cmd
}

// pgBinDir finds the server binaries: Debian keeps them per major version
// under /usr/lib/postgresql; elsewhere they are on PATH.
func pgBinDir() string {
	if m, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb"); len(m) > 0 {
		sort.Slice(m, func(i, j int) bool { return versionOf(m[i]) > versionOf(m[j]) })
		return filepath.Dir(m[0])
	}
	if p, err := exec.LookPath("initdb"); err == nil {
		if _, err := exec.LookPath("postgres"); err == nil {
			return filepath.Dir(p)
		}
	}
	return ""
}

func versionOf(path string) int {
	parts := strings.Split(path, string(filepath.Separator))
	for i, p := range parts {
		if p == "postgresql" && i+1 < len(parts) {
			v, _ := strconv.Atoi(parts[i+1])
			return v
		}
	}
	return 0
}
