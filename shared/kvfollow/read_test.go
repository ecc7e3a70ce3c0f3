package kvfollow

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/omnisync/omnisync/shared/testkit"
)

// Ensure that a read hands over the bucket's puts, deletes and purges in
// stream order with their revisions, from the start, after a position, only
// the last message of each key, or up to a revision, and says when it has
// caught up.
func TestRead(t *testing.T) {
	for _, tc := range []struct {
		name    string
		history uint8
		// write writes the bucket; revisions run from 1.
		write func(w *writer)
		c     Config
		want  []string
		// live is written once the read has caught up; liveWant is what it
		// hands over then.
		live     func(w *writer)
		liveWant []string
	}{{
		name:    "from the start",
		history: 1,
		write: func(w *writer) {
			w.put("a", "1")
			w.put("b", "1")
			w.del("a")
			w.put("c", "1")
			w.purge("c")
		},
		want:     []string{"b put@2=1", "a del@3", "c purge@5"},
		live:     func(w *writer) { w.put("a", "2"); w.del("b") },
		liveWant: []string{"a put@6=2", "b del@7"},
	}, {
		name:    "after a position",
		history: 5,
		write: func(w *writer) {
			w.put("a", "1")
			w.put("b", "1")
			w.put("a", "2")
			w.del("b")
		},
		c:    Config{After: 2},
		want: []string{"a put@3=2", "b del@4"},
	}, {
		name:    "last message of each key, headers only",
		history: 5,
		write: func(w *writer) {
			w.put("a", "1")
			w.put("b", "1")
			w.put("a", "2")
			w.put("c", "1")
			w.del("c")
		},
		c:        Config{LastPerSubject: true, HeadersOnly: true},
		want:     []string{"b put@2", "a put@3", "c del@5"},
		live:     func(w *writer) { w.put("b", "2") },
		liveWant: []string{"b put@6"},
	}, {
		name:    "up to a revision",
		history: 5,
		write: func(w *writer) {
			for _, v := range []string{"1", "2", "3", "4", "5"} {
				w.put("a", v)
			}
		},
		c:    Config{After: 1, UpTo: 3},
		want: []string{"a put@2=2", "a put@3=3"},
	}, {
		name:    "up to a revision past the filter's last message",
		history: 5,
		write: func(w *writer) {
			w.put("s1.a", "1")
			w.put("s2.a", "1")
			w.put("s1.b", "1")
			w.put("s2.b", "1")
		},
		c:    Config{Filters: []string{prefix + "s1.>"}, UpTo: 4},
		want: []string{"s1.a put@1=1", "s1.b put@3=1"},
	}, {
		name:    "one filter",
		history: 1,
		write: func(w *writer) {
			w.put("s1.a", "1")
			w.put("s10.a", "1")
			w.put("s1.b", "1")
		},
		c:        Config{Filters: []string{prefix + "s1.>"}},
		want:     []string{"s1.a put@1=1", "s1.b put@3=1"},
		live:     func(w *writer) { w.put("s2.a", "1"); w.put("s1.a", "2") },
		liveWant: []string{"s1.a put@5=2"},
	}, {
		name:     "an empty stream",
		history:  1,
		write:    func(*writer) {},
		live:     func(w *writer) { w.put("a", "1") },
		liveWant: []string{"a put@1=1"},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			ns := testkit.StartNATS(t)
			w := newWriter(t, ns.URL(), tc.history)
			tc.write(w)
			f := newFollower(t, connect(t, ns.URL()), Options{MaxBatch: 2})
			c := tc.c
			c.Stream = stream
			if c.Filters == nil {
				c.Filters = []string{prefix + ">"}
			}
			var l log
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			done := make(chan error, 1)
			go func() { done <- f.Read(ctx, c, l.apply) }()

			if c.UpTo > 0 {
				if err := <-done; err != nil {
					t.Fatalf("a read up to %d: %v", c.UpTo, err)
				}
				if got := l.entries(); !slices.Equal(got, tc.want) {
					t.Fatalf("handed over %q, want %q", got, tc.want)
				}
				return
			}
			testkit.Eventually(t, 5*time.Second, l.caughtUp, "caught up: %q", l.entries())
			if got := l.entries(); !slices.Equal(got, tc.want) {
				t.Fatalf("handed over %q, want %q", got, tc.want)
			}
			batches := l.snapshot()
			for i, b := range batches {
				if len(b.Entries) > 2 || (b.CaughtUp && i != len(batches)-1) {
					t.Fatalf("batch %d of %d: %d entries, caught up %v", i, len(batches), len(b.Entries), b.CaughtUp)
				}
			}
			if st := f.Status(); !st.Reading || st.Consumers != 1 || st.Messages != uint64(len(tc.want)) || st.Pending != 0 {
				t.Errorf("status %+v", st)
			}
			if tc.live != nil {
				tc.live(w)
				want := append(slices.Clone(tc.want), tc.liveWant...)
				testkit.Eventually(t, 5*time.Second, func() bool { return len(l.entries()) == len(want) && l.caughtUp() },
					"live changes handed over: %q", l.entries())
				if got := l.entries(); !slices.Equal(got, want) {
					t.Fatalf("handed over %q, want %q", got, want)
				}
			}
			cancel()
			if err := <-done; !errors.Is(err, context.Canceled) {
				t.Fatalf("read ended with %v, want its context's error", err)
			}
			if st := f.Status(); st.Reading {
				t.Errorf("still reading after the read ended: %+v", st)
			}
		})
	}
}

// Ensure that a read that must start over hands over what it holds and says
// why: the consumer deleted on the server, NATS restarted, the owner's check
// failed; and that one on a stream that does not exist says so.
func TestRead_Ends(t *testing.T) {
	errCheck := errors.New("the stream is another one")
	for _, tc := range []struct {
		name string
		// interrupt is done once the read has caught up.
		interrupt func(ns *testkit.NATS, w *writer, fail func())
		want      error
	}{
		{"consumer deleted", func(_ *testkit.NATS, w *writer, _ func()) { w.deleteConsumers() }, ErrRestart},
		{"NATS restarted", func(ns *testkit.NATS, _ *writer, _ func()) { ns.Restart() }, ErrRestart},
		{"check failed", func(_ *testkit.NATS, _ *writer, fail func()) { fail() }, errCheck},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ns := testkit.StartNATS(t)
			w := newWriter(t, ns.URL(), 1)
			w.put("a", "1")
			f := newFollower(t, connect(t, ns.URL()), Options{MaxDelay: time.Hour})
			failing := make(chan struct{})
			c := Config{Stream: stream, Filters: []string{prefix + ">"}, Check: func(context.Context) error {
				select {
				case <-failing:
					return errCheck
				default:
					return nil
				}
			}}
			var l log
			done := make(chan error, 1)
			go func() { done <- f.Read(context.Background(), c, l.apply) }()
			testkit.Eventually(t, 5*time.Second, l.caughtUp, "caught up")
			tc.interrupt(ns, w, func() { close(failing) })
			select {
			case err := <-done:
				if !errors.Is(err, tc.want) {
					t.Fatalf("read ended with %v, want %v", err, tc.want)
				}
			case <-time.After(15 * time.Second):
				t.Fatal("the read did not end")
			}
		})
	}

	t.Run("no stream", func(t *testing.T) {
		ns := testkit.StartNATS(t)
		f := newFollower(t, connect(t, ns.URL()), Options{})
		var l log
		err := f.Read(context.Background(), Config{Stream: stream, Filters: []string{prefix + ">"}}, l.apply)
		if !errors.Is(err, jetstream.ErrStreamNotFound) || len(l.snapshot()) != 0 || f.Status().Consumers != 0 {
			t.Fatalf("read of a missing stream: %v, %d batches, %+v", err, len(l.snapshot()), f.Status())
		}
	})
}

// Ensure that a read waiting on a server that went away ends with its
// context at once (the ordered consumer may be busy recreating itself).
func TestRead_EndsWithContextOffline(t *testing.T) {
	ns := testkit.StartNATS(t)
	w := newWriter(t, ns.URL(), 1)
	w.put("a", "1")
	f := newFollower(t, connect(t, ns.URL()), Options{})
	var l log
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.Read(ctx, Config{Stream: stream, Filters: []string{prefix + ">"}}, l.apply) }()
	testkit.Eventually(t, 5*time.Second, l.caughtUp, "caught up")
	ns.Stop()
	testkit.Eventually(t, 5*time.Second, func() bool { return !f.Status().Reading }, "not reading once NATS is down")
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) && !errors.Is(err, ErrRestart) {
			t.Fatalf("read ended with %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a read on a dead server did not end with its context")
	}
}

// Ensure that a read needs nothing but what a store's credentials allow: a
// consumer created with its one filter in the request's subject, next
// message requests and consumer deletes, with replies in its own inbox.
func TestRead_FilterScopedCredentials(t *testing.T) {
	url := testkit.StartNATSWithUsers(t, &server.User{Username: "owner", Password: "owner"}, &server.User{
		Username: "s1", Password: "s1",
		Permissions: &server.Permissions{
			Publish: &server.SubjectPermission{Allow: []string{
				"$JS.API.CONSUMER.CREATE." + stream + ".*." + prefix + "s1.>",
				"$JS.API.CONSUMER.MSG.NEXT." + stream + ".*",
				"$JS.API.CONSUMER.DELETE." + stream + ".*",
			}},
			Subscribe: &server.SubjectPermission{Allow: []string{"_INBOX_s1.>"}},
		},
	})
	w := newWriter(t, url, 1, nats.UserInfo("owner", "owner"))
	w.put("s1.a", "1")
	w.put("s2.a", "1")
	nc := connect(t, url, nats.UserInfo("s1", "s1"), nats.CustomInboxPrefix("_INBOX_s1"))
	f := newFollower(t, nc, Options{})
	var l log
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		done <- f.Read(ctx, Config{Stream: stream, Filters: []string{prefix + "s1.>"}}, l.apply)
	}()
	testkit.Eventually(t, 5*time.Second, l.caughtUp, "caught up: %v", f.Status())
	w.put("s1.b", "1")
	testkit.Eventually(t, 5*time.Second, func() bool { return len(l.entries()) == 2 }, "live change: %q", l.entries())
	if got, want := l.entries(), []string{"s1.a put@1=1", "s1.b put@3=1"}; !slices.Equal(got, want) {
		t.Fatalf("handed over %q, want %q", got, want)
	}

	// Another store's keys are refused, not read.
	err := f.Read(ctx, Config{Stream: stream, Filters: []string{prefix + "s2.>"}}, l.apply)
	if err == nil || len(l.entries()) != 2 {
		t.Fatalf("a read of another store's keys: %v, %q", err, l.entries())
	}
	t.Logf("a read of another store's keys: %v", err)
}

// Ensure that Read refuses a Config it cannot read.
func TestRead_InvalidConfig(t *testing.T) {
	ns := testkit.StartNATS(t)
	f := newFollower(t, connect(t, ns.URL()), Options{})
	for _, c := range []Config{
		{Filters: []string{prefix + ">"}},
		{Stream: stream},
		{Stream: stream, Filters: []string{prefix + ">"}, LastPerSubject: true, After: 3},
		{Stream: stream, Filters: []string{prefix + ">"}, After: 3, UpTo: 3},
	} {
		if err := f.Read(context.Background(), c, (&log{}).apply); !errors.Is(err, ErrInvalidOption) {
			t.Errorf("%+v: %v", c, err)
		}
	}
}
