package clv

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"strings"
	"sync/atomic"
	"testing"
)

// Ensure that the log-likelihoods at the published CDNOW estimates are the
// published values, so the fit maximises the same function as the papers.
func TestCDNOW_LogLikelihoodAtPublishedEstimates(t *testing.T) {
	cs := cdnow(t)
	if got := cdnowModel.Purchases.LogLikelihood(cs); math.Abs(got-(-9582.4)) > 0.1 {
		t.Errorf("BG/NBD log-likelihood %.4f, published -9582.4", got)
	}
	// Fader & Hardie (2013) report -4055.9177; the sample's spends are
	// rounded to cents, which moves the value in the third decimal.
	if got := cdnowModel.Spend.LogLikelihood(cs); math.Abs(got-(-4055.9177)) > 0.05 {
		t.Errorf("Gamma-Gamma log-likelihood %.4f, published -4055.9177", got)
	}
}

// Ensure that the fit's analytic gradients agree with finite differences
// of its own objective.
func TestGradients(t *testing.T) {
	cs := cdnow(t)
	bg := &bgnbdLL{n: float64(len(cs)), T: make([]float64, len(cs)), tx: make([]float64, len(cs)), w: make([]float64, len(cs))}
	xs := make([]int, len(cs))
	for i, c := range cs {
		xs[i], bg.T[i], bg.tx[i], bg.w[i] = c.X, c.T, c.Tx, 1+float64(i%3)
	}
	bg.xt = newXTable(xs, bg.w)
	gg := &gammaGammaLL{}
	var gx []int
	for _, c := range cs {
		if c.X > 0 {
			gx = append(gx, c.X)
			gg.z = append(gg.z, c.AvgSpend)
			gg.lz = append(gg.lz, math.Log(c.AvgSpend))
			gg.xz = append(gg.xz, float64(c.X)*c.AvgSpend)
		}
	}
	gg.n, gg.xt = len(gx), newXTable(gx, nil)
	tests := []struct {
		name  string
		l     likelihood
		theta []float64
	}{
		{"BG/NBD", bg, []float64{math.Log(0.5), math.Log(7), math.Log(1.3), math.Log(0.6)}},
		{"BG/NBD near the estimate", bg, []float64{math.Log(0.24), math.Log(4.4), math.Log(0.79), math.Log(2.4)}},
		{"Gamma-Gamma", gg, []float64{math.Log(2), math.Log(5), math.Log(30)}},
	}
	for _, tt := range tests {
		e := newEvaluator(context.Background(), tt.l, len(tt.theta), 2)
		_, g := e.at(tt.theta)
		g = append([]float64(nil), g...)
		for i := range tt.theta {
			const h = 1e-6
			up := append([]float64(nil), tt.theta...)
			dn := append([]float64(nil), tt.theta...)
			up[i] += h
			dn[i] -= h
			fu, _ := e.at(up)
			fd, _ := e.at(dn)
			num := (fu - fd) / (2 * h)
			if math.Abs(num-g[i]) > 1e-6*max(1, math.Abs(num)) {
				t.Errorf("%s: d/dθ%d analytic %.9g, numeric %.9g", tt.name, i, g[i], num)
			}
		}
	}
}

// Ensure that fitting data simulated from known parameters recovers them.
func TestFit_RecoversSimulatedParameters(t *testing.T) {
	cs := simulate(30000, cdnowModel, 1)
	fit, err := FitModel(context.Background(), cs, WithWorkers(2))
	if err != nil {
		t.Fatal(err)
	}
	got := []float64{fit.Purchases.R, fit.Purchases.Alpha, fit.Purchases.A, fit.Purchases.B, fit.Spend.P, fit.Spend.Q, fit.Spend.Gamma}
	want := []float64{0.243, 4.414, 0.793, 2.426, 6.25, 3.74, 15.44}
	names := []string{"r", "alpha", "a", "b", "p", "q", "gamma"}
	for i := range got {
		// Standard errors at 30,000 customers are a few percent (b's is
		// the largest); 20% fails only a fit that is wrong.
		if math.Abs(got[i]-want[i]) > 0.2*want[i] {
			t.Errorf("%s = %.4g, simulated with %g", names[i], got[i], want[i])
		}
	}
	t.Logf("recovered %v", got)
}

// Ensure that the result does not depend on how many goroutines evaluate
// the likelihood, to the last bit.
func TestFit_SameForAnyWorkers(t *testing.T) {
	cs := simulate(5*blockSize+123, cdnowModel, 2)
	one, err := FitModel(context.Background(), cs, WithWorkers(1))
	if err != nil {
		t.Fatal(err)
	}
	three, err := FitModel(context.Background(), cs, WithWorkers(3))
	if err != nil {
		t.Fatal(err)
	}
	if one.Model() != three.Model() || one.Purchases.LogLikelihood != three.Purchases.LogLikelihood {
		t.Errorf("1 worker %+v, 3 workers %+v", one.Model(), three.Model())
	}
}

// countdownCtx reports itself cancelled after a number of Err calls, so a
// test can stop a fit in the middle deterministically.
type countdownCtx struct {
	context.Context
	left atomic.Int64
}

func (c *countdownCtx) Err() error {
	if c.left.Add(-1) < 0 {
		return context.Canceled
	}
	return nil
}

// Ensure that a cancelled fit stops with the context's error.
func TestFit_Cancelled(t *testing.T) {
	cs := simulate(3*blockSize, cdnowModel, 3)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := FitBGNBD(ctx, cs); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled before: %v", err)
	}
	for _, after := range []int64{5, 50} {
		cd := &countdownCtx{Context: context.Background()}
		cd.left.Store(after)
		if _, err := FitBGNBD(cd, cs, WithWorkers(2)); !errors.Is(err, context.Canceled) {
			t.Errorf("cancelled after %d checks: %v", after, err)
		}
		cd = &countdownCtx{Context: context.Background()}
		cd.left.Store(after)
		if _, err := FitGammaGamma(cd, cs); !errors.Is(err, context.Canceled) {
			t.Errorf("Gamma-Gamma cancelled after %d checks: %v", after, err)
		}
	}
}

// Ensure that data that cannot identify a model fails with a clear error.
func TestFit_BadData(t *testing.T) {
	repeaters := []Customer{{X: 2, Tx: 5, T: 10, AvgSpend: 20}, {X: 1, Tx: 3, T: 8, AvgSpend: 30}, {X: 0, T: 9}}
	tests := []struct {
		name string
		fit  func([]Customer) error
		cs   []Customer
		want error
	}{
		{"no customers", bgFit, nil, ErrNoCustomers},
		{"no repeat purchase", bgFit, []Customer{{X: 0, T: 10}, {X: 0, T: 5}}, ErrDegenerate},
		{"t_x after T", bgFit, []Customer{{X: 1, Tx: 11, T: 10}}, ErrInvalidCustomer},
		{"negative x", bgFit, []Customer{{X: -1, T: 10}}, ErrInvalidCustomer},
		{"t_x without purchases", bgFit, []Customer{{X: 0, Tx: 3, T: 10}}, ErrInvalidCustomer},
		{"T not positive", bgFit, []Customer{{X: 0, T: 0}}, ErrInvalidCustomer},
		{"T not a number", bgFit, []Customer{{X: 0, T: math.NaN()}}, ErrInvalidCustomer},
		{"spend: no customers", ggFit, nil, ErrNoCustomers},
		{"spend: one repeat customer", ggFit, []Customer{{X: 2, Tx: 5, T: 10, AvgSpend: 20}, {X: 0, T: 5}}, ErrDegenerate},
		{"spend: everyone spends the same", ggFit, []Customer{{X: 2, Tx: 5, T: 10, AvgSpend: 20}, {X: 4, Tx: 3, T: 8, AvgSpend: 20}}, ErrDegenerate},
		{"spend: zero spend", ggFit, append(repeaters[:2:2], Customer{X: 1, Tx: 1, T: 2, AvgSpend: 0}), ErrInvalidCustomer},
		{"spend: two repeat customers cannot pin the spread", ggFit, repeaters, ErrDegenerate},
		{"spend: a customer without repeat purchase needs no spend", ggFit, simulate(500, cdnowModel, 9), nil},
	}
	for _, tt := range tests {
		err := tt.fit(tt.cs)
		if (tt.want == nil) != (err == nil) || (tt.want != nil && !errors.Is(err, tt.want)) {
			t.Errorf("%s: %v, want %v", tt.name, err, tt.want)
		}
	}
	// The error names the customer.
	_, err := FitBGNBD(context.Background(), []Customer{{X: 0, T: 1}, {X: 3, Tx: 4, T: 2}})
	if err == nil || err.Error() != "customer 1: clv: invalid customer: t_x 4 is after T 2" {
		t.Errorf("error %v", err)
	}
}

func bgFit(cs []Customer) error {
	_, err := FitBGNBD(context.Background(), cs)
	return err
}

func ggFit(cs []Customer) error {
	_, err := FitGammaGamma(context.Background(), cs)
	return err
}

// Ensure that customers who all buy at one rate and never leave, which
// no heterogeneity or dropout explains, fail as degenerate rather than
// returning parameters at infinity.
func TestFit_NoHeterogeneity(t *testing.T) {
	var cs []Customer
	for i := range 2000 {
		// Everyone buys every 2 weeks, observed 20 to 40 weeks.
		T := 20 + float64(i%21)
		x := int(T / 2)
		cs = append(cs, Customer{X: x, Tx: float64(x) * 2, T: T, AvgSpend: 10})
	}
	f, err := FitBGNBD(context.Background(), cs)
	if !errors.Is(err, ErrDegenerate) && !errors.Is(err, ErrNoConvergence) {
		t.Errorf("fit of degenerate data: %v %+v", err, f)
	}
}

// Ensure that a fit travels as JSON, whatever the data: no NaN.
func TestFit_JSON(t *testing.T) {
	// Every repeat customer bought twice: x does not vary.
	cs := simulate(3000, cdnowModel, 5)
	for i := range cs {
		if cs[i].X > 0 {
			cs[i].X = 2
		}
	}
	fit, err := FitGammaGamma(context.Background(), cs)
	if err != nil {
		t.Fatal(err)
	}
	if fit.FrequencySpendCorrelation != 0 {
		t.Errorf("correlation %g", fit.FrequencySpendCorrelation)
	}
	if _, err := json.Marshal(fit); err != nil {
		t.Error(err)
	}
	full, err := FitModel(context.Background(), cdnow(t))
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(full)
	if err != nil || !strings.Contains(string(b), `"purchases":{"r":0.24`) || !strings.Contains(string(b), `"diagnostics":{"iterations"`) {
		t.Errorf("%s %v", b, err)
	}
}
