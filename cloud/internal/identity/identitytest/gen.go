package identitytest

import (
	"fmt"
	"math/rand"

	"github.com/omnisync/omnisync/cloud/internal/identity"
	"github.com/omnisync/omnisync/shared/events"
	"github.com/omnisync/omnisync/shared/hlc"
)

// Options shapes a generated log. Zero fields take the defaults in brackets.
type Options struct {
	People       int // shoppers the identifiers belong to [20]
	Observations int // observations in the log [120]
	Unlinks      int // unlinks, some naming no observation, some restoring [none]
	// Prefix is put in front of every identifier value and event id, so
	// several logs can share one graph without meeting.
	Prefix string
	// BaseWall is the HLC wall of the first event [1_700_000_000_000].
	BaseWall int64
}

func (o *Options) defaults() {
	if o.People <= 0 {
		o.People = 20
	}
	if o.Observations <= 0 {
		o.Observations = 120
	}
	if o.BaseWall == 0 {
		o.BaseWall = 1_700_000_000_000
	}
}

// Policy is the policy the generated logs are meant for: the defaults,
// with the shared kiosk's app install id blocked.
func Policy() identity.Policy {
	p, err := identity.Policy{Blocklist: map[identity.Type][]string{identity.App: {"kiosk-1"}}}.Normalize()
	if err != nil {
		panic(err)
	}
	return p
}

// Log is a generated set of observations and unlinks.
type Log struct {
	Observations []identity.Observation
	Unlinks      []identity.Unlink
}

// People returns each shopper's identifiers: what a generated log draws
// observations from.
func People(rng *rand.Rand, o Options) [][]identity.Identifier {
	o.defaults()
	people := make([][]identity.Identifier, o.People)
	for p := range people {
		var ids []identity.Identifier
		add := func(t identity.Type, v string) { ids = append(ids, identity.Identifier{Type: t, Value: o.Prefix + v}) }
		if rng.Intn(2) == 0 {
			add(identity.Account, fmt.Sprintf("W-%d", p))
		}
		if rng.Intn(10) < 7 {
			add(identity.Loyalty, fmt.Sprintf("LC-%d", p))
		}
		if rng.Intn(5) == 0 { // a replacement card
			add(identity.Loyalty, fmt.Sprintf("LC-%dB", p))
		}
		for k := range rng.Intn(3) {
			add(identity.Phone, fmt.Sprintf("+4420794%02d%02d", p%100, k))
		}
		for k := range 1 + rng.Intn(3) {
			add(identity.Email, fmt.Sprintf("p%d.%d@mail.example", p, k))
		}
		for k := range rng.Intn(3) {
			add(identity.App, fmt.Sprintf("inst-%d-%d", p, k))
		}
		people[p] = ids
	}
	return people
}

// Generate returns a random log: mostly shoppers identifying with a few
// of their own identifiers, some with a family e-mail address shared by
// several, some through the blocked kiosk or a "NULL" card, some linking
// two shoppers by mistake, a few manual links by HQ, and unlinks.
// Stamps collide on purpose (same wall, ids break the tie).
func Generate(rng *rand.Rand, o Options) Log {
	o.defaults()
	people := People(rng, o)
	shared := []identity.Identifier{
		{Type: identity.Email, Value: o.Prefix + "family@home.example"},
		{Type: identity.Email, Value: o.Prefix + "shop@home.example"},
	}
	pick := func(ids []identity.Identifier) identity.Identifier { return ids[rng.Intn(len(ids))] }
	var log Log
	for i := range o.Observations {
		p := rng.Intn(len(people))
		var ids []identity.Identifier
		for range 1 + rng.Intn(3) {
			ids = append(ids, pick(people[p]))
		}
		ev := identity.Evidence{Store: fmt.Sprintf("S%d", rng.Intn(3)), Device: "pos-1", Rule: identity.RuleIdentify}
		switch r := rng.Intn(100); {
		case r < 10:
			ids = append(ids, pick(shared))
		case r < 15:
			ids = append(ids, identity.Identifier{Type: identity.App, Value: "kiosk-1"})
		case r < 20:
			ids = append(ids, identity.Identifier{Type: identity.Loyalty, Value: "NULL"})
		case r < 28:
			ids = append(ids, pick(people[rng.Intn(len(people))]))
		case r < 31:
			ids = append(ids, pick(people[rng.Intn(len(people))]))
			ev = identity.Evidence{Rule: identity.RuleManual, Operator: "hq-1"}
		}
		log.Observations = append(log.Observations, identity.Observation{
			Stamp:       Stamp(rng, o, i),
			Identifiers: ids,
			Evidence:    ev,
		})
	}
	for i := range o.Unlinks {
		target := fmt.Sprintf("%snever-seen-%d", o.Prefix, i)
		if rng.Intn(5) > 0 {
			target = log.Observations[rng.Intn(len(log.Observations))].ID()
		}
		log.Unlinks = append(log.Unlinks, identity.Unlink{
			Observation: target,
			Stamp:       Stamp(rng, o, o.Observations+i),
			Operator:    "hq-1",
			Restore:     rng.Intn(10) < 3,
		})
	}
	return log
}

// Stamp returns a random stamp for the i-th event of a log: walls collide
// often, so the event id decides.
func Stamp(rng *rand.Rand, o Options, i int) events.Stamp {
	o.defaults()
	span := max(o.Observations+o.Unlinks, 1) * 2
	return events.Stamp{
		HLC: hlc.Timestamp{Wall: o.BaseWall + int64(rng.Intn(span)), Logical: uint32(rng.Intn(2))},
		ID:  fmt.Sprintf("%s%08x-0000-7000-8000-%012x", o.Prefix, rng.Uint32(), i),
	}
}

// Item is one delivery: an observation or an unlink.
type Item struct {
	Observation *identity.Observation
	Unlink      *identity.Unlink
}

// Deliveries returns log's items shuffled, each repeated with probability
// dup (a redelivery, or the same event through two replicas).
func Deliveries(rng *rand.Rand, log Log, dup float64) []Item {
	var out []Item
	for i := range log.Observations {
		for n := 0; n == 0 || rng.Float64() < dup && n < 3; n++ {
			out = append(out, Item{Observation: &log.Observations[i]})
		}
	}
	for i := range log.Unlinks {
		for n := 0; n == 0 || rng.Float64() < dup && n < 3; n++ {
			out = append(out, Item{Unlink: &log.Unlinks[i]})
		}
	}
	rng.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
	return out
}

// Batches splits items into batches of 1 to maxBatch.
func Batches(rng *rand.Rand, items []Item, maxBatch int) []identity.Batch {
	var out []identity.Batch
	for len(items) > 0 {
		n := min(1+rng.Intn(maxBatch), len(items))
		var b identity.Batch
		for _, it := range items[:n] {
			if it.Observation != nil {
				b.Observations = append(b.Observations, *it.Observation)
			} else {
				b.Unlinks = append(b.Unlinks, *it.Unlink)
			}
		}
		out = append(out, b)
		items = items[n:]
	}
	return out
}
