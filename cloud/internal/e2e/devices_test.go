package e2e

import (
	"bufio"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/creack/pty"

	"github.com/omnisync/omnisync/shared/testkit"
)

// Ensure that a store that lists a scanner in the agent's config file gets
// its scans: on the scan stream, in GET /v1/devices, and as events at the hub.
func TestAgentWithScanner(t *testing.T) {
	t.Parallel()
	ns := testkit.StartNATS(t)
	h := startHub(t, ns.URL(), "")

	master, slave, err := pty.Open()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { master.Close(); slave.Close() })
	dir := t.TempDir()
	link := filepath.Join(dir, "usb-Honeywell_1900-if00")
	if err := os.Symlink(slave.Name(), link); err != nil {
		t.Fatal(err)
	}
	profiles, err := filepath.Abs("../../../firmware-configs")
	if err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "agent.yaml")
	yaml := fmt.Sprintf("devices:\n  - name: scanner-1\n    port: %s\n    profile: generic-line-scanner\n", link)
	if err := os.WriteFile(cfg, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	a := startAgent(t, "S1", "kiosk-1", ns.URL(), "--config", cfg, "--profiles", profiles)

	var devs struct {
		Devices []struct {
			Name, State string
			FramesRead  int64 `json:"frames_read"`
		} `json:"devices"`
	}
	testkit.Eventually(t, 10*time.Second, func() bool {
		getJSON(t, a.URL+"/v1/devices", &devs)
		return len(devs.Devices) == 1 && devs.Devices[0].State == "open"
	}, "scanner open: %+v", devs)

	resp, err := http.Get(a.URL + "/v1/scans/stream")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	time.Sleep(100 * time.Millisecond) // let the stream subscribe
	if _, err := master.Write([]byte("]E09506000134352\r\n")); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(resp.Body)
	found := false
	deadline := time.AfterFunc(10*time.Second, func() { resp.Body.Close() })
	defer deadline.Stop()
	for !found && sc.Scan() {
		found = strings.HasPrefix(sc.Text(), "data: ") && strings.Contains(sc.Text(), `"gtin":"09506000134352"`)
	}
	if !found {
		t.Fatal("scan not on the stream")
	}
	getJSON(t, a.URL+"/v1/devices", &devs)
	if devs.Devices[0].FramesRead != 1 {
		t.Fatalf("devices %+v", devs)
	}
	// The scan and the device's status reach the hub as applied events.
	waitDrained(t, a, 20*time.Second)
	testkit.Eventually(t, 10*time.Second, func() bool { return appliedB(t, h.URL) >= 2 }, "scan and device_status applied at the hub")
	// HQ sees the scanner, connected, under the kiosk in GET /v1/stores.
	var stores struct {
		Stores []struct {
			Store   string
			Devices []struct {
				Device      string
				Peripherals []struct {
					Name, State string
					Connected   bool
					Since       time.Time
				}
			}
		}
	}
	getJSON(t, h.URL+"/v1/stores", &stores)
	found = false
	for _, s := range stores.Stores {
		for _, d := range s.Devices {
			for _, p := range d.Peripherals {
				found = found || (s.Store == "S1" && d.Device == "kiosk-1" && p.Name == "scanner-1" && p.State == "open" && p.Connected && !p.Since.IsZero())
			}
		}
	}
	if !found {
		t.Fatalf("the scanner is not in /v1/stores as connected: %+v", stores)
	}
}
