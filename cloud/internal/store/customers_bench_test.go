package store

import (
	"context"
	goflag "flag"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/omnisync/omnisync/cloud/internal/identity"
	"github.com/omnisync/omnisync/shared/events"
	"github.com/omnisync/omnisync/shared/hlc"
)

// The history is loaded by loadIdentifyHistory (customers_load_test.go),
// or applied event by event with OMNI_BENCH_LOAD=apply.

// benchIdentifiers is how many identifiers the identify benchmark loads
// before it measures (OMNI_BENCH_IDENTIFIERS; default 100,000).
func benchIdentifiers() int {
	if n, err := strconv.Atoi(os.Getenv("OMNI_BENCH_IDENTIFIERS")); err == nil && n > 0 {
		return n
	}
	return 100_000
}

// identifyLoad makes identify events: shopper i's card and e-mail, seen
// together (two identifiers each), from a till of store i%50.
type identifyLoad struct {
	devs map[int]*device
	w    int64
	// seq numbers the events as the stream would (stream messages naming
	// customers are recorded for erasure).
	seq uint64
}

func (l *identifyLoad) event(i int) events.Envelope {
	st := i % 50
	d := l.devs[st]
	if d == nil {
		d = newDevice(fmt.Sprintf("S%d", st), "pos-1", 1)
		l.devs[st] = d
	}
	l.w++
	env := d.ev(l.w, events.KindIdentify, identify(map[string]string{
		"loyalty": fmt.Sprintf("LC-%09d", i),
		"email":   fmt.Sprintf("shopper%d@shop.test", i),
	}))
	// Tills mint UUIDv7 event ids (ids.NewEventID): their clock first,
	// so the indexes keyed by event ids (observations, cluster labels)
	// grow at their end, as they do at a hub.
	env.ID = timeOrderedID(env.ID, l.w)
	return env
}

// timeOrderedID returns id with its first 48 bits replaced by wall ms w,
// as a UUIDv7 minted at w.
func timeOrderedID(id string, w int64) string {
	return fmt.Sprintf("%08x-%04x", uint32(w>>16), uint16(w)) + id[13:]
}

func (l *identifyLoad) apply(b testing.TB, s *Store, from, to, batch int) {
	for lo := from; lo < to; lo += batch {
		l.applyItems(b, s, l.items(lo, min(lo+batch, to)))
	}
}

// items returns the items of shoppers from to to, as the stream numbers
// them.
func (l *identifyLoad) items(from, to int) []Item {
	envs := make([]events.Envelope, 0, to-from)
	for i := from; i < to; i++ {
		envs = append(envs, l.event(i))
	}
	items := itemsOf(envs...)
	for i := range items {
		l.seq++
		items[i].StreamSeq = l.seq
	}
	return items
}

func (l *identifyLoad) applyItems(b testing.TB, s *Store, items []Item) {
	res, err := s.ApplyBatch(context.Background(), items)
	if err != nil || res.Applied != len(items) {
		b.Fatalf("apply: %+v %v", res, err)
	}
}

// benchTimes is N of -benchtime Nx (0 when it is a duration).
func benchTimes() int {
	f := goflag.Lookup("test.benchtime")
	if f == nil {
		return 0
	}
	n, _ := strconv.Atoi(strings.TrimSuffix(f.Value.String(), "x"))
	if !strings.HasSuffix(f.Value.String(), "x") {
		return 0
	}
	return n
}

// BenchmarkIdentifyApply measures identify events applied per second on
// PostgreSQL, in batches of 5,000 (two identifiers each: a new shopper's
// card and e-mail), once the store holds benchIdentifiers() identifiers.
func BenchmarkIdentifyApply(b *testing.B) {
	if b.N == 1 && benchTimes() > 1 {
		// The run that sizes b.N: with -benchtime Nx, N follows, and the
		// history (minutes at millions of identifiers) is loaded once.
		return
	}
	s := withKeys(openPostgres(b))
	l := &identifyLoad{devs: map[int]*device{}, w: 1_000_000}
	seed := benchIdentifiers() / 2
	start := time.Now()
	if os.Getenv("OMNI_BENCH_LOAD") == "apply" {
		l.apply(b, s, 0, seed, 10_000)
	} else {
		loadIdentifyHistory(b, s, l, 0, seed, 10_000, true)
		warmDigestFilter(b, s)
	}
	b.Logf("loaded %d identifiers in %s", 2*seed, time.Since(start).Round(time.Millisecond))
	const batch = 5000
	// Wall time on a shared machine measures the neighbours too: CPU time
	// per event, of the hub and of the server, says what the code costs.
	meter := newCPUMeter(b, s)
	steps, stepsDB := map[string]time.Duration{}, map[string]time.Duration{}
	lastDB := meter.server()
	s.ObserveApply(func(step string, d time.Duration) {
		steps[step] += d
		now := meter.server()
		stepsDB[step] += now - lastDB
		lastDB = now
	})
	b.ResetTimer()
	// The events are made outside the measure (JSON of the envelopes, the
	// test's own work): the hub's CPU is counted while it applies them.
	var wall, self, db time.Duration
	next := seed
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		items := l.items(next, next+batch)
		next += batch
		b.StartTimer()
		t0, self0, db0 := time.Now(), meter.self(), meter.server()
		l.applyItems(b, s, items)
		wall += time.Since(t0)
		self += meter.self() - self0
		db += meter.server() - db0
	}
	b.StopTimer()
	// The same number of batches again, pipelined as the hub's ingest
	// runs them: batch N+1 is prepared (read, digested, its values
	// sealed) on another goroutine while batch N is applied. events/s
	// above (prepare, then apply, one batch after the other) bounds the
	// hub's rate from below.
	all := make([][]Item, b.N)
	for i := range all {
		all[i] = l.items(next, next+batch)
		next += batch
	}
	pwall, pself, pdb := applyPipelined(b, s, meter, all)
	n := float64(b.N * batch)
	b.ReportMetric(n/wall.Seconds(), "events/s")
	b.ReportMetric(float64(self.Microseconds())/n, "hub-cpu-us/event")
	b.ReportMetric(float64(db.Microseconds())/n, "pg-cpu-us/event")
	b.ReportMetric(n/pwall.Seconds(), "pipelined-events/s")
	b.ReportMetric(float64(pself.Microseconds())/n, "pipelined-hub-cpu-us/event")
	b.ReportMetric(float64(pdb.Microseconds())/n, "pipelined-pg-cpu-us/event")
	b.ReportMetric(float64(2*next), "identifiers")
	for step, d := range steps {
		b.ReportMetric(d.Seconds()*1000/float64(b.N), step+"-ms/batch")
	}
	for step, d := range stepsDB {
		if d > 0 {
			b.ReportMetric(d.Seconds()*1000/float64(b.N), step+"-pg-cpu-ms/batch")
		}
	}
}

// BenchmarkMergeUnmerge1000 measures merging two customers into one
// component of 1,000 identifiers (an operator's manual link, which the
// per-type limits do not hold), and undoing it, on PostgreSQL.
func BenchmarkMergeUnmerge1000(b *testing.B) {
	s := withKeys(openPostgres(b))
	ctx := context.Background()
	mk := func(id string, w int64, ids ...identity.Identifier) *custRead {
		var cids []custID
		for _, x := range ids {
			cids = append(cids, custID{id: x, digest: s.custKeys.Digest(x)})
		}
		env := &events.Envelope{ID: id, HLC: hlc.Timestamp{Wall: w}, Kind: events.KindIdentify, Origin: events.Origin{Store: "HQ", Device: "ops"}}
		r := s.newCustRead(env, cids, identity.RuleManual)
		r.obs.Evidence.Operator = "bench"
		return r
	}
	app := func(n int, side string) identity.Identifier {
		return identity.Identifier{Type: identity.App, Value: fmt.Sprintf("%s-%04d", side, n)}
	}
	var merge, unmerge time.Duration
	for i := 0; i < b.N; i++ {
		side := func(k string) []*custRead {
			var out []*custRead
			for j := 1; j < 500; j++ {
				out = append(out, mk(fmt.Sprintf("00000000-0000-7000-8000-%s%04d%05d", k, j, i), int64(1000+j), app(0, k+strconv.Itoa(i)), app(j, k+strconv.Itoa(i))))
			}
			return out
		}
		reads := append(side("1"), side("2")...)
		tx, err := s.w.BeginTx(ctx, nil)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := s.applyObservations(ctx, tx, nil, reads, 1); err != nil {
			b.Fatal(err)
		}
		if err := tx.Commit(); err != nil {
			b.Fatal(err)
		}
		link := mk(fmt.Sprintf("00000000-0000-7000-8000-9%011d", i), 5000, app(7, "1"+strconv.Itoa(i)), app(9, "2"+strconv.Itoa(i)))
		t0 := time.Now()
		tx, err = s.w.BeginTx(ctx, nil)
		if err != nil {
			b.Fatal(err)
		}
		if err := s.lockCustomers(ctx, tx); err != nil {
			b.Fatal(err)
		}
		ch, err := s.applyObservations(ctx, tx, nil, []*custRead{link}, 1)
		if err != nil {
			b.Fatal(err)
		}
		if err := tx.Commit(); err != nil {
			b.Fatal(err)
		}
		merge += time.Since(t0)
		if len(ch.Customers) != 1 {
			b.Fatalf("merge: %v", ch.Customers)
		}
		c, err := s.customerOfDigest(ctx, s.r, link.subject)
		if err != nil {
			b.Fatal(err)
		}
		if n := countMembers(b, s, c); n != 1000 {
			b.Fatalf("component of %d", n)
		}
		t0 = time.Now()
		if _, err := s.Unmerge(ctx, c, link.stamp.ID, "bench", ""); err != nil {
			b.Fatal(err)
		}
		unmerge += time.Since(t0)
		if n := countMembers(b, s, c); n != 500 {
			b.Fatalf("after unmerge %d", n)
		}
	}
	b.ReportMetric(float64(merge.Milliseconds())/float64(b.N), "merge-ms")
	b.ReportMetric(float64(unmerge.Milliseconds())/float64(b.N), "unmerge-ms")
}

func countMembers(b *testing.B, s *Store, c string) int {
	var n int
	if err := s.r.QueryRow(`SELECT count(*) FROM cust_identifiers WHERE customer = $1`, c).Scan(&n); err != nil {
		b.Fatal(err)
	}
	return n
}
