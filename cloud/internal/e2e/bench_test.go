package e2e

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/omnisync/omnisync/cloud/internal/hub"
	"github.com/omnisync/omnisync/shared/events"
	"github.com/omnisync/omnisync/shared/testkit"
)

// BenchmarkEdgeToHub measures the whole uplink path on a backlog: agents
// of stores that have counted their stock, whose outboxes hold b.N sales
// in total (posted while offline), are pointed at NATS and the hub, and
// the clock runs until every event is applied and confirmed back to its
// outbox. It reports applied events/s and the agents'
// resident memory idle and while draining.
//
//	go test -run '^$' -bench EdgeToHub -benchtime 200000x ./cloud/internal/e2e/
//
// agents=N runs N agents with their default uplink (batch messages);
// one-event-per-message runs one agent with --uplink-batch 1, the
// JetStream message rate the raw `nats bench` figure compares with.
func BenchmarkEdgeToHub(b *testing.B) {
	for _, n := range []int{1, 4} {
		b.Run(fmt.Sprintf("agents=%d", n), func(b *testing.B) { benchEdgeToHub(b, n) })
	}
	b.Run("one-event-per-message", func(b *testing.B) { benchEdgeToHub(b, 1, "--uplink-batch", "1") })
}

// benchSKUs is how many SKUs the stores' baskets are drawn from.
const benchSKUs = 2100

// countStock counts every bench SKU at store, ample for any run, through
// a stocktake device of the store, and waits until the hub has applied it.
func countStock(b *testing.B, natsURL, store string) {
	b.Helper()
	a := startAgent(b, store, "stocktake", natsURL)
	defer a.Kill()
	for start := 0; start < benchSKUs; start += events.MaxLines {
		var lines []string
		for k := start; k < min(start+events.MaxLines, benchSKUs); k++ {
			lines = append(lines, fmt.Sprintf(`{"sku":"SKU-%05d","qty":1000000}`, k))
		}
		if code, m, err := post(a.URL, `{"kind":"count","data":{"lines":[`+strings.Join(lines, ",")+`]}}`); err != nil || code != 202 {
			b.Fatalf("stock count at %s: %d %v %v", store, code, m, err)
		}
	}
	waitDrained(b, a, time.Minute)
}

func benchEdgeToHub(b *testing.B, nAgents int, agentArgs ...string) {
	total := max(b.N, 20000)
	per := total / nAgents
	ns := testkit.StartNATS(b)
	// OMNI_BENCH_DB=postgres runs the hub on a fresh PostgreSQL schema.
	db, pgApp := "", ""
	if os.Getenv("OMNI_BENCH_DB") == "postgres" {
		// The server processes of the hub's connections are found by
		// this name, to count their CPU time too.
		pgApp = fmt.Sprintf("omnibench-%d", os.Getpid())
		db = testkit.Postgres(b) + "&application_name=" + pgApp
	}
	// OMNI_BENCH_HUB_BATCH tries another hub --batch.
	h := startHubWith(b, ns.URL(), func(c *hub.Config) {
		c.DB = db
		if n, err := strconv.Atoi(os.Getenv("OMNI_BENCH_HUB_BATCH")); err == nil && n > 0 {
			c.Batch = n
		}
	})

	// A fresh agent, connected and with nothing to do: the idle figure.
	quiet := startAgent(b, "S-idle", "pos-1", ns.URL())
	time.Sleep(3 * time.Second)
	idle := rssMB(quiet)
	quiet.Kill()

	// Each store has counted its stock before it went offline: a store
	// that catches up has been trading, its positions exist at the hub
	// and it sells what it has. Without the count every sale oversold
	// its position (a phantom conflict per position, rewritten by every
	// batch) and the first batches created the positions.
	for i := range nAgents {
		countStock(b, ns.URL(), fmt.Sprintf("S%d", i+1))
	}
	counted := appliedB(b, h.URL)

	offline := "nats://127.0.0.1:1"
	agents := make([]*agent, nAgents)
	for i := range agents {
		agents[i] = startAgent(b, fmt.Sprintf("S%d", i+1), "pos-1", offline, agentArgs...)
	}
	// Fill the outboxes while the agents cannot reach NATS: baskets of 1-3
	// lines over 2,000 SKUs, as a store sells, not one hot SKU.
	rng := rand.New(rand.NewPCG(7, 7))
	for _, a := range agents {
		for sent := 0; sent < per; sent += 500 {
			var parts []string
			for i := 0; i < 500; i++ {
				n := 1 + rng.IntN(3)
				var lines []string
				for j := 0; j < n; j++ {
					lines = append(lines, fmt.Sprintf(`{"sku":"SKU-%05d","qty":%d}`, j*benchSKUs/3+rng.IntN(benchSKUs/3), 1+rng.IntN(2)))
				}
				parts = append(parts, `{"kind":"sale","data":{"lines":[`+strings.Join(lines, ",")+`]}}`)
			}
			if code, m, err := post(a.URL, "["+strings.Join(parts, ",")+"]"); err != nil || code != 202 {
				b.Fatalf("prefill: %d %v %v", code, m, err)
			}
		}
	}
	backlog := rssMB(agents[0])
	for _, a := range agents {
		a.Kill()
		a.setArg("--nats-url", ns.URL())
	}
	// OMNI_BENCH_AGENT_CPUPROFILE=file profiles the first agent's drain.
	agentProfile := os.Getenv("OMNI_BENCH_AGENT_CPUPROFILE")
	if agentProfile != "" {
		agents[0].extraEnv = append(agents[0].extraEnv, "OMNI_EDGE_CPUPROFILE="+agentProfile)
	}

	b.ResetTimer()
	pgStart := pgServerCPU(b, db, pgApp, nil)
	stopProfile := drainProfile(b)
	selfCPU := processCPU()
	start := time.Now()
	for _, a := range agents {
		a.Start()
	}
	peak, peakAnon := 0.0, 0.0
	deadline := time.Now().Add(10 * time.Minute)
	for {
		done := true
		for _, a := range agents {
			if s := status(b, a); s.OutboxDepth != 0 || s.AckedSeq == 0 {
				done = false
			}
		}
		peak = max(peak, rssMB(agents[0]))
		peakAnon = max(peakAnon, anonMB(agents[0]))
		if done {
			break
		}
		if time.Now().After(deadline) {
			b.Fatal("agents did not drain")
		}
		time.Sleep(20 * time.Millisecond)
	}
	elapsed := time.Since(start)
	hubCPU := processCPU() - selfCPU
	stopProfile()
	var pgCPU time.Duration
	for pid, c := range pgServerCPU(b, db, pgApp, pgStart) {
		pgCPU += c - pgStart[pid]
	}
	var agentCPU time.Duration
	for _, a := range agents {
		agentCPU += a.cpu()
	}
	b.StopTimer()
	applied := int64(0)
	for _, a := range agents {
		applied += int64(status(b, a).AckedSeq)
	}
	if got := appliedB(b, h.URL) - counted; got != applied {
		b.Fatalf("hub applied %d events, outboxes confirmed %d", got, applied)
	}
	time.Sleep(2 * time.Second)
	b.ReportMetric(float64(applied)/elapsed.Seconds(), "events/s")
	b.ReportMetric(elapsed.Seconds(), "drain-s")
	b.ReportMetric(idle, "agent-idle-RSS-MB")
	b.ReportMetric(backlog, "agent-backlog-RSS-MB")
	b.ReportMetric(peak, "agent-drain-RSS-MB")
	b.ReportMetric(peakAnon, "agent-drain-anon-MB")
	b.ReportMetric(rssMB(agents[0]), "agent-after-RSS-MB")
	// Where the cores went while draining: this process runs the hub and
	// NATS; the agents are processes of their own.
	b.ReportMetric(hubCPU.Seconds(), "hub+nats-cpu-s")
	b.ReportMetric(agentCPU.Seconds(), "agents-cpu-s")
	if pgApp != "" {
		// The hub's PostgreSQL server processes alive at the end (a
		// connection closed meanwhile is missed).
		b.ReportMetric(pgCPU.Seconds(), "pg-cpu-s")
	}
	// Stock positions the hub published to the stores while draining.
	b.ReportMetric(hubMetric(b, h.URL, "omni_hub_downsync_published_total"), "downsync-docs")
	b.ReportMetric(0, "ns/op")
	if agentProfile != "" {
		// The agent writes its profile when it stops, not when killed.
		agents[0].stop()
	}
}

// drainProfile profiles this process (the hub and NATS) into the file
// OMNI_BENCH_HUB_CPUPROFILE names, if any, until the returned function is
// called: -test.cpuprofile would also take in the prefill. (The two cannot
// run together.)
func drainProfile(b *testing.B) func() {
	path := os.Getenv("OMNI_BENCH_HUB_CPUPROFILE")
	if path == "" {
		return func() {}
	}
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		b.Fatal(err)
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}
}

// hubMetric reads one unlabelled sample from the hub's /metrics.
func hubMetric(b *testing.B, hubURL, name string) float64 {
	resp, err := httpClient.Get(hubURL + "/metrics")
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	for _, l := range strings.Split(string(raw), "\n") {
		if v, ok := strings.CutPrefix(l, name+" "); ok {
			f, _ := strconv.ParseFloat(v, 64)
			return f
		}
	}
	return 0
}

// processCPU is the CPU time this process has used, user and system.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// cpu is the CPU time a's running process has used, user and system.
func (a *agent) cpu() time.Duration {
	a.mu.Lock()
	cmd := a.cmd
	a.mu.Unlock()
	if cmd == nil {
		return 0
	}
	return pidCPU(cmd.Process.Pid)
}

// pgServerCPU returns the CPU time of each PostgreSQL server process whose
// connection is named app (the hub's), by pid; nothing without app. The
// server must run on this machine. Pids in also are read too, so that one
// whose connection closed since is still counted (as 0).
func pgServerCPU(b *testing.B, dsn, app string, also map[int]time.Duration) map[int]time.Duration {
	out := map[int]time.Duration{}
	if app == "" {
		return out
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, "SELECT pid FROM pg_stat_activity WHERE application_name = $1 AND pid <> pg_backend_pid()", app)
	if err != nil {
		b.Fatal(err)
	}
	pids, err := pgx.CollectRows(rows, pgx.RowTo[int32])
	if err != nil {
		b.Fatal(err)
	}
	for _, pid := range pids {
		out[int(pid)] = pidCPU(int(pid))
	}
	for pid := range also {
		if _, ok := out[pid]; !ok {
			out[pid] = also[pid] // gone: its time since is lost
		}
	}
	return out
}

// pidCPU is the CPU time process pid has used, user and system; 0 when it
// cannot be read.
func pidCPU(pid int) time.Duration {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// Fields after the command name, which sits in parentheses and may hold
	// spaces: utime and stime are the 12th and 13th of them, in clock ticks
	// (100 per second on Linux).
	rest := raw[strings.LastIndexByte(string(raw), ')')+2:]
	f := strings.Fields(string(rest))
	if len(f) < 13 {
		return 0
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * 10 * time.Millisecond
}

// rssMB reads the resident set size of a's process.
func rssMB(a *agent) float64 { return procStatusMB(a, "VmRSS:") }

// anonMB reads the anonymous part of it: the heap and stacks, as opposed to
// pages of the mapped outbox file, which the kernel can reclaim.
func anonMB(a *agent) float64 { return procStatusMB(a, "RssAnon:") }

func procStatusMB(a *agent, field string) float64 {
	a.mu.Lock()
	cmd := a.cmd
	a.mu.Unlock()
	if cmd == nil {
		return 0
	}
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", cmd.Process.Pid))
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(raw), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == field {
			kb, _ := strconv.ParseFloat(f[1], 64)
			return kb / 1024
		}
	}
	return 0
}

// appliedB sums the events the hub applied over every device.
func appliedB(b testing.TB, hubURL string) int64 {
	var st struct {
		Stores []struct {
			Devices []struct {
				EventsApplied int64 `json:"events_applied"`
			} `json:"devices"`
		} `json:"stores"`
	}
	getJSON(b, hubURL+"/v1/stores", &st)
	var n int64
	for _, s := range st.Stores {
		for _, d := range s.Devices {
			n += d.EventsApplied
		}
	}
	return n
}
