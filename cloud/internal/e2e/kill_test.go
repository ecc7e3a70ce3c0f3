package e2e

import (
	"fmt"
	"math/rand/v2"
	"net/http"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/omnisync/omnisync/shared/testkit"
)

// hubProcess is an omni-hub child process.
type hubProcess struct {
	*process
	URL string
	// dataDir is the hub's data directory, when the test needs to read it.
	dataDir string
}

// startHubProcess starts omni-hub on natsURL and db (SQLite in its data
// directory when empty), with extra flags.
func startHubProcess(t testing.TB, name, natsURL, db string, extra ...string) *hubProcess {
	t.Helper()
	addr := testkit.FreeAddr(t)
	dir := t.TempDir()
	if db == "" {
		db = "sqlite:" + dir + "/hub.db"
	}
	args := append([]string{"--data-dir", dir, "--nats-url", natsURL, "--db", db, "--http", addr, "--log-level", "info",
		"--bootstrap-token", hubToken}, extra...)
	h := &hubProcess{
		process: newProcess(t, "github.com/omnisync/omnisync/cloud/cmd/omni-hub", name, args...),
		URL:     "http://" + addr,
	}
	addHub(addr)
	h.Start()
	return h
}

func (h *hubProcess) Start() {
	h.t.Helper()
	h.process.Start()
	testkit.Eventually(h.t, 60*time.Second, func() bool {
		return getJSON(h.t, h.URL+"/healthz", nil) == http.StatusOK
	}, "hub %s up", h.name)
}

// natsProcess is a real nats-server process with JetStream on disk, to
// kill and start again.
type natsProcess struct {
	*process
	Port int
}

func (n *natsProcess) Start() {
	n.t.Helper()
	n.process.Start()
	testkit.Eventually(n.t, 20*time.Second, func() bool {
		return exec.Command("bash", "-c", fmt.Sprintf("exec 3<>/dev/tcp/127.0.0.1/%d", n.Port)).Run() == nil
	}, "nats-server up on %d", n.Port)
}

// load keeps several POS clients posting one-unit sales of SKU-0..4 to each
// agent until stopped, counting acknowledged and ambiguous events.
type load struct {
	acked, ambiguous atomic.Int64
	stop             chan struct{}
	wg               sync.WaitGroup
}

func startLoad(agents []*agent, perAgent int, seed uint64) *load {
	l := &load{stop: make(chan struct{})}
	for ai, a := range agents {
		for w := 0; w < perAgent; w++ {
			l.wg.Add(1)
			go func(url string, seed uint64) {
				defer l.wg.Done()
				r := rand.New(rand.NewPCG(seed, 3))
				for {
					select {
					case <-l.stop:
						return
					default:
					}
					n := 1 + r.IntN(10)
					var parts []string
					for i := 0; i < n; i++ {
						parts = append(parts, saleBody(fmt.Sprintf("SKU-%d", r.IntN(5)), 1))
					}
					code, _, err := post(url, "["+strings.Join(parts, ",")+"]")
					switch {
					case err == nil && code == http.StatusAccepted:
						l.acked.Add(int64(n))
					case err != nil:
						l.ambiguous.Add(int64(n))
					}
					time.Sleep(time.Duration(r.IntN(3)) * time.Millisecond)
				}
			}(a.URL, seed+uint64(ai*100+w))
		}
	}
	return l
}

func (l *load) Stop() { close(l.stop); l.wg.Wait() }

// checkBooks waits for every agent to drain and checks that the hub applied
// every event exactly once: units sold per store equal the outbox's seq
// count, and the hub's applied count equals it too.
func checkBooks(t testing.TB, hubURL string, agents []*agent, l *load) {
	t.Helper()
	var issued int64
	for _, a := range agents {
		waitDrained(t, a, 90*time.Second)
		issued += int64(status(t, a).LastSeq)
	}
	if issued < l.acked.Load() || issued > l.acked.Load()+l.ambiguous.Load() {
		t.Fatalf("outboxes issued %d events; %d acknowledged, %d ambiguous", issued, l.acked.Load(), l.ambiguous.Load())
	}
	for _, a := range agents {
		store := strings.SplitN(a.name, "-", 2)[0]
		want := -int64(status(t, a).LastSeq)
		testkit.Eventually(t, 30*time.Second, func() bool {
			var total int64
			for i := 0; i < 5; i++ {
				total += onHand(t, hubURL, fmt.Sprintf("SKU-%d", i))[store]
			}
			return total == want
		}, "store %s books: want %d", store, want)
	}
	applied := appliedB(t, hubURL)
	if applied != issued {
		t.Fatalf("hub applied %d events, outboxes issued %d", applied, issued)
	}
	t.Logf("%d events acknowledged (+%d ambiguous); %d issued and applied exactly once", l.acked.Load(), l.ambiguous.Load(), issued)
}

// Ensure that SIGKILLing the hub mid-apply loses nothing and applies
// nothing twice.
func TestHubSIGKILL(t *testing.T) {
	t.Parallel()
	ns := testkit.StartNATS(t)
	h := startHubProcess(t, "hub", ns.URL(), "")
	agents := []*agent{startAgent(t, "S1", "pos-1", ns.URL()), startAgent(t, "S2", "pos-1", ns.URL())}
	l := startLoad(agents, 2, 11)
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 4))
	for i := 0; i < 3; i++ {
		time.Sleep(time.Duration(300+rng.IntN(700)) * time.Millisecond)
		h.Kill()
		time.Sleep(time.Duration(rng.IntN(300)) * time.Millisecond)
		h.Start()
	}
	l.Stop()
	checkBooks(t, h.URL, agents, l)
}

// Ensure that SIGKILLing a real nats-server process (JetStream on disk,
// the shipped configuration with the stores' credentials) loses nothing:
// the outbox keeps every event until the hub confirms it.
func TestNATSSIGKILL(t *testing.T) {
	t.Parallel()
	sn := startIsolatedNATS(t)
	ns := &natsProcess{process: sn.proc, Port: sn.port}
	h := startHub(t, sn.hubURL, "")
	agents := []*agent{sn.startStoreAgent(t, "S1", "pos-1"), sn.startStoreAgent(t, "S2", "pos-1")}
	l := startLoad(agents, 2, 21)
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 5))
	for i := 0; i < 3; i++ {
		time.Sleep(time.Duration(400+rng.IntN(800)) * time.Millisecond)
		ns.Kill()
		time.Sleep(time.Duration(100+rng.IntN(500)) * time.Millisecond)
		ns.Start()
	}
	l.Stop()
	checkBooks(t, h.URL, agents, l)
}

// Ensure that two hub replicas sharing one PostgreSQL and one durable
// consumer keep exact books, even when one of them is killed.
func TestHubReplicasPostgres(t *testing.T) {
	t.Parallel()
	dsn := testkit.Postgres(t)
	ns := testkit.StartNATS(t)
	h1 := startHubProcess(t, "hub-1", ns.URL(), dsn)
	h2 := startHubProcess(t, "hub-2", ns.URL(), dsn)
	agents := []*agent{
		startAgent(t, "S1", "pos-1", ns.URL()),
		startAgent(t, "S2", "pos-1", ns.URL()),
		startAgent(t, "S3", "pos-1", ns.URL()),
	}
	l := startLoad(agents, 2, 31)
	time.Sleep(1500 * time.Millisecond)
	h2.Kill()
	time.Sleep(500 * time.Millisecond)
	h2.Start()
	time.Sleep(time.Second)
	l.Stop()
	checkBooks(t, h1.URL, agents, l)
}
