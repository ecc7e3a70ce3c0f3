package staffq

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/omnisync/omnisync/shared/events"
	"github.com/omnisync/omnisync/shared/hlc"
)

// randRecord draws a record of request id from a small domain, so ties
// (equal stamps, equal claimants) come up often.
func randRecord(rng *rand.Rand, id string) record {
	devs := []string{"gw", "pos-1", "hand-1"}
	st := func() Stamp {
		return Stamp{HLC: hlc.Timestamp{Wall: 1_000 + rng.Int64N(4), Logical: uint32(rng.IntN(2))}, Device: devs[rng.IntN(len(devs))]}
	}
	opt := func() *Stamp {
		if rng.IntN(2) == 0 {
			return nil
		}
		s := st()
		return &s
	}
	r := record{Request: Request{ID: id, Zone: fmt.Sprintf("room-%d", rng.IntN(2)), Reason: events.AssistSize,
		Fetch: Item{SKU: fmt.Sprintf("SKU-%d", rng.IntN(2))}, Origin: devs[rng.IntN(len(devs))]}, CreatedAt: st(),
		ClaimedAt: opt(), DoneAt: opt(), EscalatedAt: opt()}
	if rng.IntN(2) == 0 {
		r.Trying = &Item{SKU: "SKU-T"}
	}
	if rng.IntN(2) == 0 {
		// Two agents' creations may disagree on where the item was seen.
		r.Fetch.Location = &Location{Area: []string{"rack-1", "stockroom"}[rng.IntN(2)], SeenMS: 900 + rng.Int64N(2)}
		if rng.IntN(2) == 0 {
			r.Fetch.Location.Units = []string{"6789"}
		}
	}
	if r.ClaimedAt != nil {
		r.ClaimedBy = []string{"", "ana", "bo"}[rng.IntN(3)]
	}
	r.settle()
	return r
}

// Ensure that merging records of one request is idempotent, commutative
// and associative, so any order of delivery, with duplicates, ends in the
// same record; and that the state follows the registers.
func TestMerge_Properties(t *testing.T) {
	rng := rand.New(rand.NewPCG(17, 18))
	for i := range 5000 {
		a, b, c := randRecord(rng, "r"), randRecord(rng, "r"), randRecord(rng, "r")
		if got := merge(a, a); !reflect.DeepEqual(got, a) {
			t.Fatalf("#%d not idempotent:\n%+v\n%+v", i, got, a)
		}
		if ab, ba := merge(a, b), merge(b, a); !reflect.DeepEqual(ab, ba) {
			t.Fatalf("#%d not commutative:\n%+v\n%+v", i, ab, ba)
		}
		if l, r := merge(merge(a, b), c), merge(a, merge(b, c)); !reflect.DeepEqual(l, r) {
			t.Fatalf("#%d not associative:\n%+v\n%+v", i, l, r)
		}
		m := merge(merge(a, b), c)
		want := StateOpen
		switch {
		case a.DoneAt != nil || b.DoneAt != nil || c.DoneAt != nil:
			want = StateDone
		case a.ClaimedAt != nil || b.ClaimedAt != nil || c.ClaimedAt != nil:
			want = StateClaimed
		}
		if m.State != want {
			t.Fatalf("#%d state %s, want %s: %+v", i, m.State, want, m)
		}
	}
}

// peer is one agent's queue in the convergence test, with its own clock
// (the agents' clocks disagree) and the changes it has published.
type peer struct {
	q     *Queue
	clock *clock
}

// Ensure that the queues of several agents, each recording, claiming,
// finishing and escalating requests while the others' changes reach it
// late, out of order and more than once, end up identical once every
// change has reached every agent: the shared queue converges whatever the
// network did.
func TestShared_ConvergesInAnyOrder(t *testing.T) {
	for seed := range uint64(20) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) { convergeOnce(t, seed) })
	}
}

func convergeOnce(t *testing.T, seed uint64) {
	rng := rand.New(rand.NewPCG(seed, 99))
	dir := t.TempDir()
	start := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	var peers []*peer
	var sent [][]record // every message any agent published
	for i, dev := range []string{"gw", "pos-1", "hand-1"} {
		c := &clock{now: start.Add(time.Duration(rng.IntN(120_000)-60_000) * time.Millisecond)}
		q, err := Open(Options{Path: filepath.Join(dir, fmt.Sprintf("%d.db", i)), Device: dev, Now: c.Now})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { q.Close() })
		q.db.NoSync = true // thousands of small transactions; durability is not under test
		q.share = func(rs []record) { sent = append(sent, append([]record(nil), rs...)) }
		peers = append(peers, &peer{q: q, clock: c})
	}
	deliver := func(p *peer, msg []record) {
		if _, err := p.q.merge(msg); err != nil {
			t.Fatal(err)
		}
	}
	ids := 0
	for range 300 {
		p := peers[rng.IntN(len(peers))]
		p.clock.Add(time.Duration(rng.IntN(20)) * time.Second)
		switch op := rng.IntN(10); {
		case op < 2:
			ids++
			if _, err := p.q.add(Request{ID: fmt.Sprintf("req-%d", ids), Zone: "room-1", Reason: events.AssistSize, Fetch: Item{SKU: "SKU-1"}}); err != nil {
				t.Fatal(err)
			}
		case op < 5:
			// Claim or finish a request this agent knows of.
			s, _ := p.q.Snapshot()
			if len(s.Requests) == 0 {
				continue
			}
			id := s.Requests[rng.IntN(len(s.Requests))].ID
			var err error
			if op < 4 {
				_, err = p.q.Claim(id, []string{"ana", "bo", ""}[rng.IntN(3)])
			} else {
				_, err = p.q.Finish(id)
			}
			if err != nil && err != ErrState {
				t.Fatal(err)
			}
		case op < 6:
			if err := p.q.Sweep(context.Background()); err != nil {
				t.Fatal(err)
			}
		default:
			// Some message, maybe one delivered before, reaches an agent.
			if len(sent) > 0 {
				deliver(p, sent[rng.IntN(len(sent))])
			}
		}
	}
	// Then everything reaches everyone, in an order of its own, some twice.
	for _, p := range peers {
		order := rng.Perm(len(sent))
		for _, i := range order {
			deliver(p, sent[i])
			if rng.IntN(4) == 0 {
				deliver(p, sent[order[rng.IntN(len(order))]])
			}
		}
	}
	var want []byte
	for i, p := range peers {
		s, err := p.q.Snapshot()
		if err != nil {
			t.Fatal(err)
		}
		if len(s.Requests) != ids {
			t.Fatalf("%s holds %d requests, %d were made", p.q.o.Device, len(s.Requests), ids)
		}
		got, _ := json.Marshal(s.Requests)
		if i == 0 {
			want = got
		} else if string(got) != string(want) {
			t.Fatalf("%s differs from %s:\n%s\n%s", p.q.o.Device, peers[0].q.o.Device, got, want)
		}
	}
}

// Ensure that a record another agent sends that no agent would have
// written is refused and changes nothing.
func TestMerge_RefusesBadRecords(t *testing.T) {
	r := newRig(t)
	good := record{Request: Request{ID: "req-1", Zone: "room-1", Reason: events.AssistSize, Fetch: Item{SKU: "SKU-1"}, Origin: "gw"},
		CreatedAt: Stamp{HLC: hlc.Timestamp{Wall: r.clock.Now().UnixMilli()}, Device: "gw"}}
	far := good
	far.CreatedAt.HLC.Wall += (25 * time.Hour).Milliseconds()
	for name, bad := range map[string]func(x *record){
		"no id":                  func(x *record) { x.ID = "" },
		"id with dots":           func(x *record) { x.ID = "a.b" },
		"reason":                 func(x *record) { x.Reason = "free coffee" },
		"no sku":                 func(x *record) { x.Fetch.SKU = "" },
		"claimant":               func(x *record) { at := x.CreatedAt; x.ClaimedAt, x.ClaimedBy = &at, string(make([]byte, 41)) },
		"device":                 func(x *record) { x.CreatedAt.Device = "a b" },
		"no stamp":               func(x *record) { x.CreatedAt = Stamp{} },
		"origin":                 func(x *record) { x.Origin = "" },
		"origin not its creator": func(x *record) { x.Origin = "pos-1" },
		"escalated by another": func(x *record) {
			at := x.CreatedAt
			at.Device = "pos-1"
			x.EscalatedAt = &at
		},
		"too far ahead":         func(x *record) { *x = far },
		"location without area": func(x *record) { x.Fetch.Location = &Location{SeenMS: 1} },
		"location area": func(x *record) {
			x.Fetch.Location = &Location{Area: strings.Repeat("x", maxArea+1), SeenMS: 1}
		},
		"location time": func(x *record) { x.Fetch.Location = &Location{Area: "rack-7"} },
		"location units": func(x *record) {
			x.Fetch.Location = &Location{Area: "rack-7", SeenMS: 1, Units: make([]string, maxUnits+1)}
			for i := range x.Fetch.Location.Units {
				x.Fetch.Location.Units[i] = fmt.Sprint(i)
			}
		},
		"location serial": func(x *record) {
			x.Fetch.Location = &Location{Area: "rack-7", SeenMS: 1, Units: []string{strings.Repeat("9", maxSerial+1)}}
		},
		"location empty serial": func(x *record) { x.Fetch.Location = &Location{Area: "rack-7", SeenMS: 1, Units: []string{""}} },
		"location not utf-8":    func(x *record) { x.Fetch.Location = &Location{Area: "rack\xff", SeenMS: 1} },
	} {
		x := good
		bad(&x)
		if n, err := r.q.merge([]record{x}); n != 0 || err == nil {
			t.Errorf("%s: merged %d, err %v", name, n, err)
		}
	}
	if s, _ := r.q.Snapshot(); len(s.Requests) != 0 {
		t.Fatalf("bad records changed the queue: %+v", s.Requests)
	}
	if n, err := r.q.merge([]record{good}); n != 1 || err != nil {
		t.Fatalf("good record: %d %v", n, err)
	}
	located := good
	located.ID = "req-3"
	located.Fetch.Location = &Location{Area: "rack-7", SeenMS: 1, Units: []string{"6789", "6790"}}
	if n, err := r.q.merge([]record{located}); n != 1 || err != nil {
		t.Fatalf("a record with the item's location: %d %v", n, err)
	}
	// A call for help may name no item.
	help := good
	help.ID, help.Reason, help.Fetch = "req-2", events.AssistHelp, Item{}
	help.Trying = &Item{}
	if n, err := r.q.merge([]record{help}); n != 1 || err != nil {
		t.Fatalf("a call for help without an item: %d %v", n, err)
	}
}

// Ensure that a request stamped by a peer whose clock is hours fast is
// merged (the queues converge) without moving this agent's clock, so the
// requests recorded here after it keep their own times and escalate on
// time.
func TestMerge_FastPeerLeavesTheClock(t *testing.T) {
	r := newRig(t)
	now := r.clock.Now()
	fast := record{Request: Request{ID: "req-fast", Zone: "room-1", Reason: events.AssistSize, Fetch: Item{SKU: "SKU-1"}, Origin: "hand-9"},
		CreatedAt: Stamp{HLC: hlc.Timestamp{Wall: now.Add(3 * time.Hour).UnixMilli()}, Device: "hand-9"}}
	if n, err := r.q.merge([]record{fast}); n != 1 || err != nil {
		t.Fatalf("merged %d, %v", n, err)
	}
	if got := r.q.stamp().HLC.Wall; got > now.Add(maxPeerSkew).UnixMilli() {
		t.Fatalf("this agent's clock moved to %v, %v ahead", time.UnixMilli(got), time.UnixMilli(got).Sub(now))
	}
}
