package store

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"testing"

	"github.com/omnisync/omnisync/cloud/internal/catalog"
	"github.com/omnisync/omnisync/cloud/internal/exceptions"
	"github.com/omnisync/omnisync/shared/events"
)

// applyOK applies envs and returns the result.
func applyOK(t *testing.T, s *Store, envs ...events.Envelope) BatchResult {
	t.Helper()
	res, err := s.ApplyBatch(context.Background(), itemsOf(envs...))
	if err != nil {
		t.Fatalf("ApplyBatch: %v", err)
	}
	return res
}

func onHand(t *testing.T, s *Store, sku, loc string) (int64, bool) {
	t.Helper()
	st, err := s.StockForSKU(context.Background(), sku)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range st {
		if p.Location == loc {
			return p.OnHand, true
		}
	}
	return 0, false
}

func openExceptions(t *testing.T, s *Store) []Exception {
	t.Helper()
	xs, err := s.Exceptions(context.Background(), ExceptionQuery{})
	if err != nil {
		t.Fatal(err)
	}
	return xs
}

// Ensure that a sale of a SKU the catalog lacks is held, not applied: no
// stock row, no oversell conflict; that a mapping and a replay apply it
// exactly once (twice asked, once applied); and that later events naming
// the mapped SKU are rewritten as they come.
func TestExceptions_UnknownSKU_MapReplay(t *testing.T) {
	t.Parallel()
	forEachStoreAtOnce(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		importOK(t, s, []catalog.Variant{variant("TEE-M", "P", 1)})
		pos := newDevice("store-1", "pos-1", 1)
		res := applyOK(t, s,
			pos.ev(1000, events.KindReceipt, sale("store-1", line("TEE-M", 5))),
			pos.ev(2000, events.KindSale, sale("store-1", line("TEE-OLD", 2), line("TEE-M", 1))),
		)
		if res.Applied != 1 || res.Held != 1 || res.DeadLettered != 0 || !slices.Equal(res.HeldStores, []string{"store-1"}) {
			t.Fatalf("result %+v, want 1 applied, 1 held at store-1", res)
		}
		if _, ok := onHand(t, s, "TEE-OLD", "store-1"); ok {
			t.Fatal("a phantom stock row for the unknown SKU")
		}
		if q, _ := onHand(t, s, "TEE-M", "store-1"); q != 5 {
			t.Fatalf("TEE-M on hand %d, want 5 (the held sale's other line waits too)", q)
		}
		if cs, _ := s.Conflicts(ctx, true, 10); len(cs) != 0 {
			t.Fatalf("conflicts %+v, want none", cs)
		}
		xs := openExceptions(t, s)
		if len(xs) != 1 || xs[0].Reason != exceptions.UnknownSKU || xs[0].Value != "TEE-OLD" || xs[0].Store != "store-1" || xs[0].Held != 1 || xs[0].Count != 1 {
			t.Fatalf("exceptions %+v", xs)
		}
		// A second sale of it counts in the same exception.
		applyOK(t, s, pos.ev(3000, events.KindSale, sale("store-1", line("TEE-OLD", 1))))
		xs = openExceptions(t, s)
		if len(xs) != 1 || xs[0].Count != 2 || xs[0].Held != 2 {
			t.Fatalf("exceptions after a second sale %+v", xs)
		}
		// Replaying before a mapping changes nothing.
		if r, err := s.ReplayException(ctx, xs[0].ID, "hq"); err != nil || r.Replayed != 0 || r.Held != 2 {
			t.Fatalf("replay without a mapping: %+v %v", r, err)
		}
		if err := s.AddMapping(ctx, exceptions.Mapping{Kind: exceptions.MapSKU, From: "TEE-OLD", To: "NOPE"}, "hq"); err == nil {
			t.Fatal("a mapping to a SKU outside the catalog was accepted")
		}
		if err := s.AddMapping(ctx, exceptions.Mapping{Kind: exceptions.MapSKU, From: "TEE-OLD", To: "TEE-M"}, "hq"); err != nil {
			t.Fatal(err)
		}
		r, err := s.ReplayException(ctx, xs[0].ID, "hq")
		if err != nil || r.Replayed != 2 {
			t.Fatalf("replay: %+v %v", r, err)
		}
		if q, _ := onHand(t, s, "TEE-M", "store-1"); q != 5-2-1-1 {
			t.Fatalf("TEE-M on hand %d after the replay, want 1", q)
		}
		// Again: nothing left to replay, nothing moves.
		if r, err := s.ReplayException(ctx, xs[0].ID, "hq"); err != nil || r.Replayed != 0 {
			t.Fatalf("second replay: %+v %v", r, err)
		}
		if q, _ := onHand(t, s, "TEE-M", "store-1"); q != 1 {
			t.Fatalf("TEE-M on hand %d after a second replay, want 1", q)
		}
		if xs := openExceptions(t, s); len(xs) != 0 {
			t.Fatalf("open exceptions after the replay %+v", xs)
		}
		x, err := s.Exception(ctx, xs[0].ID)
		if err != nil || x.State != "resolved" || x.DoneBy != "hq" {
			t.Fatalf("exception after the replay %+v %v", x, err)
		}
		// A new sale naming the mapped SKU is rewritten on arrival.
		res = applyOK(t, s, pos.ev(4000, events.KindSale, sale("store-1", line("TEE-OLD", 1))))
		if res.Applied != 1 || res.Held != 0 {
			t.Fatalf("mapped sale %+v", res)
		}
		if q, _ := onHand(t, s, "TEE-M", "store-1"); q != 0 {
			t.Fatalf("TEE-M on hand %d, want 0", q)
		}
		if _, ok := onHand(t, s, "TEE-OLD", "store-1"); ok {
			t.Fatal("a phantom stock row for the mapped SKU")
		}
	})
}

// Ensure that two replays racing (two replicas, two clicks) apply each
// held event once.
func TestExceptions_ReplayRace(t *testing.T) {
	t.Parallel()
	forEachStoreAtOnce(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		importOK(t, s, []catalog.Variant{variant("A", "P", 1)})
		pos := newDevice("store-1", "pos-1", 1)
		var envs []events.Envelope
		for i := range 20 {
			envs = append(envs, pos.ev(int64(1000+i), events.KindReceipt, sale("store-1", line("X", 1))))
		}
		applyOK(t, s, envs...)
		xs := openExceptions(t, s)
		if len(xs) != 1 || xs[0].Held != 20 {
			t.Fatalf("exceptions %+v", xs)
		}
		if err := s.AddMapping(ctx, exceptions.Mapping{Kind: exceptions.MapSKU, From: "X", To: "A"}, "hq"); err != nil {
			t.Fatal(err)
		}
		done := make(chan ReplayResult, 3)
		for range 3 {
			go func() {
				r, err := s.ReplayException(ctx, xs[0].ID, "hq")
				if err != nil {
					t.Error(err)
				}
				done <- r
			}()
		}
		total := 0
		for range 3 {
			total += (<-done).Replayed
		}
		if total != 20 {
			t.Fatalf("replayed %d in all, want 20", total)
		}
		if q, _ := onHand(t, s, "A", "store-1"); q != 20 {
			t.Fatalf("on hand %d, want 20", q)
		}
	})
}

// Ensure that GTINs the catalog knows are taken as their SKU, that an
// unknown GTIN and an online reservation at a store never heard of are
// held with their reasons, that nothing is held before a catalog exists,
// and that discarding needs a reason and drops the events.
func TestExceptions_ReasonsAndDiscard(t *testing.T) {
	t.Parallel()
	forEachStoreAtOnce(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		pos := newDevice("store-1", "pos-1", 1)
		// No catalog: taken as it comes.
		if res := applyOK(t, s, pos.ev(1000, events.KindReceipt, sale("store-1", line("ANY", 3)))); res.Applied != 1 {
			t.Fatalf("without a catalog: %+v", res)
		}
		importOK(t, s, []catalog.Variant{variant("A", "P", 1)})
		if err := s.SetOnlineLocation(ctx, "online"); err != nil {
			t.Fatal(err)
		}
		web := newDevice("online", "web", 1)
		res := applyOK(t, s,
			pos.ev(2000, events.KindReceipt, sale("store-1", line(testGTIN(1), 4))),
			pos.ev(3000, events.KindSale, sale("store-1", line(testGTIN(7), 1))),
			web.ev(4000, events.KindReserve, rmove("R1", "store-99", line("A", 1))),
			web.ev(5000, events.KindReserve, rmove("R2", "store-1", line("A", 1))),
		)
		if res.Applied != 2 || res.Held != 2 {
			t.Fatalf("result %+v, want 2 applied, 2 held", res)
		}
		st, _ := s.StockForSKU(ctx, "A")
		if len(st) != 1 || st[0].Location != "store-1" || st[0].OnHand != 4 || st[0].Reserved != 1 {
			t.Fatalf("stock of A %+v, want store-1 on hand 4 reserved 1", st)
		}
		xs := openExceptions(t, s)
		got := map[exceptions.Reason]string{}
		for _, x := range xs {
			got[x.Reason] = x.Value
		}
		if len(xs) != 2 || got[exceptions.UnknownGTIN] != testGTIN(7) || got[exceptions.UnknownLocation] != "store-99" {
			t.Fatalf("exceptions %+v", xs)
		}
		var loc Exception
		for _, x := range xs {
			if x.Reason == exceptions.UnknownLocation {
				loc = x
			}
		}
		if err := s.DiscardException(ctx, loc.ID, "hq", " "); err == nil {
			t.Fatal("a discard without a reason was accepted")
		}
		if err := s.DiscardException(ctx, loc.ID, "hq", "test order"); err != nil {
			t.Fatal(err)
		}
		if r, err := s.ReplayException(ctx, loc.ID, "hq"); err != nil || r.Replayed != 0 {
			t.Fatalf("replay of a discarded exception %+v %v", r, err)
		}
		if xs := openExceptions(t, s); len(xs) != 1 || xs[0].Reason != exceptions.UnknownGTIN {
			t.Fatalf("open exceptions after the discard %+v", xs)
		}
		// A location mapping: the held reservation's store is rewritten.
		res = applyOK(t, s, web.ev(6000, events.KindReserve, rmove("R3", "store-9x", line("A", 1))))
		if res.Held != 1 {
			t.Fatalf("reserve at an unknown store %+v", res)
		}
		if err := s.AddMapping(ctx, exceptions.Mapping{Kind: exceptions.MapLocation, From: "store-9x", To: "store-1"}, "hq"); err != nil {
			t.Fatal(err)
		}
		for _, x := range openExceptions(t, s) {
			if x.Value == "store-9x" {
				if r, err := s.ReplayException(ctx, x.ID, "hq"); err != nil || r.Replayed != 1 {
					t.Fatalf("replay %+v %v", r, err)
				}
			}
		}
		st, _ = s.StockForSKU(ctx, "A")
		if len(st) != 1 || st[0].Reserved != 2 {
			t.Fatalf("stock of A %+v, want reserved 2 at store-1", st)
		}
		// A mapping that makes the event one the rules refuse keeps it
		// held, saying why.
		applyOK(t, s, web.ev(7000, events.KindReserve, rmove("R4", "store-7x", line("A", 1))))
		if err := s.AddMapping(ctx, exceptions.Mapping{Kind: exceptions.MapLocation, From: "store-7x", To: "bad location"}, "hq"); err != nil {
			t.Fatal(err)
		}
		for _, x := range openExceptions(t, s) {
			if x.Value == "store-7x" {
				if r, err := s.ReplayException(ctx, x.ID, "hq"); err != nil || r.Replayed != 0 || r.Held != 1 {
					t.Fatalf("replay with a bad mapping %+v %v", r, err)
				}
				if x, _ = s.Exception(ctx, x.ID); x.State != "open" || x.Held != 1 {
					t.Fatalf("exception after a bad mapping %+v", x)
				}
			}
		}
	})
}

// Ensure that a dead letter replayed after a fix applies once and is
// marked replayed; that one still refused stays with the new reason.
func TestDeadLetters_Replay(t *testing.T) {
	t.Parallel()
	forEachStoreAtOnce(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		pos := newDevice("store-1", "pos-1", 1)
		good := pos.ev(1000, events.KindReceipt, sale("store-1", line("A", 2)))
		bad := pos.ev(2000, events.KindReceipt, sale("store-1", line("A", 3)))
		items := itemsOf(good, bad)
		items[0].Reject = "a hub bug, since fixed"
		items[1].Raw = []byte(`{"not": "an event"`)
		items[1].Reject = "undecodable"
		if _, err := s.ApplyBatch(ctx, items); err != nil {
			t.Fatal(err)
		}
		dls, err := s.DeadLetters(ctx, "store-1", 10)
		if err != nil || len(dls) != 2 {
			t.Fatalf("dead letters %+v %v", dls, err)
		}
		for _, d := range dls {
			got, _, err := s.ReplayDeadLetter(ctx, d.ID, "hq")
			if err != nil {
				t.Fatal(err)
			}
			switch d.EventID {
			case good.ID:
				if got.ReplayedAt.IsZero() || got.ReplayedBy != "hq" {
					t.Fatalf("replayed dead letter %+v", got)
				}
			default:
				if !got.ReplayedAt.IsZero() || got.Reason == d.Reason {
					t.Fatalf("refused dead letter %+v, want a new reason", got)
				}
			}
			// Twice: no second effect.
			if _, _, err := s.ReplayDeadLetter(ctx, d.ID, "hq"); err != nil {
				t.Fatal(err)
			}
		}
		if q, _ := onHand(t, s, "A", "store-1"); q != 2 {
			t.Fatalf("on hand %d, want 2", q)
		}
		if _, _, err := s.ReplayDeadLetter(ctx, 999999, "hq"); err == nil {
			t.Fatal("replay of a missing dead letter succeeded")
		}
	})
}

// Ensure the pickups board reads reservations' states.
func TestPickups(t *testing.T) {
	t.Parallel()
	forEachStoreAtOnce(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		if err := s.SetOnlineLocation(ctx, "online"); err != nil {
			t.Fatal(err)
		}
		web := newDevice("online", "web", 1)
		pos := newDevice("store-1", "pos-1", 1)
		now := s.now().UnixMilli()
		applyOK(t, s,
			pos.ev(now-1000, events.KindReceipt, sale("store-1", line("A", 9))),
			web.ev(now-1000, events.KindReserve, rmove("R-new", "store-1", line("A", 1))),
			web.ev(now-72*3600*1000, events.KindReserve, rmove("R-old", "store-1", line("A", 2))),
			web.ev(now-500, events.KindReserve, rmove("R-done", "store-1", line("A", 1))),
			web.ev(now-500, events.KindReserve, rmove("R-gone", "store-2", line("A", 1))),
		)
		applyOK(t, s,
			pos.ev(now-100, events.KindFulfil, rmove("R-done", "store-1", line("A", 1))),
			web.ev(now-100, events.KindRelease, rmove("R-gone", "store-2")),
		)
		ps, err := s.Pickups(ctx, PickupQuery{})
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]string{}
		for _, p := range ps {
			got[p.ReservationID] = p.State
		}
		want := map[string]string{"R-new": "reserved", "R-old": "overdue", "R-done": "collected", "R-gone": "released"}
		if b, _ := json.Marshal(got); string(b) != string(mustJSON(want)) {
			t.Fatalf("pickups %s, want %s", b, mustJSON(want))
		}
		ps, _ = s.Pickups(ctx, PickupQuery{Stores: []string{"store-2"}})
		if len(ps) != 1 || ps[0].ReservationID != "R-gone" {
			t.Fatalf("store-2's pickups %+v", ps)
		}
		ps, _ = s.Pickups(ctx, PickupQuery{State: "overdue"})
		if len(ps) != 1 || ps[0].ReservationID != "R-old" || ps[0].Units != 2 {
			t.Fatalf("overdue pickups %+v", ps)
		}
		if _, err := s.Pickups(ctx, PickupQuery{State: "lost"}); err == nil {
			t.Fatal("an unknown state was accepted")
		}
		// Another store "collecting" store-1's order, naming its own
		// location: kept, changing nothing, and on the board for HQ.
		other := newDevice("store-2", "pos-1", 1)
		applyOK(t, s, other.ev(now-50, events.KindFulfil, rmove("R-new", "store-2", line("A", 1))))
		ps, _ = s.Pickups(ctx, PickupQuery{Stores: []string{"store-1"}, State: "reserved"})
		if len(ps) != 1 || ps[0].ReservationID != "R-new" || len(ps[0].Uncounted) != 1 {
			t.Fatalf("store-1's reserved pickups %+v", ps)
		}
		if u := ps[0].Uncounted[0]; u.Kind != "fulfil" || u.Location != "store-2" || u.EventID == "" || u.At.IsZero() {
			t.Fatalf("uncounted close %+v", u)
		}
		ps, _ = s.Pickups(ctx, PickupQuery{State: "collected"})
		if len(ps) != 1 || len(ps[0].Uncounted) != 0 {
			t.Fatalf("collected pickups %+v", ps)
		}
	})
}

// BenchmarkApplyBatchCatalog is BenchmarkApplyBatch on a hub with its
// 2000 SKUs in the catalog, so the exceptions gate checks every SKU of
// every batch against it.
func BenchmarkApplyBatchCatalog(b *testing.B) {
	withCatalog := func(s *Store) *Store {
		vs := make([]catalog.Variant, 2000)
		for i := range vs {
			vs[i] = variant(fmt.Sprintf("SKU-%05d", i), fmt.Sprintf("P%04d", i/4), i+1)
		}
		importOK(b, s, vs)
		return s
	}
	b.Run("sqlite", func(b *testing.B) { benchApply(b, withCatalog(openSQLite(b)), 0) })
	b.Run("postgres", func(b *testing.B) { benchApply(b, withCatalog(openPostgres(b)), 0) })
}
