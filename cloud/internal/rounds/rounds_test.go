package rounds

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/omnisync/omnisync/shared/retry"
	"github.com/omnisync/omnisync/shared/testkit"
)

// Ensure that rounds run back to back while there is more work, wait for
// Notify (not the hour-long poll) when idle, retry a failed round after
// the backoff, and stop on Close.
func TestLoop(t *testing.T) {
	t.Parallel()
	l := New("test", time.Hour, retry.Backoff{Min: time.Millisecond, Max: time.Millisecond}, nil)
	var calls atomic.Int64
	script := []struct {
		more bool
		err  error
	}{{more: true}, {more: true}, {err: errors.New("database down")}, {}}
	run := make(chan error, 1)
	go func() {
		run <- l.Run(context.Background(), "testing", func(ctx context.Context) (bool, error) {
			n := calls.Add(1)
			if int(n) <= len(script) {
				s := script[n-1]
				return s.more, s.err
			}
			return false, nil
		})
	}()
	// Two rounds with more, a failure retried, then idle.
	testkit.Eventually(t, 5*time.Second, func() bool { return calls.Load() == 4 }, "4 rounds")
	time.Sleep(50 * time.Millisecond)
	if n := calls.Load(); n != 4 {
		t.Fatalf("an idle loop ran %d rounds, want 4 before a Notify", n)
	}
	l.Notify()
	l.Notify() // never blocks, and wakes once
	testkit.Eventually(t, 5*time.Second, func() bool { return calls.Load() >= 5 }, "a round after Notify")
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-run; err != nil {
		t.Fatalf("Run: %v", err)
	}
	if err := l.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

// Ensure that Run ends with its context.
func TestLoop_ContextEnds(t *testing.T) {
	t.Parallel()
	l := New("test", 0, retry.Backoff{}, nil)
	ctx, cancel := context.WithCancel(context.Background())
	run := make(chan error, 1)
	go func() { run <- l.Run(ctx, "testing", func(context.Context) (bool, error) { return false, nil }) }()
	cancel()
	select {
	case err := <-run:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not end with its context")
	}
}
