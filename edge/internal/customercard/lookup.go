package customercard

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/omnisync/omnisync/shared/subjects"
	"github.com/omnisync/omnisync/shared/syncproto"
)

// Where an answer came from.
const (
	SourceHub   = "hub"
	SourceCache = "cache"
)

// DefaultHubTimeout bounds a card request to the hub.
const DefaultHubTimeout = time.Second

// Answer is a card and where it came from.
type Answer struct {
	Card syncproto.Card `json:"card"`
	// Source is SourceHub or SourceCache (the hub could not be reached).
	Source string `json:"source"`
	// FetchedAt is when the card left the hub.
	FetchedAt time.Time `json:"fetched_at"`
}

// ClientOptions configures a Client.
type ClientOptions struct {
	Store, Device string
	// Conn is the agent's connection (its store's credentials and inbox
	// prefix); nil means offline.
	Conn  *nats.Conn
	Cache *Cache
	// HubTimeout bounds a request to the hub (default DefaultHubTimeout);
	// past it the cache answers.
	HubTimeout time.Duration
	Logger     *slog.Logger
}

// Client looks cards up: the hub first, the cache when the hub cannot be
// reached.
type Client struct {
	o   ClientOptions
	log *slog.Logger

	fromHub, fromCache, notFound, unavailable atomic.Uint64
}

// NewClient checks the options.
func NewClient(o ClientOptions) (*Client, error) {
	if o.Store == "" || o.Cache == nil {
		return nil, fmt.Errorf("%w: Store and Cache are required", ErrInvalidOption)
	}
	if o.HubTimeout <= 0 {
		o.HubTimeout = DefaultHubTimeout
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return &Client{o: o, log: o.Logger}, nil
}

// ClientStats counts lookups by outcome.
type ClientStats struct {
	FromHub     uint64 `json:"from_hub"`
	FromCache   uint64 `json:"from_cache"`
	NotFound    uint64 `json:"not_found"`
	Unavailable uint64 `json:"unavailable"`
}

// Stats returns the counts.
func (c *Client) Stats() ClientStats {
	return ClientStats{FromHub: c.fromHub.Load(), FromCache: c.fromCache.Load(), NotFound: c.notFound.Load(), Unavailable: c.unavailable.Load()}
}

// Lookup returns the card of the shopper with these identifiers (type ->
// value as the till captured it). The hub answers when it can: its card
// is cached, its "no such customer" drops what the cache held for these
// identifiers (an erased or moved card must not be shown offline). When
// the hub cannot be reached (offline, no answer within HubTimeout, the hub
// unable to answer) the cache answers with a card fetched within the TTL,
// or ErrUnavailable. Errors: ErrInvalid, ErrNotFound, ErrUnavailable,
// ErrClosed.
func (c *Client) Lookup(ctx context.Context, ids map[string]string) (Answer, error) {
	req := syncproto.CardRequest{Identifiers: ids, Device: c.o.Device}
	if err := req.Validate(); err != nil {
		return Answer{}, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	a, err := c.fromHubOnce(ctx, req)
	switch {
	case err == nil:
		// Written after the answer: the till does not wait for an fsync.
		// A full queue skips caching it; only an offline answer misses.
		c.o.Cache.putAsync(a.Card, ids)
		c.fromHub.Add(1)
		return a, nil
	case errors.Is(err, ErrNotFound):
		c.notFound.Add(1)
		c.o.Cache.flush() // a card queued for these identifiers goes too
		return Answer{}, errors.Join(err, c.o.Cache.forget(ids))
	case errors.Is(err, ErrInvalid):
		return Answer{}, err
	}
	card, at, ok, cerr := c.o.Cache.get(ids)
	if cerr != nil {
		return Answer{}, cerr
	}
	if !ok {
		c.unavailable.Add(1)
		return Answer{}, fmt.Errorf("%w (%v)", ErrUnavailable, err)
	}
	c.fromCache.Add(1)
	return Answer{Card: card, Source: SourceCache, FetchedAt: at}, nil
}

// errHub wraps every way the hub could not answer.
var errHub = errors.New("the hub did not answer")

func (c *Client) fromHubOnce(ctx context.Context, req syncproto.CardRequest) (Answer, error) {
	nc := c.o.Conn
	if nc == nil || !nc.IsConnected() {
		// Offline: do not wait for a request that cannot leave.
		return Answer{}, fmt.Errorf("%w: offline", errHub)
	}
	b, err := json.Marshal(req)
	if err != nil {
		return Answer{}, err
	}
	rctx, cancel := context.WithTimeout(ctx, c.o.HubTimeout)
	defer cancel()
	m, err := nc.RequestWithContext(rctx, subjects.Cust(c.o.Store, subjects.CustCard), b)
	if err != nil {
		return Answer{}, fmt.Errorf("%w: %v", errHub, err)
	}
	var r syncproto.CardReply
	if err := json.Unmarshal(m.Data, &r); err != nil {
		return Answer{}, fmt.Errorf("%w: unreadable reply: %v", errHub, err)
	}
	switch {
	case r.Code == syncproto.CodeNotFound:
		return Answer{}, ErrNotFound
	case r.Code == syncproto.CodeInvalid:
		return Answer{}, fmt.Errorf("%w: %s", ErrInvalid, r.Error)
	case r.Error != "" || r.Card == nil || r.Card.Customer == "":
		return Answer{}, fmt.Errorf("%w: %s", errHub, r.Error)
	}
	at := time.UnixMilli(r.Card.AsOfMS)
	if r.Card.AsOfMS == 0 {
		at = time.Now()
	}
	return Answer{Card: *r.Card, Source: SourceHub, FetchedAt: at.UTC()}, nil
}
