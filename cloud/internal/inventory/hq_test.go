package inventory_test

import (
	"errors"
	"testing"

	"github.com/omnisync/omnisync/cloud/internal/inventory"
	"github.com/omnisync/omnisync/shared/events"
)

// Ensure that HQ speaks for the chain only as far as its actions need:
// transfers between any stores, releases and reserves anywhere; never a
// sale, receipt, count or fulfil.
func TestRules_HQ(t *testing.T) {
	r := inventory.Rules{Online: inventory.DefaultOnline}
	mv := func(k events.Kind) events.StockMove {
		m := events.StockMove{Location: "S2", Lines: []events.Line{{SKU: "A", Qty: 1}}, TransferID: "t"}
		if k == events.KindTransferOut {
			m.To = "S1"
		} else {
			m.From = "S1"
		}
		return m
	}
	rm := events.ReservationMove{ReservationID: "o1", Location: "S2", Lines: []events.Line{{SKU: "A", Qty: 1}}}
	cases := []struct {
		origin string
		kind   events.Kind
		body   any
		ok     bool
	}{
		{inventory.HQ, events.KindTransferOut, mv(events.KindTransferOut), true},
		{inventory.HQ, events.KindTransferIn, mv(events.KindTransferIn), true},
		{inventory.HQ, events.KindRelease, rm, true},
		{inventory.HQ, events.KindReserve, rm, true},
		{inventory.HQ, events.KindSale, mv(events.KindSale), false},
		{inventory.HQ, events.KindReceipt, mv(events.KindReceipt), false},
		{inventory.HQ, events.KindCount, mv(events.KindCount), false},
		{inventory.HQ, events.KindFulfil, rm, false},
		{"S3", events.KindTransferOut, mv(events.KindTransferOut), false},
		{"S3", events.KindRelease, rm, false},
		{"S2", events.KindTransferOut, mv(events.KindTransferOut), true},
	}
	for _, c := range cases {
		eff, err := r.Effect(evFrom(c.origin, "1", 10, c.kind, c.body))
		if (err == nil) != c.ok {
			t.Errorf("%s %s: err %v, want ok=%v", c.origin, c.kind, err, c.ok)
		}
		if err != nil && !errors.Is(err, inventory.ErrForeignLocation) {
			t.Errorf("%s %s: %v is not ErrForeignLocation", c.origin, c.kind, err)
		}
		if c.ok && c.kind == events.KindRelease && !eff.Reservation.Online {
			t.Errorf("an HQ release must close any order")
		}
	}
}

// Ensure that a resolved conflict names its cause: HQ's hand first, then
// the most telling kind, whatever the order of the batch.
func TestCauseOf(t *testing.T) {
	k := func(ks ...events.Kind) []events.Kind { return ks }
	cases := []struct {
		kinds  []events.Kind
		hq     bool
		safety bool
		want   string
	}{
		{k(events.KindReceipt), false, false, inventory.CauseReceipt},
		{k(events.KindRelease, events.KindCount), false, false, inventory.CauseCount},
		{k(events.KindCount, events.KindRelease), false, false, inventory.CauseCount},
		{k(events.KindTransferIn), false, false, inventory.CauseTransfer},
		{k(events.KindRelease), true, false, inventory.CauseHQAction},
		{k(events.KindFulfil, events.KindRelease), false, false, inventory.CauseRelease},
		{k(events.KindFulfil), false, false, inventory.CauseFulfil},
		{k(events.KindReserve), false, false, inventory.CauseReserve},
		{nil, false, true, inventory.CauseSafety},
		{k(events.KindAdjust), false, true, inventory.CauseAdjust},
		{nil, false, false, inventory.CauseOther},
	}
	for _, c := range cases {
		if got := inventory.CauseOf(c.kinds, c.hq, c.safety); got != c.want {
			t.Errorf("CauseOf(%v, %v, %v) = %s, want %s", c.kinds, c.hq, c.safety, got, c.want)
		}
	}
}
