package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/omnisync/omnisync/cloud/internal/hub"
	"github.com/omnisync/omnisync/shared/testkit"
)

// hubToken is the admin API token every test hub is bootstrapped with
// (--bootstrap-token); httpClient sends it to the hubs, and to nothing
// else.
const hubToken = "omni_e2e-admin-token-0123456789ab"

var httpClient = &http.Client{Timeout: 10 * time.Second, Transport: &hubAuth{next: http.DefaultTransport}}

// hubAuth adds the hub token to requests for the hubs' addresses.
type hubAuth struct {
	next  http.RoundTripper
	mu    sync.Mutex
	hosts map[string]bool
}

// addHub marks host:port as a hub's.
func addHub(hostport string) {
	a := httpClient.Transport.(*hubAuth)
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.hosts == nil {
		a.hosts = map[string]bool{}
	}
	a.hosts[hostport] = true
}

func (a *hubAuth) RoundTrip(r *http.Request) (*http.Response, error) {
	a.mu.Lock()
	hub := a.hosts[r.URL.Host]
	a.mu.Unlock()
	if hub && r.Header.Get("Authorization") == "" {
		r = r.Clone(r.Context())
		r.Header.Set("Authorization", "Bearer "+hubToken)
	}
	return a.next.RoundTrip(r)
}

// inProcessHub runs a hub in this process until the test ends.
type inProcessHub struct {
	URL    string
	cancel context.CancelFunc
	done   chan error
	h      *hub.Hub
}

func startHub(t testing.TB, natsURL, db string) *inProcessHub {
	t.Helper()
	return startHubWith(t, natsURL, func(c *hub.Config) { c.DB = db })
}

// startHubWith starts an in-process hub on natsURL with its configuration
// adjusted by edit.
func startHubWith(t testing.TB, natsURL string, edit func(*hub.Config)) *inProcessHub {
	t.Helper()
	cfg := hub.Defaults()
	cfg.DataDir = t.TempDir()
	cfg.NATSURL = natsURL
	cfg.HTTP = "127.0.0.1:0"
	cfg.LogLevel = "warn"
	cfg.BootstrapToken = hubToken
	if edit != nil {
		edit(&cfg)
	}
	h, err := hub.New(cfg, testLogger(t), "test")
	if err != nil {
		t.Fatal(err)
	}
	h.SetSetupOutput(io.Discard)
	ctx, cancel := context.WithCancel(context.Background())
	p := &inProcessHub{cancel: cancel, done: make(chan error, 1), h: h}
	go func() { p.done <- h.Run(ctx) }()
	select {
	case <-h.Ready():
	case err := <-p.done:
		t.Fatalf("hub exited: %v", err)
	case <-time.After(60 * time.Second):
		t.Fatal("hub not ready")
	}
	p.URL = "http://" + h.HTTPAddr()
	addHub(h.HTTPAddr())
	t.Cleanup(p.Stop)
	return p
}

func (p *inProcessHub) Stop() {
	if p.cancel != nil {
		p.cancel()
		<-p.done
		p.cancel = nil
	}
}

// process is an omni-edge or omni-hub child process that can be killed and
// started again on the same data.
type process struct {
	t    testing.TB
	bin  string
	args []string
	name string
	log  *os.File

	// extraEnv is added to the process's environment.
	extraEnv []string

	mu  sync.Mutex
	cmd *exec.Cmd
}

func newProcess(t testing.TB, pkg, name string, args ...string) *process {
	t.Helper()
	return newProcessOf(t, testkit.BuildBinary(t, pkg), name, args...)
}

// newProcessOf is newProcess for a binary built elsewhere (a previous
// release's).
func newProcessOf(t testing.TB, bin, name string, args ...string) *process {
	t.Helper()
	f, err := os.Create(filepath.Join(t.TempDir(), name+".log"))
	if err != nil {
		t.Fatal(err)
	}
	p := &process{t: t, bin: bin, args: args, name: name, log: f}
	t.Cleanup(func() {
		p.Kill()
		if t.Failed() {
			b, _ := os.ReadFile(f.Name())
			if len(b) > 6000 {
				b = b[len(b)-6000:]
			}
			t.Logf("%s log (tail):\n%s", name, b)
		}
		f.Close()
	})
	return p
}

func (p *process) Start() {
	p.t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	cmd := exec.Command(p.bin, p.args...)
	cmd.Stdout, cmd.Stderr = p.log, p.log
	if len(p.extraEnv) > 0 {
		cmd.Env = append(os.Environ(), p.extraEnv...)
	}
	if err := cmd.Start(); err != nil {
		p.t.Fatalf("start %s: %v", p.name, err)
	}
	p.cmd = cmd
	go func() { _ = cmd.Wait() }()
}

// setArg replaces the value of flag name for the next Start.
func (p *process) setArg(name, value string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for i := 0; i+1 < len(p.args); i++ {
		if p.args[i] == name {
			p.args[i+1] = value
			return
		}
	}
	p.args = append(p.args, name, value)
}

// Kill sends SIGKILL: no chance to flush or clean up.
func (p *process) Kill() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	// Wait for the kernel to reap it so its file lock and port are free.
	for i := 0; i < 200; i++ {
		if p.cmd.Process.Signal(syscall.Signal(0)) != nil {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	p.cmd = nil
}

// agent is an omni-edge process.
type agent struct {
	*process
	URL string
}

func startAgent(t testing.TB, store, device, natsURL string, extra ...string) *agent {
	t.Helper()
	addr := testkit.FreeAddr(t)
	args := append([]string{
		"--store", store, "--device", device, "--nats-url", natsURL,
		"--data-dir", t.TempDir(), "--http", addr, "--heartbeat-every", "500ms", "--log-level", "info",
	}, extra...)
	a := &agent{process: newProcess(t, "github.com/omnisync/omnisync/edge/cmd/omni-edge", store+"-"+device, args...), URL: "http://" + addr}
	a.Start()
	return a
}

// Start starts (or restarts) the agent and waits for its API.
func (a *agent) Start() {
	a.t.Helper()
	a.process.Start()
	testkit.Eventually(a.t, 30*time.Second, func() bool {
		resp, err := httpClient.Get(a.URL + "/healthz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}, "agent %s API up", a.name)
}

// post sends a body to the agent and returns the status and decoded reply.
func post(url, body string) (int, map[string]any, error) {
	resp, err := httpClient.Post(url+"/v1/events", "application/json", strings.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var m map[string]any
	_ = json.Unmarshal(b, &m)
	return resp.StatusCode, m, nil
}

// postKeyed sends a body with an Idempotency-Key and reports whether the
// answer was replayed from an earlier attempt.
func postKeyed(url, key, body string) (int, bool, error) {
	req, err := http.NewRequest(http.MethodPost, url+"/v1/events", strings.NewReader(body))
	if err != nil {
		return 0, false, err
	}
	req.Header.Set("Idempotency-Key", key)
	resp, err := httpClient.Do(req)
	if err != nil {
		return 0, false, err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, resp.Header.Get("Idempotent-Replayed") == "true", nil
}

func mustPost(t testing.TB, url, body string) []string {
	t.Helper()
	code, m, err := post(url, body)
	if err != nil || code != http.StatusAccepted {
		t.Fatalf("POST %s: %d %v %v", body, code, m, err)
	}
	var ids []string
	for _, id := range m["ids"].([]any) {
		ids = append(ids, id.(string))
	}
	return ids
}

func getJSON(t testing.TB, url string, out any) int {
	t.Helper()
	resp, err := httpClient.Get(url)
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	if out != nil {
		_ = json.NewDecoder(resp.Body).Decode(out)
	}
	return resp.StatusCode
}

type stockView struct {
	SKU       string `json:"sku"`
	Locations []struct {
		Location  string `json:"location"`
		OnHand    int64  `json:"on_hand"`
		Reserved  int64  `json:"reserved"`
		Available int64  `json:"available"`
	} `json:"locations"`
	Total struct {
		OnHand    int64 `json:"on_hand"`
		Reserved  int64 `json:"reserved"`
		Available int64 `json:"available"`
	} `json:"total"`
}

func onHand(t testing.TB, hubURL, sku string) map[string]int64 {
	var v stockView
	if getJSON(t, hubURL+"/v1/inventory/"+sku, &v) != http.StatusOK {
		return nil
	}
	out := map[string]int64{}
	for _, l := range v.Locations {
		out[l.Location] = l.OnHand
	}
	return out
}

type agentStatus struct {
	Connected   bool   `json:"connected"`
	OutboxDepth int64  `json:"outbox_depth"`
	LastSeq     uint64 `json:"last_seq"`
	AckedSeq    uint64 `json:"acked_seq"`
}

func status(t testing.TB, a *agent) agentStatus {
	var s agentStatus
	getJSON(t, a.URL+"/v1/status", &s)
	return s
}

// waitDrained waits until the hub has confirmed every event of the agent.
func waitDrained(t testing.TB, a *agent, timeout time.Duration) {
	t.Helper()
	testkit.Eventually(t, timeout, func() bool {
		s := status(t, a)
		return s.LastSeq > 0 && s.OutboxDepth == 0 && s.AckedSeq == s.LastSeq
	}, "agent %s drained: %+v", a.name, status(t, a))
}

func saleBody(sku string, qty int) string {
	return fmt.Sprintf(`{"kind":"sale","data":{"lines":[{"sku":%q,"qty":%d}]}}`, sku, qty)
}

// storesView is GET /v1/stores, the hub's view of each store's devices.
type storesView struct {
	Stores []struct {
		Store   string `json:"store"`
		Devices []struct {
			Device        string `json:"device"`
			Watermark     uint64 `json:"watermark"`
			EventsApplied int64  `json:"events_applied"`
			Connected     bool   `json:"connected"`
		} `json:"devices"`
	} `json:"stores"`
}

func receiptBody(sku string, qty int) string {
	return fmt.Sprintf(`{"kind":"receipt","data":{"lines":[{"sku":%q,"qty":%d}]}}`, sku, qty)
}

func jsonBody(v any) string {
	var b bytes.Buffer
	_ = json.NewEncoder(&b).Encode(v)
	return b.String()
}
