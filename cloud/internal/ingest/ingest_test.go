package ingest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/omnisync/omnisync/cloud/internal/inventory"
	"github.com/omnisync/omnisync/cloud/internal/store"
	"github.com/omnisync/omnisync/shared/events"
	"github.com/omnisync/omnisync/shared/hlc"
	"github.com/omnisync/omnisync/shared/ids"
	"github.com/omnisync/omnisync/shared/subjects"
	"github.com/omnisync/omnisync/shared/syncproto"
	"github.com/omnisync/omnisync/shared/testkit"
)

// rig is a Consumer running against a real embedded JetStream server and
// a real store, with what it publishes to agents recorded.
type rig struct {
	t    *testing.T
	nats *testkit.NATS
	nc   *nats.Conn
	js   jetstream.JetStream
	st   *store.Store
	c    *Consumer

	mu         sync.Mutex
	watermarks map[string]uint64 // "store/device/epoch" -> highest seq pushed to the agent
	recovered  map[string]int    // cause -> count
	runErr     chan error
	// applyFailed counts the failed ApplyBatch calls the metrics saw.
	applyFailed atomic.Int64
}

// openSQLite opens a store in a fresh SQLite file.
func openSQLite(t *testing.T) *store.Store {
	t.Helper()
	return openStore(t, "sqlite:"+filepath.Join(t.TempDir(), "hub.db"))
}

func openStore(t *testing.T, dsn string) *store.Store {
	t.Helper()
	st, err := store.Open(context.Background(), dsn, nil)
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// startRig starts NATS, ensures the stream and runs a Consumer over st
// (or over wrap(st) when wrap is set) until the test ends.
func startRig(t *testing.T, st *store.Store, wrap func(*store.Store) Store) *rig {
	t.Helper()
	r := &rig{t: t, nats: testkit.StartNATS(t), st: st, watermarks: map[string]uint64{}, recovered: map[string]int{},
		runErr: make(chan error, 1)}
	nc, err := nats.Connect(r.nats.URL(), nats.MaxReconnects(-1), nats.ReconnectWait(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	r.nc = nc
	if r.js, err = jetstream.New(nc); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cons, err := EnsureStream(ctx, r.js, StreamOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := nc.Subscribe(subjects.AckAll, func(m *nats.Msg) {
		var w syncproto.Watermark
		if json.Unmarshal(m.Data, &w) != nil {
			return
		}
		k := fmt.Sprintf("%s/%d", strings.ReplaceAll(strings.TrimPrefix(m.Subject, "omni.ack."), ".", "/"), w.Epoch)
		r.mu.Lock()
		r.watermarks[k] = max(r.watermarks[k], w.Seq)
		r.mu.Unlock()
	}); err != nil {
		t.Fatal(err)
	}
	var s Store = st
	if wrap != nil {
		s = wrap(st)
	}
	c, err := New(Options{
		Consumer: cons, Conn: nc, Store: s, Logger: testkit.Logger(t),
		Reopen: func(ctx context.Context) (jetstream.Consumer, error) { return EnsureStream(ctx, r.js, StreamOptions{}) },
		Metrics: Metrics{Recovered: func(cause string) {
			r.mu.Lock()
			r.recovered[cause]++
			r.mu.Unlock()
		}, ApplyFailed: func() { r.applyFailed.Add(1) }},
	})
	if err != nil {
		t.Fatal(err)
	}
	r.c = c
	rctx, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); r.runErr <- c.Run(rctx) }()
	t.Cleanup(func() { stop(); <-done })
	return r
}

// publish sends body on subject and waits for the stream to have it.
func (r *rig) publish(subject string, body []byte) {
	r.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := r.js.Publish(ctx, subject, body); err != nil {
		r.t.Fatalf("publish %s: %v", subject, err)
	}
}

// watermark is the highest watermark pushed to the device's agent.
func (r *rig) watermark(d *till) uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.watermarks[fmt.Sprintf("%s/%s/%d", d.store, d.device, d.epoch)]
}

// waitAcked waits until the hub told the device's agent it has processed
// every event up to seq.
func (r *rig) waitAcked(d *till, seq uint64) {
	r.t.Helper()
	testkit.Eventually(r.t, time.Minute, func() bool { return r.watermark(d) >= seq },
		"%s/%s acknowledged up to %d (got %d)", d.store, d.device, seq, r.watermark(d))
}

// onHand is the store's on-hand stock of sku at location.
func (r *rig) onHand(sku, location string) int64 {
	r.t.Helper()
	rows, err := r.st.StockForSKU(context.Background(), sku)
	if err != nil {
		r.t.Fatal(err)
	}
	for _, s := range rows {
		if s.Location == location {
			return s.OnHand
		}
	}
	return 0
}

func (r *rig) deadLetters(storeID string) []store.DeadLetter {
	r.t.Helper()
	dls, err := r.st.DeadLetters(context.Background(), storeID, 1000)
	if err != nil {
		r.t.Fatal(err)
	}
	return dls
}

func (r *rig) recoveries(cause string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.recovered[cause]
}

// till makes a device's events, seq after seq.
type till struct {
	store, device string
	epoch, seq    uint64
}

func newTill(storeID, device string) *till {
	return &till{store: storeID, device: device, epoch: ids.NewEpoch(time.Now())}
}

func (d *till) subject() string { return subjects.Event(d.store, d.device) }

// sale returns the device's next event: a sale of qty units of sku.
func (d *till) sale(sku string, qty int64) events.Envelope {
	d.seq++
	data, err := json.Marshal(events.StockMove{Location: d.store, Lines: []events.Line{{SKU: sku, Qty: qty}}})
	if err != nil {
		panic(err)
	}
	return events.Envelope{
		V: events.CurrentVersion, ID: ids.NewEventID(time.Now()),
		Origin: events.Origin{Store: d.store, Device: d.device, Epoch: d.epoch, Seq: d.seq},
		HLC:    hlc.Timestamp{Wall: time.Now().UnixMilli()}, Kind: events.KindSale, Data: data,
	}
}

func encode(t testing.TB, envs ...events.Envelope) [][]byte {
	t.Helper()
	out := make([][]byte, len(envs))
	for i, e := range envs {
		b, err := json.Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		out[i] = b
	}
	return out
}

// Ensure that one event the store cannot apply, in the middle of a batch,
// is isolated by bisecting the batch and dead-lettered alone, while every
// other event of the batch is applied and the device's watermark moves
// past all of them.
func TestBisectIsolatesOneBadEvent(t *testing.T) {
	st := openSQLite(t)
	var poison atomic.Value
	poison.Store("")
	var calls atomic.Int64
	r := startRig(t, st, func(s *store.Store) Store {
		return &poisoned{Store: s, poison: func() string { return poison.Load().(string) }, calls: &calls}
	})
	d := newTill("S1", "pos-1")
	envs := make([]events.Envelope, 40)
	for i := range envs {
		envs[i] = d.sale("SKU-1", 1)
	}
	bad := envs[23]
	poison.Store(bad.ID)
	// One batch message: the consumer never splits one, so all 40 events
	// reach the store in the same ApplyBatch.
	r.publish(d.subject(), events.AppendBatch(nil, encode(t, envs...)...))
	r.waitAcked(d, d.seq)

	if got := r.onHand("SKU-1", "S1"); got != -39 {
		t.Errorf("on hand %d, want -39: every sale but the bad one applied once", got)
	}
	dls := r.deadLetters("S1")
	if len(dls) != 1 || dls[0].EventID != bad.ID || dls[0].Seq != bad.Origin.Seq || !strings.Contains(dls[0].Reason, "hub could not apply") {
		t.Fatalf("dead letters %+v, want the one bad event (%s, seq %d)", dls, bad.ID, bad.Origin.Seq)
	}
	// Bisecting 40 down to one takes a handful of rounds of three tries,
	// not one try per event.
	if n := calls.Load(); n < 6 || n > 60 {
		t.Errorf("%d ApplyBatch calls; bisecting 40 events should take between 6 and 60", n)
	}
	// The stream is not held up: the device's next event applies.
	r.publish(d.subject(), encode(t, d.sale("SKU-1", 1))[0])
	r.waitAcked(d, d.seq)
	if got := r.onHand("SKU-1", "S1"); got != -40 {
		t.Errorf("on hand %d after the next sale, want -40", got)
	}
}

// poisoned is the real store, except that any batch holding the poison
// event (unless already marked for the dead letters) fails as a constraint
// or a driver bug would, while the database itself stays up.
type poisoned struct {
	*store.Store
	poison func() string
	calls  *atomic.Int64
}

func (p *poisoned) ApplyBatch(ctx context.Context, items []store.Item) (store.BatchResult, error) {
	p.calls.Add(1)
	for _, it := range items {
		if it.Env.ID == p.poison() && it.Reject == "" {
			return store.BatchResult{}, errors.New("value out of range for the stock ledger")
		}
	}
	return p.Store.ApplyBatch(ctx, items)
}

func (p *poisoned) ApplyPrepared(ctx context.Context, b *store.Prepared) (store.BatchResult, error) {
	p.calls.Add(1)
	for _, it := range b.Items() {
		if it.Env.ID == p.poison() && it.Reject == "" {
			return store.BatchResult{}, errors.New("value out of range for the stock ledger")
		}
	}
	return p.Store.ApplyPrepared(ctx, b)
}

// gated is the real store, except that a commit waits for open to close.
type gated struct {
	*store.Store
	open chan struct{}
}

func (g *gated) ApplyPrepared(ctx context.Context, b *store.Prepared) (store.BatchResult, error) {
	<-g.open
	return g.Store.ApplyPrepared(ctx, b)
}

// Ensure that Busy holds from the moment messages are taken from the
// stream until they are settled, however long the commit takes, and not
// after: the basket folder yields to the apply while it holds.
func TestBusyWhileMessagesAreHeld(t *testing.T) {
	g := &gated{open: make(chan struct{})}
	r := startRig(t, openSQLite(t), func(st *store.Store) Store { g.Store = st; return g })
	if r.c.Busy() {
		t.Fatal("busy before any message")
	}
	d := newTill("S1", "pos-1")
	for _, b := range encode(t, d.sale("SKU-1", 1), d.sale("SKU-2", 1)) {
		r.publish(d.subject(), b)
	}
	testkit.Eventually(t, 10*time.Second, r.c.Busy, "busy while the commit waits")
	time.Sleep(1500 * time.Millisecond) // longer than the hub's clock of the last commit
	if !r.c.Busy() {
		t.Fatal("not busy while the commit still waits")
	}
	close(g.open)
	r.waitAcked(d, 2)
	testkit.Eventually(t, 10*time.Second, func() bool { return !r.c.Busy() }, "idle once settled")
}

// Ensure that messages without a trustworthy origin go to the dead
// letters, filed under the store and device of the subject they came on
// (never the origin they claim), with their reason, and that the stream
// goes on past them.
func TestDeadLetters(t *testing.T) {
	r := startRig(t, openSQLite(t), nil)
	victim := newTill("S2", "pos-1")
	victim.sale("SKU-1", 1) // S2's real till is at seq 1; the forgery claims its seq 2
	for _, tc := range []struct {
		name    string
		subject string
		body    func(d *till) []byte
		// reason is part of the dead letter's reason; origin says whether
		// the dead letter keeps the event's epoch and seq.
		reason string
		origin bool
	}{
		{
			name: "undecodable", subject: subjects.Event("S1", "pos-1"),
			body:   func(*till) []byte { return []byte(`{"v":1,"id":`) },
			reason: "undecodable event",
		},
		{
			name: "forged origin", subject: subjects.Event("S1", "pos-1"),
			body: func(*till) []byte {
				return encode(t, victim.sale("SKU-1", 5))[0]
			},
			reason: "origin S2/pos-1 does not match subject omni.ev.S1.pos-1",
		},
		{
			name: "forged origin in a batch", subject: subjects.Event("S1", "pos-1"),
			body: func(*till) []byte {
				return events.AppendBatch(nil, encode(t, victim.sale("SKU-1", 7))...)
			},
			reason: "origin S2/pos-1 does not match subject",
		},
		{
			name: "HQ's origin from a device", subject: subjects.Event(inventory.HQ, "pos-1"),
			body: func(*till) []byte {
				return encode(t, newTill(inventory.HQ, "pos-1").sale("SKU-1", 1))[0]
			},
			reason: "reserved for HQ's actions",
		},
		{
			name: "malformed batch", subject: subjects.Event("S1", "pos-1"),
			body:   func(*till) []byte { return []byte(`[{"v":1},`) },
			reason: "malformed batch",
		},
		{
			name: "subject without a device", subject: "omni.ev.S1",
			body:   func(d *till) []byte { return encode(t, d.sale("SKU-1", 1))[0] },
			reason: "subject is not omni.ev.<store>.<device>",
		},
		{
			name: "invalid body, sound origin", subject: subjects.Event("S1", "pos-1"),
			body: func(d *till) []byte {
				e := d.sale("SKU-1", 1)
				e.Data = json.RawMessage(`{"location":"S1","lines":[{"sku":"SKU-1","qty":0}]}`)
				return encode(t, e)[0]
			},
			reason: "qty", origin: true,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := newTill("S1", "pos-1")
			before := len(r.deadLetters(""))
			r.publish(tc.subject, tc.body(d))
			// A good event from a till of the same store, after the bad
			// message: once it is applied the bad one was settled too.
			good := newTill("S1", "pos-2")
			r.publish(good.subject(), encode(t, good.sale("SKU-2", 1))[0])
			r.waitAcked(good, good.seq)
			var dl store.DeadLetter
			testkit.Eventually(t, 10*time.Second, func() bool {
				all := r.deadLetters("")
				if len(all) == before+1 {
					dl = all[0]
					return true
				}
				return false
			}, "one new dead letter")
			if dl.Subject != tc.subject || !strings.Contains(dl.Reason, tc.reason) {
				t.Errorf("dead letter %+v: want subject %s and a reason with %q", dl, tc.subject, tc.reason)
			}
			wantStore := "S1"
			if strings.Contains(tc.subject, inventory.HQ) {
				wantStore = inventory.HQ
			}
			if tc.subject != "omni.ev.S1" && (dl.Store != wantStore || dl.Device != "pos-1") {
				t.Errorf("dead letter filed under %s/%s, want the subject's S1/pos-1", dl.Store, dl.Device)
			}
			if tc.origin {
				if dl.Epoch != d.epoch || dl.Seq != d.seq {
					t.Errorf("dead letter at epoch %d seq %d, want its origin %d/%d", dl.Epoch, dl.Seq, d.epoch, d.seq)
				}
				// A dead-lettered event still counts as processed.
				r.waitAcked(d, d.seq)
			}
		})
	}
	// Nothing the forgeries claimed reached S2: no stock, no dead letters,
	// no dedup state for its device.
	if got := r.onHand("SKU-1", "S2"); got != 0 {
		t.Errorf("S2 on hand %d after forgeries, want 0", got)
	}
	if dls := r.deadLetters("S2"); len(dls) != 0 {
		t.Errorf("S2 has dead letters %+v; forgeries belong to the sender", dls)
	}
	if wms, err := r.st.Watermarks(context.Background(), "S2", "pos-1"); err != nil || len(wms) != 0 {
		t.Errorf("S2/pos-1 watermarks %+v (%v): the forged origin touched its dedup state", wms, err)
	}
}

// Ensure that a database outage is waited out, never mistaken for bad
// events: nothing is dead-lettered or dropped, and everything is applied
// once the database answers again.
func TestDatabaseOutageRetried(t *testing.T) {
	t.Parallel() // mostly waits on processes and timers
	t.Run("sqlite, store failing", func(t *testing.T) {
		var down atomic.Int64
		r := startRig(t, openSQLite(t), func(s *store.Store) Store { return &outage{Store: s, fails: &down} })
		// Every call fails, Ping included, for the next 8 calls: enough
		// to go through retries, bisecting and the health checks.
		down.Store(8)
		testOutage(t, r, func() {})
	})
	t.Run("postgres, server crashed and restarted", func(t *testing.T) {
		pg := testkit.StartPGServer(t)
		r := startRig(t, openStore(t, pg.DSN()), nil)
		// Warm up: the pool has connections, the consumer is pulling.
		d := newTill("S9", "pos-1")
		r.publish(d.subject(), encode(t, d.sale("SKU-9", 1))[0])
		r.waitAcked(d, d.seq)
		pg.Crash()
		testOutage(t, r, func() {
			time.Sleep(1500 * time.Millisecond) // long enough to fail, and to check health, several times
			pg.Start()
		})
	})
}

// testOutage publishes events from two tills while the database is down,
// ends the outage with recover, and checks the books.
func testOutage(t *testing.T, r *rig, recover func()) {
	t.Helper()
	tills := []*till{newTill("S1", "pos-1"), newTill("S1", "pos-2")}
	for i := 0; i < 30; i++ {
		for _, d := range tills {
			r.publish(d.subject(), encode(t, d.sale("SKU-1", 1))[0])
		}
	}
	// And one batch message each.
	for _, d := range tills {
		r.publish(d.subject(), events.AppendBatch(nil, encode(t, d.sale("SKU-1", 1), d.sale("SKU-1", 1), d.sale("SKU-1", 1))...))
	}
	recover()
	for _, d := range tills {
		r.waitAcked(d, d.seq)
	}
	if got := r.onHand("SKU-1", "S1"); got != -66 {
		t.Errorf("on hand %d, want -66: every sale applied exactly once", got)
	}
	if dls := r.deadLetters(""); len(dls) != 0 {
		t.Errorf("%d dead letters after an outage, want none: %+v", len(dls), dls[0])
	}
	if r.applyFailed.Load() == 0 {
		t.Error("no failed apply counted during the outage (omni_hub_apply_errors_total)")
	}
	select {
	case err := <-r.runErr:
		t.Fatalf("consumer stopped: %v", err)
	default:
	}
}

// outage is the real store while fails is <= 0; while it is positive every
// call fails and counts it down, Ping included: the database is down.
type outage struct {
	*store.Store
	fails *atomic.Int64
}

var errDown = errors.New("dial tcp 10.0.0.5:5432: connect: connection refused")

func (o *outage) down() bool { return o.fails.Add(-1) >= 0 }

func (o *outage) ApplyBatch(ctx context.Context, items []store.Item) (store.BatchResult, error) {
	if o.down() {
		return store.BatchResult{}, errDown
	}
	return o.Store.ApplyBatch(ctx, items)
}

func (o *outage) ApplyPrepared(ctx context.Context, b *store.Prepared) (store.BatchResult, error) {
	if o.down() {
		return store.BatchResult{}, errDown
	}
	return o.Store.ApplyPrepared(ctx, b)
}

func (o *outage) AddDeadLetter(ctx context.Context, d store.DeadLetter) error {
	if o.down() {
		return errDown
	}
	return o.Store.AddDeadLetter(ctx, d)
}

func (o *outage) Ping(ctx context.Context) error {
	if o.down() {
		return errDown
	}
	return o.Store.Ping(ctx)
}

// Ensure that the consumer survives the server losing its durable
// consumer, restarting, and coming back without its storage: it creates
// the consumer (and stream) again with Reopen and carries on, and the
// redeliveries that follow change nothing.
func TestStreamRecovers(t *testing.T) {
	t.Parallel() // mostly waits on processes and timers
	r := startRig(t, openSQLite(t), nil)
	d := newTill("S1", "pos-1")
	send := func(n int) {
		for i := 0; i < n; i++ {
			r.publish(d.subject(), encode(t, d.sale("SKU-1", 1))[0])
		}
	}
	send(10)
	r.waitAcked(d, d.seq)

	// An operator deletes the consumer.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := r.js.DeleteConsumer(ctx, subjects.StreamEvents, subjects.HubConsumer); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, 30*time.Second, func() bool {
		_, err := r.js.Consumer(ctx, subjects.StreamEvents, subjects.HubConsumer)
		return err == nil
	}, "consumer created again")
	send(10)
	r.waitAcked(d, d.seq)
	if r.recoveries(CauseConsumerGone)+r.recoveries(CauseNoHeartbeat) == 0 {
		t.Errorf("recoveries %v: the lost consumer was not counted", r.recovered)
	}

	// The server restarts.
	r.nats.Restart()
	send(10)
	r.waitAcked(d, d.seq)

	// The server comes back without its storage: no stream, no consumer.
	// Pulls go unanswered (no heartbeats) until the consumer notices, finds
	// the consumer gone and creates stream and consumer again; the till
	// keeps trying to publish meanwhile.
	r.nats.Stop()
	if err := os.RemoveAll(r.nats.Dir); err != nil {
		t.Fatal(err)
	}
	r.nats.Restart()
	for range 10 {
		body := encode(t, d.sale("SKU-1", 1))[0]
		testkit.Eventually(t, time.Minute, func() bool {
			pctx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			_, err := r.js.Publish(pctx, d.subject(), body)
			return err == nil
		}, "the events stream back")
	}
	r.waitAcked(d, d.seq)

	if got := r.onHand("SKU-1", "S1"); got != -40 {
		t.Errorf("on hand %d, want -40", got)
	}
	select {
	case err := <-r.runErr:
		t.Fatalf("consumer stopped: %v", err)
	default:
	}
}

// Ensure that iterator errors are sorted the way the jetstream package
// documents them: only a closed connection and refused requests stop the
// consumer.
func TestIteratorErrors(t *testing.T) {
	for _, tc := range []struct {
		err      error
		terminal bool
		cause    string
	}{
		{jetstream.ErrNoHeartbeat, false, CauseNoHeartbeat},
		{fmt.Errorf("ingest: %w", jetstream.ErrNoHeartbeat), false, CauseNoHeartbeat},
		{jetstream.ErrConsumerDeleted, false, CauseConsumerGone},
		{jetstream.ErrConsumerNotFound, false, CauseConsumerGone},
		{jetstream.ErrStreamNotFound, false, CauseConsumerGone},
		{jetstream.ErrMsgIteratorClosed, false, CauseIteratorClosed},
		{jetstream.ErrServerShutdown, false, CauseOther},
		{jetstream.ErrConsumerLeadershipChanged, false, CauseOther},
		{nats.ErrTimeout, false, CauseOther},
		{fmt.Errorf("%w: %w", jetstream.ErrMsgIteratorClosed, jetstream.ErrConnectionClosed), true, ""},
		{nats.ErrConnectionClosed, true, ""},
		{jetstream.ErrBadRequest, true, ""},
		{fmt.Errorf("%w: priority group is required", jetstream.ErrInvalidOption), true, ""},
	} {
		if got := terminal(tc.err); got != tc.terminal {
			t.Errorf("terminal(%v) = %v, want %v", tc.err, got, tc.terminal)
		}
		if !tc.terminal {
			if got := recoverCause(tc.err); got != tc.cause {
				t.Errorf("recoverCause(%v) = %q, want %q", tc.err, got, tc.cause)
			}
		}
	}
}
