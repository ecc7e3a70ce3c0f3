package runner

import (
	"context"

	"github.com/omnisync/omnisync/cloud/internal/automation"
	"github.com/omnisync/omnisync/cloud/internal/store"
)

// AssistSource is where fitting-room help requests come from and whether
// staff answered them: *store.Store.
type AssistSource interface {
	NewAssistRequests(ctx context.Context, limit int) ([]store.AssistRequest, error)
	MarkAssistsNotified(ctx context.Context, ids []string) error
	AssistAnswered(ctx context.Context, eventID string) (bool, error)
}

var _ AssistSource = (*store.Store)(nil)

// feedAssists hands new fitting-room help requests to the rules as
// fitting_room_unanswered events (sent after the rule's delay, 3 minutes
// by default, and only if still unanswered then: answeredRecheck).
func (r *Runner) feedAssists(ctx context.Context) error {
	src := r.cfg.Assists
	if src == nil {
		return nil
	}
	for {
		reqs, err := src.NewAssistRequests(ctx, 500)
		if err != nil || len(reqs) == 0 {
			return err
		}
		evs := make([]automation.Event, len(reqs))
		ids := make([]string, len(reqs))
		for i, a := range reqs {
			ids[i] = a.EventID
			evs[i] = automation.Event{ID: "assist:" + a.EventID, Trigger: automation.FittingRoomUnanswered, At: a.At, Store: a.Store, SKU: a.SKU,
				Attrs: map[string]string{"request": a.EventID, "zone": a.Zone, "from": a.From, "device": a.Device}}
		}
		if _, err := r.Handle(ctx, evs...); err != nil {
			return err
		}
		if err := src.MarkAssistsNotified(ctx, ids); err != nil {
			return err
		}
		if len(reqs) < 500 {
			return nil
		}
	}
}

// answeredRecheck holds while the request is still unanswered.
func (r *Runner) answeredRecheck(ctx context.Context, ev automation.Event) (bool, error) {
	answered, err := r.cfg.Assists.AssistAnswered(ctx, ev.Attrs["request"])
	return !answered, err
}
