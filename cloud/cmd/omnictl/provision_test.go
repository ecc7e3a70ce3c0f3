package main

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/omnisync/omnisync/cloud/internal/hub"
	"github.com/omnisync/omnisync/shared/testkit"
)

// Ensure that the unit omnictl writes is the one deploy/systemd ships.
func TestProvisionUnitIsShipped(t *testing.T) {
	shipped, err := os.ReadFile("../../../deploy/systemd/omni-edge.service")
	if err != nil {
		t.Fatal(err)
	}
	if string(shipped) != agentUnit {
		t.Fatal("cloud/cmd/omnictl/omni-edge.service differs from deploy/systemd/omni-edge.service: copy it over")
	}
}

// Ensure that `omnictl stores provision` writes what a store's machine
// needs, and that an agent started the way the written unit starts it,
// with the written config and credentials, syncs a sale to the hub whose
// embedded NATS server admitted the store.
func TestProvision(t *testing.T) {
	cfg := hub.Defaults()
	cfg.DataDir, cfg.NATSURL, cfg.NATSListen, cfg.HTTP, cfg.LogLevel = t.TempDir(), "", "127.0.0.1:0", "127.0.0.1:0", "error"
	cfg.BootstrapToken = testToken
	h := runHub(t, cfg)

	// The files go where the store's machine would keep them; here a
	// directory of the test's, named by --install-dir.
	dir := t.TempDir()
	out, code := omnictl(t, "", "stores", "provision", "S42", "--out", dir, "--install-dir", dir,
		"--hub-data-dir", cfg.DataDir, "--nats-url", h.NATSURL(), "--device", "till-7", "--nearby", "S41,S43")
	t.Logf("provision:\n%s", out)
	if code != 0 {
		t.Fatalf("exit %d", code)
	}
	for name, mode := range map[string]os.FileMode{"S42.nk": 0o600, "agent.yaml": 0o640, "omni-edge.service": 0o644} {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != mode {
			t.Errorf("%s: mode %v, want %v", name, fi.Mode().Perm(), mode)
		}
	}
	seed, _ := os.ReadFile(filepath.Join(dir, "S42.nk"))
	if strings.Contains(out, strings.TrimSpace(lastLineOf(string(seed)))) {
		t.Error("the seed was printed")
	}
	if out, code := omnictl(t, "", "stores", "provision", "S42", "--out", dir, "--hub-data-dir", cfg.DataDir, "--nats-url", h.NATSURL()); code == 0 {
		t.Errorf("a second provision into the same directory succeeded:\n%s", out)
	}
	if _, code := omnictl(t, "", "stores", "provision", "S43", "--out", t.TempDir(), "--nats-url", h.NATSURL()); code != 2 {
		t.Errorf("provision without a NATS configuration: exit %d, want 2", code)
	}

	// Start the agent exactly as the unit does: its ExecStart arguments.
	// What only the store's machine has (its state directory, the
	// installed profiles) comes through the environment, as the unit's
	// Environment= does.
	unit, _ := os.ReadFile(filepath.Join(dir, "omni-edge.service"))
	m := regexp.MustCompile(`(?m)^ExecStart=\S+ (.*)$`).FindSubmatch(unit)
	if m == nil {
		t.Fatalf("no ExecStart in the unit:\n%s", unit)
	}
	args := strings.Fields(string(m[1]))
	if want := []string{"--config", filepath.Join(dir, "agent.yaml")}; strings.Join(args, " ") != strings.Join(want, " ") {
		t.Fatalf("ExecStart arguments %q, want %q", args, want)
	}
	addr := testkit.FreeAddr(t)
	profiles, _ := filepath.Abs("../../../firmware-configs")
	agent := exec.Command(testkit.BuildBinary(t, "github.com/omnisync/omnisync/edge/cmd/omni-edge"), args...)
	agent.Env = append(os.Environ(), "OMNI_DATA_DIR="+t.TempDir(), "OMNI_HTTP="+addr, "OMNI_PROFILES="+profiles, "OMNI_HEARTBEAT_EVERY=300ms")
	var logs strings.Builder
	agent.Stdout, agent.Stderr = &logs, &logs
	if err := agent.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = agent.Process.Signal(syscall.SIGTERM)
		_ = agent.Wait()
		if t.Failed() {
			t.Logf("agent:\n%s", logs.String())
		}
	})
	testkit.Eventually(t, 30*time.Second, func() bool {
		resp, err := http.Post("http://"+addr+"/v1/events", "application/json",
			strings.NewReader(`{"kind":"sale","data":{"lines":[{"sku":"SKU-PROV","qty":3}]}}`))
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusAccepted
	}, "the agent accepting a sale")
	testkit.Eventually(t, 30*time.Second, func() bool {
		var r struct {
			Stores []struct {
				Store   string
				Devices []struct {
					Device        string
					Connected     bool
					EventsApplied int64 `json:"events_applied"`
				}
			}
		}
		req, _ := http.NewRequest("GET", "http://"+h.HTTPAddr()+"/v1/stores", nil)
		req.Header.Set("Authorization", "Bearer "+testToken)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		if json.NewDecoder(resp.Body).Decode(&r) != nil {
			return false
		}
		for _, s := range r.Stores {
			for _, d := range s.Devices {
				if s.Store == "S42" && d.Device == "till-7" && d.Connected && d.EventsApplied == 1 {
					return true
				}
			}
		}
		return false
	}, "the provisioned agent's sale applied at the hub and the agent connected")
}

func lastLineOf(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}

// runHub runs a hub with cfg until the test ends and returns it ready.
func runHub(t *testing.T, cfg hub.Config) *hub.Hub {
	t.Helper()
	h, err := hub.New(cfg, slog.New(slog.DiscardHandler), "test")
	if err != nil {
		t.Fatal(err)
	}
	h.SetSetupOutput(io.Discard)
	ctx, cancel := context.WithCancel(context.Background())
	var runErr error
	hubDone := make(chan struct{})
	go func() { runErr = h.Run(ctx); close(hubDone) }()
	t.Cleanup(func() { cancel(); <-hubDone })
	select {
	case <-h.Ready():
	case <-hubDone:
		t.Fatalf("hub: %v", runErr)
	}
	return h
}
