package e2e

import (
	"context"
	"fmt"
	"github.com/nats-io/nats.go/jetstream"
	"math/rand/v2"
	"net/url"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/omnisync/omnisync/cloud/internal/catalog"
	"github.com/omnisync/omnisync/cloud/internal/loadgen"
	"github.com/omnisync/omnisync/shared/events"
	"github.com/omnisync/omnisync/shared/testkit"
)

// chaosDuration is how long faults are injected: OMNI_CHAOS_DURATION
// (make chaos sets minutes), 20s by default inside make test.
func chaosDuration(t *testing.T) time.Duration {
	return envDuration(t, "OMNI_CHAOS_DURATION", 20*time.Second)
}

// envDuration is the duration in the environment variable name, or def
// when it is not set.
func envDuration(t *testing.T, name string, def time.Duration) time.Duration {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return d
}

// runLoad runs g in the background. The function it returns ends the run,
// waits for it, retries what it left unanswered (for up to resolve) and
// returns the report; it fails the test unless every request got an
// answer.
func runLoad(t *testing.T, g *loadgen.Generator, resolve time.Duration) func() *loadgen.Report {
	ctx, stop := context.WithCancel(context.Background())
	var rep *loadgen.Report
	var err error
	done := make(chan struct{})
	go func() { defer close(done); rep, err = g.Run(ctx) }()
	t.Cleanup(func() { stop(); <-done })
	return func() *loadgen.Report {
		t.Helper()
		stop()
		<-done
		if err != nil {
			t.Fatalf("load: %v", err)
		}
		if len(rep.Unresolved) > 0 {
			rctx, cancel := context.WithTimeout(context.Background(), resolve)
			defer cancel()
			if rep, err = g.Resolve(rctx); err != nil || len(rep.Unresolved) > 0 {
				t.Fatalf("%d requests never answered: %v", len(rep.Unresolved), err)
			}
		}
		return rep
	}
}

// startTraffic runs tills posting realistic traffic to targets at rate
// events per second (workers tills each, selling from a sample catalog of
// products), as runLoad does: the function returned ends it.
func startTraffic(t *testing.T, targets []loadgen.Target, seed uint64, rate float64, workers, products int) (*loadgen.Generator, func() *loadgen.Report) {
	t.Helper()
	o := loadgen.Options{Targets: targets, Seed: seed, Rate: rate, Workers: workers, Settle: 90 * time.Second}
	o.UseCatalog(catalog.Sample(int64(seed%1000), products))
	g, err := loadgen.New(o)
	if err != nil {
		t.Fatal(err)
	}
	return g, runLoad(t, g, 2*time.Minute)
}

// faults injects failures into a running platform and counts them.
type faults struct {
	t   *testing.T
	rng *rand.Rand

	mu     sync.Mutex
	counts map[string]int
	log    []string
	start  time.Time
}

func newFaults(t *testing.T, seed uint64) *faults {
	return &faults{t: t, rng: rand.New(rand.NewPCG(seed, 7)), counts: map[string]int{}, start: time.Now()}
}

func (f *faults) record(kind, what string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.counts[kind]++
	f.log = append(f.log, fmt.Sprintf("%6.1fs %-14s %s", time.Since(f.start).Seconds(), kind, what))
}

func (f *faults) total() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, c := range f.counts {
		n += c
	}
	return n
}

func (f *faults) summary() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var kinds []string
	for k := range f.counts {
		kinds = append(kinds, k)
	}
	sort.Strings(kinds)
	var b strings.Builder
	for _, k := range kinds {
		fmt.Fprintf(&b, "%s=%d ", k, f.counts[k])
	}
	return strings.TrimSpace(b.String())
}

func (f *faults) between(lo, hi time.Duration) time.Duration {
	return lo + time.Duration(f.rng.Int64N(int64(hi-lo)+1))
}

// chaosRig is the platform under test: real nats-server, omni-hub and
// omni-edge processes, each agent reaching NATS through its own proxy and
// the hubs reaching PostgreSQL through one.
type chaosRig struct {
	nats   *natsProcess
	hubs   []*hubProcess
	agents []*agent
	links  []*testkit.Proxy  // agent i's link to NATS
	db     *testkit.Proxy    // the hubs' link to PostgreSQL (nil on SQLite)
	pg     *testkit.PGServer // the hubs' own PostgreSQL, crashed and restarted
	skewed int               // index of the agent whose clock is an hour fast
}

// inject runs one random fault to its end (a partition heals, a killed
// process is started again) and records it.
func (r *chaosRig) inject(f *faults) {
	switch n := f.rng.IntN(100); {
	case n < 22:
		i := f.rng.IntN(len(r.agents))
		a := r.agents[i]
		a.Kill()
		f.record("kill-agent", a.name)
		time.Sleep(f.between(0, 1500*time.Millisecond))
		a.Start()
	case n < 34:
		h := r.hubs[f.rng.IntN(len(r.hubs))]
		h.Kill()
		f.record("kill-hub", h.name)
		time.Sleep(f.between(0, 3*time.Second))
		h.Start()
	case n < 44:
		r.nats.Kill()
		f.record("kill-nats", "nats-server")
		time.Sleep(f.between(0, 2*time.Second))
		r.nats.Start()
	case n < 62:
		i := f.rng.IntN(len(r.links))
		r.links[i].Cut()
		f.record("partition", r.agents[i].name+" cut from NATS")
		time.Sleep(f.between(time.Second, 6*time.Second))
		r.links[i].Heal()
	case n < 76:
		i := f.rng.IntN(len(r.links))
		r.links[i].Stall()
		f.record("stall", r.agents[i].name+" link stalled")
		time.Sleep(f.between(time.Second, 6*time.Second))
		r.links[i].Heal()
	case n < 88:
		i := f.rng.IntN(len(r.links))
		d := f.between(20*time.Millisecond, 200*time.Millisecond)
		r.links[i].Slow(d)
		f.record("slow", fmt.Sprintf("%s link +%v per chunk", r.agents[i].name, d))
		time.Sleep(f.between(2*time.Second, 8*time.Second))
		r.links[i].Heal()
	default:
		if r.db == nil {
			h := r.hubs[f.rng.IntN(len(r.hubs))]
			h.Kill()
			f.record("kill-hub", h.name+" (SQLite)")
			time.Sleep(f.between(0, 2*time.Second))
			h.Start()
			return
		}
		if f.rng.IntN(2) == 0 {
			r.db.Cut()
			f.record("db-link", "PostgreSQL connections reset, refused while down")
			time.Sleep(f.between(time.Second, 5*time.Second))
			r.db.Heal()
			return
		}
		r.pg.Crash()
		f.record("db-crash", "PostgreSQL and its backends SIGKILLed, restarted with crash recovery")
		time.Sleep(f.between(0, 3*time.Second))
		r.pg.Start()
	}
}

// heal ends every partition; every process is running again after inject.
func (r *chaosRig) heal() {
	for _, l := range r.links {
		l.Heal()
	}
	if r.db != nil {
		r.db.Heal()
	}
}

// Ensure that nothing acknowledged is lost or applied twice while the
// platform is attacked from every side: real nats-server, two omni-hub
// replicas on PostgreSQL and four omni-edge agents (one with its clock an
// hour fast) take random SIGKILLs and restarts, NATS restarts, agents cut
// off, stalled and slowed on their links, the database's connections cut
// and the database itself SIGKILLed and restarted through crash recovery,
// while tills post realistic traffic with idempotent retries.
// At the end the hub's books must equal the oracle's exactly.
//
// make test runs it for 20 seconds; make chaos for OMNI_CHAOS_DURATION
// (10 minutes by default). OMNI_CHAOS_SEED replays a run's faults and
// traffic; OMNI_CHAOS_REPORT names a file for the report.
func TestChaos(t *testing.T) {
	t.Parallel()
	dur := chaosDuration(t)
	seed := chaosSeed(t)
	t.Logf("chaos for %v, seed %d (OMNI_CHAOS_SEED=%d replays it)", dur, seed, seed)

	// NATS as a chain runs it: the shipped configuration, every store its
	// own account with its own credentials, the hub its password.
	sn := startShippedNATSFor(t, "omnisync.conf", nil, []string{"S3"})
	n := &natsProcess{process: sn.proc, Port: sn.port}
	// The hubs' database is a server of the test's own, so it can be
	// crashed without disturbing the tests that share the machine's.
	pg := testkit.StartPGServer(t)
	dsn, err := url.Parse(pg.DSN())
	if err != nil {
		t.Fatal(err)
	}
	db := testkit.StartProxy(t, dsn.Host)
	dsn.Host = db.Addr()
	r := &chaosRig{nats: n, db: db, pg: pg, skewed: 3}
	r.hubs = []*hubProcess{startHubProcess(t, "hub-a", sn.hubURL, dsn.String()), startHubProcess(t, "hub-b", sn.hubURL, dsn.String())}
	var targets []loadgen.Target
	for i, sd := range [][2]string{{"S1", "pos-1"}, {"S1", "pos-2"}, {"S2", "pos-1"}, {"S3", "pos-1"}} {
		link := testkit.StartProxy(t, fmt.Sprintf("127.0.0.1:%d", n.Port))
		extra := []string{"--log-level", "warn"}
		if i == r.skewed {
			extra = append(extra, "--clock-offset", "1h")
		}
		c := sn.store[sd[0]]
		a := startAgent(t, sd[0], sd[1], c.via(t, link.Addr()), append(extra, c.agentArgs()...)...)
		r.agents, r.links = append(r.agents, a), append(r.links, link)
		targets = append(targets, loadgen.Target{Store: sd[0], Device: sd[1], URL: a.URL})
	}

	_, stopLoad := startTraffic(t, targets, seed, 300, 3, 60)

	f := newFaults(t, seed)
	for end := time.Now().Add(dur); time.Now().Before(end); {
		r.inject(f)
		time.Sleep(f.between(200*time.Millisecond, 1500*time.Millisecond))
	}
	r.heal()
	rep := stopLoad()
	vctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	v, verr := loadgen.Verify(vctx, loadgen.Hub{URL: r.hubs[0].URL, Token: hubToken}, rep.Accepted)
	// What the stores are told must agree with the books too: the stock
	// documents and pickup orders the hubs published through the faults.
	js := hubDownJS(t, mustHubConn(t, sn.hubURL))
	stockDocs, orders, downDiffs := downsyncSettled(t, js, rep.Accepted, 90*time.Second)
	report := fmt.Sprintf(`chaos report (seed %d, %v of faults, 2 hubs on PostgreSQL, 4 agents, one an hour fast)
  events acknowledged   %d (%d requests retried, %d answered from an idempotency key, %d refused with 507)
  faults injected       %d: %s
  positions compared    %d, differences %d
  lost                  %d
  double-applied        %d
  down-sync             %d positions and %d pickup orders compared with the books, differences %d
`, seed, dur, len(rep.Accepted), rep.Total.Retried, rep.Total.Replayed, rep.Total.Refused,
		f.total(), f.summary(), v.Positions, len(v.Differences), v.Lost, v.DoubleApplied, stockDocs, orders, downDiffs)
	t.Log("\n" + report)
	if p := os.Getenv("OMNI_CHAOS_REPORT"); p != "" {
		_ = os.WriteFile(p, []byte(report+"\nfaults:\n"+strings.Join(f.log, "\n")+"\n"), 0o644)
	}
	requireBalanced(t, v, verr)
}

// chaosSeed is OMNI_CHAOS_SEED (a run's seed, to replay its faults and
// traffic), or a new one.
func chaosSeed(t *testing.T) uint64 {
	t.Helper()
	v := os.Getenv("OMNI_CHAOS_SEED")
	if v == "" {
		return uint64(time.Now().UnixNano())
	}
	s, err := strconv.ParseUint(v, 10, 64)
	if err != nil {
		t.Fatalf("OMNI_CHAOS_SEED: %v", err)
	}
	return s
}

// downsyncSettled compares what the stores are told (js reaches the
// down-sync buckets) with the books of accepted, again for up to wait
// while the hubs' publishers catch up, and reports every problem left (the
// first 20 differences) as a test error. It returns how many positions and
// pickup orders it compared and how many differed.
func downsyncSettled(t *testing.T, js jetstream.JetStream, accepted []events.Envelope, wait time.Duration) (stock, orders, differing int) {
	t.Helper()
	var diffs []string
	var err error
	for deadline := time.Now().Add(wait); ; {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		stock, orders, diffs, err = downsyncCheck(ctx, js, accepted)
		cancel()
		if err == nil && len(diffs) == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(2 * time.Second)
	}
	if err != nil {
		t.Errorf("down-sync check: %v", err)
	}
	for i, d := range diffs {
		if i == 20 {
			break
		}
		t.Errorf("down-sync differs: %s", d)
	}
	return stock, orders, len(diffs)
}

// requireBalanced fails the test unless the oracle's verdict is that the
// hub's books balance: nothing lost, nothing applied twice, no position
// different.
func requireBalanced(t *testing.T, v loadgen.Verdict, err error) {
	t.Helper()
	if err == nil && v.OK() {
		return
	}
	for i, d := range v.Differences {
		if i == 10 {
			break
		}
		t.Errorf("books differ: %+v", d)
	}
	t.Fatalf("the books do not balance (%v): lost %d, double-applied %d, %d differences, pending %v", err, v.Lost, v.DoubleApplied, len(v.Differences), v.Pending)
}
