package main

import (
	"bytes"
	"encoding/json"
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
	"github.com/omnisync/omnisync/cloud/internal/loadgen"
	"github.com/omnisync/omnisync/shared/events"
	"github.com/omnisync/omnisync/shared/testkit"
)

func runLoadgen(t *testing.T, hubURL string, args ...string) (string, int) {
	t.Helper()
	var out bytes.Buffer
	cmd := loadgenCmd(&out, &hubConn{url: hubURL, token: testToken})
	cmd.SetArgs(args)
	cmd.SetOut(&out)
	cmd.SetErr(&out)
	cmd.SilenceErrors, cmd.SilenceUsage = true, true
	cmd.SetFlagErrorFunc(flagUsageError)
	err := cmd.Execute()
	if err != nil {
		out.WriteString("error: " + err.Error() + "\n")
	}
	return out.String(), exitCode(err)
}

// Ensure that `omnictl loadgen` drives a real agent (found by its URL
// alone), records what it accepted, and that `omnictl loadgen verify` finds
// the real hub's books equal to the oracle's — and fails, naming the
// differences and the double-applied event, when the record misses one.
func TestLoadgen(t *testing.T) {
	nats := testkit.StartNATS(t)
	cfg := hub.Defaults()
	cfg.DataDir, cfg.NATSURL, cfg.HTTP, cfg.LogLevel = t.TempDir(), nats.URL(), "127.0.0.1:0", "error"
	cfg.BootstrapToken = testToken
	h := runHub(t, cfg)
	hubURL := "http://" + h.HTTPAddr()

	addr := testkit.FreeAddr(t)
	agent := exec.Command(testkit.BuildBinary(t, "github.com/omnisync/omnisync/edge/cmd/omni-edge"),
		"--store", "CTL-1", "--device", "till-1", "--nats-url", nats.URL(), "--data-dir", t.TempDir(),
		"--http", addr, "--heartbeat-every", "300ms", "--log-level", "warn")
	if err := agent.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = agent.Process.Signal(syscall.SIGKILL); _ = agent.Wait() })
	testkit.Eventually(t, 30*time.Second, func() bool {
		resp, err := http.Get("http://" + addr + "/healthz")
		if err == nil {
			resp.Body.Close()
		}
		return err == nil && resp.StatusCode == http.StatusOK
	}, "agent up")

	record := filepath.Join(t.TempDir(), "accepted.jsonl")
	out, code := runLoadgen(t, hubURL, "--agents", "http://"+addr, "--events", "400", "--seed", "3",
		"--catalog", "../../internal/catalog/testdata/sample-catalog.jsonl", "--record", record, "--every", "50ms")
	t.Logf("loadgen:\n%s", out)
	if code != 0 || !strings.Contains(out, "400 events accepted") || !regexpMatch(`CTL-1\s+till-1\s+400\s+400`, out) {
		t.Fatalf("exit %d", code)
	}
	out, code = runLoadgen(t, hubURL, "verify", "--record", record, "--timeout", "20s")
	t.Logf("verify:\n%s", out)
	if code != 0 || !regexpMatch(`differences\s+0\n`, out) || !regexpMatch(`events applied\s+400\n`, out) ||
		!regexpMatch(`lost\s+0\n`, out) || !regexpMatch(`double-applied\s+0\n`, out) {
		t.Fatalf("verify: exit %d", code)
	}

	// A record missing an accepted sale: the hub applied one more event
	// than the record says, and its books differ.
	f, err := os.Open(record)
	if err != nil {
		t.Fatal(err)
	}
	envs, err := loadgen.ReadRecord(f)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	// Drop a sale no later count covers (a count supersedes the deltas
	// stamped before it, so dropping one of those changes no books).
	drop := -1
	for i, e := range envs {
		if e.Kind != events.KindSale {
			continue
		}
		m, _ := events.DecodeStockMove(e.Data)
		covered := false
		for _, c := range envs {
			if c.Kind != events.KindCount || c.Stamp().Compare(e.Stamp()) < 0 {
				continue
			}
			cm, _ := events.DecodeStockMove(c.Data)
			for _, l := range m.Lines {
				for _, cl := range cm.Lines {
					covered = covered || (cl.SKU == l.SKU && cm.Location == m.Location)
				}
			}
		}
		if !covered {
			drop = i
			break
		}
	}
	if drop < 0 {
		t.Fatal("every sale is covered by a later count")
	}
	var short bytes.Buffer
	for i, e := range envs {
		if i != drop {
			b, _ := json.Marshal(e)
			short.Write(append(b, '\n'))
		}
	}
	shortFile := filepath.Join(t.TempDir(), "short.jsonl")
	if err := os.WriteFile(shortFile, short.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	out, code = runLoadgen(t, hubURL, "verify", "--record", shortFile, "--timeout", "500ms")
	if code != 1 || !strings.Contains(out, "difference: ") || !regexpMatch(`double-applied\s+1\n`, out) {
		t.Fatalf("verify of a short record: exit %d, output:\n%s", code, out)
	}
}

func TestLoadgenFlags(t *testing.T) {
	targets, err := parseAgents([]string{"http://127.0.0.1:7071", "S2=http://h:7072/", "S3/pos-9=https://h"})
	if err != nil || len(targets) != 3 || targets[0] != (loadgen.Target{URL: "http://127.0.0.1:7071"}) ||
		targets[1] != (loadgen.Target{Store: "S2", URL: "http://h:7072/"}) || targets[2] != (loadgen.Target{Store: "S3", Device: "pos-9", URL: "https://h"}) {
		t.Fatalf("%+v %v", targets, err)
	}
	if _, err := parseAgents([]string{"S1=127.0.0.1:7071"}); err == nil {
		t.Fatal("a URL without a scheme")
	}
	if w, err := parseWindow("1:30s-1m"); err != nil || w != (loadgen.Window{Target: 1, Start: 30 * time.Second, End: time.Minute}) {
		t.Fatalf("%+v %v", w, err)
	}
	for _, bad := range []string{"30s-1m", "x:1s-2s", "0:1s", "0:1s-x"} {
		if _, err := parseWindow(bad); err == nil {
			t.Errorf("window %q accepted", bad)
		}
	}
	if m, err := parseMix("sale=9, scan=1"); err != nil || m != (loadgen.Mix{Sale: 9, Scan: 1}) {
		t.Fatalf("%+v %v", m, err)
	}
	for _, bad := range []string{"sale", "sales=1", "sale=-1", "sale=0"} {
		if _, err := parseMix(bad); err == nil {
			t.Errorf("mix %q accepted", bad)
		}
	}
	for _, args := range [][]string{{}, {"--agents", "nope"}, {"--agents", "http://h", "--offline", "0"}, {"--agents", "http://h", "--zipf", "1"}, {"verify"}, {"extra"}} {
		if out, code := runLoadgen(t, "http://127.0.0.1:1", args...); code != 2 {
			t.Errorf("%v: exit %d, want 2: %s", args, code, out)
		}
	}
}

func regexpMatch(pattern, s string) bool { return regexp.MustCompile(pattern).MatchString(s) }
