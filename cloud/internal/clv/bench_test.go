package clv

import (
	"context"
	"fmt"
	"math"
	"testing"
)

// BenchmarkFit1M fits both models to 1,000,000 customers simulated from
// the CDNOW estimates (about 40% of them repeat customers), on 1 and 2
// workers, with times as exact as floats (every history distinct: the
// worst case) and rounded to whole days (as a store's data is: histories
// repeat). ns/op is the time of one whole fit.
//
//	go test -run '^$' -bench Fit1M -benchtime 3x ./cloud/internal/clv/
func BenchmarkFit1M(b *testing.B) {
	cs := simulate(1_000_000, cdnowModel, 42)
	days := make([]Customer, len(cs))
	for i, c := range cs {
		c.T, c.Tx = math.Round(c.T*7)/7, math.Round(c.Tx*7)/7
		days[i] = c
	}
	b.Run("BGNBD/days/workers=1", func(b *testing.B) {
		var fit BGNBDFit
		for b.Loop() {
			var err error
			if fit, err = FitBGNBD(context.Background(), days); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(fit.Diagnostics.Evaluations), "evaluations")
	})
	for _, workers := range []int{1, 2} {
		b.Run(fmt.Sprintf("BGNBD/exact/workers=%d", workers), func(b *testing.B) {
			var fit BGNBDFit
			for b.Loop() {
				var err error
				if fit, err = FitBGNBD(context.Background(), cs, WithWorkers(workers)); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(fit.Diagnostics.Evaluations), "evaluations")
		})
		b.Run(fmt.Sprintf("GammaGamma/exact/workers=%d", workers), func(b *testing.B) {
			var fit GammaGammaFit
			for b.Loop() {
				var err error
				if fit, err = FitGammaGamma(context.Background(), cs, WithWorkers(workers)); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(fit.Diagnostics.Evaluations), "evaluations")
			b.ReportMetric(float64(fit.Customers), "repeat-customers")
		})
	}
}
