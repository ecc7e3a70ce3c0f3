package natsauth

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nkeys"
)

// Ensure that each setting given becomes one option, a certificate needs
// its key, and a credentials file is a JWT creds file or an nkey seed.
func TestSettings(t *testing.T) {
	dir := t.TempDir()
	kp, _ := nkeys.CreateUser()
	seed, _ := kp.Seed()
	seedFile := filepath.Join(dir, "store.nk")
	if err := os.WriteFile(seedFile, append([]byte("# a comment\n"), seed...), 0o600); err != nil {
		t.Fatal(err)
	}
	jwtFile := filepath.Join(dir, "store.creds")
	if err := os.WriteFile(jwtFile, []byte("-----BEGIN NATS USER JWT-----\neyJ0\n------END NATS USER JWT------\n\n-----BEGIN USER NKEY SEED-----\n"+string(seed)+"\n------END USER NKEY SEED------\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	junk := filepath.Join(dir, "junk")
	if err := os.WriteFile(junk, []byte("password=hunter2\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name     string
		s        Settings
		opts     int
		invalid  bool
		optsFail bool
	}{
		{"nothing", Settings{}, 0, false, false},
		{"nkey seed", Settings{Creds: seedFile}, 1, false, false},
		{"jwt creds", Settings{Creds: jwtFile}, 1, false, false},
		{"missing creds", Settings{Creds: filepath.Join(dir, "nope")}, 0, false, true},
		{"not creds", Settings{Creds: junk}, 0, false, true},
		{"tls", Settings{CA: "ca.pem"}, 1, false, false},
		{"mutual tls", Settings{CA: "ca.pem", Cert: "c.pem", Key: "k.pem"}, 2, false, false},
		{"cert without key", Settings{Cert: "c.pem"}, 1, true, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			opts, err := c.s.Options()
			if (err != nil) != c.optsFail {
				t.Fatalf("Options() err = %v, want failure %v", err, c.optsFail)
			}
			if got := len(opts); err == nil && got != c.opts {
				t.Errorf("%d options, want %d", got, c.opts)
			}
			if err := c.s.Validate(); (err != nil) != c.invalid {
				t.Errorf("Validate() = %v, want invalid %v", err, c.invalid)
			}
		})
	}
}

// Ensure that a repeated error is logged once, and a different one too.
func TestErrorHandler(t *testing.T) {
	var buf bytes.Buffer
	h := ErrorHandler(slog.New(slog.NewTextHandler(&buf, nil)), "NATS error")
	for range 5 {
		h(nil, nil, nats.ErrAuthorization)
	}
	h(nil, nil, nats.ErrSlowConsumer)
	h(nil, nil, nil)
	if got := strings.Count(buf.String(), "msg=\"NATS error\""); got != 2 {
		t.Fatalf("%d lines:\n%s", got, buf.String())
	}
}
