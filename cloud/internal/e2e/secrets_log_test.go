package e2e

import (
	"bufio"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/omnisync/omnisync/shared/testkit"
)

// Ensure that a whole platform logging at debug level writes none of the
// secrets it runs with: the hub's NATS password, a store's password and
// another's nkey seed, the PostgreSQL password in the hub's DSN, and the
// agents' API tokens, through starts, sales, a refused request and a NATS
// restart (reconnections log the URL they reconnect to). A second hub,
// started without a bootstrap token, prints its one-time setup token on
// the one line meant to show it and nowhere else, and neither the admin's
// password set with it nor the API token that answers appear anywhere.
func TestNoSecretsInLogs(t *testing.T) {
	t.Parallel()
	setup := firstStartWithSetupToken(t)
	n := startIsolatedNATS(t)
	dsn, pgPassword := dsnWithPassword(t, testkit.Postgres(t))

	hubAddr := testkit.FreeAddr(t)
	hub := newProcess(t, "github.com/omnisync/omnisync/cloud/cmd/omni-hub", "hub",
		"--data-dir", t.TempDir(), "--nats-url", n.hubURL, "--db", dsn, "--http", hubAddr, "--log-level", "debug",
		"--bootstrap-token", hubToken)
	addHub(hubAddr)
	hub.Start()
	hubURL := "http://" + hubAddr
	testkit.Eventually(t, 60*time.Second, func() bool { return getJSON(t, hubURL+"/healthz", nil) == http.StatusOK }, "hub up")

	token1, token2 := "tok1-"+randomHex(16), "tok2-"+randomHex(16)
	tokenFile := filepath.Join(t.TempDir(), "api-token")
	if err := os.WriteFile(tokenFile, []byte(token1+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	a1 := n.startStoreAgent(t, "S1", "pos-1", "--api-token-file", tokenFile, "--log-level", "debug")
	a2 := n.startStoreAgent(t, "S2", "pos-1", "--api-token", token2, "--log-level", "debug")
	agents := []struct {
		a     *agent
		token string
	}{{a1, token1}, {a2, token2}}

	sell := func(round int) {
		t.Helper()
		for _, ag := range agents {
			if code, body := authed(t, ag.token, http.MethodPost, ag.a.URL+"/v1/events", receiptBody("SKU-LOG", round)); code != http.StatusAccepted {
				t.Fatalf("%s: %d %s", ag.a.name, code, body)
			}
		}
		for _, ag := range agents {
			testkit.Eventually(t, 30*time.Second, func() bool {
				_, body := authed(t, ag.token, http.MethodGet, ag.a.URL+"/v1/status", "")
				var s agentStatus
				return json.Unmarshal([]byte(body), &s) == nil && s.LastSeq > 0 && s.OutboxDepth == 0 && s.AckedSeq == s.LastSeq
			}, "%s drained", ag.a.name)
		}
	}
	sell(1)
	if code, _ := authed(t, "wrong-"+token1, http.MethodPost, a1.URL+"/v1/events", receiptBody("SKU-LOG", 1)); code != http.StatusUnauthorized {
		t.Fatalf("a wrong token: %d", code)
	}
	// A NATS restart: every client logs where it reconnected.
	n.proc.Kill()
	n.proc.Start()
	sell(2)
	testkit.Eventually(t, 10*time.Second, func() bool { return onHand(t, hubURL, "SKU-LOG")["S2"] == 3 }, "S2's receipts applied")

	seed := ""
	if b, err := os.ReadFile(n.store["S1"].Creds); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(l, "SU") {
				seed = l
			}
		}
	}
	s2, err := url.Parse(n.store["S2"].URL)
	if err != nil {
		t.Fatal(err)
	}
	s2Password, _ := s2.User.Password()
	secrets := map[string]string{
		"the hub's NATS password": hubPassword, "S2's NATS password": s2Password, "S1's nkey seed": seed,
		"the PostgreSQL password": pgPassword, "S1's API token": token1, "S2's API token": token2,
		"the hub's bootstrap API token":                 hubToken,
		"the admin's password set with the setup token": setup.password, "the API token the setup answered": setup.apiToken,
	}
	for what, s := range secrets {
		if len(s) < 8 {
			t.Fatalf("%s is %q: the test would prove nothing", what, s)
		}
	}
	logs := map[string]string{"hub": hub.log.Name(), "S1 agent": a1.log.Name(), "S2 agent": a2.log.Name(), "nats-server": n.proc.log.Name(),
		"first-start hub": setup.log}
	setupLines := 0
	// The logs did say where they connected, at debug level.
	for proc, want := range map[string][]string{
		"hub":      {`msg="NATS reconnected" url=nats://127.0.0.1:`, "nats=nats://127.0.0.1:"},
		"S2 agent": {"level=DEBUG", `msg="online: NATS reconnected"`, "url=nats://127.0.0.1:"},
		"S1 agent": {`msg="API request refused"`, "reason=token"},
	} {
		for _, w := range want {
			testkit.Eventually(t, 5*time.Second, func() bool {
				b, _ := os.ReadFile(logs[proc])
				return strings.Contains(string(b), w)
			}, "%s's log has %q", proc, w)
		}
	}
	lines := 0
	for proc, file := range logs {
		f, err := os.Open(file)
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for i := 1; sc.Scan(); i++ {
			lines++
			if strings.Contains(sc.Text(), setup.token) {
				setupLines++
				if proc != "first-start hub" || strings.TrimSpace(sc.Text()) != setup.token {
					t.Errorf("%s's log line %d holds the setup token: %q", proc, i, sc.Text())
				}
			}
			for what, s := range secrets {
				if strings.Contains(sc.Text(), s) {
					t.Errorf("%s's log line %d holds %s", proc, i, what)
				}
			}
		}
		f.Close()
	}
	if setupLines != 1 {
		t.Errorf("the setup token is on %d log lines, want the one that shows it", setupLines)
	}
	t.Logf("%d log lines of %d processes checked for %d secrets and the setup token", lines, len(logs), len(secrets))
}

// setupRun is what firstStartWithSetupToken used and got.
type setupRun struct {
	log                       string // the hub's output
	token, password, apiToken string
}

// firstStartWithSetupToken starts a hub on a fresh data dir without a
// bootstrap token, at debug level, takes the setup token from its output,
// sets the admin's password with it (POST /v1/auth/setup, as omnictl
// login --setup-token does), checks the answered token is an admin's and
// that the setup token works once, and stops the hub.
func firstStartWithSetupToken(t *testing.T) setupRun {
	t.Helper()
	addr := testkit.FreeAddr(t)
	p := newProcess(t, "github.com/omnisync/omnisync/cloud/cmd/omni-hub", "first-start-hub",
		"--data-dir", t.TempDir(), "--nats-listen", testkit.FreeAddr(t), "--http", addr, "--log-level", "debug")
	p.Start()
	defer p.Kill()
	base := "http://" + addr
	var token string
	testkit.Eventually(t, 60*time.Second, func() bool {
		b, _ := os.ReadFile(p.log.Name())
		m := regexp.MustCompile(`(?m)^ +(omni_setup_\S+)$`).FindSubmatch(b)
		if m != nil {
			token = string(m[1])
		}
		return m != nil && getJSON(t, base+"/healthz", nil) == http.StatusOK
	}, "the first-start hub up, its setup token printed")
	run := setupRun{log: p.log.Name(), token: token, password: "pw-" + randomHex(12)}
	body := fmt.Sprintf(`{"token":%q,"password":%q,"token_name":"e2e"}`, token, run.password)
	code, resp := authed(t, "", http.MethodPost, base+"/v1/auth/setup", body)
	var tv struct{ User, Token string }
	if err := json.Unmarshal([]byte(resp), &tv); code != http.StatusCreated || err != nil || tv.User != "admin" || tv.Token == "" {
		t.Fatalf("POST /v1/auth/setup: %d %s", code, resp)
	}
	run.apiToken = tv.Token
	if code, resp := authed(t, tv.Token, http.MethodGet, base+"/v1/auth/me", ""); code != http.StatusOK || !strings.Contains(resp, `"admin"`) {
		t.Fatalf("the setup's API token: %d %s", code, resp)
	}
	if code, resp := authed(t, "", http.MethodPost, base+"/v1/auth/setup", body); code != http.StatusUnauthorized {
		t.Fatalf("the setup token again: %d %s", code, resp)
	}
	return run
}

// authed sends a request with a bearer token and returns the status and body.
func authed(t *testing.T, token, method, url, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := httpClient.Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// dsnWithPassword returns dsn with a password: its own, or a made-up one
// (a server that trusts local connections ignores it; the hub still holds
// it and must not log it).
func dsnWithPassword(t *testing.T, dsn string) (string, string) {
	t.Helper()
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	if p, ok := u.User.Password(); ok && len(p) >= 8 {
		return dsn, p
	}
	p := "pg-" + randomHex(12)
	user := "postgres"
	if u.User != nil && u.User.Username() != "" {
		user = u.User.Username()
	}
	u.User = url.UserPassword(user, p)
	return u.String(), p
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
