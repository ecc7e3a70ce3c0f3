package hub

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/omnisync/omnisync/cloud/internal/custsync"
	"github.com/omnisync/omnisync/cloud/internal/store"
	"github.com/omnisync/omnisync/shared/syncproto"
)

// The customer books (store) as the stores' customer protocol (custsync)
// and the automation (consent at send time) see them. The store keeps its
// own types and sentinels; these adapters translate, so neither package
// imports the other.

// customerBooks serves custsync.Cards and custsync.Erasures from the store.
type customerBooks struct{ st *store.Store }

func (b customerBooks) CustomerCard(ctx context.Context, st string, ids map[string]string) (custsync.Card, error) {
	c, err := b.st.CustomerCard(ctx, st, ids)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return custsync.Card{}, fmt.Errorf("%w: %v", custsync.ErrNotFound, err)
	case errors.Is(err, store.ErrInvalid):
		return custsync.Card{}, fmt.Errorf("%w: %v", custsync.ErrInvalid, err)
	case err != nil:
		return custsync.Card{}, err
	}
	card := custsync.Card{
		Customer: c.Customer, FirstName: c.FirstName, Tier: c.Tier,
		Consent: make(map[string]bool, len(c.Consent)), Recent: []syncproto.Purchase{},
		AsOfMS: time.Now().UnixMilli(),
	}
	for _, f := range c.Consent {
		card.Consent[f.Purpose] = f.Allowed
	}
	for _, p := range c.Purchases {
		card.Recent = append(card.Recent, syncproto.Purchase{
			AtMS: p.At.UnixMilli(), Store: p.Store, Channel: p.Channel, Items: p.Items, TotalMinor: p.Amount,
		})
	}
	return card, nil
}

func (b customerBooks) StoresWithPendingErasures(ctx context.Context) ([]string, error) {
	return b.st.StoresWithPendingErasures(ctx)
}

func (b customerBooks) PendingErasures(ctx context.Context, st string) ([]custsync.Erasure, error) {
	ns, err := b.st.PendingErasureNotices(ctx, st)
	if err != nil {
		return nil, err
	}
	out := make([]custsync.Erasure, len(ns))
	for i, n := range ns {
		out[i] = erasureOf(n)
	}
	return out, nil
}

func (b customerBooks) StoreErasure(ctx context.Context, st, id string) (custsync.Erasure, error) {
	n, err := b.st.StoreErasure(ctx, st, id)
	if errors.Is(err, store.ErrNotFound) {
		return custsync.Erasure{}, fmt.Errorf("%w: %v", custsync.ErrNotFound, err)
	}
	if err != nil {
		return custsync.Erasure{}, err
	}
	return erasureOf(n), nil
}

func (b customerBooks) AckErasure(ctx context.Context, st, id string, at time.Time) error {
	if _, err := b.st.StoreErasure(ctx, st, id); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("%w: %v", custsync.ErrNotFound, err)
		}
		return err
	}
	return b.st.AckErasure(ctx, st, id, at)
}

func erasureOf(n store.ErasureNotice) custsync.Erasure {
	return custsync.Erasure{ID: n.ID, Customer: n.Customer, Requested: n.Requested, Digests: n.Digests}
}

// storeConsent answers the automation's consent question from the books,
// at the moment a message is sent.
type storeConsent struct{ st *store.Store }

func (c storeConsent) May(ctx context.Context, customer, purpose, channel string, at time.Time) (bool, error) {
	return c.st.ConsentMay(ctx, customer, purpose, channel, at)
}
