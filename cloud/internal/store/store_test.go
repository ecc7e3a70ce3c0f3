package store

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/omnisync/omnisync/cloud/internal/inventory"
	"github.com/omnisync/omnisync/shared/downsync"
	"github.com/omnisync/omnisync/shared/events"
	"github.com/omnisync/omnisync/shared/testkit"
)

// Ensure that opening an existing store again migrates nothing and keeps
// the data, and that replicas opening one PostgreSQL schema together all
// succeed.
func TestOpen_Idempotent(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	t.Run("sqlite", func(t *testing.T) {
		path := t.TempDir() + "/hub.db"
		s := mustOpen(t, path) // a plain path works too
		d := newDevice("S1", "pos-1", 7)
		apply(t, s, d.ev(10, events.KindReceipt, sale("S1", line("A", 4))))
		s.Close()
		s2 := mustOpen(t, "sqlite:"+path)
		if got := stockAt(t, s2, "A", "S1").OnHand; got != 4 {
			t.Fatalf("on_hand after reopen = %d", got)
		}
		if s2.Dialect() != "sqlite" {
			t.Fatalf("dialect %q", s2.Dialect())
		}
	})
	t.Run("postgres", func(t *testing.T) {
		s := openPostgres(t)
		if s.Dialect() != "postgres" {
			t.Fatalf("dialect %q", s.Dialect())
		}
		// Replicas starting together, on a migrated schema and on a fresh
		// one: the migration lock is the schema's.
		for _, dsn := range []string{testDSN(t, s), testkit.Postgres(t)} {
			openTogether(t, ctx, dsn)
		}
	})
	if _, err := Open(ctx, "sqlite::memory:", nil); !errors.Is(err, ErrInvalid) {
		t.Fatalf("in-memory sqlite: %v", err)
	}
}

// openTogether opens four stores on dsn at once; each must open.
func openTogether(t *testing.T, ctx context.Context, dsn string) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := Open(ctx, dsn, nil)
			if err != nil {
				errs <- err
				return
			}
			r.Close()
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

// testDSN returns the DSN a PostgreSQL store was opened with.
func testDSN(t *testing.T, s *Store) string {
	t.Helper()
	return s.pool.Config().ConnString()
}

// Ensure that the stock rules hold through the store, batch after batch,
// with counts and deltas arriving late.
func TestApplyBatch_StockRules(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, s *Store) {
		d := newDevice("S1", "pos-1", 1)
		hq := stocktakes{}
		steps := []struct {
			name   string
			events []events.Envelope
			onHand int64
		}{
			{"deltas without a count", []events.Envelope{
				d.ev(100, events.KindReceipt, sale("S1", line("A", 10))),
				d.ev(110, events.KindSale, sale("S1", line("A", 3), line("A", 1))),
			}, 6},
			{"a count supersedes", []events.Envelope{hq.ev(200, events.KindCount, sale("S1", line("A", 20)))}, 20},
			{"deltas after the count", []events.Envelope{
				d.ev(210, events.KindSale, sale("S1", line("A", 2))),
				d.ev(220, events.KindReturn, sale("S1", line("A", 1))),
			}, 19},
			{"a late delta before the count is ignored", []events.Envelope{d.ev(150, events.KindSale, sale("S1", line("A", 5)))}, 19},
			{"a late older count is ignored", []events.Envelope{hq.ev(190, events.KindCount, sale("S1", line("A", 99)))}, 19},
			{"a late delta after the count is applied", []events.Envelope{d.ev(205, events.KindAdjust, sale("S1", line("A", -4)))}, 15},
			{"a newer count arriving before its earlier deltas", []events.Envelope{
				hq.ev(300, events.KindCount, sale("S1", line("A", 50))),
				d.ev(310, events.KindTransferOut, events.StockMove{Location: "S1", To: "S2", Lines: []events.Line{line("A", 5)}}),
			}, 45},
			{"deltas between the two counts come late", []events.Envelope{
				d.ev(250, events.KindSale, sale("S1", line("A", 1))),
				d.ev(305, events.KindTransferIn, events.StockMove{Location: "S1", From: "S2", Lines: []events.Line{line("A", 2)}}),
			}, 47},
			{"a count and an older and a newer delta in one batch", []events.Envelope{
				d.ev(390, events.KindSale, sale("S1", line("A", 1))),
				hq.ev(400, events.KindCount, sale("S1", line("A", 7))),
				d.ev(410, events.KindSale, sale("S1", line("A", 2))),
			}, 5},
		}
		for _, st := range steps {
			apply(t, s, st.events...)
			got := stockAt(t, s, "A", "S1")
			if got.OnHand != st.onHand || got.Available != st.onHand {
				t.Fatalf("%s: on_hand = %d available = %d, want %d", st.name, got.OnHand, got.Available, st.onHand)
			}
		}
		if got := stockAt(t, s, "A", "S1").AsOf; !got.Equal(time.UnixMilli(410)) {
			t.Fatalf("as of = %v", got)
		}
	})
}

// Ensure that a reservation's reserve, release and fulfil give the same
// books in every arrival order, one batch each or all together.
func TestApplyBatch_ReservationsEveryOrder(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, s *Store) {
		d := newDevice(inventory.DefaultOnline, "shop", 1)
		hq, till := stocktakes{}, newDevice("S1", "pos-1", 1)
		n := 0
		for _, kinds := range [][]events.Kind{
			{events.KindReserve},
			{events.KindRelease},
			{events.KindReserve, events.KindRelease},
			{events.KindReserve, events.KindFulfil},
			{events.KindReserve, events.KindRelease, events.KindFulfil},
		} {
			for _, perm := range permutations(len(kinds)) {
				for _, together := range []bool{false, true} {
					n++
					skuA, skuB, rid := fmt.Sprintf("A%d", n), fmt.Sprintf("B%d", n), fmt.Sprintf("r%d", n)
					apply(t, s, hq.ev(1, events.KindCount, sale("S1", line(skuA, 10), line(skuB, 10))))
					// Stamped in the order of kinds; arriving in the order of perm.
					seen := map[events.Kind]bool{}
					stamped := make([]events.Envelope, len(kinds))
					for i, k := range kinds {
						// The web shop takes and releases the order (it may
						// release any, naming any location); the store
						// hands it over.
						body := rmove(rid, "S1", line(skuA, 2), line(skuB, 1))
						from := d
						switch k {
						case events.KindRelease:
							body = rmove(rid, "online") // no lines: still the whole reservation
						case events.KindFulfil:
							from = till
						}
						stamped[i] = from.ev(int64(100+10*i), k, body)
						seen[k] = true
					}
					var arrive []events.Envelope
					for _, i := range perm {
						arrive = append(arrive, stamped[i])
					}
					if together {
						apply(t, s, arrive...)
					} else {
						for _, e := range arrive {
							apply(t, s, e)
						}
					}
					var resA, resB int64
					if seen[events.KindReserve] && !seen[events.KindRelease] && !seen[events.KindFulfil] {
						resA, resB = 2, 1
					}
					onA := int64(10)
					if seen[events.KindFulfil] {
						onA = 8
					}
					a, b := stockAt(t, s, skuA, "S1"), stockAt(t, s, skuB, "S1")
					if a.Reserved != resA || b.Reserved != resB || a.OnHand != onA || a.Available != onA-resA {
						t.Fatalf("%v arriving %v (together %v): A=%+v B=%+v, want reserved %d/%d on_hand %d", kinds, perm, together, a, b, resA, resB, onA)
					}
				}
			}
		}
	})
}

func permutations(n int) [][]int {
	if n == 0 {
		return [][]int{{}}
	}
	var out [][]int
	for _, p := range permutations(n - 1) {
		for i := 0; i <= len(p); i++ {
			out = append(out, slices.Insert(slices.Clone(p), i, n-1))
		}
	}
	return out
}

// Ensure that replaying everything changes nothing, out-of-order seqs are
// fine, the MaxAhead bound defers, epochs are independent and watermarks
// are reported.
func TestApplyBatch_Dedup(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		d := newDevice("S1", "pos-1", 5)
		var log []events.Envelope
		for i := 0; i < 10; i++ {
			log = append(log, d.ev(int64(10+i), events.KindReceipt, sale("S1", line("A", 1))))
		}
		// Out of order: 5..10 first, then 1..4.
		res := apply(t, s, log[4:]...)
		if res.Applied != 6 || len(res.Watermarks) != 1 || res.Watermarks[0].Seq != 0 {
			t.Fatalf("first half: %+v", res)
		}
		res = apply(t, s, log[:4]...)
		if res.Applied != 4 || res.Watermarks[0] != (Watermark{Store: "S1", Device: "pos-1", Epoch: 5, Seq: 10}) {
			t.Fatalf("second half: %+v", res)
		}
		before := allStock(t, s)
		res = apply(t, s, append(slices.Clone(log), log...)...)
		if res.Applied != 0 || res.Duplicates != 20 {
			t.Fatalf("replay: %+v", res)
		}
		if after := allStock(t, s); !mapsEqual(before, after) {
			t.Fatalf("replay changed the books: %v -> %v", before, after)
		}
		if got := stockAt(t, s, "A", "S1").OnHand; got != 10 {
			t.Fatalf("on_hand = %d", got)
		}
		// Duplicates within one batch count once.
		e := d.ev(30, events.KindSale, sale("S1", line("A", 1)))
		res = apply(t, s, e, e, e)
		if res.Applied != 1 || res.Duplicates != 2 {
			t.Fatalf("in-batch duplicates: %+v", res)
		}

		// The bound: seq 12 is the next; 11+MaxAhead is the last processable.
		far := d.at(11+MaxAhead, 40, events.KindSale, sale("S1", line("A", 1)))
		tooFar := d.at(12+MaxAhead, 41, events.KindSale, sale("S1", line("A", 1)))
		res = apply(t, s, tooFar, far)
		if res.Applied != 1 || !slices.Equal(res.Deferred, []int{0}) || res.Watermarks[0].Seq != 11 {
			t.Fatalf("bound: %+v", res)
		}
		// Once the gap fills, the deferred one goes through.
		var gap []events.Envelope
		for seq := uint64(12); seq < 11+MaxAhead; seq++ {
			gap = append(gap, d.at(seq, 50, events.KindDeviceStatus, events.DeviceStatus{Name: "scanner", State: "open"}))
		}
		for len(gap) > 0 {
			n := min(len(gap), 2000)
			apply(t, s, gap[:n]...)
			gap = gap[n:]
		}
		res = apply(t, s, tooFar)
		if res.Applied != 1 || len(res.Deferred) != 0 || res.Watermarks[0].Seq != 12+MaxAhead {
			t.Fatalf("after the gap: %+v", res)
		}

		// A new epoch of the same device starts from zero, independently.
		d2 := newDevice("S1", "pos-1", 6)
		res = apply(t, s, d2.ev(60, events.KindSale, sale("S1", line("A", 1))), d.at(3, 60, events.KindSale, sale("S1", line("A", 1))))
		if res.Applied != 1 || res.Duplicates != 1 {
			t.Fatalf("new epoch: %+v", res)
		}
		want := []Watermark{{"S1", "pos-1", 5, 12 + MaxAhead}, {"S1", "pos-1", 6, 1}}
		if !slices.Equal(res.Watermarks, want) {
			t.Fatalf("batch watermarks = %v, want %v", res.Watermarks, want)
		}
		wms, err := s.Watermarks(ctx, "S1", "pos-1")
		if err != nil || !slices.Equal(wms, want) {
			t.Fatalf("Watermarks = %v, %v", wms, err)
		}
		if wms, _ := s.Watermarks(ctx, "S9", "nobody"); wms == nil || len(wms) != 0 {
			t.Fatalf("unknown device watermarks = %#v", wms)
		}
		if got := stockAt(t, s, "A", "S1").OnHand; got != 10-1-1-1-1 {
			t.Fatalf("on_hand = %d", got)
		}
	})
}

func mapsEqual[K comparable, V comparable](a, b map[K]V) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// Ensure that rejected items, future versions, unknown kinds and bodies the
// rules cannot apply are kept with payload and reason, advance dedup, and
// list newest first.
func TestApplyBatch_DeadLetters(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		d := newDevice("S1", "pos-1", 1)
		other := newDevice("S2", "pos-9", 1)
		future := d.ev(10, events.KindSale, sale("S1", line("A", 1)))
		future.V = events.CurrentVersion + 1
		future.Kind = "teleport"
		rejected := d.ev(11, events.KindSale, sale("S1", line("A", 1)))
		badBody := d.ev(12, events.KindSale, sale("S1", line("A", -5)))
		unknown := other.ev(13, "teleport", map[string]int{"x": 1})
		good := d.ev(14, events.KindSale, sale("S1", line("A", 1)))
		items := itemsOf(future, rejected, badBody, unknown, good)
		items[1].Reject = "schema: data.lines[0].qty: must be positive"
		items[1].Raw = []byte("{\"raw\":\"as received\x00\xff\"}")
		items[1].Subject = "omni.S1.events.sale"
		res, err := s.ApplyBatch(ctx, items)
		if err != nil {
			t.Fatal(err)
		}
		if res.Applied != 1 || res.DeadLettered != 4 || res.Watermarks[0].Seq != 4 || res.Watermarks[1].Seq != 1 {
			t.Fatalf("result %+v", res)
		}
		// Replaying them changes nothing: dedup state advanced.
		res, err = s.ApplyBatch(ctx, items)
		if err != nil || res.Duplicates != 5 || res.DeadLettered != 0 {
			t.Fatalf("replay: %+v %v", res, err)
		}
		dls, err := s.DeadLetters(ctx, "", 10)
		if err != nil {
			t.Fatal(err)
		}
		if len(dls) != 4 {
			t.Fatalf("dead letters = %d", len(dls))
		}
		for i := 1; i < len(dls); i++ {
			if dls[i-1].ID <= dls[i].ID {
				t.Fatalf("not newest first: %d then %d", dls[i-1].ID, dls[i].ID)
			}
		}
		byID := map[string]DeadLetter{}
		for _, dl := range dls {
			byID[dl.EventID] = dl
		}
		if dl := byID[rejected.ID]; dl.Reason != items[1].Reject || !bytes.Equal(dl.Payload, items[1].Raw) || dl.Subject != "omni.S1.events.sale" ||
			dl.Store != "S1" || dl.Device != "pos-1" || dl.Epoch != 1 || dl.Seq != 2 || dl.Kind != "sale" || dl.At.IsZero() {
			t.Fatalf("rejected: %+v", dl)
		}
		if dl := byID[future.ID]; !strings.Contains(dl.Reason, "version") || !bytes.Equal(dl.Payload, items[0].Raw) {
			t.Fatalf("future: %+v", dl)
		}
		if dl := byID[badBody.ID]; !strings.Contains(dl.Reason, "qty") {
			t.Fatalf("bad body: %+v", dl)
		}
		if dl := byID[unknown.ID]; !strings.Contains(dl.Reason, "unknown kind") {
			t.Fatalf("unknown: %+v", dl)
		}
		if got := stockAt(t, s, "A", "S1").OnHand; got != -1 {
			t.Fatalf("on_hand = %d: only the good sale applies", got)
		}
		s2, err := s.DeadLetters(ctx, "S2", 10)
		if err != nil || len(s2) != 1 || s2[0].EventID != unknown.ID {
			t.Fatalf("S2 dead letters: %+v %v", s2, err)
		}
		// A message with no usable origin: AddDeadLetter.
		if err := s.AddDeadLetter(ctx, DeadLetter{Reason: "malformed JSON", Payload: []byte("{{{"), Subject: "omni.S3.events.sale"}); err != nil {
			t.Fatal(err)
		}
		dls, _ = s.DeadLetters(ctx, "", 1)
		if len(dls) != 1 || dls[0].Reason != "malformed JSON" || string(dls[0].Payload) != "{{{" {
			t.Fatalf("latest = %+v", dls)
		}
		// An item without a usable origin given to ApplyBatch is kept too.
		noOrigin := good
		noOrigin.Origin = events.Origin{}
		res, err = s.ApplyBatch(ctx, itemsOf(noOrigin))
		if err != nil || res.DeadLettered != 1 || len(res.Watermarks) != 0 {
			t.Fatalf("no origin: %+v %v", res, err)
		}
	})
}

// Ensure that an oversell opens a conflict naming the reservations at risk
// and the best other locations, that it follows the books, resolves, and
// that a later oversell opens a new one.
func TestConflicts(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		s.now = func() time.Time { return testNow }
		hq := stocktakes{}
		pos := newDevice("S1", "pos-1", 1)
		web := newDevice(inventory.DefaultOnline, "shop", 1)
		apply(t, s,
			hq.ev(10, events.KindCount, sale("S1", line("A", 3))),
			hq.ev(10, events.KindCount, sale("S2", line("A", 8))),
			hq.ev(10, events.KindCount, sale("S3", line("A", 1))),
			hq.ev(10, events.KindCount, sale("S4", line("A", 9))),
			hq.ev(10, events.KindCount, sale("S5", line("A", 4))),
			hq.ev(10, events.KindCount, sale("S6", line("B", 4))),
		)
		apply(t, s, web.ev(20, events.KindReserve, rmove("order-1", "S1", line("A", 2))), web.ev(21, events.KindReserve, rmove("order-2", "S1", line("A", 1))))
		if cs := openConflicts(t, s); len(cs) != 0 {
			t.Fatalf("conflicts before the oversell: %v", cs)
		}
		// Offline sales merge in: available 3 - 3 - 2 = -2.
		apply(t, s, pos.ev(15, events.KindSale, sale("S1", line("A", 2))))
		cs := openConflicts(t, s)
		c, ok := cs[inventory.Key{SKU: "A", Location: "S1"}]
		if !ok || len(cs) != 1 {
			t.Fatalf("open conflicts = %v", cs)
		}
		if c.Kind != "oversell" || c.Available != -2 || !slices.Equal(c.Reservations, []string{"order-1", "order-2"}) || !c.OpenedAt.Equal(testNow) || c.ResolvedAt != nil {
			t.Fatalf("conflict = %+v", c)
		}
		var sug []string
		for _, st := range c.Suggestions {
			sug = append(sug, st.Location)
		}
		if !slices.Equal(sug, []string{"S4", "S2", "S5"}) || c.Suggestions[0].Available != 9 {
			t.Fatalf("suggestions = %+v", c.Suggestions)
		}
		// Still open, deeper: the conflict follows.
		apply(t, s, pos.ev(16, events.KindSale, sale("S1", line("A", 1))))
		if c2 := openConflicts(t, s)[inventory.Key{SKU: "A", Location: "S1"}]; c2.ID != c.ID || c2.Available != -3 {
			t.Fatalf("deeper = %+v (was %+v)", c2, c)
		}
		// Releasing order-2 is not enough; fulfilling order-1 (hand over the 2) is.
		apply(t, s, web.ev(30, events.KindRelease, rmove("order-2", "S1")))
		if got := openConflicts(t, s)[inventory.Key{SKU: "A", Location: "S1"}]; got.Available != -2 || !slices.Equal(got.Reservations, []string{"order-1"}) {
			t.Fatalf("after release = %+v", got)
		}
		apply(t, s, hq.ev(40, events.KindCount, sale("S1", line("A", 4))))
		if cs := openConflicts(t, s); len(cs) != 0 {
			t.Fatalf("still open after the recount: %v", cs)
		}
		all, err := s.Conflicts(ctx, false, 10)
		if err != nil || len(all) != 1 || all[0].ResolvedAt == nil || all[0].Available != 2 || len(all[0].Suggestions) != 0 {
			t.Fatalf("all conflicts = %+v, %v", all, err)
		}
		// Safety stock above what is available opens a new conflict.
		if err := s.SetSafetyStock(ctx, "A", "S1", 3); err != nil {
			t.Fatal(err)
		}
		cs = openConflicts(t, s)
		if c3 := cs[inventory.Key{SKU: "A", Location: "S1"}]; c3.ID == c.ID || c3.Available != -1 {
			t.Fatalf("after safety stock = %+v", cs)
		}
		if err := s.SetSafetyStock(ctx, "A", "S1", 0); err != nil {
			t.Fatal(err)
		}
		if cs := openConflicts(t, s); len(cs) != 0 {
			t.Fatalf("open after safety 0: %v", cs)
		}
		all, _ = s.Conflicts(ctx, false, 10)
		if len(all) != 2 || all[0].ID < all[1].ID {
			t.Fatalf("not newest first: %+v", all)
		}
	})
}

// Ensure that ListStock filters by location and available and pages with
// its keyset cursor, and that StockForSKU and SetSafetyStock behave.
func TestStockQueries(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		hq := stocktakes{}
		var evs []events.Envelope
		for _, loc := range []string{"S1", "S2", "S3"} {
			var ls []events.Line
			for i, sku := range []string{"A", "B", "C", "D"} {
				ls = append(ls, line(sku, int64(i+len(loc)*0)))
			}
			evs = append(evs, hq.ev(10, events.KindCount, sale(loc, ls...)))
		}
		apply(t, s, evs...)
		rows, err := s.StockForSKU(ctx, "B")
		if err != nil || len(rows) != 3 || rows[0].Location != "S1" || rows[2].Location != "S3" || rows[1].OnHand != 1 {
			t.Fatalf("StockForSKU(B) = %+v, %v", rows, err)
		}
		if !rows[0].AsOf.Equal(time.UnixMilli(10)) {
			t.Fatalf("as of = %v", rows[0].AsOf)
		}
		rows, err = s.StockForSKU(ctx, "NOPE")
		if err != nil || rows == nil || len(rows) != 0 {
			t.Fatalf("unknown sku = %#v, %v", rows, err)
		}
		rows, err = s.ListStock(ctx, StockQuery{Location: "S2"})
		if err != nil || len(rows) != 4 || rows[0].SKU != "A" || rows[3].SKU != "D" {
			t.Fatalf("location S2 = %+v, %v", rows, err)
		}
		two := int64(2)
		rows, err = s.ListStock(ctx, StockQuery{Below: &two})
		if err != nil || len(rows) != 6 {
			t.Fatalf("below 2 = %+v, %v", rows, err)
		}
		for _, r := range rows {
			if r.Available >= 2 {
				t.Fatalf("below 2 returned %+v", r)
			}
		}
		rows, err = s.ListStock(ctx, StockQuery{Location: "S3", Below: &two})
		if err != nil || len(rows) != 2 || rows[0].SKU != "A" || rows[1].SKU != "B" {
			t.Fatalf("S3 below 2 = %+v, %v", rows, err)
		}
		// Keyset pages of 5 cover the 12 rows once, in order.
		var got []string
		q := StockQuery{Limit: 5}
		for page := 0; ; page++ {
			rows, err := s.ListStock(ctx, q)
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range rows {
				got = append(got, r.SKU+"@"+r.Location)
			}
			if len(rows) < q.Limit {
				break
			}
			q.AfterSKU, q.AfterLocation = rows[len(rows)-1].SKU, rows[len(rows)-1].Location
		}
		if len(got) != 12 || !slices.IsSorted(got) || got[0] != "A@S1" || got[11] != "D@S3" {
			t.Fatalf("pages = %v", got)
		}
		// Safety stock: on a new position, then on an existing one.
		if err := s.SetSafetyStock(ctx, "C", "S2", 1); err != nil {
			t.Fatal(err)
		}
		if st := stockAt(t, s, "C", "S2"); st.Safety != 1 || st.Available != 1 || st.OnHand != 2 {
			t.Fatalf("C@S2 = %+v", st)
		}
		if err := s.SetSafetyStock(ctx, "Z", "S9", 4); err != nil {
			t.Fatal(err)
		}
		if st := stockAt(t, s, "Z", "S9"); st.Safety != 4 || st.Available != -4 {
			t.Fatalf("Z@S9 = %+v", st)
		}
		for _, bad := range []struct {
			sku, loc string
			qty      int64
		}{{"", "S1", 1}, {"A", "", 1}, {"A", "S 1", 1}, {"A", "S1", -1}} {
			if err := s.SetSafetyStock(ctx, bad.sku, bad.loc, bad.qty); !errors.Is(err, ErrInvalid) {
				t.Fatalf("SetSafetyStock(%q, %q, %d) = %v", bad.sku, bad.loc, bad.qty, err)
			}
		}
	})
}

// Ensure that heartbeats and events both make a device known, that the
// newest heartbeat wins, and that Devices merges them.
func TestHeartbeatsAndDevices(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		s.now = func() time.Time { return testNow }
		d := newDevice("S1", "pos-1", 7)
		apply(t, s, d.ev(1000, events.KindSale, sale("S1", line("A", 1))), d.ev(2000, events.KindSale, sale("S1", line("A", 1))))
		apply(t, s, newDevice("S1", "pos-1", 3).ev(500, events.KindSale, sale("S1", line("A", 1))))
		hb := Heartbeat{Store: "S1", Device: "pos-1", Version: "1.2.3", Epoch: 7, Backlog: 12, OldestUnackedAge: 3 * time.Second,
			ClockSkew: 40 * time.Millisecond, Connected: true, At: testNow.Add(-time.Minute)}
		if err := s.RecordHeartbeat(ctx, hb); err != nil {
			t.Fatal(err)
		}
		older := hb
		older.At, older.Version, older.Connected = testNow.Add(-time.Hour), "1.0.0", false
		if err := s.RecordHeartbeat(ctx, older); err != nil {
			t.Fatal(err)
		}
		if err := s.RecordHeartbeat(ctx, Heartbeat{Store: "S2", Device: "kiosk", Version: "1.2.3", Epoch: 9}); err != nil {
			t.Fatal(err)
		}
		if err := s.RecordHeartbeat(ctx, Heartbeat{Store: "S2"}); !errors.Is(err, ErrInvalid) {
			t.Fatalf("heartbeat without device: %v", err)
		}
		// The hub's own writers are not store devices; a store's device
		// may still be called hub-1.
		for _, w := range [][2]string{{inventory.HQ, HQActionDevice}, {inventory.DefaultOnline, HubDevicePrefix + "0a1b"}, {"S3", "hub-1"}} {
			if res := apply(t, s, newDevice(w[0], w[1], 1).ev(100, events.KindReceipt, sale("S1", line("A", 1)))); res.Applied+res.DeadLettered != 1 {
				t.Fatalf("%v: %+v", w, res)
			}
		}
		devs, err := s.Devices(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(devs) != 3 || devs[2].Store != "S3" || devs[2].Device != "hub-1" {
			t.Fatalf("devices = %+v", devs)
		}
		p := devs[0]
		if p.Store != "S1" || p.Device != "pos-1" || p.Version != "1.2.3" || p.Epoch != 7 || p.Watermark != 2 || p.EventsApplied != 3 ||
			p.Backlog != 12 || p.OldestUnackedAge != 3*time.Second || p.ClockSkew != 40*time.Millisecond || !p.Connected ||
			!p.LastHeartbeat.Equal(hb.At) || !p.LastEventAt.Equal(time.UnixMilli(2000)) || !p.LastAppliedAt.Equal(testNow) {
			t.Fatalf("pos-1 = %+v", p)
		}
		k := devs[1]
		if k.Store != "S2" || k.Device != "kiosk" || k.Epoch != 9 || k.Watermark != 0 || k.EventsApplied != 0 || !k.LastHeartbeat.Equal(testNow) || !k.LastEventAt.IsZero() {
			t.Fatalf("kiosk = %+v", k)
		}
	})
}

// Ensure that the dedup state round-trips through its text form and stays
// exact.
func TestSeqSet(t *testing.T) {
	t.Parallel()
	var s seqSet
	for _, seq := range []uint64{3, 4, 5, 9, 11, 12, 2} {
		if s.check(seq) != seqNew {
			t.Fatalf("%d not new", seq)
		}
		s.mark(seq)
	}
	if s.watermark != 0 || s.encodeAbove() != "2-5,9,11-12" {
		t.Fatalf("state %d %q", s.watermark, s.encodeAbove())
	}
	s.mark(1)
	if s.watermark != 5 || s.encodeAbove() != "9,11-12" {
		t.Fatalf("state %d %q", s.watermark, s.encodeAbove())
	}
	for _, seq := range []uint64{1, 5, 9, 12} {
		if s.check(seq) != seqDuplicate {
			t.Fatalf("%d not a duplicate", seq)
		}
	}
	if s.check(5+MaxAhead) != seqNew || s.check(6+MaxAhead) != seqDeferred {
		t.Fatal("bound")
	}
	above, err := decodeAbove(s.encodeAbove())
	if err != nil || !slices.Equal(above, s.above) {
		t.Fatalf("decode = %v, %v", above, err)
	}
	for _, bad := range []string{"x", "5-3", "1-999999", "7,3"} {
		if _, err := decodeAbove(bad); err == nil {
			t.Fatalf("decoded %q", bad)
		}
	}
}

// Ensure that a SQLite commit is durable (synchronous=FULL and WAL are on),
// the file is read through a mapping and the writer's cache is large.
func TestSQLitePragmas(t *testing.T) {
	t.Parallel()
	s := openSQLite(t)
	var mode string
	var sync int
	conn, err := s.w.Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if err := conn.QueryRowContext(context.Background(), "PRAGMA journal_mode").Scan(&mode); err != nil || mode != "wal" {
		t.Fatalf("journal_mode = %q, %v", mode, err)
	}
	if err := conn.QueryRowContext(context.Background(), "PRAGMA synchronous").Scan(&sync); err != nil || sync != 2 {
		t.Fatalf("synchronous = %d, %v", sync, err)
	}
	// The mapping and the writer's cache the apply rate at a large
	// ledger depends on (store.go); the readers map the file as well.
	var mmap, cache, rmmap int64
	if err := conn.QueryRowContext(context.Background(), "PRAGMA mmap_size").Scan(&mmap); err != nil || mmap != 2147418112 {
		t.Fatalf("mmap_size = %d, %v", mmap, err)
	}
	if err := conn.QueryRowContext(context.Background(), "PRAGMA cache_size").Scan(&cache); err != nil || cache != -1<<20 {
		t.Fatalf("cache_size = %d, %v", cache, err)
	}
	if err := s.r.QueryRowContext(context.Background(), "PRAGMA mmap_size").Scan(&rmmap); err != nil || rmmap != 2147418112 {
		t.Fatalf("readers' mmap_size = %d, %v", rmmap, err)
	}
	// Checkpoints run beside the writer; its own only bound the WAL.
	var ckpt int64
	if err := conn.QueryRowContext(context.Background(), "PRAGMA wal_autocheckpoint").Scan(&ckpt); err != nil || ckpt != 65536 {
		t.Fatalf("wal_autocheckpoint = %d, %v", ckpt, err)
	}
}

// Ensure that a batch failing before commit leaves no trace (no stock,
// ledger, dedup state or dead letter), and that redelivering it then applies
// it exactly once.
func TestApplyBatch_Atomic(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		d := newDevice("S1", "pos-1", 1)
		batch := itemsOf(
			d.ev(10, events.KindReceipt, sale("S1", line("A", 5))),
			d.ev(11, events.KindReserve, rmove("r1", "S1", line("A", 2))),
			d.ev(12, events.KindSale, sale("S1", line("A", 9))), // oversells: a conflict
			d.ev(13, events.KindSale, sale("S1", line("A", 1))),
		)
		batch[3].Reject = "rejected by the caller"
		boom := errors.New("disk on fire")
		s.beforeCommit = func() error { return boom }
		if _, err := s.ApplyBatch(ctx, batch); !errors.Is(err, boom) {
			t.Fatalf("err = %v", err)
		}
		if st := allStock(t, s); len(st) != 0 {
			t.Fatalf("stock after a failed batch: %v", st)
		}
		if wms, _ := s.Watermarks(ctx, "S1", "pos-1"); len(wms) != 0 {
			t.Fatalf("watermarks after a failed batch: %v", wms)
		}
		if dls, _ := s.DeadLetters(ctx, "", 10); len(dls) != 0 {
			t.Fatalf("dead letters after a failed batch: %v", dls)
		}
		if cs := openConflicts(t, s); len(cs) != 0 {
			t.Fatalf("conflicts after a failed batch: %v", cs)
		}
		s.beforeCommit = nil
		for i := 0; i < 2; i++ {
			if _, err := s.ApplyBatch(ctx, batch); err != nil {
				t.Fatal(err)
			}
		}
		if st := stockAt(t, s, "A", "S1"); st.OnHand != -4 || st.Reserved != 2 {
			t.Fatalf("after redelivery: %+v", st)
		}
		if dls, _ := s.DeadLetters(ctx, "", 10); len(dls) != 1 {
			t.Fatalf("dead letters: %d", len(dls))
		}
		if cs := openConflicts(t, s); len(cs) != 1 {
			t.Fatalf("conflicts: %v", cs)
		}
	})
}

// Ensure that a transaction losing a deadlock is retried whole and that
// the error surfaces once retries are spent.
func TestApplyBatch_RetriesDeadlocks(t *testing.T) {
	t.Parallel()
	s := openPostgres(t)
	ctx := context.Background()
	d := newDevice("S1", "pos-1", 1)
	fails := 2
	s.beforeCommit = func() error {
		if fails > 0 {
			fails--
			return &pgconn.PgError{Code: "40P01", Message: "deadlock detected"}
		}
		return nil
	}
	res, err := s.ApplyBatch(ctx, itemsOf(d.ev(10, events.KindReceipt, sale("S1", line("A", 5)))))
	if err != nil || res.Applied != 1 || fails != 0 {
		t.Fatalf("res %+v err %v fails left %d", res, err, fails)
	}
	if got := stockAt(t, s, "A", "S1").OnHand; got != 5 {
		t.Fatalf("on_hand = %d", got)
	}
	s.maxRetries = 1
	s.beforeCommit = func() error { return &pgconn.PgError{Code: "40001", Message: "could not serialize"} }
	_, err = s.ApplyBatch(ctx, itemsOf(d.ev(11, events.KindReceipt, sale("S1", line("A", 5)))))
	var pe *pgconn.PgError
	if !errors.As(err, &pe) || pe.Code != "40001" {
		t.Fatalf("err = %v", err)
	}
	calls := 0
	s.beforeCommit = func() error { calls++; return errors.New("not transient") }
	if _, err := s.ApplyBatch(ctx, itemsOf(d.ev(12, events.KindReceipt, sale("S1", line("A", 5))))); err == nil || calls != 1 {
		t.Fatalf("non-transient error retried: calls %d, err %v", calls, err)
	}
}

// Ensure that one event id delivered under two origins (a broken agent)
// takes effect once, in one batch or across batches.
func TestApplyBatch_SameEventTwoOrigins(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, s *Store) {
		a, b := newDevice("S1", "pos-1", 1), newDevice("S1", "pos-2", 1)
		e1 := a.ev(10, events.KindSale, sale("S1", line("A", 1), line("A", 2)))
		e1b := b.ev(10, events.KindSale, sale("S1", line("A", 1), line("A", 2)))
		e1b.ID = e1.ID
		apply(t, s, e1, e1b)
		e2 := a.ev(20, events.KindSale, sale("S1", line("A", 4)))
		e2b := b.ev(20, events.KindSale, sale("S1", line("A", 4)))
		e2b.ID = e2.ID
		apply(t, s, e2)
		apply(t, s, e2b)
		if got := stockAt(t, s, "A", "S1").OnHand; got != -7 {
			t.Fatalf("on_hand = %d, want -7", got)
		}
	})
}

// Ensure that a reservation's pickup document follows its state in any
// arrival order, its version grows with every change and only then, and
// ChangedReservations finds it.
func TestPickupDocs(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		d := newDevice("S1", "web", 1)
		cases := []struct {
			name    string
			ev      events.Envelope
			state   string // "" = no document (never reserved)
			lines   []downsync.PickupLine
			changed bool
		}{
			{"release before its reserve", d.ev(300, events.KindRelease, rmove("R1", "S1")), "", nil, true},
			{"reserve", d.ev(100, events.KindReserve, rmove("R1", "S1", line("A", 2), line("B", 1))), downsync.PickupCancelled,
				[]downsync.PickupLine{{SKU: "A", Qty: 2}, {SKU: "B", Qty: 1}}, true},
			{"an older reserve again", d.ev(50, events.KindReserve, rmove("R1", "S1", line("A", 9))), downsync.PickupCancelled,
				[]downsync.PickupLine{{SKU: "A", Qty: 2}, {SKU: "B", Qty: 1}}, false},
			{"open order", d.ev(400, events.KindReserve, rmove("R2", "S2", line("C", 1))), downsync.PickupOpen,
				[]downsync.PickupLine{{SKU: "C", Qty: 1}}, true},
			{"collected", newDevice("S2", "pos-1", 1).ev(500, events.KindFulfil, rmove("R2", "S2", line("C", 1))), downsync.PickupCollected,
				[]downsync.PickupLine{{SKU: "C", Qty: 1}}, true},
		}
		versions := map[string]int64{}
		for _, c := range cases {
			id := c.ev.Data
			var m events.ReservationMove
			if err := json.Unmarshal(id, &m); err != nil {
				t.Fatal(err)
			}
			res := apply(t, s, c.ev)
			if got := slices.Equal(res.Reservations, []string{m.ReservationID}); got != c.changed {
				t.Fatalf("%s: Reservations = %v", c.name, res.Reservations)
			}
			docs, err := s.PickupDocs(ctx, []string{m.ReservationID, "nope"})
			if err != nil {
				t.Fatal(err)
			}
			if c.state == "" {
				if len(docs) != 0 {
					t.Fatalf("%s: %+v", c.name, docs)
				}
				continue
			}
			if len(docs) != 1 || docs[0].State != c.state || !slices.Equal(docs[0].Lines, c.lines) || docs[0].Store != m.Location {
				t.Fatalf("%s: %+v", c.name, docs)
			}
			if v := docs[0].Version; (v > versions[m.ReservationID]) != c.changed || v < versions[m.ReservationID] {
				t.Fatalf("%s: version %d after %d", c.name, v, versions[m.ReservationID])
			}
			versions[m.ReservationID] = docs[0].Version
		}
		ids, _, err := s.ChangedReservations(ctx, Cursor{}, 10)
		if err != nil || !slices.Equal(ids, []string{"R1", "R2"}) && !slices.Equal(ids, []string{"R2", "R1"}) {
			t.Fatalf("ChangedReservations = %v %v", ids, err)
		}
	})
}

// Ensure that one SQLite database serves one hub at a time: a second
// store on the same file is refused while the first is open, and opens
// once it is closed.
func TestSQLiteOneHub(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "hub.db")
	first := mustOpen(t, "sqlite:"+path)
	if s, err := Open(context.Background(), "sqlite:"+path, nil); !errors.Is(err, ErrLocked) {
		if s != nil {
			s.Close()
		}
		t.Fatalf("second open: %v", err)
	}
	first.Close()
	second, err := Open(context.Background(), "sqlite:"+path, nil)
	if err != nil {
		t.Fatalf("open after close: %v", err)
	}
	second.Close()
}
