package loadgen_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/omnisync/omnisync/cloud/internal/hub"
	"github.com/omnisync/omnisync/cloud/internal/loadgen"
	"github.com/omnisync/omnisync/shared/testkit"
)

// The real parts these tests drive: an embedded NATS server, the hub in
// this process, and omni-edge agents as child processes that can be
// SIGKILLed and started again on the same data (after cloud/internal/e2e's
// harness, kept minimal).

// hubToken is the admin API token the test hubs are bootstrapped with.
const hubToken = "omni_loadgen-test-admin-token-000"

// startHub runs a hub in this process on a SQLite store until the test
// ends, and returns it with an admin token.
func startHub(t testing.TB, natsURL string) loadgen.Hub {
	t.Helper()
	cfg := hub.Defaults()
	cfg.DataDir = t.TempDir()
	cfg.NATSURL = natsURL
	cfg.DB = "sqlite:" + filepath.Join(cfg.DataDir, "hub.db")
	cfg.HTTP = "127.0.0.1:0"
	cfg.LogLevel = "warn"
	cfg.BootstrapToken = hubToken
	h, err := hub.New(cfg, testLogger(t), "test")
	if err != nil {
		t.Fatal(err)
	}
	h.SetSetupOutput(io.Discard)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- h.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	select {
	case <-h.Ready():
	case err := <-done:
		t.Fatalf("hub exited: %v", err)
	case <-time.After(60 * time.Second):
		t.Fatal("hub not ready")
	}
	return loadgen.Hub{URL: "http://" + h.HTTPAddr(), Token: hubToken}
}

// agent is an omni-edge child process.
type agent struct {
	t    testing.TB
	name string
	bin  string
	args []string
	log  *os.File
	URL  string

	mu  sync.Mutex
	cmd *exec.Cmd
}

func startAgent(t testing.TB, store, device, natsURL string) *agent {
	t.Helper()
	addr := testkit.FreeAddr(t)
	f, err := os.Create(filepath.Join(t.TempDir(), store+"-"+device+".log"))
	if err != nil {
		t.Fatal(err)
	}
	a := &agent{
		t: t, name: store + "/" + device, log: f, URL: "http://" + addr,
		bin: testkit.BuildBinary(t, "github.com/omnisync/omnisync/edge/cmd/omni-edge"),
		args: []string{"--store", store, "--device", device, "--nats-url", natsURL, "--data-dir", t.TempDir(),
			"--http", addr, "--heartbeat-every", "300ms", "--log-level", "warn"},
	}
	t.Cleanup(func() {
		a.Kill()
		if t.Failed() {
			b, _ := os.ReadFile(f.Name())
			if len(b) > 4000 {
				b = b[len(b)-4000:]
			}
			t.Logf("%s log (tail):\n%s", a.name, b)
		}
		f.Close()
	})
	a.Start()
	return a
}

// Start starts (or restarts) the agent and waits for its API.
func (a *agent) Start() {
	a.t.Helper()
	a.mu.Lock()
	cmd := exec.Command(a.bin, a.args...)
	cmd.Stdout, cmd.Stderr = a.log, a.log
	if err := cmd.Start(); err != nil {
		a.mu.Unlock()
		a.t.Fatalf("start %s: %v", a.name, err)
	}
	a.cmd = cmd
	go func() { _ = cmd.Wait() }()
	a.mu.Unlock()
	client := &http.Client{Timeout: time.Second}
	testkit.Eventually(a.t, 30*time.Second, func() bool {
		resp, err := client.Get(a.URL + "/healthz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}, "agent %s API up", a.name)
}

// Kill sends SIGKILL (no chance to flush or answer) and waits until the
// process is gone, so its file lock and port are free.
func (a *agent) Kill() {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.cmd == nil {
		return
	}
	_ = a.cmd.Process.Signal(syscall.SIGKILL)
	for i := 0; i < 200 && a.cmd.Process.Signal(syscall.Signal(0)) == nil; i++ {
		time.Sleep(10 * time.Millisecond)
	}
	a.cmd = nil
}

// testLogger sends warnings and errors to the test log until the test ends.
func testLogger(t testing.TB) *slog.Logger { return testkit.Logger(t) }
