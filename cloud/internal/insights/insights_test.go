package insights

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/omnisync/omnisync/cloud/internal/automation"
	"github.com/omnisync/omnisync/cloud/internal/rfm"
	"github.com/omnisync/omnisync/shared/testkit"
)

// feed is an in-memory PurchaseFeed.
type feed struct {
	mu sync.Mutex
	ps []Purchase
}

func (f *feed) add(p Purchase) {
	f.mu.Lock()
	defer f.mu.Unlock()
	p.Cursor = int64(len(f.ps) + 1)
	if p.EventID == "" {
		p.EventID = fmt.Sprint("ev-", p.Cursor)
	}
	f.ps = append(f.ps, p)
}

func (f *feed) PurchasesAfter(_ context.Context, cursor int64, limit int) ([]Purchase, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	i := sort.Search(len(f.ps), func(i int) bool { return f.ps[i].Cursor > cursor })
	return append([]Purchase(nil), f.ps[i:min(i+limit, len(f.ps))]...), nil
}

// sink collects triggers.
type sink struct {
	mu  sync.Mutex
	evs []automation.Event
}

func (s *sink) handle(_ context.Context, evs ...automation.Event) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.evs = append(s.evs, evs...)
	return len(evs), nil
}

func (s *sink) of(t automation.Trigger) []automation.Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []automation.Event
	for _, e := range s.evs {
		if e.Trigger == t {
			out = append(out, e)
		}
	}
	return out
}

var now = time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)

// Ensure that purchases read from the feed update scores, segments and
// AOV at once, that fresh purchases trigger post_purchase (old ones do
// not), and that a customer dropping to "At risk" between two sweeps
// triggers at_risk.
func TestService_BooksAndTriggers(t *testing.T) {
	f, sk := &feed{}, &sink{}
	s, err := New(Config{Feed: f, Triggers: sk.handle, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	// A good customer, long ago; others of every kind.
	for i := range 6 {
		f.add(Purchase{Customer: "VIP", At: now.AddDate(0, -8, -i), Amount: 30000, Store: "S1", Channel: "store"})
	}
	for i := range 20 {
		for k := range 1 + i%3 {
			f.add(Purchase{Customer: fmt.Sprint("C", i), At: now.AddDate(0, -10+i/3, -k), Amount: int64(1000 + 500*i), Store: "S2", Channel: "web"})
		}
	}
	f.add(Purchase{Customer: "C1", At: now.AddDate(0, -1, 0), Amount: 400, Refund: true, Store: "S2", Channel: "web"})
	if n, err := s.Refresh(ctx); err != nil || n != len(f.ps) {
		t.Fatalf("refresh %d %v", n, err)
	}
	s.Sweep(ctx)
	before := s.Segment("VIP")
	if before == "" || before == string(rfm.AtRisk) {
		t.Fatalf("VIP starts as %q", before)
	}
	aov := s.AOV()
	if aov.Total.Orders != int64(len(f.ps)-1) || aov.ByStore["S1"].AOV != 30000 || aov.ByChannel["web"].Orders == 0 {
		t.Fatalf("aov %+v", aov)
	}
	if len(sk.of(automation.PostPurchase)) != 0 {
		t.Fatal("old purchases triggered post_purchase")
	}
	// Many customers buy now: VIP, unchanged, falls behind on recency.
	for i := range 60 {
		f.add(Purchase{Customer: fmt.Sprint("N", i), At: now.Add(-time.Duration(i) * time.Minute), Amount: 2000, Store: "S1", Channel: "store"})
	}
	if _, err := s.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if got := len(sk.of(automation.PostPurchase)); got != 60 {
		t.Fatalf("post_purchase %d", got)
	}
	s.Sweep(ctx)
	segs := s.Segments()
	if segs.Customers != 81 || len(segs.Movement) == 0 {
		t.Fatalf("segments %+v", segs)
	}
	var want []string
	for _, m := range segs.Movement {
		if m.To == rfm.AtRisk {
			for range m.Customers {
				want = append(want, "")
			}
		}
	}
	risk := sk.of(automation.AtRisk)
	if len(risk) != len(want) || len(risk) == 0 {
		t.Fatalf("at_risk triggers %d, movement into at_risk %d (VIP %s → %s)", len(risk), len(want), before, s.Segment("VIP"))
	}
	for _, e := range risk {
		if s.Segment(e.Customer) != string(rfm.AtRisk) || e.Attrs["segment.from"] == "" {
			t.Errorf("at_risk %+v", e)
		}
	}
}

// Ensure that CLV is refitted in the background while purchases keep
// being counted, and that a customer's report carries it.
func TestService_RunAndRefit(t *testing.T) {
	f := &feed{}
	rng := rand.New(rand.NewPCG(1, 2))
	start := now.AddDate(-1, 0, 0)
	for i := range 800 {
		c := fmt.Sprint("C", i)
		t0 := start.Add(time.Duration(rng.IntN(26*7*24)) * time.Hour)
		rate := rng.ExpFloat64() * 0.3 // purchases a week
		spend := int64(2000 + rng.IntN(8000))
		churn := rng.Float64() * rng.Float64() // heterogeneous dropout
		for at := t0; at.Before(now); at = at.Add(time.Duration(rng.ExpFloat64() / max(rate, 0.01) * float64(7*24*time.Hour))) {
			f.add(Purchase{Customer: c, At: at, Amount: spend + int64(rng.IntN(1000)), Store: "S1", Channel: "store"})
			if rng.Float64() < churn {
				break // churned
			}
		}
	}
	s, err := New(Config{Feed: f, Now: func() time.Time { return now }, Poll: 10 * time.Millisecond, Logger: testkit.Logger(t)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.CLV(); !errors.Is(err, ErrNoFit) {
		t.Fatalf("before: %v", err)
	}
	go s.Run(context.Background())
	defer s.Close()
	testkit.Eventually(t, 30*time.Second, func() bool { _, err := s.CLV(); return err == nil }, "a CLV fit")
	rep, _ := s.CLV()
	if rep.Customers != 800 || rep.Fit.Purchases.R <= 0 || rep.Fit.Spend.P <= 0 || len(rep.Distribution) != 20 || rep.Mean <= 0 {
		t.Fatalf("fit %+v", rep)
	}
	total := 0
	for _, b := range rep.Distribution {
		total += b.Customers
	}
	if total != 800 {
		t.Errorf("distribution counts %d", total)
	}
	f.add(Purchase{Customer: "NEW", At: now, Amount: 5000, Store: "S9", Channel: "web"})
	s.Notify()
	testkit.Eventually(t, 5*time.Second, func() bool { _, ok := s.Customer("NEW"); return ok }, "the new purchase counted")
	c, _ := s.Customer("C1")
	if c.CLV == nil || *c.CLV < 0 || c.ProbAlive == nil {
		t.Errorf("customer %+v", c)
	}
}

// Ensure that a merge's re-attribution (a reset and moved entries) moves
// a customer's purchases without counting them again in AOV or
// triggering, and that an erased customer's anonymous entries count in
// AOV only.
func TestService_ResetAndMoved(t *testing.T) {
	f, sk := &feed{}, &sink{}
	s, err := New(Config{Feed: f, Triggers: sk.handle, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	f.add(Purchase{Customer: "A", At: now.Add(-time.Hour), Amount: 1000, Store: "S1", Channel: "store"})
	f.add(Purchase{Customer: "B", At: now.Add(-2 * time.Hour), Amount: 600, Store: "S1", Channel: "web"})
	f.add(Purchase{Customer: "", At: now.Add(-3 * time.Hour), Amount: 400, Store: "S1", Channel: "store"})
	if _, err := s.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	// B merges into A: B is reset (nothing left), its purchase moves.
	f.add(Purchase{Customer: "B", Reset: true})
	f.add(Purchase{Customer: "A", At: now.Add(-2 * time.Hour), Amount: 600, Store: "S1", Channel: "web", Moved: true})
	if _, err := s.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	a, ok := s.book.Customer("A")
	if !ok || a.Orders != 2 || a.Spend != 1600 {
		t.Fatalf("A after the merge: %+v", a)
	}
	if s.Segment("B") != "" {
		t.Fatalf("B still scored: %s", s.Segment("B"))
	}
	if aov := s.AOV(); aov.Total.Orders != 3 || aov.Total.Revenue != 2000 {
		t.Fatalf("aov %+v", aov.Total)
	}
	if got := len(sk.of(automation.PostPurchase)); got != 2 {
		t.Fatalf("post_purchase %d, want 2 (no anonymous, no moved)", got)
	}
	s.Sweep(ctx)
	if segs := s.Segments(); segs.Customers != 1 {
		t.Fatalf("segments %+v", segs)
	}
}
