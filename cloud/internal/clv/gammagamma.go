package clv

import (
	"context"
	"fmt"
	"math"

	"gonum.org/v1/gonum/mathext"
	"gonum.org/v1/gonum/stat"
)

// GammaGamma is a fitted Gamma-Gamma spend model: the value of each of a
// customer's purchases is Gamma(p, ν), and ν is Gamma(q, γ) across
// customers. γ is in the currency unit of the data it was fitted on.
type GammaGamma struct {
	P     float64 `json:"p"`
	Q     float64 `json:"q"`
	Gamma float64 `json:"gamma"`
}

// GammaGammaFit is a Gamma-Gamma model with how it was fitted.
type GammaGammaFit struct {
	GammaGamma
	// LogLikelihood at the estimate, summed over Customers.
	LogLikelihood float64 `json:"log_likelihood"`
	// Customers is how many customers the model was fitted on: those with
	// at least one repeat purchase.
	Customers int `json:"customers"`
	// FrequencySpendCorrelation is the Pearson correlation of x and the
	// average spend across those customers. The model assumes they are
	// independent; far from 0 (say beyond ±0.3) its predictions are biased.
	// 0 when every repeat customer made as many purchases.
	FrequencySpendCorrelation float64     `json:"frequency_spend_correlation"`
	Diagnostics               Diagnostics `json:"diagnostics"`
}

// FitGammaGamma fits the Gamma-Gamma model by maximum likelihood to the
// customers with at least one repeat purchase (the others say nothing
// about spend). It fails with ErrInvalidCustomer, ErrNoCustomers,
// ErrDegenerate when fewer than two customers made a repeat purchase or
// all spend the same, ErrNoConvergence, or the context's error.
func FitGammaGamma(ctx context.Context, customers []Customer, opts ...Option) (GammaGammaFit, error) {
	s := defaults(opts)
	if len(customers) == 0 {
		return GammaGammaFit{}, ErrNoCustomers
	}
	l := &gammaGammaLL{}
	var xs []int
	var sumZ float64
	allSame := true
	for i, c := range customers {
		if err := c.Validate(); err != nil {
			return GammaGammaFit{}, customerError(i, err)
		}
		if err := c.validateSpend(); err != nil {
			return GammaGammaFit{}, customerError(i, err)
		}
		if c.X == 0 {
			continue
		}
		if len(xs) > 0 && c.AvgSpend != l.z[0] {
			allSame = false
		}
		xs = append(xs, c.X)
		l.z = append(l.z, c.AvgSpend)
		sumZ += c.AvgSpend
	}
	if len(xs) < 2 {
		return GammaGammaFit{}, fmt.Errorf("%w: %d customers with a repeat purchase, the spend model needs at least 2", ErrDegenerate, len(xs))
	}
	if allSame {
		return GammaGammaFit{}, fmt.Errorf("%w: every repeat customer's average spend is %g", ErrDegenerate, l.z[0])
	}
	l.n = len(xs)
	l.xt = newXTable(xs, nil)
	// Fit in units of the mean spend, so γ is near 1 whatever the currency.
	scale := sumZ / float64(l.n)
	l.lz = make([]float64, l.n)
	l.xz = make([]float64, l.n)
	xf := make([]float64, l.n)
	for i, z := range l.z {
		xf[i] = float64(xs[i])
		l.lz[i] = math.Log(z / scale)
		l.xz[i] = xf[i] * z / scale
	}
	// Start from p = 1, q = 2, γ = 1: the population mean pγ/(q−1) is then
	// the observed mean. The fallback matches it too with more regular
	// spend (p = q = 5).
	start := []float64{0, math.Log(2), 0}
	fallback := []float64{math.Log(5), math.Log(5), math.Log(4.0 / 5)}
	theta, ll, d, err := minimize(ctx, l, []string{"p", "q", "gamma"}, start, fallback, s)
	if err != nil {
		return GammaGammaFit{Diagnostics: d}, err
	}
	m := GammaGamma{P: math.Exp(theta[0]), Q: math.Exp(theta[1]), Gamma: math.Exp(theta[2]) * scale}
	// The density of an average spend carries 1/scale.
	ll -= float64(l.n) * math.Log(scale)
	corr := stat.Correlation(xf, l.z, nil)
	if math.IsNaN(corr) {
		corr = 0 // every repeat customer made as many purchases
	}
	return GammaGammaFit{
		GammaGamma: m, LogLikelihood: ll, Customers: l.n, Diagnostics: d,
		FrequencySpendCorrelation: corr,
	}, nil
}

// LogLikelihood is the Gamma-Gamma log-likelihood of the repeat customers
// among customers under m, the quantity FitGammaGamma maximises.
func (m GammaGamma) LogLikelihood(customers []Customer) float64 {
	var sum float64
	for _, c := range customers {
		if c.X == 0 {
			continue
		}
		px := m.P * float64(c.X)
		sum += lgamma(px+m.Q) - lgamma(px) - lgamma(m.Q) + m.Q*math.Log(m.Gamma) +
			(px-1)*math.Log(c.AvgSpend) + px*math.Log(float64(c.X)) - (px+m.Q)*math.Log(m.Gamma+float64(c.X)*c.AvgSpend)
	}
	return sum
}

// MeanSpend is the expected value of a purchase across all customers,
// pγ/(q−1); +Inf when q ≤ 1 (the model's mean does not exist).
func (m GammaGamma) MeanSpend() float64 {
	if m.Q <= 1 {
		return math.Inf(1)
	}
	return m.P * m.Gamma / (m.Q - 1)
}

// ExpectedAvgSpend is the expected value of the customer's future
// purchases given their history: p(γ + x·z̄)/(px + q − 1), a weighted mean
// of MeanSpend and the customer's own average. A customer with no repeat
// purchase gets MeanSpend.
func (m GammaGamma) ExpectedAvgSpend(c Customer) float64 {
	if c.X == 0 {
		return m.MeanSpend()
	}
	x := float64(c.X)
	den := m.P*x + m.Q - 1
	if den <= 0 {
		return math.Inf(1)
	}
	return m.P * (m.Gamma + x*c.AvgSpend) / den
}

// gammaGammaLL is the Gamma-Gamma log-likelihood over the repeat
// customers. For x purchases averaging z̄ (Fader & Hardie 2013):
//
//	ℓ = lnΓ(px+q) − lnΓ(px) − lnΓ(q) + q ln γ + px ln x
//	  + (px−1) ln z̄ − (px+q) ln(γ + x z̄)
//
// The first line depends on the customer only through x and is computed
// once per distinct x.
type gammaGammaLL struct {
	n      int
	z      []float64 // average spend
	lz, xz []float64 // ln z̄ and x·z̄
	xt     xTable

	// set by prepare
	p, q, gamma float64
	k0, kp, kq  []float64
}

func (l *gammaGammaLL) size() int          { return l.n }
func (l *gammaGammaLL) customers() float64 { return float64(l.n) }

func (l *gammaGammaLL) prepare(par []float64) {
	l.p, l.q, l.gamma = par[0], par[1], par[2]
	k := len(l.xt.values)
	if l.k0 == nil {
		l.k0, l.kp, l.kq = make([]float64, k), make([]float64, k), make([]float64, k)
	}
	p, q, g := l.p, l.q, l.gamma
	for i, xi := range l.xt.values {
		x := float64(xi)
		px := p * x
		l.k0[i] = lgamma(px+q) - lgamma(px) - lgamma(q) + q*math.Log(g) + px*math.Log(x)
		dpq := mathext.Digamma(px + q)
		l.kp[i] = x*(dpq-mathext.Digamma(px)) + x*math.Log(x)
		l.kq[i] = dpq - mathext.Digamma(q) + math.Log(g)
	}
}

func (l *gammaGammaLL) block(lo, hi int, acc []float64) {
	p, q, g := l.p, l.q, l.gamma
	var f, gp, gq, gg float64
	for i := lo; i < hi; i++ {
		x := float64(l.xt.values[l.xt.index[i]])
		px := p * x
		den := g + l.xz[i]
		ld := math.Log(den)
		f += (px-1)*l.lz[i] - (px+q)*ld
		gp += x * (l.lz[i] - ld)
		gq -= ld
		gg -= (px + q) / den
	}
	acc[0] += f
	acc[1] += gp
	acc[2] += gq
	acc[3] += gg
}

func (l *gammaGammaLL) shared(acc []float64) {
	for i, cnt := range l.xt.counts {
		acc[0] += cnt * l.k0[i]
		acc[1] += cnt * l.kp[i]
		acc[2] += cnt * l.kq[i]
		acc[3] += cnt * l.q / l.gamma
	}
}
