package serialport

import (
	"math/rand/v2"
	"time"
)

// backoff is the wait before each reopen attempt: it doubles from min to max, with
// ±25% jitter so the readers of a store that lost power together do not all retry
// in lockstep. Only Run's goroutine uses it.
type backoff struct {
	min, max time.Duration
	cur      time.Duration // 0 until the first next() after a reset
}

// next returns the wait before the next attempt and grows the backoff.
func (b *backoff) next() time.Duration {
	if b.cur == 0 {
		b.cur = b.min
	} else {
		b.cur = min(2*b.cur, b.max)
	}
	d := b.cur
	if quarter := int64(d / 4); quarter > 0 {
		d += time.Duration(rand.Int64N(2*quarter+1) - quarter)
	}
	return min(d, b.max)
}

// reset starts the backoff again from min, after a stream that worked.
func (b *backoff) reset() { b.cur = 0 }
