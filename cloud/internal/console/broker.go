package console

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/omnisync/omnisync/cloud/internal/inventory"
	"github.com/omnisync/omnisync/cloud/internal/store"
)

// ChangesSubject is the core NATS subject hub replicas tell each other
// about committed batches on. It lives in the hub's account and is
// exported to no store.
const ChangesSubject = "omni.console.changes"

// MaxPositions bounds the positions one Change lists; a batch that
// changed more is sent as the locations it touched with All set.
const MaxPositions = 2000

// Position names one stock position.
type Position struct {
	SKU      string `json:"sku"`
	Location string `json:"location"`
}

// Change is what one committed batch changed, as the console needs it:
// keys, never figures.
type Change struct {
	// Origin is the replica that applied the batch.
	Origin string `json:"origin,omitempty"`
	// At is when the batch committed (the applying replica's clock).
	At time.Time `json:"at"`
	// Positions are the stock positions it changed.
	Positions []Position `json:"positions,omitempty"`
	// Locations are the locations it touched when Positions would be too
	// long (All is then set), and the stores whose exceptions it added to.
	Locations []string `json:"locations,omitempty"`
	// All: more changed than is listed; a page should re-read itself
	// whatever it shows.
	All bool `json:"all,omitempty"`
	// Applied and DeadLettered count the batch's items.
	Applied      int `json:"applied,omitempty"`
	DeadLettered int `json:"dead_lettered,omitempty"`
	// Reservations: the batch changed reservations (pickups).
	Reservations bool `json:"reservations,omitempty"`
	// Exceptions: the batch held events in the exception queue.
	Exceptions bool `json:"exceptions,omitempty"`
}

// FromBatch is the change a committed batch made; ok is false when it
// changed nothing a console shows.
func FromBatch(res store.BatchResult, at time.Time) (Change, bool) {
	if res.Applied == 0 && res.DeadLettered == 0 && res.Held == 0 {
		return Change{}, false
	}
	c := Change{At: at.UTC(), Applied: res.Applied, DeadLettered: res.DeadLettered, Reservations: len(res.Reservations) > 0,
		Exceptions: res.Held > 0}
	// The stores whose exceptions grew are locations the batch touched:
	// a store manager sees the change even when it held events only.
	c.Locations = slices.Clone(res.HeldStores)
	if len(res.Positions) > MaxPositions {
		c.All = true
		for _, k := range res.Positions {
			c.Locations = append(c.Locations, k.Location)
		}
	} else {
		c.Positions = make([]Position, len(res.Positions))
		for i, k := range res.Positions {
			c.Positions[i] = Position{SKU: k.SKU, Location: k.Location}
		}
	}
	slices.Sort(c.Locations)
	c.Locations = slices.Compact(c.Locations)
	return c, true
}

// Changed is the change of positions the hub changed outside a batch (a
// safety stock set by HQ).
func Changed(keys []inventory.Key, at time.Time) Change {
	c := Change{At: at.UTC(), Positions: make([]Position, len(keys))}
	for i, k := range keys {
		c.Positions[i] = Position{SKU: k.SKU, Location: k.Location}
	}
	return c
}

// For returns the part of c a viewer limited to stores may see (limited
// false: everything), and whether anything is left. A change that names
// none of the viewer's stores (dead letters of undecodable messages name
// none at all) is not shown to them.
func (c Change) For(stores []string, limited bool) (Change, bool) {
	if !limited {
		return c, true
	}
	out := c
	out.Origin = ""
	out.Positions = slices.DeleteFunc(slices.Clone(c.Positions), func(p Position) bool { return !slices.Contains(stores, p.Location) })
	out.Locations = slices.DeleteFunc(slices.Clone(c.Locations), func(l string) bool { return !slices.Contains(stores, l) })
	if len(out.Positions) == 0 && len(out.Locations) == 0 {
		return Change{}, false
	}
	return out, true
}

// Broker fans committed changes out to the open streams of this replica
// and, through NATS, of the others. Run it; Publish from the apply path.
type Broker struct {
	nc     *nats.Conn
	log    *slog.Logger
	origin string

	mu     sync.Mutex
	subs   map[*Sub]struct{}
	closed bool

	published, received, dropped atomic.Int64
}

// NewBroker returns a broker; nc may be nil (one replica, no NATS: local
// fan-out only).
func NewBroker(nc *nats.Conn, log *slog.Logger) *Broker {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	var b [8]byte
	_, _ = rand.Read(b[:])
	return &Broker{nc: nc, log: log, origin: hex.EncodeToString(b[:]), subs: map[*Sub]struct{}{}}
}

// Run follows the other replicas' changes until ctx ends, then ends every
// stream.
func (b *Broker) Run(ctx context.Context) error {
	defer b.close()
	if b.nc == nil {
		<-ctx.Done()
		return nil
	}
	sub, err := b.nc.Subscribe(ChangesSubject, func(m *nats.Msg) {
		var c Change
		if err := json.Unmarshal(m.Data, &c); err != nil {
			b.log.Warn("console change does not decode", "err", err)
			return
		}
		if c.Origin == b.origin {
			return
		}
		b.received.Add(1)
		b.fanOut(c)
	})
	if err != nil {
		return fmt.Errorf("console: subscribe %s: %w", ChangesSubject, err)
	}
	// A slow handler must not make the server cut the hub's connection:
	// drop (and tell streams to re-read) instead.
	_ = sub.SetPendingLimits(4096, 64<<20)
	<-ctx.Done()
	_ = sub.Unsubscribe()
	return nil
}

// Publish hands c to this replica's streams at once and to the other
// replicas' through NATS. It never blocks on a slow stream.
func (b *Broker) Publish(c Change) {
	c.Origin = b.origin
	b.published.Add(1)
	b.fanOut(c)
	if b.nc == nil {
		return
	}
	data, err := json.Marshal(c)
	if err == nil {
		err = b.nc.Publish(ChangesSubject, data)
	}
	if err != nil {
		b.log.Warn("console change not published to other replicas", "err", err)
	}
}

// Stats counts changes published here, received from other replicas, and
// dropped for slow streams.
func (b *Broker) Stats() (published, received, dropped int64) {
	return b.published.Load(), b.received.Load(), b.dropped.Load()
}

// Streams counts the open subscriptions.
func (b *Broker) Streams() int { b.mu.Lock(); defer b.mu.Unlock(); return len(b.subs) }

func (b *Broker) fanOut(c Change) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for s := range b.subs {
		select {
		case s.ch <- c:
		default:
			s.lagged.Store(true)
			b.dropped.Add(1)
		}
	}
}

func (b *Broker) close() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.closed = true
	for s := range b.subs {
		close(s.done)
		delete(b.subs, s)
	}
}

// Sub is one stream's subscription.
type Sub struct {
	b      *Broker
	ch     chan Change
	done   chan struct{}
	lagged atomic.Bool
	once   sync.Once
}

// subBuffer is how many changes a stream may fall behind by before it is
// told to re-read everything instead.
const subBuffer = 64

// Subscribe opens a subscription; Close it. After the broker stops,
// Done is closed.
func (b *Broker) Subscribe() *Sub {
	s := &Sub{b: b, ch: make(chan Change, subBuffer), done: make(chan struct{})}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		close(s.done)
		return s
	}
	b.subs[s] = struct{}{}
	return s
}

// C delivers changes.
func (s *Sub) C() <-chan Change { return s.ch }

// Done is closed when the broker stops.
func (s *Sub) Done() <-chan struct{} { return s.done }

// Lagged reports (and clears) whether changes were dropped since the last
// call: the stream must then tell its page to re-read everything.
func (s *Sub) Lagged() bool { return s.lagged.Swap(false) }

// Close ends the subscription.
func (s *Sub) Close() {
	s.once.Do(func() {
		s.b.mu.Lock()
		defer s.b.mu.Unlock()
		if _, ok := s.b.subs[s]; ok {
			delete(s.b.subs, s)
		}
	})
}
