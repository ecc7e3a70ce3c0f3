package retry

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/omnisync/omnisync/shared/testkit"
)

// Ensure that the backoff doubles up to its cap, starts over at Reset, and
// gives up when its context ends.
func TestBackoff(t *testing.T) {
	b := Backoff{Min: time.Millisecond, Max: 8 * time.Millisecond}
	var got []time.Duration
	for range 6 {
		got = append(got, b.Current())
		if !b.Wait(context.Background()) {
			t.Fatal("Wait gave up")
		}
	}
	want := []time.Duration{1, 2, 4, 8, 8, 8}
	for i := range want {
		if got[i] != want[i]*time.Millisecond {
			t.Fatalf("backoffs %v, want %v ms", got, want)
		}
	}
	b.Reset()
	if b.Current() != time.Millisecond {
		t.Fatalf("after Reset: %v", b.Current())
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if (&Backoff{Min: time.Hour}).Wait(ctx) {
		t.Fatal("Wait slept through a cancelled context")
	}
}

// Ensure that WaitConnected returns at once on a live connection and fails
// on a closed one.
func TestWaitConnected(t *testing.T) {
	ns := testkit.StartNATS(t)
	nc, err := nats.Connect(ns.URL())
	if err != nil {
		t.Fatal(err)
	}
	if err := WaitConnected(context.Background(), nc); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	nc.Close()
	if err := WaitConnected(ctx, nc); !errors.Is(err, nats.ErrConnectionClosed) {
		t.Fatalf("closed connection: %v", err)
	}
}
