package rfid

import (
	"math"
	"time"
)

// rssiSmoothing is the weight of a new read in a tag's smoothed RSSI: about
// the last four reads count, enough to average out the few dB of noise
// between reads without hiding a real move for long.
const rssiSmoothing = 0.25

// zoneState is a configured zone and the EPCs tracked in it.
type zoneState struct {
	cfg Zone
	// head and tail form a list of tracked tags ordered by the latest read
	// (head most recent), so expiry and eviction start from the tail.
	head, tail *tracked
	n          int
	present    int
	enters     uint64
	leaves     uint64
	evicted    uint64
}

// item is one trade item (GTIN + serial), whatever spelling its EPC came in.
type item struct {
	Item
	key string
	// sightings holds the item's tracking in each zone that reads it;
	// rarely more than two.
	sightings []*tracked
	// present is the sighting of the zone the item is present in, or nil.
	present *tracked
	// since is when it entered that zone (the Enter's At).
	since time.Time
}

// tracked is one item as one zone sees it.
type tracked struct {
	item       *item
	zone       *zoneState
	prev, next *tracked
	// first and last bound the current streak: reads no more than the
	// zone's EnterAfter apart. last never moves backwards.
	first, last time.Time
	streak      int
	reads       uint64
	// ewma is the smoothed RSSI of the current streak; known says whether
	// any read in it carried an RSSI.
	ewma  float64
	known bool
	// peak is the strongest RSSI since tracking began (0 = none known).
	peak    float64
	antenna int
}

func (it *item) in(z *zoneState) *tracked {
	for _, t := range it.sightings {
		if t.zone == z {
			return t
		}
	}
	return nil
}

func (it *item) remove(t *tracked) {
	for i, s := range it.sightings {
		if s == t {
			last := len(it.sightings) - 1
			it.sightings[i] = it.sightings[last]
			it.sightings[last] = nil
			it.sightings = it.sightings[:last]
			return
		}
	}
}

// see records a read. A read older than the previous one counts as
// simultaneous with it, so out-of-order delivery never makes time run
// backwards (and dwell never negative).
func (t *tracked) see(r *TagRead, gap time.Duration) {
	at := r.At
	if t.reads == 0 {
		t.first, t.last = at, at
	} else if at.Before(t.last) {
		at = t.last
	}
	if at.Sub(t.last) > gap {
		t.first, t.streak, t.known = at, 0, false
	}
	t.streak++
	t.reads++
	t.last = at
	t.antenna = r.Antenna
	if rssi := rssiOf(r); rssi != 0 {
		if t.known {
			t.ewma += (rssi - t.ewma) * rssiSmoothing
		} else {
			t.ewma, t.known = rssi, true
		}
		if t.peak == 0 || rssi > t.peak {
			t.peak = rssi
		}
	}
}

// qualifies reports whether the current streak is long and dense enough
// for the item to be present in the zone.
func (t *tracked) qualifies() bool {
	return t.streak >= t.zone.cfg.EnterReads && t.last.Sub(t.first) >= t.zone.cfg.EnterAfter
}

// recent reports whether the zone read the tag within its EnterAfter
// before now, i.e. its streak is still alive.
func (t *tracked) recent(now time.Time) bool {
	return now.Sub(t.last) <= t.zone.cfg.EnterAfter
}

// stronger reports whether a reads the tag more than margin dB stronger
// than b. Without RSSI on both sides nothing is stronger.
func stronger(a, b *tracked, margin float64) bool {
	return a.known && b.known && a.ewma > b.ewma+margin
}

// rssiOf returns the read's RSSI, or 0 (unknown) for values no reader
// reports (NaN, infinities, positive dBm).
func rssiOf(r *TagRead) float64 {
	v := r.RSSI
	if math.IsNaN(v) || v > 0 || v < -200 {
		return 0
	}
	return v
}

func (z *zoneState) pushFront(t *tracked) {
	t.prev, t.next = nil, z.head
	if z.head != nil {
		z.head.prev = t
	}
	z.head = t
	if z.tail == nil {
		z.tail = t
	}
	z.n++
}

func (z *zoneState) unlink(t *tracked) {
	if t.prev != nil {
		t.prev.next = t.next
	} else {
		z.head = t.next
	}
	if t.next != nil {
		t.next.prev = t.prev
	} else {
		z.tail = t.prev
	}
	t.prev, t.next = nil, nil
	z.n--
}

func (z *zoneState) touch(t *tracked) {
	if z.head == t {
		return
	}
	z.unlink(t)
	z.pushFront(t)
}
