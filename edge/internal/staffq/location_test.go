package staffq

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/omnisync/omnisync/edge/internal/productcache/cachetest"
	"github.com/omnisync/omnisync/edge/internal/whereabouts"
	"github.com/omnisync/omnisync/shared/events"
)

// Ensure that a request to fetch a variant a sweep saw carries where it
// was seen (area, when, the units), in the queue and in GET
// /staff/requests, and keeps it across a restart; and that the item she
// is trying, a call for help and a variant no sweep saw carry none.
func TestTap_FetchLocation(t *testing.T) {
	r := newRig(t)
	book, err := whereabouts.Open(whereabouts.Options{Path: filepath.Join(r.dir, "whereabouts.db"), Now: r.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { book.Close() })
	seen := r.clock.Now().Add(-5 * time.Minute)
	// Sizes S (variant 0) and M (variant 1) of product 0 were swept.
	if err := book.Swept(context.Background(), "rack-7", []whereabouts.Sighting{
		{GTIN: cachetest.GTIN(0), Serials: []string{"500"}, At: seen},
		{GTIN: cachetest.GTIN(1), Serials: []string{"1001", "1002"}, At: seen},
	}); err != nil {
		t.Fatal(err)
	}
	r.places = book
	r.q.Close()
	r.q = r.open(t)

	r.ask(t, "size", events.Assist{Zone: "room-1", SKU: cachetest.SKU(0, 1), From: cachetest.SKU(0, 0)})
	r.clock.Add(time.Second)
	r.ask(t, "help", events.Assist{Zone: "room-2", SKU: cachetest.SKU(0, 0), From: cachetest.SKU(0, 0)})
	r.clock.Add(time.Second)
	r.ask(t, "unseen", events.Assist{Zone: "room-3", SKU: cachetest.SKU(0, 2), From: cachetest.SKU(0, 0)})

	check := func(when string, reqs []Request) {
		t.Helper()
		if len(reqs) != 3 {
			t.Fatalf("%s: %d requests", when, len(reqs))
		}
		size, help, unseen := reqs[0], reqs[1], reqs[2]
		l := size.Fetch.Location
		if l == nil || l.Area != "rack-7" || l.SeenMS != seen.UnixMilli() || !slices.Equal(l.Units, []string{"1001", "1002"}) {
			t.Fatalf("%s: fetch location %+v", when, l)
		}
		if size.Trying == nil || size.Trying.Location != nil {
			t.Fatalf("%s: the item she is trying has a location: %+v", when, size.Trying)
		}
		if help.Reason != events.AssistHelp || help.Fetch.Location != nil || help.Trying == nil || help.Trying.Location != nil {
			t.Fatalf("%s: a call for help has a location: %+v", when, help)
		}
		if unseen.Fetch.SKU != cachetest.SKU(0, 2) || unseen.Fetch.Location != nil {
			t.Fatalf("%s: a variant no sweep saw has a location: %+v", when, unseen.Fetch)
		}
	}
	s, _ := r.q.Snapshot()
	check("queue", s.Requests)

	mux := http.NewServeMux()
	r.q.Register(mux)
	srv := httptest.NewServer(mux)
	defer srv.Close()
	res, err := http.Get(srv.URL + "/staff/requests")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var page struct {
		Requests []struct {
			Fetch struct {
				Location map[string]any `json:"location"`
			} `json:"fetch"`
		} `json:"requests"`
	}
	if err := json.NewDecoder(res.Body).Decode(&page); err != nil {
		t.Fatal(err)
	}
	if l := page.Requests[0].Fetch.Location; l["area"] != "rack-7" || l["seen_ms"] != float64(seen.UnixMilli()) || len(l["units"].([]any)) != 2 {
		t.Fatalf("GET /staff/requests: location %v", l)
	}
	if l := page.Requests[2].Fetch.Location; l != nil {
		t.Fatalf("GET /staff/requests: unseen item has location %v", l)
	}

	r.q.Close()
	r.q = r.open(t)
	s, _ = r.q.Snapshot()
	check("after restart", s.Requests)
}
