package e2e

import (
	"bufio"
	"context"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/omnisync/omnisync/cloud/internal/hub"
	"net/http"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/omnisync/omnisync/cloud/internal/catalog"
	"github.com/omnisync/omnisync/cloud/internal/loadgen"
	"github.com/omnisync/omnisync/shared/testkit"
)

// freezeDuration is how long TestChaosHubFreeze keeps the hub stopped:
// OMNI_CHAOS_FREEZE (make chaos sets 30s), 8s by default inside make test.
// Either is longer than twice the consumer's idle heartbeat (2.5s), the
// stall after which the JetStream client reports the heartbeats missing.
func freezeDuration(t *testing.T) time.Duration {
	return envDuration(t, "OMNI_CHAOS_FREEZE", 8*time.Second)
}

// Freeze stops the process with SIGSTOP, as a long GC pause, a VM being
// migrated or a disk that stops answering would: it keeps its sockets
// and its state but does nothing at all.
func (p *process) Freeze() { p.signal(syscall.SIGSTOP) }

// Thaw resumes a frozen process with SIGCONT.
func (p *process) Thaw() { p.signal(syscall.SIGCONT) }

func (p *process) signal(s syscall.Signal) {
	p.t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil {
		p.t.Fatalf("%s is not running", p.name)
	}
	if err := p.cmd.Process.Signal(s); err != nil {
		p.t.Fatalf("%s: %v: %v", p.name, s, err)
	}
}

// Alive reports whether the process is still running (once it has exited
// and been reaped, signal 0 fails).
func (p *process) Alive() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cmd != nil && p.cmd.Process.Signal(syscall.Signal(0)) == nil
}

// startEmbeddedHubProcess starts omni-hub the way make run does, with its
// own embedded NATS server, and returns it with the NATS URL agents use
// and a function minting a store's credentials (the embedded server lets
// in no one without them), as make run does with omni-nats.
func startEmbeddedHubProcess(t testing.TB, name string) (*hubProcess, string, func(store string) string) {
	t.Helper()
	addr, natsAddr, dir := testkit.FreeAddr(t), testkit.FreeAddr(t), t.TempDir()
	h := &hubProcess{
		dataDir: dir,
		process: newProcess(t, "github.com/omnisync/omnisync/cloud/cmd/omni-hub", name,
			"--data-dir", dir, "--nats-listen", natsAddr, "--http", addr, "--log-level", "info",
			"--bootstrap-token", hubToken),
		URL: "http://" + addr,
	}
	addHub(addr)
	h.Start()
	bin := testkit.BuildBinary(t, "github.com/omnisync/omnisync/cloud/cmd/omni-nats")
	mint := func(store string) string {
		t.Helper()
		creds := filepath.Join(t.TempDir(), store+".nk")
		if out, err := exec.Command(bin, "mint-store", "--hub-data-dir", dir, "--out", creds, store).CombinedOutput(); err != nil {
			t.Fatalf("mint-store %s: %v\n%s", store, err, out)
		}
		return creds
	}
	return h, "nats://" + natsAddr, mint
}

// downsyncJS reaches the down-sync buckets as the hub does: on the
// embedded server, with the hub's own credentials, in the account that
// holds them.
func downsyncJS(t *testing.T, h *hubProcess, natsURL string, embedded bool) jetstream.JetStream {
	t.Helper()
	if !embedded {
		js, err := jetstream.New(mustHubConn(t, natsURL))
		if err != nil {
			t.Fatal(err)
		}
		return js
	}
	opt, err := nats.NkeyOptionFromSeed(filepath.Join(h.dataDir, hub.NATSAuthDir, "hub.nk"))
	if err != nil {
		t.Fatal(err)
	}
	nc, err := nats.Connect(natsURL, opt)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	return hubDownJS(t, nc)
}

// metricSum adds up every sample of the named metric on the hub's
// /metrics page (all label sets); -1 when the page cannot be read.
func metricSum(hubURL, name string) float64 {
	resp, err := httpClient.Get(hubURL + "/metrics")
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return -1
	}
	var sum float64
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, name) {
			continue
		}
		rest := line[len(name):]
		if rest == "" || (rest[0] != ' ' && rest[0] != '{') {
			continue // another metric whose name starts with this one
		}
		f := strings.Fields(rest[strings.LastIndexByte(rest, '}')+1:])
		if len(f) == 0 {
			continue
		}
		v, err := strconv.ParseFloat(f[0], 64)
		if err == nil {
			sum += v
		}
	}
	return sum
}

// Ensure that a hub stopped dead (SIGSTOP) for longer than its JetStream
// consumer's heartbeat window, under traffic, carries on when it is
// resumed (SIGCONT): it does not exit, it goes on applying what the tills
// sell, and its books equal the oracle's with no event lost and none
// applied twice. Once with an external NATS server (which keeps taking
// the stores' events while the hub is frozen) and once with the hub's
// embedded one, as make run starts it (so NATS freezes with it). What the
// hub publishes to the stores (stock, pickup orders) must agree with the
// books as well.
//
// make test freezes the hub for 8 seconds; make chaos for 30
// (OMNI_CHAOS_FREEZE).
func TestChaosHubFreeze(t *testing.T) {
	t.Parallel()
	freeze := freezeDuration(t)
	for _, tc := range []struct {
		name     string
		embedded bool
	}{
		{"external NATS", false},
		{"embedded NATS", true},
	} {
		// Side by side: most of each is the freeze, spent waiting.
		t.Run(tc.name, func(t *testing.T) { t.Parallel(); testHubFreeze(t, tc.embedded, freeze) })
	}
}

func testHubFreeze(t *testing.T, embedded bool, freeze time.Duration) {
	var h *hubProcess
	var natsURL string
	var mint func(string) string
	if embedded {
		h, natsURL, mint = startEmbeddedHubProcess(t, "hub")
	} else {
		natsURL = testkit.StartNATS(t).URL()
		h = startHubProcess(t, "hub", natsURL, "")
	}
	var targets []loadgen.Target
	for _, sd := range [][2]string{{"S1", "pos-1"}, {"S2", "pos-1"}} {
		args := []string{"--log-level", "warn"}
		if mint != nil {
			args = append(args, "--nats-creds", mint(sd[0]))
		}
		a := startAgent(t, sd[0], sd[1], natsURL, args...)
		targets = append(targets, loadgen.Target{Store: sd[0], Device: sd[1], URL: a.URL})
	}
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d, hub frozen for %v", seed, freeze)
	o := loadgen.Options{Targets: targets, Seed: seed, Rate: 120, Workers: 2, Settle: time.Minute}
	o.UseCatalog(catalog.Sample(int64(seed%1000), 40))
	g, err := loadgen.New(o)
	if err != nil {
		t.Fatal(err)
	}
	stopLoad := runLoad(t, g, time.Minute)

	// Freeze mid-stream, once the hub is applying.
	testkit.Eventually(t, 30*time.Second, func() bool {
		return metricSum(h.URL, "omni_hub_events_applied_total") >= 50
	}, "hub applying events")
	h.Freeze()
	frozenAt := len(g.Accepted())
	time.Sleep(freeze)
	h.Thaw()
	t.Logf("%d events accepted before the freeze, %d during it", frozenAt, len(g.Accepted())-frozenAt)

	// It must carry on: still running, and applying what is sold after.
	thawed := len(g.Accepted())
	testkit.Eventually(t, 30*time.Second, func() bool {
		if !h.Alive() {
			t.Fatalf("the hub exited after it was resumed")
		}
		return len(g.Accepted()) >= thawed+100
	}, "tills selling after the thaw")
	rep := stopLoad()
	vctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	verifyStart := time.Now()
	v, err := loadgen.Verify(vctx, loadgen.Hub{URL: h.URL, Token: hubToken}, rep.Accepted)
	if !h.Alive() {
		t.Fatalf("the hub exited after it was resumed")
	}
	if err != nil || !v.OK() {
		for i, d := range v.Differences {
			if i == 10 {
				break
			}
			t.Errorf("books differ: %s", d)
		}
		t.Fatalf("the books do not balance (%v): lost %d, double-applied %d, %d differences, devices %+v",
			err, v.Lost, v.DoubleApplied, len(v.Differences), v.Devices)
	}
	// The down-sync publisher carried on too: what the stores are told
	// agrees with the books.
	js := downsyncJS(t, h, natsURL, embedded)
	for deadline := time.Now().Add(time.Minute); ; {
		dctx, dcancel := context.WithTimeout(context.Background(), 30*time.Second)
		stock, orders, diffs, err := downsyncCheck(dctx, js, rep.Accepted)
		dcancel()
		if err == nil && len(diffs) == 0 {
			t.Logf("down-sync: %d positions and %d pickup orders agree with the books", stock, orders)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("down-sync differs from the books (%v): %d differences, first %q", err, len(diffs), append(diffs, "")[0])
		}
		time.Sleep(time.Second)
	}
	t.Logf("%d events accepted, %d applied exactly once (the last %v after the load stopped); %d positions equal the oracle's; consumer recoveries %v",
		v.Accepted, v.Applied, time.Since(verifyStart).Round(time.Millisecond), v.Positions, metricSum(h.URL, "omni_hub_ingest_recoveries_total"))
}
