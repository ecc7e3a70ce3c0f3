package presence

import (
	"errors"
	"testing"
	"time"
)

var t0 = time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)

func twoRooms(t *testing.T) *Scorer {
	t.Helper()
	s, err := New(Config{Rooms: []Room{
		{Name: "room-1", Reader: "r", Antennas: []int{1}},
		{Name: "room-2", Reader: "r", Antennas: []int{2}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// feed reads key every period on antenna a at rssi over span from start.
func feed(s *Scorer, key string, a int, rssi float64, start time.Time, span, period time.Duration) {
	for d := time.Duration(0); d <= span; d += period {
		s.Observe(Read{Key: key, Reader: "r", Antenna: a, RSSI: rssi, At: start.Add(d)})
	}
}

// Ensure that a tag read weakly at room 1 and strongly at room 2 is shown
// in room 2 only, and that room 1 still reports its (low) score.
func TestScorer_WeakHereStrongThere(t *testing.T) {
	s := twoRooms(t)
	for d := time.Duration(0); d <= 3*time.Second; d += 250 * time.Millisecond {
		s.Observe(Read{Key: "A", Reader: "r", Antenna: 1, RSSI: -68, At: t0.Add(d)},
			Read{Key: "A", Reader: "r", Antenna: 2, RSSI: -49, At: t0.Add(d + time.Millisecond)})
	}
	s.Tick(t0.Add(3 * time.Second))
	if got := s.Where("A"); got != "room-2" {
		t.Fatalf("A shown in %q, want room-2", got)
	}
	if sh := s.Shown("room-1"); len(sh) != 0 {
		t.Fatalf("room-1 shows %+v", sh)
	}
	sc := s.Scores("room-1")
	if len(sc) != 1 || sc[0].Score >= DefaultLeave || sc[0].Shown {
		t.Fatalf("room-1 scores %+v, want one low unshown score", sc)
	}
	if sc2 := s.Scores("room-2"); len(sc2) != 1 || sc2[0].Score < DefaultEnter {
		t.Fatalf("room-2 scores %+v", sc2)
	}
}

// Ensure that a single stray read or a short burst never shows an item.
func TestScorer_StrayReadsNeverShow(t *testing.T) {
	s := twoRooms(t)
	s.Observe(Read{Key: "B", Reader: "r", Antenna: 1, RSSI: -45, At: t0})
	s.Tick(t0.Add(100 * time.Millisecond))
	if s.Where("B") != "" {
		t.Fatal("one read showed the item")
	}
	feed(s, "C", 1, -70, t0, 5*time.Second, 500*time.Millisecond) // corridor-like
	s.Tick(t0.Add(5 * time.Second))
	if s.Where("C") != "" {
		t.Fatalf("a weak, sparse tag is shown: %+v", s.Scores("room-1"))
	}
}

// Ensure that a shown item stays through a short silence and a few weak
// reads (hysteresis), and goes once the room stops reading it.
func TestScorer_Hysteresis(t *testing.T) {
	s := twoRooms(t)
	feed(s, "D", 1, -50, t0, 3*time.Second, 250*time.Millisecond)
	if s.Where("D") != "room-1" {
		t.Fatalf("not shown: %+v", s.Scores("room-1"))
	}
	// Behind the shopper's back for a second: weaker, fewer reads.
	feed(s, "D", 1, -60, t0.Add(3500*time.Millisecond), time.Second, 500*time.Millisecond)
	s.Tick(t0.Add(4600 * time.Millisecond))
	if s.Where("D") != "room-1" {
		t.Fatalf("flickered out: %+v", s.Scores("room-1"))
	}
	s.Tick(t0.Add(12 * time.Second))
	if s.Where("D") != "" {
		t.Fatalf("still shown after silence: %+v", s.Scores("room-1"))
	}
	s.Tick(t0.Add(time.Minute))
	if sc := s.Scores("room-1"); len(sc) != 0 {
		t.Fatalf("not forgotten: %+v", sc)
	}
}

// Ensure that an item carried from room 1 to room 2 moves.
func TestScorer_Moves(t *testing.T) {
	s := twoRooms(t)
	feed(s, "E", 1, -50, t0, 3*time.Second, 250*time.Millisecond)
	start := t0.Add(3250 * time.Millisecond)
	for d := time.Duration(0); d <= 3*time.Second; d += 250 * time.Millisecond {
		s.Observe(Read{Key: "E", Reader: "r", Antenna: 2, RSSI: -50, At: start.Add(d)},
			Read{Key: "E", Reader: "r", Antenna: 1, RSSI: -67, At: start.Add(d)})
	}
	if got := s.Where("E"); got != "room-2" {
		t.Fatalf("E in %q: %+v %+v", got, s.Scores("room-1"), s.Scores("room-2"))
	}
}

func TestConfig_Validate(t *testing.T) {
	for name, c := range map[string]Config{
		"thresholds":  {Enter: 0.3, Leave: 0.5},
		"rssi":        {InRoomRSSI: -80, FloorRSSI: -60},
		"no antennas": {Rooms: []Room{{Name: "a", Reader: "r"}}},
		"shared port": {Rooms: []Room{{Name: "a", Reader: "r", Antennas: []int{1}}, {Name: "b", Reader: "r", Antennas: []int{1}}}},
		"twice":       {Rooms: []Room{{Name: "a", Reader: "r", Antennas: []int{1}}, {Name: "a", Reader: "r", Antennas: []int{2}}}},
	} {
		if _, err := New(c); !errors.Is(err, ErrConfig) {
			t.Errorf("%s: err %v, want ErrConfig", name, err)
		}
	}
}
