package identity_test

import (
	"fmt"
	"math/rand"
	"testing"
	"time"

	"github.com/omnisync/omnisync/cloud/internal/identity"
	"github.com/omnisync/omnisync/shared/events"
	"github.com/omnisync/omnisync/shared/hlc"
)

// identifyStream returns n observations as a chain's stores and web shop
// send them: shoppers (a pool of n/3) identify again and again with one
// to three of their identifiers, a few link a new identifier, a few share
// a family address, and one in twenty arrives up to an hour late (an
// offline store draining), which replays its cluster.
func identifyStream(n int) []identity.Observation {
	rng := rand.New(rand.NewSource(1))
	shoppers := max(n/3, 1)
	idOf := func(p, k int) identity.Identifier {
		switch k % 5 {
		case 0:
			return identity.Identifier{Type: identity.Loyalty, Value: fmt.Sprintf("LC-%d", p)}
		case 1:
			return identity.Identifier{Type: identity.Email, Value: fmt.Sprintf("p%d@mail.example", p)}
		case 2:
			return identity.Identifier{Type: identity.Phone, Value: fmt.Sprintf("+44207%07d", p)}
		case 3:
			return identity.Identifier{Type: identity.Account, Value: fmt.Sprintf("W-%d", p)}
		}
		return identity.Identifier{Type: identity.App, Value: fmt.Sprintf("inst-%d-%d", p, k)}
	}
	out := make([]identity.Observation, n)
	wall := int64(1_700_000_000_000)
	for i := range out {
		p := rng.Intn(shoppers)
		var ids []identity.Identifier
		for range 1 + rng.Intn(3) {
			ids = append(ids, idOf(p, rng.Intn(5)))
		}
		if rng.Intn(50) == 0 {
			ids = append(ids, identity.Identifier{Type: identity.Email, Value: fmt.Sprintf("family%d@home.example", p/4)})
		}
		w := wall + int64(i)
		if rng.Intn(20) == 0 {
			w -= int64(rng.Intn(3_600_000))
		}
		out[i] = identity.Observation{
			Stamp:       events.Stamp{HLC: hlc.Timestamp{Wall: w}, ID: fmt.Sprintf("%016x", i)},
			Identifiers: ids,
			Evidence:    identity.Evidence{Store: "S1", Device: "pos-1", Rule: identity.RuleIdentify},
		}
	}
	return out
}

// BenchmarkApply_Identify measures identify observations applied per
// second in memory, in batches of 1,000, into a graph that grows to
// millions of identifiers with b.N.
func BenchmarkApply_Identify(b *testing.B) {
	stream := identifyStream(b.N)
	g, err := identity.NewGraph(identity.DefaultPolicy())
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	cpu := cpuTime()
	for i := 0; i < len(stream); i += 1000 {
		if _, err := g.Apply(identity.Batch{Observations: stream[i:min(i+1000, len(stream))]}); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "observations/s")
	if cpu := cpuTime() - cpu; cpu > 0 {
		// The garbage collector's work on other cores counts too.
		b.ReportMetric(float64(b.N)/cpu.Seconds(), "observations/cpu_s")
	}
	b.ReportMetric(float64(g.Identifiers()), "identifiers")
}

// BenchmarkMergeUnmerge_1000 measures joining two customers of 500
// identifiers each into one of 1,000 and undoing it: a merge by a new
// observation (the newest of the cluster: linked at once), a late merge
// (an observation older than the rest: the cluster is replayed), and an
// unmerge (an unlink: the cluster is replayed). The limits are raised so
// automatic links can build customers that large.
func BenchmarkMergeUnmerge_1000(b *testing.B) {
	p, err := identity.Policy{Max: map[identity.Type]int{identity.Email: 1000}}.Normalize()
	if err != nil {
		b.Fatal(err)
	}
	g, err := identity.NewGraph(p)
	if err != nil {
		b.Fatal(err)
	}
	mail := func(side, i int) identity.Identifier {
		return identity.Identifier{Type: identity.Email, Value: fmt.Sprintf("s%d-%d@mail.example", side, i)}
	}
	stamp := func(w int64, id string) events.Stamp {
		return events.Stamp{HLC: hlc.Timestamp{Wall: w}, ID: id}
	}
	var chain []identity.Observation
	for side := range 2 {
		for i := range 499 {
			chain = append(chain, identity.Observation{
				Stamp:       stamp(1_000_000+int64(side*1000+i), fmt.Sprintf("c%d-%d", side, i)),
				Identifiers: []identity.Identifier{mail(side, i), mail(side, i+1)},
				Evidence:    identity.Evidence{Rule: identity.RuleIdentify},
			})
		}
	}
	if _, err := g.Apply(identity.Batch{Observations: chain}); err != nil {
		b.Fatal(err)
	}
	if len(g.Customers()) != 2 {
		b.Fatalf("%d customers", len(g.Customers()))
	}
	var merge, late, unmerge time.Duration
	wall := int64(2_000_000)
	apply := func(batch identity.Batch, want int) time.Duration {
		start := time.Now()
		_, err := g.Apply(batch)
		d := time.Since(start)
		if err != nil {
			b.Fatal(err)
		}
		if n := len(g.Customers()); n != want {
			b.Fatalf("%d customers, want %d", n, want)
		}
		return d
	}
	b.ResetTimer()
	for i := range b.N {
		wall += 10
		ids := []identity.Identifier{mail(0, 250), mail(1, 250)}
		m := identity.Observation{Stamp: stamp(wall, fmt.Sprintf("m%d", i)), Identifiers: ids, Evidence: identity.Evidence{Rule: identity.RuleIdentify}}
		merge += apply(identity.Batch{Observations: []identity.Observation{m}}, 1)
		unmerge += apply(identity.Batch{Unlinks: []identity.Unlink{{Observation: m.ID(), Stamp: stamp(wall+1, fmt.Sprintf("u%d", i)), Operator: "hq-1"}}}, 2)
		old := identity.Observation{Stamp: stamp(1_000_500, fmt.Sprintf("old%d", i)), Identifiers: ids, Evidence: identity.Evidence{Rule: identity.RuleIdentify}}
		late += apply(identity.Batch{Observations: []identity.Observation{old}}, 1)
		apply(identity.Batch{Unlinks: []identity.Unlink{{Observation: old.ID(), Stamp: stamp(wall+2, fmt.Sprintf("v%d", i)), Operator: "hq-1"}}}, 2)
	}
	b.StopTimer()
	n := float64(b.N)
	b.ReportMetric(float64(merge.Microseconds())/n/1000, "merge_ms")
	b.ReportMetric(float64(late.Microseconds())/n/1000, "late_merge_ms")
	b.ReportMetric(float64(unmerge.Microseconds())/n/1000, "unmerge_ms")
}

// BenchmarkApply_NewShoppers measures a hub's usual identify batch: 5,000
// shoppers new to it, each seen with a card and an e-mail (as digests),
// applied to the graph the store loads for the batch, which holds none
// of them.
func BenchmarkApply_NewShoppers(b *testing.B) {
	const batch = 5000
	mk := func(k int) []identity.Observation {
		out := make([]identity.Observation, batch)
		for i := range out {
			n := k*batch + i
			out[i] = identity.Observation{
				Stamp: events.Stamp{HLC: hlc.Timestamp{Wall: int64(1_700_000_000_000 + n)}, ID: fmt.Sprintf("0190b2c4-%04x-7a8b-9c0d-%012x", n&0xffff, n)},
				Identifiers: []identity.Identifier{
					{Type: identity.Loyalty, Value: fmt.Sprintf("v1:%064x", n*7919+1)},
					{Type: identity.Email, Value: fmt.Sprintf("v1:%064x", n*104729+3)},
				},
				Evidence: identity.Evidence{Store: "S1", Device: "pos-1", Rule: identity.RuleIdentify},
			}
		}
		return out
	}
	p := identity.DefaultPolicy()
	p.OrderedSince = 1
	b.ReportAllocs()
	b.ResetTimer()
	cpu := cpuTime()
	for k := range b.N {
		b.StopTimer()
		obs := mk(k)
		g, err := identity.NewGraph(p)
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		if _, err := g.Apply(identity.Batch{Observations: obs}); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	if cpu := cpuTime() - cpu; cpu > 0 {
		b.ReportMetric(float64(cpu.Microseconds())/float64(b.N*batch), "cpu_us/observation")
	}
}
