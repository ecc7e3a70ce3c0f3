// Package insights keeps the hub's customer analytics live: RFM scores and
// segments and AOV (package rfm), updated purchase by purchase from a
// feed of purchases attributed to customers, and CLV (package clv),
// refitted in the background on a copy of the customers. It also turns
// what it sees into automation triggers: a purchase (post_purchase) and a
// customer dropping to "at risk".
//
// The Service owns its goroutines: Run feeds the books and sweeps the
// segments; the CLV refit runs in a goroutine of its own that never holds
// the books' lock while it fits, so neither the hub's apply path (which
// only calls Notify) nor the books wait for a fit.
//
// Sharp edges: the books are in memory, rebuilt from the feed at start
// (every replica keeps its own, all reading the same feed); scores are
// relative to everyone else, so movement between segments is measured
// between two sweeps, not per purchase.
package insights

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"sort"
	"sync"
	"time"

	"github.com/omnisync/omnisync/cloud/internal/automation"
	"github.com/omnisync/omnisync/cloud/internal/clv"
	"github.com/omnisync/omnisync/cloud/internal/rfm"
)

// Purchase is a sale (or a refund) attributed to a customer.
type Purchase struct {
	// Cursor orders the feed (see PurchaseFeed).
	Cursor int64
	// EventID is the sale event's id (the post-purchase trigger's id).
	EventID  string
	Customer string // master id
	At       time.Time
	Amount   int64 // minor units, net of discounts; never negative
	Refund   bool
	Store    string
	Channel  string
	// Moved re-attributes a purchase counted before (under another
	// customer, or under this one before a Reset): it counts in the
	// customer's RFM, not again in AOV, and triggers nothing.
	Moved bool
	// Reset forgets everything counted for Customer (a merge, unmerge or
	// erasure took purchases away: recency cannot be subtracted); Moved
	// entries with what the customer keeps follow. Only Customer is set.
	Reset bool
}

// PurchaseFeed is the purchases attributed to customers, as the customer
// store keeps them.
type PurchaseFeed interface {
	// PurchasesAfter returns up to limit purchases with a cursor above
	// cursor, in cursor order. Once a cursor has been returned, no
	// purchase with a lower one may appear later (a commit-ordered
	// sequence), so a reader resuming from its last cursor misses nothing
	// and counts nothing twice. A customer merge re-attributes purchases
	// as new entries: a Reset of each customer who lost purchases followed
	// by what they keep, and the moved purchases under their new master
	// id, all Moved. A purchase without Customer (an erased customer's)
	// counts in AOV only.
	PurchasesAfter(ctx context.Context, cursor int64, limit int) ([]Purchase, error)
}

// TriggerSink receives the automation triggers the service sees
// (runner.Runner.Handle).
type TriggerSink func(ctx context.Context, evs ...automation.Event) (int, error)

// Config builds a Service.
type Config struct {
	Feed PurchaseFeed
	// Triggers, when set, receives post_purchase and at_risk events.
	Triggers TriggerSink
	// Poll is how often the feed is read without a Notify (default 1 s).
	Poll time.Duration
	// SweepEvery is how often segments are counted and compared with the
	// last sweep (default 1 min); RefitEvery how often CLV is refitted
	// (default 1 h; the first fit starts once the feed is read).
	SweepEvery, RefitEvery time.Duration
	// Fresh is how recent a purchase must be to trigger post_purchase
	// (default 24 h): reading the feed from the start after a restart
	// must not invite every customer ever.
	Fresh time.Duration
	// Horizon values customers (default: 12 months of 4.345 weeks, 1% a
	// month). The distribution uses one undiscounted year instead,
	// cheaper at a million customers.
	Horizon clv.Horizon
	Now     func() time.Time
	Logger  *slog.Logger
}

// Service keeps the books. Safe for concurrent use.
type Service struct {
	cfg  Config
	book *rfm.Book
	aov  *rfm.AOVBook

	mu     sync.Mutex // guards what follows
	cursor int64
	first  map[string]int64 // first purchase, Unix ms
	// last sweep: each customer's segment, the counts, the movement.
	swept    map[string]rfm.Segment
	sweptAt  time.Time
	summary  []rfm.SegmentSummary
	movement map[[2]rfm.Segment]int
	fit      *CLVReport
	fitting  bool
	fitErr   error

	notify chan struct{}
	runMu  sync.Mutex
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// New returns a Service reading cfg.Feed.
func New(cfg Config) (*Service, error) {
	if cfg.Feed == nil {
		return nil, errors.New("insights: a purchase feed is required")
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&cfg.Poll, time.Second)
	def(&cfg.SweepEvery, time.Minute)
	def(&cfg.RefitEvery, time.Hour)
	def(&cfg.Fresh, 24*time.Hour)
	if cfg.Horizon == (clv.Horizon{}) {
		cfg.Horizon = clv.Horizon{Periods: 12, PeriodLength: 52.0 / 12, DiscountRate: 0.01}
	}
	if err := cfg.Horizon.Validate(); err != nil {
		return nil, err
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Service{cfg: cfg, book: rfm.NewBook(), aov: rfm.NewAOVBook(), first: map[string]int64{},
		notify: make(chan struct{}, 1)}, nil
}

// Notify tells the service purchases were added (the hub calls it after
// a batch with sales commits): it reads the feed at once.
func (s *Service) Notify() {
	select {
	case s.notify <- struct{}{}:
	default:
	}
}

const feedPage = 10000

// Refresh reads the feed up to its end and counts every new purchase; it
// returns how many it counted. Run calls it; tests and benchmarks may.
func (s *Service) Refresh(ctx context.Context) (int, error) {
	n := 0
	for {
		s.mu.Lock()
		cursor := s.cursor
		s.mu.Unlock()
		ps, err := s.cfg.Feed.PurchasesAfter(ctx, cursor, feedPage)
		if err != nil {
			return n, fmt.Errorf("insights: purchases: %w", err)
		}
		var fresh []automation.Event
		now := s.cfg.Now()
		for _, p := range ps {
			if p.Cursor <= cursor {
				return n, fmt.Errorf("insights: feed went back from cursor %d to %d", cursor, p.Cursor)
			}
			cursor = p.Cursor
			if p.Reset {
				s.book.Forget(p.Customer)
				s.mu.Lock()
				delete(s.first, p.Customer)
				s.mu.Unlock()
				n++
				continue
			}
			sale := rfm.Sale{Customer: p.Customer, At: p.At, Amount: p.Amount, Refund: p.Refund, Store: p.Store, Channel: p.Channel}
			if !p.Moved {
				counted := sale
				if counted.Customer == "" {
					// AOV does not look at whose sale it is; the
					// placeholder only passes the sale's validation.
					counted.Customer = "anonymous"
				}
				if err := s.aov.Add(counted); err != nil {
					s.cfg.Logger.Warn("insights: purchase not counted", "cursor", p.Cursor, "err", err)
					continue
				}
			}
			n++
			if p.Customer == "" {
				continue
			}
			if err := s.book.Add(sale); err != nil {
				s.cfg.Logger.Warn("insights: purchase not counted", "cursor", p.Cursor, "err", err)
				continue
			}
			if !p.Refund {
				s.mu.Lock()
				if f, ok := s.first[p.Customer]; !ok || p.At.UnixMilli() < f {
					s.first[p.Customer] = p.At.UnixMilli()
				}
				s.mu.Unlock()
				if !p.Moved && p.EventID != "" && now.Sub(p.At) < s.cfg.Fresh {
					fresh = append(fresh, automation.Event{ID: "purchase:" + p.EventID, Trigger: automation.PostPurchase, At: p.At,
						Customer: p.Customer, Store: p.Store, Attrs: map[string]string{"amount": fmt.Sprint(p.Amount), "channel": p.Channel}})
				}
			}
		}
		s.mu.Lock()
		s.cursor = cursor
		s.mu.Unlock()
		if len(fresh) > 0 && s.cfg.Triggers != nil {
			if _, err := s.cfg.Triggers(ctx, fresh...); err != nil {
				s.cfg.Logger.Warn("insights: post-purchase triggers", "err", err)
			}
		}
		if len(ps) < feedPage {
			return n, nil
		}
	}
}

// Run reads the feed, sweeps segments and refits CLV until ctx ends or
// Close. It returns nil then.
func (s *Service) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	s.runMu.Lock()
	if s.cancel != nil {
		s.runMu.Unlock()
		cancel()
		return errors.New("insights: already running")
	}
	s.cancel = cancel
	s.wg.Add(1)
	s.runMu.Unlock()
	defer s.wg.Done()
	defer cancel()

	poll := time.NewTicker(s.cfg.Poll)
	defer poll.Stop()
	sweep := time.NewTicker(s.cfg.SweepEvery)
	defer sweep.Stop()
	refit := time.NewTicker(s.cfg.RefitEvery)
	defer refit.Stop()
	if _, err := s.Refresh(ctx); err != nil && ctx.Err() == nil {
		s.cfg.Logger.Warn("insights: refresh", "err", err)
	}
	s.Sweep(ctx)
	s.startRefit(ctx)
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-s.notify:
		case <-poll.C:
		case <-sweep.C:
			s.Sweep(ctx)
			continue
		case <-refit.C:
			s.startRefit(ctx)
			continue
		}
		if _, err := s.Refresh(ctx); err != nil && ctx.Err() == nil {
			s.cfg.Logger.Warn("insights: refresh", "err", err)
		}
	}
}

// Close stops Run and a refit in progress, and waits for them.
func (s *Service) Close() error {
	s.runMu.Lock()
	cancel := s.cancel
	s.runMu.Unlock()
	if cancel != nil {
		cancel()
	}
	s.wg.Wait()
	return nil
}

// Sweep counts the segments and compares every customer's with the last
// sweep: the movement between them, and an at_risk trigger for each
// customer who dropped to "At risk" (not for one seen there first).
func (s *Service) Sweep(ctx context.Context) {
	s.mu.Lock()
	prev := s.swept
	s.mu.Unlock()
	now := s.cfg.Now()
	next := make(map[string]rfm.Segment, s.book.Len())
	move := map[[2]rfm.Segment]int{}
	var atRisk []automation.Event
	s.book.Each(func(c rfm.Customer, _ rfm.Scores, seg rfm.Segment) bool {
		next[c.ID] = seg
		if prev == nil {
			return true
		}
		was, ok := prev[c.ID]
		if ok && was != seg {
			move[[2]rfm.Segment{was, seg}]++
			if seg == rfm.AtRisk {
				// The id is the customer's purchase history at the drop, the
				// same on every replica reading the feed: one message, not
				// one per replica's sweep.
				atRisk = append(atRisk, automation.Event{ID: fmt.Sprintf("at_risk:%s:%d:%d", c.ID, c.Orders, c.Last.UnixMilli()), Trigger: automation.AtRisk,
					At: now, Customer: c.ID, Attrs: map[string]string{"segment.from": string(was)}})
			}
		}
		return true
	})
	summary := s.book.Summary()
	s.mu.Lock()
	s.swept, s.sweptAt, s.summary, s.movement = next, now, summary, move
	s.mu.Unlock()
	if len(atRisk) > 0 && s.cfg.Triggers != nil {
		if _, err := s.cfg.Triggers(ctx, atRisk...); err != nil {
			s.cfg.Logger.Warn("insights: at-risk triggers", "err", err)
		}
	}
}

// Segment is the customer's segment now ("" when not scored).
func (s *Service) Segment(customer string) string {
	_, seg, ok := s.book.Score(customer)
	if !ok {
		return ""
	}
	return string(seg)
}

// Movement is how many customers went from one segment to another
// between the last two sweeps.
type Movement struct {
	From      rfm.Segment `json:"from"`
	To        rfm.Segment `json:"to"`
	Customers int         `json:"customers"`
}

// Segments is the RFM picture at the last sweep.
type Segments struct {
	At        time.Time            `json:"at"`
	Customers int                  `json:"customers"`
	Segments  []rfm.SegmentSummary `json:"segments"`
	Movement  []Movement           `json:"movement"`
	Cutoffs   rfm.Cutoffs          `json:"cutoffs"`
}

// Segments returns the segments' sizes and value at the last sweep and the
// movement since the one before.
func (s *Service) Segments() Segments {
	s.mu.Lock()
	out := Segments{At: s.sweptAt, Segments: append([]rfm.SegmentSummary(nil), s.summary...)}
	for k, n := range s.movement {
		out.Movement = append(out.Movement, Movement{From: k[0], To: k[1], Customers: n})
	}
	s.mu.Unlock()
	for _, g := range out.Segments {
		out.Customers += g.Customers
	}
	sort.Slice(out.Movement, func(i, j int) bool {
		a, b := out.Movement[i], out.Movement[j]
		if a.Customers != b.Customers {
			return a.Customers > b.Customers
		}
		return a.From+a.To < b.From+b.To
	})
	out.Cutoffs = s.book.Cutoffs()
	return out
}

// AOVReport is average order value overall, by store and by channel (by
// segment: Segments).
type AOVReport struct {
	Total     AOVFigure            `json:"total"`
	ByStore   map[string]AOVFigure `json:"by_store"`
	ByChannel map[string]AOVFigure `json:"by_channel"`
}

// AOVFigure is one AOV with what it is made of.
type AOVFigure struct {
	Revenue int64   `json:"revenue"`
	Orders  int64   `json:"orders"`
	AOV     float64 `json:"aov"`
}

func figure(a rfm.AOV) AOVFigure {
	return AOVFigure{Revenue: a.Revenue, Orders: a.Orders, AOV: a.Value()}
}

// AOV returns AOV now (it is updated with every purchase).
func (s *Service) AOV() AOVReport {
	out := AOVReport{Total: figure(s.aov.Total()), ByStore: map[string]AOVFigure{}, ByChannel: map[string]AOVFigure{}}
	for k, v := range s.aov.ByStore() {
		out.ByStore[k] = figure(v)
	}
	for k, v := range s.aov.ByChannel() {
		out.ByChannel[k] = figure(v)
	}
	return out
}

// Bucket is one bar of the CLV distribution: customers valued in
// [Low, High) minor units.
type Bucket struct {
	Low       float64 `json:"low"`
	High      float64 `json:"high"`
	Customers int     `json:"customers"`
}

// CLVReport is the last fit and what it says.
type CLVReport struct {
	FittedAt time.Time     `json:"fitted_at"`
	Took     time.Duration `json:"took_ns"`
	Fit      clv.Fit       `json:"fit"`
	Horizon  clv.Horizon   `json:"horizon"`
	// Customers valued; Mean and Total their expected value over one
	// year, undiscounted (minor units); Distribution its histogram.
	Customers    int      `json:"customers"`
	Mean         float64  `json:"mean"`
	Total        float64  `json:"total"`
	Distribution []Bucket `json:"distribution"`
}

// ErrNoFit is returned before the first CLV fit succeeded.
var ErrNoFit = errors.New("insights: no CLV fit yet")

// CLV returns the last successful fit, or ErrNoFit (wrapping the last
// fit's error, if any).
func (s *Service) CLV() (CLVReport, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fit == nil {
		if s.fitErr != nil {
			return CLVReport{}, fmt.Errorf("%w: %w", ErrNoFit, s.fitErr)
		}
		return CLVReport{}, ErrNoFit
	}
	return *s.fit, nil
}

// CustomerReport is one customer's scores and value.
type CustomerReport struct {
	Customer  rfm.Customer `json:"customer"`
	Scores    rfm.Scores   `json:"scores"`
	Segment   rfm.Segment  `json:"segment"`
	CLV       *float64     `json:"clv,omitempty"`
	ProbAlive *float64     `json:"prob_alive,omitempty"`
}

// Customer returns one customer's RFM and, once fitted, CLV over the
// service's horizon; false for a customer who never bought.
func (s *Service) Customer(id string) (CustomerReport, bool) {
	sc, seg, ok := s.book.Score(id)
	if !ok {
		return CustomerReport{}, false
	}
	c, _ := s.book.Customer(id)
	out := CustomerReport{Customer: c, Scores: sc, Segment: seg}
	s.mu.Lock()
	fit, first := s.fit, s.first[id]
	s.mu.Unlock()
	if fit != nil {
		if cc, ok := clvCustomer(c, first, s.cfg.Now()); ok {
			m := fit.Fit.Model()
			if v, err := m.CLV(cc, s.cfg.Horizon); err == nil {
				out.CLV = &v
			}
			p := m.Purchases.ProbAlive(cc)
			out.ProbAlive = &p
		}
	}
	return out, true
}

const week = float64(7 * 24 * time.Hour / time.Millisecond)

// clvCustomer is c in the models' terms, in weeks: repeat purchases,
// the time of the last one and of now since the first. The average spend
// is over every order (the first included): the books keep no more.
func clvCustomer(c rfm.Customer, firstMS int64, now time.Time) (clv.Customer, bool) {
	if c.Orders <= 0 || firstMS == 0 || c.Last.IsZero() {
		return clv.Customer{}, false
	}
	x := int(c.Orders - 1)
	tx := max(float64(c.Last.UnixMilli()-firstMS)/week, 0)
	t := max(float64(now.UnixMilli()-firstMS)/week, tx, 1.0/7)
	if x == 0 {
		tx = 0
	}
	avg := float64(c.Spend) / float64(c.Orders)
	if x > 0 && !(avg > 0) {
		return clv.Customer{}, false // refunds outweigh purchases: nothing to model
	}
	return clv.Customer{X: x, Tx: tx, T: t, AvgSpend: avg}, true
}

// startRefit fits CLV in a goroutine of its own unless one is running.
func (s *Service) startRefit(ctx context.Context) {
	s.mu.Lock()
	if s.fitting {
		s.mu.Unlock()
		return
	}
	s.fitting = true
	s.mu.Unlock()
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		rep, err := s.Refit(ctx)
		s.mu.Lock()
		s.fitting = false
		if err != nil {
			s.fitErr = err
		} else {
			s.fit, s.fitErr = &rep, nil
		}
		s.mu.Unlock()
		if err != nil && ctx.Err() == nil {
			s.cfg.Logger.Warn("insights: CLV fit", "err", err)
		}
	}()
}

// Refit copies the customers (one pass under the books' read lock), fits
// both models on the copy and values everyone; the books stay free
// meanwhile. It does not install the result (Run does).
func (s *Service) Refit(ctx context.Context) (CLVReport, error) {
	start := time.Now()
	now := s.cfg.Now()
	s.mu.Lock()
	first := s.first
	var cs []clv.Customer
	s.book.Each(func(c rfm.Customer, _ rfm.Scores, _ rfm.Segment) bool {
		if cc, ok := clvCustomer(c, first[c.ID], now); ok {
			cs = append(cs, cc)
		}
		return true
	})
	s.mu.Unlock()
	fit, err := clv.FitModel(ctx, cs)
	if err != nil {
		return CLVReport{}, err
	}
	rep := CLVReport{FittedAt: now, Fit: fit, Horizon: s.cfg.Horizon, Customers: len(cs)}
	year := clv.Horizon{Periods: 1, PeriodLength: 52}
	m := fit.Model()
	values := make([]float64, 0, len(cs))
	for i, c := range cs {
		if i%4096 == 0 && ctx.Err() != nil {
			return CLVReport{}, ctx.Err()
		}
		v, err := m.CLV(c, year)
		if err != nil || math.IsNaN(v) {
			continue
		}
		values = append(values, v)
		rep.Total += v
	}
	if len(values) > 0 {
		rep.Mean = rep.Total / float64(len(values))
	}
	rep.Distribution = histogram(values, 20)
	rep.Took = time.Since(start)
	return rep, nil
}

// histogram splits values into n equal bars up to their 99th percentile,
// the last bar taking the tail.
func histogram(values []float64, n int) []Bucket {
	if len(values) == 0 {
		return nil
	}
	sorted := append([]float64(nil), values...)
	sort.Float64s(sorted)
	hi := sorted[len(sorted)*99/100]
	if hi <= 0 {
		hi = sorted[len(sorted)-1] + 1
	}
	step := hi / float64(n)
	out := make([]Bucket, n)
	for i := range out {
		out[i] = Bucket{Low: float64(i) * step, High: float64(i+1) * step}
	}
	out[n-1].High = math.Max(sorted[len(sorted)-1], hi)
	for _, v := range sorted {
		i := int(v / step)
		out[min(max(i, 0), n-1)].Customers++
	}
	return out
}
