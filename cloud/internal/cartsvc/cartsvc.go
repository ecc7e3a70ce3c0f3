// Package cartsvc is the hub's side of carts: what the web shop's API
// calls do (create, set a line, claim, check out, hand off by QR), turned
// into cart events the hub writes into its own books, and the background
// work carts need (releasing reservations whose time is up, finding
// abandoned carts).
//
// The hub writes its events like a store's device would: origin store =
// the online channel, device = "hub-" + a random name per process, a new
// epoch per start and contiguous seqs, so its events are deduplicated and
// ordered like any other and replicas never collide. Requests are
// grouped by Run's writer: it reads the carts of the whole group from the
// books at once (a few queries, whatever the group's size), decides each
// request in turn on what those before it did, and writes all of their
// events in one ApplyBatch (group commit). No call reads the books on its
// own before its write, which is what makes thousands of cart operations
// a second possible on PostgreSQL.
//
// Guarantees: a call returns after its events are committed (or with an
// error, and then nothing of it was); a checkout of a cart already
// checked out, here or at a till the hub has heard of, is refused
// (ErrClosed) and takes no order. Sharp edge: a till's checkout the hub
// has not heard of yet (the store offline) does not stop a web checkout;
// the later one becomes a conflict for HQ (store.CartConflicts).
package cartsvc

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/omnisync/omnisync/cloud/internal/automation"
	"github.com/omnisync/omnisync/cloud/internal/carts"
	"github.com/omnisync/omnisync/cloud/internal/store"
	"github.com/omnisync/omnisync/shared/cartcode"
	"github.com/omnisync/omnisync/shared/downsync"
	"github.com/omnisync/omnisync/shared/events"
	"github.com/omnisync/omnisync/shared/hlc"
	"github.com/omnisync/omnisync/shared/ids"
)

// Errors callers branch on.
var (
	// ErrNotFound: no such cart in the books.
	ErrNotFound = errors.New("cartsvc: no such cart")
	// ErrClosed: the cart was checked out already.
	ErrClosed = carts.ErrClosed
	// ErrStale: the cart changed since the version the caller named.
	ErrStale = carts.ErrStale
	// ErrInvalid wraps bad input (an *events.FieldError when it names a
	// field).
	ErrInvalid = errors.New("cartsvc: invalid request")
	// ErrEmpty: a checkout or code of a cart with no lines.
	ErrEmpty = errors.New("cartsvc: the cart is empty")
	// ErrClosedService: the service is shutting down.
	ErrClosedService = errors.New("cartsvc: closed")
)

// ModeKind is how a channel's carts hold stock.
type ModeKind string

const (
	// ReserveNone: nothing is held until the goods are sold.
	ReserveNone ModeKind = "none"
	// ReserveOnCart: a cart's lines are held at the online location from
	// the first edit, for TTL after the last one; the hub releases the
	// hold when it expires or when the cart is checked out anywhere.
	ReserveOnCart ModeKind = "cart"
	// ReserveOnOrder: stock is held once the cart is checked out (an
	// online order, until the warehouse fulfils it).
	ReserveOnOrder ModeKind = "order"
)

// Mode is a channel's reservation mode.
type Mode struct {
	Kind ModeKind
	TTL  time.Duration // ReserveOnCart only
}

// ParseModes reads "web=cart:30m,app=order,kiosk=none" into modes per
// channel.
func ParseModes(s string) (map[string]Mode, error) {
	out := map[string]Mode{}
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		ch, spec, ok := strings.Cut(part, "=")
		if !ok || ch == "" {
			return nil, fmt.Errorf("%w: reservation mode %q: want channel=none|cart:TTL|order", ErrInvalid, part)
		}
		kind, ttl, _ := strings.Cut(spec, ":")
		m := Mode{Kind: ModeKind(kind)}
		switch m.Kind {
		case ReserveNone, ReserveOnOrder:
			if ttl != "" {
				return nil, fmt.Errorf("%w: reservation mode %q: only cart takes a time to live", ErrInvalid, part)
			}
		case ReserveOnCart:
			d, err := time.ParseDuration(ttl)
			if err != nil || d <= 0 {
				return nil, fmt.Errorf("%w: reservation mode %q: cart needs a positive time to live (cart:30m)", ErrInvalid, part)
			}
			m.TTL = d
		default:
			return nil, fmt.Errorf("%w: reservation mode %q: want none, cart:TTL or order", ErrInvalid, part)
		}
		out[ch] = m
	}
	return out, nil
}

// Options configure a Service.
type Options struct {
	Store *store.Store
	// Online is the online channel's location and origin store.
	Online string
	// Key signs cart codes (cartcode.LoadOrCreateKey).
	Key ed25519.PrivateKey
	// Policy merges a customer's carts [carts.PolicyUnion].
	Policy carts.Policy
	// Modes are the reservation modes per channel; a channel not listed
	// holds nothing (ReserveNone). The web shop's channel is "web".
	Modes map[string]Mode
	// ExpiryEvery is how often expired holds are looked for [5s].
	ExpiryEvery time.Duration
	// AbandonAfter: an open cart of a known customer with no edit for
	// this long is abandoned [24h; <0 never].
	AbandonAfter time.Duration
	// CodeMaxAge is how long a cart code is good for at a till [24h].
	CodeMaxAge time.Duration
	// OnApplied is called after each batch the service commits (down-sync
	// of the positions and pickup orders it changed).
	OnApplied func(store.BatchResult)
	// OnAbandoned is called with the carts found abandoned, for the
	// automation that contacts customers (which checks their consent).
	OnAbandoned func([]store.AbandonedCart)
	Now         func() time.Time
	Logger      *slog.Logger
}

// Service is the hub's cart service.
type Service struct {
	o      Options
	log    *slog.Logger
	clock  *hlc.Clock
	device string
	epoch  uint64
	reqs   chan *request
	done   chan struct{}
	once   sync.Once
	seq    uint64 // owned by the writer
}

// draft is an event to write: its kind and body (encoded when the
// writer stamps it; read back as it is by group.fold).
type draft struct {
	kind events.Kind
	data any
}

// holdReserve is the body of the reserve that holds a cart's lines (a
// reservation move naming its cart and when the hold expires).
type holdReserve struct {
	ReservationID string        `json:"reservation_id"`
	Location      string        `json:"location"`
	Lines         []events.Line `json:"lines"`
	Channel       string        `json:"channel,omitempty"`
	CartID        string        `json:"cart_id"`
	ExpiresMS     int64         `json:"expires_ms"`
}

type request struct {
	drafts []draft
	// A planned request is decided by the writer on the group's reads:
	// ids and customers are the carts it reads (and the open carts of
	// those customers), plan returns its drafts (an error answers it and
	// writes nothing), and done sees the group just after its events.
	ids       []string
	customers []string
	plan      func(g *group) ([]draft, error)
	done      func(g *group)
	// read, set on a request that writes nothing (Get), sees the carts
	// as the group read them from the books, and is answered at once.
	read func(g *group) error
	envs []events.Envelope
	// refused[i] is set when the books' gate refused envs[i] (an online
	// checkout of a cart checked out already, and its order's reserve).
	refused []bool
	err     chan error
}

// New makes a service; Run starts its writer and background work.
func New(o Options) (*Service, error) {
	if o.Store == nil || len(o.Key) != ed25519.PrivateKeySize {
		return nil, fmt.Errorf("%w: a store and a signing key are required", ErrInvalid)
	}
	if err := events.ValidToken(o.Online); err != nil {
		return nil, fmt.Errorf("%w: online location: %v", ErrInvalid, err)
	}
	if o.Policy == "" {
		o.Policy = carts.PolicyUnion
	}
	if _, err := carts.ParsePolicy(string(o.Policy)); err != nil {
		return nil, err
	}
	if o.ExpiryEvery <= 0 {
		o.ExpiryEvery = 5 * time.Second
	}
	if o.AbandonAfter == 0 {
		o.AbandonAfter = 24 * time.Hour
	}
	if o.CodeMaxAge <= 0 {
		o.CodeMaxAge = 24 * time.Hour
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	var b [4]byte
	_, _ = rand.Read(b[:])
	now := o.Now()
	return &Service{
		o: o, log: o.Logger, clock: hlc.New(o.Now, hlc.Timestamp{}),
		device: store.HubDevicePrefix + hex.EncodeToString(b[:]), epoch: ids.NewEpoch(now),
		reqs: make(chan *request, 1024), done: make(chan struct{}),
	}, nil
}

// PublicKey is the down-sync document of the service's signing key.
func (s *Service) PublicKey() downsync.CartKeyDoc {
	pub := s.o.Key.Public().(ed25519.PublicKey)
	return downsync.CartKeyDoc{KeyID: cartcode.KeyID(pub), PublicKey: pub, CreatedMS: s.o.Now().UnixMilli()}
}

// Run writes the service's events and runs its background work until ctx
// ends or Close is called.
func (s *Service) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-s.done:
			cancel()
		case <-ctx.Done():
		}
	}()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); s.background(ctx) }()
	s.writer(ctx)
	wg.Wait()
	return nil
}

// Close stops Run; calls waiting for a write fail with ErrClosedService.
func (s *Service) Close() error {
	s.once.Do(func() { close(s.done) })
	return nil
}

// maxGroup bounds the requests one batch carries.
const maxGroup = 512

// writer is the group commit: it takes every request waiting, gives
// their events contiguous seqs and stamps, applies them in one batch,
// and answers each.
func (s *Service) writer(ctx context.Context) {
	for {
		var group []*request
		select {
		case <-ctx.Done():
			s.drain(ErrClosedService)
			return
		case r := <-s.reqs:
			group = append(group, r)
		}
	more:
		for len(group) < maxGroup {
			select {
			case r := <-s.reqs:
				group = append(group, r)
			default:
				break more
			}
		}
		s.commit(ctx, group)
	}
}

func (s *Service) drain(err error) {
	for {
		select {
		case r := <-s.reqs:
			r.err <- err
		default:
			return
		}
	}
}

func (s *Service) commit(ctx context.Context, all []*request) {
	// One read of every cart the group's planned requests touch.
	var cartIDs, customers []string
	for _, r := range all {
		cartIDs = append(cartIDs, r.ids...)
		customers = append(customers, r.customers...)
	}
	g, lerr := s.load(ctx, cartIDs, customers)
	// Reads are answered first, on what the books hold: none of the
	// group's writes is committed yet.
	for _, r := range all {
		if r.read != nil {
			if lerr == nil {
				r.err <- r.read(g)
			} else {
				r.err <- lerr
			}
		}
	}
	// Each request is decided on the group as those before it left it.
	group := all[:0:0]
	var items []store.Item
	seq := s.seq
	var first []int
	for _, r := range all {
		switch {
		case r.read != nil:
			continue
		case r.plan == nil:
		case lerr != nil:
			r.err <- lerr
			continue
		default:
			d, err := r.plan(g)
			if err != nil {
				r.err <- err
				continue
			}
			r.drafts = d
		}
		group = append(group, r)
		first = append(first, len(items))
		r.envs = r.envs[:0]
		for _, d := range r.drafts {
			data, err := json.Marshal(d.data)
			if err != nil {
				panic("cartsvc: event body: " + err.Error())
			}
			seq++
			now := s.o.Now()
			env := events.Envelope{V: events.CurrentVersion, ID: ids.NewEventID(now),
				Origin: events.Origin{Store: s.o.Online, Device: s.device, Epoch: s.epoch, Seq: seq},
				HLC:    s.clock.Now(), Kind: d.kind, Data: data}
			r.envs = append(r.envs, env)
			items = append(items, store.Item{Env: env})
		}
		if g != nil {
			g.fold(r.envs, r.drafts)
			if r.done != nil {
				r.done(g)
			}
		}
	}
	if len(group) == 0 {
		return
	}
	res, err := s.o.Store.ApplyBatch(ctx, items)
	if err == nil && len(res.Deferred) > 0 {
		// Cannot happen with contiguous seqs; never leave a gap silently.
		err = fmt.Errorf("cartsvc: %d events deferred", len(res.Deferred))
	}
	if err != nil {
		// Nothing committed: the seqs are used again by the next batch.
		for _, r := range group {
			r.err <- err
		}
		return
	}
	s.seq = seq
	if s.o.OnApplied != nil {
		s.o.OnApplied(res)
	}
	for gi, r := range group {
		r.refused = make([]bool, len(r.envs))
		for _, i := range res.Refused {
			if j := i - first[gi]; j >= 0 && j < len(r.envs) {
				r.refused[j] = true
			}
		}
		r.err <- nil
	}
}

// submit writes drafts as one unit and returns their envelopes.
func (s *Service) submit(ctx context.Context, drafts ...draft) ([]events.Envelope, error) {
	envs, _, err := s.send(ctx, &request{drafts: drafts})
	return envs, err
}

// send hands r to the writer and waits for its answer: its envelopes, and
// which of them the books' gates refused.
func (s *Service) send(ctx context.Context, r *request) ([]events.Envelope, []bool, error) {
	r.err = make(chan error, 1)
	select {
	case s.reqs <- r:
	case <-ctx.Done():
		return nil, nil, ctx.Err()
	case <-s.done:
		return nil, nil, ErrClosedService
	}
	select {
	case err := <-r.err:
		return r.envs, r.refused, err
	case <-ctx.Done():
		return nil, nil, ctx.Err()
	}
}

// State is a cart as the API shows it: the view, and what it holds where.
type State struct {
	carts.View
	Policy carts.Policy
	Holds  []store.CartHold
	// Order is the stock the online order it was checked out into holds
	// (reserve on cart or on order), until the order is collected; nil
	// when there is no such reservation.
	Order *OrderHold
	// Checkout is the checkout that closed the primary cart, if any.
	Checkout *carts.Checkout
	// Conflicts are later checkouts of it.
	Conflicts []carts.Checkout
}

// view reads cart id and, once a customer owns it, her other open carts,
// merged by the policy. A closed cart is shown alone.
func (s *Service) view(ctx context.Context, id string) (State, []*carts.Cart, error) {
	if err := events.ValidCartID(id); err != nil {
		return State{}, nil, fmt.Errorf("%w: %w", ErrNotFound, err)
	}
	// Read with the writer's group: one read of the books serves every
	// request waiting, and the answer is what the books hold when it is
	// read, never a write not yet committed.
	var (
		st   State
		list []*carts.Cart
	)
	r := &request{ids: []string{id}, read: func(g *group) error {
		var err error
		st, list, err = g.view(id)
		return err
	}}
	if _, _, err := s.send(ctx, r); err != nil {
		return State{}, nil, err
	}
	return st, list, nil
}

// OrderHold is the reservation of a cart's online order: held at
// Location until the order is collected (no expiry), then collected, or
// released when it is cancelled.
type OrderHold struct {
	ReservationID string
	OrderID       string
	Location      string
	// State is downsync.PickupOpen, PickupCollected or PickupCancelled.
	State      string
	Lines      []events.Line
	ReservedAt time.Time
	ClosedAt   time.Time // zero while open
}

// OrderReservationID is the reservation of online order id's stock.
func OrderReservationID(orderID string) string { return "order-" + orderID }

// Get returns cart id's state, with the reservation of the order it was
// checked out into, if any.
func (s *Service) Get(ctx context.Context, id string) (State, error) {
	st, _, err := s.view(ctx, id)
	if err != nil || st.Checkout == nil || st.Checkout.OrderID == "" {
		return st, err
	}
	docs, err := s.o.Store.PickupDocs(ctx, []string{OrderReservationID(st.Checkout.OrderID)})
	if err != nil {
		return State{}, err
	}
	for _, d := range docs {
		o := &OrderHold{ReservationID: d.ReservationID, OrderID: st.Checkout.OrderID, Location: d.Store, State: d.State,
			Lines: make([]events.Line, 0, len(d.Lines))}
		for _, l := range d.Lines {
			o.Lines = append(o.Lines, events.Line{SKU: l.SKU, Qty: l.Qty})
		}
		if d.ReservedMS > 0 {
			o.ReservedAt = time.UnixMilli(d.ReservedMS)
		}
		if d.ClosedMS > 0 {
			o.ClosedAt = time.UnixMilli(d.ClosedMS)
		}
		st.Order = o
	}
	return st, nil
}

// LineInput is a line to set.
type LineInput struct {
	SKU       string
	Qty       int64
	UnitPrice *int64
}

// Create starts a cart: with lines, for a customer or both; with neither
// the cart is born with its first line (until then the id is unknown to
// the books, as every cart id not yet used).
func (s *Service) Create(ctx context.Context, customer, channel string, lines []LineInput) (string, State, error) {
	id := cartcode.NewCartID()
	if customer != "" {
		if err := events.ValidCustomer(customer); err != nil {
			return "", State{}, fmt.Errorf("%w: %w", ErrInvalid, &events.FieldError{Field: "customer", Reason: err.Error()})
		}
	}
	var drafts []draft
	if len(lines) > 0 {
		b := events.LineSet{CartID: id, Customer: customer, Channel: channelOr(channel)}
		for _, l := range lines {
			b.Lines = append(b.Lines, events.CartLine{SKU: l.SKU, Qty: l.Qty, UnitPrice: l.UnitPrice})
		}
		drafts = append(drafts, draft{events.KindLineSet, b})
		drafts = append(drafts, s.holdDrafts(carts.View{ID: id, Carts: []string{id}}, nil, b.Lines, channelOr(channel))...)
	} else if customer != "" {
		drafts = append(drafts, draft{events.KindClaim, events.Claim{CartID: id, Customer: customer}})
	}
	if err := validate(drafts); err != nil {
		return "", State{}, err
	}
	if len(drafts) == 0 {
		return id, State{View: carts.View{ID: id, Carts: []string{id}, Edit: id}, Policy: s.o.Policy}, nil
	}
	var st State
	var verr error
	r := &request{customers: []string{customer},
		plan: func(*group) ([]draft, error) { return drafts, nil },
		done: func(g *group) { st, _, verr = g.view(id) }}
	if _, _, err := s.send(ctx, r); err != nil {
		return "", State{}, err
	}
	return id, st, verr
}

func channelOr(c string) string {
	if c == "" {
		return "web"
	}
	return c
}

func validate(drafts []draft) error {
	for _, d := range drafts {
		b, _ := json.Marshal(d.data)
		if _, err := events.ValidateBody(d.kind, b); err != nil {
			return fmt.Errorf("%w: %w", ErrInvalid, err)
		}
	}
	return nil
}

// SetLine sets one line of cart id (0 removes it). A cart id the books do
// not know yet is created by it (the id must be one a cart was created
// with: a valid cart id).
//
// The line is decided by the writer on its group's one read of the books
// (see group), and the answer is the cart as the group knows it after
// the edit: an edit another channel made meanwhile shows in the next read.
func (s *Service) SetLine(ctx context.Context, id, channel string, l LineInput) (State, error) {
	if err := events.ValidCartID(id); err != nil {
		return State{}, fmt.Errorf("%w: %w", ErrNotFound, err)
	}
	channel = channelOr(channel)
	cl := events.CartLine{SKU: l.SKU, Qty: l.Qty, UnitPrice: l.UnitPrice}
	// The body is checked once here, not in the writer.
	if err := validate([]draft{{events.KindLineSet, events.LineSet{CartID: id, Channel: channel, Lines: []events.CartLine{cl}}}}); err != nil {
		return State{}, err
	}
	var out State
	r := &request{ids: []string{id}}
	r.plan = func(g *group) ([]draft, error) {
		st, list, err := g.view(id)
		if errors.Is(err, ErrNotFound) {
			st, list, err = State{View: carts.View{ID: id, Carts: []string{id}, Edit: id}, Policy: s.o.Policy}, nil, nil
		}
		if err != nil {
			return nil, err
		}
		if st.Closed {
			return nil, ErrClosed
		}
		// The line goes into the cart the view takes new lines from, and
		// into every other cart of the view that has the SKU, so the
		// merged view shows exactly the quantity set.
		targets := []string{st.Edit}
		for _, c := range list {
			if x, ok := c.Lines[l.SKU]; ok && x.Qty > 0 && c.ID != st.Edit && slices.Contains(st.Carts, c.ID) {
				targets = append(targets, c.ID)
			}
		}
		slices.Sort(targets)
		var drafts []draft
		for _, t := range slices.Compact(targets) {
			drafts = append(drafts, draft{events.KindLineSet, events.LineSet{CartID: t, Channel: channel, Lines: []events.CartLine{cl}}})
		}
		return append(drafts, s.holdDrafts(st.View, st.Holds, []events.CartLine{cl}, channel)...), nil
	}
	r.done = func(g *group) { out, _, _ = g.view(id) }
	if _, _, err := s.send(ctx, r); err != nil {
		return State{}, err
	}
	return out, nil
}

// holdDrafts are the reserve or release a reserve-on-cart channel's cart
// needs after set (the lines just set) changes view v: the view's lines
// held at the online location until TTL from now, or released when none
// are left.
func (s *Service) holdDrafts(v carts.View, holds []store.CartHold, set []events.CartLine, channel string) []draft {
	m := s.o.Modes[channel]
	if m.Kind != ReserveOnCart {
		return nil
	}
	qty := map[string]int64{}
	for _, l := range v.Lines {
		qty[l.SKU] = l.Qty
	}
	for _, l := range set {
		qty[l.SKU] = l.Qty
	}
	var lines []events.Line
	for sku, q := range qty {
		if q > 0 {
			lines = append(lines, events.Line{SKU: sku, Qty: q})
		}
	}
	slices.SortFunc(lines, func(a, b events.Line) int { return strings.Compare(a.SKU, b.SKU) })
	now := s.o.Now()
	var active string
	n := 0
	for _, h := range holds {
		if h.CartID != v.ID {
			continue
		}
		n++
		if !h.Released && h.Active && h.ExpiresAt.After(now) {
			active = h.ReservationID
		}
	}
	if len(lines) == 0 {
		if active == "" {
			return nil
		}
		return []draft{{events.KindRelease, events.ReservationMove{ReservationID: active, Location: s.o.Online}}}
	}
	if active == "" {
		active = store.CartHoldPrefix + v.ID + "-" + strconv.Itoa(n+1)
	}
	return []draft{{events.KindReserve, holdReserve{ReservationID: active, Location: s.o.Online, Lines: lines, Channel: channel,
		CartID: v.ID, ExpiresMS: now.Add(m.TTL).UnixMilli()}}}
}

// Claim gives anonymous cart id to customer; her carts are then seen as
// one by the policy.
func (s *Service) Claim(ctx context.Context, id, customer string) (State, error) {
	if err := events.ValidCustomer(customer); err != nil {
		return State{}, fmt.Errorf("%w: %w", ErrInvalid, &events.FieldError{Field: "customer", Reason: err.Error()})
	}
	if events.ValidCartID(id) != nil {
		return State{}, ErrNotFound
	}
	var out State
	var verr error
	r := &request{ids: []string{id}, customers: []string{customer}}
	r.plan = func(g *group) ([]draft, error) {
		c := g.carts[id]
		if c != nil && c.Closed() {
			return nil, ErrClosed
		}
		drafts := []draft{{events.KindClaim, events.Claim{CartID: id, Customer: customer}}}
		if c != nil && c.Customer == "" {
			drafts = append(drafts, s.claimHoldDrafts(g, c, customer)...)
		}
		return drafts, nil
	}
	r.done = func(g *group) { out, _, verr = g.view(id) }
	if _, _, err := s.send(ctx, r); err != nil {
		return State{}, err
	}
	return out, verr
}

// claimHoldDrafts move the stock held for anonymous cart c to the view
// it joins once customer claims it: her open carts are one view, held
// once, by the view's primary cart (holdDrafts keys a view's hold so). A
// live hold of any other cart of the view (c's, or one left by an earlier
// claim) is released, and the primary's hold takes the view's lines as
// the merge policy shows them, until the latest of the holds' expiries (a
// claim is no edit: it does not extend them). Nothing when no other cart
// holds stock.
func (s *Service) claimHoldDrafts(g *group, c *carts.Cart, customer string) []draft {
	// The claim's own stamp is taken when the group is written, later
	// than now: the primary stays the cart she owned first.
	claimed := *c
	claimed.Customer, claimed.ClaimStamp = customer, events.Stamp{HLC: s.clock.Now()}
	after := g.with(&claimed)
	st, _, err := after.view(c.ID)
	if err != nil || st.Closed {
		return nil
	}
	now := s.o.Now()
	var (
		out     []draft
		keep    string
		expires time.Time
		n       int
	)
	for _, h := range st.Holds {
		live := !h.Released && h.Active && h.ExpiresAt.After(now)
		if h.CartID == st.ID {
			n++
			if live {
				keep = h.ReservationID
			}
		}
		if !live {
			continue
		}
		if h.ExpiresAt.After(expires) {
			expires = h.ExpiresAt
		}
		if h.CartID != st.ID {
			out = append(out, draft{events.KindRelease, events.ReservationMove{ReservationID: h.ReservationID, Location: h.Location}})
		}
	}
	if len(out) == 0 {
		return nil
	}
	lines := make([]events.Line, 0, len(st.Lines))
	for _, l := range st.Lines {
		lines = append(lines, events.Line{SKU: l.SKU, Qty: l.Qty})
	}
	if len(lines) == 0 {
		if keep != "" {
			out = append(out, draft{events.KindRelease, events.ReservationMove{ReservationID: keep, Location: s.o.Online}})
		}
		return out
	}
	if keep == "" {
		keep = store.CartHoldPrefix + st.ID + "-" + strconv.Itoa(n+1)
	}
	return append(out, draft{events.KindReserve, holdReserve{ReservationID: keep, Location: s.o.Online, Lines: lines,
		CartID: st.ID, ExpiresMS: expires.UnixMilli()}})
}

// Order is a checked-out web cart.
type Order struct {
	OrderID string
	State   State
	// ReservationID holds the order's stock (reserve on order or cart).
	ReservationID string
	hold          *OrderHold
}

// Checkout checks the cart out as an online order. version, when not 0,
// must be the cart's current version (ErrStale otherwise). A cart already
// checked out, here or anywhere the hub has heard of, is ErrClosed.
func (s *Service) Checkout(ctx context.Context, id string, version int64, channel string) (Order, error) {
	if err := events.ValidCartID(id); err != nil {
		return Order{}, fmt.Errorf("%w: %w", ErrNotFound, err)
	}
	channel = channelOr(channel)
	order := "web-" + ids.NewEventID(s.o.Now())
	out := Order{OrderID: order}
	r := &request{ids: []string{id}}
	r.plan = func(g *group) ([]draft, error) {
		st, _, err := g.view(id)
		if err != nil {
			return nil, err
		}
		if st.Closed {
			return nil, ErrClosed
		}
		if version != 0 && version != st.Version {
			return nil, fmt.Errorf("%w: at version %d, not %d", ErrStale, st.Version, version)
		}
		if len(st.Lines) == 0 {
			return nil, ErrEmpty
		}
		var lines []events.CartLine
		var rlines []events.Line
		for _, l := range st.Lines {
			cl := events.CartLine{SKU: l.SKU, Qty: l.Qty}
			if l.Priced {
				p := l.Price
				cl.UnitPrice = &p
			}
			lines = append(lines, cl)
			rlines = append(rlines, events.Line{SKU: l.SKU, Qty: l.Qty, UnitPrice: cl.UnitPrice})
		}
		// The checkouts (the primary cart's first), the order's
		// reservation (held until the warehouse fulfils it, in place of
		// the cart's hold) and the release of the cart's hold are one
		// batch: no crash can leave an order without its stock held. The
		// books' gate refuses the order's reserve with its checkout.
		var drafts []draft
		for _, c := range st.Carts {
			drafts = append(drafts, draft{events.KindCheckout, events.Checkout{CartID: c, Version: st.Version, Lines: lines,
				Location: s.o.Online, OrderID: order, Channel: channel}})
		}
		if m := s.o.Modes[channel]; m.Kind == ReserveOnCart || m.Kind == ReserveOnOrder {
			out.ReservationID = OrderReservationID(order)
			held := make([]events.Line, 0, len(rlines))
			for _, l := range rlines {
				held = append(held, events.Line{SKU: l.SKU, Qty: l.Qty})
			}
			out.hold = &OrderHold{ReservationID: out.ReservationID, OrderID: order, Location: s.o.Online, State: downsync.PickupOpen,
				Lines: held, ReservedAt: s.o.Now()}
			drafts = append(drafts, draft{events.KindReserve, events.ReservationMove{ReservationID: out.ReservationID, Location: s.o.Online,
				Lines: rlines, OrderID: order, Channel: channel}})
		}
		for _, h := range st.Holds {
			if !h.Released {
				drafts = append(drafts, draft{events.KindRelease, events.ReservationMove{ReservationID: h.ReservationID, Location: s.o.Online}})
			}
		}
		return drafts, nil
	}
	r.done = func(g *group) { out.State, _, _ = g.view(id) }
	_, refused, err := s.send(ctx, r)
	if err != nil {
		return Order{}, err
	}
	// The books' gate decided: ours went through only if the primary
	// cart's checkout did.
	if len(refused) == 0 || refused[0] {
		return Order{}, ErrClosed
	}
	// The order's reservation went in with it: shown as written, without
	// reading it back.
	out.State.Order = out.hold
	return out, nil
}

// Code is a cart's signed handoff code.
type Code struct {
	Text     string
	Snapshot cartcode.Snapshot
	QR       *cartcode.QR
	Expires  time.Time
}

// Code signs the cart's current view as a handoff code.
func (s *Service) Code(ctx context.Context, id string) (Code, error) {
	st, err := s.Get(ctx, id)
	if err != nil {
		return Code{}, err
	}
	if st.Closed {
		return Code{}, ErrClosed
	}
	if len(st.Lines) == 0 {
		return Code{}, ErrEmpty
	}
	now := s.o.Now()
	snap := cartcode.Snapshot{Carts: st.Carts, Version: st.Version, IssuedAt: now.Unix()}
	for _, l := range st.Lines {
		cl := cartcode.Line{SKU: l.SKU, Qty: l.Qty}
		if l.Priced {
			p := l.Price
			cl.UnitPrice = &p
		}
		snap.Lines = append(snap.Lines, cl)
	}
	if len(snap.Lines) > cartcode.MaxLines {
		return Code{}, fmt.Errorf("%w: %d lines, a code carries at most %d", ErrInvalid, len(snap.Lines), cartcode.MaxLines)
	}
	text, err := cartcode.Sign(s.o.Key, snap)
	if err != nil {
		return Code{}, err
	}
	q, err := cartcode.Render(text)
	if err != nil {
		return Code{}, err
	}
	snap.KeyID = cartcode.KeyID(s.o.Key.Public().(ed25519.PublicKey))
	return Code{Text: text, Snapshot: snap, QR: q, Expires: time.Unix(snap.IssuedAt, 0).Add(s.o.CodeMaxAge)}, nil
}

// background releases expired holds and finds abandoned carts.
func (s *Service) background(ctx context.Context) {
	t := time.NewTicker(s.o.ExpiryEvery)
	defer t.Stop()
	lastAbandon := time.Time{}
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if _, err := s.ExpireHolds(ctx); err != nil && ctx.Err() == nil {
			s.log.Warn("cart holds: expiry failed", "err", err)
		}
		if s.o.AbandonAfter > 0 && s.o.Now().Sub(lastAbandon) >= time.Minute {
			lastAbandon = s.o.Now()
			if _, err := s.FindAbandoned(ctx); err != nil && ctx.Err() == nil {
				s.log.Warn("abandoned carts: failed", "err", err)
			}
		}
	}
}

// ExpireHolds releases every cart hold whose time is up (or whose cart
// was checked out) and returns how many it released. Replicas may race:
// a reservation released twice is released once.
func (s *Service) ExpireHolds(ctx context.Context) (int, error) {
	total := 0
	for {
		hs, err := s.o.Store.ExpiredCartHolds(ctx, s.o.Now(), 500)
		if err != nil || len(hs) == 0 {
			return total, err
		}
		drafts := make([]draft, 0, len(hs))
		for _, h := range hs {
			drafts = append(drafts, draft{events.KindRelease, events.ReservationMove{ReservationID: h.ReservationID, Location: h.Location}})
		}
		if _, err := s.submit(ctx, drafts...); err != nil {
			return total, err
		}
		total += len(hs)
		s.log.Info("cart holds released", "count", len(hs))
		if len(hs) < 500 {
			return total, nil
		}
	}
}

// FindAbandoned marks the carts abandoned now and hands them to
// OnAbandoned. Carts marked are handed on even when their lines could not
// be read (with what is known of them): the mark is the claim, and a
// cart marked and not handed on would never be.
func (s *Service) FindAbandoned(ctx context.Context) ([]store.AbandonedCart, error) {
	ab, err := s.o.Store.MarkAbandonedCarts(ctx, s.o.Now(), s.o.AbandonAfter, 1000)
	if len(ab) == 0 {
		return ab, err
	}
	// Counts only: customers are personal data and stay out of logs.
	s.log.Info("abandoned carts found", "count", len(ab))
	if s.o.OnAbandoned != nil {
		s.o.OnAbandoned(ab)
	}
	return ab, err
}

// AbandonedEvents are the automation's cart_abandoned events of carts
// found abandoned at at: the customer (her master id, which the event
// carries anyway) and the cart's facts that rules' conditions read as
// cart.<field>: cart.id, cart.value (minor units), cart.currency (when the
// catalog names one), cart.lines (count) and cart.skus (sorted, comma
// separated). Nothing else of her: the automation looks the rest up, and
// her consent is asked when a message is sent. The event's id is the
// cart's and its last change: found again after a new edit, it is a new
// event.
func AbandonedEvents(ab []store.AbandonedCart, at time.Time) []automation.Event {
	evs := make([]automation.Event, 0, len(ab))
	for _, c := range ab {
		attrs := map[string]string{
			"cart.id":    c.CartID,
			"cart.value": strconv.FormatInt(c.Value, 10),
			"cart.lines": strconv.Itoa(c.Lines),
			"cart.skus":  strings.Join(c.SKUs, ","),
		}
		if c.Currency != "" {
			attrs["cart.currency"] = c.Currency
		}
		evs = append(evs, automation.Event{
			ID:      fmt.Sprintf("cart:%s:abandoned:%d", c.CartID, c.LastChange.UnixMilli()),
			Trigger: automation.CartAbandoned, At: at, Customer: c.Customer, Attrs: attrs,
		})
	}
	return evs
}
