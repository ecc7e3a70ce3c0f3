package insights

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"gonum.org/v1/gonum/stat/distuv"

	"github.com/omnisync/omnisync/cloud/internal/rfm"
)

// millionService is a service whose books hold 1,000,000 customers
// simulated from the BG/NBD and Gamma-Gamma estimates of the CDNOW sample
// (purchase rates Gamma(0.243, 4.414) a week, dropout Beta(0.793, 2.426),
// observed 27 to 39 weeks after their first purchase), restored as the
// books would be after reading the feed, and the feed positioned after
// them.
func millionService(b *testing.B) (*Service, *feed, []string) {
	b.Helper()
	src := rand.NewPCG(1, 1)
	rng := rand.New(src)
	rate := distuv.Gamma{Alpha: 0.243, Beta: 4.414, Src: src}
	drop := distuv.Beta{Alpha: 0.793, Beta: 2.426, Src: src}
	f := &feed{}
	s, err := New(Config{Feed: f, Now: func() time.Time { return now }})
	if err != nil {
		b.Fatal(err)
	}
	weeks := func(w float64) time.Duration { return time.Duration(w * float64(7*24*time.Hour)) }
	ids := make([]string, 1_000_000)
	cs := make([]rfm.Customer, len(ids))
	for i := range cs {
		ids[i] = fmt.Sprintf("CUST-%08d", i)
		T := 27 + 12*rng.Float64()
		lambda, p := rate.Rand(), drop.Rand()
		var t, tx float64
		orders := int64(1)
		for {
			t += rng.ExpFloat64() / lambda
			if t > T {
				break
			}
			orders++
			tx = t
			if rng.Float64() < p {
				break
			}
		}
		first := now.Add(-weeks(T))
		spend := int64(1500 + rng.IntN(5000))
		cs[i] = rfm.Customer{ID: ids[i], Last: first.Add(weeks(tx)), Orders: orders, Spend: orders * (spend + int64(rng.IntN(500)))}
		s.first[ids[i]] = first.UnixMilli()
	}
	if err := s.book.Restore(cs); err != nil {
		b.Fatal(err)
	}
	return s, f, ids
}

// BenchmarkRefreshAfterSale1M is the RFM and AOV refresh after a sale at
// 1,000,000 customers: the sale enters the feed, Refresh reads and counts
// it, and the buyer's new segment is read. ns/op is the whole refresh.
//
//	go test -run '^$' -bench 'RefreshAfterSale1M|Refit1M' -benchtime 1x ./cloud/internal/insights/
func BenchmarkRefreshAfterSale1M(b *testing.B) {
	s, f, ids := millionService(b)
	rng := rand.New(rand.NewPCG(2, 2))
	ctx := context.Background()
	b.ResetTimer()
	for b.Loop() {
		id := ids[rng.IntN(len(ids))]
		f.add(Purchase{Customer: id, At: now, Amount: int64(500 + rng.IntN(10000)), Store: "S1", Channel: "store"})
		if n, err := s.Refresh(ctx); err != nil || n != 1 {
			b.Fatal(n, err)
		}
		if s.Segment(id) == "" {
			b.Fatal("not scored")
		}
		_ = s.AOV()
	}
}

// BenchmarkRefit1M is a background CLV refit at 1,000,000 customers: the
// copy of the books, both fits, and valuing everyone for the
// distribution.
func BenchmarkRefit1M(b *testing.B) {
	s, _, _ := millionService(b)
	ctx := context.Background()
	b.ResetTimer()
	var rep CLVReport
	for b.Loop() {
		var err error
		if rep, err = s.Refit(ctx); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(rep.Customers), "customers")
	b.ReportMetric(rep.Fit.Purchases.Diagnostics.Duration.Seconds()+rep.Fit.Spend.Diagnostics.Duration.Seconds(), "fit-s")
}
