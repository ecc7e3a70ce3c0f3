package e2e

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"golang.org/x/crypto/bcrypt"

	"github.com/omnisync/omnisync/shared/downsync"
	"github.com/omnisync/omnisync/shared/natsacct"
	"github.com/omnisync/omnisync/shared/subjects"
	"github.com/omnisync/omnisync/shared/testkit"
)

// isolatedNATS runs a real nats-server with the shipped deploy/nats
// configuration and two minted stores: S1 by omni-nats mint-store (an nkey
// credentials file), S2 by mint-store.sh (a password user).
type isolatedNATS struct {
	port   int
	dir    string
	proc   *process
	hubURL string
	store  map[string]storeCreds
}

// storeCreds is how a minted store connects.
type storeCreds struct {
	URL   string // with the password for a password user
	Creds string // the credentials file for an nkey user
}

// opts are the connect options of the store's credentials.
func (c storeCreds) opts(t testing.TB) []nats.Option {
	t.Helper()
	if c.Creds == "" {
		return nil
	}
	o, err := nats.NkeyOptionFromSeed(c.Creds)
	if err != nil {
		t.Fatal(err)
	}
	return []nats.Option{o}
}

// agentArgs are the agent's flags for the store's credentials (after its
// --nats-url).
func (c storeCreds) agentArgs() []string {
	if c.Creds == "" {
		return nil
	}
	return []string{"--nats-creds", c.Creds}
}

// hubPassword is the hub user's password in the shipped configuration
// tests run; the server is given only its bcrypt hash.
const hubPassword = "hub-secret-for-tests-only"

func startIsolatedNATS(t *testing.T) *isolatedNATS {
	t.Helper()
	return startShippedNATS(t, "omnisync.conf", nil)
}

// startShippedNATS runs nats-server on the shipped deploy/nats file conf
// with extra environment, and mints S1 and S2.
func startShippedNATS(t *testing.T, conf string, env []string, opts ...nats.Option) *isolatedNATS {
	t.Helper()
	return startShippedNATSFor(t, conf, env, nil, opts...)
}

// startShippedNATSFor is startShippedNATS that also mints the stores of
// more (with omni-nats, nkeys) before the server starts.
func startShippedNATSFor(t *testing.T, conf string, env, more []string, opts ...nats.Option) *isolatedNATS {
	t.Helper()
	dir := t.TempDir()
	for _, f := range []string{"omnisync.conf", "omnisync-tls.conf", "omnisync-mtls.conf", "accounts.conf", "stores.conf", "mint-store.sh"} {
		b, err := os.ReadFile(filepath.Join("../../../deploy/nats", f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, f), b, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	addr := testkit.FreeAddr(t)
	port, _ := strconv.Atoi(addr[strings.LastIndexByte(addr, ':')+1:])
	n := &isolatedNATS{port: port, dir: dir, store: map[string]storeCreds{}}
	omniNATS := testkit.BuildBinary(t, "github.com/omnisync/omnisync/cloud/cmd/omni-nats")
	creds := filepath.Join(t.TempDir(), "S1.nk")
	if out, err := exec.Command(omniNATS, "mint-store", "--conf-dir", dir, "--out", creds, "S1").CombinedOutput(); err != nil {
		t.Fatalf("omni-nats mint-store S1: %v\n%s", err, out)
	}
	n.store["S1"] = storeCreds{URL: "nats://" + addr, Creds: creds}
	// mint-store.sh hashes the password with omni-nats passwd.
	cmd := exec.Command("bash", filepath.Join(dir, "mint-store.sh"), "S2", addr)
	cmd.Env = append(os.Environ(), "OMNI_NATS_CONF_DIR="+dir, "PATH="+filepath.Dir(omniNATS)+":/usr/bin:/bin")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("mint-store.sh S2: %v", err)
	}
	n.store["S2"] = storeCreds{URL: strings.TrimSpace(string(out))}
	checkMintedAlike(t, filepath.Join(dir, "stores.conf"))
	for _, st := range more {
		creds := filepath.Join(t.TempDir(), st+".nk")
		if out, err := exec.Command(omniNATS, "mint-store", "--conf-dir", dir, "--out", creds, st).CombinedOutput(); err != nil {
			t.Fatalf("omni-nats mint-store %s: %v\n%s", st, err, out)
		}
		n.store[st] = storeCreds{URL: "nats://" + addr, Creds: creds}
	}

	hash, err := bcrypt.GenerateFromPassword([]byte(hubPassword), 4)
	if err != nil {
		t.Fatal(err)
	}
	n.hubURL = fmt.Sprintf("nats://hub:%s@%s", hubPassword, addr)
	p := newProcess(t, "github.com/nats-io/nats-server/v2", "nats-server", "-c", filepath.Join(dir, conf))
	p.extraEnv = append([]string{"OMNI_NATS_PORT=" + strconv.Itoa(port), "OMNI_NATS_STORE_DIR=" + filepath.Join(dir, "js"), "OMNI_HUB_PASSWORD=" + string(hash)}, env...)
	p.Start()
	n.proc = p
	testkit.Eventually(t, 20*time.Second, func() bool {
		nc, err := nats.Connect(n.hubURL, opts...)
		if err == nil {
			nc.Close()
		}
		return err == nil
	}, "nats-server with the shipped config up")
	return n
}

// checkMintedAlike checks that mint-store.sh wrote S2's block as
// natsacct.StoreBlock renders it, so the two tools cannot drift apart.
func checkMintedAlike(t *testing.T, storesFile string) {
	t.Helper()
	b, err := os.ReadFile(storesFile)
	if err != nil {
		t.Fatal(err)
	}
	_, s2, ok := strings.Cut(string(b), "  # store S2, ")
	if !ok {
		t.Fatalf("no S2 block in %s", b)
	}
	hash := regexp.MustCompile(`password: "([^"]+)"`).FindStringSubmatch(s2)
	if hash == nil || !natsacct.IsBcrypt(hash[1]) {
		t.Fatalf("mint-store.sh wrote no bcrypt hash:\n%s", s2)
	}
	want, err := natsacct.StoreBlock("S2", natsacct.User{Name: "store-S2", Bcrypt: hash[1]}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	_, want, _ = strings.Cut(want, "\n")
	_, got, _ := strings.Cut(s2, "\n")
	if got != want {
		t.Fatalf("mint-store.sh's block differs from natsacct.StoreBlock:\n%s\nwant:\n%s", got, want)
	}
}

// via is the store's NATS URL (its password, if any) with its host:port
// replaced by addr: a proxy in front of the server.
func (c storeCreds) via(t testing.TB, addr string) string {
	t.Helper()
	u, err := url.Parse(c.URL)
	if err != nil {
		t.Fatal(err)
	}
	u.Host = addr
	return u.String()
}

// connectStore connects as a minted store, with its agents' inbox prefix.
func (n *isolatedNATS) connectStore(t *testing.T, store string, opts ...nats.Option) (*nats.Conn, func() []string) {
	t.Helper()
	c := n.store[store]
	opts = append(append(c.opts(t), nats.CustomInboxPrefix(subjects.InboxPrefix(store))), opts...)
	return permErrors(t, c.URL, opts...)
}

// startStoreAgent starts an agent of store with its credentials.
func (n *isolatedNATS) startStoreAgent(t *testing.T, store, device string, extra ...string) *agent {
	t.Helper()
	c := n.store[store]
	return startAgent(t, store, device, c.URL, append(c.agentArgs(), extra...)...)
}

// hubDownJS is the hub's JetStream of the down-sync buckets, in their own
// account on the shipped configuration.
func hubDownJS(t *testing.T, nc *nats.Conn) jetstream.JetStream {
	t.Helper()
	js, err := jetstream.NewWithAPIPrefix(nc, natsacct.DownAPIPrefix)
	if err != nil {
		t.Fatal(err)
	}
	return js
}

// permErrors connects as url and collects the server's permission errors.
func permErrors(t *testing.T, url string, opts ...nats.Option) (*nats.Conn, func() []string) {
	t.Helper()
	var mu sync.Mutex
	var errs []string
	opts = append(opts, nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
		mu.Lock()
		errs = append(errs, err.Error())
		mu.Unlock()
	}))
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	return nc, func() []string {
		_ = nc.Flush()
		time.Sleep(100 * time.Millisecond)
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), errs...)
	}
}

// Ensure that with the shipped NATS configuration store S1 cannot publish
// as S2, read S2's acknowledgements or replies, or touch the hub's stream
// and consumer, while its own agent syncs normally.
func TestStoreIsolation(t *testing.T) {
	t.Parallel()
	n := startIsolatedNATS(t)
	h := startHub(t, n.hubURL, "")

	s1, errs := n.connectStore(t, "S1")

	// Publishing as another store is refused by the server.
	if err := s1.Publish(subjects.Event("S2", "pos-1"), []byte(`{}`)); err != nil {
		t.Fatal(err)
	}
	// Subscribing to another store's acknowledgements, to every inbox, or to
	// the JetStream API is refused.
	for _, subj := range []string{subjects.Ack("S2", "pos-1"), "_INBOX.>", "_INBOX.S2.>", "$JS.API.>", subjects.EventsAll} {
		if _, err := s1.SubscribeSync(subj); err != nil {
			t.Fatal(err)
		}
	}
	got := strings.Join(errs(), "\n")
	for _, want := range []string{
		`Publish to "omni.ev.S2.pos-1"`,
		`Subscription to "omni.ack.S2.pos-1"`,
		`Subscription to "_INBOX.>"`,
		`Subscription to "_INBOX.S2.>"`,
		`Subscription to "$JS.API.>"`,
		`Subscription to "omni.ev.>"`,
	} {
		if !strings.Contains(got, want) {
			t.Errorf("no permissions violation for %s; server said:\n%s", want, got)
		}
	}
	// The hub's consumer cannot be read or deleted by a store.
	js, err := jetstream.New(s1)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if _, err := js.Consumer(ctx, subjects.StreamEvents, subjects.HubConsumer); err == nil {
		t.Fatal("store read the hub's consumer")
	}
	if err := js.DeleteConsumer(ctx, subjects.StreamEvents, subjects.HubConsumer); err == nil {
		t.Fatal("store deleted the hub's consumer")
	}

	// The down-sync bucket is read-only for stores: no writes, no consumers
	// on the events stream, no push consumer aimed at another store.
	short := func() context.Context {
		c, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		t.Cleanup(cancel)
		return c
	}
	if _, err := js.Publish(short(), downsync.Subject(downsync.ProductKey("FORGED")), []byte(`{"id":"FORGED","version":999}`)); err == nil {
		t.Fatal("store wrote to the down-sync bucket")
	}
	if _, err := js.CreateConsumer(short(), subjects.StreamEvents, jetstream.ConsumerConfig{AckPolicy: jetstream.AckNonePolicy}); err == nil {
		t.Fatal("store created a consumer on the events stream")
	}
	// NATS does not check a push consumer's deliver subject against its
	// creator's permissions, but the consumers a store creates live in the
	// buckets' own account: whatever subject S1 names, its consumer
	// delivers there, where nobody listens. S2's acknowledgements, replies
	// and events, the hub's heartbeat service and the pickup bucket get
	// nothing, and neither does S1's own inbox.
	hubDown := hubDownJS(t, mustHubConn(t, n.hubURL))
	testkit.Eventually(t, 10*time.Second, func() bool {
		st, err := hubDown.Stream(short(), downsync.Stream)
		return err == nil && st.CachedInfo().State.Msgs > 0
	}, "the hub's first tick in the down-sync bucket")
	s2, _ := n.connectStore(t, "S2")
	var relayed sync.Map
	for _, subj := range []string{subjects.Ack("S2", "pos-1"), subjects.InboxPrefix("S2") + ".>"} {
		if _, err := s2.Subscribe(subj, func(m *nats.Msg) { relayed.Store(m.Subject, subj) }); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s1.Subscribe(subjects.InboxPrefix("S1")+".push", func(m *nats.Msg) { relayed.Store(m.Subject, "S1's inbox") }); err != nil {
		t.Fatal(err)
	}
	var aimed int
	for _, target := range []string{
		subjects.Ack("S2", "pos-1"), subjects.Event("S2", "pos-1"), subjects.HubSync("S2", "pos-1"),
		subjects.InboxPrefix("S2") + ".x", subjects.InboxPrefix("S1") + ".push", downsync.PickupSubject(downsync.PickupKey("S2", "FORGED")),
	} {
		for _, stream := range []string{downsync.Stream, downsync.PickupStream} {
			cfg := jetstream.ConsumerConfig{DeliverSubject: target, AckPolicy: jetstream.AckNonePolicy}
			if stream == downsync.PickupStream {
				cfg.FilterSubject = downsync.PickupFilter("S1")
			}
			if _, err := js.CreatePushConsumer(short(), stream, cfg); err == nil {
				aimed++
			}
		}
	}
	if aimed == 0 {
		t.Fatal("no push consumer created at all: the check below proves nothing")
	}
	time.Sleep(2 * time.Second)
	relayed.Range(func(k, v any) bool {
		t.Errorf("a push consumer of S1 delivered %s to %v", k, v)
		return true
	})
	if kv, err := hubDown.KeyValue(short(), downsync.PickupBucket); err != nil {
		t.Fatal(err)
	} else if _, err := kv.Get(short(), downsync.PickupKey("S2", "FORGED")); err == nil {
		t.Error("a push consumer of S1 wrote into S2's pickup orders")
	}

	// Nor can S1 ask the hub for S2's watermarks, or read the events
	// stream in any way.
	// Each refusal costs a timeout: try them all at once.
	var wg sync.WaitGroup
	for subj, body := range map[string]string{
		subjects.HubSync("S2", "pos-1"):                                                            `{"store":"S2","device":"pos-1"}`,
		"$JS.API.STREAM.INFO." + subjects.StreamEvents:                                             `{"subjects_filter":">"}`,
		"$JS.API.STREAM.MSG.GET." + subjects.StreamEvents:                                          `{"seq":1}`,
		"$JS.API.DIRECT.GET." + subjects.StreamEvents + "." + subjects.Event("S2", "pos-1"):        ``,
		"$JS.API.CONSUMER.CREATE." + subjects.StreamEvents + ".x." + subjects.Event("S2", "pos-1"): `{"stream_name":"OMNI_EVENTS","config":{"name":"x","filter_subject":"omni.ev.S2.pos-1"}}`,
		"$JS.API.CONSUMER.MSG.NEXT." + subjects.StreamEvents + "." + subjects.HubConsumer:          `{"batch":1}`,
	} {
		wg.Go(func() {
			if m, err := s1.Request(subj, []byte(body), time.Second); err == nil {
				t.Errorf("%s answered: %s", subj, m.Data)
			}
		})
	}
	wg.Wait()
	got = strings.Join(errs(), "\n")
	for _, want := range []string{
		`Publish to "$KV.omni_down.cat.FORGED"`,
		`Publish to "$JS.API.CONSUMER.CREATE.OMNI_EVENTS`,
		`Publish to "omni.hub.sync.S2.pos-1"`,
		`Publish to "$JS.API.STREAM.INFO.OMNI_EVENTS"`,
		`Publish to "$JS.API.DIRECT.GET.OMNI_EVENTS`,
	} {
		if !strings.Contains(got, want) {
			t.Errorf("no permissions violation for %s; server said:\n%s", want, got)
		}
	}

	// Meanwhile S1's own agent, with its credentials, syncs as usual, reads
	// the catalog into its cache, and nothing S1 tried reached S2's books.
	catalogLine := `{"sku":"SKU-ISO","product_id":"P-ISO","gtins":["05012302000003"],"name":"Isolation Tee","price":10,"currency":"EUR"}` + "\n"
	importCatalog(t, h.URL, []byte(catalogLine))
	a := n.startStoreAgent(t, "S1", "pos-1")
	testkit.Eventually(t, 20*time.Second, func() bool {
		st, v := lookup(t, a.URL, "SKU-ISO")
		return st == http.StatusOK && v.Product.Name == "Isolation Tee"
	}, "S1's cache bootstrapped with its store credentials")
	mustPost(t, a.URL, receiptBody("SKU-ISO", 5))
	waitDrained(t, a, 20*time.Second)
	testkit.Eventually(t, 10*time.Second, func() bool { return onHand(t, h.URL, "SKU-ISO")["S1"] == 5 }, "S1's receipt applied")
	if got := onHand(t, h.URL, "SKU-ISO")["S2"]; got != 0 {
		t.Fatalf("S2 books changed: %d", got)
	}
	var dls struct {
		DeadLetters []map[string]any `json:"dead_letters"`
	}
	getJSON(t, h.URL+"/v1/deadletters?store=S2", &dls)
	if len(dls.DeadLetters) != 0 {
		t.Fatalf("S2 has dead letters after S1's attempts: %v", dls)
	}
	cons, err := jetstream.New(mustHubConn(t, n.hubURL))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cons.Consumer(context.Background(), subjects.StreamEvents, subjects.HubConsumer); err != nil {
		t.Fatalf("the hub's consumer is gone: %v", err)
	}
}

func mustHubConn(t *testing.T, url string, opts ...nats.Option) *nats.Conn {
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	return nc
}
