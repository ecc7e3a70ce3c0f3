package heartbeat

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/omnisync/omnisync/cloud/internal/store"
	"github.com/omnisync/omnisync/shared/events"
	"github.com/omnisync/omnisync/shared/hlc"
	"github.com/omnisync/omnisync/shared/ids"
	"github.com/omnisync/omnisync/shared/subjects"
	"github.com/omnisync/omnisync/shared/syncproto"
	"github.com/omnisync/omnisync/shared/testkit"
)

// counting is the real store, counting the calls the service makes and
// failing the next writes while failWrites is positive.
type counting struct {
	*store.Store
	writes, reads, failWrites atomic.Int64
}

func (c *counting) RecordHeartbeats(ctx context.Context, hbs []store.Heartbeat) error {
	c.writes.Add(1)
	if c.failWrites.Add(-1) >= 0 {
		return errors.New("connection refused")
	}
	return c.Store.RecordHeartbeats(ctx, hbs)
}

func (c *counting) Watermarks(ctx context.Context, storeID, device string) ([]store.Watermark, error) {
	c.reads.Add(1)
	return c.Store.Watermarks(ctx, storeID, device)
}

func openStore(t *testing.T, dsn string) *store.Store {
	t.Helper()
	st, err := store.Open(context.Background(), dsn, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// forEachStore runs fn against a fresh SQLite file and a fresh PostgreSQL
// schema; dsn opens another handle on the same database (another replica).
func forEachStore(t *testing.T, fn func(t *testing.T, dsn string)) {
	t.Run("sqlite", func(t *testing.T) { fn(t, "sqlite:"+filepath.Join(t.TempDir(), "hub.db")) })
	t.Run("postgres", func(t *testing.T) { fn(t, testkit.Postgres(t)) })
}

// clock is a settable hub clock.
type clock struct{ ms atomic.Int64 }

func (c *clock) now() time.Time          { return time.UnixMilli(c.ms.Load()) }
func (c *clock) advance(d time.Duration) { c.ms.Add(d.Milliseconds()) }

func newClock() *clock {
	c := &clock{}
	c.ms.Store(time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC).UnixMilli())
	return c
}

func newService(t *testing.T, st Store, clk *clock) *Service {
	t.Helper()
	s, err := New(Options{Store: st, Now: clk.now, Logger: testkit.Logger(t)})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// beat sends one heartbeat of storeID/device and returns the reply.
func beat(t *testing.T, s *Service, storeID, device string, hb syncproto.Heartbeat) syncproto.HeartbeatReply {
	t.Helper()
	hb.Store, hb.Device = storeID, device
	b, err := json.Marshal(hb)
	if err != nil {
		t.Fatal(err)
	}
	rep := s.Handle(context.Background(), subjects.HubSync(storeID, device), b)
	if rep.Error != "" {
		t.Fatalf("heartbeat of %s/%s: %s", storeID, device, rep.Error)
	}
	return rep
}

func devices(t *testing.T, st *store.Store) map[string]store.DeviceStatus {
	t.Helper()
	ds, err := st.Devices(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]store.DeviceStatus{}
	for _, d := range ds {
		out[d.Store+"/"+d.Device] = d
	}
	return out
}

// Ensure that a fleet's heartbeats cost one write per flush, not one per
// heartbeat, and that what the flush writes is each device's newest
// report, also when two replicas receive a device's heartbeats in turn.
func TestFlushWritesFleetInOneStatement(t *testing.T) {
	forEachStore(t, func(t *testing.T, dsn string) {
		clk := newClock()
		a := &counting{Store: openStore(t, dsn)}
		b := &counting{Store: a.Store}
		if !strings.HasPrefix(dsn, "sqlite:") {
			// Replicas share PostgreSQL; a SQLite file serves one hub.
			b = &counting{Store: openStore(t, dsn)}
		}
		ra, rb := newService(t, a, clk), newService(t, b, clk)
		const fleet = 2000
		for round := range 3 {
			for i := range fleet {
				// NATS hands each heartbeat to one replica or the other.
				r := ra
				if (i+round)%2 == 1 {
					r = rb
				}
				beat(t, r, fmt.Sprintf("S%04d", i), "pos-1", syncproto.Heartbeat{
					Epoch: 7, Version: "1.4.0", Backlog: int64(round), OldestUnackedMS: int64(round) * 1000,
					AgentTimeMS: clk.now().Add(-250 * time.Millisecond).UnixMilli(),
				})
				clk.advance(time.Millisecond)
			}
		}
		if n := a.writes.Load() + b.writes.Load(); n != 0 {
			t.Fatalf("%d writes before any flush", n)
		}
		// The replicas flush in the "wrong" order: b holds older rows for
		// half the devices than a does, and the other way round.
		for _, r := range []*Service{rb, ra} {
			if err := r.Flush(context.Background()); err != nil {
				t.Fatal(err)
			}
		}
		if a.writes.Load() != 1 || b.writes.Load() != 1 {
			t.Fatalf("writes: %d and %d, want one statement per replica", a.writes.Load(), b.writes.Load())
		}
		got := devices(t, a.Store)
		if len(got) != fleet {
			t.Fatalf("%d devices stored, want %d", len(got), fleet)
		}
		for i := range fleet {
			d := got[fmt.Sprintf("S%04d/pos-1", i)]
			if d.Backlog != 2 || d.OldestUnackedAge != 2*time.Second || d.Version != "1.4.0" || d.Epoch != 7 ||
				d.ClockSkew != 250*time.Millisecond || !d.Connected {
				t.Fatalf("device %d: %+v, want the last round's heartbeat", i, d)
			}
		}
		if st := ra.Stats(); st.Received != 3*fleet/2 || st.Rows != fleet || st.Flushes != 1 || st.Pending != 0 {
			t.Errorf("stats %+v", st)
		}
		// Nothing new: nothing written.
		if err := ra.Flush(context.Background()); err != nil || a.writes.Load() != 1 {
			t.Errorf("empty flush: %v, %d writes", err, a.writes.Load())
		}
	})
}

// Ensure that heartbeats a failed flush could not write are written by
// the next, unless a newer one of the device came in meanwhile.
func TestFailedFlushKeepsHeartbeats(t *testing.T) {
	clk := newClock()
	st := &counting{Store: openStore(t, "sqlite:"+filepath.Join(t.TempDir(), "hub.db"))}
	s := newService(t, st, clk)
	beat(t, s, "S1", "pos-1", syncproto.Heartbeat{Backlog: 5})
	beat(t, s, "S1", "pos-2", syncproto.Heartbeat{Backlog: 6})
	st.failWrites.Store(1)
	if err := s.Flush(context.Background()); err == nil {
		t.Fatal("flush did not report the failure")
	}
	clk.advance(time.Second)
	beat(t, s, "S1", "pos-2", syncproto.Heartbeat{Backlog: 9})
	if err := s.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	got := devices(t, st.Store)
	if got["S1/pos-1"].Backlog != 5 || got["S1/pos-2"].Backlog != 9 {
		t.Fatalf("devices %+v", got)
	}
	if s := s.Stats(); s.FlushErrors != 1 || s.Flushes != 1 || s.Rows != 2 {
		t.Errorf("stats %+v", s)
	}
}

// Ensure that Run flushes every FlushEvery and once more when it stops.
func TestRunFlushesPeriodicallyAndAtShutdown(t *testing.T) {
	st := openStore(t, "sqlite:"+filepath.Join(t.TempDir(), "hub.db"))
	s, err := New(Options{Store: st, FlushEvery: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	beat(t, s, "S1", "pos-1", syncproto.Heartbeat{})
	testkit.Eventually(t, 10*time.Second, func() bool { return len(devices(t, st)) == 1 }, "periodic flush")
	beat(t, s, "S1", "pos-2", syncproto.Heartbeat{})
	stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if got := devices(t, st); len(got) != 2 {
		t.Fatalf("after shutdown %d devices stored, want 2: the last heartbeat was not flushed", len(got))
	}
}

// Ensure that the reply's watermarks come from the database only when the
// agent could learn from them, and never exceed what is committed.
func TestWatermarkReads(t *testing.T) {
	for _, tc := range []struct {
		name string
		// learned is what this replica knows is committed (0: nothing).
		learned uint64
		hb      syncproto.Heartbeat
		read    bool
		want    uint64 // the epoch-7 watermark in the reply; 0: none
	}{
		{"caught up, nothing known", 0, syncproto.Heartbeat{Epoch: 7, Backlog: 0, PublishedSeq: 50}, false, 0},
		{"caught up, known", 30, syncproto.Heartbeat{Epoch: 7, Backlog: 0, PublishedSeq: 30}, false, 30},
		{"backlog, nothing known", 0, syncproto.Heartbeat{Epoch: 7, Backlog: 5, PublishedSeq: 40}, true, 50},
		{"backlog, all published known committed", 40, syncproto.Heartbeat{Epoch: 7, Backlog: 5, PublishedSeq: 40}, false, 40},
		{"backlog published beyond what is known", 30, syncproto.Heartbeat{Epoch: 7, Backlog: 5, PublishedSeq: 45}, true, 50},
		{"backlog, agent does not say what it published", 30, syncproto.Heartbeat{Epoch: 7, Backlog: 5}, true, 50},
		{"backlog in a new epoch", 30, syncproto.Heartbeat{Epoch: 8, Backlog: 5, PublishedSeq: 3}, true, 50},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := &counting{Store: openStore(t, "sqlite:"+filepath.Join(t.TempDir(), "hub.db"))}
			commit(t, st.Store, "S1", "pos-1", 7, 50) // another replica committed up to 50
			s := newService(t, st, newClock())
			if tc.learned > 0 {
				s.Learn([]store.Watermark{{Store: "S1", Device: "pos-1", Epoch: 7, Seq: tc.learned}})
			}
			rep := beat(t, s, "S1", "pos-1", tc.hb)
			if got := st.reads.Load() == 1; got != tc.read {
				t.Errorf("database read: %v, want %v", got, tc.read)
			}
			var got uint64
			for _, w := range rep.Watermarks {
				if w.Epoch == 7 {
					got = w.Seq
				}
			}
			if got != tc.want {
				t.Errorf("reply %+v: epoch 7 at %d, want %d", rep.Watermarks, got, tc.want)
			}
			if got > 50 {
				t.Errorf("replied %d, beyond the committed 50", got)
			}
		})
	}
}

// commit applies seqs 1..upTo of a device epoch (sales of one unit).
func commit(t *testing.T, st *store.Store, storeID, device string, epoch, upTo uint64) {
	t.Helper()
	var items []store.Item
	for seq := uint64(1); seq <= upTo; seq++ {
		items = append(items, saleItem(storeID, device, epoch, seq))
	}
	if _, err := st.ApplyBatch(context.Background(), items); err != nil {
		t.Fatal(err)
	}
}

// saleItem is seq of a device epoch: a sale of one unit.
func saleItem(storeID, device string, epoch, seq uint64) store.Item {
	data, _ := json.Marshal(events.StockMove{Location: storeID, Lines: []events.Line{{SKU: "SKU-1", Qty: 1}}})
	return store.Item{Env: events.Envelope{
		V: events.CurrentVersion, ID: ids.NewEventID(time.Now()),
		Origin: events.Origin{Store: storeID, Device: device, Epoch: epoch, Seq: seq},
		HLC:    hlc.Timestamp{Wall: time.Now().UnixMilli()}, Kind: events.KindSale, Data: data,
	}}
}

// Ensure that watermarks learned from this replica's batches only grow,
// and that a device's oldest epochs are forgotten beyond a few.
func TestLearn(t *testing.T) {
	s := newService(t, &counting{}, newClock())
	w := func(epoch, seq uint64) store.Watermark {
		return store.Watermark{Store: "S1", Device: "pos-1", Epoch: epoch, Seq: seq}
	}
	s.Learn([]store.Watermark{w(1, 10), w(1, 4), w(2, 0)})
	s.Learn([]store.Watermark{w(1, 7)})
	got, err := s.watermarks(context.Background(), devKey{"S1", "pos-1"}, syncproto.Heartbeat{Epoch: 1})
	if err != nil || len(got) != 2 || got[0] != (syncproto.Watermark{Epoch: 1, Seq: 10}) || got[1] != (syncproto.Watermark{Epoch: 2}) {
		t.Fatalf("watermarks %+v, %v", got, err)
	}
	for e := uint64(3); e <= 8; e++ {
		s.Learn([]store.Watermark{w(e, e)})
	}
	got, _ = s.watermarks(context.Background(), devKey{"S1", "pos-1"}, syncproto.Heartbeat{Epoch: 8})
	if len(got) != epochsKept || got[0].Epoch != 5 || got[len(got)-1] != (syncproto.Watermark{Epoch: 8, Seq: 8}) {
		t.Fatalf("after many epochs: %+v", got)
	}
}

// Ensure that requests that are not a device's own heartbeat are refused
// and recorded nowhere.
func TestHandleRefuses(t *testing.T) {
	st := &counting{}
	s := newService(t, st, newClock())
	good, _ := json.Marshal(syncproto.Heartbeat{Store: "S1", Device: "pos-1"})
	for _, tc := range []struct {
		name, subject string
		body          []byte
		want          string
	}{
		{"bad subject", "omni.hub.sync.S1", good, "bad subject"},
		{"not JSON", subjects.HubSync("S1", "pos-1"), []byte("{"), "malformed heartbeat"},
		{"too large", subjects.HubSync("S1", "pos-1"), make([]byte, MaxBodyBytes+1), "malformed heartbeat"},
		{"another store's", subjects.HubSync("S2", "pos-1"), good, "do not match"},
		{"another device's", subjects.HubSync("S1", "pos-2"), good, "do not match"},
		{"invalid names", subjects.HubSync("S 1", "pos-1"), []byte(`{"store":"S 1","device":"pos-1"}`), "do not match"},
	} {
		rep := s.Handle(context.Background(), tc.subject, tc.body)
		if rep.Error == "" || !strings.Contains(rep.Error, tc.want) || rep.HubTimeMS == 0 {
			t.Errorf("%s: reply %+v, want an error with %q", tc.name, rep, tc.want)
		}
	}
	if st := s.Stats(); st.Received != 0 || st.Pending != 0 {
		t.Errorf("refused heartbeats were kept: %+v", st)
	}
}

// Ensure that New refuses a flush interval too long for the API's
// connected window.
func TestNewChecksFlushEvery(t *testing.T) {
	for _, d := range []time.Duration{-time.Second, MaxFlushEvery + time.Millisecond, time.Minute} {
		if _, err := New(Options{Store: &counting{}, FlushEvery: d}); !errors.Is(err, ErrInvalidOption) {
			t.Errorf("FlushEvery %v: %v", d, err)
		}
	}
	if _, err := New(Options{}); !errors.Is(err, ErrInvalidOption) {
		t.Errorf("no store: %v", err)
	}
}

// Ensure that the unsynced sales a heartbeat reports reach the device's
// row, negative figures read as none.
func TestHeartbeat_KeepsUnsyncedSales(t *testing.T) {
	st := openStore(t, "sqlite:"+filepath.Join(t.TempDir(), "hub.db"))
	clk := newClock()
	s := newService(t, st, clk)
	beat(t, s, "S1", "pos-1", syncproto.Heartbeat{Epoch: 1, UnsyncedSales: 3, UnsyncedSalesValue: 4500, OldestUnsyncedSaleMS: 90_000})
	beat(t, s, "S2", "pos-1", syncproto.Heartbeat{Epoch: 1, UnsyncedSales: -1, UnsyncedSalesValue: -5, OldestUnsyncedSaleMS: -9})
	if err := s.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	ds := devices(t, st)
	if u := ds["S1/pos-1"].Unsynced; u != (store.UnsyncedSales{Count: 3, Value: 4500, OldestAge: 90 * time.Second}) {
		t.Errorf("S1: %+v", u)
	}
	if u := ds["S2/pos-1"].Unsynced; u != (store.UnsyncedSales{}) {
		t.Errorf("S2: %+v", u)
	}
}
