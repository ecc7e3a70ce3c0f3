package store

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand"
	"slices"
	"sync/atomic"
	"testing"

	"github.com/omnisync/omnisync/cloud/internal/reviews"
	"github.com/omnisync/omnisync/shared/events"
)

// reviewLog returns random review events: several per (product, store,
// device, session), some with a blocked word, from devices with skewed
// clocks, and the oracle's verdict per key: the earliest (HLC, event id)
// kept, screened by the policy.
func reviewLog(rng *rand.Rand, prefix string, policy reviews.Policy) ([]events.Envelope, map[reviews.Key]ReviewRecord) {
	var log []events.Envelope
	devs := []*device{newDevice(prefix+"S1", "kiosk-1", 1), newDevice(prefix+"S1", "mirror-2", 1), newDevice(prefix+"S2", "kiosk-1", 1)}
	texts := []string{"Great fit", "runs small", "visit my casino", "", "Love the colour"}
	n := 5 + rng.Intn(60)
	for i := 0; i < n; i++ {
		d := devs[rng.Intn(len(devs))]
		r := events.Review{
			ProductID: fmt.Sprintf("%sP%d", prefix, rng.Intn(3)),
			Rating:    1 + rng.Intn(5),
			Text:      texts[rng.Intn(len(texts))],
			Nickname:  "Ann",
			Session:   fmt.Sprintf("s%d", rng.Intn(3)),
		}
		log = append(log, d.ev(1_700_000_000_000+int64(rng.Intn(50)), events.KindReview, r))
	}
	screen := reviews.NewScreener(policy)
	want := map[reviews.Key]ReviewRecord{}
	stamps := map[reviews.Key]reviews.Stamp{}
	for _, e := range log {
		var r events.Review
		if err := json.Unmarshal(e.Data, &r); err != nil {
			panic(err)
		}
		k := reviews.KeyOf(&e, r)
		st := reviews.Stamp{HLC: e.HLC.Pack(), EventID: e.ID}
		if old, ok := stamps[k]; ok && !st.Before(old) {
			continue
		}
		stamps[k] = st
		status, reason := screen.Screen(r)
		want[k] = ReviewRecord{ProductID: r.ProductID, Store: k.Store, Device: k.Device, Session: k.Session, EventID: e.ID,
			Text: r.Text, Rating: r.Rating, Status: status, Reason: reason}
	}
	return log, want
}

// storedReviews reads every review of the products of want.
func storedReviews(t *testing.T, s *Store, want map[reviews.Key]ReviewRecord) map[reviews.Key]ReviewRecord {
	t.Helper()
	products := map[string]bool{}
	for k := range want {
		products[k.Product] = true
	}
	got := map[reviews.Key]ReviewRecord{}
	for p := range products {
		rs, err := s.Reviews(context.Background(), p, 1000)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range rs {
			got[reviews.Key{Product: r.ProductID, Store: r.Store, Device: r.Device, Session: r.Session}] = r
		}
	}
	return got
}

func sameReviews(got, want map[reviews.Key]ReviewRecord) string {
	if len(got) != len(want) {
		return fmt.Sprintf("%d reviews stored, oracle %d", len(got), len(want))
	}
	for k, w := range want {
		g := got[k]
		if g.EventID != w.EventID || g.Text != w.Text || g.Rating != w.Rating || g.Status != w.Status || g.Reason != w.Reason {
			return fmt.Sprintf("%+v: stored %+v, oracle %+v", k, g, w)
		}
	}
	return ""
}

// Ensure that reviews, delivered shuffled, duplicated and in random
// batches, leave the earliest review of each session with the status the
// stored policy gives it, on one store and on four replicas at once.
func TestProperty_ReviewsMatchOracle(t *testing.T) {
	t.Parallel()
	iterations := map[string]int{"sqlite": 80, "postgres": 20}
	forEachStore(t, func(t *testing.T, s *Store) {
		for it := 0; it < iterations[s.Dialect()]; it++ {
			rng := rand.New(rand.NewSource(int64(it)))
			policy := reviews.Policy{BlockedWords: []string{"casino"}, AutoPublish: it%2 == 0}
			if err := s.SetReviewPolicy(context.Background(), policy); err != nil {
				t.Fatal(err)
			}
			log, want := reviewLog(rng, fmt.Sprintf("r%d-", it), policy)
			deliveries := slices.Clone(log)
			for _, e := range log {
				if rng.Intn(3) == 0 {
					deliveries = append(deliveries, e)
				}
			}
			rng.Shuffle(len(deliveries), func(i, j int) { deliveries[i], deliveries[j] = deliveries[j], deliveries[i] })
			for len(deliveries) > 0 {
				n := min(len(deliveries), 1+rng.Intn(10))
				apply(t, s, deliveries[:n]...)
				deliveries = deliveries[n:]
			}
			if d := sameReviews(storedReviews(t, s, want), want); d != "" {
				t.Fatalf("seed %d: %s", it, d)
			}
		}
	})
	t.Run("replicas", func(t *testing.T) {
		onReplicas(t, 4, func(t *testing.T, stores []*Store, _ *atomic.Int64) {
			policy := reviews.Policy{BlockedWords: []string{"casino"}, AutoPublish: true}
			if err := stores[0].SetReviewPolicy(context.Background(), policy); err != nil {
				t.Fatal(err)
			}
			log, want := reviewLog(rand.New(rand.NewSource(7)), "rr-", policy)
			applyConcurrently(t, stores, 4, func(r int) [][]events.Envelope {
				rng := rand.New(rand.NewSource(int64(r)))
				d := slices.Clone(log)
				rng.Shuffle(len(d), func(i, j int) { d[i], d[j] = d[j], d[i] })
				var out [][]events.Envelope
				for len(d) > 0 {
					n := min(len(d), 1+rng.Intn(8))
					out = append(out, d[:n])
					d = d[n:]
				}
				return out
			})
			if d := sameReviews(storedReviews(t, stores[0], want), want); d != "" {
				t.Fatal(d)
			}
		})
	})
}
