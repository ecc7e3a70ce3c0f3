package kvfollow

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/omnisync/omnisync/shared/testkit"
)

// owner keeps a copy of the bucket and the position it holds everything
// up to, as the agent's caches do, and follows from that position.
type owner struct {
	f *Follower

	mu        sync.Mutex
	pos       uint64
	values    map[string]string
	revisions []uint64 // every entry applied, in order
	caughtUp  bool
	// connected records whether the connection was up at each session's
	// start.
	connected []bool
}

func (o *owner) session(ctx context.Context) (progressed bool, err error) {
	o.mu.Lock()
	o.connected = append(o.connected, o.f.o.Conn.IsConnected())
	after := o.pos
	o.mu.Unlock()
	err = o.f.Read(ctx, Config{Stream: stream, Filters: []string{prefix + ">"}, After: after}, func(_ context.Context, b Batch) error {
		o.mu.Lock()
		defer o.mu.Unlock()
		for _, e := range b.Entries {
			key := e.Subject[len(prefix):]
			if e.Deleted() {
				delete(o.values, key)
			} else {
				o.values[key] = string(e.Value)
			}
			o.revisions = append(o.revisions, e.Revision)
			o.pos = e.Revision
		}
		o.caughtUp = b.CaughtUp
		progressed = progressed || len(b.Entries) > 0 || b.CaughtUp
		return nil
	})
	return progressed, err
}

// holds reports whether the owner holds want up to pos, caught up.
func (o *owner) holds(want map[string]string, pos uint64) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.caughtUp && o.pos == pos && maps.Equal(o.values, want)
}

// Ensure that a follower that stores its position resumes from it after
// NATS restarts, and after being away, with every change applied once, in
// order, and nothing missed; and that a session starts only once the
// connection is up.
func TestRun_ResumesAfterRestarts(t *testing.T) {
	t.Parallel() // mostly waits on processes and timers
	ns := testkit.StartNATS(t)
	w := newWriter(t, ns.URL(), 1)
	want := map[string]string{}
	write := func(round int) {
		for i := range 10 {
			key, value := "k"+strconv.Itoa(i), strconv.Itoa(round)
			if i%4 == round%4 {
				w.del(key)
				delete(want, key)
				continue
			}
			w.put(key, value)
			want[key] = value
		}
	}
	write(0)
	ns.Stop() // the follower starts offline

	o := &owner{values: map[string]string{}}
	o.f = newFollower(t, connect(t, ns.URL()), Options{Name: "test", MaxBatch: 3, Session: o.session})
	done := run(t, o.f)
	ns.Restart()
	testkit.Eventually(t, 10*time.Second, func() bool { return o.holds(want, w.lastSeq()) }, "caught up: %+v", o.f.Status())

	for round := 1; round <= 3; round++ {
		w.restart(ns)
		write(round)
		testkit.Eventually(t, 10*time.Second, func() bool { return o.holds(want, w.lastSeq()) },
			"round %d: caught up after a NATS restart: %+v", round, o.f.Status())
	}
	// The consumer lost on the server (an operator deleted it), and changes
	// made meanwhile.
	w.deleteConsumers()
	write(4)
	testkit.Eventually(t, 10*time.Second, func() bool { return o.holds(want, w.lastSeq()) }, "caught up after the consumer was lost")

	o.mu.Lock()
	defer o.mu.Unlock()
	for i := 1; i < len(o.revisions); i++ {
		if o.revisions[i] <= o.revisions[i-1] {
			t.Fatalf("revision %d applied after %d: %v", o.revisions[i], o.revisions[i-1], o.revisions)
		}
	}
	if !o.connected[0] {
		t.Error("the first session started while NATS was down")
	}
	if st := o.f.Status(); st.Consumers < 5 || st.Messages != uint64(len(o.revisions)) || st.LastError != "" {
		t.Errorf("status %+v, want a consumer per session and %d messages", st, len(o.revisions))
	}
	select {
	case err := <-done:
		t.Fatalf("Run returned %v", err)
	default:
	}
}

// Ensure that failing sessions are spaced by the backoff (each wait at
// least half its step), and that the failure is reported.
func TestRun_BacksOff(t *testing.T) {
	ns := testkit.StartNATS(t)
	var (
		mu    sync.Mutex
		calls []time.Time
	)
	f := newFollower(t, connect(t, ns.URL()), Options{
		MinBackoff: 20 * time.Millisecond, MaxBackoff: 80 * time.Millisecond,
		Session: func(context.Context) (bool, error) {
			mu.Lock()
			defer mu.Unlock()
			calls = append(calls, time.Now())
			return false, errors.New("the hub is away")
		},
	})
	run(t, f)
	testkit.Eventually(t, 10*time.Second, func() bool { mu.Lock(); defer mu.Unlock(); return len(calls) >= 6 }, "six sessions")
	mu.Lock()
	defer mu.Unlock()
	for i, step := range []time.Duration{20, 40, 80, 80, 80} {
		if gap := calls[i+1].Sub(calls[i]); gap < step*time.Millisecond/2 {
			t.Errorf("session %d came %v after the one before; the backoff's step was %v ms", i+2, gap, step)
		}
	}
	if st := f.Status(); st.LastError != "the hub is away" {
		t.Errorf("last error %q", st.LastError)
	}
}

// Ensure that a session that made progress before it had to restart is
// followed by the next at once, that one that failed waits, and that Close
// ends that wait.
func TestRun_RestartsAtOnceAfterProgress(t *testing.T) {
	ns := testkit.StartNATS(t)
	var calls int
	var mu sync.Mutex
	third := make(chan struct{})
	f := newFollower(t, connect(t, ns.URL()), Options{
		// Only a session that made progress can be followed by another
		// while the test runs.
		MinBackoff: time.Hour, MaxBackoff: time.Hour,
		Session: func(context.Context) (bool, error) {
			mu.Lock()
			defer mu.Unlock()
			calls++
			switch calls {
			case 1:
				return true, fmt.Errorf("%w: reconnected", ErrRestart)
			case 2:
				return true, nil
			case 3:
				close(third)
			}
			return false, errors.New("the hub is away")
		},
	})
	done := run(t, f)
	select {
	case <-third:
	case <-time.After(10 * time.Second):
		t.Fatal("the sessions after progress did not start")
	}
	f.Close()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not end the backoff")
	}
	mu.Lock()
	defer mu.Unlock()
	if calls != 3 {
		t.Fatalf("%d sessions, want 3 (the third failed and waits an hour)", calls)
	}
}

// Ensure that an error the owner declared fatal ends Run with it, that Run
// runs once, and that Close is safe before and after.
func TestRun_Ends(t *testing.T) {
	ns := testkit.StartNATS(t)
	errClosed := errors.New("cache closed")
	f := newFollower(t, connect(t, ns.URL()), Options{
		Fatal:   []error{errClosed},
		Session: func(context.Context) (bool, error) { return true, fmt.Errorf("apply: %w", errClosed) },
	})
	if err := f.Run(context.Background()); !errors.Is(err, errClosed) {
		t.Fatalf("Run ended with %v, want the fatal error", err)
	}
	if err := f.Run(context.Background()); !errors.Is(err, ErrRunning) {
		t.Fatalf("second Run: %v", err)
	}
	f.Close()
	f.Close()

	closed := newFollower(t, connect(t, ns.URL()), Options{})
	closed.Close()
	if err := closed.Run(context.Background()); err != nil {
		t.Fatalf("Run after Close: %v", err)
	}
}

// Ensure that New refuses options it cannot use.
func TestNew_InvalidOptions(t *testing.T) {
	ns := testkit.StartNATS(t)
	nc := connect(t, ns.URL())
	session := func(context.Context) (bool, error) { return false, nil }
	for _, o := range []Options{{Session: session}, {Conn: nc}} {
		if _, err := New(o); !errors.Is(err, ErrInvalidOption) {
			t.Errorf("%+v: %v", o, err)
		}
	}
}
