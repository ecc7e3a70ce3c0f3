package console

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/omnisync/omnisync/cloud/internal/auth"
	"github.com/omnisync/omnisync/cloud/internal/inventory"
	"github.com/omnisync/omnisync/cloud/internal/store"
	"github.com/omnisync/omnisync/shared/testkit"
)

func batch(keys ...inventory.Key) store.BatchResult {
	return store.BatchResult{Applied: len(keys), Positions: keys}
}

func TestFromBatch(t *testing.T) {
	if _, ok := FromBatch(store.BatchResult{Duplicates: 3}, time.Now()); ok {
		t.Fatal("a batch of duplicates is a change")
	}
	c, ok := FromBatch(batch(inventory.Key{SKU: "A", Location: "S1"}), time.Now())
	if !ok || c.All || !slices.Equal(c.Positions, []Position{{"A", "S1"}}) || c.Exceptions {
		t.Fatalf("%+v", c)
	}
	// A batch whose events were all held changed the exception queue of
	// the stores that sent them, and their managers are told.
	held, ok := FromBatch(store.BatchResult{Held: 2, HeldStores: []string{"S2", "S3"}}, time.Now())
	if !ok || !held.Exceptions || !slices.Equal(held.Locations, []string{"S2", "S3"}) {
		t.Fatalf("a held batch: %+v %v", held, ok)
	}
	if got, ok := held.For([]string{"S2"}, true); !ok || !got.Exceptions {
		t.Fatalf("S2's manager, held batch: %+v %v", got, ok)
	}
	if _, ok := held.For([]string{"S1"}, true); ok {
		t.Fatal("S1's manager is told of S2's exceptions")
	}
	// Held at S2 while S1's positions changed: both managers are told.
	mixed, _ := FromBatch(store.BatchResult{Applied: 1, Positions: []inventory.Key{{SKU: "A", Location: "S1"}}, Held: 1, HeldStores: []string{"S2"}}, time.Now())
	if got, ok := mixed.For([]string{"S2"}, true); !ok || !got.Exceptions || len(got.Positions) != 0 {
		t.Fatalf("S2's manager, mixed batch: %+v %v", got, ok)
	}
	if got, ok := mixed.For([]string{"S1"}, true); !ok || len(got.Positions) != 1 {
		t.Fatalf("S1's manager, mixed batch: %+v %v", got, ok)
	}
	var many []inventory.Key
	for i := range MaxPositions + 1 {
		many = append(many, inventory.Key{SKU: string(rune('a' + i%26)), Location: []string{"S2", "S1"}[i%2]})
	}
	c, ok = FromBatch(batch(many...), time.Now())
	if !ok || !c.All || len(c.Positions) != 0 || !slices.Equal(c.Locations, []string{"S1", "S2"}) {
		t.Fatalf("a large batch: all %v, %d positions, locations %v", c.All, len(c.Positions), c.Locations)
	}
}

func TestChangeFor(t *testing.T) {
	c := Change{Origin: "x", Positions: []Position{{"A", "S1"}, {"B", "S2"}}}
	if got, ok := c.For(nil, false); !ok || len(got.Positions) != 2 {
		t.Fatalf("unlimited: %+v", got)
	}
	got, ok := c.For([]string{"S2"}, true)
	if !ok || !slices.Equal(got.Positions, []Position{{"B", "S2"}}) || got.Origin != "" {
		t.Fatalf("S2's manager: %+v", got)
	}
	if _, ok := c.For([]string{"S9"}, true); ok {
		t.Fatal("another store's change reaches S9's manager")
	}
	if len(c.Positions) != 2 {
		t.Fatal("For changed its receiver")
	}
}

// Ensure that a stream that does not keep up is told to re-read instead
// of blocking the apply path.
func TestBrokerSlowStream(t *testing.T) {
	b := NewBroker(nil, nil)
	s := b.Subscribe()
	defer s.Close()
	for range subBuffer + 10 {
		b.Publish(Change{Applied: 1})
	}
	if !s.Lagged() || s.Lagged() {
		t.Fatal("Lagged must report once after drops")
	}
	if _, _, dropped := b.Stats(); dropped != 10 {
		t.Fatalf("dropped %d", dropped)
	}
	s.Close()
	if b.Streams() != 0 {
		t.Fatal("closed subscription still counted")
	}
}

// Ensure that replicas sharing a NATS server hear each other's changes,
// once each, and not their own twice.
func TestBrokerAcrossReplicas(t *testing.T) {
	ns := testkit.StartNATS(t)
	conn := func() *nats.Conn {
		nc, err := nats.Connect(ns.URL())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(nc.Close)
		return nc
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	a, b := NewBroker(conn(), nil), NewBroker(conn(), nil)
	go a.Run(ctx)
	go b.Run(ctx)
	sa, sb := a.Subscribe(), b.Subscribe()
	testkit.Eventually(t, 5*time.Second, func() bool {
		a.Publish(Change{Positions: []Position{{"PING", "S1"}}})
		select {
		case <-sb.C():
			return true
		case <-time.After(100 * time.Millisecond):
			return false
		}
	}, "replica b hearing a")
	for len(sa.C()) > 0 {
		<-sa.C()
	}
	for len(sb.C()) > 0 {
		<-sb.C()
	}
	a.Publish(Change{Positions: []Position{{"A", "S1"}}})
	for name, s := range map[string]*Sub{"a": sa, "b": sb} {
		select {
		case c := <-s.C():
			if c.Positions[0].SKU != "A" {
				t.Fatalf("%s got %+v", name, c)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("%s heard nothing", name)
		}
	}
	time.Sleep(200 * time.Millisecond)
	if len(sa.C()) != 0 {
		t.Fatal("a heard its own change twice")
	}
	cancel()
	select {
	case <-sa.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("streams not ended when the broker stopped")
	}
}

// Ensure that the stream sends a store manager the changes of their
// stores only, as server-sent events.
func TestStreamLimitedToStores(t *testing.T) {
	b := NewBroker(nil, nil)
	c := New(Options{Broker: b})
	p := auth.NewPrincipal(7, "maria", auth.StoreManager, []string{"S1"}, nil)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c.stream(w, r.WithContext(auth.WithPrincipal(r.Context(), p)))
	}))
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("content type %q", ct)
	}
	rd := bufio.NewReader(resp.Body)
	next := func() (string, string) {
		var ev, data string
		for {
			line, err := rd.ReadString('\n')
			if err != nil {
				t.Fatal(err)
			}
			line = strings.TrimRight(line, "\n")
			switch {
			case line == "" && ev != "":
				return ev, data
			case strings.HasPrefix(line, "event: "):
				ev = line[7:]
			case strings.HasPrefix(line, "data: "):
				data = line[6:]
			}
		}
	}
	if ev, _ := next(); ev != "hello" {
		t.Fatalf("first event %q", ev)
	}
	testkit.Eventually(t, 5*time.Second, func() bool { return b.Streams() == 1 }, "subscribed")
	b.Publish(Change{Positions: []Position{{"X", "S2"}}})
	b.Publish(Change{Positions: []Position{{"A", "S1"}, {"B", "S2"}}})
	ev, data := next()
	var got Change
	if ev != "change" || json.Unmarshal([]byte(data), &got) != nil || !slices.Equal(got.Positions, []Position{{"A", "S1"}}) || got.Origin != "" {
		t.Fatalf("%s %s", ev, data)
	}
}

// Ensure that a stream outlives the server's read and write timeouts,
// which bound every other answer.
func TestStreamOutlivesServerTimeouts(t *testing.T) {
	b := NewBroker(nil, nil)
	c := New(Options{Broker: b})
	p := auth.NewPrincipal(1, "hq", auth.Analyst, nil, nil)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c.stream(w, r.WithContext(auth.WithPrincipal(r.Context(), p)))
	}))
	srv.Config.ReadTimeout, srv.Config.WriteTimeout = 300*time.Millisecond, 300*time.Millisecond
	srv.Start()
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	testkit.Eventually(t, 5*time.Second, func() bool { return b.Streams() == 1 }, "subscribed")
	time.Sleep(time.Second)
	if b.Streams() != 1 {
		t.Fatal("the stream ended with the server's timeouts")
	}
	b.Publish(Change{Positions: []Position{{"LATE", "S1"}}})
	rd := bufio.NewReader(resp.Body)
	for {
		line, err := rd.ReadString('\n')
		if err != nil {
			t.Fatalf("stream cut: %v", err)
		}
		if strings.Contains(line, "LATE") {
			return
		}
	}
}
