package rfm

import (
	"errors"
	"fmt"
	"math"
	"sync"
	"time"
)

// ErrInvalidSale is returned by Book.Add for a sale it cannot count, and by
// Book.Restore for an impossible customer.
var ErrInvalidSale = errors.New("rfm: invalid sale")

// Sale is a purchase or a refund as RFM and AOV count it.
type Sale struct {
	// Customer is the customer's master id.
	Customer string
	// At is when the sale happened (its HLC wall time).
	At time.Time
	// Amount is the order's value in minor currency units, net of
	// discounts; for a refund, the value refunded. Never negative.
	Amount int64
	// Refund marks money given back: it lowers the monetary value and
	// revenue, and counts no order and no visit.
	Refund bool
	// Store and Channel are where the sale happened, for AOV.
	Store   string
	Channel string
}

// Validate reports what makes s impossible to count, wrapping ErrInvalidSale.
func (s Sale) Validate() error {
	switch {
	case s.Customer == "":
		return fmt.Errorf("%w: no customer", ErrInvalidSale)
	case s.At.IsZero():
		return fmt.Errorf("%w: no time", ErrInvalidSale)
	case s.Amount < 0:
		return fmt.Errorf("%w: negative amount %d (a refund is a positive amount with Refund set)", ErrInvalidSale, s.Amount)
	}
	return nil
}

// Customer is what RFM knows of a customer.
type Customer struct {
	ID string `json:"id"`
	// Last is the time of the latest purchase; zero while the customer has
	// only refunds.
	Last time.Time `json:"last"`
	// Orders counts purchases (refunds do not count).
	Orders int64 `json:"orders"`
	// Spend is the net monetary value in minor units: purchases less refunds.
	Spend int64 `json:"spend"`
}

// state is a customer's running totals. Every field is an aggregate that
// does not care about order (a maximum, counts, sums of integers), which is
// what makes the book's scores the same whatever order sales arrive in.
type state struct {
	last   int64 // Unix milliseconds of the latest purchase; noLast before one
	orders int64
	spend  int64
}

const noLast = math.MinInt64

// ranked reports whether the customer is scored: they have bought.
func (s state) ranked() bool { return s.orders > 0 }

// Book scores customers by recency, frequency and monetary value as sales
// arrive. It keeps every scored customer's three values in sorted
// multisets (sorted chunks of up to 1024 values), so a sale moves one value
// per dimension and a customer's scores are read from the current state of
// everyone in O(n/1024 + log n), microseconds at a million customers: no
// batch recomputation, ever. Scores are relative: a sale can
// move other customers' scores, and reading a score always reflects every
// sale added so far.
//
// A customer's scores follow from the counts of customers strictly below
// them: with L of the n scored customers below value v,
//
//	score(v) = 1 + ⌊5·L/n⌋
//
// so ties share the lower score (everyone who bought once has F = 1) and
// the scores depend only on the set of sales, never on their order.
// Recency ranks the time of the latest purchase, which ranks customers as
// the time since it would at any "now": scores do not decay with the clock,
// only with other customers' purchases.
//
// Add is not idempotent: the caller applies each sale once (the hub's
// ingest drops duplicate events). A Book is safe for concurrent use.
type Book struct {
	mu sync.RWMutex
	// Customers live in two parallel slices, found by index: a pass over
	// everyone (Summary, Each) reads memory in order, and a million
	// customers are not a million allocations.
	index   map[string]int32
	ids     []string
	states  []state
	r, f, m *multiset
}

// NewBook returns an empty book.
func NewBook() *Book { return newBook(defaultSplit) }

func newBook(split int) *Book {
	return &Book{index: map[string]int32{}, r: newMultiset(split), f: newMultiset(split), m: newMultiset(split)}
}

// Add counts a sale.
func (b *Book) Add(s Sale) error {
	if err := s.Validate(); err != nil {
		return err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	i, ok := b.index[s.Customer]
	if !ok {
		i = int32(len(b.states))
		b.index[s.Customer] = i
		b.ids = append(b.ids, s.Customer)
		b.states = append(b.states, state{last: noLast})
	}
	st := &b.states[i]
	old := *st
	if s.Refund {
		st.spend -= s.Amount
	} else {
		st.orders++
		st.spend += s.Amount
		st.last = max(st.last, s.At.UnixMilli())
	}
	if old.ranked() {
		b.r.remove(old.last)
		b.f.remove(old.orders)
		b.m.remove(old.spend)
	}
	if st.ranked() {
		b.r.insert(st.last)
		b.f.insert(st.orders)
		b.m.insert(st.spend)
	}
	return nil
}

// Forget drops what the book counted for customer, who is no longer
// scored (their purchases were re-attributed or erased).
func (b *Book) Forget(customer string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	i, ok := b.index[customer]
	if !ok {
		return
	}
	st := &b.states[i]
	if st.ranked() {
		b.r.remove(st.last)
		b.f.remove(st.orders)
		b.m.remove(st.spend)
	}
	*st = state{last: noLast}
}

// Restore replaces the book's contents with customers, as a hub loads them
// at start: faster than adding their sales again.
func (b *Book) Restore(customers []Customer) error {
	index := make(map[string]int32, len(customers))
	ids := make([]string, 0, len(customers))
	states := make([]state, 0, len(customers))
	var rs, fs, ms []int64
	for _, c := range customers {
		_, dup := index[c.ID]
		switch {
		case c.ID == "":
			return fmt.Errorf("%w: a customer without id", ErrInvalidSale)
		case dup:
			return fmt.Errorf("%w: customer %q twice", ErrInvalidSale, c.ID)
		case c.Orders < 0:
			return fmt.Errorf("%w: customer %q has %d orders", ErrInvalidSale, c.ID, c.Orders)
		case c.Orders > 0 && c.Last.IsZero():
			return fmt.Errorf("%w: customer %q has orders but no last purchase", ErrInvalidSale, c.ID)
		}
		st := state{last: noLast, orders: c.Orders, spend: c.Spend}
		if c.Orders > 0 {
			st.last = c.Last.UnixMilli()
			rs, fs, ms = append(rs, st.last), append(fs, st.orders), append(ms, st.spend)
		}
		index[c.ID] = int32(len(states))
		ids = append(ids, c.ID)
		states = append(states, st)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.index, b.ids, b.states = index, ids, states
	b.r.load(rs)
	b.f.load(fs)
	b.m.load(ms)
	return nil
}

// Len is how many customers are scored (have bought at least once).
func (b *Book) Len() int {
	b.mu.RLock()
	defer b.mu.RUnlock()
	return b.r.n
}

// Customer returns what the book knows of a customer.
func (b *Book) Customer(id string) (Customer, bool) {
	b.mu.RLock()
	defer b.mu.RUnlock()
	i, ok := b.index[id]
	if !ok {
		return Customer{}, false
	}
	return b.states[i].customer(id), true
}

func (s state) customer(id string) Customer {
	c := Customer{ID: id, Orders: s.orders, Spend: s.spend}
	if s.last != noLast {
		c.Last = time.UnixMilli(s.last).UTC()
	}
	return c
}

// Score returns a customer's scores and segment; false when the customer
// is unknown or has not bought yet.
func (b *Book) Score(id string) (Scores, Segment, bool) {
	b.mu.RLock()
	defer b.mu.RUnlock()
	i, ok := b.index[id]
	if !ok || !b.states[i].ranked() {
		return Scores{}, "", false
	}
	st := b.states[i]
	n := b.r.n
	q := func(set *multiset, v int64) int { return 1 + 5*set.countLess(v)/n }
	s := Scores{R: q(b.r, st.last), F: q(b.f, st.orders), M: q(b.m, st.spend)}
	return s, SegmentOf(s), true
}

// Cutoffs are the values a customer must be above for each score: a
// score of k+1 or more needs a value above the k-th cutoff (k = 1..4).
type Cutoffs struct {
	Customers int          `json:"customers"`
	Last      [4]time.Time `json:"last"`
	Orders    [4]int64     `json:"orders"`
	Spend     [4]int64     `json:"spend"`
}

// Cutoffs returns the current quintile cutoffs; the zero Cutoffs when
// nobody has bought.
func (b *Book) Cutoffs() Cutoffs {
	b.mu.RLock()
	defer b.mu.RUnlock()
	r, f, m := b.cutoffs()
	c := Cutoffs{Customers: b.r.n, Orders: f, Spend: m}
	if c.Customers > 0 {
		for k, v := range r {
			c.Last[k] = time.UnixMilli(v).UTC()
		}
	}
	return c
}

// cutoffs are, per dimension, the values u_⌈kn/5⌉ (k = 1..4) of the
// sorted values: a value is above the k-th exactly when at least ⌈kn/5⌉
// customers are below it, when 1 + ⌊5L/n⌋ > k.
func (b *Book) cutoffs() (r, f, m [4]int64) {
	n := b.r.n
	if n == 0 {
		return
	}
	for k := 1; k <= 4; k++ {
		i := (k*n + 4) / 5
		r[k-1], f[k-1], m[k-1] = b.r.kth(i), b.f.kth(i), b.m.kth(i)
	}
	return
}

func scoreFromCutoffs(v int64, cuts [4]int64) int {
	s := 1
	for _, c := range cuts {
		if v > c {
			s++
		}
	}
	return s
}

// Each calls fn with every scored customer, their scores and segment, in
// the order the book first saw them, until fn returns false. It holds the book's read
// lock: fn must not call back into the book.
func (b *Book) Each(fn func(Customer, Scores, Segment) bool) {
	b.mu.RLock()
	defer b.mu.RUnlock()
	r, f, m := b.cutoffs()
	for i, st := range b.states {
		if !st.ranked() {
			continue
		}
		s := Scores{R: scoreFromCutoffs(st.last, r), F: scoreFromCutoffs(st.orders, f), M: scoreFromCutoffs(st.spend, m)}
		if !fn(st.customer(b.ids[i]), s, SegmentOf(s)) {
			return
		}
	}
}

// SegmentSummary is one segment's size and value.
type SegmentSummary struct {
	Segment   Segment `json:"segment"`
	Customers int     `json:"customers"`
	Orders    int64   `json:"orders"`
	// Revenue is the segment's net spend in minor units.
	Revenue int64 `json:"revenue"`
	// AOV is Revenue / Orders, in minor units.
	AOV float64 `json:"aov"`
}

// Summary returns every segment (in the order of Segments, empty ones
// included) with its customers, orders, revenue and AOV. It visits every
// customer once.
func (b *Book) Summary() []SegmentSummary {
	idx := map[Segment]int{}
	out := make([]SegmentSummary, len(Segments))
	for i, s := range Segments {
		idx[s] = i
		out[i].Segment = s
	}
	b.Each(func(c Customer, _ Scores, s Segment) bool {
		o := &out[idx[s]]
		o.Customers++
		o.Orders += c.Orders
		o.Revenue += c.Spend
		return true
	})
	for i := range out {
		out[i].AOV = AOV{Revenue: out[i].Revenue, Orders: out[i].Orders}.Value()
	}
	return out
}
