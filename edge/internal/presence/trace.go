package presence

import (
	"fmt"
	"math/rand/v2"
	"sort"
	"time"
)

// TraceConfig describes a simulated row of fitting rooms off one corridor,
// one antenna per room on one reader, and tagged items carried in and out.
type TraceConfig struct {
	Seed   uint64
	Rooms  int           // rooms in a row; room i is antenna i+1
	Tags   int           // items
	Span   time.Duration // length of the trace
	Reader string
	// Round is the reader's inventory period (every antenna once).
	Round time.Duration
}

// Stint is a tag in one place over [From, To): Room is 1-based, 0 the
// corridor (in no room).
type Stint struct {
	Key      string
	Room     int
	From, To time.Time
}

// Trace is a generated read stream and the truth it came from.
type Trace struct {
	Start  time.Time
	Rooms  []Room
	Reads  []Read
	Stints []Stint
}

// TraceStart is the simulated clock's origin.
var TraceStart = time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)

// RoomName names room i (1-based) in traces and in the simulator.
func RoomName(i int) string { return fmt.Sprintf("room-%d", i) }

// Where returns the tag's true room (0 corridor) at t.
func (tr *Trace) Where(key string, t time.Time) int {
	for _, s := range tr.Stints {
		if s.Key == key && !t.Before(s.From) && t.Before(s.To) {
			return s.Room
		}
	}
	return 0
}

// Link is how an antenna hears a tag at a given distance: the chance it
// answers in a round, and the RSSI mean and spread.
type Link struct {
	P, Mean, Spread float64
}

// Links by distance in rooms between the tag and the antenna: its own room,
// through one wall, two walls; and from the corridor to the nearest room.
// Measured-like values: a body-worn tag in a booth reads at about -50 dBm,
// through a booth wall about 16-20 dB weaker and less often.
var (
	LinkSame     = Link{P: 0.9, Mean: -50, Spread: 3}
	LinkWall     = Link{P: 0.45, Mean: -67, Spread: 4}
	LinkTwoWalls = Link{P: 0.08, Mean: -76, Spread: 3}
	LinkCorridor = Link{P: 0.3, Mean: -70, Spread: 5}
)

// Generate builds a trace: each tag alternates between the corridor
// (5–40 s) and a random room (20–120 s), sometimes going straight from one
// room to the next (a shopper swapping booths); every Round each antenna
// hears each tag per the Links; one read in fifty is a multipath spike
// 12 dB stronger than usual.
func Generate(c TraceConfig) *Trace {
	if c.Rooms <= 0 {
		c.Rooms = 4
	}
	if c.Tags <= 0 {
		c.Tags = 40
	}
	if c.Span <= 0 {
		c.Span = 10 * time.Minute
	}
	if c.Reader == "" {
		c.Reader = "rfid-1"
	}
	if c.Round <= 0 {
		c.Round = 250 * time.Millisecond
	}
	rnd := rand.New(rand.NewPCG(c.Seed, c.Seed^0x9e3779b97f4a7c15))
	tr := &Trace{Start: TraceStart}
	for i := 1; i <= c.Rooms; i++ {
		tr.Rooms = append(tr.Rooms, Room{Name: RoomName(i), Reader: c.Reader, Antennas: []int{i}})
	}
	end := TraceStart.Add(c.Span)
	dur := func(lo, hi int) time.Duration { return time.Duration(lo+rnd.IntN(hi-lo+1)) * time.Second }
	for k := range c.Tags {
		key := fmt.Sprintf("tag-%03d", k)
		t := TraceStart.Add(dur(0, 30))
		tr.Stints = append(tr.Stints, Stint{Key: key, Room: 0, From: TraceStart, To: t})
		for t.Before(end) {
			room := 1 + rnd.IntN(c.Rooms)
			next := t.Add(dur(20, 120))
			tr.Stints = append(tr.Stints, Stint{Key: key, Room: room, From: t, To: next})
			t = next
			if rnd.IntN(4) == 0 { // straight to another booth
				other := 1 + rnd.IntN(c.Rooms)
				if other != room {
					next = t.Add(dur(20, 90))
					tr.Stints = append(tr.Stints, Stint{Key: key, Room: other, From: t, To: next})
					t = next
				}
			}
			next = t.Add(dur(5, 40))
			tr.Stints = append(tr.Stints, Stint{Key: key, Room: 0, From: t, To: next})
			t = next
		}
	}
	sort.Slice(tr.Stints, func(i, j int) bool {
		if !tr.Stints[i].From.Equal(tr.Stints[j].From) {
			return tr.Stints[i].From.Before(tr.Stints[j].From)
		}
		return tr.Stints[i].Key < tr.Stints[j].Key
	})
	// where[k] walks each tag's stints in time order.
	byKey := map[string][]Stint{}
	var keys []string
	for _, s := range tr.Stints {
		if _, ok := byKey[s.Key]; !ok {
			keys = append(keys, s.Key)
		}
		byKey[s.Key] = append(byKey[s.Key], s)
	}
	pos := make([]int, len(keys))
	for at := TraceStart; at.Before(end); at = at.Add(c.Round) {
		for ki, key := range keys {
			ss := byKey[key]
			for pos[ki] < len(ss)-1 && !at.Before(ss[pos[ki]].To) {
				pos[ki]++
			}
			room := ss[pos[ki]].Room
			for a := 1; a <= c.Rooms; a++ {
				var l Link
				switch d := abs(room - a); {
				case room == 0:
					l = LinkCorridor
				case d == 0:
					l = LinkSame
				case d == 1:
					l = LinkWall
				case d == 2:
					l = LinkTwoWalls
				default:
					continue
				}
				if rnd.Float64() >= l.P {
					continue
				}
				rssi := l.Mean + rnd.NormFloat64()*l.Spread
				if rnd.IntN(50) == 0 {
					rssi += 12
				}
				rssi = min(rssi, -30)
				jitter := time.Duration(rnd.Int64N(int64(c.Round)))
				tr.Reads = append(tr.Reads, Read{Key: key, Reader: c.Reader, Antenna: a, RSSI: float64(int(rssi)), At: at.Add(jitter)})
			}
		}
	}
	sort.SliceStable(tr.Reads, func(i, j int) bool { return tr.Reads[i].At.Before(tr.Reads[j].At) })
	return tr
}

func abs(v int) int {
	if v < 0 {
		return -v
	}
	return v
}

// Accuracy is room assignment scored against the truth.
type Accuracy struct {
	TP, FP, FN int
}

// Precision is TP / (TP + FP): of the items shown, the share really there.
func (a Accuracy) Precision() float64 { return ratio(a.TP, a.TP+a.FP) }

// Recall is TP / (TP + FN): of the items really there, the share shown.
func (a Accuracy) Recall() float64 { return ratio(a.TP, a.TP+a.FN) }

func ratio(n, d int) float64 {
	if d == 0 {
		return 1
	}
	return float64(n) / float64(d)
}

// Evaluate replays the trace through a fresh scorer (ticking every 250 ms)
// and compares, every second, each tag's shown room with the truth. The
// first Settle after each true change is not scored: no reader can know a
// tag has moved before it has been read in its new place.
func Evaluate(tr *Trace, c Config, settle time.Duration) (Accuracy, error) {
	c.Rooms = tr.Rooms
	s, err := New(c)
	if err != nil {
		return Accuracy{}, err
	}
	return EvaluateWith(tr, settle, func(rs []Read, now time.Time) map[string]int {
		s.Observe(rs...)
		s.Tick(now)
		out := map[string]int{}
		for i, r := range tr.Rooms {
			for _, sc := range s.Shown(r.Name) {
				out[sc.Key] = i + 1
			}
		}
		return out
	}), nil
}

// EvaluateWith scores any assigner: step receives the reads up to now and
// answers where each tag is shown (absent = nowhere).
func EvaluateWith(tr *Trace, settle time.Duration, step func(reads []Read, now time.Time) map[string]int) Accuracy {
	var acc Accuracy
	seen := map[string]bool{}
	var keys []string
	for _, s := range tr.Stints {
		if !seen[s.Key] {
			seen[s.Key] = true
			keys = append(keys, s.Key)
		}
	}
	lastChange := func(key string, t time.Time) time.Time {
		var last time.Time
		for _, s := range tr.Stints {
			if s.Key == key && !s.From.After(t) && s.From.After(last) {
				last = s.From
			}
		}
		return last
	}
	sort.Strings(keys)
	i := 0
	end := tr.Start
	if n := len(tr.Reads); n > 0 {
		end = tr.Reads[n-1].At
	}
	sample := tr.Start.Add(time.Second)
	for now := tr.Start.Add(250 * time.Millisecond); !now.After(end); now = now.Add(250 * time.Millisecond) {
		j := i
		for j < len(tr.Reads) && !tr.Reads[j].At.After(now) {
			j++
		}
		shown := step(tr.Reads[i:j], now)
		i = j
		if now.Before(sample) {
			continue
		}
		sample = sample.Add(time.Second)
		for _, k := range keys {
			if now.Sub(lastChange(k, now)) < settle {
				continue
			}
			truth, got := tr.Where(k, now), shown[k]
			switch {
			case got != 0 && got == truth:
				acc.TP++
			case got != 0:
				acc.FP++
				if truth != 0 {
					acc.FN++
				}
			case truth != 0:
				acc.FN++
			}
		}
	}
	return acc
}
