// Package hlc implements the hybrid logical clock that stamps every event.
//
// A Timestamp is wall-clock milliseconds plus a logical counter. A Clock never
// hands out a timestamp that is not greater than the last one it handed out or
// observed, even if the machine's wall clock jumps backwards (an NTP step, a
// dead RTC battery after a power cut): it keeps the old wall time, bumps the
// counter, and reports the skew so operators can see it. This total order is
// what the hub's reconciliation rules ("the latest count by HLC wins") rely
// on, so ties between devices are broken by the caller (by event id), never
// by the clock.
//
// Sharp edge: a clock seeded from a wall time far in the future keeps that
// future until real time catches up; Observe refuses remote stamps more than
// MaxForwardJump ahead to bound the damage a bad peer can do.
package hlc

import (
	"errors"
	"fmt"
	"sync"
	"time"
)

// MaxForwardJump bounds how far ahead of local wall time an observed remote
// timestamp may be before Observe rejects it.
const MaxForwardJump = 24 * time.Hour

// ErrTooFarAhead is returned by Observe for a remote stamp beyond MaxForwardJump.
var ErrTooFarAhead = errors.New("hlc: remote timestamp too far ahead of local clock")

// Timestamp is a hybrid logical clock reading.
type Timestamp struct {
	// Wall is Unix time in milliseconds.
	Wall int64 `json:"wall"`
	// Logical orders stamps that share a Wall value.
	Logical uint32 `json:"logical"`
}

// logicalBits is how many low bits Pack gives the logical counter.
const logicalBits = 16

// Compare returns -1, 0 or +1 as t is before, equal to or after u.
func (t Timestamp) Compare(u Timestamp) int {
	switch {
	case t.Wall < u.Wall:
		return -1
	case t.Wall > u.Wall:
		return 1
	case t.Logical < u.Logical:
		return -1
	case t.Logical > u.Logical:
		return 1
	}
	return 0
}

// Before reports whether t is strictly before u.
func (t Timestamp) Before(u Timestamp) bool { return t.Compare(u) < 0 }

// IsZero reports whether t is the zero stamp.
func (t Timestamp) IsZero() bool { return t.Wall == 0 && t.Logical == 0 }

// Time returns the wall part as a time.Time.
func (t Timestamp) Time() time.Time { return time.UnixMilli(t.Wall) }

// Pack encodes t into one int64 that sorts like Compare, for SQL columns and
// bbolt keys. Logical counters above 2^16-1 are saturated; a Clock never
// produces them (it advances Wall instead).
func (t Timestamp) Pack() int64 {
	l := t.Logical
	if l > 1<<logicalBits-1 {
		l = 1<<logicalBits - 1
	}
	return t.Wall<<logicalBits | int64(l)
}

// Unpack is the inverse of Pack.
func Unpack(v int64) Timestamp {
	return Timestamp{Wall: v >> logicalBits, Logical: uint32(v & (1<<logicalBits - 1))}
}

// String renders t as "wall.logical", e.g. "1732372345123.0002".
func (t Timestamp) String() string { return fmt.Sprintf("%d.%04d", t.Wall, t.Logical) }

// Clock hands out strictly increasing timestamps. It is safe for concurrent use.
type Clock struct {
	now func() time.Time

	mu   sync.Mutex
	last Timestamp
	skew time.Duration // how far the wall clock was behind last, at the last reading
}

// New returns a Clock reading wall time from now (time.Now when nil) that
// will never go below floor (typically the last stamp persisted before a
// restart).
func New(now func() time.Time, floor Timestamp) *Clock {
	if now == nil {
		now = time.Now
	}
	return &Clock{now: now, last: floor}
}

// Now returns a timestamp greater than every one returned or observed before.
func (c *Clock) Now() Timestamp {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.tickLocked(c.now().UnixMilli())
}

func (c *Clock) tickLocked(wall int64) Timestamp {
	if wall > c.last.Wall {
		c.last = Timestamp{Wall: wall}
		c.skew = 0
		return c.last
	}
	c.skew = time.Duration(c.last.Wall-wall) * time.Millisecond
	if c.last.Logical >= 1<<logicalBits-1 {
		// Counter exhausted within one millisecond: borrow the next
		// millisecond rather than overflow the packed form.
		c.last = Timestamp{Wall: c.last.Wall + 1}
		return c.last
	}
	c.last.Logical++
	return c.last
}

// Observe merges a timestamp seen from elsewhere (the hub's time, another
// device's event) so later local stamps order after it.
func (c *Clock) Observe(remote Timestamp) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	wall := c.now().UnixMilli()
	if remote.Wall-wall > MaxForwardJump.Milliseconds() {
		return fmt.Errorf("%w: remote %s, local wall %d", ErrTooFarAhead, remote, wall)
	}
	if remote.Compare(c.last) > 0 {
		c.last = remote
	}
	return nil
}

// Last returns the greatest timestamp handed out or observed so far.
func (c *Clock) Last() Timestamp {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.last
}

// Skew reports how far the wall clock was behind the clock's own time at the
// last reading: non-zero means the wall clock moved backwards (or a remote
// stamp from the future was observed) and stamps are being held up.
func (c *Clock) Skew() time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.skew
}
