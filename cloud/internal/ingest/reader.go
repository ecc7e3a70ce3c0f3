package ingest

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Causes of a recovered stream failure, as passed to Metrics.Recovered.
const (
	// CauseNoHeartbeat: the pull request's idle heartbeats stopped arriving.
	// The usual reason is the hub itself: stopped (SIGSTOP, a VM paused),
	// a long GC pause or a machine too busy to run it for a few seconds.
	// The server may also have lost the pull request (a restart, a
	// leadership change, a consumer that no longer exists).
	CauseNoHeartbeat = "no_heartbeat"
	// CauseConsumerGone: the durable consumer (or its stream) was deleted
	// or is not found; it is created again with Options.Reopen.
	CauseConsumerGone = "consumer_gone"
	// CauseIteratorClosed: the message iterator closed without being asked
	// to while the connection is still usable.
	CauseIteratorClosed = "iterator_closed"
	// CauseOther: any other error the iterator reported.
	CauseOther = "other"
)

// terminal reports whether err from the message iterator leaves nothing to
// recover with: the NATS connection is closed for good (the hub never
// gives up reconnecting, so only shutting down closes it), or the client
// or the server refuses our pull requests as malformed (a programming or
// configuration error that a retry would only repeat). Everything else
// the iterator reports is recoverable; see recoverCause.
func terminal(err error) bool {
	return errors.Is(err, jetstream.ErrConnectionClosed) || errors.Is(err, nats.ErrConnectionClosed) ||
		errors.Is(err, jetstream.ErrBadRequest) || errors.Is(err, jetstream.ErrInvalidOption)
}

// recoverCause names a recoverable iterator error.
func recoverCause(err error) string {
	switch {
	case errors.Is(err, jetstream.ErrNoHeartbeat):
		return CauseNoHeartbeat
	case errors.Is(err, jetstream.ErrConsumerDeleted), errors.Is(err, jetstream.ErrConsumerNotFound),
		errors.Is(err, jetstream.ErrStreamNotFound):
		return CauseConsumerGone
	case errors.Is(err, jetstream.ErrMsgIteratorClosed):
		return CauseIteratorClosed
	}
	return CauseOther
}

// pullOptions shape the pull requests. The buffer is bounded in bytes, not
// messages: a batch message from a catching-up store carries up to
// events.MaxBatchEvents events. Each request expires after 5 s, and the
// server sends an idle heartbeat every 2.5 s while it waits; two missed
// ones (5 s without a word) end a Next with ErrNoHeartbeat.
func pullOptions() []jetstream.PullMessagesOpt {
	return []jetstream.PullMessagesOpt{
		jetstream.PullMaxBytes(32 << 20),
		jetstream.PullExpiry(5 * time.Second),
	}
}

// read feeds msgs from the durable consumer until ctx ends (nil) or the
// stream fails in a way nothing can recover from (see terminal).
//
// A failure that can be recovered from is logged, counted
// (Metrics.Recovered) and recovered from, never passed up: the hub must
// not exit, taking every store's sync with it, because it was paused for a
// few seconds or NATS lost the consumer. When the server says the
// consumer is gone, or pulls go unanswered (missed heartbeats), the
// consumer is looked up; if the server no longer has it, it is created
// again (Options.Reopen) and read from at once, or, without Reopen,
// waited for until another replica has created it. Otherwise, after a
// first missed heartbeat the iterator is kept: the client has already
// forgotten its outstanding pull and asks again on the next Next, and
// the messages it had buffered stay valid. If heartbeats are missed again
// before any message arrives, or the iterator itself failed, it is
// replaced after a backoff.
//
// Messages already handed over to the apply loop are unaffected either
// way: their acknowledgements go by reply subject, and a message whose
// acknowledgement arrives too late is redelivered and absorbed by dedup.
func (c *Consumer) read(ctx context.Context, msgs chan<- jetstream.Msg) error {
	cons := c.o.Consumer
	var it jetstream.MessagesContext
	defer func() {
		if it != nil {
			it.Stop()
		}
	}()
	// failures counts recoverable failures since the last message; it
	// drives the backoff.
	failures := 0
	bo := newBackoff()
	for {
		if it == nil {
			var err error
			if it, err = cons.Messages(pullOptions()...); err != nil {
				it = nil
				if terminal(err) {
					return fmt.Errorf("ingest: messages: %w", err)
				}
				failures++
				c.recovered(recoverCause(err), err, failures)
				if bo.Wait(ctx) != nil {
					return nil
				}
				continue
			}
		}
		m, err := it.Next(jetstream.NextContext(ctx))
		if err == nil {
			failures = 0
			bo.Reset()
			select {
			case msgs <- m:
				continue
			case <-ctx.Done():
				return nil
			}
		}
		if ctx.Err() != nil {
			return nil
		}
		if terminal(err) {
			return fmt.Errorf("ingest: %w", err)
		}
		failures++
		cause := recoverCause(err)
		c.recovered(cause, err, failures)
		if cause == CauseNoHeartbeat || cause == CauseConsumerGone {
			// Unanswered pulls are also what a consumer the server no
			// longer has looks like.
			if again := c.consumerAgain(ctx, cons); again != cons {
				cons = again
				it.Stop()
				it = nil
				continue
			}
		}
		if cause == CauseNoHeartbeat && failures == 1 {
			continue // the same iterator pulls again
		}
		it.Stop()
		it = nil
		if bo.Wait(ctx) != nil {
			return nil
		}
	}
}

// consumerAgain returns cons if the server still knows it, or the
// consumer Options.Reopen creates when it does not. When in doubt (the
// server does not answer, Reopen fails) it returns cons: the next failure
// brings the question back.
func (c *Consumer) consumerAgain(ctx context.Context, cons jetstream.Consumer) jetstream.Consumer {
	ictx, cancel := context.WithTimeout(ctx, 5*time.Second)
	_, lost := cons.Info(ictx)
	cancel()
	if lost == nil || !(errors.Is(lost, jetstream.ErrConsumerNotFound) || errors.Is(lost, jetstream.ErrStreamNotFound)) {
		return cons
	}
	if c.o.Reopen == nil {
		c.log.Warn("events consumer not found; waiting for it to be created again", "err", lost)
		return cons
	}
	rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	again, err := c.o.Reopen(rctx)
	if err != nil {
		c.log.Error("events consumer not found, and creating it again failed", "lost", lost, "err", err)
		return cons
	}
	c.log.Warn("events consumer was lost; created it again", "lost", lost)
	return again
}

// recovered logs and counts one recovered failure.
func (c *Consumer) recovered(cause string, err error, failures int) {
	c.log.Warn("event stream interrupted; resuming", "cause", cause, "err", err, "consecutive", failures)
	if c.o.Metrics.Recovered != nil {
		c.o.Metrics.Recovered(cause)
	}
}
