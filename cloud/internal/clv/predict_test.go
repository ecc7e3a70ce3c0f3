package clv

import (
	"errors"
	"math"
	"testing"
)

// hyp2f1Series sums the Gauss hypergeometric series term by term, an
// implementation independent of the one the package uses.
func hyp2f1Series(a, b, c, z float64) float64 {
	sum, term := 1.0, 1.0
	for k := 0; k < 1000000; k++ {
		fk := float64(k)
		term *= (a + fk) * (b + fk) / ((c + fk) * (fk + 1)) * z
		sum += term
		if math.Abs(term) < 1e-17*math.Abs(sum) {
			break
		}
	}
	return sum
}

// Ensure that conditional expectations match the worked example of Fader,
// Hardie & Lee (2005) and an independent evaluation of the formula.
func TestExpectedPurchases(t *testing.T) {
	m := cdnowModel.Purchases
	c := Customer{X: 2, Tx: 30.43, T: 38.86}
	if got := m.ExpectedPurchases(39, c); math.Abs(got-1.226) > 0.0005 {
		t.Errorf("E[Y(39) | 2, 30.43, 38.86] = %.4f, published 1.226", got)
	}
	for _, c := range []Customer{{X: 0, T: 38}, {X: 1, Tx: 2, T: 38}, {X: 29, Tx: 37.71, T: 38}, {X: 26, Tx: 30.86, T: 31}, {X: 5, Tx: 5.14, T: 37.29}} {
		for _, tt := range []float64{1, 10, 39, 200} {
			x := float64(c.X)
			h := hyp2f1Series(m.R+x, m.B+x, m.A+m.B+x-1, tt/(m.Alpha+c.T+tt))
			want := (m.A + m.B + x - 1) / (m.A - 1) * (1 - math.Pow((m.Alpha+c.T)/(m.Alpha+c.T+tt), m.R+x)*h) * m.ProbAlive(c)
			if got := m.ExpectedPurchases(tt, c); math.Abs(got-want) > 1e-9*max(1, want) {
				t.Errorf("E[Y(%g) | %+v] = %.12g, series %.12g", tt, c, got, want)
			}
		}
	}
}

// Ensure that predictions behave as their definitions require.
func TestPredictions_Properties(t *testing.T) {
	m := cdnowModel.Purchases
	for _, c := range cdnow(t) {
		pa := m.ProbAlive(c)
		if pa <= 0 || pa > 1 || (c.X == 0 && pa != 1) {
			t.Fatalf("P(alive | %+v) = %g", c, pa)
		}
		prev := 0.0
		for _, tt := range []float64{0, 1, 4, 13, 52, 520} {
			e := m.ExpectedPurchases(tt, c)
			if e < prev || math.IsNaN(e) {
				t.Fatalf("E[Y(%g) | %+v] = %g after %g", tt, c, e, prev)
			}
			prev = e
		}
	}
	// A customer just arrived is a new customer.
	for _, tt := range []float64{1, 39, 78} {
		got, want := m.ExpectedPurchases(tt, Customer{T: 1e-9}), m.ExpectedPurchasesNew(tt)
		if math.Abs(got-want) > 1e-6 {
			t.Errorf("E[Y(%g)] just after the first purchase %g, for a new customer %g", tt, got, want)
		}
	}
	// a = 1 is a removable singularity.
	c := Customer{X: 3, Tx: 20, T: 30}
	at := func(a float64) float64 { m := m; m.A = a; return m.ExpectedPurchases(26, c) }
	if one, lo, hi := at(1), at(0.999), at(1.001); math.IsNaN(one) || one < min(lo, hi) || one > max(lo, hi) {
		t.Errorf("at a = 1: %g, around it %g and %g", one, lo, hi)
	}
	new1 := func(a float64) float64 { m := m; m.A = a; return m.ExpectedPurchasesNew(26) }
	if one, lo, hi := new1(1), new1(0.999), new1(1.001); math.IsNaN(one) || one < min(lo, hi) || one > max(lo, hi) {
		t.Errorf("new customer at a = 1: %g, around it %g and %g", one, lo, hi)
	}
}

// Ensure that the expected spend weighs the customer's own average by
// how much evidence there is.
func TestExpectedAvgSpend(t *testing.T) {
	g := cdnowModel.Spend
	if got, want := g.ExpectedAvgSpend(Customer{T: 10}), 6.25*15.44/2.74; math.Abs(got-want) > 1e-9 {
		t.Errorf("no history: %g, want the mean %g", got, want)
	}
	few := g.ExpectedAvgSpend(Customer{X: 1, Tx: 1, T: 10, AvgSpend: 100})
	many := g.ExpectedAvgSpend(Customer{X: 50, Tx: 9, T: 10, AvgSpend: 100})
	if !(g.MeanSpend() < few && few < many && many < 100) {
		t.Errorf("mean %g, one purchase of 100 %g, fifty of 100 %g", g.MeanSpend(), few, many)
	}
	if !math.IsInf(GammaGamma{P: 1, Q: 0.5, Gamma: 1}.MeanSpend(), 1) {
		t.Error("q <= 1 has no mean")
	}
}

// Ensure that CLV adds up the discounted purchases of each period.
func TestCLV(t *testing.T) {
	m := cdnowModel
	c := Customer{X: 2, Tx: 30.43, T: 38.86, AvgSpend: 22.35}
	spend := m.Spend.ExpectedAvgSpend(c)
	one, err := m.CLV(c, Horizon{Periods: 1, PeriodLength: 39})
	if err != nil {
		t.Fatal(err)
	}
	if want := spend * m.Purchases.ExpectedPurchases(39, c); math.Abs(one-want) > 1e-9 {
		t.Errorf("one undiscounted period: %g, want %g", one, want)
	}
	monthly := Horizon{Periods: 12, PeriodLength: 52.0 / 12, DiscountRate: 0.01, Margin: 0.3}
	v, err := m.CLV(c, monthly)
	if err != nil {
		t.Fatal(err)
	}
	var want float64
	for k := 1; k <= 12; k++ {
		inc := m.Purchases.ExpectedPurchases(float64(k)*52/12, c) - m.Purchases.ExpectedPurchases(float64(k-1)*52/12, c)
		want += 0.3 * spend * inc / math.Pow(1.01, float64(k))
	}
	if math.Abs(v-want) > 1e-9 {
		t.Errorf("12 months at 1%%: %g, want %g", v, want)
	}
	undiscounted := monthly
	undiscounted.DiscountRate = 0
	if u, _ := m.CLV(c, undiscounted); u <= v {
		t.Errorf("discounting raised the value: %g <= %g", u, v)
	}
	for _, h := range []Horizon{{}, {Periods: 1}, {Periods: 1, PeriodLength: 1, DiscountRate: -0.1}, {Periods: 1, PeriodLength: 1, Margin: 2}, {Periods: 1, PeriodLength: math.Inf(1)}} {
		if _, err := m.CLV(c, h); !errors.Is(err, ErrInvalidHorizon) {
			t.Errorf("horizon %+v: %v", h, err)
		}
	}
	if _, err := m.CLV(Customer{X: 1, Tx: 2, T: 1}, monthly); !errors.Is(err, ErrInvalidCustomer) {
		t.Errorf("invalid customer: %v", err)
	}
}
