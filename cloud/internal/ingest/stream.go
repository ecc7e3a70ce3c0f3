package ingest

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/omnisync/omnisync/shared/subjects"
)

// StreamOptions shapes the events stream.
type StreamOptions struct {
	// Replicas: 1 for one server, 3 for a production cluster (a PubAck from
	// an R3 stream is durable on its own).
	Replicas int
	// MaxAge keeps processed events around for audits and replays; the hub's
	// database is the system of record, so this only bounds disk.
	MaxAge time.Duration
	// DuplicateWindow is JetStream's own Nats-Msg-Id dedup window. The hub
	// deduplicates exactly by (device, epoch, seq) anyway; the window just
	// saves work on quick republishes.
	DuplicateWindow time.Duration
}

// EnsureStream creates or updates the events stream and the hub's durable
// consumer. Safe to call from every replica at every start.
func EnsureStream(ctx context.Context, js jetstream.JetStream, o StreamOptions) (jetstream.Consumer, error) {
	if o.Replicas <= 0 {
		o.Replicas = 1
	}
	if o.MaxAge <= 0 {
		o.MaxAge = 7 * 24 * time.Hour
	}
	if o.DuplicateWindow <= 0 {
		o.DuplicateWindow = 5 * time.Minute
	}
	cfg := jetstream.StreamConfig{
		Name:        subjects.StreamEvents,
		Description: "omnisync store events (uplink)",
		Subjects:    []string{subjects.EventsAll},
		// Limits, not work-queue, retention: events stay for MaxAge after the
		// hub applied them, so an operator can replay or audit them.
		Retention:  jetstream.LimitsPolicy,
		Storage:    jetstream.FileStorage,
		Replicas:   o.Replicas,
		MaxAge:     o.MaxAge,
		Duplicates: o.DuplicateWindow,
		Discard:    jetstream.DiscardOld,
		MaxMsgSize: 1 << 20,
		// Erasing a customer deletes their messages from the stream
		// (package streamerase): deletes must stay allowed. The server
		// never lifts DenyDelete once set, so on a stream created with
		// it this update fails and the hub does not start.
		DenyDelete: false,
	}
	if _, err := js.CreateOrUpdateStream(ctx, cfg); err != nil {
		return nil, fmt.Errorf("ingest: stream %s: %w", cfg.Name, err)
	}
	ccfg := jetstream.ConsumerConfig{
		Durable:       subjects.HubConsumer,
		Description:   "omnisync hub replicas (shared)",
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       10 * time.Second, // a batch applies in milliseconds; a dead replica's messages go to another within seconds
		MaxDeliver:    -1,               // never give up on an event: the hub dead-letters, not the broker
		MaxAckPending: 50_000,
		DeliverPolicy: jetstream.DeliverAllPolicy,
		FilterSubject: subjects.EventsAll,
		MaxWaiting:    512,
	}
	cons, err := js.CreateOrUpdateConsumer(ctx, subjects.StreamEvents, ccfg)
	if err != nil {
		return nil, fmt.Errorf("ingest: consumer %s: %w", ccfg.Durable, err)
	}
	return cons, nil
}

// ErrStopped is returned by Run after the consumer was stopped.
var ErrStopped = errors.New("ingest: stopped")
