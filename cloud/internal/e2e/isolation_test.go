package e2e

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/omnisync/omnisync/shared/downsync"
	"github.com/omnisync/omnisync/shared/subjects"
	"github.com/omnisync/omnisync/shared/testkit"
)

// isolatedNATS runs a real nats-server with the shipped deploy/nats
// configuration and two minted stores, S1 and S2.
type isolatedNATS struct {
	port   int
	hubURL string
	store  map[string]string // store -> URL with its credentials
}

func startIsolatedNATS(t *testing.T) *isolatedNATS {
	t.Helper()
	return startShippedNATS(t, "omnisync.conf", nil)
}

// startShippedNATS runs nats-server on the shipped deploy/nats file conf
// with extra environment, and mints S1 and S2.
func startShippedNATS(t *testing.T, conf string, env []string, opts ...nats.Option) *isolatedNATS {
	t.Helper()
	dir := t.TempDir()
	for _, f := range []string{"omnisync.conf", "omnisync-tls.conf", "users.conf", "mint-store.sh"} {
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
	n := &isolatedNATS{port: port, store: map[string]string{}}
	for _, s := range []string{"S1", "S2"} {
		cmd := exec.Command("bash", filepath.Join(dir, "mint-store.sh"), s, addr)
		cmd.Env = append(os.Environ(), "OMNI_NATS_CONF_DIR="+dir, "PATH=/usr/bin:/bin") // plain passwords: no nats CLI
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("mint-store.sh %s: %v", s, err)
		}
		n.store[s] = strings.TrimSpace(string(out))
	}
	n.hubURL = fmt.Sprintf("nats://hub:hub-secret@%s", addr)
	p := newProcess(t, "github.com/nats-io/nats-server/v2", "nats-server", "-c", filepath.Join(dir, conf))
	p.extraEnv = append([]string{"OMNI_NATS_PORT=" + strconv.Itoa(port), "OMNI_NATS_STORE_DIR=" + filepath.Join(dir, "js"), "OMNI_HUB_PASSWORD=hub-secret"}, env...)
	p.Start()
	testkit.Eventually(t, 20*time.Second, func() bool {
		nc, err := nats.Connect(n.hubURL, opts...)
		if err == nil {
			nc.Close()
		}
		return err == nil
	}, "nats-server with the shipped config up")
	return n
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
	n := startIsolatedNATS(t)
	h := startHub(t, n.hubURL, "")

	s1, errs := permErrors(t, n.store["S1"], nats.CustomInboxPrefix(subjects.InboxPrefix("S1")))

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
	// Stores may create consumers on the bucket's stream, and NATS does not
	// check a push consumer's deliver subject against the creator's
	// permissions: S1 can aim one at S2's subjects. What arrives there is
	// the bucket's own (hub-written, read-only) content under its original
	// subject with a $JS.ACK reply; S2's agent ignores such relays on its
	// ack subject (see uplink's TestUplink_IgnoresRelayedAcks), and no
	// stream captures them, so S2's books and dead letters stay clean.
	for _, target := range []string{subjects.Ack("S2", "pos-1"), subjects.Event("S2", "pos-1")} {
		if _, err := js.CreatePushConsumer(short(), downsync.Stream, jetstream.ConsumerConfig{
			DeliverSubject: target, AckPolicy: jetstream.AckNonePolicy,
		}); err == nil {
			t.Logf("NATS let S1 aim a push consumer at %s (relays are ignored; see the comment)", target)
		}
	}
	got = strings.Join(errs(), "\n")
	for _, want := range []string{
		`Publish to "$KV.omni_down.cat.FORGED"`,
		`Publish to "$JS.API.CONSUMER.CREATE.OMNI_EVENTS`,
	} {
		if !strings.Contains(got, want) {
			t.Errorf("no permissions violation for %s; server said:\n%s", want, got)
		}
	}

	// Meanwhile S1's own agent, with its credentials, syncs as usual, reads
	// the catalog into its cache, and nothing S1 tried reached S2's books.
	catalogLine := `{"sku":"SKU-ISO","product_id":"P-ISO","gtins":["05012302000003"],"name":"Isolation Tee","price":10,"currency":"EUR"}` + "\n"
	importCatalog(t, h.URL, []byte(catalogLine))
	a := startAgent(t, "S1", "pos-1", n.store["S1"])
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

func mustHubConn(t *testing.T, url string) *nats.Conn {
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	return nc
}
