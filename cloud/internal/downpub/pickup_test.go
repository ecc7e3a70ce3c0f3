package downpub

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/omnisync/omnisync/shared/downsync"
	"github.com/omnisync/omnisync/shared/events"
	"github.com/omnisync/omnisync/shared/testkit"
)

// pickup reads a pickup document; ok is false for a key that is absent or
// deleted, and marker tells a delete marker from nothing at all.
func (e *env) pickup(t *testing.T, store, id string) (d downsync.PickupDoc, ok, marker bool) {
	t.Helper()
	ctx := context.Background()
	st, err := e.js.Stream(ctx, downsync.PickupStream)
	if err != nil {
		t.Fatal(err)
	}
	m, err := st.GetLastMsgForSubject(ctx, downsync.PickupSubject(downsync.PickupKey(store, id)))
	switch {
	case errors.Is(err, jetstream.ErrMsgNotFound):
		return d, false, false
	case err != nil:
		t.Fatal(err)
	case m.Header.Get("KV-Operation") != "":
		return d, false, true
	}
	if err := json.Unmarshal(m.Data, &d); err != nil {
		t.Fatal(err)
	}
	return d, true, false
}

func reservation(id, loc string, lines ...events.Line) events.ReservationMove {
	return events.ReservationMove{ReservationID: id, Location: loc, Lines: lines}
}

// Ensure that a store's pickup orders are published under that store, with
// their lines and state, as they are reserved and collected, and that a
// reservation moved to another store disappears from the first.
func TestPublishesPickupOrders(t *testing.T) {
	e := newEnv(t)
	res := e.apply(t, events.KindReserve, reservation("R1", "S1", events.Line{SKU: "A", Qty: 2}, events.Line{SKU: "B", Qty: 1}))
	if !slices.Equal(res.Reservations, []string{"R1"}) {
		t.Fatalf("BatchResult.Reservations = %v", res.Reservations)
	}
	p := e.start(t, e.st, "hub-1")
	var d downsync.PickupDoc
	testkit.Eventually(t, 5*time.Second, func() bool {
		var ok bool
		d, ok, _ = e.pickup(t, "S1", "R1")
		return ok
	}, "R1 published by the start-up comparison")
	want := []downsync.PickupLine{{SKU: "A", Qty: 2}, {SKU: "B", Qty: 1}}
	if d.Store != "S1" || d.State != downsync.PickupOpen || !slices.Equal(d.Lines, want) || d.Version < 1 || d.ReservedMS == 0 {
		t.Fatalf("R1 = %+v", d)
	}

	cases := []struct {
		name  string
		kind  events.Kind
		body  events.ReservationMove
		store string
		state string
	}{
		{"collected", events.KindFulfil, reservation("R1", "S1", events.Line{SKU: "A", Qty: 2}, events.Line{SKU: "B", Qty: 1}), "S1", downsync.PickupCollected},
		{"another store's order", events.KindReserve, reservation("R2", "S2", events.Line{SKU: "A", Qty: 1}), "S2", downsync.PickupOpen},
		{"cancelled", events.KindRelease, reservation("R2", "S2"), "S2", downsync.PickupCancelled},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p.Pickups(e.apply(t, c.kind, c.body).Reservations)
			testkit.Eventually(t, 5*time.Second, func() bool {
				d, ok, _ := e.pickup(t, c.store, c.body.ReservationID)
				return ok && d.State == c.state
			}, c.name)
			d, _, _ := e.pickup(t, c.store, c.body.ReservationID)
			if (c.state == downsync.PickupOpen) != (d.ClosedMS == 0) {
				t.Fatalf("%s: %+v", c.name, d)
			}
		})
	}

	t.Run("moved to another store", func(t *testing.T) {
		p.Pickups(e.apply(t, events.KindReserve, reservation("R3", "S1", events.Line{SKU: "A", Qty: 1})).Reservations)
		testkit.Eventually(t, 5*time.Second, func() bool { _, ok, _ := e.pickup(t, "S1", "R3"); return ok }, "R3 at S1")
		p.Pickups(e.apply(t, events.KindReserve, reservation("R3", "S2", events.Line{SKU: "A", Qty: 1})).Reservations)
		testkit.Eventually(t, 5*time.Second, func() bool {
			_, atS2, _ := e.pickup(t, "S2", "R3")
			_, atS1, marker := e.pickup(t, "S1", "R3")
			return atS2 && !atS1 && marker
		}, "R3 at S2 only")
		if p.Stats().Relocated == 0 {
			t.Fatalf("stats: %+v", p.Stats())
		}
	})
}

// Ensure that a closed order is deleted once its retention has passed, its
// delete marker purged a day later, open orders kept, and that a restarted
// publisher does not bring an expired order back.
func TestPickupOrdersExpire(t *testing.T) {
	e := newEnv(t)
	var shift atomic.Int64
	e.now = func() time.Time { return time.Now().Add(time.Duration(shift.Load())) }
	e.apply(t, events.KindReserve, reservation("OPEN", "S1", events.Line{SKU: "A", Qty: 1}))
	e.apply(t, events.KindReserve, reservation("DONE", "S1", events.Line{SKU: "A", Qty: 1}))
	e.apply(t, events.KindFulfil, reservation("DONE", "S1", events.Line{SKU: "A", Qty: 1}))
	p := e.start(t, e.st, "hub-1")
	testkit.Eventually(t, 5*time.Second, func() bool {
		d, ok, _ := e.pickup(t, "S1", "DONE")
		_, open, _ := e.pickup(t, "S1", "OPEN")
		return ok && open && d.State == downsync.PickupCollected
	}, "both orders published")

	// The test's clock jumps 8 days, past the marker's day too: the order
	// is deleted and its marker purged. (TestPublishesPickupOrders sees a
	// marker that stays.)
	shift.Store(int64(8 * 24 * time.Hour))
	testkit.Eventually(t, 5*time.Second, func() bool {
		_, ok, marker := e.pickup(t, "S1", "DONE")
		return !ok && !marker
	}, "the collected order deleted after 7 days and its marker purged")
	if _, ok, _ := e.pickup(t, "S1", "OPEN"); !ok {
		t.Fatal("an open order expired")
	}
	if s := p.Stats(); s.Expired != 1 || s.Purged != 1 {
		t.Fatalf("stats: %+v", s)
	}

	// A second replica's start-up comparison sees the expired order in
	// the store and leaves the bucket alone.
	p2 := e.start(t, e.st, "hub-2")
	testkit.Eventually(t, 5*time.Second, func() bool { return p2.Stats().Synced }, "second replica synced")
	if _, ok, marker := e.pickup(t, "S1", "DONE"); ok || marker {
		t.Fatal("a restarted publisher wrote the expired order again")
	}
	if _, ok, _ := e.pickup(t, "S1", "OPEN"); !ok {
		t.Fatal("open order gone")
	}
}

// Ensure that after Resync the publisher writes again what the bucket lost
// behind its mirror's back (a JetStream server killed before its last
// writes reached the disk), and only that.
func TestResyncRepublishesWhatTheServerLost(t *testing.T) {
	e := newEnv(t)
	e.apply(t, events.KindReserve, reservation("R1", "S1", events.Line{SKU: "A", Qty: 1}))
	e.apply(t, events.KindReserve, reservation("R2", "S1", events.Line{SKU: "A", Qty: 1}))
	p := e.start(t, e.st, "hub-1")
	testkit.Eventually(t, 5*time.Second, func() bool {
		_, ok1, _ := e.pickup(t, "S1", "R1")
		_, ok2, _ := e.pickup(t, "S1", "R2")
		return ok1 && ok2 && p.Stats().Synced
	}, "orders published")
	st, err := e.js.Stream(context.Background(), downsync.PickupStream)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Purge(context.Background(), jetstream.WithPurgeSubject(downsync.PickupSubject(downsync.PickupKey("S1", "R1")))); err != nil {
		t.Fatal(err)
	}
	// The periodic sweeps trust the mirror: the loss stays.
	time.Sleep(time.Second)
	if _, ok, _ := e.pickup(t, "S1", "R1"); ok {
		t.Fatal("republished without a resync (the test does not test what it says)")
	}
	before := p.Stats().Published
	p.Resync()
	testkit.Eventually(t, 5*time.Second, func() bool { _, ok, _ := e.pickup(t, "S1", "R1"); return ok }, "R1 written again")
	testkit.Eventually(t, 5*time.Second, func() bool { return p.Stats().Synced }, "synced again")
	if s := p.Stats(); s.Resyncs != 1 || s.Published-before != 1 {
		t.Fatalf("after resync: %+v (published %d before)", s, before)
	}
}

// Ensure that a replica whose mirror has not seen a delete marker settles
// the conflict from the stream: it leaves alone a document older than the
// one whose publishing deleted the key (an order moved away), and writes a
// newer one over the marker.
func TestResolveOverDeleteMarker(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	p, err := New(Options{JS: e.js, KV: e.kv, PickupKV: e.pkv, Store: e.st, Hub: "hub-1"})
	if err != nil {
		t.Fatal(err)
	}
	key := downsync.PickupKey("S1", "R1")
	m := nats.NewMsg(downsync.PickupSubject(key))
	m.Header.Set("KV-Operation", "DEL")
	m.Header.Set(VersionHeader, "3")
	if _, err := e.js.PublishMsg(ctx, m); err != nil {
		t.Fatal(err)
	}
	older := doc{b: p.pick, key: key, version: 2, data: []byte(`{"reservation_id":"R1","store":"S1","state":"open","version":2}`), remark: func() {}}
	if err := p.resolve(ctx, older); err != nil {
		t.Fatalf("older document: %v", err)
	}
	if _, ok, marker := e.pickup(t, "S1", "R1"); ok || !marker {
		t.Fatal("an order read before it moved away came back")
	}
	newer := doc{b: p.pick, key: key, version: 4, data: []byte(`{"reservation_id":"R1","store":"S1","state":"open","version":4}`), remark: func() {}}
	if err := p.resolve(ctx, newer); err != nil {
		t.Fatalf("newer document: %v", err)
	}
	if d, ok, _ := e.pickup(t, "S1", "R1"); !ok || d.Version != 4 {
		t.Fatalf("after a newer reserve: %+v %v", d, ok)
	}
}

// Ensure that resyncs right after NATS restarts (what the hub does on every
// reconnect) neither wedge the publisher nor lose a change: it publishes
// what changed meanwhile and stops when asked.
func TestResyncAcrossNATSRestarts(t *testing.T) {
	e := newEnv(t)
	p := e.start(t, e.st, "hub-1")
	for i := range 5 {
		e.ns.Restart()
		p.Resync()
		id := fmt.Sprintf("R%d", i)
		p.Pickups(e.apply(t, events.KindReserve, reservation(id, "S1", events.Line{SKU: "A", Qty: 1})).Reservations)
		testkit.Eventually(t, 20*time.Second, func() bool { _, ok, _ := e.pickup(t, "S1", id); return ok }, "%s after restart %d", id, i)
	}
	// e.start's cleanup cancels Run and waits for it.
}
