package rfid

import (
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/omnisync/omnisync/shared/epc"
	"github.com/omnisync/omnisync/shared/gs1"
)

// t0 is the start of every test timeline.
var t0 = time.Date(2025, 3, 14, 10, 0, 0, 0, time.UTC)

func at(d time.Duration) time.Time { return t0.Add(d) }

const ms = time.Millisecond

// gtin returns the i-th test GTIN-14 under company prefix 0614141.
func gtin(i int) string {
	body := "0" + "0614141" + fmt.Sprintf("%05d", i%100000)
	c, err := gs1.CheckDigit(body)
	if err != nil {
		panic(err)
	}
	return body + string(c)
}

// tagHex returns the SGTIN-96 EPC of serial of the i-th test GTIN.
func tagHex(i int, serial int) string {
	s, err := epc.SGTINFromGTIN(gtin(i), 7, strconv.Itoa(serial))
	if err != nil {
		panic(err)
	}
	h, err := s.Encode(epc.SGTIN96, 1)
	if err != nil {
		panic(err)
	}
	return h
}

// Known EPCs from the GS1 EPC Tag Data Standard 1.13, Annex E (see
// shared/testkit/corpustest/testdata/epc).
const (
	tdsSGTIN96  = "3074257BF7194E4000001A85" // 80614141123458 serial 6789
	tdsSGTIN198 = "3674257BF6B7A659B2C2BF100000000000000000000000000000"
	tdsSSCC96   = "3174257BF4499602D2000000"
	tdsSGLN96   = "3274257BF46072000000162E"
	tdsGIAI96   = "3474257BF40000000000162E"
)

// booths returns n fitting-room booths on reader "fr-1", booth i on
// antenna i, with quick test thresholds.
func booths(n int) []Zone {
	zs := make([]Zone, n)
	for i := range zs {
		zs[i] = Zone{Name: fmt.Sprintf("booth-%d", i+1), Reader: "fr-1", Antennas: []int{i + 1},
			EnterAfter: time.Second, EnterReads: 3, LeaveAfter: 5 * time.Second}
	}
	return zs
}

func mustNew(t testing.TB, cfg Config) *Smoother {
	t.Helper()
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func read(epcHex string, antenna int, rssi float64, when time.Time) TagRead {
	return TagRead{Reader: "fr-1", EPC: epcHex, Antenna: antenna, RSSI: rssi, At: when}
}

// run feeds reads in order, calling Tick every 250ms of read time, and
// returns every change.
type runner struct {
	s        *Smoother
	lastTick time.Time
	events   []Presence
}

func newRunner(s *Smoother) *runner { return &runner{s: s, lastTick: t0} }

func (r *runner) feed(reads ...TagRead) {
	for _, rd := range reads {
		r.tickUntil(rd.At)
		r.events = append(r.events, r.s.Observe(rd)...)
	}
}

func (r *runner) tickUntil(now time.Time) {
	for next := r.lastTick.Add(250 * ms); !next.After(now); next = r.lastTick.Add(250 * ms) {
		r.events = append(r.events, r.s.Tick(next)...)
		r.lastTick = next
	}
}

func count(evs []Presence, c Change) int {
	n := 0
	for _, e := range evs {
		if e.Change == c {
			n++
		}
	}
	return n
}

// checker verifies the presence invariants over a stream of changes: per
// item, Enter and Leave alternate, the Leave names the zone entered, an item
// is in at most one zone, Dwell = Leave.At - Enter.At >= 0.
type checker struct {
	t      testing.TB
	in     map[string]Presence // item key -> its Enter
	enters map[[2]string]int
	leaves map[[2]string]int
	causes map[Cause]int
}

func newChecker(t testing.TB) *checker {
	return &checker{t: t, in: map[string]Presence{}, enters: map[[2]string]int{}, leaves: map[[2]string]int{},
		causes: map[Cause]int{}}
}

func (c *checker) apply(evs []Presence) {
	c.t.Helper()
	for _, e := range evs {
		k := e.GTIN + " " + e.Serial
		if e.GTIN == "" || e.Serial == "" || e.Zone == "" {
			c.t.Fatalf("change without item or zone: %+v", e)
		}
		switch e.Change {
		case Enter:
			if prev, ok := c.in[k]; ok {
				c.t.Fatalf("%s enters %s while present in %s", k, e.Zone, prev.Zone)
			}
			c.in[k] = e
			c.enters[[2]string{k, e.Zone}]++
		case Leave:
			prev, ok := c.in[k]
			if !ok || prev.Zone != e.Zone {
				c.t.Fatalf("%s leaves %s without entering it (in %+v)", k, e.Zone, prev)
			}
			if e.Dwell < 0 {
				c.t.Fatalf("negative dwell %v for %s", e.Dwell, k)
			}
			if e.Dwell != e.At.Sub(prev.At) {
				c.t.Fatalf("dwell %v != leave %v - enter %v", e.Dwell, e.At, prev.At)
			}
			delete(c.in, k)
			c.leaves[[2]string{k, e.Zone}]++
			c.causes[e.Cause]++
		default:
			c.t.Fatalf("unknown change %v", e.Change)
		}
	}
}

// final checks enters = leaves + present against the smoother's own view.
func (c *checker) final(s *Smoother, zones []Zone) {
	c.t.Helper()
	present := map[[2]string]bool{}
	for _, z := range zones {
		for _, st := range s.Present(z.Name) {
			present[[2]string{st.GTIN + " " + st.Serial, z.Name}] = true
		}
	}
	for k, e := range c.in {
		if !present[[2]string{k, e.Zone}] {
			c.t.Fatalf("%s entered %s and never left, but the smoother does not list it", k, e.Zone)
		}
	}
	for kz, n := range c.enters {
		want := c.leaves[kz]
		if present[kz] {
			want++
		}
		if n != want {
			c.t.Fatalf("%v: %d enters, %d leaves, present=%v", kz, n, c.leaves[kz], present[kz])
		}
	}
	for kz := range present {
		if c.enters[kz] == 0 {
			c.t.Fatalf("%v present without an Enter", kz)
		}
	}
}
