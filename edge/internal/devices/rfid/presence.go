package rfid

import "time"

// Change says whether an item arrived in or left a zone.
type Change uint8

// Presence changes.
const (
	Enter Change = iota + 1
	Leave
)

func (c Change) String() string {
	switch c {
	case Enter:
		return "enter"
	case Leave:
		return "leave"
	}
	return "change(?)"
}

// Cause says why an item left a zone.
type Cause string

// Leave causes.
const (
	// CauseGone: not read in the zone for LeaveAfter.
	CauseGone Cause = "gone"
	// CauseMoved: another zone now reads it clearly stronger; an Enter
	// for that zone follows.
	CauseMoved Cause = "moved"
	// CauseEvicted: dropped to keep the zone within MaxTagsPerZone.
	CauseEvicted Cause = "evicted"
)

// Presence is one change in what a zone holds.
//
// Times are observed read times, not decision times: an Enter's At is the
// first read of the streak that made the item present (the decision comes
// EnterAfter later), a Leave's At is the last read in the zone (the
// decision comes LeaveAfter later). So Dwell = Leave.At - Enter.At, and it
// is never negative.
type Presence struct {
	Change Change
	Zone   string
	// Reader and Antenna are those of the latest read in the zone.
	Reader  string
	Antenna int
	Item
	// RSSI is the strongest read in the zone (dBm) while the item was
	// tracked there; 0 when the reader reports none.
	RSSI float64
	At   time.Time
	// Dwell and Cause are set on Leave only.
	Dwell time.Duration
	Cause Cause
}

// Stay is an item present in a zone now.
type Stay struct {
	Zone string
	Item
	// Since is when it entered (its Enter's At), LastSeen its latest read
	// in the zone.
	Since, LastSeen time.Time
	Reads           uint64
	RSSI            float64
}
