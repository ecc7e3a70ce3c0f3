package rfid

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
)

// propZones are the zones of the property and fuzz tests: two booths on one
// reader (booth-1 on two antennas), a counter on a second reader, and a
// tiny MaxTagsPerZone so eviction happens.
func propConfig() Config {
	return Config{MaxTagsPerZone: 5, Zones: []Zone{
		{Name: "booth-1", Reader: "fr-1", Antennas: []int{1, 2}, EnterAfter: 500 * ms, EnterReads: 2, LeaveAfter: 2 * time.Second},
		{Name: "booth-2", Reader: "fr-1", Antennas: []int{3}, EnterAfter: time.Second, EnterReads: 3, LeaveAfter: 3 * time.Second, MinRSSI: -75},
		{Name: "counter", Reader: "fr-2", Antennas: []int{1}, EnterAfter: 300 * ms, EnterReads: 1, LeaveAfter: 300 * ms},
	}}
}

// propPalette mixes items (one in several spellings), a non-item and
// malformed EPCs.
func propPalette() []string {
	p := []string{tdsSGTIN198, tdsSGTIN198[:50], strings.ToLower(tagHex(1, 1)), tdsSSCC96, "3074zz", "307C257BF7194E4000001A85", ""}
	for i := 1; i <= 6; i++ {
		p = append(p, tagHex(1+i%3, i))
	}
	return p
}

var propPorts = []struct {
	reader  string
	antenna int
}{{"fr-1", 1}, {"fr-1", 2}, {"fr-1", 3}, {"fr-1", 4}, {"fr-2", 1}, {"fr-3", 1}, {"fr-1", -1}, {"fr-1", 1 << 20}}

// drive interprets bytes as a stream of reads and ticks (4 bytes per
// operation), feeds them to a fresh Smoother and checks the invariants
// after every operation and at the end. It returns the checker, to tell
// what the stream exercised.
func drive(t testing.TB, next func() (byte, bool)) *checker {
	cfg := propConfig()
	s := mustNew(t, cfg)
	c := newChecker(t)
	palette := propPalette()
	now := t0
	last := TagRead{Reader: "fr-1", EPC: palette[0], Antenna: 1, At: now}
	for {
		var b [4]byte
		for i := range b {
			v, ok := next()
			if !ok {
				c.final(s, cfg.Zones)
				checkInternal(t, s)
				return c
			}
			b[i] = v
		}
		switch d := b[3]; {
		case d < 200:
			now = now.Add(time.Duration(d) * ms)
		case d < 240:
			now = now.Add(-time.Duration(d-200) * 10 * ms) // clocks of two readers disagree
		case d < 255:
			now = now.Add(time.Duration(d-239) * 300 * ms)
		default:
			now = now.Add(10 * time.Second)
		}
		rssi := -10 - float64(b[2]%90)
		switch b[2] {
		case 0:
			rssi = 0
		case 255:
			rssi = math.NaN()
		case 254:
			rssi = math.Inf(1)
		}
		r := last
		switch op := b[0] % 16; {
		case op == 0:
			c.apply(s.Tick(now.Add(time.Duration(b[1]) * 20 * ms)))
			continue
		case op < 9:
			// Read the previous tag again, as readers do many times a
			// second; the RSSI drifts a little.
			if op < 5 {
				rssi = last.RSSI + float64(int(b[2]%7)-3)
			}
		default:
			port := propPorts[int(b[1]>>4)%len(propPorts)]
			r.Reader, r.Antenna, r.EPC = port.reader, port.antenna, palette[int(b[1]&15)%len(palette)]
		}
		r.RSSI, r.At = rssi, now
		last = r
		c.apply(s.Observe(r))
		for _, z := range s.zones {
			if z.n > s.maxTags {
				t.Fatalf("zone %s tracks %d > %d", z.cfg.Name, z.n, s.maxTags)
			}
		}
	}
}

// checkInternal cross-checks the smoother's own bookkeeping.
func checkInternal(t testing.TB, s *Smoother) {
	t.Helper()
	sightings := 0
	for _, it := range s.items {
		if len(it.sightings) == 0 {
			t.Fatalf("item %s kept without sightings", it.key)
		}
		if it.present != nil && it.in(it.present.zone) != it.present {
			t.Fatalf("item %s present in a zone it is not tracked in", it.key)
		}
		sightings += len(it.sightings)
	}
	tracked := 0
	for _, z := range s.zones {
		n, present := 0, 0
		for tr := z.head; tr != nil; tr = tr.next {
			n++
			if tr.item.present == tr {
				present++
			}
			if s.items[tr.item.key] != tr.item {
				t.Fatalf("zone %s tracks an item not in the index", z.cfg.Name)
			}
		}
		if n != z.n || present != z.present || z.enters-z.leaves != uint64(z.present) {
			t.Fatalf("zone %s: list %d/%d, present %d/%d, enters %d leaves %d", z.cfg.Name, n, z.n, present, z.present, z.enters, z.leaves)
		}
		tracked += n
	}
	if tracked != sightings {
		t.Fatalf("zones track %d, items have %d sightings", tracked, sightings)
	}
}

// Ensure that for random read streams every item's enters and leaves
// balance per zone, alternate, never overlap across zones, and never give a
// negative dwell.
func TestSmoother_Property(t *testing.T) {
	seeds := 400
	if testing.Short() {
		seeds = 50
	}
	enters, causes := 0, map[Cause]int{}
	for seed := 0; seed < seeds; seed++ {
		rnd := rand.New(rand.NewPCG(uint64(seed), 42))
		n := 4 * (200 + rnd.IntN(3000))
		c := drive(t, func() (byte, bool) {
			if n == 0 {
				return 0, false
			}
			n--
			return byte(rnd.UintN(256)), true
		})
		for _, v := range c.enters {
			enters += v
		}
		for k, v := range c.causes {
			causes[k] += v
		}
	}
	// The streams must exercise every path, or the property proves little.
	t.Logf("%d enters, leaves by cause %v", enters, causes)
	if enters == 0 || causes[CauseGone] == 0 || causes[CauseMoved] == 0 || causes[CauseEvicted] == 0 {
		t.Errorf("streams too tame: %d enters, leaves %v", enters, causes)
	}
}
