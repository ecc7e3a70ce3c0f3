package possim

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
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

// Ensure that click-and-collect orders stay open until they fall due, are
// then collected or cancelled in due order, and that a cancelled one goes
// back on the shelf.
func TestSimCollectsOrdersWhenDue(t *testing.T) {
	var mu sync.Mutex
	var kinds []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var d draft
		_ = json.NewDecoder(r.Body).Decode(&d)
		mu.Lock()
		kinds = append(kinds, d.Kind)
		mu.Unlock()
		w.WriteHeader(http.StatusAccepted)
	}))
	defer srv.Close()
	s := New(Options{URL: srv.URL, Store: "S1", SKUs: 20, Seed: 7})
	for i := range s.tally {
		s.tally[i] = shelfFill
	}
	ctx := context.Background()
	for len(s.awaiting) < 5 {
		s.step(ctx)
	}
	if n := strings.Count(strings.Join(kinds, " "), "fulfil") + strings.Count(strings.Join(kinds, " "), "release"); n != 0 {
		t.Fatalf("orders closed before they were due: %v", kinds)
	}
	before := slices.Clone(s.tally)
	for i := range s.awaiting {
		s.awaiting[i].due = time.Now().Add(-time.Second)
	}
	kinds = nil
	open := slices.Clone(s.awaiting)
	for range open {
		s.step(ctx)
	}
	if len(s.awaiting) != 0 || len(kinds) != len(open) {
		t.Fatalf("after the due steps: %d awaiting, posted %v", len(s.awaiting), kinds)
	}
	for i, k := range kinds {
		sku := open[i].sku
		switch k {
		case "fulfil":
		case "release":
			before[sku]++
		default:
			t.Fatalf("step %d posted %s while an order was due", i, k)
		}
	}
	if !slices.Equal(before, s.tally) {
		t.Fatalf("shelves %v, want %v (cancelled orders back on the shelf)", s.tally, before)
	}
}
