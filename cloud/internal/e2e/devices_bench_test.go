package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/creack/pty"

	"github.com/omnisync/omnisync/shared/testkit"
)

// BenchmarkAgentFourDevicesIdle measures an agent with four devices attached
// (two scanners, two polled RFID readers, each on its own pseudo-terminal)
// and nothing being scanned: CPU use over ten seconds and resident memory.
//
//	go test -run '^$' -bench AgentFourDevicesIdle -benchtime 1x ./cloud/internal/e2e/
func BenchmarkAgentFourDevicesIdle(b *testing.B) {
	ns := testkit.StartNATS(b)
	startHub(b, ns.URL(), "")
	dir := b.TempDir()
	var yaml strings.Builder
	yaml.WriteString("devices:\n")
	for i, prof := range []string{"generic-line-scanner", "stx-etx-scanner", "uhf-a0-r2000", "uhf-bb-m100"} {
		m, s, err := pty.Open()
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { m.Close(); s.Close() })
		go func() { // a reader that swallows the polls, like an idle reader
			buf := make([]byte, 256)
			for {
				if _, err := m.Read(buf); err != nil {
					return
				}
			}
		}()
		link := filepath.Join(dir, fmt.Sprintf("dev-%d", i))
		if err := os.Symlink(s.Name(), link); err != nil {
			b.Fatal(err)
		}
		fmt.Fprintf(&yaml, "  - name: dev-%d\n    port: %s\n    profile: %s\n", i, link, prof)
		if strings.HasPrefix(prof, "uhf") {
			yaml.WriteString("    zones:\n      - {name: room-1, antennas: [1]}\n      - {name: room-2, antennas: [2]}\n")
		}
	}
	cfg := filepath.Join(dir, "agent.yaml")
	if err := os.WriteFile(cfg, []byte(yaml.String()), 0o600); err != nil {
		b.Fatal(err)
	}
	profiles, _ := filepath.Abs("../../../firmware-configs")
	a := startAgent(b, "S1", "gateway-1", ns.URL(), "--config", cfg, "--profiles", profiles, "--heartbeat-every", "5s")
	time.Sleep(3 * time.Second)
	b.ResetTimer()
	c0, t0 := cpuSeconds(a), time.Now()
	time.Sleep(10 * time.Second)
	c1, t1 := cpuSeconds(a), time.Now()
	b.StopTimer()
	b.ReportMetric(100*(c1-c0)/t1.Sub(t0).Seconds(), "cpu-%")
	b.ReportMetric(rssMB(a), "RSS-MB")
	b.ReportMetric(0, "ns/op")
}

// cpuSeconds is the user+system CPU time of a's process.
func cpuSeconds(a *agent) float64 {
	a.mu.Lock()
	cmd := a.cmd
	a.mu.Unlock()
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", cmd.Process.Pid))
	if err != nil {
		return 0
	}
	// Fields after the command name (which may hold spaces) start at ')'.
	f := strings.Fields(string(raw[strings.LastIndexByte(string(raw), ')')+2:]))
	ut, _ := strconv.ParseFloat(f[11], 64)
	st, _ := strconv.ParseFloat(f[12], 64)
	return (ut + st) / 100 // clock ticks (USER_HZ is 100 on Linux)
}
