package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/omnisync/omnisync/cloud/internal/hub"
	"github.com/omnisync/omnisync/shared/testkit"
)

// Ensure that the hub's embedded NATS server lets nobody in without
// credentials, even on loopback; keeps the hub's own credentials private
// in its data directory; and admits a store minted while it runs, whose
// agent then syncs with its credentials file.
func TestEmbeddedNATS_Credentials(t *testing.T) {
	t.Parallel()
	dataDir := t.TempDir()
	h := startHubWith(t, "", func(c *hub.Config) {
		c.DataDir = dataDir
		c.NATSListen = "127.0.0.1:0"
	})
	url := h.h.NATSURL()
	if nc, err := nats.Connect(url, nats.Timeout(2*time.Second)); err == nil {
		nc.Close()
		t.Fatal("an anonymous client connected to the embedded server")
	}
	for _, f := range []string{"hub.nk", "stores.conf", "accounts.conf"} {
		fi, err := os.Stat(filepath.Join(dataDir, hub.NATSAuthDir, f))
		if err != nil || fi.Mode().Perm() != 0o600 {
			t.Fatalf("%s: %v %v", f, fi, err)
		}
	}

	creds := filepath.Join(t.TempDir(), "store-9.nk")
	bin := testkit.BuildBinary(t, "github.com/omnisync/omnisync/cloud/cmd/omni-nats")
	if out, err := exec.Command(bin, "mint-store", "--hub-data-dir", dataDir, "--out", creds, "store-9").CombinedOutput(); err != nil {
		t.Fatalf("mint-store: %v\n%s", err, out)
	}
	if out, err := exec.Command(bin, "mint-store", "--hub-data-dir", dataDir, "--out", creds+".again", "store-9").CombinedOutput(); err == nil {
		t.Fatalf("minted store-9 twice: %s", out)
	}
	a := startAgent(t, "store-9", "pos-1", url, "--nats-creds", creds)
	mustPost(t, a.URL, receiptBody("SKU-EMB", 6))
	waitDrained(t, a, 30*time.Second)
	testkit.Eventually(t, 10*time.Second, func() bool { return onHand(t, h.URL, "SKU-EMB")["store-9"] == 6 }, "receipt applied")

	// Another store's credentials file is no key to this store's subjects.
	other := filepath.Join(t.TempDir(), "store-8.nk")
	if out, err := exec.Command(bin, "mint-store", "--hub-data-dir", dataDir, "--out", other, "store-8").CombinedOutput(); err != nil {
		t.Fatalf("mint-store: %v\n%s", err, out)
	}
	b := startAgent(t, "store-9", "pos-2", url, "--nats-creds", other)
	mustPost(t, b.URL, receiptBody("SKU-EMB", 1))

	// An agent started before its store is admitted (credentials minted
	// elsewhere, its account added to the hub's stores.conf a moment
	// later) keeps trying, and syncs once the server knows it.
	elsewhere := t.TempDir()
	late := filepath.Join(elsewhere, "store-7.nk")
	if out, err := exec.Command(bin, "mint-store", "--conf-dir", elsewhere, "--out", late, "store-7").CombinedOutput(); err != nil {
		t.Fatalf("mint-store: %v\n%s", err, out)
	}
	c := startAgent(t, "store-7", "pos-1", url, "--nats-creds", late)
	mustPost(t, c.URL, receiptBody("SKU-EMB", 2))
	time.Sleep(3 * time.Second) // refused a few times meanwhile
	block, err := os.ReadFile(filepath.Join(elsewhere, "stores.conf"))
	if err != nil {
		t.Fatal(err)
	}
	stores := filepath.Join(dataDir, hub.NATSAuthDir, "stores.conf")
	f, err := os.OpenFile(stores, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	_, err = f.Write(block)
	if cerr := f.Close(); err != nil || cerr != nil {
		t.Fatal(err, cerr)
	}
	waitDrained(t, c, 30*time.Second)
	testkit.Eventually(t, 10*time.Second, func() bool { return onHand(t, h.URL, "SKU-EMB")["store-7"] == 2 }, "store-7's receipt applied")

	if st := status(t, b); st.OutboxDepth != 1 {
		t.Fatalf("an agent of store-9 with store-8's credentials synced: %+v", st)
	}
}

// Ensure that a store minted into the shipped configuration of a running
// nats-server is admitted, its imports working, after the two reloads
// deploy/nats/README.md prescribes.
func TestStoreAdmittedByReload(t *testing.T) {
	t.Parallel()
	n := startIsolatedNATS(t)
	h := startHub(t, n.hubURL, "")
	creds := filepath.Join(t.TempDir(), "S3.nk")
	bin := testkit.BuildBinary(t, "github.com/omnisync/omnisync/cloud/cmd/omni-nats")
	if out, err := exec.Command(bin, "mint-store", "--conf-dir", n.dir, "--out", creds, "S3").CombinedOutput(); err != nil {
		t.Fatalf("mint-store: %v\n%s", err, out)
	}
	for i := 1; i <= 2; i++ {
		n.proc.mu.Lock()
		err := n.proc.cmd.Process.Signal(syscall.SIGHUP)
		n.proc.mu.Unlock()
		if err != nil {
			t.Fatal(err)
		}
		testkit.Eventually(t, 10*time.Second, func() bool {
			b, _ := os.ReadFile(n.proc.log.Name())
			return strings.Count(string(b), "Reloaded server configuration") >= i
		}, "reload %d", i)
	}
	a := startAgent(t, "S3", "pos-1", "nats://127.0.0.1:"+strconv.Itoa(n.port), "--nats-creds", creds)
	mustPost(t, a.URL, receiptBody("SKU-RELOAD", 2))
	waitDrained(t, a, 30*time.Second)
	testkit.Eventually(t, 10*time.Second, func() bool { return onHand(t, h.URL, "SKU-RELOAD")["S3"] == 2 }, "S3's receipt applied")
}

// Ensure that mint-store.sh, given no tool to hash the password with,
// refuses and leaves stores.conf as it was, rather than write the
// password in clear.
func TestMintStoreRefusesPlaintext(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	script, err := os.ReadFile("../../../deploy/nats/mint-store.sh")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "mint-store.sh"), script, 0o755); err != nil {
		t.Fatal(err)
	}
	before := []byte("# One account per store.\n")
	if err := os.WriteFile(filepath.Join(dir, "stores.conf"), before, 0o600); err != nil {
		t.Fatal(err)
	}
	// A PATH with the script's plain tools and no hashing tool at all.
	bin := t.TempDir()
	for _, tool := range []string{"head", "base64", "tr", "grep", "mktemp", "chmod", "mv", "cat", "date", "dirname", "rm"} {
		p, err := exec.LookPath(tool)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(p, filepath.Join(bin, tool)); err != nil {
			t.Fatal(err)
		}
	}
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bash, filepath.Join(dir, "mint-store.sh"), "S1")
	cmd.Env = []string{"PATH=" + bin, "OMNI_NATS_CONF_DIR=" + dir}
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "refusing to write the password in clear") {
		t.Fatalf("mint-store.sh without a hashing tool: %v\n%s", err, out)
	}
	after, _ := os.ReadFile(filepath.Join(dir, "stores.conf"))
	entries, _ := os.ReadDir(dir)
	if string(after) != string(before) || len(entries) != 2 {
		t.Fatalf("stores.conf changed or files left behind: %q, %d files", after, len(entries))
	}
}
