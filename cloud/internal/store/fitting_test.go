package store

import (
	"context"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"sync/atomic"
	"testing"

	"github.com/omnisync/omnisync/cloud/internal/catalog"
	"github.com/omnisync/omnisync/cloud/internal/cooccur"
	"github.com/omnisync/omnisync/shared/downsync"
	"github.com/omnisync/omnisync/shared/events"
)

// fittingCatalog: shirts S1, S2 (Tops, Kestrel), jeans J1 (Bottoms), and
// a new shirt S9 (Tops, Kestrel) nobody has tried.
func fittingCatalog(t *testing.T, s *Store) {
	t.Helper()
	vs := []catalog.Variant{variant("S1-M", "S1", 1), variant("S1-L", "S1", 2), variant("S2-M", "S2", 3), variant("J1-32", "J1", 4), variant("S9-M", "S9", 9)}
	vs[1].Size = "L"
	vs[3].Category, vs[3].Size = "Bottoms", "32"
	importOK(t, s, vs)
}

func enter(zone, visit string, gtin int) events.FittingRoom {
	return events.FittingRoom{Zone: zone, EPC: "3074257BF7194E4000001A85", GTIN: testGTIN(gtin), Visit: visit}
}

func recsOf(t *testing.T, s *Store, id string) downsync.RecsDoc {
	t.Helper()
	docs, err := s.RecsDocs(context.Background(), []string{id})
	if err != nil || len(docs) != 1 {
		t.Fatalf("recs of %s: %v %v", id, docs, err)
	}
	return docs[0]
}

// Ensure that visits and baskets count the pairs of products that went
// together, once per session whatever the order, batching and duplication
// of their events, and that complements are ranked and explained.
func TestFitting_PairsAndComplements(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, s *Store) {
		fittingCatalog(t, s)
		mirror := newDevice("store-1", "fr-1", 1)
		pos := newDevice("store-1", "pos-1", 1)
		const w = 1_780_000_000_000
		envs := []events.Envelope{
			mirror.ev(w, events.KindEnter, enter("room-1", "v1", 1)),   // S1 M
			mirror.ev(w+1, events.KindEnter, enter("room-1", "v1", 4)), // J1
			mirror.ev(w+2, events.KindEnter, enter("room-1", "v1", 2)), // S1 L: same product
			mirror.ev(w+3, events.KindEnter, enter("room-2", "v2", 3)), // S2
			mirror.ev(w+4, events.KindEnter, enter("room-2", "v2", 1)), // S1
			mirror.ev(w+5, events.KindEnter, enter("room-1", "v3", 4)), // J1
			mirror.ev(w+6, events.KindEnter, enter("room-1", "v3", 1)), // S1
			pos.ev(w+100, events.KindSale, sale("store-1", line("S1-M", 1), line("J1-32", 1))),
			mirror.ev(w+200, events.KindAssist, events.Assist{Zone: "room-1", SKU: "S1-L", From: "S1-M", Reason: events.AssistSize, Request: "r1"}),
		}
		r := rand.New(rand.NewPCG(1, 2))
		r.Shuffle(len(envs), func(i, j int) { envs[i], envs[j] = envs[j], envs[i] })
		res := apply(t, s, envs[:4]...)
		res2 := apply(t, s, envs[4:]...)
		apply(t, s, envs...) // replayed: duplicates
		if len(res.RecProducts)+len(res2.RecProducts) == 0 {
			t.Fatal("no complements changed")
		}
		// The basket is folded after the sale is applied, once however
		// often the folder runs.
		foldAll(t, s)
		if _, err := s.FoldBaskets(context.Background(), 0); err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, id := range []string{"S1", "J1", "S2"} {
			got = append(got, fmt.Sprint(recsOf(t, s, id).Complements))
		}
		want := []string{
			"[{J1 completes the look 4} {S2 often tried with 1} {S9 same style and brand 0}]",
			"[{S1 completes the look 4}]",
			"[{S1 often tried with 1} {S9 same style and brand 0}]",
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("complements\n got %v\nwant %v", got, want)
		}
		if d := recsOf(t, s, "S9"); len(d.Complements) != 2 || d.Complements[0].Reason != "same style and brand" {
			t.Fatalf("new product: %+v", d)
		}
		ids, _, err := s.ChangedRecs(context.Background(), Cursor{}, 10)
		slices.Sort(ids) // the fold changed J1 and S1 after the tries did
		if err != nil || fmt.Sprint(ids) != "[J1 S1 S2]" {
			t.Fatalf("changed recs %v %v", ids, err)
		}
		day := dayOf(w)
		st, err := s.TryOnStats(context.Background(), day, day, nil)
		if err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(st.Rooms) != "[{store-1 room-1 2 1 0} {store-1 room-2 1 0 0}]" {
			t.Fatalf("rooms %+v", st.Rooms)
		}
		var s1 *TryOnRow
		for i, p := range st.Products {
			if p.Zone == "room-1" && p.ProductID == "S1" {
				s1 = &st.Products[i]
			}
		}
		if s1 == nil || s1.Tried != 2 || s1.BoughtVisit != 2 || s1.BoughtDay != 2 || s1.Rate != 1 || s1.Sizes["L"] != 1 {
			t.Fatalf("S1 in room-1: %+v (all %+v)", s1, st.Products)
		}
		if st, err := s.TryOnStats(context.Background(), day, day, []string{"store-2"}); err != nil || len(st.Rooms)+len(st.Products) != 0 {
			t.Fatalf("another store's view: %+v %v", st, err)
		}
	})
}

// Ensure that replicas applying the tries of shared visits at once (every
// event delivered to every replica, in its own order and batches) count
// each pair exactly once per visit: the visit's row lock serialises them.
func TestFitting_ConcurrentReplicas(t *testing.T) {
	t.Parallel()
	onReplicas(t, 4, func(t *testing.T, stores []*Store, _ *atomic.Int64) {
		var vs []catalog.Variant
		for i := range 12 {
			vs = append(vs, variant(fmt.Sprintf("Q%d-M", i), fmt.Sprintf("Q%d", i), 100+i))
		}
		importOK(t, stores[0], vs)
		r := rand.New(rand.NewPCG(5, 6))
		var log []events.Envelope
		sessions := map[string][]string{}
		for d := range 6 {
			dev := newDevice("store-1", fmt.Sprintf("mirror-%d", d), 1)
			for range 40 {
				visit, p := fmt.Sprintf("v%d", r.IntN(10)), r.IntN(12)
				log = append(log, dev.ev(1_780_000_000_000+int64(len(log)), events.KindEnter, enter("room-1", visit, 100+p)))
				sessions[visit] = append(sessions[visit], fmt.Sprintf("Q%d", p))
			}
		}
		applyConcurrently(t, stores, 4, func(rep int) [][]events.Envelope {
			rr := rand.New(rand.NewPCG(uint64(rep), 9))
			l := append([]events.Envelope(nil), log...)
			rr.Shuffle(len(l), func(i, j int) { l[i], l[j] = l[j], l[i] })
			var out [][]events.Envelope
			for len(l) > 0 {
				n := min(len(l), 1+rr.IntN(25))
				out = append(out, l[:n])
				l = l[n:]
			}
			return out
		})
		want := cooccur.Count(sessions)
		got := map[cooccur.Pair]int64{}
		rows, err := stores[0].r.QueryContext(context.Background(), "SELECT a, b, tried FROM product_pairs")
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		for rows.Next() {
			var p cooccur.Pair
			var n int64
			if err := rows.Scan(&p.A, &p.B, &n); err != nil {
				t.Fatal(err)
			}
			got[p] = n
		}
		if !maps.Equal(got, want) {
			t.Fatalf("pairs differ from the oracle:\n got %v\nwant %v", got, want)
		}
	})
}

// Ensure that a room's requests count each request once: the escalation
// that repeats an unanswered one counts as escalated only, and the sizes
// asked for count neither escalations nor calls for help (which name the
// item tried, not a size wanted), on both databases.
func TestFitting_RequestsCountedOnce(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, s *Store) {
		fittingCatalog(t, s)
		mirror := newDevice("store-1", "fr-1", 1)
		const w = 1_780_000_000_000
		apply(t, s,
			mirror.ev(w, events.KindEnter, enter("room-1", "v1", 1)),
			mirror.ev(w+1, events.KindAssist, events.Assist{Zone: "room-1", SKU: "S1-L", From: "S1-M", Reason: events.AssistSize, Request: "r1"}),
			// r1 unanswered for 3 minutes: escalated, the same request.
			mirror.ev(w+180_001, events.KindAssist, events.Assist{Zone: "room-1", SKU: "S1-L", Reason: events.AssistSize, Request: "r1",
				Escalated: true, WaitedMS: 180_000}),
			mirror.ev(w+2, events.KindAssist, events.Assist{Zone: "room-1", SKU: "S1-M", From: "S1-M", Reason: events.AssistHelp, Request: "r2"}),
			mirror.ev(w+3, events.KindAssist, events.Assist{Zone: "room-1", Reason: events.AssistHelp, Request: "r3"}),
			mirror.ev(w+4, events.KindAssist, events.Assist{Zone: "room-2", Reason: events.AssistHelp, Request: "r4"}),
			mirror.ev(w+180_004, events.KindAssist, events.Assist{Zone: "room-2", Reason: events.AssistHelp, Request: "r4",
				Escalated: true, WaitedMS: 180_000}),
		)
		day := dayOf(w)
		st, err := s.TryOnStats(context.Background(), day, day, nil)
		if err != nil {
			t.Fatal(err)
		}
		// room-2 had a request but no tried item: listed all the same.
		if got, want := fmt.Sprint(st.Rooms), "[{store-1 room-1 1 3 1} {store-1 room-2 0 1 1}]"; got != want {
			t.Fatalf("rooms %s, want %s", got, want)
		}
		if len(st.Products) != 1 || st.Products[0].ProductID != "S1" || !maps.Equal(st.Products[0].Sizes, map[string]int64{"L": 1}) {
			t.Fatalf("products %+v", st.Products)
		}
	})
}
