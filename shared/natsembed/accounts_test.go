package natsembed

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/omnisync/omnisync/shared/natsacct"
)

// Ensure that with an accounts file the server admits only its users, and
// that a store added to the watched stores file while the server runs is
// admitted, with its imports working, without a restart.
func TestStart_AccountsReload(t *testing.T) {
	dir := t.TempDir()
	hubSeed, hubPub, _ := natsacct.NewUserKey()
	hubCreds := filepath.Join(dir, "hub.nk")
	if err := natsacct.WriteSeed(hubCreds, "the hub", hubSeed); err != nil {
		t.Fatal(err)
	}
	stores := filepath.Join(dir, natsacct.StoresFile)
	if err := os.WriteFile(stores, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	accounts := filepath.Join(dir, "accounts.conf")
	if err := os.WriteFile(accounts, []byte(natsacct.Accounts("{nkey: "+hubPub+"}")), 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := Start(Options{Listen: "127.0.0.1:0", StoreDir: t.TempDir(), AccountsFile: accounts, Watch: []string{stores}, WatchEvery: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if nc, err := nats.Connect(s.ClientURL()); err == nil {
		nc.Close()
		t.Fatal("anonymous client admitted")
	}
	hubOpt, err := nats.NkeyOptionFromSeed(hubCreds)
	if err != nil {
		t.Fatal(err)
	}
	hub, err := nats.Connect(s.ClientURL(), hubOpt)
	if err != nil {
		t.Fatal(err)
	}
	defer hub.Close()
	if _, err := hub.Subscribe("omni.hub.sync.*.*", func(m *nats.Msg) { _ = m.Respond([]byte("ok " + m.Subject)) }); err != nil {
		t.Fatal(err)
	}
	_ = hub.Flush()

	seed, pub, _ := natsacct.NewUserKey()
	creds := filepath.Join(dir, "S1.nk")
	if err := natsacct.WriteSeed(creds, "store S1", seed); err != nil {
		t.Fatal(err)
	}
	if err := natsacct.AppendStore(stores, "S1", natsacct.User{NKey: pub}, time.Now()); err != nil {
		t.Fatal(err)
	}
	opt, err := nats.NkeyOptionFromSeed(creds)
	if err != nil {
		t.Fatal(err)
	}
	var nc *nats.Conn
	deadline := time.Now().Add(10 * time.Second)
	for nc == nil {
		if nc, err = nats.Connect(s.ClientURL(), opt, nats.CustomInboxPrefix("_INBOX.S1")); err != nil && time.Now().After(deadline) {
			t.Fatalf("store not admitted after the reload: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	defer nc.Close()
	m, err := nc.Request("omni.hub.sync.S1.pos-1", nil, 2*time.Second)
	if err != nil || string(m.Data) != "ok omni.hub.sync.S1.pos-1" {
		t.Fatalf("heartbeat after the reload: %v %v", m, err)
	}
}
