package loadgen_test

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/omnisync/omnisync/cloud/internal/catalog"
	"github.com/omnisync/omnisync/cloud/internal/loadgen"
	"github.com/omnisync/omnisync/shared/events"
	"github.com/omnisync/omnisync/shared/testkit"
)

// rig is a hub and its agents.
type rig struct {
	hub    loadgen.Hub
	agents []*agent
}

func startRig(t testing.TB, devices ...[2]string) *rig {
	t.Helper()
	nats := testkit.StartNATS(t)
	r := &rig{hub: startHub(t, nats.URL())}
	for _, d := range devices {
		r.agents = append(r.agents, startAgent(t, d[0], d[1], nats.URL()))
	}
	return r
}

// targets lists the agents by URL only: store and device are discovered.
func (r *rig) targets() []loadgen.Target {
	var out []loadgen.Target
	for _, a := range r.agents {
		out = append(out, loadgen.Target{URL: a.URL})
	}
	return out
}

func sampleOptions(r *rig, seed uint64) loadgen.Options {
	o := loadgen.Options{Targets: r.targets(), Seed: seed}
	o.UseCatalog(catalog.Sample(int64(seed), 40))
	return o
}

// verify waits for the hub to drain and fails the test unless its books
// equal the oracle's exactly, with nothing lost or applied twice.
func verify(t *testing.T, hub loadgen.Hub, rep *loadgen.Report) loadgen.Verdict {
	t.Helper()
	if !rep.OK() {
		t.Fatalf("run not clean: %d unresolved, rejected %+v", len(rep.Unresolved), rep.Rejected)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	start := time.Now()
	v, err := loadgen.Verify(ctx, hub, rep.Accepted)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("verified in %v: %d positions, %d events accepted, %d applied, %d lost, %d double-applied, %d differences",
		time.Since(start).Round(time.Millisecond), v.Positions, v.Accepted, v.Applied, v.Lost, v.DoubleApplied, len(v.Differences))
	if !v.OK() {
		for i, d := range v.Differences {
			if i == 10 {
				t.Errorf("... and %d more", len(v.Differences)-10)
				break
			}
			t.Errorf("difference: %s", d)
		}
		t.Fatalf("hub does not match the oracle: devices %+v", v.Devices)
	}
	if v.Positions == 0 || v.Accepted != int64(len(rep.Accepted)) {
		t.Fatalf("verdict %+v for %d accepted events", v, len(rep.Accepted))
	}
	return v
}

func logReport(t testing.TB, rep *loadgen.Report) {
	t.Helper()
	for _, s := range append(rep.Targets, rep.Total) {
		t.Logf("%-12s sent %5d accepted %5d retried %3d replayed %2d refused %d errors %d unresolved %d  p50 %v p99 %v max %v",
			s.Target, s.Requests, s.Accepted, s.Retried, s.Replayed, s.Refused, s.Errors, s.Unresolved, s.P50, s.P99, s.Max)
	}
	t.Logf("%d events accepted in %v: %.0f events/s", rep.Total.Accepted, rep.Elapsed.Round(time.Millisecond), rep.EventsPerSecond())
}

// Ensure that a paced run of every kind of traffic against two real agents
// leaves the hub with exactly the oracle's books, every accepted event
// applied once, and a record that reads back to the accepted envelopes.
func TestRun_BooksMatchOracle(t *testing.T) {
	t.Parallel() // mostly waits on processes and timers
	r := startRig(t, [2]string{"LG-A", "pos-1"}, [2]string{"LG-B", "pos-1"})
	o := sampleOptions(r, 1)
	o.Rate, o.Duration = 400, 3*time.Second
	var record bytes.Buffer
	o.Record = &record
	rep, err := loadgen.Run(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	logReport(t, rep)
	// How many events 3 s hold depends on the machine; enough for every
	// common kind is all the test needs.
	if rep.Total.Accepted < 200 || rep.Total.Requests != rep.Total.Accepted || rep.Total.Unstamped != 0 {
		t.Fatalf("total %+v", rep.Total)
	}
	kinds := map[events.Kind]int{}
	for _, e := range rep.Accepted {
		kinds[e.Kind]++
		if e.HLC.IsZero() || e.Origin.Epoch == 0 || (e.Origin.Store != "LG-A" && e.Origin.Store != "LG-B") || e.Origin.Device != "pos-1" {
			t.Fatalf("envelope %+v", e)
		}
		if err := e.Validate(); err != nil {
			t.Fatalf("envelope %+v: %v", e, err)
		}
	}
	t.Logf("kinds: %v", kinds)
	for _, k := range []events.Kind{events.KindSale, events.KindReceipt, events.KindScan} {
		if kinds[k] == 0 {
			t.Errorf("no %s events", k)
		}
	}
	back, err := loadgen.ReadRecord(&record)
	if err != nil || len(back) != len(rep.Accepted) {
		t.Fatalf("record: %d envelopes, %v; want %d", len(back), err, len(rep.Accepted))
	}
	for i := range back {
		if back[i].ID != rep.Accepted[i].ID || back[i].HLC != rep.Accepted[i].HLC || back[i].Origin != rep.Accepted[i].Origin {
			t.Fatalf("record line %d: %+v, want %+v", i+1, back[i], rep.Accepted[i])
		}
	}
	v := verify(t, r.hub, rep)
	if v.Lost != 0 || v.DoubleApplied != 0 {
		t.Fatalf("lost %d double %d", v.Lost, v.DoubleApplied)
	}
}

// Ensure that SIGKILLing an agent in the middle of a full-speed run, and
// starting it again on the same data, loses nothing and applies nothing
// twice: requests cut off are retried with their idempotency keys until
// answered, and the hub's books equal the oracle's exactly.
func TestRun_AgentKilledMidRun(t *testing.T) {
	t.Parallel() // mostly waits on processes and timers
	r := startRig(t, [2]string{"LG-K", "pos-1"}, [2]string{"LG-K", "pos-2"})
	o := sampleOptions(r, 2)
	o.Workers, o.Duration = 4, 4*time.Second
	g, err := loadgen.New(o)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	type result struct {
		rep *loadgen.Report
		err error
	}
	done := make(chan result, 1)
	go func() {
		rep, err := g.Run(ctx)
		done <- result{rep, err}
	}()
	victim := r.agents[0]
	// Kill it early in the run whatever the machine's pace, so that there
	// is traffic before and after.
	testkit.Eventually(t, 10*time.Second, func() bool {
		per, _ := g.Stats()
		return len(per) > 0 && per[0].Accepted > 100
	}, "traffic to %s", victim.name)
	victim.Kill()
	killedAt, _ := g.Stats()
	time.Sleep(300 * time.Millisecond)
	victim.Start()
	res := <-done
	if res.err != nil {
		t.Fatal(res.err)
	}
	rep := res.rep
	logReport(t, rep)
	if s := rep.Targets[0]; s.Retried == 0 || s.Accepted <= killedAt[0].Accepted {
		t.Fatalf("the killed agent saw no retries or no traffic after its restart: %+v", s)
	}
	verify(t, r.hub, rep)
}

// BenchmarkRun reports the accepted events per second two real agents and a
// hub (all on this machine) sustain with the default mix, unpaced, by the
// number of tills per agent: each till waits for its answer, so more tills
// mean more events per outbox fsync.
func BenchmarkRun(b *testing.B) {
	r := startRig(b, [2]string{"LG-BA", "pos-1"}, [2]string{"LG-BB", "pos-1"})
	for _, tills := range []int{1, 8, 64} {
		b.Run(fmt.Sprintf("tills=%d", tills), func(b *testing.B) {
			var accepted int64
			var elapsed time.Duration
			var p99 time.Duration
			for i := 0; b.Loop(); i++ {
				o := sampleOptions(r, uint64(i+1))
				o.Workers, o.Events = tills, int64(500*tills+2000)
				rep, err := loadgen.Run(context.Background(), o)
				if err != nil {
					b.Fatal(err)
				}
				if !rep.OK() {
					b.Fatalf("run not clean: %+v", rep.Total)
				}
				accepted += rep.Total.Accepted
				elapsed += rep.Elapsed
				p99 = max(p99, rep.Total.P99)
			}
			b.ReportMetric(float64(accepted)/elapsed.Seconds(), "events/s")
			b.ReportMetric(float64(p99.Microseconds())/1000, "p99-ms")
		})
	}
}
