package runner

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/omnisync/omnisync/cloud/internal/automation"
	"github.com/omnisync/omnisync/cloud/internal/consent"
	"github.com/omnisync/omnisync/cloud/internal/egress"
	"github.com/omnisync/omnisync/cloud/internal/pii"
	"github.com/omnisync/omnisync/cloud/internal/store"
	"github.com/omnisync/omnisync/shared/testkit"
)

const secret = "whsec_0123456789abcdef"

// consents is an in-memory ConsentChecker: customer → allowed.
type consents struct {
	mu    sync.Mutex
	allow map[string]bool
	asked int
}

func (c *consents) May(_ context.Context, customer, purpose, channel string, _ time.Time) (bool, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.asked++
	return c.allow[customer], nil
}

func (c *consents) set(customer string, ok bool) {
	c.mu.Lock()
	c.allow[customer] = ok
	c.mu.Unlock()
}

// delivery is one request a receiver saw.
type delivery struct {
	key, attempt string
	body         []byte
	signed       bool
}

// receiver is a real HTTP server that records webhook deliveries; it can
// hold requests and be killed and restarted on the same address.
type receiver struct {
	t    *testing.T
	addr string
	mu   sync.Mutex
	got  []delivery
	hold chan struct{} // non-nil: requests wait on it (or on the kill)
	in   chan string   // keys of requests that arrived while held
	srv  *http.Server
}

func startReceiver(t *testing.T) *receiver {
	r := &receiver{t: t, in: make(chan string, 1000)}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r.addr = ln.Addr().String()
	r.serve(ln)
	t.Cleanup(func() { r.kill() })
	return r
}

func (r *receiver) serve(ln net.Listener) {
	r.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		d := delivery{key: req.Header.Get(automation.HeaderIdempotencyKey), attempt: req.Header.Get(automation.HeaderAttempt), body: body,
			signed: automation.Verify(secret, req.Header.Get(automation.HeaderSignature), body, time.Now(), 5*time.Minute)}
		r.mu.Lock()
		r.got = append(r.got, d)
		hold := r.hold
		r.mu.Unlock()
		if hold != nil {
			r.in <- d.key
			select {
			case <-hold:
			case <-req.Context().Done():
				return
			}
		}
		w.WriteHeader(http.StatusNoContent)
	})}
	go r.srv.Serve(ln)
}

// kill closes the listener and every connection at once, requests in
// flight included: the receiver process dying.
func (r *receiver) kill() { r.srv.Close() }

func (r *receiver) restart() {
	var ln net.Listener
	var err error
	for range 50 {
		if ln, err = net.Listen("tcp", r.addr); err == nil {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err != nil {
		r.t.Fatal(err)
	}
	r.serve(ln)
}

func (r *receiver) deliveries() []delivery {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]delivery(nil), r.got...)
}

func openStore(t testing.TB, dsn string) *store.Store {
	t.Helper()
	if dsn == "" {
		dsn = "sqlite:" + filepath.Join(t.TempDir(), "hub.db")
	}
	s, err := store.Open(context.Background(), dsn, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	// Webhook secrets are sealed with the customer keys, the same for
	// every replica of a hub.
	s.SetCustomerKeys(testKeys)
	return s
}

var testKeys = func() *pii.Keyring {
	k, err := pii.New(pii.Generate())
	if err != nil {
		panic(err)
	}
	return k
}()

// loopbackOnly lets webhooks reach the tests' receivers on 127.0.0.1:
// the opt-in a production hub never has.
var loopbackOnly = egress.Policy{Hosts: []string{"127.0.0.1"}, AllowLoopback: true}

func webhookRule(id, url string) automation.Rule {
	return automation.Rule{ID: id, Enabled: true, Trigger: automation.CartAbandoned, Purpose: consent.MarketingEmail,
		Channel: consent.ChannelEmail, Action: automation.Action{Kind: automation.ActionWebhook, URL: url, Secret: secret}}
}

func newRunner(t *testing.T, q Queue, c ConsentChecker, owner string, edit ...func(*Config)) *Runner {
	t.Helper()
	cfg := Config{Queue: q, Consent: c, Owner: owner, Poll: 20 * time.Millisecond, RetryMin: 20 * time.Millisecond,
		RetryMax: 200 * time.Millisecond, Lease: 2 * time.Second, RulesEvery: 50 * time.Millisecond,
		Egress: loopbackOnly, HTTP: loopbackOnly.Client(3 * time.Second), Logger: testkit.Logger(t)}
	for _, e := range edit {
		e(&cfg)
	}
	r, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func run(t *testing.T, r *Runner) {
	t.Helper()
	go r.Run(context.Background())
	t.Cleanup(func() { r.Close() })
}

func carts(n int, at time.Time) []automation.Event {
	var evs []automation.Event
	for i := range n {
		evs = append(evs, automation.Event{ID: fmt.Sprintf("cart-%d:abandoned:1", i), Trigger: automation.CartAbandoned, At: at,
			Customer: fmt.Sprintf("C%d", i), Attrs: map[string]string{"cart.value": "4200"}})
	}
	return evs
}

func jobState(t *testing.T, s *store.Store, state string) int {
	t.Helper()
	js, err := s.Jobs(context.Background(), store.JobQuery{State: state, Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	return len(js)
}

// Ensure that when the webhook receiver dies in the middle of deliveries,
// every job is delivered at least once after it comes back, every attempt
// at a job carries the same idempotency key and the same body, and every
// delivery is signed.
func TestRunner_ReceiverKilledMidDelivery(t *testing.T) {
	ctx := context.Background()
	s := openStore(t, "")
	rec := startReceiver(t)
	if err := s.PutRule(ctx, webhookRule("carts", "http://"+rec.addr+"/hook")); err != nil {
		t.Fatal(err)
	}
	c := &consents{allow: map[string]bool{}}
	const n = 20
	for i := range n {
		c.set(fmt.Sprint("C", i), true)
	}
	rec.mu.Lock()
	rec.hold = make(chan struct{})
	rec.mu.Unlock()
	r := newRunner(t, s, c, "hub-1")
	if got, err := r.Handle(ctx, carts(n, time.Now())...); err != nil || got != n {
		t.Fatalf("scheduled %d %v", got, err)
	}
	run(t, r)
	// Deliveries are in flight, held by the receiver: kill it.
	for range 3 {
		select {
		case <-rec.in:
		case <-time.After(10 * time.Second):
			t.Fatal("no delivery arrived")
		}
	}
	rec.kill()
	cut := len(rec.deliveries())
	rec.mu.Lock()
	rec.hold = nil
	rec.mu.Unlock()
	time.Sleep(100 * time.Millisecond) // attempts fail against a dead address meanwhile
	rec.restart()
	testkit.Eventually(t, 20*time.Second, func() bool { return jobState(t, s, store.JobDone) == n }, "every job delivered")

	byKey := map[string][]delivery{}
	for _, d := range rec.deliveries() {
		byKey[d.key] = append(byKey[d.key], d)
		if !d.signed {
			t.Errorf("delivery %s attempt %s not signed right", d.key, d.attempt)
		}
	}
	if len(byKey) != n {
		t.Fatalf("%d keys delivered, want %d", len(byKey), n)
	}
	again := 0
	for key, ds := range byKey {
		var p Payload
		if err := json.Unmarshal(ds[0].body, &p); err != nil || p.ID != key {
			t.Errorf("payload %s: %+v %v", key, p, err)
		}
		for _, d := range ds[1:] {
			again++
			if string(d.body) != string(ds[0].body) {
				t.Errorf("%s: body changed between attempts:\n%s\n%s", key, ds[0].body, d.body)
			}
		}
	}
	if cut == 0 || again == 0 {
		t.Errorf("the kill cut nothing short (%d before, %d redelivered)", cut, again)
	}
	if jobState(t, s, store.JobDead) != 0 {
		t.Error("dead letters")
	}
}

// Ensure that a customer who opts out after a job was scheduled and before
// it is sent gets nothing, while another customer's job is sent.
func TestRunner_OptOutBeforeSending(t *testing.T) {
	ctx := context.Background()
	s := openStore(t, "")
	rec := startReceiver(t)
	rule := webhookRule("carts", "http://"+rec.addr+"/hook")
	rule.DelaySeconds = 1
	if err := s.PutRule(ctx, rule); err != nil {
		t.Fatal(err)
	}
	c := &consents{allow: map[string]bool{"C0": true, "C1": true}}
	r := newRunner(t, s, c, "hub-1")
	if got, err := r.Handle(ctx, carts(2, time.Now())...); err != nil || got != 2 {
		t.Fatalf("scheduled %d %v", got, err)
	}
	run(t, r)
	c.set("C1", false) // opts out while the job waits
	testkit.Eventually(t, 10*time.Second, func() bool { return jobState(t, s, store.JobScheduled) == 0 }, "jobs settled")
	ds := rec.deliveries()
	if len(ds) != 1 || ds[0].key != automation.JobID("carts", "cart-0:abandoned:1") {
		t.Fatalf("deliveries %+v", ds)
	}
	sk, _ := s.Jobs(ctx, store.JobQuery{State: store.JobSkipped})
	if len(sk) != 1 || sk[0].Customer != "C1" || sk[0].Reason != "no consent for marketing_email" {
		t.Fatalf("skipped %+v", sk)
	}
}

// Ensure that jobs scheduled before a hub restart are sent after it, and
// that two replicas on one PostgreSQL send each job once, with a cap of
// one message per customer holding.
func TestRunner_RestartAndReplicas(t *testing.T) {
	ctx := context.Background()
	dsn := testkit.Postgres(t)
	rec := startReceiver(t)
	s1 := openStore(t, dsn)
	rule := webhookRule("carts", "http://"+rec.addr+"/hook")
	rule.Cap = automation.Cap{Max: 1, PerSeconds: 3600}
	if err := s1.PutRule(ctx, rule); err != nil {
		t.Fatal(err)
	}
	c := &consents{allow: map[string]bool{}}
	for i := range 40 {
		c.set(fmt.Sprint("C", i), true)
	}
	first := newRunner(t, s1, c, "hub-1")
	evs := carts(40, time.Now())
	// The same customer abandons a second cart: the cap lets one through.
	evs = append(evs, automation.Event{ID: "cart-99:abandoned:1", Trigger: automation.CartAbandoned, At: time.Now().Add(time.Second), Customer: "C0"})
	if _, err := first.Handle(ctx, evs...); err != nil {
		t.Fatal(err)
	}
	s1.Close() // the hub stops before sending anything

	a, b := newRunner(t, openStore(t, dsn), c, "hub-a"), newRunner(t, openStore(t, dsn), c, "hub-b")
	run(t, a)
	run(t, b)
	testkit.Eventually(t, 20*time.Second, func() bool {
		return jobState(t, openStoreOnce(t, dsn), store.JobScheduled) == 0
	}, "jobs settled")
	keys := map[string]int{}
	for _, d := range rec.deliveries() {
		keys[d.key]++
	}
	if len(keys) != 40 {
		t.Errorf("%d jobs delivered, want 40", len(keys))
	}
	var twice []string
	for k, n := range keys {
		if n > 1 {
			twice = append(twice, k)
		}
	}
	sort.Strings(twice)
	if len(twice) > 0 {
		t.Errorf("sent more than once: %v", twice)
	}
}

var once struct {
	sync.Mutex
	s map[string]*store.Store
}

func openStoreOnce(t *testing.T, dsn string) *store.Store {
	once.Lock()
	defer once.Unlock()
	if once.s == nil {
		once.s = map[string]*store.Store{}
	}
	if s := once.s[dsn]; s != nil {
		return s
	}
	s := openStore(t, dsn)
	once.s[dsn] = s
	t.Cleanup(func() { once.Lock(); delete(once.s, dsn); once.Unlock() })
	return s
}

// Ensure that a NATS action publishes the payload with its idempotency
// key, that a staff message (no purpose) needs no consent, and that a
// trigger that no longer holds when due is skipped.
func TestRunner_NATSAndRecheck(t *testing.T) {
	ctx := context.Background()
	s := openStore(t, "")
	ns := testkit.StartNATS(t)
	nc, err := nats.Connect(ns.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	sub, err := nc.SubscribeSync("staff.help")
	if err != nil {
		t.Fatal(err)
	}
	rule := automation.Rule{ID: "help", Enabled: true, Trigger: automation.FittingRoomUnanswered, DelaySeconds: 1,
		Action: automation.Action{Kind: automation.ActionNATS, Subject: "staff.help"}}
	if err := s.PutRule(ctx, rule); err != nil {
		t.Fatal(err)
	}
	answered := map[string]bool{"req-2": true}
	c := &consents{allow: map[string]bool{}}
	r := newRunner(t, s, c, "hub-1", func(cfg *Config) {
		cfg.NATS = nc
		cfg.Rechecks = map[automation.Trigger]Recheck{automation.FittingRoomUnanswered: func(_ context.Context, ev automation.Event) (bool, error) {
			return !answered[ev.Attrs["request"]], nil
		}}
	})
	now := time.Now()
	if _, err := r.Handle(ctx,
		automation.Event{ID: "req-1", Trigger: automation.FittingRoomUnanswered, At: now, Store: "S1", Attrs: map[string]string{"request": "req-1", "zone": "fr-2"}},
		automation.Event{ID: "req-2", Trigger: automation.FittingRoomUnanswered, At: now, Store: "S1", Attrs: map[string]string{"request": "req-2"}},
	); err != nil {
		t.Fatal(err)
	}
	run(t, r)
	m, err := sub.NextMsg(10 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	var p Payload
	if err := json.Unmarshal(m.Data, &p); err != nil || p.ID != "help:req-1" || m.Header.Get(nats.MsgIdHdr) != "help:req-1" || p.Event.Attrs["zone"] != "fr-2" {
		t.Fatalf("%+v %v %v", p, m.Header, err)
	}
	testkit.Eventually(t, 5*time.Second, func() bool { return jobState(t, s, store.JobSkipped) == 1 }, "answered request skipped")
	if _, err := sub.NextMsg(200 * time.Millisecond); !errors.Is(err, nats.ErrTimeout) {
		t.Fatalf("second message: %v", err)
	}
	if c.asked != 0 {
		t.Error("consent asked for a staff message")
	}
}

// Ensure that a receiver refusing for good (a 4xx) makes a dead letter at
// once, and one failing every time makes one after MaxAttempts.
func TestRunner_DeadLetters(t *testing.T) {
	ctx := context.Background()
	s := openStore(t, "")
	var mu sync.Mutex
	calls := map[string]int{}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		calls[r.URL.Path]++
		mu.Unlock()
		if r.URL.Path == "/gone" {
			w.WriteHeader(http.StatusGone)
			return
		}
		w.WriteHeader(http.StatusServiceUnavailable)
	})}
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	go srv.Serve(ln)
	defer srv.Close()
	base := "http://" + ln.Addr().String()
	gone, flaky := webhookRule("gone", base+"/gone"), webhookRule("flaky", base+"/flaky")
	for _, rl := range []automation.Rule{gone, flaky} {
		if err := s.PutRule(ctx, rl); err != nil {
			t.Fatal(err)
		}
	}
	c := &consents{allow: map[string]bool{"C0": true}}
	r := newRunner(t, s, c, "hub-1", func(cfg *Config) { cfg.RetryMin, cfg.RetryMax = 5*time.Millisecond, 20*time.Millisecond })
	if _, err := r.Handle(ctx, carts(1, time.Now())...); err != nil {
		t.Fatal(err)
	}
	run(t, r)
	testkit.Eventually(t, 15*time.Second, func() bool { return jobState(t, s, store.JobDead) == 2 }, "two dead letters")
	mu.Lock()
	defer mu.Unlock()
	if calls["/gone"] != 1 || calls["/flaky"] != automation.MaxAttempts {
		t.Errorf("calls %v", calls)
	}
}

// Ensure that a webhook is checked again when it is sent: a rule saved
// pointing at the metadata service, at loopback without the opt-in, or at
// a host the allow-list has since dropped, or at a name that now resolves
// to a private address, sends nothing and is a dead letter at once, with
// the reason; the allowed receiver still gets its delivery.
func TestRunner_WebhookEgressCheckedAtSend(t *testing.T) {
	ctx := context.Background()
	s := openStore(t, "")
	rec := startReceiver(t)
	_, port, _ := net.SplitHostPort(rec.addr)
	rules := map[string]string{
		"metadata": "http://169.254.169.254/latest/meta-data/",
		"dropped":  "https://crm.example.com/hook",
		"rebound":  "http://hook.example.com:" + port + "/hook",
		"ok":       "http://" + rec.addr + "/hook",
	}
	for id, u := range rules {
		if err := s.PutRule(ctx, webhookRule(id, u)); err != nil {
			t.Fatal(err)
		}
	}
	evs := carts(1, time.Now())
	c := &consents{allow: map[string]bool{}}
	c.set(evs[0].Customer, true)
	policy := egress.Policy{Hosts: []string{"127.0.0.1", "169.254.169.254", "hook.example.com"}, AllowLoopback: true,
		Resolver: egress.Names{"hook.example.com": {"10.0.0.5"}}}
	r := newRunner(t, s, c, "hub-1", func(cfg *Config) { cfg.Egress, cfg.HTTP = policy, policy.Client(3*time.Second) })
	if got, err := r.Handle(ctx, evs...); err != nil || got != len(rules) {
		t.Fatalf("scheduled %d %v", got, err)
	}
	run(t, r)
	testkit.Eventually(t, 10*time.Second, func() bool {
		return jobState(t, s, store.JobDead) == 3 && jobState(t, s, store.JobDone) == 1
	}, "three dead letters and one delivery")
	dead, _ := s.Jobs(ctx, store.JobQuery{State: store.JobDead, Limit: 10})
	for _, j := range dead {
		want := map[string]string{"metadata": "link-local", "dropped": "allow-list", "rebound": "private"}[j.Rule]
		if want == "" || !strings.Contains(j.Reason, want) || j.Attempts != 1 {
			t.Errorf("dead job of %s after %d attempts: %q, want %q", j.Rule, j.Attempts, j.Reason, want)
		}
	}
	if d := rec.deliveries(); len(d) != 1 {
		t.Fatalf("deliveries %d", len(d))
	}
}
