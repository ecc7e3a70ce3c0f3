package clv

import (
	"context"
	"fmt"
	"testing"
)

// BenchmarkFit1M fits both models to 1,000,000 customers simulated from
// the CDNOW estimates (about 40% of them repeat customers), on 1 and 2
// workers. ns/op is the time of one whole fit.
//
//	go test -run '^$' -bench Fit1M -benchtime 3x ./cloud/internal/clv/
func BenchmarkFit1M(b *testing.B) {
	cs := simulate(1_000_000, cdnowModel, 42)
	for _, workers := range []int{1, 2} {
		b.Run(fmt.Sprintf("BGNBD/workers=%d", workers), func(b *testing.B) {
			var fit BGNBDFit
			for b.Loop() {
				var err error
				if fit, err = FitBGNBD(context.Background(), cs, WithWorkers(workers)); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(fit.Diagnostics.Evaluations), "evaluations")
			b.ReportMetric(float64(fit.Diagnostics.Duration.Nanoseconds())/float64(fit.Diagnostics.Evaluations)/float64(len(cs)), "ns/customer/evaluation")
		})
		b.Run(fmt.Sprintf("GammaGamma/workers=%d", workers), func(b *testing.B) {
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
