package hub

import (
	"context"
	"encoding/json"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/omnisync/omnisync/cloud/internal/store"
	"github.com/omnisync/omnisync/shared/downsync"
	"github.com/omnisync/omnisync/shared/retry"
)

// surveyPublisher puts HQ's survey definitions into the down-sync bucket
// (downsync.SurveyKey), so a kiosk or a fitting-room mirror offers the
// current survey with its uplink down: every definition when the hub
// starts, and again each time HQ saves one (Poke). A failed round is
// retried with backoff; the latest poke wins, so a burst of saves costs
// one round. Publishing every definition is idempotent: a store keeps
// the highest version it saw.
type surveyPublisher struct {
	js   jetstream.JetStream
	st   *store.Store
	log  *slog.Logger
	poke chan struct{}
}

func newSurveyPublisher(js jetstream.JetStream, st *store.Store, log *slog.Logger) *surveyPublisher {
	return &surveyPublisher{js: js, st: st, log: log, poke: make(chan struct{}, 1)}
}

// Poke asks for a round soon; it never blocks.
func (p *surveyPublisher) Poke() {
	select {
	case p.poke <- struct{}{}:
	default:
	}
}

// Run publishes at start and on every poke until ctx ends.
func (p *surveyPublisher) Run(ctx context.Context) error {
	p.Poke()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-p.poke:
		}
		b := retry.Backoff{Min: 500 * time.Millisecond, Max: 10 * time.Second}
		for {
			err := p.publishAll(ctx)
			if err == nil || ctx.Err() != nil {
				break
			}
			p.log.Warn("publishing survey definitions; retrying", "err", err)
			if b.Wait(ctx) != nil {
				return nil
			}
		}
	}
}

func (p *surveyPublisher) publishAll(ctx context.Context) error {
	ds, err := p.st.Surveys(ctx)
	if err != nil {
		return err
	}
	for _, d := range ds {
		b, err := json.Marshal(d.Doc())
		if err != nil {
			return err
		}
		pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		_, err = p.js.Publish(pctx, downsync.Subject(downsync.SurveyKey(d.ID)), b)
		cancel()
		if err != nil {
			return err
		}
	}
	return nil
}
