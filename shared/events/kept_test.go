package events

import (
	"encoding/json"
	"fmt"
	"reflect"
	"testing"
)

// keptEnvelopes are valid envelopes of the kinds whose bodies Decode
// keeps, in the shapes agents write and in rarer ones.
var keptEnvelopes = func() []string {
	ev := func(kind, data string) string {
		return fmt.Sprintf(`{"v":1,"id":"01890a5d-ac96-774b-bcce-b302099a8057","origin":{"store":"S1","device":"pos-1","epoch":1,"seq":7},"hlc":{"wall":1767225600000},"kind":%q,"data":%s}`, kind, data)
	}
	return []string{
		ev("sale", `{"location":"S1","lines":[{"sku":"A","qty":1,"unit_price":250}],"order_id":"O-1","customer":{"loyalty":"LC-1"}}`),
		ev("sale", ` {"location":"S1","lines":[{"sku":"A","qty":1}],"customer":"walk-in"} `),
		ev("return", `{"Location":"S1","LINES":[{"SKU":"A","qty":2}],"customer": {"loyalty":"LC-2"} }`),
		ev("sale", `{"location":"S1","lines":[{"sku":"A","qty":1}],"customer":null,"x":[1]}`),
		ev("count", `{"location":"S1","lines":[{"sku":"A","qty":0}],"method":"rfid_sweep","snapshot_at":"2026-01-01T00:00:00Z"}`),
		ev("transfer_out", `{"location":"S1","to":"S2","transfer_id":"T-1","lines":[{"sku":"A","qty":3}]}`),
		ev("adjust", `{"location":"S1","lines":[{"sku":"A","qty":-1},{"sku":"A","qty":1,"unit_price":null}]}`),
		ev("reserve", `{"reservation_id":"R-1","location":"S1","lines":[{"sku":"A","qty":1}]}`),
		ev("release", `{"reservation_id":"R-1","location":"S1","lines":null}`),
		ev("fulfil", `{"reservation_id":"R-1","location":"S1","lines":[{"sku":"A","qty":1}],"reservation_id":"R-2"}`),
		ev("scan", `{"code":"4006381333931"}`),
	}
}()

// Ensure that Decode keeps the bodies it checked, that every reader of a
// body gets what decoding Data gives, and that an envelope whose Data is
// replaced reads its new body.
func TestDecodeKeepsBody(t *testing.T) {
	for _, raw := range keptEnvelopes {
		e, err := Decode([]byte(raw))
		if err != nil {
			t.Fatalf("%s: %v", raw, err)
		}
		sameKept(t, &e)
		switch e.Kind {
		case KindScan:
			if e.body != nil {
				t.Fatalf("%s: kept %#v", e.Kind, e.body)
			}
			continue
		case KindReserve, KindRelease, KindFulfil:
			if _, ok := e.body.(*reservationBody); !ok {
				t.Fatalf("%s: kept %#v", e.Kind, e.body)
			}
		default:
			if _, ok := e.body.(*stockBody); !ok {
				t.Fatalf("%s: kept %#v", e.Kind, e.body)
			}
		}
		// The kept body survives copies, and holds only for its Data.
		c := e
		c.Data = json.RawMessage(`{"location":"S9","reservation_id":"R-9","lines":[{"sku":"Z","qty":5}],"customer":{"loyalty":"LC-9"}}`)
		sameKept(t, &c)
		sm, _ := c.StockMove()
		rm, _ := c.ReservationMove()
		if sm.Location != "S9" || rm.Location != "S9" || c.CustomerRef()["loyalty"] != "LC-9" {
			t.Fatalf("%s: a replaced body reads %+v %+v %v", e.Kind, sm, rm, c.CustomerRef())
		}
		c.Data = append(json.RawMessage(nil), e.Data...) // the same bytes elsewhere
		sameKept(t, &c)
	}
	// Validate keeps nothing: the caller's envelope is only read.
	e := validEnvelope()
	if err := e.Validate(); err != nil || e.body != nil {
		t.Fatalf("Validate: %v, kept %#v", err, e.body)
	}
	// A body that does not decode is not kept.
	e.Data = json.RawMessage(`{"lines":[{"qty":"x"}]}`)
	e.KeepBody()
	if _, err := e.StockMove(); err == nil || e.body != nil {
		t.Fatalf("bad body: %v, kept %#v", err, e.body)
	}
	// Nor is a body with a default filled in: it is not Data's.
	if _, b, err := checkStockMove(KindSale, json.RawMessage(`{"lines":[{"sku":"A","qty":1}]}`), "S1"); err != nil || b != nil {
		t.Fatalf("filled body: %v, kept %#v", err, b)
	}
}

// Ensure that an envelope encodes the same whether or not it keeps its
// body.
func TestKeptBodyNotEncoded(t *testing.T) {
	e, err := Decode([]byte(keptEnvelopes[0]))
	if err != nil {
		t.Fatal(err)
	}
	c := e
	c.body = nil
	if a, b := mustMarshal(t, e), mustMarshal(t, c); !reflect.DeepEqual(a, b) {
		t.Fatalf("encoded %s, without the kept body %s", a, b)
	}
}
