package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"

	"github.com/omnisync/omnisync/shared/natsacct"
	"github.com/omnisync/omnisync/shared/testkit"
)

// Ensure that mint-store writes a private credentials file whose public
// key, alone, goes into stores.conf, refuses a second minting and bad
// usage, that refresh-stores leaves a current stores.conf as it is, that
// leaf-env writes a leaf node's environment privately, and
// that passwd prints a bcrypt hash of what it reads.
func TestOmniNATS(t *testing.T) {
	bin := testkit.BuildBinary(t, "github.com/omnisync/omnisync/cloud/cmd/omni-nats")
	dir := t.TempDir()
	run := func(stdin string, args ...string) (string, int) {
		cmd := exec.Command(bin, args...)
		cmd.Stdin = strings.NewReader(stdin)
		out, err := cmd.CombinedOutput()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return string(out), code
	}
	creds := filepath.Join(dir, "S1.nk")
	out, code := run("", "mint-store", "--conf-dir", dir, "--out", creds, "S1")
	if code != 0 {
		t.Fatalf("mint-store: %d %s", code, out)
	}
	fi, err := os.Stat(creds)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("credentials file: %v %v", fi, err)
	}
	seed, _ := os.ReadFile(creds)
	pub, err := natsacct.PublicKey(creds)
	if err != nil {
		t.Fatal(err)
	}
	stores, _ := os.ReadFile(filepath.Join(dir, natsacct.StoresFile))
	if !strings.Contains(string(stores), pub) {
		t.Fatalf("stores.conf lacks the public key %s", pub)
	}
	found := false
	for _, l := range strings.Split(string(seed), "\n") {
		if !strings.HasPrefix(l, "SU") {
			continue
		}
		found = true
		if strings.Contains(string(stores), l) || strings.Contains(out, l) {
			t.Fatal("the seed went into stores.conf or the output")
		}
	}
	if !found {
		t.Fatalf("no seed in the credentials file:\n%s", seed)
	}
	for _, c := range []struct {
		args []string
		code int
	}{
		{[]string{"mint-store", "--conf-dir", dir, "--out", filepath.Join(dir, "again.nk"), "S1"}, 1},
		{[]string{"mint-store", "--out", filepath.Join(dir, "x.nk"), "S9"}, 2},
		{[]string{"mint-store", "--conf-dir", dir, "--out", filepath.Join(dir, "y.nk"), "S 9"}, 1},
		{[]string{"mint-store", "--conf-dir", dir}, 2},
	} {
		if out, code := run("", c.args...); code != c.code {
			t.Errorf("%v: exit %d, want %d: %s", c.args, code, c.code, out)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "again.nk")); err == nil {
		t.Error("a refused minting left its credentials file")
	}

	// leaf-env writes the leaf's environment, seed included, 0600, and
	// prints no secret.
	env := filepath.Join(dir, "S1.leaf.env")
	ca := filepath.Join(dir, "hub-ca.pem")
	if err := os.WriteFile(ca, []byte("-----BEGIN CERTIFICATE-----\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out, code = run("", "leaf-env", "--creds", creds, "--hub", "nats-leaf://nats-1:7422,nats-leaf://nats-2:7422", "--hub-ca", ca, "--out", env, "S1")
	if code != 0 {
		t.Fatalf("leaf-env: %d %s", code, out)
	}
	if fi, err := os.Stat(env); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("leaf environment file: %v %v", fi, err)
	}
	b, _ := os.ReadFile(env)
	for _, want := range []string{"OMNI_LEAF_NAME='omni-leaf-S1'", "OMNI_LEAF_DOMAIN='store-S1'", "OMNI_LEAF_USER='" + pub + "'",
		`OMNI_LEAF_HUB='["nats-leaf://nats-1:7422", "nats-leaf://nats-2:7422"]'`, "OMNI_LEAF_HUB_CA='" + ca + "'"} {
		if !strings.Contains(string(b), want) {
			t.Errorf("leaf environment lacks %s:\n%s", want, b)
		}
	}
	for _, l := range strings.Split(string(seed), "\n") {
		if strings.HasPrefix(l, "SU") && (!strings.Contains(string(b), "OMNI_LEAF_SEED='"+l+"'") || strings.Contains(out, l)) {
			t.Fatalf("the seed is missing from the leaf environment, or was printed: %s", out)
		}
	}
	for _, c := range []struct {
		args []string
		code int
	}{
		{[]string{"leaf-env", "--creds", creds, "--hub", "nats-leaf://nats-1:7422", "--hub-ca", ca, "S1"}, 2},
		{[]string{"leaf-env", "--creds", creds, "--hub", "nats-leaf://nats-1:7422", "--out", filepath.Join(dir, "x.env"), "S1"}, 2},
		{[]string{"leaf-env", "--creds", creds, "--hub", "nats-leaf://store-S1:pw@nats-1:7422", "--hub-ca", ca, "--out", filepath.Join(dir, "x.env"), "S1"}, 1},
		{[]string{"leaf-env", "--creds", filepath.Join(dir, "missing.nk"), "--hub", "nats-leaf://nats-1:7422", "--hub-ca", ca, "--out", filepath.Join(dir, "x.env"), "S1"}, 1},
		{[]string{"leaf-env", "--creds", creds, "--hub", "nats-leaf://nats-1:7422", "--hub-ca", filepath.Join(dir, "missing.pem"), "--out", filepath.Join(dir, "x.env"), "S1"}, 1},
	} {
		if out, code := run("", c.args...); code != c.code {
			t.Errorf("%v: exit %d, want %d: %s", c.args, code, c.code, out)
		}
	}

	out, code = run("", "refresh-stores", "--conf-dir", dir)
	if again, _ := os.ReadFile(filepath.Join(dir, natsacct.StoresFile)); code != 0 || string(again) != string(stores) {
		t.Fatalf("refresh-stores changed a current stores.conf (%d %s):\n%s", code, out, again)
	}
	if out, code := run("", "refresh-stores"); code != 2 {
		t.Fatalf("refresh-stores without a directory: exit %d: %s", code, out)
	}

	hash, code := run("correct horse battery staple\n", "passwd")
	if code != 0 || bcrypt.CompareHashAndPassword([]byte(strings.TrimSpace(hash)), []byte("correct horse battery staple")) != nil {
		t.Fatalf("passwd: %d %q", code, hash)
	}
	if _, code := run("short\n", "passwd"); code != 1 {
		t.Fatalf("passwd took a short password: exit %d", code)
	}

	// The web channel's credentials are minted only on purpose, and
	// --web-channel mints nothing else.
	web := t.TempDir()
	for _, c := range []struct {
		args []string
		code int
		say  string
	}{
		{[]string{"mint-store", "--conf-dir", web, "--out", filepath.Join(web, "online.nk"), "online"}, 1, "--web-channel"},
		{[]string{"mint-store", "--conf-dir", web, "--out", filepath.Join(web, "S3.nk"), "--web-channel", "S3"}, 1, `not "S3"`},
		{[]string{"mint-store", "--conf-dir", web, "--out", filepath.Join(web, "web.nk"), "--online-location", "web", "web"}, 1, "--web-channel"},
		{[]string{"mint-store", "--conf-dir", web, "--out", filepath.Join(web, "online.nk"), "--online-location", "web", "online"}, 0, "store online admitted"},
		{[]string{"mint-store", "--conf-dir", web, "--out", filepath.Join(web, "web.nk"), "--web-channel", "--online-location", "web", "web"}, 0, "store web admitted"},
	} {
		if out, code := run("", c.args...); code != c.code || !strings.Contains(out, c.say) {
			t.Errorf("%v: exit %d, want %d saying %q: %s", c.args, code, c.code, c.say, out)
		}
	}
	if _, err := os.Stat(filepath.Join(web, "S3.nk")); err == nil {
		t.Error("a refused minting left its credentials file")
	}
	conf := filepath.Join(t.TempDir(), "conf")
	if out, code := run("", "mint-store", "--conf-dir", conf, "--out", filepath.Join(conf+".nk"), "--web-channel", "online"); code != 0 {
		t.Fatalf("mint-store --web-channel online: %d %s", code, out)
	}
	if b, _ := os.ReadFile(filepath.Join(conf, natsacct.StoresFile)); !strings.Contains(string(b), `"STORE_online" {`) {
		t.Fatalf("the web channel was not admitted:\n%s", b)
	}
}
