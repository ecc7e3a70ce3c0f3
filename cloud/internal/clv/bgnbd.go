package clv

import (
	"context"
	"fmt"
	"math"

	"gonum.org/v1/gonum/mathext"
)

// BGNBD is a fitted BG/NBD purchase model: purchase rates are Gamma(r, α)
// across customers, and after each repeat purchase a customer drops out
// with a probability that is Beta(a, b) across customers. α is in the time
// unit of the data it was fitted on.
type BGNBD struct {
	R     float64 `json:"r"`
	Alpha float64 `json:"alpha"`
	A     float64 `json:"a"`
	B     float64 `json:"b"`
}

// BGNBDFit is a BG/NBD model with how it was fitted.
type BGNBDFit struct {
	BGNBD
	// LogLikelihood at the estimate, summed over Customers.
	LogLikelihood float64     `json:"log_likelihood"`
	Customers     int         `json:"customers"`
	Diagnostics   Diagnostics `json:"diagnostics"`
}

// FitBGNBD fits the BG/NBD model to customers by maximum likelihood. It
// fails with ErrInvalidCustomer (naming the first bad customer),
// ErrNoCustomers, ErrDegenerate when nobody made a repeat purchase or a
// parameter runs off to a boundary, ErrNoConvergence, or the context's
// error once ctx is done.
func FitBGNBD(ctx context.Context, customers []Customer, opts ...Option) (BGNBDFit, error) {
	s := defaults(opts)
	if len(customers) == 0 {
		return BGNBDFit{}, ErrNoCustomers
	}
	l := &bgnbdLL{n: float64(len(customers))}
	var xs []int
	var repeat, sumT float64
	// Customers with the same history (x, tₓ, T) contribute the same
	// term: the likelihood runs over distinct histories, weighted. With
	// times in whole days most histories repeat, above all those of
	// customers who never came back, which differ only by T.
	seen := map[[3]float64]int{}
	for i, c := range customers {
		if err := c.Validate(); err != nil {
			return BGNBDFit{}, customerError(i, err)
		}
		repeat += float64(c.X)
		sumT += c.T
		k := [3]float64{float64(c.X), c.Tx, c.T}
		if j, ok := seen[k]; ok {
			l.w[j]++
			continue
		}
		seen[k] = len(xs)
		xs = append(xs, c.X)
		l.T, l.tx, l.w = append(l.T, c.T), append(l.tx, c.Tx), append(l.w, 1)
	}
	if repeat == 0 {
		return BGNBDFit{}, fmt.Errorf("%w: no customer made a repeat purchase", ErrDegenerate)
	}
	// Fit in units of the mean T, so α is near 1 whatever the time unit
	// and the bound on the parameters means the same for all four.
	scale := sumT / float64(len(customers))
	for i := range l.T {
		l.T[i], l.tx[i] = l.T[i]/scale, l.tx[i]/scale
	}
	l.xt = newXTable(xs, l.w)
	// Start with r = 1 and α set so that r/α, the mean purchase rate, is
	// the observed repeat rate; a and b at 1 (a uniform dropout chance).
	rate := repeat / float64(len(customers)) // per mean T
	start := []float64{0, math.Log(1 / rate), 0, 0}
	fallback := []float64{0, 0, 0, 0}
	theta, ll, d, err := minimize(ctx, l, []string{"r", "alpha", "a", "b"}, start, fallback, s)
	if err != nil {
		return BGNBDFit{Diagnostics: d}, err
	}
	m := BGNBD{R: math.Exp(theta[0]), Alpha: math.Exp(theta[1]) * scale, A: math.Exp(theta[2]), B: math.Exp(theta[3])}
	// Each purchase time's density carries 1/scale: the likelihood in the
	// data's own unit is lower by ln(scale) a repeat purchase.
	ll -= repeat * math.Log(scale)
	return BGNBDFit{BGNBD: m, LogLikelihood: ll, Customers: len(customers), Diagnostics: d}, nil
}

// LogLikelihood is the BG/NBD log-likelihood of customers under m, the
// quantity FitBGNBD maximises; customers are not validated.
func (m BGNBD) LogLikelihood(customers []Customer) float64 {
	var sum float64
	for _, c := range customers {
		lT := math.Log(m.Alpha + c.T)
		x := float64(c.X)
		ll := lgamma(m.R+x) - lgamma(m.R) + m.R*math.Log(m.Alpha) - (m.R+x)*lT +
			lgamma(m.B+x) - lgamma(m.B) + lgamma(m.A+m.B) - lgamma(m.A+m.B+x)
		if c.X > 0 {
			ll += softplus(m.deathLogOdds(c))
		}
		sum += ll
	}
	return sum
}

// deathLogOdds is the log of the odds that a repeat customer dropped out
// right after the last purchase rather than being alive at T: the ratio of
// the likelihood's two terms.
func (m BGNBD) deathLogOdds(c Customer) float64 {
	x := float64(c.X)
	return math.Log(m.A) - math.Log(m.B+x-1) + (m.R+x)*(math.Log(m.Alpha+c.T)-math.Log(m.Alpha+c.Tx))
}

// ProbAlive is the probability that the customer is still active at T
// (Fader, Hardie & Lee's 2008 note). It is 1 for a customer with no repeat
// purchase: under BG/NBD nobody drops out before buying again.
func (m BGNBD) ProbAlive(c Customer) float64 {
	if c.X == 0 {
		return 1
	}
	return logistic(-m.deathLogOdds(c))
}

// ExpectedPurchases is how many purchases the customer is expected to make
// in the next t time units, given the history: the conditional
// expectation of Fader, Hardie & Lee (2005).
func (m BGNBD) ExpectedPurchases(t float64, c Customer) float64 {
	if t <= 0 {
		return 0
	}
	// (a+b+x-1)/(a-1) · (1 - ...) has a removable singularity at a = 1:
	// take the mean of both sides of it (exact to O(h²), about 1e-10).
	if math.Abs(m.A-1) < singularA {
		lo, hi := m, m
		lo.A, hi.A = 1-singularA, 1+singularA
		return (lo.expectedPurchases(t, c) + hi.expectedPurchases(t, c)) / 2
	}
	return m.expectedPurchases(t, c)
}

// singularA is how close to 1 a must be for the expectations to step
// around the removable singularity there.
const singularA = 1e-5

func (m BGNBD) expectedPurchases(t float64, c Customer) float64 {
	x := float64(c.X)
	ratio := (m.Alpha + c.T) / (m.Alpha + c.T + t)
	z := t / (m.Alpha + c.T + t)
	h := mathext.Hypergeo(m.R+x, m.B+x, m.A+m.B+x-1, z)
	body := (m.A + m.B + x - 1) / (m.A - 1) * -math.Expm1((m.R+x)*math.Log(ratio)+math.Log(h))
	return body * m.ProbAlive(c)
}

// ExpectedPurchasesNew is how many repeat purchases a new customer is
// expected to make in their first t time units: the unconditional
// expectation of Fader, Hardie & Lee (2005).
func (m BGNBD) ExpectedPurchasesNew(t float64) float64 {
	if t <= 0 {
		return 0
	}
	if math.Abs(m.A-1) < singularA {
		lo, hi := m, m
		lo.A, hi.A = 1-singularA, 1+singularA
		return (lo.expectedPurchasesNew(t) + hi.expectedPurchasesNew(t)) / 2
	}
	return m.expectedPurchasesNew(t)
}

func (m BGNBD) expectedPurchasesNew(t float64) float64 {
	h := mathext.Hypergeo(m.R, m.B, m.A+m.B-1, t/(m.Alpha+t))
	return (m.A + m.B - 1) / (m.A - 1) * -math.Expm1(m.R*math.Log(m.Alpha/(m.Alpha+t))+math.Log(h))
}

// bgnbdLL is the BG/NBD log-likelihood over a data set. For a customer
// (x, tₓ, T), with [x>0] written δ:
//
//	ℓ = lnΓ(r+x) − lnΓ(r) + r ln α − (r+x) ln(α+T)
//	  + lnΓ(b+x) − lnΓ(b) + lnΓ(a+b) − lnΓ(a+b+x)
//	  + δ · ln(1 + e^d),  d = ln a − ln(b+x−1) + (r+x)(ln(α+T) − ln(α+tₓ))
//
// which is the likelihood of Fader, Hardie & Lee (2005) with B(a+1, b+x−1)
// written as B(a, b+x) · a/(b+x−1), so the two terms never overflow. The first two
// lines depend on the customer only through x and are computed once per
// distinct x.
type bgnbdLL struct {
	n        float64   // customers
	T, tx, w []float64 // per distinct history, w the customers who have it
	xt       xTable

	// set by prepare
	r, alpha, a, b float64
	logRatio       []float64
	invB           []float64 // 1/(b+x-1), per distinct x > 0
	c0, gr, ga, gb []float64
}

func (l *bgnbdLL) size() int          { return len(l.w) }
func (l *bgnbdLL) customers() float64 { return l.n }

func (l *bgnbdLL) prepare(p []float64) {
	l.r, l.alpha, l.a, l.b = p[0], p[1], p[2], p[3]
	k := len(l.xt.values)
	if l.c0 == nil {
		l.c0, l.gr, l.ga, l.gb = make([]float64, k), make([]float64, k), make([]float64, k), make([]float64, k)
		l.logRatio, l.invB = make([]float64, k), make([]float64, k)
	}
	r, alpha, a, b := l.r, l.alpha, l.a, l.b
	base := -lgamma(r) + r*math.Log(alpha) - lgamma(b) + lgamma(a+b)
	for i, xi := range l.xt.values {
		x := float64(xi)
		l.c0[i] = base + lgamma(r+x) + lgamma(b+x) - lgamma(a+b+x)
		l.gr[i] = mathext.Digamma(r+x) - mathext.Digamma(r) + math.Log(alpha)
		l.ga[i] = mathext.Digamma(a+b) - mathext.Digamma(a+b+x)
		l.gb[i] = mathext.Digamma(b+x) - mathext.Digamma(b) + l.ga[i]
		if xi > 0 {
			l.logRatio[i] = math.Log(a) - math.Log(b+x-1)
			l.invB[i] = 1 / (b + x - 1)
		}
	}
}

func (l *bgnbdLL) block(lo, hi int, acc []float64) {
	r, alpha, a := l.r, l.alpha, l.a
	var f, gr, gal, ga, gb float64
	for i := lo; i < hi; i++ {
		k := l.xt.index[i]
		x := float64(l.xt.values[k])
		w := l.w[i]
		aT := alpha + l.T[i]
		lT := math.Log(aT)
		rx := r + x
		f -= w * rx * lT
		gr -= w * lT
		gal -= w * rx / aT
		if x == 0 {
			continue
		}
		atx := alpha + l.tx[i]
		ltx := math.Log(atx)
		d := l.logRatio[k] + rx*(lT-ltx)
		// softplus(d) and dead = logistic(d), the chance the customer
		// dropped out after the last purchase, sharing one exp.
		e := math.Exp(-math.Abs(d))
		dead := 1 / (1 + e)
		if d < 0 {
			dead = e / (1 + e)
		}
		f += w * (max(d, 0) + math.Log1p(e))
		dead *= w
		gr += dead * (lT - ltx)
		gal += dead * rx * (1/aT - 1/atx)
		ga += dead / a
		gb -= dead * l.invB[k]
	}
	acc[0] += f
	acc[1] += gr
	acc[2] += gal
	acc[3] += ga
	acc[4] += gb
}

func (l *bgnbdLL) shared(acc []float64) {
	for i, cnt := range l.xt.counts {
		acc[0] += cnt * l.c0[i]
		acc[1] += cnt * l.gr[i]
		acc[2] += cnt * l.r / l.alpha
		acc[3] += cnt * l.ga[i]
		acc[4] += cnt * l.gb[i]
	}
}

func lgamma(x float64) float64 {
	v, _ := math.Lgamma(x)
	return v
}

// softplus is ln(1 + e^d) without overflow.
func softplus(d float64) float64 { return max(d, 0) + math.Log1p(math.Exp(-math.Abs(d))) }

// logistic is 1/(1 + e^-d) without overflow.
func logistic(d float64) float64 {
	if d >= 0 {
		return 1 / (1 + math.Exp(-d))
	}
	e := math.Exp(d)
	return e / (1 + e)
}
