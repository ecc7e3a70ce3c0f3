package e2e

import (
	"context"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/crypto/bcrypt"

	"github.com/omnisync/omnisync/cloud/internal/ingest"
	"github.com/omnisync/omnisync/cloud/internal/loadgen"
	"github.com/omnisync/omnisync/shared/downsync"
	"github.com/omnisync/omnisync/shared/subjects"
	"github.com/omnisync/omnisync/shared/testkit"
)

// copyDeployNATS copies the shipped deploy/nats tree (configuration files,
// scripts, the cluster and leaf directories) into dir, so a test can mint
// stores into its own stores.conf.
func copyDeployNATS(t testing.TB, dir string) {
	t.Helper()
	src := "../../../deploy/nats"
	err := filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, path)
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(dir, rel), 0o755)
		}
		if strings.HasSuffix(path, ".md") {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dir, rel), b, 0o755)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// mintStores admits stores to the stores.conf in dir with omni-nats
// mint-store and returns each store's credentials file.
func mintStores(t testing.TB, dir string, stores ...string) map[string]string {
	t.Helper()
	bin := testkit.BuildBinary(t, "github.com/omnisync/omnisync/cloud/cmd/omni-nats")
	creds := map[string]string{}
	for _, s := range stores {
		c := filepath.Join(t.TempDir(), s+".nk")
		if out, err := exec.Command(bin, "mint-store", "--conf-dir", dir, "--out", c, s).CombinedOutput(); err != nil {
			t.Fatalf("mint-store %s: %v\n%s", s, err, out)
		}
		creds[s] = c
	}
	return creds
}

// bcryptOf hashes a test password as the shipped configurations expect it.
func bcryptOf(t testing.TB, password string) string {
	t.Helper()
	h, err := bcrypt.GenerateFromPassword([]byte(password), 4)
	if err != nil {
		t.Fatal(err)
	}
	return string(h)
}

// portOf is the port of a host:port.
func portOf(addr string) int {
	p, _ := strconv.Atoi(addr[strings.LastIndexByte(addr, ':')+1:])
	return p
}

// natsCluster is the shipped three-node cluster configuration
// (deploy/nats/cluster) run as three nats-server processes on this
// machine, with stores minted into its stores.conf.
type natsCluster struct {
	dir   string
	nodes []*clusterNode
	// hubURL reaches every node as the hub user.
	hubURL string
	creds  map[string]string
	// ca is the CA of the nodes' certificate: hubs and agents are given
	// it (--nats-ca), and conn trusts it.
	ca string
}

// conn connects to the cluster as the hub user.
func (c *natsCluster) conn(t *testing.T) *nats.Conn {
	return mustHubConn(t, c.hubURL, nats.RootCAs(c.ca))
}

// clusterNode is one node: a nats-server process, killed and started
// again on the same storage.
type clusterNode struct {
	*process
	name                  string
	client, leaf, monitor string // host:port
	t                     testing.TB
}

const routePassword = "route-secret-for-tests-only"

func startNATSCluster(t *testing.T, stores ...string) *natsCluster {
	t.Helper()
	dir := t.TempDir()
	copyDeployNATS(t, dir)
	pki := newTestPKI(t, "nats")
	cert, key := pki.issue("omni-nats", true)
	c := &natsCluster{dir: dir, creds: mintStores(t, dir, stores...), ca: pki.CAFile}
	var routes, hubURLs []string
	type addrs struct{ client, cluster, leaf, monitor string }
	var as []addrs
	for i := 0; i < 3; i++ {
		a := addrs{testkit.FreeAddr(t), testkit.FreeAddr(t), testkit.FreeAddr(t), testkit.FreeAddr(t)}
		as = append(as, a)
		routes = append(routes, fmt.Sprintf("nats-route://route:%s@%s", routePassword, a.cluster))
		hubURLs = append(hubURLs, fmt.Sprintf("nats://hub:%s@%s", hubPassword, a.client))
	}
	c.hubURL = strings.Join(hubURLs, ",")
	hubHash, routeHash := bcryptOf(t, hubPassword), bcryptOf(t, routePassword)
	for i, a := range as {
		name := fmt.Sprintf("nats-%d", i+1)
		p := newProcess(t, "github.com/nats-io/nats-server/v2", name, "-c", filepath.Join(dir, "cluster", name+".conf"))
		p.extraEnv = []string{
			"OMNI_NATS_PORT=" + strconv.Itoa(portOf(a.client)),
			"OMNI_NATS_STORE_DIR=" + filepath.Join(dir, "js-"+name),
			"OMNI_HUB_PASSWORD=" + hubHash,
			"OMNI_NATS_CLUSTER_LISTEN=" + a.cluster,
			"OMNI_NATS_ROUTE_PASSWORD=" + routeHash,
			"OMNI_NATS_ROUTES=[" + strings.Join(routes, ", ") + "]",
			"OMNI_NATS_LEAF_PORT=" + strconv.Itoa(portOf(a.leaf)),
			"OMNI_NATS_MONITOR=" + a.monitor,
			"OMNI_NATS_TLS_CERT=" + cert,
			"OMNI_NATS_TLS_KEY=" + key,
		}
		c.nodes = append(c.nodes, &clusterNode{process: p, name: "omni-" + name, client: a.client, leaf: a.leaf, monitor: a.monitor, t: t})
	}
	for _, n := range c.nodes {
		n.process.Start()
	}
	for _, n := range c.nodes {
		n.waitHealthy(90 * time.Second)
	}
	return c
}

// clientURLs is every node's client URL, as agents are given them.
func (c *natsCluster) clientURLs() string {
	var us []string
	for _, n := range c.nodes {
		us = append(us, "nats://"+n.client)
	}
	return strings.Join(us, ",")
}

// node is the node whose server_name is name, nil if none.
func (c *natsCluster) node(name string) *clusterNode {
	for _, n := range c.nodes {
		if n.name == name {
			return n
		}
	}
	return nil
}

// healthy reports whether the node's monitoring endpoint says it is
// healthy: JetStream enabled, the meta group current, and every stream and
// consumer replica it holds caught up.
func (n *clusterNode) healthy() bool {
	resp, err := http.Get("http://" + n.monitor + "/healthz")
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

func (n *clusterNode) waitHealthy(timeout time.Duration) {
	n.t.Helper()
	testkit.Eventually(n.t, timeout, n.healthy, "%s healthy", n.name)
}

// Start starts the node again on its storage and waits until it has
// caught up.
func (n *clusterNode) Start() {
	n.t.Helper()
	n.process.Start()
	n.waitHealthy(2 * time.Minute)
}

// stallMeter samples how many events the hubs have applied and keeps the
// longest time in which that number did not move.
type stallMeter struct {
	hubs []string
	stop chan struct{}
	done chan struct{}

	mu         sync.Mutex
	start      time.Time
	applied    float64
	lastChange time.Time
	longest    time.Duration
	longestEnd time.Duration // since start
}

func startStallMeter(hubs ...string) *stallMeter {
	m := &stallMeter{hubs: hubs, stop: make(chan struct{}), done: make(chan struct{}), start: time.Now()}
	m.lastChange = m.start
	go m.run()
	return m
}

func (m *stallMeter) run() {
	defer close(m.done)
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-m.stop:
			return
		case <-tick.C:
		}
		var sum float64
		for _, h := range m.hubs {
			v := metricSum(h, "omni_hub_events_applied_total")
			if v < 0 {
				sum = -1
				break
			}
			sum += v
		}
		now := time.Now()
		m.mu.Lock()
		if sum > m.applied {
			m.note(now)
			m.applied, m.lastChange = sum, now
		}
		m.mu.Unlock()
	}
}

// note records the stall ending at now. Lock held.
func (m *stallMeter) note(now time.Time) {
	if d := now.Sub(m.lastChange); d > m.longest {
		m.longest, m.longestEnd = d, now.Sub(m.start)
	}
}

// Stop ends sampling (the stall in progress counts up to now) and returns
// the longest stall and when, since the meter started, it ended.
func (m *stallMeter) Stop() (time.Duration, time.Duration) {
	close(m.stop)
	<-m.done
	m.mu.Lock()
	defer m.mu.Unlock()
	m.note(time.Now())
	return m.longest, m.longestEnd
}

// clusterChaosDuration is how long TestChaosNATSCluster goes on killing
// nodes: OMNI_CHAOS_CLUSTER (make chaos sets minutes); unset, make test
// kills two nodes, one after the other, and stops.
func clusterChaosDuration(t *testing.T) time.Duration {
	return envDuration(t, "OMNI_CHAOS_CLUSTER", 0)
}

// Ensure that on the shipped three-node JetStream cluster (R3 events
// stream and down-sync buckets), with two hub replicas on PostgreSQL and
// four agents under till traffic, SIGKILLing any one NATS node and
// bringing it back, then another once it has caught up, loses no
// acknowledged event and applies none twice, and what the stores are told
// agrees with the books. The events stream's leader is among the nodes
// killed. The longest time in which the hubs applied nothing is reported.
//
// make test kills two nodes; make chaos goes on for OMNI_CHAOS_CLUSTER.
func TestChaosNATSCluster(t *testing.T) {
	t.Parallel()
	dur := clusterChaosDuration(t)
	seed := chaosSeed(t)
	t.Logf("seed %d, node kills for %v (0: two)", seed, dur)

	c := startNATSCluster(t, "S1", "S2", "S3")
	// Every node takes TLS only, with a certificate the CA signed.
	if nc, err := nats.Connect(c.hubURL, nats.Timeout(2*time.Second)); err == nil {
		nc.Close()
		t.Fatal("connected to the cluster without trusting its certificate")
	}
	nc := c.conn(t)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	down := hubDownJS(t, nc)
	// A chain moving from one NATS server to the cluster: its stream and
	// buckets exist with one replica, and hubs started with
	// --stream-replicas 3 scale them to three. (Retried, as the hub does:
	// a new cluster may still be electing its leaders.)
	for deadline := time.Now().Add(2 * time.Minute); ; time.Sleep(time.Second) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_, err := ingest.EnsureStream(ctx, js, ingest.StreamOptions{Replicas: 1})
		if err == nil {
			_, err = downsync.EnsureBucket(ctx, down, 1)
		}
		if err == nil {
			_, err = downsync.EnsurePickupBucket(ctx, down, 1)
		}
		cancel()
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("one-replica stream and buckets: %v", err)
		}
	}
	dsn := testkit.Postgres(t)
	hubs := []*hubProcess{
		startHubProcess(t, "hub-a", c.hubURL, dsn, "--stream-replicas", "3", "--nats-ca", c.ca),
		startHubProcess(t, "hub-b", c.hubURL, dsn, "--stream-replicas", "3", "--nats-ca", c.ca),
	}
	var targets []loadgen.Target
	for _, sd := range [][2]string{{"S1", "pos-1"}, {"S1", "pos-2"}, {"S2", "pos-1"}, {"S3", "pos-1"}} {
		a := startAgent(t, sd[0], sd[1], c.clientURLs(), "--nats-creds", c.creds[sd[0]], "--nats-ca", c.ca, "--log-level", "warn")
		targets = append(targets, loadgen.Target{Store: sd[0], Device: sd[1], URL: a.URL})
	}

	// The stream and both buckets are replicated on all three nodes.
	checkR3(t, js, down)

	const rate = 200
	_, stopLoad := startTraffic(t, targets, seed, rate, 3, 60)
	testkit.Eventually(t, 60*time.Second, func() bool {
		return metricSum(hubs[0].URL, "omni_hub_events_applied_total")+metricSum(hubs[1].URL, "omni_hub_events_applied_total") >= 100
	}, "hubs applying events")
	stalls := startStallMeter(hubs[0].URL, hubs[1].URL)

	f := newFaults(t, seed)
	var last *clusterNode
	kill := func(preferLeader bool) {
		victim := c.pick(t, js, f.rng, last, preferLeader)
		leader := c.leaderOf(js) == victim.name
		victim.Kill()
		what := victim.name
		if leader {
			what += " (the events stream's leader)"
		}
		f.record("kill-nats", what)
		time.Sleep(f.between(500*time.Millisecond, 2*time.Second))
		restarted := time.Now()
		victim.Start()
		f.record("caught-up", fmt.Sprintf("%s %v after its restart", victim.name, time.Since(restarted).Round(100*time.Millisecond)))
		last = victim
	}
	if dur == 0 {
		kill(true)
		time.Sleep(f.between(500*time.Millisecond, time.Second))
		kill(false)
		time.Sleep(f.between(500*time.Millisecond, time.Second))
	} else {
		for end, i := time.Now().Add(dur), 0; time.Now().Before(end); i++ {
			kill(i%2 == 0)
			time.Sleep(f.between(2*time.Second, 10*time.Second))
		}
	}
	longest, at := stalls.Stop()
	rep := stopLoad()

	vctx, vcancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer vcancel()
	v, verr := loadgen.Verify(vctx, loadgen.Hub{URL: hubs[0].URL, Token: hubToken}, rep.Accepted)
	stockDocs, orders, diffs := downsyncSettled(t, down, rep.Accepted, 90*time.Second)
	if diffs > 0 {
		logDownsyncState(t, down, hubs)
	}
	checkR3(t, js, down)
	t.Logf(`
NATS cluster report (seed %d, 3 nodes, R3, 2 hubs on PostgreSQL, 4 agents at %v events/s)
  events acknowledged   %d (%d requests retried, %d answered from an idempotency key)
  faults                %d: %s
  positions compared    %d, differences %d
  lost                  %d
  double-applied        %d
  down-sync             %d positions and %d pickup orders compared with the books, differences %d
  longest stall         %v with no event applied (ending %.1fs into the faults)
faults:
%s`, seed, rate, len(rep.Accepted), rep.Total.Retried, rep.Total.Replayed,
		f.total(), f.summary(), v.Positions, len(v.Differences), v.Lost, v.DoubleApplied,
		stockDocs, orders, diffs, longest.Round(10*time.Millisecond), at.Seconds(), strings.Join(f.log, "\n"))
	requireBalanced(t, v, verr)
}

// logDownsyncState logs, for a down-sync that did not settle, what the
// buckets' streams and the hubs' publishers say: which replica leads and
// which lag, how many keys each stream holds, and what each publisher
// believes it published or skipped, so a failure tells a bucket that lost
// writes from a publisher that stopped writing or a read from a replica
// behind the others.
func logDownsyncState(t *testing.T, down jetstream.JetStream, hubs []*hubProcess) {
	t.Helper()
	for _, name := range []string{downsync.Stream, downsync.PickupStream} {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		s, err := down.Stream(ctx, name)
		var info *jetstream.StreamInfo
		if err == nil {
			info, err = s.Info(ctx)
		}
		cancel()
		if err != nil {
			t.Logf("down-sync state: stream %s: %v", name, err)
			continue
		}
		var reps []string
		if info.Cluster != nil {
			for _, r := range info.Cluster.Replicas {
				reps = append(reps, fmt.Sprintf("%s current=%v lag=%d active=%v", r.Name, r.Current, r.Lag, r.Active.Round(time.Millisecond)))
			}
			t.Logf("down-sync state: stream %s: leader %s, replicas [%s]; msgs %d, subjects %d, seq %d..%d",
				name, info.Cluster.Leader, strings.Join(reps, "; "), info.State.Msgs, info.State.NumSubjects, info.State.FirstSeq, info.State.LastSeq)
		}
	}
	for _, h := range hubs {
		var parts []string
		for _, m := range []string{"published", "skipped", "conflicts", "errors", "resyncs", "dirty"} {
			name := "omni_hub_downsync_" + m
			if m != "dirty" {
				name += "_total"
			}
			parts = append(parts, fmt.Sprintf("%s %v", m, metricSum(h.URL, name)))
		}
		t.Logf("down-sync state: %s publisher: %s", h.name, strings.Join(parts, ", "))
	}
}

// leaderOf is the server name of the events stream's leader ("" when it
// cannot be read).
func (c *natsCluster) leaderOf(js jetstream.JetStream) string {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s, err := js.Stream(ctx, subjects.StreamEvents)
	if err != nil || s.CachedInfo().Cluster == nil {
		return ""
	}
	return s.CachedInfo().Cluster.Leader
}

// pick chooses the next node to kill: not the last one killed; the events
// stream's leader when preferLeader (and it is not the last), else any
// other.
func (c *natsCluster) pick(t *testing.T, js jetstream.JetStream, rng *rand.Rand, last *clusterNode, preferLeader bool) *clusterNode {
	t.Helper()
	if preferLeader {
		if n := c.node(c.leaderOf(js)); n != nil && n != last {
			return n
		}
	}
	var cands []*clusterNode
	for _, n := range c.nodes {
		if n != last {
			cands = append(cands, n)
		}
	}
	sort.Slice(cands, func(i, j int) bool { return cands[i].name < cands[j].name })
	return cands[rng.IntN(len(cands))]
}

// checkR3 checks that the events stream and both down-sync buckets have
// three replicas.
func checkR3(t *testing.T, js, down jetstream.JetStream) {
	t.Helper()
	for _, sj := range []struct {
		js   jetstream.JetStream
		name string
	}{{js, subjects.StreamEvents}, {down, downsync.Stream}, {down, downsync.PickupStream}} {
		var info *jetstream.StreamInfo
		testkit.Eventually(t, 30*time.Second, func() bool {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			s, err := sj.js.Stream(ctx, sj.name)
			if err != nil {
				return false
			}
			info = s.CachedInfo()
			return true
		}, "stream %s", sj.name)
		if info.Config.Replicas != 3 || info.Cluster == nil || len(info.Cluster.Replicas) != 2 {
			t.Fatalf("stream %s: %d replicas (cluster %+v), want 3", sj.name, info.Config.Replicas, info.Cluster)
		}
	}
}
