package clv

import (
	"context"
	"math"
	"os"
	"testing"
)

// cdnow reads the CDNOW sample of Fader, Hardie & Lee (testdata/README.md).
func cdnow(t testing.TB) []Customer {
	t.Helper()
	f, err := os.Open("testdata/cdnow_customers_summary_with_transactions.csv")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cs, err := ReadCSV(f)
	if err != nil {
		t.Fatal(err)
	}
	if len(cs) != 2357 {
		t.Fatalf("%d customers, want 2357", len(cs))
	}
	return cs
}

// sameTo2 reports whether got and want agree to 2 significant digits:
// both round to the same 2-digit mantissa, or (for values that sit on a
// rounding boundary) differ by less than half a unit of the second digit.
func sameTo2(got, want float64) bool {
	e := math.Floor(math.Log10(math.Abs(want)))
	unit := math.Pow(10, e-1)
	return math.Round(got/unit) == math.Round(want/unit) || math.Abs(got-want) < unit/2
}

// Ensure that the fits reproduce the estimates Fader, Hardie & Lee
// published for the CDNOW sample, to 2 significant digits.
func TestCDNOW_PublishedEstimates(t *testing.T) {
	cs := cdnow(t)
	fit, err := FitModel(context.Background(), cs)
	if err != nil {
		t.Fatal(err)
	}
	p, s := fit.Purchases, fit.Spend
	t.Logf("BG/NBD r=%.4f alpha=%.4f a=%.4f b=%.4f LL=%.4f (%d iterations, %d evaluations, %s, %v)",
		p.R, p.Alpha, p.A, p.B, p.LogLikelihood, p.Diagnostics.Iterations, p.Diagnostics.Evaluations, p.Diagnostics.Status, p.Diagnostics.Duration)
	t.Logf("Gamma-Gamma p=%.4f q=%.4f gamma=%.4f LL=%.4f on %d customers, corr(x, spend)=%.3f (%d iterations, %v)",
		s.P, s.Q, s.Gamma, s.LogLikelihood, s.Customers, s.FrequencySpendCorrelation, s.Diagnostics.Iterations, s.Diagnostics.Duration)
	checks := []struct {
		name      string
		got, want float64
	}{
		{"r", p.R, 0.243}, {"alpha", p.Alpha, 4.414}, {"a", p.A, 0.793}, {"b", p.B, 2.426},
		{"BG/NBD log-likelihood", p.LogLikelihood, -9582.4},
		{"p", s.P, 6.25}, {"q", s.Q, 3.74}, {"gamma", s.Gamma, 15.44},
		{"Gamma-Gamma log-likelihood", s.LogLikelihood, -4055.9},
	}
	for _, c := range checks {
		if !sameTo2(c.got, c.want) {
			t.Errorf("%s = %.5g, published %g", c.name, c.got, c.want)
		}
	}
	// The fits report the log-likelihood in the data's own units, as the
	// models' LogLikelihood computes it customer by customer.
	if d := math.Abs(p.LogLikelihood - p.BGNBD.LogLikelihood(cs)); d > 1e-6 {
		t.Errorf("BG/NBD fit reports %.9f, the model gives %.9f", p.LogLikelihood, p.BGNBD.LogLikelihood(cs))
	}
	if d := math.Abs(s.LogLikelihood - s.GammaGamma.LogLikelihood(cs)); d > 1e-6 {
		t.Errorf("Gamma-Gamma fit reports %.9f, the model gives %.9f", s.LogLikelihood, s.GammaGamma.LogLikelihood(cs))
	}
	if s.Customers != 946 {
		t.Errorf("Gamma-Gamma fitted on %d customers, want the 946 with a repeat purchase", s.Customers)
	}
}
