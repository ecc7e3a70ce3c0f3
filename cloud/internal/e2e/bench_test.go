package e2e

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/omnisync/omnisync/shared/testkit"
)

// BenchmarkEdgeToHub measures the whole uplink path on a backlog: agents
// whose outboxes hold b.N events in total (posted while offline) are pointed
// at NATS and the hub, and the clock runs until every event is applied and
// confirmed back to its outbox. It reports applied events/s and the agents'
// resident memory idle and while draining.
//
//	go test -run '^$' -bench EdgeToHub -benchtime 200000x ./cloud/internal/e2e/
func BenchmarkEdgeToHub(b *testing.B) {
	for _, n := range []int{1, 4} {
		b.Run(fmt.Sprintf("agents=%d", n), func(b *testing.B) { benchEdgeToHub(b, n) })
	}
}

func benchEdgeToHub(b *testing.B, nAgents int) {
	total := max(b.N, 20000)
	per := total / nAgents
	ns := testkit.StartNATS(b)
	h := startHub(b, ns.URL(), os.Getenv("OMNI_BENCH_DB"))

	offline := "nats://127.0.0.1:1"
	agents := make([]*agent, nAgents)
	for i := range agents {
		agents[i] = startAgent(b, fmt.Sprintf("S%d", i+1), "pos-1", offline)
	}
	// Fill the outboxes while the agents cannot reach NATS.
	line := saleBody("SKU-1", 1)
	batch := "[" + strings.Repeat(line+",", 499) + line + "]"
	for _, a := range agents {
		for sent := 0; sent < per; sent += 500 {
			if code, m, err := post(a.URL, batch); err != nil || code != 202 {
				b.Fatalf("prefill: %d %v %v", code, m, err)
			}
		}
	}
	idle := rssMB(agents[0])
	for _, a := range agents {
		a.Kill()
		a.setArg("--nats-url", ns.URL())
	}

	b.ResetTimer()
	start := time.Now()
	for _, a := range agents {
		a.Start()
	}
	peak := 0.0
	deadline := time.Now().Add(10 * time.Minute)
	for {
		done := true
		for _, a := range agents {
			if s := status(b, a); s.OutboxDepth != 0 || s.AckedSeq == 0 {
				done = false
			}
		}
		peak = max(peak, rssMB(agents[0]))
		if done {
			break
		}
		if time.Now().After(deadline) {
			b.Fatal("agents did not drain")
		}
		time.Sleep(20 * time.Millisecond)
	}
	elapsed := time.Since(start)
	b.StopTimer()
	applied := int64(0)
	for _, a := range agents {
		applied += int64(status(b, a).AckedSeq)
	}
	if got := onHand(b, h.URL, "SKU-1")["S1"] + onHandOthers(b, h.URL, nAgents); got != -applied {
		b.Fatalf("books: %d units sold, want %d", -got, applied)
	}
	time.Sleep(2 * time.Second)
	b.ReportMetric(float64(applied)/elapsed.Seconds(), "events/s")
	b.ReportMetric(elapsed.Seconds(), "drain-s")
	b.ReportMetric(idle, "agent-idle-RSS-MB")
	b.ReportMetric(peak, "agent-drain-RSS-MB")
	b.ReportMetric(rssMB(agents[0]), "agent-after-RSS-MB")
	b.ReportMetric(0, "ns/op")
}

// rssMB reads the resident set size of a's process.
func rssMB(a *agent) float64 {
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
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, _ := strconv.ParseFloat(f[1], 64)
			return kb / 1024
		}
	}
	return 0
}

// onHandOthers sums SKU-1 on hand over stores S2..Sn.
func onHandOthers(b testing.TB, hubURL string, n int) int64 {
	var sum int64
	got := onHand(b, hubURL, "SKU-1")
	for i := 2; i <= n; i++ {
		sum += got[fmt.Sprintf("S%d", i)]
	}
	return sum
}
