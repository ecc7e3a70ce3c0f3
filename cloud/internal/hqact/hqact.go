// Package hqact carries out what HQ's operators decide on an oversell
// conflict: source the shortfall from another store as a transfer,
// re-source an order at risk (move its reservation to another location),
// or cancel it (release its reservation). Acting writes real events into
// the books through store.ApplyBatch, as a store's device would, with
// origin store inventory.HQ, whose rights inventory.Rules.Effect states
// (transfers between any stores, releasing any order, reserving anywhere).
//
// Guarantee: an action happens once. The store's claim
// (ClaimConflictAction) is the decision, keyed by the caller's action id
// and the conflict version the operator saw; the action's events carry
// the claim's row as their origin epoch (device store.HQActionDevice,
// seqs from 1), so writing them again (a double click, a retry after a
// crash between claim and write, another replica) is a duplicate the
// books drop. The conflict closes, resolved_by hq_action, in the
// transaction that applies the events.
//
// Plan is the pure part: what events an action on a conflict is.
package hqact

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"time"

	"github.com/omnisync/omnisync/cloud/internal/inventory"
	"github.com/omnisync/omnisync/cloud/internal/store"
	"github.com/omnisync/omnisync/shared/events"
	"github.com/omnisync/omnisync/shared/hlc"
	"github.com/omnisync/omnisync/shared/ids"
)

// The actions.
const (
	// ActTransfer sources the shortfall from another location: a
	// transfer_out there, to the conflict's location.
	ActTransfer = "transfer"
	// ActResource moves an order's reservation to another location: a
	// reserve of the same lines there.
	ActResource = "resource"
	// ActCancel cancels an order: a release of its reservation.
	ActCancel = "cancel"
)

// Errors callers branch on (besides store.ErrNotFound,
// store.ErrConflictClosed, store.ErrConflictStale and
// store.ErrConflictActed).
var (
	// ErrInvalid wraps a request that cannot be acted on as asked.
	ErrInvalid = errors.New("hqact: invalid action")
)

// Request is an operator's decision on a conflict.
type Request struct {
	ConflictID int64
	// Version is the conflict version the operator saw.
	Version int64
	// ActionID is the idempotency key: the same id acts once.
	ActionID string
	Action   string
	// From is the source location of a transfer; Qty its quantity
	// (default: the shortfall, at most what From has available).
	From string
	Qty  int64
	// Reservation is the order to re-source or cancel; To the location a
	// re-sourced order moves to.
	Reservation string
	To          string
	// Actor is the operator, recorded with the action.
	Actor string
}

// Draft is one event an action writes.
type Draft struct {
	Kind events.Kind     `json:"kind"`
	Body json.RawMessage `json:"body"`
}

// Facts are what Plan needs to know of the books.
type Facts struct {
	Conflict store.Conflict
	// ReservationAt and ReservationLines are the reservation the request
	// names (active), when it names one.
	ReservationAt    string
	ReservationLines []events.Line
}

// Plan returns the events of r on the conflict in f. It checks that the
// action makes sense now: a transfer from a location the conflict
// suggests (one with available stock), an order among those at risk.
func Plan(f Facts, r Request) ([]Draft, error) {
	c := f.Conflict
	if c.Kind != inventory.KindOversell {
		return nil, fmt.Errorf("%w: conflict %d is not an oversell", ErrInvalid, c.ID)
	}
	switch r.Action {
	case ActTransfer:
		var avail int64 = -1
		for _, s := range c.Suggestions {
			if s.Location == r.From {
				avail = s.Available
			}
		}
		if avail <= 0 {
			return nil, fmt.Errorf("%w: %q has no available stock of %s to send", ErrInvalid, r.From, c.SKU)
		}
		qty := r.Qty
		if qty == 0 {
			qty = min(-c.Available, avail)
		}
		if qty <= 0 || qty > avail || qty > events.MaxDeltaQty {
			return nil, fmt.Errorf("%w: quantity %d (1 to %d available at %s)", ErrInvalid, qty, avail, r.From)
		}
		return drafts(events.KindTransferOut, events.StockMove{
			Location: r.From, Lines: []events.Line{{SKU: c.SKU, Qty: qty}},
			TransferID: "hq-" + r.ActionID, To: c.Location, Reason: fmt.Sprintf("conflict %d", c.ID),
		})
	case ActResource, ActCancel:
		if !slices.Contains(c.Reservations, r.Reservation) || len(f.ReservationLines) == 0 {
			return nil, fmt.Errorf("%w: order %q is not at risk in conflict %d", ErrInvalid, r.Reservation, c.ID)
		}
		if r.Action == ActCancel {
			return drafts(events.KindRelease, events.ReservationMove{ReservationID: r.Reservation, Location: f.ReservationAt})
		}
		if err := events.ValidToken(r.To); err != nil {
			return nil, fmt.Errorf("%w: to: %v", ErrInvalid, err)
		}
		if r.To == f.ReservationAt {
			return nil, fmt.Errorf("%w: order %s is held at %s already", ErrInvalid, r.Reservation, r.To)
		}
		return drafts(events.KindReserve, events.ReservationMove{ReservationID: r.Reservation, Location: r.To, Lines: f.ReservationLines})
	}
	return nil, fmt.Errorf("%w: action %q (transfer, resource or cancel)", ErrInvalid, r.Action)
}

func drafts(k events.Kind, body any) ([]Draft, error) {
	b, err := json.Marshal(body)
	if err != nil {
		return nil, err
	}
	if _, err := events.ValidateBody(k, b); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	return []Draft{{Kind: k, Body: b}}, nil
}

// Store is what the service needs of the books.
type Store interface {
	Conflict(ctx context.Context, id int64) (store.Conflict, error)
	ReservationLines(ctx context.Context, id string) (string, []events.Line, bool, error)
	ClaimConflictAction(ctx context.Context, a store.ConflictAction, version int64) (store.ConflictAction, bool, error)
	ApplyBatch(ctx context.Context, items []store.Item) (store.BatchResult, error)
}

var _ Store = (*store.Store)(nil)

// Options configures a Service.
type Options struct {
	Store Store
	// OnApplied, if set, is called after an action's events commit (the
	// hub tells the stores and the console).
	OnApplied func(store.BatchResult)
	Now       func() time.Time
	Logger    *slog.Logger
}

// Service acts on conflicts.
type Service struct {
	o     Options
	clock *hlc.Clock
}

// New makes a service.
func New(o Options) *Service {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return &Service{o: o, clock: hlc.New(o.Now, hlc.Timestamp{})}
}

// Result is what an action did.
type Result struct {
	Action store.ConflictAction
	// Repeated: the action id had acted already; nothing new happened.
	Repeated bool
	Events   []events.Envelope
}

// Act carries out r (see the package comment for its guarantees).
func (s *Service) Act(ctx context.Context, r Request) (Result, error) {
	if err := events.ValidToken(r.ActionID); err != nil {
		return Result{}, fmt.Errorf("%w: action_id: %v", ErrInvalid, err)
	}
	c, err := s.o.Store.Conflict(ctx, r.ConflictID)
	if err != nil {
		return Result{}, err
	}
	claim := store.ConflictAction{ConflictID: r.ConflictID, ActionID: r.ActionID, Action: r.Action, Actor: r.Actor}
	if c.ResolvedAt == nil {
		f := Facts{Conflict: c}
		if r.Reservation != "" {
			at, lines, ok, err := s.o.Store.ReservationLines(ctx, r.Reservation)
			if err != nil {
				return Result{}, err
			}
			if ok {
				f.ReservationAt, f.ReservationLines = at, lines
			}
		}
		ds, err := Plan(f, r)
		if err != nil {
			return Result{}, err
		}
		b, _ := json.Marshal(ds)
		claim.Detail = string(b)
	}
	a, _, err := s.o.Store.ClaimConflictAction(ctx, claim, r.Version)
	if err != nil {
		return Result{}, err
	}
	var ds []Draft
	if err := json.Unmarshal([]byte(a.Detail), &ds); err != nil {
		return Result{}, fmt.Errorf("hqact: action %s: %w", a.ActionID, err)
	}
	now := s.o.Now()
	items := make([]store.Item, len(ds))
	envs := make([]events.Envelope, len(ds))
	for i, d := range ds {
		envs[i] = events.Envelope{V: events.CurrentVersion, ID: ids.NewEventID(now),
			Origin: events.Origin{Store: inventory.HQ, Device: store.HQActionDevice, Epoch: uint64(a.ID), Seq: uint64(i + 1)},
			HLC:    s.clock.Now(), Kind: d.Kind, Data: d.Body}
		items[i] = store.Item{Env: envs[i]}
	}
	res, err := s.o.Store.ApplyBatch(ctx, items)
	if err != nil {
		return Result{}, fmt.Errorf("hqact: write action %s: %w", a.ActionID, err)
	}
	if res.DeadLettered > 0 {
		// The rules refused HQ's own events: a bug, said loudly.
		return Result{}, fmt.Errorf("hqact: action %s: %d events dead-lettered", a.ActionID, res.DeadLettered)
	}
	// Repeated when every event was written before (by this call's
	// twin); a claim found again whose events were never written (the
	// hub died between the two) is carried out now.
	repeated := res.Applied == 0 && res.Duplicates == len(items)
	s.o.Logger.Info("hq action", "conflict", a.ConflictID, "action", a.Action, "action_id", a.ActionID, "actor", a.Actor, "repeated", repeated)
	if s.o.OnApplied != nil && res.Applied > 0 {
		s.o.OnApplied(res)
	}
	return Result{Action: a, Repeated: repeated, Events: envs}, nil
}

// Proposal is an action the console and the API offer on an open
// conflict, ready to send back as a Request.
type Proposal struct {
	Action      string
	From        string
	Qty         int64
	Reservation string
	To          string
	// Label says it in words, for a button.
	Label string
}

// Proposals lists what HQ may do about open oversell conflict c: source
// the shortfall from each suggested location (the best first), move
// each order at risk to the best suggested location, or cancel it.
func Proposals(c store.Conflict) []Proposal {
	if c.ResolvedAt != nil || c.Kind != inventory.KindOversell {
		return nil
	}
	var out []Proposal
	short := max(-c.Available, 1)
	for _, s := range c.Suggestions {
		if s.Available <= 0 {
			continue
		}
		q := min(short, s.Available)
		out = append(out, Proposal{Action: ActTransfer, From: s.Location, Qty: q,
			Label: fmt.Sprintf("Source %d from %s as a transfer", q, s.Location)})
	}
	for _, id := range c.Reservations {
		if len(c.Suggestions) > 0 {
			to := c.Suggestions[0].Location
			out = append(out, Proposal{Action: ActResource, Reservation: id, To: to,
				Label: fmt.Sprintf("Re-source order %s to %s", id, to)})
		}
		out = append(out, Proposal{Action: ActCancel, Reservation: id, Label: fmt.Sprintf("Cancel order %s", id)})
	}
	return out
}

// ErrorStatus maps an error of Act to an HTTP status and a message for
// the operator; 0 for no error, 500 for one she cannot fix.
func ErrorStatus(err error) (int, string) {
	switch {
	case err == nil:
		return 0, ""
	case errors.Is(err, ErrInvalid), errors.Is(err, store.ErrInvalid):
		return http.StatusBadRequest, err.Error()
	case errors.Is(err, store.ErrNotFound):
		return http.StatusNotFound, "no such conflict"
	case errors.Is(err, store.ErrConflictClosed):
		return http.StatusConflict, "the conflict is resolved already"
	case errors.Is(err, store.ErrConflictStale):
		return http.StatusConflict, "the conflict changed since it was shown; look again"
	case errors.Is(err, store.ErrConflictActed):
		return http.StatusConflict, "another action was taken on this conflict"
	}
	return http.StatusInternalServerError, err.Error()
}
