// Package presence decides which tagged items are really in which fitting
// room, so that the mirror lists (and recommends from) what the shopper
// brought in, not what a reader caught through the wall, from the corridor
// or from the next booth.
//
// Every (item, room) pair a reader sees gets a score in [0, 1] built from
// four things a UHF read carries: which antenna read it (which room), how
// strongly (smoothed RSSI against the room's in-room and noise-floor
// levels), how often (a decayed read rate against the rate a tag in the
// room gets), and for how long (dwell of the current streak). The signal
// part is shared between rooms: a tag read at -50 dBm in room 2 and at
// -68 dBm in room 1 scores high in room 2 and near zero in room 1. An item
// is shown in a room once its score there reaches Enter and it is the
// room's best; it stays until the score falls below Leave (hysteresis), or
// another room scores Enter and better by Margin; so a tag on the boundary
// does not flicker between rooms.
//
// It is pure: no I/O, no goroutine, no clock. Time comes from Read.At and
// Tick's argument, so traces replay deterministically (trace.go generates
// the simulated multi-room traces the thresholds were tuned on). Not safe
// for concurrent use: the caller (the device) holds its own lock.
//
// Sharp edges: readers that report no RSSI (0) give no signal part, so the
// score rests on rate and dwell and two rooms reading one tag equally
// cannot be told apart; the first to qualify keeps it.
package presence

import (
	"errors"
	"fmt"
	"math"
	"sort"
	"time"
)

// ErrConfig wraps every configuration problem.
var ErrConfig = errors.New("presence: invalid configuration")

// Room is a fitting room covered by some antennas of one reader.
type Room struct {
	Name     string
	Reader   string
	Antennas []int
}

// Config tunes the scorer; zero fields take the defaults below, which are
// the values tuned on the simulated traces (see trace_test.go).
type Config struct {
	Rooms []Room
	// InRoomRSSI is what an antenna reads from a tag inside its room
	// (dBm); FloorRSSI what it reads through a wall or from the corridor.
	// The signal part runs from 0 at FloorRSSI to 1 at InRoomRSSI.
	InRoomRSSI, FloorRSSI float64
	// Rate is the reads per second a tag in the room gets; the rate part
	// is the decayed rate over RateWindow against it.
	Rate       float64
	RateWindow time.Duration
	// DwellFull is the streak length at which the dwell part is 1; a
	// streak ends after Gap without a read.
	DwellFull, Gap time.Duration
	// Softness is the dB scale of the competition between rooms: a room
	// read Softness dB weaker than another gets about 1/e of its share.
	Softness float64
	// Enter and Leave are the hysteresis thresholds; Margin is how much
	// better another room must score to take a shown item.
	Enter, Leave, Margin float64
	// Forget drops an (item, room) pair not read for this long.
	Forget time.Duration
}

// Defaults, tuned on the seeded traces.
const (
	DefaultInRoomRSSI = -52.0
	DefaultFloorRSSI  = -74.0
	DefaultRate       = 3.0
	DefaultEnter      = 0.7
	DefaultLeave      = 0.45
	DefaultMargin     = 0.15
	DefaultSoftness   = 3.0
)

func (c Config) withDefaults() Config {
	def := func(v *float64, d float64) {
		if *v == 0 {
			*v = d
		}
	}
	defD := func(v *time.Duration, d time.Duration) {
		if *v == 0 {
			*v = d
		}
	}
	def(&c.InRoomRSSI, DefaultInRoomRSSI)
	def(&c.FloorRSSI, DefaultFloorRSSI)
	def(&c.Rate, DefaultRate)
	def(&c.Softness, DefaultSoftness)
	def(&c.Enter, DefaultEnter)
	def(&c.Leave, DefaultLeave)
	def(&c.Margin, DefaultMargin)
	defD(&c.RateWindow, 2*time.Second)
	defD(&c.DwellFull, 1500*time.Millisecond)
	defD(&c.Gap, 2*time.Second)
	defD(&c.Forget, 30*time.Second)
	return c
}

// Validate checks the configuration after defaults.
func (c Config) Validate() error {
	c = c.withDefaults()
	switch {
	case c.InRoomRSSI <= c.FloorRSSI:
		return fmt.Errorf("%w: in-room RSSI %.0f must be above the floor %.0f", ErrConfig, c.InRoomRSSI, c.FloorRSSI)
	case c.Rate <= 0 || c.Softness <= 0 || c.RateWindow <= 0 || c.DwellFull <= 0 || c.Gap <= 0 || c.Forget <= 0:
		return fmt.Errorf("%w: rates, windows and durations must be positive", ErrConfig)
	case !(0 < c.Leave && c.Leave < c.Enter && c.Enter <= 1):
		return fmt.Errorf("%w: thresholds need 0 < leave (%.2f) < enter (%.2f) <= 1", ErrConfig, c.Leave, c.Enter)
	case c.Margin < 0:
		return fmt.Errorf("%w: margin must not be negative", ErrConfig)
	}
	type port struct {
		reader  string
		antenna int
	}
	seen := map[string]bool{}
	owner := map[port]string{}
	for i, r := range c.Rooms {
		if r.Name == "" || r.Reader == "" || len(r.Antennas) == 0 {
			return fmt.Errorf("%w: rooms[%d]: needs a name, a reader and antennas", ErrConfig, i)
		}
		if seen[r.Name] {
			return fmt.Errorf("%w: rooms[%d]: %s named twice", ErrConfig, i, r.Name)
		}
		seen[r.Name] = true
		for _, a := range r.Antennas {
			p := port{r.Reader, a}
			if o, dup := owner[p]; dup {
				return fmt.Errorf("%w: rooms[%d]: antenna %d of %s already covers %s", ErrConfig, i, a, r.Reader, o)
			}
			owner[p] = r.Name
		}
	}
	return nil
}

// Read is one tag read, already decoded: Key identifies the item (GTIN +
// serial, whatever the EPC spelling).
type Read struct {
	Key     string
	Reader  string
	Antenna int
	// RSSI in dBm; 0 means unknown.
	RSSI float64
	At   time.Time
}

// Score is an item's standing in one room.
type Score struct {
	Key  string
	Room string
	// Score is in [0, 1]; Shown says whether the item is listed in the room.
	Score float64
	Shown bool
	// RSSI is the smoothed signal (0 unknown), Rate the decayed reads per
	// second, Dwell the current streak.
	RSSI  float64
	Rate  float64
	Dwell time.Duration
	Since time.Time // when it was first shown there (zero if not shown)
}

type port struct {
	reader  string
	antenna int
}

// track is one item as one room sees it.
type track struct {
	room        int
	first, last time.Time
	ewma        float64
	known       bool
	count       float64 // decayed read count, as of last
	score       float64
}

type item struct {
	tracks []*track
	shown  int // room index shown in, -1 none
	since  time.Time
}

// Scorer scores items per room. See the package doc.
type Scorer struct {
	c     Config
	rooms []Room
	ports map[port]int
	items map[string]*item
	now   time.Time
}

// New returns a scorer for the rooms.
func New(c Config) (*Scorer, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	c = c.withDefaults()
	s := &Scorer{c: c, rooms: c.Rooms, ports: map[port]int{}, items: map[string]*item{}}
	for i, r := range c.Rooms {
		for _, a := range r.Antennas {
			s.ports[port{r.Reader, a}] = i
		}
	}
	return s, nil
}

// rssiSmoothing is the weight of a new read in the smoothed RSSI.
const rssiSmoothing = 0.3

// spikeClip bounds one read's pull on the smoothed RSSI (dB).
const spikeClip = 6.0

// Observe feeds reads (roughly in time order per item) and rescores the
// items they name. Reads from antennas outside every room are ignored.
func (s *Scorer) Observe(reads ...Read) {
	for i := range reads {
		r := &reads[i]
		ri, ok := s.ports[port{r.Reader, r.Antenna}]
		if !ok || r.Key == "" {
			continue
		}
		if r.At.After(s.now) {
			s.now = r.At
		}
		it := s.items[r.Key]
		if it == nil {
			it = &item{shown: -1}
			s.items[r.Key] = it
		}
		var t *track
		for _, x := range it.tracks {
			if x.room == ri {
				t = x
			}
		}
		at := r.At
		if t == nil {
			t = &track{room: ri, first: at, last: at}
			it.tracks = append(it.tracks, t)
		} else if at.Before(t.last) {
			at = t.last
		}
		if at.Sub(t.last) > s.c.Gap {
			t.first, t.known, t.count = at, false, 0
		}
		t.count = t.count*s.decay(at.Sub(t.last)) + 1
		t.last = at
		if v := r.RSSI; v < 0 && v > -200 && !math.IsNaN(v) {
			if t.known {
				// A multipath spike lifts the average by at most
				// spikeClip dB a read: one read must not carry a tag
				// through a wall. Falls are taken whole, so a tag
				// carried out loses its room quickly.
				t.ewma += min(spikeClip, v-t.ewma) * rssiSmoothing
			} else {
				t.ewma, t.known = v, true
			}
		}
		s.rescore(it, at)
	}
}

// Tick rescores every item as of now (rates decay, streaks end) and forgets
// pairs not read for Forget. Call it every few hundred milliseconds.
func (s *Scorer) Tick(now time.Time) {
	if now.After(s.now) {
		s.now = now
	}
	for k, it := range s.items {
		kept := it.tracks[:0]
		for _, t := range it.tracks {
			if now.Sub(t.last) <= s.c.Forget {
				kept = append(kept, t)
			}
		}
		for i := len(kept); i < len(it.tracks); i++ {
			it.tracks[i] = nil
		}
		it.tracks = kept
		if len(kept) == 0 {
			delete(s.items, k)
			continue
		}
		s.rescore(it, now)
	}
}

func (s *Scorer) decay(d time.Duration) float64 {
	if d <= 0 {
		return 1
	}
	return math.Exp(-d.Seconds() / s.c.RateWindow.Seconds())
}

func clamp01(v float64) float64 { return max(0, min(1, v)) }

// rescore recomputes an item's scores at now and applies the hysteresis.
func (s *Scorer) rescore(it *item, now time.Time) {
	// Competition: each room's weight is its signal (relative, soft) times
	// its rate; an unknown RSSI competes at the floor.
	var total float64
	weights := make([]float64, len(it.tracks))
	rates := make([]float64, len(it.tracks))
	for i, t := range it.tracks {
		rates[i] = t.count * s.decay(now.Sub(t.last)) / s.c.RateWindow.Seconds()
		rssi := s.c.FloorRSSI
		if t.known {
			rssi = t.ewma
		}
		weights[i] = math.Exp((rssi-s.c.InRoomRSSI)/s.c.Softness) * rates[i]
		total += weights[i]
	}
	best, bestScore := -1, 0.0
	cur := -1
	for i, t := range it.tracks {
		share := 0.0
		if total > 0 {
			share = weights[i] / total
		}
		// A streak gone silent for Gap keeps only its decaying rate: the
		// signal and dwell it had say nothing about where the tag is now.
		sig, dwell := 0.0, 0.0
		if now.Sub(t.last) <= s.c.Gap {
			sig = 0.5 // unknown RSSI: neither for nor against
			if t.known {
				sig = clamp01((t.ewma - s.c.FloorRSSI) / (s.c.InRoomRSSI - s.c.FloorRSSI))
			}
			dwell = clamp01(t.last.Sub(t.first).Seconds() / s.c.DwellFull.Seconds())
		}
		rate := clamp01(rates[i] / s.c.Rate)
		t.score = share * (0.45*sig + 0.35*rate + 0.2*dwell)
		if t.score > bestScore {
			best, bestScore = i, t.score
		}
		if t.room == it.shown {
			cur = i
		}
	}
	switch {
	case cur >= 0 && it.tracks[cur].score < s.c.Leave:
		it.shown = -1
		cur = -1
	case cur >= 0 && best != cur && bestScore >= s.c.Enter && bestScore >= it.tracks[cur].score+s.c.Margin:
		it.shown = -1
		cur = -1
	}
	if cur < 0 {
		it.shown = -1 // also when the shown room's pair was forgotten
	}
	if it.shown < 0 && best >= 0 && bestScore >= s.c.Enter {
		it.shown, it.since = it.tracks[best].room, now
	}
}

// Shown lists the items shown in room now, best score first.
func (s *Scorer) Shown(room string) []Score {
	var out []Score
	for _, sc := range s.Scores(room) {
		if sc.Shown {
			out = append(out, sc)
		}
	}
	return out
}

// Scores lists every item the room's antennas read recently, shown or not,
// best score first (then by key).
func (s *Scorer) Scores(room string) []Score {
	ri := -1
	for i, r := range s.rooms {
		if r.Name == room {
			ri = i
		}
	}
	if ri < 0 {
		return nil
	}
	var out []Score
	for k, it := range s.items {
		for _, t := range it.tracks {
			if t.room != ri {
				continue
			}
			sc := Score{Key: k, Room: room, Score: math.Round(t.score*1000) / 1000, Shown: it.shown == ri,
				Rate: math.Round(t.count*s.decay(s.now.Sub(t.last))/s.c.RateWindow.Seconds()*100) / 100}
			if t.known {
				sc.RSSI = math.Round(t.ewma*10) / 10
			}
			if s.now.Sub(t.last) <= s.c.Gap {
				sc.Dwell = t.last.Sub(t.first)
			}
			if sc.Shown {
				sc.Since = it.since
			}
			out = append(out, sc)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Score != out[j].Score {
			return out[i].Score > out[j].Score
		}
		return out[i].Key < out[j].Key
	})
	return out
}

// Where returns the room an item is shown in, or "".
func (s *Scorer) Where(key string) string {
	if it := s.items[key]; it != nil && it.shown >= 0 {
		return s.rooms[it.shown].Name
	}
	return ""
}
