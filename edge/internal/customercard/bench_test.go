package customercard

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/omnisync/omnisync/edge/internal/customercard/custtest"
	"github.com/omnisync/omnisync/shared/syncproto"
)

// BenchmarkLookup measures a till's card lookup through the agent: from
// the hub (a request over real NATS under the store's account, the hub's
// side answering from memory, and the card written to bbolt) and from the
// cache (the store offline). It reports p50 and p99 per lookup.
func BenchmarkLookup(b *testing.B) {
	h := custtest.Start(b, "S1")
	const shoppers = 1000
	for i := range shoppers {
		h.Card("S1", syncproto.Card{Customer: fmt.Sprintf("C%d", i), FirstName: "Ada", Tier: "gold",
			Consent: map[string]bool{"sms": true, "marketing_email": false},
			Recent:  []syncproto.Purchase{{AtMS: 1, Store: "S1", Items: 2, TotalMinor: 2000, Currency: "GBP"}}}, fmt.Sprintf("loyalty:LC-%d", i))
	}
	a := newAgent(b, h, "S1").start()
	a.waitConnected(true)
	ctx := context.Background()
	run := func(b *testing.B, want string) {
		lat := make([]time.Duration, 0, b.N)
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			start := time.Now()
			ans, err := a.client.Lookup(ctx, map[string]string{"loyalty": fmt.Sprintf("LC-%d", i%shoppers)})
			lat = append(lat, time.Since(start))
			if err != nil || ans.Source != want {
				b.Fatalf("lookup %d: %+v %v", i, ans, err)
			}
		}
		b.StopTimer()
		slices.Sort(lat)
		b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50_us")
		b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99_us")
	}
	b.Run("hub", func(b *testing.B) { run(b, SourceHub) })
	// Every shopper has been looked up once now (b.N >= shoppers or not:
	// fill the rest).
	for i := range shoppers {
		if _, err := a.client.Lookup(ctx, map[string]string{"loyalty": fmt.Sprintf("LC-%d", i)}); err != nil {
			b.Fatal(err)
		}
	}
	a.cache.flush()
	a.proxy.Cut()
	a.waitConnected(false)
	b.Run("cache", func(b *testing.B) { run(b, SourceCache) })
}
