package natsacct

import (
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"golang.org/x/crypto/bcrypt"
)

// Ensure that the shipped deploy/nats/accounts.conf is what Accounts
// renders, so the file a chain runs is the one the tests run.
func TestAccounts_Shipped(t *testing.T) {
	b, err := os.ReadFile("../../deploy/nats/accounts.conf")
	if err != nil {
		t.Fatal(err)
	}
	if want := Accounts(DeployHubUsers); string(b) != want {
		t.Fatalf("deploy/nats/accounts.conf differs from natsacct.Accounts(DeployHubUsers); write it again:\n%s", want)
	}
}

// Ensure that a store block refuses bad ids and plaintext passwords, and
// that the file it makes is a configuration nats-server accepts.
func TestStoreBlock(t *testing.T) {
	_, pub, err := NewUserKey()
	if err != nil {
		t.Fatal(err)
	}
	hash, _ := bcrypt.GenerateFromPassword([]byte("a long enough password"), 4)
	cases := []struct {
		name  string
		store string
		u     User
		want  error
	}{
		{"nkey", "S1", User{NKey: pub}, nil},
		{"bcrypt", "store-2", User{Name: "store-store-2", Bcrypt: string(hash)}, nil},
		{"plaintext", "S3", User{Name: "store-S3", Bcrypt: "hunter2"}, ErrPlaintext},
		{"bad id", "S 1", User{NKey: pub}, ErrInvalidStore},
		{"dotted id", "S.1", User{NKey: pub}, ErrInvalidStore},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := StoreBlock(c.store, c.u, time.Now())
			if !errors.Is(err, c.want) {
				t.Fatalf("err = %v, want %v", err, c.want)
			}
		})
	}
	if _, err := StoreBlock("S4", User{NKey: "not-a-key"}, time.Now()); err == nil {
		t.Fatal("accepted a bad public key")
	}

	dir := t.TempDir()
	stores := filepath.Join(dir, StoresFile)
	if err := AppendStore(stores, "S1", User{NKey: pub}, time.Now()); err != nil {
		t.Fatal(err)
	}
	if err := AppendStore(stores, "S2", User{Name: "store-S2", Bcrypt: string(hash)}, time.Now()); err != nil {
		t.Fatal(err)
	}
	if err := AppendStore(stores, "S1", User{NKey: pub}, time.Now()); !errors.Is(err, ErrStoreExists) {
		t.Fatalf("minting S1 twice: %v", err)
	}
	if fi, err := os.Stat(stores); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("stores file: %v %v", fi, err)
	}
	conf := filepath.Join(dir, "accounts.conf")
	_, hub, _ := NewUserKey()
	if err := os.WriteFile(conf, []byte(Accounts("{nkey: "+hub+"}")), 0o600); err != nil {
		t.Fatal(err)
	}
	opts, err := server.ProcessConfigFile(conf)
	if err != nil {
		t.Fatalf("nats-server refuses the configuration: %v", err)
	}
	var names []string
	for _, a := range opts.Accounts {
		names = append(names, a.Name)
	}
	if got := strings.Join(names, ","); !strings.Contains(got, "STORE_S1") || !strings.Contains(got, "STORE_S2") || !strings.Contains(got, HubAccount) {
		t.Fatalf("accounts %s", got)
	}
}

// Ensure that a seed written by WriteSeed is private and reads back as its
// public key, and is never overwritten.
func TestWriteSeed(t *testing.T) {
	seed, pub, err := NewUserKey()
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "s.nk")
	if err := WriteSeed(p, "store S1", seed); err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(p); fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v", fi.Mode())
	}
	if got, err := PublicKey(p); err != nil || got != pub {
		t.Fatalf("PublicKey = %q, %v; want %q", got, err, pub)
	}
	if err := WriteSeed(p, "store S1", seed); err == nil {
		t.Fatal("overwrote a credentials file")
	}
}

// Ensure that RefreshStores renders blocks minted by an earlier release
// (here: without the reads under the hub's domain) as StoreBlock does
// today, keeping each store's user and minting time and what precedes the
// first block, and that nats-server accepts the result.
func TestRefreshStores(t *testing.T) {
	_, pub, err := NewUserKey()
	if err != nil {
		t.Fatal(err)
	}
	hash, _ := bcrypt.GenerateFromPassword([]byte("a long enough password"), 4)
	minted := time.Date(2026, 3, 1, 9, 30, 0, 0, time.UTC)
	users := map[string]User{"S1": {NKey: pub}, "S-2": {Name: "store-S-2", Bcrypt: string(hash)}}
	old := "# One account per store, added by omni-nats mint-store or mint-store.sh.\n"
	var want strings.Builder
	want.WriteString(old)
	for _, s := range []string{"S1", "S-2"} {
		b, err := StoreBlock(s, users[s], minted)
		if err != nil {
			t.Fatal(err)
		}
		want.WriteString(b)
		var kept []string
		for _, l := range strings.Split(b, "\n") {
			if strings.Contains(l, "publish: { allow: [") {
				l = regexp.MustCompile(`, "\$JS\.hub\.API\.[^"]*"`).ReplaceAllString(l, "")
			}
			kept = append(kept, l)
		}
		old += strings.Join(kept, "\n")
	}
	if strings.Contains(old, "$JS.hub.API") {
		t.Fatal("the earlier release's file was not made")
	}
	dir := t.TempDir()
	stores := filepath.Join(dir, StoresFile)
	if err := os.WriteFile(stores, []byte(old), 0o600); err != nil {
		t.Fatal(err)
	}
	n, err := RefreshStores(stores)
	if err != nil || n != 2 {
		t.Fatalf("RefreshStores = %d, %v; want 2", n, err)
	}
	got, _ := os.ReadFile(stores)
	if string(got) != want.String() {
		t.Fatalf("refreshed:\n%s\nwant:\n%s", got, want.String())
	}
	if n, err := RefreshStores(stores); err != nil || n != 2 {
		t.Fatalf("refreshing again: %d, %v", n, err)
	}
	if again, _ := os.ReadFile(stores); string(again) != want.String() {
		t.Fatal("refreshing twice changed the file")
	}
	conf := filepath.Join(dir, "accounts.conf")
	_, hub, _ := NewUserKey()
	if err := os.WriteFile(conf, []byte(Accounts("{nkey: "+hub+"}")), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := server.ProcessConfigFile(conf); err != nil {
		t.Fatalf("nats-server refuses the refreshed stores: %v", err)
	}
	if err := os.WriteFile(stores, []byte(strings.Replace(old, "nkey: "+pub, "nkey: nothing", 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := RefreshStores(stores); err == nil {
		t.Fatal("refreshed a block without a user it could read")
	}
}

// Ensure that MintStore refuses the web channel's location, which only
// MintStoreWith's WebChannel mints, and that WebChannel mints nothing
// else; a refusal leaves no credentials and no account behind.
func TestMintStore_WebChannelOnPurpose(t *testing.T) {
	dir := t.TempDir()
	creds := filepath.Join(dir, "online.nk")
	if _, err := MintStore(dir, DefaultOnline, creds, time.Now()); !errors.Is(err, ErrWebChannel) || !strings.Contains(err.Error(), "--web-channel") {
		t.Fatalf("MintStore online: %v", err)
	}
	if _, err := MintStoreWith(dir, "S1", filepath.Join(dir, "S1.nk"), time.Now(), MintOptions{WebChannel: true}); !errors.Is(err, ErrWebChannel) {
		t.Fatalf("WebChannel minting S1: %v", err)
	}
	if _, err := os.Stat(creds); err == nil {
		t.Fatal("a refused minting wrote credentials")
	}
	if b, _ := os.ReadFile(filepath.Join(dir, StoresFile)); len(b) > 0 {
		t.Fatalf("a refused minting admitted an account:\n%s", b)
	}
	if _, err := MintStoreWith(dir, DefaultOnline, creds, time.Now(), MintOptions{WebChannel: true}); err != nil {
		t.Fatal(err)
	}
	// Another chain calls its web channel "web": "online" is then a store
	// like any other.
	if _, err := MintStoreWith(dir, "web", filepath.Join(dir, "web.nk"), time.Now(), MintOptions{Online: "web"}); !errors.Is(err, ErrWebChannel) {
		t.Fatalf("web, the configured web channel, without WebChannel: %v", err)
	}
}
