package staffq

import (
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/omnisync/omnisync/edge/internal/outbox"
	"github.com/omnisync/omnisync/shared/events"
	"github.com/omnisync/omnisync/shared/natsacct/natsaccttest"
	"github.com/omnisync/omnisync/shared/subjects"
	"github.com/omnisync/omnisync/shared/testkit"
)

// agentQueue is one agent's queue, linked to the store's others over nc,
// with an outbox (the agent reading the fitting rooms records requests
// through its tap).
type agentQueue struct {
	q  *Queue
	ob *outbox.Outbox
}

func startAgentQueue(t *testing.T, device string, nc *nats.Conn) *agentQueue {
	t.Helper()
	dir := t.TempDir()
	ob, err := outbox.Open(outbox.Options{Path: filepath.Join(dir, "outbox.db"), Store: "S1", Device: device, MinFreeDisk: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ob.Close() })
	q, err := Open(Options{Path: filepath.Join(dir, "staff.db"), Device: device, Outbox: ob})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { q.Close() })
	l, err := q.NewLink(LinkOptions{Conn: nc, Store: "S1", ResyncEvery: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- l.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("link of %s: %v", device, err)
		}
	})
	return &agentQueue{q: q, ob: ob}
}

// ask records a request the way a mirror does: an assist event through the
// queue's tap on the outbox. It returns the request id.
func (a *agentQueue) ask(t *testing.T, key, zone string) string {
	t.Helper()
	data, _ := json.Marshal(events.Assist{Zone: zone, SKU: "SKU-M", From: "SKU-S"})
	envs, _, err := a.q.Tap(a.ob).AppendOnce(context.Background(), key, []events.Draft{{Kind: events.KindAssist, Data: data}})
	if err != nil {
		t.Fatal(err)
	}
	var body events.Assist
	_ = json.Unmarshal(envs[0].Data, &body)
	return body.Request
}

// request is id as a's queue has it (ok false: not there).
func (a *agentQueue) request(id string) (Request, bool) {
	s, _ := a.q.Snapshot()
	for _, r := range s.Requests {
		if r.ID == id {
			return r, true
		}
	}
	return Request{}, false
}

// waitFor waits until a's queue holds id in a state cond accepts.
func (a *agentQueue) waitFor(t *testing.T, id, what string, cond func(Request) bool) {
	t.Helper()
	testkit.Eventually(t, 10*time.Second, func() bool {
		r, ok := a.request(id)
		return ok && cond(r)
	}, "%s: %s on %s", id, what, a.q.o.Device)
}

// Ensure that the queues of a store's agents, each connected to NATS with
// the store's real credentials, share their requests: a request recorded
// on the fitting rooms' agent shows on the handheld's, a claim on the
// handheld is seen on the first, done on the first is seen on the second;
// that an agent starting late gets the whole queue at once; that an agent
// cut off, changing its queue while the others change theirs, converges
// with them when it is back; that only the agent that recorded a request
// escalates it to HQ; and that another store sees none of it.
func TestLink_SharesAcrossAgents(t *testing.T) {
	w := natsaccttest.Start(t, "S1", "S2")
	reconnect := []nats.Option{nats.MaxReconnects(-1), nats.ReconnectWait(50 * time.Millisecond)}
	gwConn, gwErrs := w.Store(t, "S1", "", reconnect...)
	proxy := testkit.StartProxy(t, strings.TrimPrefix(w.URL, "nats://"))
	handConn, _ := w.Store(t, "S1", "nats://"+proxy.Addr(), reconnect...)
	other, otherErrs := w.Store(t, "S2", "")
	spy, err := other.SubscribeSync(subjects.StaffAll)
	if err != nil {
		t.Fatal(err)
	}
	own, err := other.SubscribeSync(subjects.StaffStore("S2"))
	if err != nil {
		t.Fatal(err)
	}

	gw := startAgentQueue(t, "gw", gwConn)
	hand := startAgentQueue(t, "hand-1", handConn)
	_ = gwConn.Flush()
	_ = handConn.Flush()

	// 1. Live: request, claim, done, each seen on the other agent.
	id := gw.ask(t, "k1", "room-1")
	start := time.Now()
	hand.waitFor(t, id, "open, from gw", func(r Request) bool { return r.State == StateOpen && r.Origin == "gw" && r.Zone == "room-1" })
	t.Logf("request on the handheld's queue %v after the mirror's append", time.Since(start).Round(time.Millisecond))
	if _, err := hand.q.Claim(id, "ana"); err != nil {
		t.Fatal(err)
	}
	gw.waitFor(t, id, "claimed by ana", func(r Request) bool { return r.State == StateClaimed && r.ClaimedBy == "ana" })
	if _, err := gw.q.Finish(id); err != nil {
		t.Fatal(err)
	}
	hand.waitFor(t, id, "done", func(r Request) bool { return r.State == StateDone })

	// 2. A late joiner gets the whole queue when it connects.
	lateConn, _ := w.Store(t, "S1", "")
	late := startAgentQueue(t, "pos-1", lateConn)
	late.waitFor(t, id, "done, caught up", func(r Request) bool { return r.State == StateDone && r.ClaimedBy == "ana" })

	// 3. The handheld is cut off. Meanwhile the gateway records a request
	// and claims one; the handheld claims and finishes what it knows. When
	// it is back, all three agree.
	open1 := gw.ask(t, "k2", "room-2")
	hand.waitFor(t, open1, "open", func(r Request) bool { return r.State == StateOpen })
	proxy.Cut()
	testkit.Eventually(t, 10*time.Second, func() bool { return !handConn.IsConnected() }, "the handheld offline")
	missed := gw.ask(t, "k3", "room-3")
	if _, err := gw.q.Claim(missed, "bo"); err != nil {
		t.Fatal(err)
	}
	if _, err := hand.q.Claim(open1, "cy"); err != nil {
		t.Fatal(err)
	}
	if _, err := hand.q.Finish(open1); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond)
	if _, ok := hand.request(missed); ok {
		t.Fatal("the handheld got a request while cut off")
	}
	if r, _ := gw.request(open1); r.State != StateOpen {
		t.Fatalf("the gateway saw the handheld's change while it was cut off: %+v", r)
	}
	proxy.Heal()
	for _, a := range []*agentQueue{gw, hand, late} {
		a.waitFor(t, missed, "claimed by bo", func(r Request) bool { return r.State == StateClaimed && r.ClaimedBy == "bo" })
		a.waitFor(t, open1, "done by cy", func(r Request) bool { return r.State == StateDone && r.ClaimedBy == "cy" })
	}
	var snaps []string
	for _, a := range []*agentQueue{gw, hand, late} {
		s, _ := a.q.Snapshot()
		b, _ := json.Marshal(s.Requests)
		snaps = append(snaps, string(b))
	}
	if snaps[0] != snaps[1] || snaps[0] != snaps[2] {
		t.Fatalf("the agents' queues differ:\n%s\n%s\n%s", snaps[0], snaps[1], snaps[2])
	}

	// 4. Escalation: only the agent that recorded the request tells HQ.
	for _, a := range []*agentQueue{gw, hand, late} {
		a.q.o.EscalateAfter = time.Nanosecond
	}
	esc := gw.ask(t, "k4", "room-4")
	late.waitFor(t, esc, "open", func(r Request) bool { return r.State == StateOpen })
	for _, a := range []*agentQueue{hand, late, gw} {
		if err := a.q.Sweep(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	hand.waitFor(t, esc, "escalated", func(r Request) bool { return r.EscalatedMS != 0 })
	for _, a := range []*agentQueue{hand, late} {
		if n := a.ob.Stats().LastSeq; n != 0 {
			t.Errorf("%s, which did not record the request, appended %d events", a.q.o.Device, n)
		}
	}
	if n := gw.ob.Stats().LastSeq; n != 4+1 {
		t.Errorf("the gateway appended %d events, want its 4 requests and 1 escalation", n)
	}

	// 5. Nothing of S1's reached S2, and S2 may not listen to S1's.
	if m, err := own.NextMsg(200 * time.Millisecond); err == nil {
		t.Errorf("S2 received %s on its own staff subjects", m.Subject)
	}
	if m, err := spy.NextMsg(100 * time.Millisecond); err == nil {
		t.Errorf("S2 received %s", m.Subject)
	}
	if got := strings.Join(otherErrs(), "\n"); !strings.Contains(got, `Subscription to "omni.staff.>"`) {
		t.Errorf("S2 subscribing to every store's staff subjects was not refused: %q", got)
	}
	if errs := gwErrs(); len(errs) != 0 {
		t.Errorf("S1's agent hit permission errors: %v", errs)
	}
}

// Ensure that without NATS (no connection at all) the queue works alone:
// the link waits, and changes are made and kept.
func TestLink_NoConn(t *testing.T) {
	a := startAgentQueue(t, "gw", nil)
	id := a.ask(t, "k1", "room-1")
	if _, err := a.q.Claim(id, "ana"); err != nil {
		t.Fatal(err)
	}
	if r, ok := a.request(id); !ok || r.State != StateClaimed {
		t.Fatalf("request %+v", r)
	}
}
