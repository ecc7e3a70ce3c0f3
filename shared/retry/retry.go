// Package retry is how omnisync waits before trying again: one jittered
// exponential backoff for every retry loop of the agent and the hub
// (reopening a serial device, republishing events, following a bucket, a
// till resending a sale), and waiting for a NATS connection to come back.
//
// Why jitter: a fleet of stores that lost the same server at the same moment
// would otherwise retry in step and arrive together. Each wait is drawn at
// random from the upper half of the current step ("equal jitter"), so the
// retries spread out while none comes sooner than half the step: a failing
// peer is never hammered.
//
// Every wait ends as soon as its context does. A Backoff is plain state for
// one retry loop (one goroutine); its random source can be injected, so a
// test knows every wait in advance.
package retry

import (
	"context"
	"math/rand/v2"
	"time"

	"github.com/nats-io/nats.go"
)

// WaitConnected returns once nc is connected, or ctx's error when it ends
// first, or nats.ErrConnectionClosed for a connection that was closed:
// JetStream requests made while it reconnects would only time out.
func WaitConnected(ctx context.Context, nc *nats.Conn) error {
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for !nc.IsConnected() {
		if nc.IsClosed() {
			return nats.ErrConnectionClosed
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
	return nil
}

// Backoff is the wait before each new attempt: the step starts at Min and
// doubles after every wait up to Max; each wait is drawn from the upper half
// of the current step. Reset starts over from Min once an attempt made
// progress. The zero value waits up to a millisecond every time: set Min
// and Max.
type Backoff struct {
	// Min is the first step (a millisecond if not positive, so a loop never
	// spins); Max the largest (Min if below it).
	Min, Max time.Duration
	// Rand draws the jitter; nil uses math/rand/v2's global source. Tests
	// set a seeded one.
	Rand *rand.Rand

	cur time.Duration // 0: Min (after Reset or before the first wait)
}

func (b *Backoff) bounds() (lo, hi time.Duration) {
	lo = b.Min
	if lo <= 0 {
		lo = time.Millisecond
	}
	return lo, max(b.Max, lo)
}

// Current is the step the next wait is drawn from.
func (b *Backoff) Current() time.Duration {
	lo, hi := b.bounds()
	return min(max(b.cur, lo), hi)
}

// Next returns the next wait, in [Current()/2, Current()], and doubles the
// step up to Max.
func (b *Backoff) Next() time.Duration {
	cur := b.Current()
	_, hi := b.bounds()
	if cur > hi/2 {
		b.cur = hi
	} else {
		b.cur = 2 * cur
	}
	half := cur / 2
	var jitter time.Duration
	if b.Rand != nil {
		jitter = time.Duration(b.Rand.Int64N(int64(half) + 1))
	} else {
		jitter = rand.N(half + 1)
	}
	return cur - half + jitter
}

// Reset starts over from Min (the last attempt made progress).
func (b *Backoff) Reset() { b.cur = 0 }

// Wait sleeps for the next wait (see Next). It returns ctx's error if ctx
// ends first, at once.
func (b *Backoff) Wait(ctx context.Context) error {
	return Sleep(ctx, b.Next())
}

// Sleep waits d, or returns ctx's error as soon as ctx ends.
func Sleep(ctx context.Context, d time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
