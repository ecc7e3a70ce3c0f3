package agent

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/omnisync/omnisync/edge/internal/devices"
	"github.com/omnisync/omnisync/shared/testkit"
)

// Ensure that --simulate-fitting-rooms adds a simulated reader whose
// shoppers' items reach the agent through the real serial path: reads,
// scores and an enter, with no NATS at all.
func TestAgent_SimulatedFittingRooms(t *testing.T) {
	cfg := Defaults()
	cfg.Store, cfg.Device, cfg.NATSURL, cfg.DataDir, cfg.HTTP = "S1", "mirror-1", "nats://127.0.0.1:1", t.TempDir(), "127.0.0.1:0"
	cfg.Profiles = filepath.Join(repoRoot(), "firmware-configs")
	cfg.SimulateCatalog = filepath.Join(repoRoot(), "cloud", "internal", "catalog", "testdata", "sample-catalog.jsonl")
	cfg.SimulateFittingRooms = 2
	_, base := runAgent(t, cfg)
	testkit.Eventually(t, 15*time.Second, func() bool {
		var body struct {
			Devices []devices.Status `json:"devices"`
		}
		if get(t, base+"/v1/devices", &body) != 200 || len(body.Devices) != 1 {
			return false
		}
		d := body.Devices[0]
		return d.Name == "fitting-rooms-sim" && d.State == "open" && d.TagReads > 0 && d.Enters > 0 && len(d.Scores) == 2
	}, "simulated shoppers' items read and entered")
}
