package retry

import (
	"context"
	"errors"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/omnisync/omnisync/shared/testkit"
)

// Ensure that the step doubles from Min up to Max, whatever the bounds, and
// starts over at Reset.
func TestBackoff_Steps(t *testing.T) {
	const ms = time.Millisecond
	for _, tc := range []struct {
		name     string
		min, max time.Duration
		want     []time.Duration
	}{
		{"doubling to a power of two", 1 * ms, 8 * ms, []time.Duration{1, 2, 4, 8, 8, 8}},
		{"capped between two doublings", 3 * ms, 10 * ms, []time.Duration{3, 6, 10, 10}},
		{"max below min", 5 * ms, 2 * ms, []time.Duration{5, 5, 5}},
		{"no min", 0, 4 * ms, []time.Duration{1, 2, 4, 4}},
		{"zero value", 0, 0, []time.Duration{1, 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := Backoff{Min: tc.min, Max: tc.max}
			for round := range 2 {
				var got []time.Duration
				for range tc.want {
					got = append(got, b.Current()/ms)
					b.Next()
				}
				if !slices.Equal(got, tc.want) {
					t.Fatalf("round %d: steps %v ms, want %v ms", round, got, tc.want)
				}
				b.Reset()
			}
		})
	}
}

// Ensure that every wait is drawn from the upper half of its step, and that
// an injected random source makes the waits reproducible.
func TestBackoff_Jitter(t *testing.T) {
	waits := func(r *rand.Rand) []time.Duration {
		b := Backoff{Min: 100 * time.Millisecond, Max: 3 * time.Second, Rand: r}
		var out []time.Duration
		for range 200 {
			step := b.Current()
			d := b.Next()
			if d < step/2 || d > step {
				t.Fatalf("wait %v outside [%v, %v]", d, step/2, step)
			}
			out = append(out, d)
		}
		return out
	}
	a, b := waits(rand.New(rand.NewPCG(1, 2))), waits(rand.New(rand.NewPCG(1, 2)))
	if !slices.Equal(a, b) {
		t.Fatal("the same seed gave other waits")
	}
	if slices.Equal(a, waits(rand.New(rand.NewPCG(3, 4)))) {
		t.Fatal("another seed gave the same waits: no jitter")
	}
	waits(nil) // the global source keeps the same bounds
	var spread bool
	for _, d := range a[10:] { // at the cap: [1.5s, 3s]
		spread = spread || d != a[10]
	}
	if !spread {
		t.Fatalf("the waits at the cap are all %v", a[10])
	}
}

// Ensure that Wait and Sleep give up as soon as their context ends, and
// still grow the step.
func TestBackoff_WaitContext(t *testing.T) {
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	b := Backoff{Min: time.Hour, Max: 4 * time.Hour}
	if err := b.Wait(cancelled); !errors.Is(err, context.Canceled) {
		t.Fatalf("Wait on a cancelled context: %v", err)
	}
	if b.Current() != 2*time.Hour {
		t.Fatalf("step after a cancelled wait: %v", b.Current())
	}
	short, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	if err := b.Wait(short); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Wait past its deadline: %v", err)
	}
	if err := (&Backoff{Min: time.Millisecond}).Wait(context.Background()); err != nil {
		t.Fatalf("Wait: %v", err)
	}
	if err := Sleep(cancelled, 0); !errors.Is(err, context.Canceled) {
		t.Fatalf("Sleep on a cancelled context: %v", err)
	}
}

// Ensure that WaitConnected returns at once on a live connection, waits for
// a reconnect, and fails on a closed one.
func TestWaitConnected(t *testing.T) {
	ns := testkit.StartNATS(t)
	nc, err := nats.Connect(ns.URL(), nats.MaxReconnects(-1), nats.ReconnectWait(20*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	if err := WaitConnected(context.Background(), nc); err != nil {
		t.Fatal(err)
	}
	ns.Stop()
	testkit.Eventually(t, 5*time.Second, func() bool { return !nc.IsConnected() }, "disconnected")
	short, cancel := context.WithTimeout(context.Background(), 150*time.Millisecond)
	defer cancel()
	if err := WaitConnected(short, nc); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("while NATS is down: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- WaitConnected(context.Background(), nc) }()
	ns.Restart()
	if err := <-done; err != nil {
		t.Fatalf("after NATS came back: %v", err)
	}
	nc.Close()
	if err := WaitConnected(context.Background(), nc); !errors.Is(err, nats.ErrConnectionClosed) {
		t.Fatalf("closed connection: %v", err)
	}
}
