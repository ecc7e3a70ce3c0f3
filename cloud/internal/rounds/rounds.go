// Package rounds runs a hub replica's background job round after round:
// the next round at once while a round reports more work, after a poll
// interval or a Notify when it found none, and after a growing backoff
// when it failed. The basket folder and the stream eraser share it, so
// stopping, waking and backing off work the same way in both.
package rounds

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/omnisync/omnisync/shared/retry"
)

// DefaultPoll is how often an idle loop looks for work without a Notify.
const DefaultPoll = 2 * time.Second

// DefaultBackoff paces retries after a failed round.
var DefaultBackoff = retry.Backoff{Min: 100 * time.Millisecond, Max: 30 * time.Second}

// ErrNotStopped is Close's error when Run did not return in time.
var ErrNotStopped = errors.New("rounds: Run did not stop")

// Loop runs one job's rounds until Close or its context ends.
type Loop struct {
	name     string
	poll     time.Duration
	backoff  retry.Backoff
	log      *slog.Logger
	stop     chan struct{}
	stopOnce sync.Once
	done     chan struct{}
	kick     chan struct{}
}

// New returns a loop named name (in its logs and errors) that polls every
// poll when idle [DefaultPoll] and backs off by backoff after a failed
// round [DefaultBackoff when its Min is 0].
func New(name string, poll time.Duration, backoff retry.Backoff, log *slog.Logger) *Loop {
	if poll <= 0 {
		poll = DefaultPoll
	}
	if backoff.Min <= 0 {
		backoff = DefaultBackoff
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Loop{name: name, poll: poll, backoff: backoff, log: log,
		stop: make(chan struct{}), done: make(chan struct{}), kick: make(chan struct{}, 1)}
}

// Run calls round until ctx ends or Close is called, and returns nil then;
// what names a round's work in the log of a failure. round reports
// whether more work is waiting. Call Run once.
func (l *Loop) Run(ctx context.Context, what string, round func(ctx context.Context) (more bool, err error)) error {
	defer close(l.done)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-l.stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	for ctx.Err() == nil {
		more, err := round(ctx)
		switch {
		case ctx.Err() != nil:
		case err != nil:
			l.log.Warn(l.name+": "+what+" failed, retrying", "backoff", l.backoff.Current(), "err", err)
			_ = l.backoff.Wait(ctx)
		case more:
			l.backoff.Reset()
		default:
			l.backoff.Reset()
			t := time.NewTimer(l.poll)
			select {
			case <-ctx.Done():
			case <-l.kick:
			case <-t.C:
			}
			t.Stop()
		}
	}
	return nil
}

// Notify wakes Run before its next poll: work may be waiting. It never
// blocks.
func (l *Loop) Notify() {
	select {
	case l.kick <- struct{}{}:
	default:
	}
}

// Close stops Run and waits for it to return. Safe to call more than
// once, and before or without Run only if Run is never called afterwards.
func (l *Loop) Close() error {
	l.stopOnce.Do(func() { close(l.stop) })
	select {
	case <-l.done:
	case <-time.After(10 * time.Second):
		return fmt.Errorf("%s: %w", l.name, ErrNotStopped)
	}
	return nil
}
