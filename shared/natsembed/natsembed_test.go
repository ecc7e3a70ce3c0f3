package natsembed

import (
	"testing"

	"github.com/nats-io/nats.go"
)

// Ensure that the embedded server accepts clients and offers JetStream.
func TestStart(t *testing.T) {
	s, err := Start(Options{Listen: "127.0.0.1:0", StoreDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	nc, err := nats.Connect(s.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := nc.JetStream()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := js.AccountInfo(); err != nil {
		t.Fatalf("jetstream not available: %v", err)
	}
}

func TestStart_BadListen(t *testing.T) {
	if _, err := Start(Options{Listen: "nonsense", StoreDir: t.TempDir()}); err == nil {
		t.Fatal("expected an error")
	}
}
