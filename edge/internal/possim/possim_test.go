package possim

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
)

// Ensure that hours of simulated trading keep every shelf at zero or above
// and restock what sells: the demo's books must not drift into oversells
// the till itself made up.
func TestSimKeepsShelvesStocked(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusAccepted)
	}))
	defer srv.Close()
	for _, skus := range []int{20, 400, 4524} {
		s := New(Options{URL: srv.URL, Store: "S1", SKUs: skus, Seed: 42})
		for i := range s.tally {
			s.tally[i] = shelfFill // the opening delivery
		}
		ctx := context.Background()
		const steps = 10000 // half an hour at the default 5 events/s
		for range steps {
			s.step(ctx)
		}
		empty := 0
		for i, n := range s.tally {
			if n < 0 {
				t.Fatalf("%d SKUs: %s at %d after %d steps", skus, s.skus[i], n, steps)
			}
			if n == 0 {
				empty++
			}
		}
		// Zipf demand empties the best sellers between deliveries now and
		// then, never most of the range.
		if empty*10 > skus {
			t.Errorf("%d SKUs: %d empty shelves after %d steps", skus, empty, steps)
		}
		t.Logf("%d SKUs: %d empty, %d awaiting delivery", skus, empty, len(s.reorder))
	}
}
