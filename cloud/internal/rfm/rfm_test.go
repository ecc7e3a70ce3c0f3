package rfm

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"testing"
	"testing/quick"
	"time"
)

var day0 = time.Date(2025, 3, 1, 9, 0, 0, 0, time.UTC)

// Ensure that the multiset answers as a sorted slice would, through
// inserts and removals that split and empty its chunks.
func TestMultiset(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	s := newMultiset(4)
	var ref []int64
	for op := 0; op < 5000; op++ {
		if len(ref) > 0 && rng.IntN(3) == 0 {
			v := ref[rng.IntN(len(ref))]
			if !s.remove(v) {
				t.Fatalf("remove %d: not found", v)
			}
			i := slices.Index(ref, v)
			ref = slices.Delete(ref, i, i+1)
		} else {
			v := rng.Int64N(50) - 10
			s.insert(v)
			i, _ := slices.BinarySearch(ref, v)
			ref = slices.Insert(ref, i, v)
		}
		if s.remove(1000) {
			t.Fatal("removed a value that is not there")
		}
		if s.n != len(ref) {
			t.Fatalf("n %d, want %d", s.n, len(ref))
		}
		v := rng.Int64N(60) - 15
		want, _ := slices.BinarySearch(ref, v)
		if got := s.countLess(v); got != want {
			t.Fatalf("countLess(%d) = %d, want %d", v, got, want)
		}
		if len(ref) > 0 {
			k := 1 + rng.IntN(len(ref))
			if got := s.kth(k); got != ref[k-1] {
				t.Fatalf("kth(%d) = %d, want %d", k, got, ref[k-1])
			}
		}
	}
	s.load([]int64{5, 3, 9, 1, 1, 7, 2})
	if s.n != 7 || s.kth(1) != 1 || s.kth(7) != 9 || s.countLess(7) != 5 {
		t.Errorf("after load: n %d", s.n)
	}
}

// randomSales draws sales of a few dozen customers over a few weeks, with
// refunds and customers who bought at the same millisecond.
func randomSales(rng *rand.Rand, n int) []Sale {
	out := make([]Sale, n)
	for i := range out {
		s := Sale{
			Customer: fmt.Sprintf("C%02d", rng.IntN(40)),
			At:       day0.Add(time.Duration(rng.IntN(30*24)) * time.Hour),
			Amount:   int64(rng.IntN(20000)),
			Store:    fmt.Sprintf("S%d", rng.IntN(3)),
			Channel:  []string{"store", "web", "app"}[rng.IntN(3)],
		}
		if rng.IntN(8) == 0 {
			s.Refund = true
			s.Amount /= 3
		}
		out[i] = s
	}
	return out
}

type snapshot struct {
	scores  map[string]Scores
	summary []SegmentSummary
	cutoffs Cutoffs
	aov     map[string]AOV
}

func snap(t *testing.T, b *Book, a *AOVBook, ids []string) snapshot {
	t.Helper()
	s := snapshot{scores: map[string]Scores{}, summary: b.Summary(), cutoffs: b.Cutoffs(), aov: a.ByStore()}
	for _, id := range ids {
		if sc, _, ok := b.Score(id); ok {
			s.scores[id] = sc
		}
	}
	s.aov["total"] = a.Total()
	for k, v := range a.ByChannel() {
		s.aov["channel "+k] = v
	}
	return s
}

func ids() []string {
	var out []string
	for i := range 40 {
		out = append(out, fmt.Sprintf("C%02d", i))
	}
	return out
}

// Ensure that scores, segments, cutoffs and AOV are the same whatever order
// the same sales arrive in.
func TestScores_SameInAnyOrder(t *testing.T) {
	prop := func(seed uint64) bool {
		rng := rand.New(rand.NewPCG(seed, 7))
		sales := randomSales(rng, 300)
		var first snapshot
		for round := range 4 {
			order := slices.Clone(sales)
			if round > 0 {
				rng.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
			}
			b, a := newBook(8), NewAOVBook()
			for _, s := range order {
				if b.Add(s) != nil || a.Add(s) != nil {
					return false
				}
			}
			got := snap(t, b, a, ids())
			if round == 0 {
				first = got
				continue
			}
			if fmt.Sprint(got) != fmt.Sprint(first) {
				t.Logf("seed %d round %d:\n%v\n%v", seed, round, got, first)
				return false
			}
		}
		return true
	}
	if err := quick.Check(prop, &quick.Config{MaxCount: 50}); err != nil {
		t.Error(err)
	}
}

// Ensure that every score is 1 + ⌊5·L/n⌋ counted by brute force, that
// Each (by cutoffs) and Score (by counting) agree, and that every segment
// is the one the table gives.
func TestScores_DefinitionAndSegments(t *testing.T) {
	prop := func(seed uint64) bool {
		rng := rand.New(rand.NewPCG(seed, 11))
		b := newBook(4)
		for _, s := range randomSales(rng, 200) {
			if err := b.Add(s); err != nil {
				t.Fatal(err)
			}
		}
		var all []Customer
		for _, id := range ids() {
			if c, ok := b.Customer(id); ok && c.Orders > 0 {
				all = append(all, c)
			}
		}
		if len(all) != b.Len() {
			t.Logf("%d ranked customers, Len %d", len(all), b.Len())
			return false
		}
		below := func(v func(Customer) int64, c Customer) int {
			n := 0
			for _, o := range all {
				if v(o) < v(c) {
					n++
				}
			}
			return 1 + 5*n/len(all)
		}
		ok := true
		seen := 0
		b.Each(func(c Customer, s Scores, seg Segment) bool {
			seen++
			want := Scores{
				R: below(func(c Customer) int64 { return c.Last.UnixMilli() }, c),
				F: below(func(c Customer) int64 { return c.Orders }, c),
				M: below(func(c Customer) int64 { return c.Spend }, c),
			}
			s2, seg2, _ := b.Score(c.ID)
			if s != want || s2 != want || seg != seg2 || seg != segmentTable[5-s.R][s.FM()-1] {
				t.Logf("seed %d %s: Each %v %s, Score %v %s, want %v", seed, c.ID, s, seg, s2, seg2, want)
				ok = false
			}
			return true
		})
		return ok && seen == len(all)
	}
	if err := quick.Check(prop, &quick.Config{MaxCount: 50}); err != nil {
		t.Error(err)
	}
}

// Ensure that the table in the package documentation is the table the
// code uses.
func TestSegmentTable_Documented(t *testing.T) {
	doc, err := os.ReadFile("doc.go")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range renderTable() {
		if !strings.Contains(string(doc), "//\t"+line+"\n") {
			t.Errorf("doc.go lacks the table line\n%s", line)
		}
	}
	seen := map[Segment]bool{}
	for _, row := range segmentTable {
		for _, s := range row {
			seen[s] = true
		}
	}
	if len(seen) != len(Segments) {
		t.Errorf("the table names %d segments, there are %d", len(seen), len(Segments))
	}
}

// Ensure that the named cells of the table give their segments.
func TestSegmentOf(t *testing.T) {
	tests := []struct {
		s    Scores
		want Segment
	}{
		{Scores{5, 5, 5}, Champions},
		{Scores{4, 4, 4}, LoyalCustomers},
		{Scores{4, 5, 4}, Champions}, // FM 4.5 rounds up to 5
		{Scores{3, 5, 5}, LoyalCustomers},
		{Scores{5, 1, 1}, NewCustomers},
		{Scores{5, 1, 2}, PotentialLoyalists},
		{Scores{4, 1, 1}, Promising},
		{Scores{3, 3, 3}, NeedAttention},
		{Scores{3, 1, 2}, AboutToSleep},
		{Scores{2, 3, 4}, AtRisk},
		{Scores{2, 5, 5}, CantLoseThem},
		{Scores{1, 5, 4}, CantLoseThem},
		{Scores{1, 2, 1}, Hibernating},
		{Scores{2, 1, 1}, Hibernating},
		{Scores{1, 1, 1}, Lost},
		{Scores{0, 9, 9}, CantLoseThem}, // clamped
	}
	for _, tt := range tests {
		if got := SegmentOf(tt.s); got != tt.want {
			t.Errorf("SegmentOf(%v) = %s, want %s", tt.s, got, tt.want)
		}
	}
	if CantLoseThem.Title() != "Can't lose them" || AboutToSleep.Title() != "About to sleep" {
		t.Errorf("titles %q %q", CantLoseThem.Title(), AboutToSleep.Title())
	}
}

// Ensure that scores follow from sales in the simplest cases: ties share
// the lower score, refunds count no order, recency does not need a clock.
func TestBook_Basics(t *testing.T) {
	b := NewBook()
	sale := func(c string, day int, amount int64) Sale {
		return Sale{Customer: c, At: day0.AddDate(0, 0, day), Amount: amount}
	}
	for _, s := range []Sale{
		sale("ann", 0, 1000), sale("ann", 9, 3000), // 2 orders, last day 9, 40.00
		sale("bob", 5, 500), // 1 order
		sale("cid", 1, 900), sale("dan", 2, 800), sale("eve", 3, 700),
		{Customer: "fay", At: day0, Amount: 100, Refund: true}, // only a refund: not scored
	} {
		if err := b.Add(s); err != nil {
			t.Fatal(err)
		}
	}
	if b.Len() != 5 {
		t.Errorf("Len %d, want 5", b.Len())
	}
	if _, _, ok := b.Score("fay"); ok {
		t.Error("a customer with only a refund is scored")
	}
	if c, _ := b.Customer("fay"); c.Spend != -100 || c.Orders != 0 || !c.Last.IsZero() {
		t.Errorf("fay %+v", c)
	}
	if s, seg, _ := b.Score("ann"); s != (Scores{5, 5, 5}) || seg != Champions {
		t.Errorf("ann %v %s", s, seg)
	}
	// Four customers bought once: they share F = 1.
	if s, _, _ := b.Score("eve"); s.F != 1 || s.R != 3 {
		t.Errorf("eve %v", s)
	}
	if err := b.Add(Sale{Customer: "ann", At: day0.AddDate(0, 0, 10), Amount: 3900, Refund: true}); err != nil {
		t.Fatal(err)
	}
	if c, _ := b.Customer("ann"); c.Spend != 100 || c.Orders != 2 || !c.Last.Equal(day0.AddDate(0, 0, 9)) {
		t.Errorf("ann after a refund %+v", c)
	}
	if s, _, _ := b.Score("ann"); s.M != 1 {
		t.Errorf("ann's M after the refund %v", s)
	}
	cut := b.Cutoffs()
	if cut.Customers != 5 || cut.Orders != [4]int64{1, 1, 1, 1} {
		t.Errorf("cutoffs %+v", cut)
	}
	for _, s := range []Sale{{At: day0}, {Customer: "x"}, {Customer: "x", At: day0, Amount: -1}} {
		if err := b.Add(s); !errors.Is(err, ErrInvalidSale) {
			t.Errorf("Add(%+v) = %v", s, err)
		}
	}
}

// Ensure that a book restored from customers scores as the book that added
// their sales, and that Restore refuses impossible customers.
func TestBook_Restore(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	added := newBook(8)
	for _, s := range randomSales(rng, 500) {
		if err := added.Add(s); err != nil {
			t.Fatal(err)
		}
	}
	var cs []Customer
	for _, id := range ids() {
		if c, ok := added.Customer(id); ok {
			cs = append(cs, c)
		}
	}
	restored := newBook(8)
	if err := restored.Restore(cs); err != nil {
		t.Fatal(err)
	}
	a := NewAOVBook()
	if fmt.Sprint(snap(t, added, a, ids())) != fmt.Sprint(snap(t, restored, a, ids())) {
		t.Error("restored book differs")
	}
	for _, bad := range [][]Customer{
		{{ID: ""}},
		{{ID: "a", Orders: 1, Last: day0}, {ID: "a", Orders: 1, Last: day0}},
		{{ID: "a", Orders: -1}},
		{{ID: "a", Orders: 1}},
	} {
		if err := restored.Restore(bad); !errors.Is(err, ErrInvalidSale) {
			t.Errorf("Restore(%+v) = %v", bad, err)
		}
	}
}

// Ensure that AOV is net revenue over orders, overall, by store, channel
// and segment.
func TestAOV(t *testing.T) {
	a, b := NewAOVBook(), NewBook()
	for _, s := range []Sale{
		{Customer: "a", At: day0, Amount: 3000, Store: "S1", Channel: "store"},
		{Customer: "b", At: day0, Amount: 1000, Store: "S1", Channel: "web"},
		{Customer: "a", At: day0, Amount: 500, Store: "S2", Channel: "store"},
		{Customer: "a", At: day0, Amount: 1000, Store: "S1", Channel: "store", Refund: true},
	} {
		if err := a.Add(s); err != nil {
			t.Fatal(err)
		}
		if err := b.Add(s); err != nil {
			t.Fatal(err)
		}
	}
	if got := a.Total(); got != (AOV{Revenue: 3500, Orders: 3}) || got.Value() != 3500.0/3 {
		t.Errorf("total %+v", got)
	}
	if got := a.ByStore(); got["S1"] != (AOV{Revenue: 3000, Orders: 2}) || got["S2"] != (AOV{Revenue: 500, Orders: 1}) {
		t.Errorf("by store %+v", got)
	}
	if got := a.ByChannel(); got["store"].Value() != 1250 || got["web"].Value() != 1000 {
		t.Errorf("by channel %+v", got)
	}
	if (AOV{}).Value() != 0 {
		t.Error("AOV without orders")
	}
	var total SegmentSummary
	for _, s := range b.Summary() {
		total.Customers += s.Customers
		total.Orders += s.Orders
		total.Revenue += s.Revenue
		if s.Orders > 0 && s.AOV != float64(s.Revenue)/float64(s.Orders) {
			t.Errorf("%s: AOV %g", s.Segment, s.AOV)
		}
	}
	if total.Customers != 2 || total.Orders != 3 || total.Revenue != 3500 {
		t.Errorf("segments add up to %+v", total)
	}
	if err := a.Add(Sale{}); !errors.Is(err, ErrInvalidSale) {
		t.Errorf("invalid sale: %v", err)
	}
}
