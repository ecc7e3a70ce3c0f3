package rfid

import (
	"errors"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
)

// Ensure that one tag read 20 times a second for 10 s is one Enter, and that
// silence then gives one Leave with the dwell from first to last read.
func TestSmoother_OneTagEnterLeave(t *testing.T) {
	s := mustNew(t, Config{Zones: booths(2)})
	r := newRunner(s)
	tag := tagHex(1, 1001)
	for i := 0; i < 200; i++ { // 20/s for 10 s
		r.feed(read(tag, 1, -55, at(time.Duration(i)*50*ms)))
	}
	if n := count(r.events, Enter); n != 1 || len(r.events) != 1 {
		t.Fatalf("after 10 s of reads: %d events, %d enters; want one Enter: %+v", len(r.events), n, r.events)
	}
	e := r.events[0]
	if e.Zone != "booth-1" || e.GTIN != gtin(1) || e.Serial != "1001" || e.EPC != tag || !e.At.Equal(t0) || e.RSSI != -55 {
		t.Errorf("Enter = %+v", e)
	}
	r.tickUntil(at(20 * time.Second))
	if len(r.events) != 2 {
		t.Fatalf("after silence: %+v", r.events)
	}
	l := r.events[1]
	lastRead := at(9950 * ms)
	if l.Change != Leave || l.Zone != "booth-1" || l.Cause != CauseGone || !l.At.Equal(lastRead) || l.Dwell != 9950*ms {
		t.Errorf("Leave = %+v, want At %v Dwell 9.95s", l, lastRead)
	}
	if st := s.Stats(); st.Readers[0].Zones[0].Tracked != 0 {
		t.Errorf("tag still tracked after leaving: %+v", st.Readers[0].Zones[0])
	}
}

// Ensure that the enter decision waits for EnterAfter and EnterReads.
func TestSmoother_EnterThresholds(t *testing.T) {
	tests := []struct {
		name  string
		times []time.Duration // read times of one tag on booth-1
		enter bool
	}{
		{"single read", []time.Duration{0}, false},
		{"burst of 10 within 200ms", []time.Duration{0, 20, 40, 60, 80, 100, 120, 140, 160, 200}, false},
		{"two reads over a second", []time.Duration{0, 1000}, false},
		{"three reads over a second", []time.Duration{0, 500, 1000}, true},
		{"sparse reads, gaps over EnterAfter", []time.Duration{0, 1100, 2200, 3300, 4400, 5500}, false},
		{"gap restarts the streak", []time.Duration{0, 400, 1500, 1900, 2300}, false},
		{"gap then a full streak", []time.Duration{0, 400, 1500, 1900, 2300, 2500}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := mustNew(t, Config{Zones: booths(2)})
			var evs []Presence
			for _, d := range tt.times {
				evs = append(evs, s.Observe(read(tdsSGTIN96, 1, -50, at(d*ms)))...)
			}
			if got := count(evs, Enter) == 1; got != tt.enter || len(evs) > 1 {
				t.Errorf("events %+v, want enter=%v", evs, tt.enter)
			}
		})
	}
}

// Ensure that stray reads from the next booth's antenna neither make an item
// enter that booth nor pull an item out of its own booth.
func TestSmoother_StrayReads(t *testing.T) {
	tests := []struct {
		name  string
		stray []TagRead // reads of the tag on booth-2's antenna
		home  bool      // the tag is also read steadily in booth-1
		want  []Change
		zone  string
	}{
		{name: "single stray, not in any booth",
			stray: []TagRead{read(tdsSGTIN96, 2, -40, at(3*time.Second))}},
		{name: "stray every 3 s for a minute",
			stray: every(tdsSGTIN96, 2, -60, 3*time.Second, 60*time.Second)},
		{name: "strong single stray while in booth-1",
			stray: []TagRead{read(tdsSGTIN96, 2, -30, at(4*time.Second))},
			home:  true, want: []Change{Enter}, zone: "booth-1"},
		{name: "strong burst while in booth-1",
			stray: burst(tdsSGTIN96, 2, -30, at(4*time.Second), 8),
			home:  true, want: []Change{Enter}, zone: "booth-1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := mustNew(t, Config{Zones: booths(2)})
			r := newRunner(s)
			reads := tt.stray
			if tt.home {
				reads = merge(every(tdsSGTIN96, 1, -50, 250*ms, 10*time.Second), reads)
			}
			r.feed(reads...)
			if len(r.events) != len(tt.want) {
				t.Fatalf("events %+v, want %v", r.events, tt.want)
			}
			for i, e := range r.events {
				if e.Change != tt.want[i] || e.Zone != tt.zone {
					t.Errorf("event %d = %v %s, want %v %s", i, e.Change, e.Zone, tt.want[i], tt.zone)
				}
			}
		})
	}
}

// Ensure that a tag between two booths, read by both with alternating
// stronger side, enters once and does not flap.
func TestSmoother_BetweenBoothsNoFlap(t *testing.T) {
	s := mustNew(t, Config{Zones: booths(2)})
	r := newRunner(s)
	c := newChecker(t)
	rnd := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 600; i++ { // 60 s, 10 reads/s
		ant := 1 + i%2
		// Both sides hover around -60 dBm; each read is up to 4 dB either
		// way, so the stronger side changes all the time.
		rssi := -60 + (rnd.Float64()*8 - 4)
		r.feed(read(tdsSGTIN96, ant, rssi, at(time.Duration(i)*100*ms)))
	}
	c.apply(r.events)
	if len(r.events) != 1 || r.events[0].Change != Enter {
		t.Fatalf("want one Enter, got %+v", r.events)
	}
}

// Ensure that an item moving to another booth leaves the first and enters
// the second, whether the move shows in RSSI or in the first booth going
// quiet (readers without RSSI).
func TestSmoother_ZoneSwitch(t *testing.T) {
	tests := []struct {
		name       string
		oldRSSI    float64 // booth-1 before the move
		homeAfter  float64 // booth-1 after the move
		homeSilent bool    // booth-1 stops reading it
		newRSSI    float64 // booth-2 after the move
	}{
		{name: "clearly stronger", oldRSSI: -50, homeAfter: -70, newRSSI: -45},
		{name: "booth-1 silent, no RSSI", oldRSSI: 0, homeSilent: true, newRSSI: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := mustNew(t, Config{Zones: booths(2)})
			r := newRunner(s)
			c := newChecker(t)
			r.feed(every(tdsSGTIN96, 1, tt.oldRSSI, 250*ms, 5*time.Second)...)
			move := at(5 * time.Second)
			after := everyFrom(tdsSGTIN96, 2, tt.newRSSI, move, 250*ms, 5*time.Second)
			if !tt.homeSilent {
				after = merge(after, everyFrom(tdsSGTIN96, 1, tt.homeAfter, move.Add(100*ms), 250*ms, 5*time.Second))
			}
			r.feed(after...)
			c.apply(r.events)
			if len(r.events) != 3 {
				t.Fatalf("events %+v", r.events)
			}
			l, e := r.events[1], r.events[2]
			if l.Change != Leave || l.Zone != "booth-1" || l.Cause != CauseMoved {
				t.Errorf("second event %+v, want Leave booth-1 moved", l)
			}
			if e.Change != Enter || e.Zone != "booth-2" || !e.At.Equal(move) {
				t.Errorf("third event %+v, want Enter booth-2 at %v", e, move)
			}
			if got := s.Present("booth-2"); len(got) != 1 || len(s.Present("booth-1")) != 0 {
				t.Errorf("present booth-2 = %+v, booth-1 = %+v", got, s.Present("booth-1"))
			}
		})
	}
}

// Ensure that hundreds of tags read in bursts, in random order, several
// times each, enter exactly once each.
func TestSmoother_BurstManyTags(t *testing.T) {
	const tags, rounds = 400, 10
	s := mustNew(t, Config{Zones: booths(4)})
	rnd := rand.New(rand.NewPCG(7, 7))
	order := make([]int, tags)
	for i := range order {
		order[i] = i
	}
	c := newChecker(t)
	for round := 0; round < rounds; round++ {
		rnd.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
		batch := make([]TagRead, 0, tags)
		for k, i := range order {
			// A whole inventory round arrives as one burst within 250 ms.
			when := at(time.Duration(round)*250*ms + time.Duration(k)*250*ms/tags)
			batch = append(batch, read(tagHex(i%37, i), 1+i%4, -50-float64(rnd.IntN(10)), when))
		}
		c.apply(s.Observe(batch...))
	}
	seen := map[string]int{}
	for kz, n := range c.enters {
		seen[kz[0]] += n
	}
	if len(seen) != tags {
		t.Fatalf("%d items entered, want %d", len(seen), tags)
	}
	for k, n := range seen {
		if n != 1 {
			t.Errorf("%s entered %d times", k, n)
		}
	}
	c.final(s, booths(4))
}

// Ensure that malformed EPCs and non-item tags are counted per reader with
// their reason, make no event and never a product.
func TestSmoother_BadInput(t *testing.T) {
	long := make([]byte, 10_000)
	for i := range long {
		long[i] = '3'
	}
	tests := []struct {
		name   string
		epc    string
		reason Reason
		scheme string
	}{
		{"not hex", "30Z4257BF7194E4000001A85", ReasonHex, ""},
		{"empty", "", ReasonLength, ""},
		{"too short", "3074257BF7194E40", ReasonLength, ""},
		{"too long", tdsSGTIN96 + "00000001", ReasonLength, ""},
		{"huge", string(long), ReasonLength, ""},
		{"unknown header", "FF74257BF7194E4000001A85", ReasonHeader, ""},
		{"partition 7", "307C257BF7194E4000001A85", ReasonPartition, ""},
		{"control bytes", "\x00\x01\x02", ReasonHex, ""},
		{"sscc", tdsSSCC96, "", "sscc-96"},
		{"sgln", tdsSGLN96, "", "sgln-96"},
		{"giai", tdsGIAI96, "", "giai-96"},
		{"cpi-var", "3D14257BF71CADD35D8000075BCD1500", "", "cpi-var"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := mustNew(t, Config{Zones: booths(1)})
			r := newRunner(s)
			r.feed(every(tt.epc, 1, -50, 100*ms, 5*time.Second)...)
			r.tickUntil(at(20 * time.Second))
			if len(r.events) != 0 {
				t.Fatalf("events from a bad tag: %+v", r.events)
			}
			st := s.Stats().Readers[0]
			if st.Reads != 50 {
				t.Errorf("reads = %d, want 50", st.Reads)
			}
			if tt.reason != "" && (st.Rejects[tt.reason] != 50 || st.Rejected() != 50) {
				t.Errorf("rejects = %v, want 50 %s", st.Rejects, tt.reason)
			}
			if tt.scheme != "" && st.NotItems[tt.scheme] != 50 {
				t.Errorf("not items = %v, want 50 %s", st.NotItems, tt.scheme)
			}
			if st.Zones[0].Tracked != 0 {
				t.Errorf("bad tag tracked: %+v", st.Zones[0])
			}
		})
	}
}

// Ensure that the reads of one item in several spellings (case, SGTIN-198
// padding) are one item.
func TestSmoother_SpellingsAreOneItem(t *testing.T) {
	s := mustNew(t, Config{Zones: booths(1)})
	spellings := []string{tdsSGTIN198, tdsSGTIN198[:50], "0x" + tdsSGTIN198, " 3674257bf6b7a659b2c2bf100000000000000000000000000000"}
	var evs []Presence
	for i := 0; i < 40; i++ {
		evs = append(evs, s.Observe(read(spellings[i%len(spellings)], 1, -50, at(time.Duration(i)*100*ms)))...)
	}
	if len(evs) != 1 || evs[0].GTIN != "70614141123451" || evs[0].Serial != "32a/b" || evs[0].EPC != tdsSGTIN198 {
		t.Fatalf("events %+v", evs)
	}
}

// Ensure that reads below MinRSSI and from antennas outside every zone are
// counted and ignored, and that unknown RSSI is never filtered.
func TestSmoother_Filters(t *testing.T) {
	zs := booths(1)
	zs[0].MinRSSI = -70
	s := mustNew(t, Config{Zones: zs})
	var evs []Presence
	for i := 0; i < 20; i++ {
		when := at(time.Duration(i) * 200 * ms)
		evs = append(evs, s.Observe(
			read(tagHex(1, 1), 1, -80, when), // weak
			read(tagHex(1, 2), 9, -40, when), // antenna 9: no zone
			read(tagHex(1, 3), 1, 0, when),   // RSSI unknown: kept
			TagRead{Reader: "other", EPC: tagHex(1, 4), Antenna: 1, RSSI: -40, At: when},
		)...)
	}
	if len(evs) != 1 || evs[0].Serial != "3" {
		t.Fatalf("events %+v", evs)
	}
	st := s.Stats()
	fr := st.Readers[0]
	if fr.Reader != "fr-1" || fr.Weak != 20 || fr.Unzoned != 20 || fr.Reads != 60 {
		t.Errorf("fr-1 stats %+v", fr)
	}
	if o := st.Readers[1]; o.Reader != "other" || o.Unzoned != 20 {
		t.Errorf("other reader stats %+v", o)
	}
}

// Ensure that a read arriving after LeaveAfter of silence, before any Tick,
// first closes the old stay.
func TestSmoother_LateTick(t *testing.T) {
	s := mustNew(t, Config{Zones: booths(1)})
	var evs []Presence
	for i := 0; i < 10; i++ {
		evs = append(evs, s.Observe(read(tdsSGTIN96, 1, -50, at(time.Duration(i)*250*ms)))...)
	}
	for i := 0; i < 10; i++ {
		evs = append(evs, s.Observe(read(tdsSGTIN96, 1, -50, at(time.Minute+time.Duration(i)*250*ms)))...)
	}
	c := newChecker(t)
	c.apply(evs)
	want := []Change{Enter, Leave, Enter}
	if len(evs) != len(want) {
		t.Fatalf("events %+v", evs)
	}
	for i, e := range evs {
		if e.Change != want[i] {
			t.Errorf("event %d = %v, want %v", i, e.Change, want[i])
		}
	}
	if evs[1].Dwell != 2250*ms {
		t.Errorf("dwell %v", evs[1].Dwell)
	}
}

// Ensure that reads out of time order never run time backwards.
func TestSmoother_OutOfOrder(t *testing.T) {
	s := mustNew(t, Config{Zones: booths(1)})
	c := newChecker(t)
	times := []time.Duration{1000, 0, 500, 1200, 100, 2000, 1500, 2500}
	for _, d := range times {
		c.apply(s.Observe(read(tdsSGTIN96, 1, -50, at(d*ms))))
	}
	c.apply(s.Tick(at(time.Minute)))
	if len(c.enters) != 1 || len(c.leaves) != 1 {
		t.Fatalf("enters %v leaves %v", c.enters, c.leaves)
	}
}

// Ensure that the per-zone bound holds under a flood of distinct EPCs, that
// evictions are counted, and that an evicted present item leaves.
func TestSmoother_EvictionBound(t *testing.T) {
	const limit = 100
	s := mustNew(t, Config{Zones: booths(2), MaxTagsPerZone: limit})
	c := newChecker(t)
	// Ten items settle in booth-1.
	for i := 0; i < 8; i++ {
		for k := 0; k < 10; k++ {
			c.apply(s.Observe(read(tagHex(2, k), 1, -50, at(time.Duration(i)*200*ms))))
		}
	}
	if got := len(s.Present("booth-1")); got != 10 {
		t.Fatalf("present %d", got)
	}
	// Then a flood of 20,000 distinct EPCs, each read once.
	for k := 0; k < 20_000; k++ {
		c.apply(s.Observe(read(tagHex(3, k), 1, -60, at(2*time.Second+time.Duration(k)*time.Microsecond))))
		if k%1000 == 0 {
			if z := s.Stats().Readers[0].Zones[0]; z.Tracked > limit {
				t.Fatalf("tracked %d > %d", z.Tracked, limit)
			}
		}
	}
	z := s.Stats().Readers[0].Zones[0]
	if z.Tracked != limit || z.Evictions != 10+20_000-limit {
		t.Errorf("zone stats %+v, want tracked %d evictions %d", z, limit, 10+20_000-limit)
	}
	if z.Present != 0 || z.Leaves != 10 {
		t.Errorf("evicted present items did not leave: %+v", z)
	}
	c.final(s, booths(2))
	if n := len(s.items); n != limit {
		t.Errorf("items map holds %d, want %d", n, limit)
	}
}

// Ensure that reads per second are measured over whole seconds.
func TestSmoother_ReadsPerSecond(t *testing.T) {
	s := mustNew(t, Config{Zones: booths(1)})
	for i := 0; i < 200; i++ {
		s.Observe(read(tdsSGTIN96, 1, -50, at(time.Duration(i)*50*ms)))
	}
	s.Tick(at(10 * time.Second))
	if got := s.Stats().Readers[0].ReadsPerSec; got != 20 {
		t.Errorf("reads/s = %v, want 20", got)
	}
	s.Tick(at(time.Minute))
	if got := s.Stats().Readers[0].ReadsPerSec; got != 0 {
		t.Errorf("reads/s a minute later = %v, want 0", got)
	}
}

// Ensure that invalid configurations are refused with ErrInvalidConfig.
func TestConfig_Validate(t *testing.T) {
	ok := Zone{Name: "b1", Reader: "r", Antennas: []int{1}}
	tests := []struct {
		name string
		mod  func(c *Config)
	}{
		{"no name", func(c *Config) { c.Zones[0].Name = "" }},
		{"long name", func(c *Config) { c.Zones[0].Name = strings.Repeat("b", MaxZoneName+1) }},
		{"no reader", func(c *Config) { c.Zones[0].Reader = "" }},
		{"no antenna", func(c *Config) { c.Zones[0].Antennas = nil }},
		{"antenna 0", func(c *Config) { c.Zones[0].Antennas = []int{0} }},
		{"antenna too big", func(c *Config) { c.Zones[0].Antennas = []int{MaxAntenna + 1} }},
		{"negative duration", func(c *Config) { c.Zones[0].EnterAfter = -time.Second }},
		{"leave before enter", func(c *Config) { c.Zones[0].EnterAfter, c.Zones[0].LeaveAfter = 5*time.Second, time.Second }},
		{"enter reads", func(c *Config) { c.Zones[0].EnterReads = -1 }},
		{"positive min rssi", func(c *Config) { c.Zones[0].MinRSSI = 3 }},
		{"duplicate name", func(c *Config) { c.Zones = append(c.Zones, Zone{Name: "b1", Reader: "r", Antennas: []int{2}}) }},
		{"shared antenna", func(c *Config) { c.Zones = append(c.Zones, Zone{Name: "b2", Reader: "r", Antennas: []int{1}}) }},
		{"max tags", func(c *Config) { c.MaxTagsPerZone = -1 }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := Config{Zones: []Zone{ok}}
			c.Zones[0].Antennas = []int{1}
			tt.mod(&c)
			if _, err := New(c); !errors.Is(err, ErrInvalidConfig) {
				t.Errorf("New = %v, want ErrInvalidConfig", err)
			}
		})
	}
	if _, err := New(Config{Zones: []Zone{ok, {Name: "b2", Reader: "other", Antennas: []int{1}}}}); err != nil {
		t.Errorf("valid config refused: %v", err)
	}
}

// every returns reads of tag on antenna every step from t0 for span.
func every(tag string, antenna int, rssi float64, step, span time.Duration) []TagRead {
	return everyFrom(tag, antenna, rssi, t0, step, span)
}

func everyFrom(tag string, antenna int, rssi float64, from time.Time, step, span time.Duration) []TagRead {
	var out []TagRead
	for d := time.Duration(0); d < span; d += step {
		out = append(out, read(tag, antenna, rssi, from.Add(d)))
	}
	return out
}

// burst returns n reads 10ms apart from when.
func burst(tag string, antenna int, rssi float64, when time.Time, n int) []TagRead {
	return everyFrom(tag, antenna, rssi, when, 10*ms, time.Duration(n)*10*ms)
}

// merge merges two time-ordered read lists.
func merge(a, b []TagRead) []TagRead {
	out := make([]TagRead, 0, len(a)+len(b))
	for len(a) > 0 && len(b) > 0 {
		if b[0].At.Before(a[0].At) {
			out, b = append(out, b[0]), b[1:]
		} else {
			out, a = append(out, a[0]), a[1:]
		}
	}
	return append(append(out, a...), b...)
}

// Ensure that readers, the ticker and a stats scraper may share a Smoother
// and a Decoder (run with -race).
func TestSmoother_Concurrent(t *testing.T) {
	dec := NewDecoder(64)
	zs := booths(4)
	for i := range zs {
		// The goroutines' read times run at different speeds; nothing
		// should leave while the others catch up.
		zs[i].LeaveAfter = time.Hour
	}
	s := mustNew(t, Config{Zones: zs, Decoder: dec})
	sw, err := NewSweep(SweepConfig{Decoder: dec}, t0)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan []Presence)
	for g := 0; g < 4; g++ {
		go func() {
			var evs []Presence
			for i := 0; i < 2000; i++ {
				r := read(tagHex(g, i%50), 1+g, -50, at(time.Duration(i)*10*ms))
				evs = append(evs, s.Observe(r)...)
				sw.Observe(r)
				if i%100 == 0 {
					evs = append(evs, s.Tick(at(time.Duration(i)*10*ms))...)
					s.Stats()
					s.Present("booth-1")
				}
			}
			done <- evs
		}()
	}
	total := 0
	for range 4 {
		total += count(<-done, Enter)
	}
	if total != 200 {
		t.Errorf("%d enters, want 200", total)
	}
	res, _ := sw.End(at(time.Minute))
	if res.Items != 200 {
		t.Errorf("sweep counted %d items, want 200", res.Items)
	}
}
