package e2e

import (
	"fmt"
	"math/rand/v2"
	"os"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/omnisync/omnisync/shared/testkit"
)

// chaosDuration is how long faults are injected: OMNI_CHAOS_DURATION
// (make chaos sets minutes), 45s by default inside make test.
func chaosDuration(t *testing.T) time.Duration {
	if v := os.Getenv("OMNI_CHAOS_DURATION"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			t.Fatalf("OMNI_CHAOS_DURATION: %v", err)
		}
		return d
	}
	return 45 * time.Second
}

// faults injects failures into a running platform and counts them.
type faults struct {
	t   *testing.T
	rng *rand.Rand

	mu     sync.Mutex
	counts map[string]int
	log    []string
	start  time.Time
}

func newFaults(t *testing.T, seed uint64) *faults {
	return &faults{t: t, rng: rand.New(rand.NewPCG(seed, 7)), counts: map[string]int{}, start: time.Now()}
}

func (f *faults) record(kind, what string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.counts[kind]++
	f.log = append(f.log, fmt.Sprintf("%6.1fs %-14s %s", time.Since(f.start).Seconds(), kind, what))
}

func (f *faults) total() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, c := range f.counts {
		n += c
	}
	return n
}

func (f *faults) summary() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var kinds []string
	for k := range f.counts {
		kinds = append(kinds, k)
	}
	sort.Strings(kinds)
	var b strings.Builder
	for _, k := range kinds {
		fmt.Fprintf(&b, "%s=%d ", k, f.counts[k])
	}
	return strings.TrimSpace(b.String())
}

func (f *faults) between(lo, hi time.Duration) time.Duration {
	return lo + time.Duration(f.rng.Int64N(int64(hi-lo)+1))
}

// chaosRig is the platform under test: real nats-server, omni-hub and
// omni-edge processes, each agent reaching NATS through its own proxy and
// the hubs reaching PostgreSQL through one.
type chaosRig struct {
	nats    *natsProcess
	hubs    []*hubProcess
	agents  []*agent
	links   []*testkit.Proxy // agent i's link to NATS
	db      *testkit.Proxy   // the hubs' link to PostgreSQL (nil on SQLite)
	skewed  int              // index of the agent whose clock is an hour fast
	dbNames []string
}

// inject runs one random fault to its end (a partition heals, a killed
// process is started again) and records it.
func (r *chaosRig) inject(f *faults) {
	switch n := f.rng.IntN(100); {
	case n < 22:
		i := f.rng.IntN(len(r.agents))
		a := r.agents[i]
		a.Kill()
		f.record("kill-agent", a.name)
		time.Sleep(f.between(0, 1500*time.Millisecond))
		a.Start()
	case n < 34:
		h := r.hubs[f.rng.IntN(len(r.hubs))]
		h.Kill()
		f.record("kill-hub", h.name)
		time.Sleep(f.between(0, 3*time.Second))
		h.Start()
	case n < 44:
		r.nats.Kill()
		f.record("kill-nats", "nats-server")
		time.Sleep(f.between(0, 2*time.Second))
		r.nats.Start()
	case n < 62:
		i := f.rng.IntN(len(r.links))
		r.links[i].Cut()
		f.record("partition", r.agents[i].name+" cut from NATS")
		time.Sleep(f.between(time.Second, 6*time.Second))
		r.links[i].Heal()
	case n < 76:
		i := f.rng.IntN(len(r.links))
		r.links[i].Stall()
		f.record("stall", r.agents[i].name+" link stalled")
		time.Sleep(f.between(time.Second, 6*time.Second))
		r.links[i].Heal()
	case n < 88:
		i := f.rng.IntN(len(r.links))
		d := f.between(20*time.Millisecond, 200*time.Millisecond)
		r.links[i].Slow(d)
		f.record("slow", fmt.Sprintf("%s link +%v per chunk", r.agents[i].name, d))
		time.Sleep(f.between(2*time.Second, 8*time.Second))
		r.links[i].Heal()
	default:
		if r.db == nil {
			h := r.hubs[f.rng.IntN(len(r.hubs))]
			h.Kill()
			f.record("kill-hub", h.name+" (SQLite)")
			time.Sleep(f.between(0, 2*time.Second))
			h.Start()
			return
		}
		r.db.Cut()
		f.record("db-restart", "PostgreSQL connections reset, refused while down")
		time.Sleep(f.between(time.Second, 5*time.Second))
		r.db.Heal()
	}
}

// heal ends every partition; every process is running again after inject.
func (r *chaosRig) heal() {
	for _, l := range r.links {
		l.Heal()
	}
	if r.db != nil {
		r.db.Heal()
	}
}
