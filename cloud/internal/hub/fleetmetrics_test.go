package hub_test

import (
	"encoding/json"
	"net/http"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/omnisync/omnisync/shared/subjects"
	"github.com/omnisync/omnisync/shared/syncproto"
	"github.com/omnisync/omnisync/shared/testkit"
)

// Ensure that /metrics reports each device's sync state from its latest
// heartbeat (what the fleet alerts read) and the events consumer's state.
func TestFleetMetrics(t *testing.T) {
	h, nc := startHub(t, "")
	hb, _ := json.Marshal(syncproto.Heartbeat{Store: "S1", Device: "pos-1", Epoch: 1, Backlog: 7, OldestUnackedMS: 90_000, AgentTimeMS: time.Now().UnixMilli()})
	if _, err := nc.Request(subjects.HubSync("S1", "pos-1"), hb, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	device := map[string]string{"store": "S1", "device": "pos-1"}
	var fams map[string]*dto.MetricFamily
	testkit.Eventually(t, 15*time.Second, func() bool {
		fams = scrape(t, "http://"+h.HTTPAddr()+"/metrics")
		return value(fams, "omni_hub_device_backlog", device) == 7
	}, "the device's backlog in /metrics")
	for _, c := range []struct {
		name     string
		labels   map[string]string
		min, max float64
	}{
		{"omni_hub_device_oldest_unacked_seconds", device, 90, 90},
		{"omni_hub_device_last_heartbeat_age_seconds", device, 0, 15},
		{"omni_hub_device_events_applied_total", device, 0, 0},
		{"omni_hub_consumer_pending", nil, 0, 0},
		{"omni_hub_consumer_ack_pending", nil, 0, 0},
		{"omni_hub_apply_errors_total", nil, 0, 0},
		{"omni_hub_stock_redos_total", nil, 0, 0},
		{"omni_hub_metrics_read_errors_total", map[string]string{"source": "fleet"}, 0, 0},
		{"omni_hub_metrics_read_errors_total", map[string]string{"source": "consumer"}, 0, 0},
	} {
		if v := value(fams, c.name, c.labels); v < c.min || v > c.max {
			t.Errorf("%s%v = %v, want %v..%v", c.name, c.labels, v, c.min, c.max)
		}
	}
}

// scrape reads the hub's /metrics with the admin token.
func scrape(t *testing.T, url string) map[string]*dto.MetricFamily {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	req.Header.Set("Authorization", "Bearer "+testToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: %s", resp.Status)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return fams
}

// value returns the sample of family name whose labels include want, or
// -1 when there is none.
func value(fams map[string]*dto.MetricFamily, name string, want map[string]string) float64 {
	f := fams[name]
	if f == nil {
		return -1
	}
next:
	for _, m := range f.GetMetric() {
		have := map[string]string{}
		for _, l := range m.GetLabel() {
			have[l.GetName()] = l.GetValue()
		}
		for k, v := range want {
			if have[k] != v {
				continue next
			}
		}
		switch {
		case m.Gauge != nil:
			return m.GetGauge().GetValue()
		case m.Counter != nil:
			return m.GetCounter().GetValue()
		}
		return -1
	}
	return -1
}
