package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/omnisync/omnisync/cloud/internal/loadgen"
	"github.com/omnisync/omnisync/shared/downsync"
	"github.com/omnisync/omnisync/shared/natsacct"
	"github.com/omnisync/omnisync/shared/subjects"
	"github.com/omnisync/omnisync/shared/testkit"
)

// leafHub is the chain's NATS server run from the shipped
// omnisync-leafnodes.conf: omnisync.conf and a port for store leaf nodes.
type leafHub struct {
	*process
	dir                   string
	client, leaf, monitor string
	hubURL                string
	creds                 map[string]string
	// ca is the CA of the server's certificate (both ports are TLS).
	ca string
}

// conn connects as the hub user.
func (h *leafHub) conn(t *testing.T) *nats.Conn { return mustHubConn(t, h.hubURL, nats.RootCAs(h.ca)) }

func startLeafHub(t *testing.T, stores ...string) *leafHub {
	t.Helper()
	dir := t.TempDir()
	copyDeployNATS(t, dir)
	pki := newTestPKI(t, "nats")
	cert, key := pki.issue("omni-nats", true)
	h := &leafHub{dir: dir, creds: mintStores(t, dir, stores...), ca: pki.CAFile,
		client: testkit.FreeAddr(t), leaf: testkit.FreeAddr(t), monitor: testkit.FreeAddr(t)}
	h.hubURL = fmt.Sprintf("nats://hub:%s@%s", hubPassword, h.client)
	h.process = newProcess(t, "github.com/nats-io/nats-server/v2", "nats-hub",
		"-c", filepath.Join(dir, "omnisync-leafnodes.conf"), "-m", strconv.Itoa(portOf(h.monitor)))
	h.extraEnv = []string{
		"OMNI_NATS_PORT=" + strconv.Itoa(portOf(h.client)),
		"OMNI_NATS_STORE_DIR=" + filepath.Join(dir, "js"),
		"OMNI_HUB_PASSWORD=" + bcryptOf(t, hubPassword),
		"OMNI_NATS_LEAF_PORT=" + strconv.Itoa(portOf(h.leaf)),
		"OMNI_NATS_TLS_CERT=" + cert,
		"OMNI_NATS_TLS_KEY=" + key,
	}
	h.process.Start()
	testkit.Eventually(t, 30*time.Second, func() bool {
		resp, err := http.Get("http://" + h.monitor + "/healthz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}, "the hub's NATS server up")
	return h
}

// leafConn is one leaf node connection as the hub's /leafz lists it.
type leafConn struct {
	ID      uint64 `json:"id"`
	Name    string `json:"name"`
	Account string `json:"account"`
}

// leafs lists the leaf node connections the hub holds.
func (h *leafHub) leafs() []leafConn {
	resp, err := http.Get("http://" + h.monitor + "/leafz")
	if err != nil {
		return nil
	}
	defer resp.Body.Close()
	var z struct {
		Leafs []leafConn `json:"leafs"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&z)
	return z.Leafs
}

// storeLeaf is a store's leaf node: the shipped deploy/nats/leaf/leaf.conf
// run by nats-server with the environment omni-nats leaf-env writes, its
// uplink to the hub through a proxy the test can cut, stall or drop.
type storeLeaf struct {
	*process
	store  string
	client string
	uplink *testkit.Proxy
	creds  string
}

func startStoreLeaf(t *testing.T, h *leafHub, store string) *storeLeaf {
	t.Helper()
	l := &storeLeaf{store: store, client: testkit.FreeAddr(t), uplink: testkit.StartProxy(t, h.leaf), creds: h.creds[store]}
	envFile := filepath.Join(t.TempDir(), store+".leaf.env")
	bin := testkit.BuildBinary(t, "github.com/omnisync/omnisync/cloud/cmd/omni-nats")
	if out, err := exec.Command(bin, "leaf-env", "--creds", l.creds, "--hub", "nats-leaf://"+l.uplink.Addr(), "--hub-ca", h.ca, "--out", envFile, store).CombinedOutput(); err != nil {
		t.Fatalf("leaf-env %s: %v\n%s", store, err, out)
	}
	env := readEnvFile(t, envFile)
	l.process = newProcess(t, "github.com/nats-io/nats-server/v2", "leaf-"+store, "-c", filepath.Join(h.dir, "leaf", "leaf.conf"))
	l.extraEnv = append(env, "OMNI_LEAF_PORT="+strconv.Itoa(portOf(l.client)), "OMNI_LEAF_STORE_DIR="+filepath.Join(t.TempDir(), "leaf-js"))
	l.Start()
	testkit.Eventually(t, 30*time.Second, func() bool { return h.leafCount(natsacct.StoreAccount(store)) == 1 }, "leaf of %s connected to the hub", store)
	return l
}

// Start starts the leaf on its storage and waits for its client port.
func (l *storeLeaf) Start() {
	l.t.Helper()
	l.process.Start()
	testkit.Eventually(l.t, 20*time.Second, func() bool {
		return exec.Command("bash", "-c", fmt.Sprintf("exec 3<>/dev/tcp/127.0.0.1/%d", portOf(l.client))).Run() == nil
	}, "leaf of %s up", l.store)
}

// URL is where the store's devices connect.
func (l *storeLeaf) URL() string { return "nats://" + l.client }

// leafCount is how many leaf node connections the hub holds for account.
func (h *leafHub) leafCount(account string) int { return len(h.leafsOf(account)) }

// leafsOf lists the hub's leaf node connections in account.
func (h *leafHub) leafsOf(account string) []leafConn {
	var out []leafConn
	for _, c := range h.leafs() {
		if c.Account == account {
			out = append(out, c)
		}
	}
	return out
}

// setEnv sets the environment variable name for the leaf's next start.
func (l *storeLeaf) setEnv(name, value string) {
	for i, kv := range l.extraEnv {
		if strings.HasPrefix(kv, name+"=") {
			l.extraEnv[i] = name + "=" + value
			return
		}
	}
	l.extraEnv = append(l.extraEnv, name+"="+value)
}

// readEnvFile reads KEY='value' lines, as systemd's EnvironmentFile would.
func readEnvFile(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var env []string
	for _, l := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(l, "=")
		if !ok || strings.HasPrefix(l, "#") {
			continue
		}
		env = append(env, k+"="+strings.Trim(v, "'"))
	}
	return env
}

// storeApplied is how many events of store the hub has applied.
func storeApplied(t testing.TB, hubURL, store string) int64 {
	var v storesView
	if getJSON(t, hubURL+"/v1/stores", &v) != http.StatusOK {
		return -1
	}
	var n int64
	for _, s := range v.Stores {
		if s.Store == store {
			for _, d := range s.Devices {
				n += d.EventsApplied
			}
		}
	}
	return n
}

// downsyncStatus is the part of an agent's /v1/status about its caches.
type downsyncStatus struct {
	Downsync struct {
		LastSeq uint64 `json:"last_seq"`
	} `json:"downsync"`
	Pickups struct {
		Synced bool `json:"synced"`
	} `json:"pickups"`
}

// leafOfflineDuration is how long TestChaosStoreLeaf keeps the store's
// uplink down: OMNI_CHAOS_LEAF_OFFLINE (make chaos sets minutes), 6s by
// default inside make test.
func leafOfflineDuration(t *testing.T) time.Duration {
	return envDuration(t, "OMNI_CHAOS_LEAF_OFFLINE", 6*time.Second)
}

// Ensure that a store whose tills reach the chain through its own leaf
// node (the shipped leaf.conf, as omni-nats leaf-env configures it) keeps
// selling while its uplink is down, its devices still talking to each
// other (a request from the fitting room's mirror, on its own agent, is on
// a till's staff queue and claimed there) and to the leaf's JetStream, and
// that when the uplink returns the outboxes drain and the down-sync and
// pickup followers, reading the hub's buckets through the leaf, resume:
// nothing acknowledged is lost or applied twice, and the tills' caches catch up with the hub's bucket.
// Then the uplink dies silently and the leaf is SIGKILLed and restarted:
// under the same server_name the hub replaces the connection it still
// holds at once instead of keeping a stranger's beside it for minutes.
// Meanwhile a store without a leaf (S2) syncs directly.
//
// make test keeps the uplink down for 6 seconds; make chaos for
// OMNI_CHAOS_LEAF_OFFLINE.
func TestChaosStoreLeaf(t *testing.T) {
	t.Parallel()
	offline := leafOfflineDuration(t)
	seed := chaosSeed(t)
	t.Logf("seed %d, S1's uplink down for %v", seed, offline)

	h := startLeafHub(t, "S1", "S2")
	hub := startHubProcess(t, "hub", h.hubURL, "", "--nats-ca", h.ca)
	leaf := startStoreLeaf(t, h, "S1")
	var s1 []*agent
	var targets []loadgen.Target
	for _, d := range []string{"pos-1", "pos-2"} {
		a := startAgent(t, "S1", d, leaf.URL(), "--nats-creds", leaf.creds, "--nats-js-domain", natsacct.HubDomain,
			"--nearby", "S2", "--log-level", "warn")
		s1 = append(s1, a)
		targets = append(targets, loadgen.Target{Store: "S1", Device: d, URL: a.URL})
	}
	// The fitting rooms' mirror has an agent of its own behind the leaf
	// (outside the traffic's books: its events are not sales).
	mirror := startAgent(t, "S1", "mirror-1", leaf.URL(), "--nats-creds", leaf.creds, "--nats-js-domain", natsacct.HubDomain, "--log-level", "warn")
	b := startAgent(t, "S2", "pos-1", "nats://"+h.client, "--nats-creds", h.creds["S2"], "--nats-ca", h.ca, "--nearby", "S1", "--log-level", "warn")
	targets = append(targets, loadgen.Target{Store: "S2", Device: "pos-1", URL: b.URL})

	const rate = 120
	g, stopLoad := startTraffic(t, targets, seed, rate, 2, 40)
	testkit.Eventually(t, 60*time.Second, func() bool { return storeApplied(t, hub.URL, "S1") >= 50 }, "S1's events applied through its leaf")
	stalls := startStallMeter(hub.URL)
	f := newFaults(t, seed)

	// 1. The uplink goes down. The tills go on selling into their
	// outboxes; the hub applies nothing more of S1's (after what was in
	// flight), and the rest of the chain carries on.
	acceptedS1 := func() int {
		n := 0
		for _, e := range g.Accepted() {
			if e.Origin.Store == "S1" {
				n++
			}
		}
		return n
	}
	leaf.uplink.Cut()
	f.record("uplink-cut", "S1's leaf cut off from the hub")
	time.Sleep(2 * time.Second)
	heldS1, heldS2, soldS1 := storeApplied(t, hub.URL, "S1"), storeApplied(t, hub.URL, "S2"), acceptedS1()
	checkStoreLocal(t, leaf, mirror, s1[1])
	time.Sleep(max(offline-2*time.Second, time.Second))
	if got := storeApplied(t, hub.URL, "S1"); got != heldS1 {
		t.Fatalf("the hub applied S1's events (%d, then %d) while its uplink was down", heldS1, got)
	}
	if got := storeApplied(t, hub.URL, "S2"); got <= heldS2 {
		t.Fatalf("S2 stopped syncing (%d applied) while S1's uplink was down", got)
	}
	soldOffline := acceptedS1() - soldS1
	if soldOffline == 0 {
		t.Fatal("S1's tills sold nothing while the uplink was down")
	}
	var pending []uint64
	for _, a := range s1 {
		pending = append(pending, status(t, a).LastSeq)
	}
	leaf.uplink.Heal()
	healed := time.Now()
	f.record("uplink-back", fmt.Sprintf("%d events sold at S1 while it was down", soldOffline))
	testkit.Eventually(t, 3*time.Minute, func() bool {
		for i, a := range s1 {
			if status(t, a).AckedSeq < pending[i] {
				return false
			}
		}
		return true
	}, "S1's outboxes drained through the leaf")
	drained := time.Since(healed)
	f.record("drained", fmt.Sprintf("S1's backlog applied %v after the uplink returned", drained.Round(100*time.Millisecond)))

	// 2. The uplink dies without a word (the hub keeps the connection open)
	// and the leaf is SIGKILLed and started again on its storage. Under
	// the same server_name the hub replaces the dead connection as soon as
	// the leaf is back, and the leaf's JetStream still has what the store
	// kept in it.
	time.Sleep(f.between(500*time.Millisecond, time.Second))
	s1Leaf := natsacct.StoreAccount("S1")
	restartOverDeadUplink := func(name string) (dead leafConn, appliedBefore int64) {
		t.Helper()
		leaf.uplink.Drop()
		leaf.Kill()
		f.record("kill-leaf", fmt.Sprintf("S1's leaf SIGKILLed with its uplink dead; started again as %s", name))
		time.Sleep(f.between(500*time.Millisecond, 1500*time.Millisecond))
		conns := h.leafsOf(s1Leaf)
		if len(conns) != 1 {
			t.Fatalf("the hub holds %d leaf connections of S1 over the dead uplink, want the dead one: %+v", len(conns), conns)
		}
		appliedBefore = storeApplied(t, hub.URL, "S1")
		leaf.setEnv("OMNI_LEAF_NAME", name)
		leaf.Start()
		return conns[0], appliedBefore
	}
	dead, before := restartOverDeadUplink(natsacct.LeafName("S1"))
	restarted := time.Now()
	testkit.Eventually(t, 60*time.Second, func() bool {
		cs := h.leafsOf(s1Leaf)
		return len(cs) == 1 && cs[0].ID != dead.ID && cs[0].Name == natsacct.LeafName("S1") && storeApplied(t, hub.URL, "S1") > before
	}, "the restarted leaf replacing the dead connection: %+v", h.leafs())
	f.record("leaf-back", fmt.Sprintf("the dead connection replaced, S1 applying again %v after the restart", time.Since(restarted).Round(100*time.Millisecond)))
	checkStoreKept(t, leaf)
	leaf.uplink.Heal()

	// What a leaf that came back under another name would do: the hub
	// holds the dead connection beside the new one, until its own pings
	// give up minutes later. (Healing the line ends it here.)
	time.Sleep(f.between(500*time.Millisecond, time.Second))
	dead, before = restartOverDeadUplink(natsacct.LeafName("S1") + "-renamed")
	testkit.Eventually(t, 60*time.Second, func() bool { return storeApplied(t, hub.URL, "S1") > before }, "S1 applying through the renamed leaf")
	if cs := h.leafsOf(s1Leaf); len(cs) != 2 {
		t.Fatalf("a leaf renamed across a restart: the hub holds %d connections of S1 (%+v); want the dead one lingering beside it", len(cs), cs)
	}
	f.record("leaf-renamed", "the hub holds the dead connection beside the renamed leaf's")
	leaf.uplink.Heal()
	testkit.Eventually(t, 30*time.Second, func() bool { return h.leafCount(s1Leaf) == 1 }, "the dead connection gone once the line is back")
	leaf.Kill()
	leaf.setEnv("OMNI_LEAF_NAME", natsacct.LeafName("S1"))
	leaf.Start()
	testkit.Eventually(t, 60*time.Second, func() bool {
		cs := h.leafsOf(s1Leaf)
		return len(cs) == 1 && cs[0].Name == natsacct.LeafName("S1")
	}, "the leaf back under its name")
	time.Sleep(f.between(500*time.Millisecond, time.Second))

	longest, at := stalls.Stop()
	rep := stopLoad()
	vctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	v, verr := loadgen.Verify(vctx, loadgen.Hub{URL: hub.URL, Token: hubToken}, rep.Accepted)

	// The tills behind the leaf read the hub's buckets through it: their
	// product caches reach the bucket's sequence and their pickup orders
	// are in step again.
	down := hubDownJS(t, h.conn(t))
	stockDocs, orders, diffs := downsyncSettled(t, down, rep.Accepted, 90*time.Second)
	bctx, bcancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer bcancel()
	st, err := down.Stream(bctx, downsync.Stream)
	if err != nil {
		t.Fatal(err)
	}
	bucketSeq := st.CachedInfo().State.LastSeq
	for _, a := range s1 {
		testkit.Eventually(t, 60*time.Second, func() bool {
			var s downsyncStatus
			getJSON(t, a.URL+"/v1/status", &s)
			return s.Downsync.LastSeq >= bucketSeq && s.Pickups.Synced
		}, "%s's caches caught up with the hub's buckets (seq %d) through the leaf", a.name, bucketSeq)
	}
	t.Logf(`
store leaf report (seed %d; S1: a leaf node and 2 tills, its uplink down %v, then dead under a SIGKILLed leaf; S2: 1 till direct; 1 hub; %v events/s)
  events acknowledged   %d (%d at S1 while its uplink was down; %d requests retried)
  faults                %d: %s
  positions compared    %d, differences %d
  lost                  %d
  double-applied        %d
  down-sync             %d positions and %d pickup orders compared with the books, differences %d; S1's tills caught up to seq %d through the leaf
  longest stall         %v with no event applied at the hub (ending %.1fs into the faults); S1's backlog applied %v after its uplink returned
faults:
%s`, seed, offline, rate, len(rep.Accepted), soldOffline, rep.Total.Retried,
		f.total(), f.summary(), v.Positions, len(v.Differences), v.Lost, v.DoubleApplied,
		stockDocs, orders, diffs, bucketSeq, longest.Round(10*time.Millisecond), at.Seconds(), drained.Round(100*time.Millisecond), strings.Join(f.log, "\n"))
	requireBalanced(t, v, verr)
}

// checkStoreLocal checks that with the uplink down the store's agents
// still reach each other through the leaf: a shopper's request at the
// mirror served by one agent shows on the other agent's staff queue, and
// the claim made there shows back on the first (the staff queue shared on
// the store's subjects, which the leaf keeps to itself). And that the
// leaf's own JetStream (the store's domain) stores and serves what the
// store keeps to itself.
func checkStoreLocal(t *testing.T, l *storeLeaf, mirror, handheld *agent) {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	shopper := &http.Client{Jar: jar, Timeout: 10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := shopper.Get(mirror.URL + "/kiosk/?zone=room-1")
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	m := csrfRE.FindSubmatch(page)
	if m == nil {
		t.Fatalf("the mirror's page has no form token (%d)", resp.StatusCode)
	}
	asked := time.Now()
	resp, err = shopper.PostForm(mirror.URL+"/kiosk/assist", url.Values{"csrf": {string(m[1])}, "zone": {"room-1"}, "sku": {"LEAF-TEE-S"}, "from": {"LEAF-TEE-M"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("asking for another size at the mirror: %d", resp.StatusCode)
	}
	type staffReq struct {
		ID, Zone, State, Origin string
		ClaimedBy               string `json:"claimed_by"`
		Fetch                   struct{ SKU string }
	}
	find := func(a *agent, cond func(staffReq) bool) *staffReq {
		var q struct{ Requests []staffReq }
		if getJSON(t, a.URL+"/staff/requests", &q) != http.StatusOK {
			return nil
		}
		for i, r := range q.Requests {
			if r.Fetch.SKU == "LEAF-TEE-S" && cond(r) {
				return &q.Requests[i]
			}
		}
		return nil
	}
	var req *staffReq
	testkit.Eventually(t, 10*time.Second, func() bool {
		req = find(handheld, func(r staffReq) bool { return r.State == "open" && r.Zone == "room-1" })
		return req != nil
	}, "the mirror's request on %s's staff queue with the uplink down", handheld.name)
	seen := time.Since(asked)
	if req.Origin != "mirror-1" {
		t.Fatalf("the request on %s's queue names its origin %q", handheld.name, req.Origin)
	}
	claim, err := http.NewRequest(http.MethodPost, handheld.URL+"/staff/requests/"+url.PathEscape(req.ID)+"/claim", strings.NewReader(`{"by":"ana"}`))
	if err != nil {
		t.Fatal(err)
	}
	claim.Header.Set("Content-Type", "application/json")
	resp, err = httpClient.Do(claim)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("claiming on %s: %d", handheld.name, resp.StatusCode)
	}
	testkit.Eventually(t, 10*time.Second, func() bool {
		return find(mirror, func(r staffReq) bool { return r.ID == req.ID && r.State == "claimed" && r.ClaimedBy == "ana" }) != nil
	}, "the claim made on %s back on %s's staff queue", handheld.name, mirror.name)
	t.Logf("uplink down: the mirror's request on the other agent's staff queue within %v, its claim back on the first", seen.Round(time.Millisecond))

	opt, err := nats.NkeyOptionFromSeed(l.creds)
	if err != nil {
		t.Fatal(err)
	}
	till, err := nats.Connect(l.URL(), opt)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(till.Close)
	js, err := jetstream.NewWithDomain(till, natsacct.LeafDomain(l.store))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{Name: "STORE_LOCAL", Subjects: []string{"store.kept.>"}, Storage: jetstream.FileStorage}); err != nil {
		t.Fatalf("the leaf's JetStream (domain %s) with the uplink down: %v", natsacct.LeafDomain(l.store), err)
	}
	if _, err := js.Publish(ctx, "store.kept.note", []byte("kept in the store")); err != nil {
		t.Fatal(err)
	}
	checkStoreKept(t, l)
}

// checkStoreKept checks that the leaf's JetStream, addressed by the
// store's domain, holds what checkStoreLocal kept there.
func checkStoreKept(t *testing.T, l *storeLeaf) {
	t.Helper()
	opt, err := nats.NkeyOptionFromSeed(l.creds)
	if err != nil {
		t.Fatal(err)
	}
	var m *jetstream.RawStreamMsg
	testkit.Eventually(t, 30*time.Second, func() bool {
		nc, err := nats.Connect(l.URL(), opt)
		if err != nil {
			return false
		}
		defer nc.Close()
		js, err := jetstream.NewWithDomain(nc, natsacct.LeafDomain(l.store))
		if err != nil {
			return false
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		s, err := js.Stream(ctx, "STORE_LOCAL")
		if err != nil {
			return false
		}
		m, err = s.GetLastMsgForSubject(ctx, "store.kept.note")
		return err == nil
	}, "the leaf's JetStream (domain %s) holding the store's message", natsacct.LeafDomain(l.store))
	if string(m.Data) != "kept in the store" {
		t.Fatalf("the leaf's JetStream holds %q", m.Data)
	}
}

// Ensure that the shipped leaf.conf will not start without the identity
// omni-nats leaf-env gives it: nats-server refuses it without its
// server_name or its JetStream domain, rather than come up under a random
// name (its server id, new at every start) or in no domain (where it
// would answer the hub's JetStream API for the hub).
func TestLeafConfNeedsIdentity(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	copyDeployNATS(t, dir)
	creds := mintStores(t, dir, "S1")["S1"]
	envFile := filepath.Join(t.TempDir(), "S1.leaf.env")
	omniNATS := testkit.BuildBinary(t, "github.com/omnisync/omnisync/cloud/cmd/omni-nats")
	ca := newTestPKI(t, "nats").CAFile
	if out, err := exec.Command(omniNATS, "leaf-env", "--creds", creds, "--hub", "nats-leaf://127.0.0.1:7422", "--hub-ca", ca, "--out", envFile, "S1").CombinedOutput(); err != nil {
		t.Fatalf("leaf-env: %v\n%s", err, out)
	}
	env := append(readEnvFile(t, envFile), "OMNI_LEAF_PORT=4222", "OMNI_LEAF_STORE_DIR="+t.TempDir())
	server := testkit.BuildBinary(t, "github.com/nats-io/nats-server/v2")
	check := func(env []string) error {
		cmd := exec.Command(server, "-t", "-c", filepath.Join(dir, "leaf", "leaf.conf"))
		cmd.Env = env
		out, err := cmd.CombinedOutput()
		if err != nil {
			return fmt.Errorf("%w: %s", err, out)
		}
		return nil
	}
	if err := check(env); err != nil {
		t.Fatalf("the leaf's configuration with leaf-env's environment: %v", err)
	}
	for _, missing := range []string{"OMNI_LEAF_NAME", "OMNI_LEAF_DOMAIN"} {
		var without []string
		for _, kv := range env {
			if !strings.HasPrefix(kv, missing+"=") {
				without = append(without, kv)
			}
		}
		if err := check(without); err == nil {
			t.Errorf("nats-server accepted leaf.conf without %s", missing)
		}
	}
}

// Ensure that a store's leaf node gives its devices nothing the store's
// own credentials would not: through S1's leaf, under the hub's domain,
// the down-sync bucket, S1's pickup orders, heartbeats and
// acknowledgements answer, while S2's pickup orders, heartbeats and
// acknowledgements and the events stream do not; that the store's staff
// queue subjects stay on the leaf; and that a leaf that does not trust
// the hub's certificate never connects.
func TestLeafIsolation(t *testing.T) {
	t.Parallel()
	h := startLeafHub(t, "S1", "S2")
	startHubProcess(t, "hub", h.hubURL, "", "--nats-ca", h.ca)
	leaf := startStoreLeaf(t, h, "S1")
	// The leaf node port takes TLS only: a leaf that does not trust the
	// hub's certificate never connects.
	env := filepath.Join(t.TempDir(), "S1.leaf.env")
	other := newTestPKI(t, "other").CAFile
	bin := testkit.BuildBinary(t, "github.com/omnisync/omnisync/cloud/cmd/omni-nats")
	if out, err := exec.Command(bin, "leaf-env", "--creds", leaf.creds, "--hub", "nats-leaf://"+h.leaf, "--hub-ca", other, "--out", env, "S1").CombinedOutput(); err != nil {
		t.Fatalf("leaf-env: %v\n%s", err, out)
	}
	untrusting := newProcess(t, "github.com/nats-io/nats-server/v2", "leaf-S1-untrusting", "-c", filepath.Join(h.dir, "leaf", "leaf.conf"))
	untrusting.extraEnv = append(readEnvFile(t, env), "OMNI_LEAF_NAME=omni-leaf-S1-untrusting",
		"OMNI_LEAF_PORT="+strconv.Itoa(portOf(testkit.FreeAddr(t))), "OMNI_LEAF_STORE_DIR="+t.TempDir())
	untrusting.Start()
	opt, err := nats.NkeyOptionFromSeed(leaf.creds)
	if err != nil {
		t.Fatal(err)
	}
	nc, err := nats.Connect(leaf.URL(), opt, nats.CustomInboxPrefix(subjects.InboxPrefix("S1")))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.NewWithDomain(nc, natsacct.HubDomain)
	if err != nil {
		t.Fatal(err)
	}
	short := func() context.Context {
		c, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		t.Cleanup(cancel)
		return c
	}
	// What S1 may read answers through its leaf.
	testkit.Eventually(t, 30*time.Second, func() bool {
		_, err := js.Stream(short(), downsync.Stream)
		return err == nil
	}, "the down-sync bucket through S1's leaf")
	if _, err := js.OrderedConsumer(short(), downsync.PickupStream, jetstream.OrderedConsumerConfig{FilterSubjects: []string{downsync.PickupFilter("S1")}}); err != nil {
		t.Fatalf("S1's pickup orders through its leaf: %v", err)
	}

	if _, err := nc.Request(subjects.HubSync("S1", "pos-1"), []byte(`{"store":"S1","device":"pos-1"}`), 5*time.Second); err != nil {
		t.Fatalf("the hub did not answer S1's heartbeat through its leaf: %v", err)
	}
	hubConn := h.conn(t)
	own, err := nc.SubscribeSync(subjects.Ack("S1", "pos-1"))
	if err != nil {
		t.Fatal(err)
	}
	acks, err := nc.SubscribeSync(subjects.Ack("S2", "pos-1"))
	if err != nil {
		t.Fatal(err)
	}
	_ = nc.Flush()
	testkit.Eventually(t, 10*time.Second, func() bool {
		_ = hubConn.Publish(subjects.Ack("S1", "pos-1"), []byte(`{"epoch":1,"seq":1}`))
		_, err := own.NextMsg(200 * time.Millisecond)
		return err == nil
	}, "S1's acknowledgements reaching its leaf")

	// What it may not, does not.
	if err := hubConn.Publish(subjects.Ack("S2", "pos-1"), []byte(`{"epoch":1,"seq":1}`)); err != nil {
		t.Fatal(err)
	}
	if _, err := js.OrderedConsumer(short(), downsync.PickupStream, jetstream.OrderedConsumerConfig{FilterSubjects: []string{downsync.PickupFilter("S2")}}); err == nil {
		t.Error("S2's pickup orders answered through S1's leaf")
	}
	if _, err := js.Stream(short(), subjects.StreamEvents); err == nil {
		t.Error("the events stream answered through S1's leaf")
	}
	if _, err := js.CreateConsumer(short(), subjects.StreamEvents, jetstream.ConsumerConfig{AckPolicy: jetstream.AckNonePolicy}); err == nil {
		t.Error("a consumer on the events stream was created through S1's leaf")
	}
	if _, err := nc.Request(subjects.HubSync("S2", "pos-1"), []byte(`{"store":"S2","device":"pos-1"}`), 2*time.Second); err == nil {
		t.Error("the hub answered S2's heartbeat through S1's leaf")
	}
	if m, err := acks.NextMsg(time.Second); err == nil {
		t.Errorf("S2's acknowledgement reached S1's leaf: %s", m.Data)
	}
	checkStaffStaysOnLeaf(t, h, leaf, nc)
	testkit.Eventually(t, 30*time.Second, func() bool {
		b, _ := os.ReadFile(untrusting.log.Name())
		return strings.Contains(string(b), "certificate signed by unknown authority")
	}, "the untrusting leaf refusing the hub's certificate")
	for _, c := range h.leafs() {
		if c.Name == "omni-leaf-S1-untrusting" {
			t.Errorf("a leaf that does not trust the hub's certificate connected: %+v", c)
		}
	}
}

// checkStaffStaysOnLeaf checks that the store's staff queue subjects
// (omni.staff.<store>.*) neither leave the leaf for the hub nor come from
// it (leaf.conf's deny_imports and deny_exports): an S1 agent connected to
// the hub directly, which the store's credentials allow, hears nothing of
// what the agents behind the leaf publish there, and they nothing of its.
func checkStaffStaysOnLeaf(t *testing.T, h *leafHub, l *storeLeaf, behind *nats.Conn) {
	t.Helper()
	opt, err := nats.NkeyOptionFromSeed(l.creds)
	if err != nil {
		t.Fatal(err)
	}
	direct, err := nats.Connect("nats://"+h.client, opt, nats.RootCAs(h.ca))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(direct.Close)
	atHub, err := direct.SubscribeSync(subjects.StaffStore(l.store))
	if err != nil {
		t.Fatal(err)
	}
	onLeaf, err := behind.SubscribeSync(subjects.StaffStore(l.store))
	if err != nil {
		t.Fatal(err)
	}
	_ = direct.Flush()
	_ = behind.Flush()
	// A second behind the leaf: what it publishes reaches its own
	// subscribers at once, and the hub's never.
	deadline := time.Now().Add(time.Second)
	for time.Now().Before(deadline) {
		if err := behind.Publish(subjects.StaffChanges(l.store), []byte(`{}`)); err != nil {
			t.Fatal(err)
		}
		if err := direct.Publish(subjects.StaffChanges(l.store), []byte(`{"from":"hub"}`)); err != nil {
			t.Fatal(err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if _, err := onLeaf.NextMsg(time.Second); err != nil {
		t.Fatalf("the staff subject behind the leaf: %v", err)
	}
	for {
		m, err := onLeaf.NextMsg(10 * time.Millisecond)
		if err != nil {
			break
		}
		if string(m.Data) != "{}" {
			t.Fatalf("a staff message published at the hub reached the agents behind the leaf: %s", m.Data)
		}
	}
	for {
		m, err := atHub.NextMsg(10 * time.Millisecond)
		if err != nil {
			break
		}
		if string(m.Data) == "{}" {
			t.Fatal("a staff message published behind the leaf crossed its uplink to the hub")
		}
	}
}
