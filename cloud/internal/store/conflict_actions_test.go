package store

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/omnisync/omnisync/cloud/internal/inventory"
	"github.com/omnisync/omnisync/cloud/internal/transfers"
	"github.com/omnisync/omnisync/shared/events"
)

// Ensure that an oversell conflict closes when its cause does, and says
// what closed it: stock received, the order released or collected, a
// count, a transfer arriving, a lower safety stock.
func TestConflicts_ResolvedBy(t *testing.T) {
	t.Parallel()
	forEachStoreAtOnce(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		hq := stocktakes{}
		web := newDevice(inventory.DefaultOnline, "shop", 1)
		till := newDevice("S1", "till", 1)
		// One SKU per case, each oversold at S1 by an order of 2 against 1.
		cases := []struct {
			sku  string
			fix  func(sku string) events.Envelope
			want string
		}{
			{"R", func(sku string) events.Envelope {
				return hq.ev(50, events.KindReceipt, sale("S1", line(sku, 5)))
			}, inventory.CauseReceipt},
			{"L", func(sku string) events.Envelope { return web.ev(50, events.KindRelease, rmove("o-"+sku, "S1")) }, inventory.CauseRelease},
			{"F", func(sku string) events.Envelope {
				// Collected: the till hands over 1 of the 2 (all it had).
				return till.ev(50, events.KindFulfil, rmove("o-"+sku, "S1", line(sku, 1)))
			}, inventory.CauseFulfil},
			{"C", func(sku string) events.Envelope { return hq.ev(50, events.KindCount, sale("S1", line(sku, 9))) }, inventory.CauseCount},
			{"T", func(sku string) events.Envelope {
				m := sale("S1", line(sku, 3))
				m.From, m.TransferID = "S2", "t-"+sku
				return hq.ev(50, events.KindTransferIn, m)
			}, inventory.CauseTransfer},
		}
		for _, c := range cases {
			apply(t, s, hq.ev(10, events.KindCount, sale("S1", line(c.sku, 1))), web.ev(20, events.KindReserve, rmove("o-"+c.sku, "S1", line(c.sku, 2))))
			if _, ok := openConflicts(t, s)[inventory.Key{SKU: c.sku, Location: "S1"}]; !ok {
				t.Fatalf("%s: no conflict", c.sku)
			}
			apply(t, s, c.fix(c.sku))
		}
		all, err := s.Conflicts(ctx, false, 100)
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]Conflict{}
		for _, c := range all {
			got[c.SKU] = c
		}
		for _, c := range cases {
			g := got[c.sku]
			if g.ResolvedAt == nil || g.ResolvedBy != c.want || g.Version < 2 {
				t.Errorf("%s: %+v, want resolved by %s", c.sku, g, c.want)
			}
		}
		// Safety stock opens and closes one too.
		if err := s.SetSafetyStock(ctx, "R", "S1", 9); err != nil {
			t.Fatal(err)
		}
		if err := s.SetSafetyStock(ctx, "R", "S1", 0); err != nil {
			t.Fatal(err)
		}
		all, _ = s.Conflicts(ctx, false, 1)
		if len(all) != 1 || all[0].ResolvedBy != inventory.CauseSafety {
			t.Fatalf("safety: %+v", all)
		}
	})
}

// hqAction writes the events of an HQ action as hqact does: origin HQ,
// the action's row as epoch.
func hqAction(a ConflictAction, kinds []events.Kind, bodies ...any) []events.Envelope {
	d := newDevice(inventory.HQ, HQActionDevice, uint64(a.ID))
	var out []events.Envelope
	for i, b := range bodies {
		out = append(out, d.ev(int64(100+i), kinds[i], b))
	}
	return out
}

// Ensure that HQ's action on a conflict is claimed once (by action id,
// at the version the operator saw), that its events (a transfer_out at
// another store) apply under HQ's rights, close the conflict as resolved
// by hq_action, and put the stock in transit to the conflict's location;
// and that writing them again changes nothing.
func TestConflicts_HQAction(t *testing.T) {
	t.Parallel()
	forEachStoreAtOnce(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		hq := stocktakes{}
		web := newDevice(inventory.DefaultOnline, "shop", 1)
		apply(t, s, hq.ev(10, events.KindCount, sale("S1", line("A", 0))), hq.ev(10, events.KindCount, sale("S2", line("A", 5))),
			web.ev(20, events.KindReserve, rmove("o1", "S1", line("A", 2))))
		c := openConflicts(t, s)[inventory.Key{SKU: "A", Location: "S1"}]
		if c.ID == 0 || c.Version != 1 {
			t.Fatalf("conflict %+v", c)
		}
		if _, _, err := s.ClaimConflictAction(ctx, ConflictAction{ConflictID: c.ID, ActionID: "a0", Action: "transfer"}, 7); !errors.Is(err, ErrConflictStale) {
			t.Fatalf("stale claim: %v", err)
		}
		if _, _, err := s.ClaimConflictAction(ctx, ConflictAction{ConflictID: 999, ActionID: "a0", Action: "transfer"}, 1); !errors.Is(err, ErrNotFound) {
			t.Fatalf("unknown conflict: %v", err)
		}
		a, again, err := s.ClaimConflictAction(ctx, ConflictAction{ConflictID: c.ID, ActionID: "a1", Action: "transfer", Detail: "[]", Actor: "ada"}, 1)
		if err != nil || again || a.ID == 0 {
			t.Fatalf("claim: %+v %v %v", a, again, err)
		}
		if b, again, err := s.ClaimConflictAction(ctx, ConflictAction{ConflictID: c.ID, ActionID: "a1"}, 1); err != nil || !again || b.ID != a.ID || b.Actor != "ada" {
			t.Fatalf("repeated claim: %+v %v %v", b, again, err)
		}
		if _, _, err := s.ClaimConflictAction(ctx, ConflictAction{ConflictID: c.ID, ActionID: "a2"}, 1); !errors.Is(err, ErrConflictActed) {
			t.Fatalf("second action: %v", err)
		}
		out := events.StockMove{Location: "S2", Lines: []events.Line{line("A", 2)}, TransferID: "hq-a1", To: "S1"}
		envs := hqAction(a, []events.Kind{events.KindTransferOut}, out)
		if res := apply(t, s, envs...); res.Applied != 1 || res.DeadLettered != 0 {
			t.Fatalf("HQ's transfer: %+v", res)
		}
		if res := apply(t, s, envs...); res.Duplicates != 1 {
			t.Fatalf("again: %+v", res)
		}
		all, _ := s.Conflicts(ctx, false, 10)
		if len(all) != 1 || all[0].ResolvedBy != inventory.CauseHQAction || all[0].ActedBy != "ada" || all[0].Action != "transfer" {
			t.Fatalf("after the action: %+v", all)
		}
		if st := stockAt(t, s, "A", "S2"); st.OnHand != 3 {
			t.Fatalf("S2 on hand %d", st.OnHand)
		}
		tr, err := s.Transfers(ctx, TransferQuery{State: transfers.StateInTransit, Now: time.UnixMilli(200)})
		if err != nil || len(tr) != 1 || tr[0].ID != "hq-a1" || tr[0].Source != "S2" || tr[0].Destination != "S1" || tr[0].Lines[0].Shipped != 2 {
			t.Fatalf("transfers %+v %v", tr, err)
		}
		if it, err := s.InTransit(ctx, []string{"A"}); err != nil || it[inventory.Key{SKU: "A", Location: "S1"}] != 2 {
			t.Fatalf("in transit %v %v", it, err)
		}
		// A store may not do what HQ did.
		rogue := newDevice("S3", "pos", 1)
		if res := apply(t, s, rogue.ev(300, events.KindTransferOut, out)); res.DeadLettered != 1 {
			t.Fatalf("a store's transfer elsewhere: %+v", res)
		}
		// HQ sells nothing.
		if res := apply(t, s, newDevice(inventory.HQ, HQActionDevice, 999).ev(300, events.KindSale, sale("S1", line("A", 1)))); res.DeadLettered != 1 {
			t.Fatalf("an HQ sale: %+v", res)
		}
		// HQ may cancel an order anywhere; re-source it anywhere.
		apply(t, s, web.ev(400, events.KindReserve, rmove("o2", "S2", line("A", 1))))
		if _, _, err := s.ClaimConflictAction(ctx, ConflictAction{ConflictID: c.ID, ActionID: "late"}, 2); !errors.Is(err, ErrConflictClosed) {
			t.Fatalf("claim on a closed conflict: %v", err)
		}
		rel := hqAction(ConflictAction{ID: 998}, []events.Kind{events.KindRelease, events.KindReserve}, rmove("o2", "S2"), rmove("o1", "S3", line("A", 2)))
		if res := apply(t, s, rel...); res.Applied != 2 {
			t.Fatalf("HQ release and re-reserve: %+v", res)
		}
		if st := stockAt(t, s, "A", "S2"); st.Reserved != 0 {
			t.Fatalf("S2 after cancel: %+v", st)
		}
		if st := stockAt(t, s, "A", "S3"); st.Reserved != 2 {
			t.Fatalf("S3 after re-source: %+v", st)
		}
	})
}

// Ensure that transfers pair by id whatever the order and repeats of
// their halves, go partial, received and overdue, and that a
// transfer_in without an id is only a delta.
func TestTransfers_Pairing(t *testing.T) {
	t.Parallel()
	forEachStoreAtOnce(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		s1, s2 := newDevice("S1", "pos", 1), newDevice("S2", "pos", 1)
		hour := int64(time.Hour / time.Millisecond)
		in := func(id string, qty int64) events.StockMove {
			return events.StockMove{Location: "S2", Lines: []events.Line{line("A", qty)}, TransferID: id, From: "S1"}
		}
		outm := func(id string, qty int64) events.StockMove {
			return events.StockMove{Location: "S1", Lines: []events.Line{line("A", qty), line("B", 1)}, TransferID: id, To: "S2"}
		}
		// t1: the receipt arrives before the shipment.
		apply(t, s, s2.ev(91*hour, events.KindTransferIn, in("t1", 4)))
		got := func(state string) map[string]string {
			tr, err := s.Transfers(ctx, TransferQuery{State: state, Now: time.UnixMilli(100 * hour)})
			if err != nil {
				t.Fatal(err)
			}
			m := map[string]string{}
			for _, x := range tr {
				m[x.ID] = x.State
			}
			return m
		}
		if g := got(""); g["t1"] != transfers.StateReceived {
			t.Fatalf("early receipt: %v", g)
		}
		o1 := s1.ev(90*hour, events.KindTransferOut, outm("t1", 4))
		apply(t, s, o1)
		apply(t, s, o1) // a duplicate
		// t2: shipped long ago, half received: overdue. t3: shipped now.
		apply(t, s, s1.ev(10*hour, events.KindTransferOut, outm("t2", 4)), s2.ev(11*hour, events.KindTransferIn, in("t2", 2)),
			s1.ev(99*hour, events.KindTransferOut, outm("t3", 1)))
		// A transfer_in without an id: a delta only.
		apply(t, s, s2.ev(12*hour, events.KindTransferIn, events.StockMove{Location: "S2", Lines: []events.Line{line("A", 1)}, From: "S1"}))
		want := map[string]string{"t1": transfers.StatePartial, "t2": transfers.StateOverdue, "t3": transfers.StateInTransit}
		if g := got(""); len(g) != 3 || g["t1"] != want["t1"] || g["t2"] != want["t2"] || g["t3"] != want["t3"] {
			t.Fatalf("transfers %v, want %v", g, want)
		}
		if g := got(transfers.StateOverdue); len(g) != 1 || g["t2"] == "" {
			t.Fatalf("overdue %v", g)
		}
		if g := got(transfers.StateInTransit); len(g) != 1 || g["t3"] == "" {
			t.Fatalf("in transit %v", g)
		}
		// t1 lacks B (1), t2 2 A and 1 B, t3 1 A and 1 B.
		it, err := s.InTransit(ctx, []string{"A", "B"})
		if err != nil || it[inventory.Key{SKU: "A", Location: "S2"}] != 3 || it[inventory.Key{SKU: "B", Location: "S2"}] != 3 {
			t.Fatalf("in transit %v %v", it, err)
		}
		if st := stockAt(t, s, "A", "S2"); st.OnHand != 4+2+1 {
			t.Fatalf("S2 on hand %+v", st)
		}
		b, _ := json.Marshal(got(""))
		t.Logf("transfers: %s", b)
	})
}

// Ensure that replicas claiming at once act once: the same action id
// from everywhere gets the one row, different ids on one conflict leave
// one winner.
func TestConflicts_ClaimRace(t *testing.T) {
	t.Parallel()
	forEachStoreAtOnce(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		web := newDevice(inventory.DefaultOnline, "shop", 1)
		apply(t, s, web.ev(20, events.KindReserve, rmove("o1", "S1", line("A", 1))), web.ev(21, events.KindReserve, rmove("o2", "S1", line("B", 1))))
		cs := openConflicts(t, s)
		a, b := cs[inventory.Key{SKU: "A", Location: "S1"}], cs[inventory.Key{SKU: "B", Location: "S1"}]
		const n = 6
		type result struct {
			row   ConflictAction
			again bool
			err   error
		}
		race := func(c Conflict, id func(i int) string) []result {
			out := make([]result, n)
			done := make(chan int)
			for i := range n {
				go func() {
					r, again, err := s.ClaimConflictAction(ctx, ConflictAction{ConflictID: c.ID, ActionID: id(i), Action: "cancel", Detail: "[]"}, c.Version)
					out[i] = result{r, again, err}
					done <- i
				}()
			}
			for range n {
				<-done
			}
			return out
		}
		fresh := 0
		for _, r := range race(a, func(int) string { return "same" }) {
			if r.err != nil || r.row.ActionID != "same" {
				t.Fatalf("same id: %+v", r)
			}
			if !r.again {
				fresh++
			}
		}
		if fresh != 1 {
			t.Fatalf("same id claimed %d times", fresh)
		}
		won := 0
		for _, r := range race(b, func(i int) string { return "id-" + string(rune('a'+i)) }) {
			switch {
			case r.err == nil:
				won++
			case !errors.Is(r.err, ErrConflictActed):
				t.Fatalf("different ids: %v", r.err)
			}
		}
		if won != 1 {
			t.Fatalf("different ids: %d winners", won)
		}
	})
}
