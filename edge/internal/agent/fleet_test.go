package agent

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/omnisync/omnisync/shared/testkit"
)

// fleetSize is how many stores TestFleet runs: OMNI_FLEET_STORES (make
// scale: 2000), 100 inside make test.
func fleetSize(t *testing.T) int {
	if v := os.Getenv("OMNI_FLEET_STORES"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			t.Fatalf("OMNI_FLEET_STORES=%q", v)
		}
		return n
	}
	return 100
}

// rssMB reads a process's resident memory.
func rssMB(pid int) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, _ := strconv.ParseFloat(f[1], 64)
			return kb / 1024
		}
	}
	return 0
}

// Ensure that one hub serves a fleet of stores: N real agents (this
// package's code, in one process, each with its own outbox, cache, HTTP API
// and NATS connection) connect to an omni-hub process, heartbeat, sell, and
// every sale is applied; the hub lists every store connected. It reports
// how long the fleet took to connect, the hub's memory and CPU, and the
// agents' memory per store.
//
//	OMNI_FLEET_STORES=2000 go test -run TestFleet -v -timeout 30m ./edge/internal/agent/
func TestFleet(t *testing.T) {
	t.Parallel() // mostly waits on processes and timers
	n := fleetSize(t)
	ns := testkit.StartNATS(t)
	hubBin := testkit.BuildBinary(t, "github.com/omnisync/omnisync/cloud/cmd/omni-hub")
	hubAddr := testkit.FreeAddr(t)
	hubLog, _ := os.Create(filepath.Join(t.TempDir(), "hub.log"))
	const hubToken = "omni_fleet-test-admin-token-0000" // the hub's API needs a token
	hub := exec.Command(hubBin, "--data-dir", t.TempDir(), "--nats-url", ns.URL(), "--http", hubAddr, "--log-level", "warn",
		"--bootstrap-token", hubToken)
	hub.Stdout, hub.Stderr = hubLog, hubLog
	if err := hub.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = hub.Process.Kill(); _ = hub.Wait() })
	hubURL := "http://" + hubAddr
	testkit.Eventually(t, 60*time.Second, func() bool {
		resp, err := http.Get(hubURL + "/healthz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}, "hub up")

	var before runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	selfBefore := rssMB(os.Getpid())

	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	agents := make([]*Agent, n)
	start := time.Now()
	for i := range agents {
		cfg := Defaults()
		cfg.Store, cfg.Device = fmt.Sprintf("F%04d", i), "pos-1"
		cfg.NATSURL, cfg.DataDir, cfg.HTTP = ns.URL(), t.TempDir(), "127.0.0.1:0"
		cfg.HeartbeatEvery = 5 * time.Second
		a, err := New(cfg, nil, "fleet")
		if err != nil {
			t.Fatal(err)
		}
		agents[i] = a
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := a.Run(ctx); err != nil {
				t.Errorf("agent %s: %v", cfg.Store, err)
			}
		}()
	}
	t.Cleanup(func() { cancel(); wg.Wait() })
	for _, a := range agents {
		<-a.Ready()
	}
	ready := time.Since(start)

	// Every store sells two units.
	client := &http.Client{Timeout: 30 * time.Second}
	var sold atomic.Int64
	sem := make(chan struct{}, 32)
	var pw sync.WaitGroup
	for _, a := range agents {
		pw.Add(1)
		sem <- struct{}{}
		go func(url string) {
			defer pw.Done()
			defer func() { <-sem }()
			body := `[{"kind":"sale","data":{"lines":[{"sku":"FLEET-1","qty":1}]}},{"kind":"sale","data":{"lines":[{"sku":"FLEET-2","qty":1}]}}]`
			resp, err := client.Post(url+"/v1/events", "application/json", strings.NewReader(body))
			if err != nil {
				t.Errorf("post: %v", err)
				return
			}
			resp.Body.Close()
			if resp.StatusCode == http.StatusAccepted {
				sold.Add(2)
			}
		}("http://" + a.HTTPAddr())
	}
	pw.Wait()

	type storesView struct {
		Stores []struct {
			Store   string `json:"store"`
			Devices []struct {
				Connected     bool  `json:"connected"`
				EventsApplied int64 `json:"events_applied"`
			} `json:"devices"`
		} `json:"stores"`
	}
	var connected, applied int64
	testkit.Eventually(t, 5*time.Minute, func() bool {
		var v storesView
		req, _ := http.NewRequest(http.MethodGet, hubURL+"/v1/stores", nil)
		req.Header.Set("Authorization", "Bearer "+hubToken)
		resp, err := client.Do(req)
		if err != nil {
			return false
		}
		_ = json.NewDecoder(resp.Body).Decode(&v)
		resp.Body.Close()
		connected, applied = 0, 0
		for _, s := range v.Stores {
			for _, d := range s.Devices {
				if d.Connected {
					connected++
				}
				applied += d.EventsApplied
			}
		}
		return connected == int64(n) && applied == sold.Load()
	}, "%d stores connected and %d sales applied (have %d, %d)", n, sold.Load(), connected, applied)
	all := time.Since(start)

	// Steady state (a minute for a big fleet): heartbeats from every store.
	steady := 6 * time.Second
	if n >= 1000 {
		steady = time.Minute
	}
	cpu0 := procCPU(hub.Process.Pid)
	time.Sleep(steady)
	hubCPU := (procCPU(hub.Process.Pid) - cpu0) / steady.Seconds() * 100
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	self := rssMB(os.Getpid()) - selfBefore
	t.Logf("fleet of %d stores on %d cores: all agents serving after %v; all connected with %d sales applied after %v",
		n, runtime.NumCPU(), ready.Round(time.Millisecond), sold.Load(), all.Round(time.Millisecond))
	t.Logf("hub process: %.0f MB RSS, %.1f%% of a core in steady state (heartbeats every 5s from every store)", rssMB(hub.Process.Pid), hubCPU)
	t.Logf("agents in this process: %.1f MB RSS in all, %.2f MB per store; %d goroutines", self, self/float64(n), runtime.NumGoroutine())
}

// procCPU is a process's user+system CPU seconds.
func procCPU(pid int) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+2:]))
	ut, _ := strconv.ParseFloat(f[11], 64)
	st, _ := strconv.ParseFloat(f[12], 64)
	return (ut + st) / 100 // clock ticks at USER_HZ=100
}
