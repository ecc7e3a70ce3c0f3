package inventory

import (
	"errors"
	"fmt"

	"github.com/omnisync/omnisync/shared/events"
)

// ErrForeignLocation is returned (wrapped) for an event whose body moves
// stock or closes a reservation at a location its origin may not speak
// for. Such events belong in the dead letters.
var ErrForeignLocation = errors.New("inventory: a store speaks only for its own location")

// DefaultOnline is the online channel's location (and store) unless the
// hub is configured otherwise.
const DefaultOnline = "online"

// HQ is the origin store of the events HQ's operators cause through the
// hub (acting on a conflict). It is fixed, so every replica agrees on it,
// and reserved: no store may be provisioned under it.
const HQ = "_hq"

// Rules are the inventory rules of one chain: the pure functions of this
// package, with what they need to know of the chain. Every hub replica
// must use the same Rules (the store keeps them in its shared settings).
type Rules struct {
	// Online is the online channel: the web shop's location and the
	// origin store its events come from.
	Online string
}

// Effect decodes env into its effect (EffectOf) and checks that env's
// origin may have it, which is the part of "a store speaks only for
// itself" a body alone decides:
//
//   - sale, return, receipt, adjust, count, transfer_out and transfer_in
//     move stock at the origin store's own location only (a transfer's
//     counterpart, its to or from, may name any location: it moves
//     nothing there);
//   - the online location is the online channel's own: no store moves
//     stock there (the rule above), and only the web channel's
//     credentials, minted on purpose (natsacct.MintOptions.WebChannel),
//     send as its origin;
//   - fulfil takes stock off at the origin store's location: only the
//     store handing the order over fulfils it. The online channel may
//     fulfil at any location: a web order collected at a store, recorded
//     by the web shop, takes the goods off that store's shelf;
//   - release names the origin store's location, or comes from the online
//     channel, which may release any order;
//   - reserve may name any location: a till may take an order for
//     collection at another store (endless aisle), the web shop for any.
//   - HQ (origin store HQ) speaks for the chain: it may move stock
//     between stores by transfer_out and transfer_in at any location, and
//     release any order, like the online channel; it sells, receives,
//     counts and fulfils nothing.
//
// Whether a release or fulfil closes the reservation it names is the
// reservation's own rule (Reservation.Apply): only one naming the
// reservation's location, or a release from the online channel or HQ,
// counts. A close that does not count is kept and changes nothing (a
// store's fulfil still takes the stock off the shelf it names): it is not
// dead-lettered, because whether it counts depends on the reservation's
// newest reserve, which may arrive later and move the reservation, and
// the books must not depend on the order events arrive in. Errors wrap
// ErrInvalidBody or ErrForeignLocation.
func (r Rules) Effect(env events.Envelope) (Effect, error) {
	eff, err := EffectOf(env)
	if err != nil {
		return eff, err
	}
	origin := env.Origin.Store
	hq := origin == HQ
	web := r.Online != "" && origin == r.Online
	online := web || hq
	if hq && len(eff.Moves) > 0 && env.Kind != events.KindTransferOut && env.Kind != events.KindTransferIn {
		return Effect{}, fmt.Errorf("%w: HQ may not send a %s", ErrForeignLocation, env.Kind)
	}
	for _, m := range eff.Moves {
		if m.Location != origin && !hq && !(web && env.Kind == events.KindFulfil) {
			return Effect{}, foreign(env.Kind, origin, m.Location)
		}
	}
	if op := eff.Reservation; op != nil {
		op.Online = online
		if op.Kind == events.KindRelease && op.Location != origin && !online {
			return Effect{}, foreign(env.Kind, origin, op.Location)
		}
	}
	return eff, nil
}

func foreign(k events.Kind, origin, loc string) error {
	return fmt.Errorf("%w: store %s may not send a %s at location %s", ErrForeignLocation, origin, k, loc)
}
