// Package custsync is the hub's half of the customer protocol with the
// stores (shared/syncproto, shared/subjects.Cust): it answers a store's
// requests for the card of a shopper who identified at its till or kiosk,
// publishes every erasure to every store that must carry it out, tells a
// store's agent which of the identifiers in its outbox an erasure names,
// and records the store's receipt.
//
// Why a package of its own: what it reads and writes at the hub (cards,
// erasures, receipts) belongs to the customer store, which it reaches
// through two small interfaces (Cards, Erasures); what it owns is the
// NATS side, where a store's identity comes from the subject its
// credentials allow it to publish on, never from a body.
//
// Guarantees:
//   - A card request on omni.hub.cust.S.card is answered with what Cards
//     says about store S, whatever the body claims (a body naming a store
//     is refused as malformed). Cards decides who S may see (shoppers who
//     identified at S).
//   - Every erasure Erasures lists as pending for a store is written to
//     the erasure bucket under <store>.<erasure> within one round: at Run,
//     at every Notify (the hub's API calls it when HQ asks for an erasure)
//     and every Every. A key is created, never overwritten; a notice the
//     store already has costs one refused create after a hub restart and
//     nothing after that.
//   - A receipt is recorded through Erasures.AckErasure, which must be
//     idempotent (the first receipt counts); each device of a store sends
//     one, and a device that retries after a lost reply sends it again.
//   - Nothing personal is logged: stores, devices and erasure ids only.
//
// Sharp edge: an erasure counts as done at a store with its first
// receipt, from whichever of the store's devices finishes first; the
// store's other devices still read the notice (it stays in the bucket)
// and scrub their own outboxes, each when it is next online, and the hub
// scrubs whatever they send late on apply (erasure tombstones).
package custsync

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nats.go/micro"

	"github.com/omnisync/omnisync/cloud/internal/identity"
	"github.com/omnisync/omnisync/shared/downsync"
	"github.com/omnisync/omnisync/shared/retry"
	"github.com/omnisync/omnisync/shared/subjects"
	"github.com/omnisync/omnisync/shared/syncproto"
)

// Errors the interfaces return (wrapped) and callers branch on.
var (
	// ErrNotFound: no card for these identifiers at this store; no such
	// erasure for this store.
	ErrNotFound = errors.New("custsync: not found")
	// ErrInvalid: the identifiers of a card request cannot be read (a
	// value that is not an identifier of its type, an unknown type).
	ErrInvalid = errors.New("custsync: invalid identifiers")
	// ErrInvalidOption is returned by New.
	ErrInvalidOption = errors.New("custsync: invalid option")
)

// Card is what a till shows of a shopper (syncproto.Card).
type Card = syncproto.Card

// Erasure is one erasure as published to one store.
type Erasure struct {
	ID string
	// Customer is the erased master id.
	Customer string
	// Requested is when HQ asked.
	Requested time.Time
	// Digests are the keyed digests (identity.Digest.String: "v1:<hex>")
	// of every identifier the erasure removed: its tombstones. Match
	// compares the agent's identifiers against them.
	Digests []string
}

// Cards is what the service needs of the hub's customer store to answer
// card requests.
type Cards interface {
	// CustomerCard returns the card of the customer the identifiers (type
	// -> raw value as the till sent it) name, if that customer ever
	// identified at store; an error wrapping ErrNotFound otherwise (also
	// for an erased or unknown customer), ErrInvalid for identifiers that
	// cannot be normalised.
	CustomerCard(ctx context.Context, store string, identifiers map[string]string) (Card, error)
}

// Erasures is what the service needs of the hub's customer store to
// publish erasures and record receipts.
type Erasures interface {
	// StoresWithPendingErasures lists the stores at least one erasure is
	// pending at (no receipt yet).
	StoresWithPendingErasures(ctx context.Context) ([]string, error)
	// PendingErasures lists the erasures store has not acknowledged.
	PendingErasures(ctx context.Context, store string) ([]Erasure, error)
	// StoreErasure returns erasure id as published to store, pending or
	// acknowledged (a store's other devices still ask about it); an error
	// wrapping ErrNotFound when store was never asked to carry it out.
	StoreErasure(ctx context.Context, store, id string) (Erasure, error)
	// AckErasure records store's receipt for erasure id at at. It is
	// idempotent: the first receipt counts. ErrNotFound when store was
	// never asked to carry it out.
	AckErasure(ctx context.Context, store, id string, at time.Time) error
}

// Options configures a Service.
type Options struct {
	// Conn is the hub's connection (HUB account); the service does not
	// close it.
	Conn *nats.Conn
	// JS is the JetStream the buckets live in (the DOWN account's,
	// through natsacct.DownAPIPrefix, on a server set up by natsacct).
	JS jetstream.JetStream
	// Replicas of the erasure bucket when the service creates it.
	Replicas int
	Cards    Cards
	Erasures Erasures
	// Hasher computes identifier digests under every key version the
	// erasures' tombstones use.
	Hasher *identity.Hasher
	// Region returns the country (ISO 3166-1 alpha-2) phone numbers
	// without a country code are read in at store; nil reads them in no
	// country (only numbers with a '+' match).
	Region func(store string) string
	// Every is the period of the publishing round besides Notify (default
	// one minute).
	Every time.Duration
	// Workers bounds the requests handled at once and the stores
	// published to at once (default 64).
	Workers int
	// Timeout bounds each call to Cards or Erasures made for a request
	// (default 5s).
	Timeout time.Duration
	Logger  *slog.Logger
}

func (o *Options) defaults() error {
	if o.Conn == nil || o.JS == nil || o.Cards == nil || o.Erasures == nil || o.Hasher == nil {
		return fmt.Errorf("%w: Conn, JS, Cards, Erasures and Hasher are required", ErrInvalidOption)
	}
	if o.Region == nil {
		o.Region = func(string) string { return "" }
	}
	if o.Every <= 0 {
		o.Every = time.Minute
	}
	if o.Workers <= 0 {
		o.Workers = 64
	}
	if o.Timeout <= 0 {
		o.Timeout = 5 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return nil
}

// Stats counts what the service did.
type Stats struct {
	Cards, CardsNotFound   uint64
	Matches, Receipts      uint64
	NoticesPublished       uint64
	Rounds, RoundErrors    uint64
	RequestErrors, Refused uint64
	// LastRound is when the last publishing round finished.
	LastRound time.Time
}

// Service serves the stores' customer requests and publishes erasures.
type Service struct {
	o   Options
	log *slog.Logger
	sem chan struct{}

	poke chan struct{}

	mu        sync.Mutex
	published map[string]bool // erasure keys known to be in the bucket
	lastRound time.Time
	stopping  bool // Run is returning: no new request goroutines

	cards, notFound, matches, receipts, notices atomic.Uint64
	rounds, roundErrs, reqErrs, refused         atomic.Uint64

	runOnce   sync.Once
	stop      chan struct{}
	closeOnce sync.Once
	done      chan struct{}
}

// New checks the options; nothing runs until Run.
func New(o Options) (*Service, error) {
	if err := o.defaults(); err != nil {
		return nil, err
	}
	return &Service{
		o: o, log: o.Logger, sem: make(chan struct{}, o.Workers), poke: make(chan struct{}, 1),
		published: map[string]bool{}, stop: make(chan struct{}), done: make(chan struct{}),
	}, nil
}

// Notify asks for a publishing round now: an erasure was requested.
func (s *Service) Notify() {
	select {
	case s.poke <- struct{}{}:
	default:
	}
}

// Stats returns the counters.
func (s *Service) Stats() Stats {
	s.mu.Lock()
	last := s.lastRound
	s.mu.Unlock()
	return Stats{
		Cards: s.cards.Load(), CardsNotFound: s.notFound.Load(), Matches: s.matches.Load(), Receipts: s.receipts.Load(),
		NoticesPublished: s.notices.Load(), Rounds: s.rounds.Load(), RoundErrors: s.roundErrs.Load(),
		RequestErrors: s.reqErrs.Load(), Refused: s.refused.Load(), LastRound: last,
	}
}

// Run creates the erasure bucket (retrying until it can), serves the
// requests and publishes erasures until ctx ends or Close is called; it
// returns nil then. Run may be called once.
func (s *Service) Run(ctx context.Context) error {
	started := false
	s.runOnce.Do(func() { started = true })
	if !started {
		return errors.New("custsync: Run called twice")
	}
	defer close(s.done)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-s.stop:
			cancel()
		case <-ctx.Done():
		}
	}()

	back := retry.Backoff{Min: 250 * time.Millisecond, Max: 10 * time.Second}
	for {
		cctx, ccancel := context.WithTimeout(ctx, 10*time.Second)
		_, err := downsync.EnsureErasureBucket(cctx, s.o.JS, s.o.Replicas)
		ccancel()
		if err == nil {
			break
		}
		s.log.Warn("custsync: erasure bucket not ready; retrying", "err", err)
		if back.Wait(ctx) != nil {
			return nil
		}
	}

	svc, err := micro.AddService(s.o.Conn, micro.Config{
		Name: subjects.CustService, Version: "1.0.0",
		Description: "omnisync hub: customer cards for stores, erasure matches and receipts",
	})
	if err != nil {
		return fmt.Errorf("custsync: micro service: %w", err)
	}
	// On the way out: stop taking requests, then wait for those in
	// flight (defers run last first).
	var wg sync.WaitGroup
	defer wg.Wait()
	defer func() {
		s.mu.Lock()
		s.stopping = true
		s.mu.Unlock()
	}()
	defer func() { _ = svc.Stop() }()
	for op, h := range map[string]func(context.Context, string, []byte) any{
		subjects.CustCard: s.card, subjects.CustMatch: s.match, subjects.CustReceipt: s.receipt,
	} {
		handler := func(r micro.Request) { s.dispatch(ctx, &wg, r, op, h) }
		if err := svc.AddEndpoint(op, micro.HandlerFunc(handler), micro.WithEndpointSubject(subjects.CustAllOf(op))); err != nil {
			return fmt.Errorf("custsync: %s endpoint: %w", op, err)
		}
	}

	tick := time.NewTicker(s.o.Every)
	defer tick.Stop()
	for {
		if err := s.round(ctx); err != nil && ctx.Err() == nil {
			s.roundErrs.Add(1)
			s.log.Warn("custsync: publishing erasures", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		case <-s.poke:
		}
	}
}

// Close stops Run and waits for it (idempotent; safe when Run never ran).
func (s *Service) Close() error {
	s.closeOnce.Do(func() { close(s.stop) })
	started := true
	s.runOnce.Do(func() { started = false; close(s.done) })
	if started {
		<-s.done
	}
	return nil
}

// dispatch answers one request in a goroutine of its own (bounded by
// Workers): a subscription's handler runs one message at a time, and a
// card waits on the database.
func (s *Service) dispatch(ctx context.Context, wg *sync.WaitGroup, r micro.Request, op string, h func(context.Context, string, []byte) any) {
	store, gotOp, ok := subjects.ParseCust(r.Subject())
	if !ok || gotOp != op {
		s.refused.Add(1)
		_ = respond(r, syncproto.Reply{Error: "not a customer request subject", Code: syncproto.CodeInvalid})
		return
	}
	select {
	case s.sem <- struct{}{}:
	case <-ctx.Done():
		return
	}
	s.mu.Lock()
	if s.stopping {
		s.mu.Unlock()
		<-s.sem
		return
	}
	wg.Add(1)
	s.mu.Unlock()
	go func() {
		defer wg.Done()
		defer func() { <-s.sem }()
		rctx, cancel := context.WithTimeout(ctx, s.o.Timeout)
		defer cancel()
		_ = respond(r, h(rctx, store, r.Data()))
	}()
}

func respond(r micro.Request, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return r.Respond(b)
}

// failure turns an interface's error into a reply, logging what is not
// the caller's fault.
func (s *Service) failure(op, store string, err error) syncproto.Reply {
	switch {
	case errors.Is(err, ErrNotFound):
		return syncproto.Reply{Error: "not found", Code: syncproto.CodeNotFound}
	case errors.Is(err, syncproto.ErrInvalidRequest):
		// Decode's messages name types and sizes, never values.
		s.refused.Add(1)
		return syncproto.Reply{Error: err.Error(), Code: syncproto.CodeInvalid}
	case errors.Is(err, ErrInvalid):
		// The store's message may quote a value: not on the wire.
		s.refused.Add(1)
		return syncproto.Reply{Error: "identifiers that cannot be read (a value that is not an identifier of its type, or an unknown type)", Code: syncproto.CodeInvalid}
	}
	s.reqErrs.Add(1)
	// The error is ours (a database's), never the caller's data.
	s.log.Warn("custsync: request failed", "op", op, "store", store, "err", err)
	return syncproto.Reply{Error: "the hub could not answer; try again", Code: syncproto.CodeUnavailable}
}

func (s *Service) card(ctx context.Context, store string, body []byte) any {
	var req syncproto.CardRequest
	if err := syncproto.Decode(body, &req); err != nil {
		return syncproto.CardReply{Reply: s.failure(subjects.CustCard, store, err)}
	}
	c, err := s.o.Cards.CustomerCard(ctx, store, req.Identifiers)
	if err != nil {
		if errors.Is(err, ErrNotFound) {
			s.notFound.Add(1)
		}
		return syncproto.CardReply{Reply: s.failure(subjects.CustCard, store, err)}
	}
	s.cards.Add(1)
	return syncproto.CardReply{Card: &c}
}

func (s *Service) match(ctx context.Context, store string, body []byte) any {
	var req syncproto.MatchRequest
	if err := syncproto.Decode(body, &req); err != nil {
		return syncproto.MatchReply{Reply: s.failure(subjects.CustMatch, store, err)}
	}
	e, err := s.o.Erasures.StoreErasure(ctx, store, req.Erasure)
	if err != nil {
		return syncproto.MatchReply{Reply: s.failure(subjects.CustMatch, store, err)}
	}
	matches, err := Match(s.o.Hasher, s.o.Region(store), e.Digests, req.Identifiers)
	if err != nil {
		return syncproto.MatchReply{Reply: s.failure(subjects.CustMatch, store, err)}
	}
	s.matches.Add(1)
	return syncproto.MatchReply{Matches: matches}
}

func (s *Service) receipt(ctx context.Context, store string, body []byte) any {
	var rc syncproto.Receipt
	if err := syncproto.Decode(body, &rc); err != nil {
		return s.failure(subjects.CustReceipt, store, err)
	}
	if err := s.o.Erasures.AckErasure(ctx, store, rc.Erasure, time.UnixMilli(rc.AtMS).UTC()); err != nil {
		return s.failure(subjects.CustReceipt, store, err)
	}
	s.receipts.Add(1)
	s.mu.Lock()
	delete(s.published, downsync.ErasureKey(store, rc.Erasure))
	s.mu.Unlock()
	s.log.Info("custsync: erasure receipt", "store", store, "device", rc.Device, "erasure", rc.Erasure,
		"cards_purged", rc.CardsPurged, "events_scrubbed", rc.EventsScrubbed)
	return syncproto.Reply{}
}

// Match returns the positions of the identifiers (raw, as an agent holds
// them) whose digest is one of digests: each is normalised as its type
// says (phone numbers in region), or, without a type, as every type it
// reads as, and hashed under every key version the digests use. Digests
// that cannot be parsed are an error (the store's data is broken).
func Match(h *identity.Hasher, region string, digests []string, ids []syncproto.Identifier) ([]int, error) {
	want := make(map[identity.Digest]bool, len(digests))
	var versions []uint32
	for _, s := range digests {
		d, err := identity.ParseDigest(s)
		if err != nil {
			return nil, fmt.Errorf("custsync: erasure digest: %w", err)
		}
		want[d] = true
		if !slices.Contains(versions, d.Version) {
			versions = append(versions, d.Version)
		}
	}
	out := []int{}
	for i, id := range ids {
		types := identity.Types()
		if id.Type != "" {
			types = []identity.Type{identity.Type(id.Type)}
		}
	next:
		for _, t := range types {
			n, err := identity.Normalize(t, id.Value, region)
			if err != nil {
				continue
			}
			for _, v := range versions {
				if d, ok := h.DigestUnder(n, v); ok && want[d] {
					out = append(out, i)
					break next
				}
			}
		}
	}
	return out, nil
}

// round publishes every pending erasure of every store that has one and
// is not known to be in the bucket yet.
func (s *Service) round(ctx context.Context) error {
	s.rounds.Add(1)
	lctx, cancel := context.WithTimeout(ctx, s.o.Timeout)
	stores, err := s.o.Erasures.StoresWithPendingErasures(lctx)
	cancel()
	if err != nil {
		return fmt.Errorf("custsync: stores with pending erasures: %w", err)
	}
	work := make(chan string)
	var (
		errMu sync.Mutex
		errs  []error
		wg    sync.WaitGroup
	)
	for range min(s.o.Workers, max(len(stores), 1)) {
		wg.Go(func() {
			for store := range work {
				if err := s.publishStore(ctx, store); err != nil {
					errMu.Lock()
					errs = append(errs, err)
					errMu.Unlock()
				}
			}
		})
	}
	for _, st := range stores {
		select {
		case work <- st:
		case <-ctx.Done():
		}
	}
	close(work)
	wg.Wait()
	s.mu.Lock()
	s.lastRound = time.Now()
	s.mu.Unlock()
	if len(errs) > 0 {
		// One failure says enough; the count says how widespread.
		return fmt.Errorf("%d of %d stores: %w", len(errs), len(stores), errs[0])
	}
	return nil
}

// publishStore creates the notices of store's pending erasures.
func (s *Service) publishStore(ctx context.Context, store string) error {
	lctx, cancel := context.WithTimeout(ctx, s.o.Timeout)
	defer cancel()
	pending, err := s.o.Erasures.PendingErasures(lctx, store)
	if err != nil {
		return fmt.Errorf("store %s: pending erasures: %w", store, err)
	}
	for _, e := range pending {
		key := downsync.ErasureKey(store, e.ID)
		s.mu.Lock()
		known := s.published[key]
		s.mu.Unlock()
		if known {
			continue
		}
		n := syncproto.ErasureNotice{Erasure: e.ID, Customer: e.Customer, Store: store, RequestedMS: e.Requested.UnixMilli()}
		if err := n.Validate(); err != nil {
			return fmt.Errorf("store %s: %w", store, err)
		}
		b, _ := json.Marshal(n)
		// Created, never overwritten: expected last sequence 0 on the key.
		_, err := s.o.JS.PublishMsg(lctx, &nats.Msg{Subject: downsync.ErasureSubject(key), Data: b},
			jetstream.WithExpectLastSequencePerSubject(0))
		var apiErr *jetstream.APIError
		switch {
		case err == nil:
			s.notices.Add(1)
		case errors.As(err, &apiErr) && (apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence ||
			apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant):
			// Already there.
		default:
			return fmt.Errorf("store %s: erasure %s: %w", store, e.ID, err)
		}
		s.mu.Lock()
		s.published[key] = true
		s.mu.Unlock()
	}
	return nil
}
