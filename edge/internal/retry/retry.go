// Package retry holds what the agent's followers of the hub's buckets
// (downlink, pickups) share about starting sessions again: waiting for the
// NATS connection to come back, and a jittered exponential backoff so that
// a fleet of stores reconnecting to the same server spreads out instead of
// arriving in step.
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

// Backoff doubles from Min to Max; each wait is drawn from its upper half.
type Backoff struct {
	Min, Max time.Duration
	cur      time.Duration
}

// Reset starts over from Min (a session made progress).
func (b *Backoff) Reset() { b.cur = 0 }

// Current is the backoff the next Wait draws from.
func (b *Backoff) Current() time.Duration { return max(b.cur, b.Min) }

// Wait sleeps for the current backoff, jittered, then doubles it. It
// returns false if ctx ended first.
func (b *Backoff) Wait(ctx context.Context) bool {
	cur := b.Current()
	t := time.NewTimer(cur/2 + rand.N(cur/2+1))
	defer t.Stop()
	b.cur = min(2*cur, max(b.Max, b.Min))
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
