package e2e

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats.go"
	"golang.org/x/crypto/bcrypt"

	"github.com/omnisync/omnisync/shared/natsacct"
	"github.com/omnisync/omnisync/shared/subjects"
	"github.com/omnisync/omnisync/shared/testkit"
)

// previousRelease is the release an upgrade starts from when the
// repository has no release tag: the last main commit before the hub's
// schema grew past migration 3 (pickup orders), that is before HQ logins
// (migration 5), integer position ids and daily ledger totals
// (migration 4), per-store NATS accounts and credentials on the embedded
// server. A "v*" tag, once there is one, takes its place; OMNI_UPGRADE_FROM
// names any other commit or tag.
const previousRelease = "e061190de6c7c2b88774ba8a424f236a5adbb736"

// TestUpgrade runs a chain on the previous release's binaries (hub,
// agents, load generator) with SQLite and with PostgreSQL, stops the hub,
// lets the stores sell offline, starts the current hub on the same data
// (its migrations run forward), and checks that the previous release's
// agents keep syncing with it beside a current agent, and that the books
// agree with the oracle over every event of both releases. Slow (it builds
// the previous release): make upgrade-test.
func TestUpgrade(t *testing.T) {
	if os.Getenv("OMNI_UPGRADE_TEST") == "" {
		t.Skip("builds the previous release; run with make upgrade-test (OMNI_UPGRADE_TEST=1)")
	}
	from := upgradeFrom(t)
	old := buildRelease(t, from)
	t.Logf("upgrading from %s", from)
	t.Run("sqlite", func(t *testing.T) { testUpgrade(t, old, "") })
	t.Run("postgres", func(t *testing.T) { testUpgrade(t, old, testkit.Postgres(t)) })
}

// repoRoot is the repository's top directory.
func repoRoot(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("git", "rev-parse", "--show-toplevel").Output()
	if err != nil {
		t.Fatalf("git rev-parse: %v", err)
	}
	return strings.TrimSpace(string(out))
}

// upgradeFrom resolves the release to upgrade from: OMNI_UPGRADE_FROM, the
// newest v* tag before HEAD, or previousRelease.
func upgradeFrom(t *testing.T) string {
	t.Helper()
	root := repoRoot(t)
	rev := os.Getenv("OMNI_UPGRADE_FROM")
	if rev == "" {
		if out, err := exec.Command("git", "-C", root, "describe", "--tags", "--abbrev=0", "--match", "v*", "HEAD").Output(); err == nil {
			rev = strings.TrimSpace(string(out))
		} else {
			rev = previousRelease
		}
	}
	if out, err := exec.Command("git", "-C", root, "merge-base", "--is-ancestor", rev, "HEAD").CombinedOutput(); err != nil {
		t.Fatalf("%s is not an ancestor of HEAD in this clone (a shallow clone lacks it: git fetch --unshallow): %v %s", rev, err, out)
	}
	return rev
}

// buildRelease exports rev's tree (git archive) and builds its omni-hub,
// omni-edge and omnictl; it returns the directory of the binaries.
func buildRelease(t *testing.T, rev string) string {
	t.Helper()
	src, bin := t.TempDir(), t.TempDir()
	archive := exec.Command("git", "-C", repoRoot(t), "archive", "--format=tar", rev)
	var tarball bytes.Buffer
	archive.Stdout = &tarball
	if err := archive.Run(); err != nil {
		t.Fatalf("git archive %s: %v", rev, err)
	}
	untar := exec.Command("tar", "-x", "-C", src)
	untar.Stdin = &tarball
	if out, err := untar.CombinedOutput(); err != nil {
		t.Fatalf("untar: %v %s", err, out)
	}
	start := time.Now()
	build := exec.Command("go", "build", "-o", bin+"/", "./cloud/cmd/omni-hub", "./edge/cmd/omni-edge", "./cloud/cmd/omnictl")
	build.Dir = src
	build.Env = append(os.Environ(), "GOWORK=off", "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building %s: %v\n%s", rev, err, out)
	}
	t.Logf("built %s in %s", rev, time.Since(start).Round(time.Second))
	return bin
}

// omnictlRun runs an omnictl binary and fails the test unless it exits 0.
func omnictlRun(t *testing.T, bin string, env []string, args ...string) string {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("omnictl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// stop sends SIGTERM, as systemd and Kubernetes do, and waits for the
// process to exit.
func (p *process) stop() {
	p.t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	deadline := time.Now().Add(30 * time.Second)
	for p.cmd.Process.Signal(syscall.Signal(0)) == nil {
		if time.Now().After(deadline) {
			p.t.Fatalf("%s did not stop on SIGTERM", p.name)
		}
		time.Sleep(20 * time.Millisecond)
	}
	p.cmd = nil
}

// waitHealthy polls url's /healthz.
func waitHealthy(t *testing.T, url, what string) {
	t.Helper()
	testkit.Eventually(t, 60*time.Second, func() bool {
		resp, err := httpClient.Get(url + "/healthz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}, "%s serving /healthz", what)
}

// schemaVersion is the newest migration the hub's database has applied.
func schemaVersion(t *testing.T, dataDir, dsn string) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	const q = "SELECT max(version) FROM schema_migrations"
	var v int
	if dsn == "" {
		db, err := sql.Open("sqlite", filepath.Join(dataDir, "hub.db"))
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		if err := db.QueryRowContext(ctx, q).Scan(&v); err != nil {
			t.Fatal(err)
		}
		return v
	}
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	if err := conn.QueryRow(ctx, q).Scan(&v); err != nil {
		t.Fatal(err)
	}
	return v
}

func testUpgrade(t *testing.T, old, dsn string) {
	dataDir := t.TempDir()
	natsAddr, hubAddr := testkit.FreeAddr(t), testkit.FreeAddr(t)
	hubURL := "http://" + hubAddr
	addHub(hubAddr)
	catalog := filepath.Join(repoRoot(t), "cloud/internal/catalog/testdata/sample-catalog.jsonl")
	records := filepath.Join(t.TempDir(), "accepted")
	hubArgs := []string{"--data-dir", dataDir, "--nats-listen", natsAddr, "--http", hubAddr, "--log-level", "info"}
	if dsn != "" {
		hubArgs = append(hubArgs, "--db", dsn)
	}

	// The previous release: its hub with its embedded NATS server, two of
	// its agents, its load. A release from before HQ logins let every
	// client in without credentials; a later one takes the bootstrap
	// token, and its stores are admitted with nkeys as omni-nats mints
	// them.
	locked := releaseLocked(t, old)
	oldArgs := hubArgs
	var oldEnv []string
	if locked {
		oldArgs = append(append([]string(nil), hubArgs...), "--bootstrap-token", hubToken)
		oldEnv = []string{"OMNI_TOKEN=" + hubToken}
	}
	oldHub := newProcessOf(t, filepath.Join(old, "omni-hub"), "old-hub", oldArgs...)
	oldHub.Start()
	waitHealthy(t, hubURL, "the previous release's hub")
	stores := []string{"UP-1", "UP-2"}
	var agents []*agent
	for _, s := range stores {
		addr := testkit.FreeAddr(t)
		args := []string{"--store", s, "--device", "till-1", "--nats-url", "nats://" + natsAddr, "--data-dir", t.TempDir(), "--http", addr, "--heartbeat-every", "500ms"}
		if locked {
			args = append(args, "--nats-creds", admitStore(t, dataDir, s, natsAddr))
		}
		a := &agent{process: newProcessOf(t, filepath.Join(old, "omni-edge"), s+"-old", args...), URL: "http://" + addr}
		a.Start()
		agents = append(agents, a)
	}
	urls := func(as []*agent) string {
		var u []string
		for _, a := range as {
			u = append(u, a.URL)
		}
		return strings.Join(u, ",")
	}
	load := func(bin, record string, seed int, as []*agent) {
		t.Helper()
		out := omnictlRun(t, bin, nil, "--hub", hubURL, "loadgen", "--agents", urls(as), "--events", "300", "--seed", fmt.Sprint(seed),
			"--catalog", catalog, "--record", record, "--every", "1s")
		t.Logf("loadgen (%s):\n%s", filepath.Base(filepath.Dir(bin)), lastLines(out, 4))
	}
	load(filepath.Join(old, "omnictl"), records+"-1.jsonl", 11, agents)
	out := omnictlRun(t, filepath.Join(old, "omnictl"), oldEnv, "--hub", hubURL, "loadgen", "verify", "--record", records+"-1.jsonl", "--timeout", "60s")
	t.Logf("the previous release's books:\n%s", lastLines(out, 6))
	before := schemaVersion(t, dataDir, dsn)

	// The upgrade: the hub stops; the stores keep selling into their
	// outboxes.
	oldHub.stop()
	load(filepath.Join(old, "omnictl"), records+"-2.jsonl", 12, agents)

	// The current hub on the same data directory and database.
	newHub := newProcess(t, "github.com/omnisync/omnisync/cloud/cmd/omni-hub", "new-hub", append(hubArgs, "--bootstrap-token", hubToken)...)
	upgradedAt := time.Now()
	newHub.Start()
	waitHealthy(t, hubURL, "the current hub on the previous release's data")
	after := schemaVersion(t, dataDir, dsn)
	t.Logf("schema: migration %d before, %d after", before, after)
	if after <= before {
		t.Errorf("schema still at migration %d after the upgrade (was %d)", after, before)
	}

	// The current embedded server admits only clients with credentials.
	// A pre-login release's agents take a password in their URL (their
	// --nats-creds reads JWT files only), so they get password users; a
	// current agent gets an nkey, as omni-nats mint-store makes it. A
	// later release's agents have theirs already.
	storesConf := filepath.Join(dataDir, "nats-auth", natsacct.StoresFile)
	for i, s := range stores {
		if locked {
			break
		}
		pw := fmt.Sprintf("%s-upgrade-password-%d", s, i)
		hash, err := bcrypt.GenerateFromPassword([]byte(pw), bcrypt.MinCost)
		if err != nil {
			t.Fatal(err)
		}
		if err := natsacct.AppendStore(storesConf, s, natsacct.User{Name: s, Bcrypt: string(hash)}, time.Now()); err != nil {
			t.Fatal(err)
		}
		// The previous release's agent gives up on a credential refused
		// twice (the current one keeps retrying), so it restarts with its
		// credentials once the hub has admitted them.
		url := fmt.Sprintf("nats://%s:%s@%s", s, pw, natsAddr)
		testkit.Eventually(t, 30*time.Second, func() bool {
			nc, err := nats.Connect(url, nats.CustomInboxPrefix(subjects.InboxPrefix(s)))
			if err != nil {
				return false
			}
			nc.Close()
			return true
		}, "the hub admitting store %s", s)
		agents[i].Kill()
		agents[i].setArg("--nats-url", url)
		agents[i].Start()
	}
	current := startAgent(t, "UP-3", "till-1", "nats://"+natsAddr, "--nats-creds", admitStore(t, dataDir, "UP-3", natsAddr))
	all := append(agents, current)
	newCtl := testkit.BuildBinary(t, "github.com/omnisync/omnisync/cloud/cmd/omnictl")
	load(newCtl, records+"-3.jsonl", 13, all)
	for _, a := range all {
		waitDrained(t, a, 90*time.Second)
	}

	// Down-sync too: every agent, of either release, follows the buckets
	// the current hub publishes (in an account of their own now) and has
	// caught up since it started.
	for _, a := range all {
		testkit.Eventually(t, 60*time.Second, func() bool {
			var st struct {
				Downsync struct {
					Connected     bool      `json:"connected"`
					Bootstrapping bool      `json:"bootstrapping"`
					SyncedAt      time.Time `json:"synced_at"`
				} `json:"downsync"`
			}
			getJSON(t, a.URL+"/v1/status", &st)
			d := st.Downsync
			return d.Connected && !d.Bootstrapping && d.SyncedAt.After(upgradedAt)
		}, "agent %s's down-sync caught up with the current hub", a.name)
	}

	// The books over both releases' events against the oracle's.
	var whole []byte
	for i := 1; i <= 3; i++ {
		b, err := os.ReadFile(fmt.Sprintf("%s-%d.jsonl", records, i))
		if err != nil {
			t.Fatal(err)
		}
		whole = append(whole, b...)
	}
	if err := os.WriteFile(records+".jsonl", whole, 0o600); err != nil {
		t.Fatal(err)
	}
	out = omnictlRun(t, newCtl, []string{"OMNI_TOKEN=" + hubToken}, "--hub", hubURL, "loadgen", "verify", "--record", records+".jsonl", "--timeout", "90s")
	t.Logf("books after the upgrade:\n%s", lastLines(out, 8))
	for _, want := range []string{"differences", "lost", "double-applied"} {
		if !strings.Contains(out, want) {
			t.Errorf("verify printed no %q line", want)
		}
	}
}

// releaseLocked says whether the release whose binaries are in dir has HQ
// logins (its hub takes --bootstrap-token, and its embedded NATS server
// admits stores by their credentials only).
func releaseLocked(t *testing.T, dir string) bool {
	t.Helper()
	out, _ := exec.Command(filepath.Join(dir, "omni-hub"), "--help").CombinedOutput()
	return strings.Contains(string(out), "--bootstrap-token")
}

// admitStore mints store's nkey into the hub's data dir, as omni-nats
// mint-store --hub-data-dir does, waits until the hub's embedded server
// at natsAddr admits it, and returns its credentials file.
func admitStore(t *testing.T, dataDir, store, natsAddr string) string {
	t.Helper()
	creds := filepath.Join(t.TempDir(), store+".nk")
	if _, err := natsacct.MintStore(filepath.Join(dataDir, "nats-auth"), store, creds, time.Now()); err != nil {
		t.Fatal(err)
	}
	opt, err := nats.NkeyOptionFromSeed(creds)
	if err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, 30*time.Second, func() bool {
		nc, err := nats.Connect("nats://"+natsAddr, opt, nats.CustomInboxPrefix(subjects.InboxPrefix(store)))
		if err != nil {
			return false
		}
		nc.Close()
		return true
	}, "the hub admitting store %s", store)
	return creds
}

// lastLines returns the last n lines of s.
func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
