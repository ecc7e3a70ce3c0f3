package transfers

import (
	"math/rand"
	"reflect"
	"testing"
	"time"

	"github.com/omnisync/omnisync/shared/events"
)

func out(id string, at int64, lines ...events.Line) Op {
	return Op{EventID: id, Kind: events.KindTransferOut, Location: "S1", Counterpart: "S2", Lines: lines, At: time.UnixMilli(at)}
}

func in(id string, at int64, lines ...events.Line) Op {
	return Op{EventID: id, Kind: events.KindTransferIn, Location: "S2", Counterpart: "S1", Lines: lines, At: time.UnixMilli(at)}
}

func l(sku string, q int64) events.Line { return events.Line{SKU: sku, Qty: q} }

// Ensure that a transfer's state follows its halves, and does not depend
// on their order or repeats.
func TestFold(t *testing.T) {
	cases := []struct {
		name       string
		ops        []Op
		state      string
		inTransitA int64
		src, dst   string
	}{
		{"shipped", []Op{out("o", 10, l("A", 3))}, StateInTransit, 3, "S1", "S2"},
		{"received", []Op{out("o", 10, l("A", 3)), in("i", 20, l("A", 3))}, StateReceived, 0, "S1", "S2"},
		{"received before shipped", []Op{in("i", 5, l("A", 3)), out("o", 10, l("A", 3))}, StateReceived, 0, "S1", "S2"},
		{"receipt only", []Op{in("i", 5, l("A", 3))}, StateReceived, 0, "S1", "S2"},
		{"partial", []Op{out("o", 10, l("A", 3), l("B", 1)), in("i", 20, l("A", 3))}, StatePartial, 0, "S1", "S2"},
		{"short", []Op{out("o", 10, l("A", 3)), in("i", 20, l("A", 1))}, StatePartial, 2, "S1", "S2"},
		{"two receipts", []Op{out("o", 10, l("A", 3)), in("i1", 20, l("A", 1)), in("i2", 30, l("A", 2))}, StateReceived, 0, "S1", "S2"},
		{"duplicate receipt", []Op{out("o", 10, l("A", 3)), in("i1", 20, l("A", 1)), in("i1", 20, l("A", 1))}, StatePartial, 2, "S1", "S2"},
		{"over-received", []Op{out("o", 10, l("A", 1)), in("i", 20, l("A", 2))}, StateReceived, 0, "S1", "S2"},
	}
	rng := rand.New(rand.NewSource(1))
	for _, c := range cases {
		want := Fold("t", c.ops)
		if want.State != c.state || want.Source != c.src || want.Destination != c.dst {
			t.Errorf("%s: %+v, want %s %s→%s", c.name, want, c.state, c.src, c.dst)
		}
		var a int64
		for _, ln := range want.Lines {
			if ln.SKU == "A" && want.Open() {
				a = ln.InTransit()
			}
		}
		if a != c.inTransitA {
			t.Errorf("%s: in transit %d, want %d", c.name, a, c.inTransitA)
		}
		for range 5 {
			ops := append([]Op(nil), c.ops...)
			ops = append(ops, ops[rng.Intn(len(ops))])
			rng.Shuffle(len(ops), func(i, j int) { ops[i], ops[j] = ops[j], ops[i] })
			if got := Fold("t", ops); !reflect.DeepEqual(got, want) {
				t.Errorf("%s: shuffled %+v != %+v", c.name, got, want)
			}
		}
	}
}

// Ensure that only an open transfer shipped longer ago than the age is
// overdue.
func TestStateAt(t *testing.T) {
	open := Fold("t", []Op{out("o", 0, l("A", 1))})
	done := Fold("t", []Op{out("o", 0, l("A", 1)), in("i", 1, l("A", 1))})
	at := time.UnixMilli(0).Add(73 * time.Hour)
	if s := open.StateAt(at, 0); s != StateOverdue {
		t.Errorf("open after 73h: %s", s)
	}
	if s := open.StateAt(at, 100*time.Hour); s != StateInTransit {
		t.Errorf("open within the age: %s", s)
	}
	if s := done.StateAt(at, 0); s != StateReceived {
		t.Errorf("received: %s", s)
	}
}

// Ensure that only a transfer half with an id is a transfer.
func TestOpOf(t *testing.T) {
	mk := func(k events.Kind, body string) events.Envelope {
		return events.Envelope{ID: "e", Kind: k, Data: []byte(body)}
	}
	if _, _, ok := OpOf(mk(events.KindTransferIn, `{"location":"S2","from":"S1","lines":[{"sku":"A","qty":1}]}`)); ok {
		t.Error("a transfer_in without an id is a transfer")
	}
	if _, _, ok := OpOf(mk(events.KindSale, `{"location":"S2","transfer_id":"x","lines":[{"sku":"A","qty":1}]}`)); ok {
		t.Error("a sale is a transfer")
	}
	id, op, ok := OpOf(mk(events.KindTransferOut, `{"location":"S1","to":"S2","transfer_id":"x","lines":[{"sku":"A","qty":1}]}`))
	if !ok || id != "x" || op.Counterpart != "S2" || op.Location != "S1" {
		t.Errorf("transfer_out: %q %+v %v", id, op, ok)
	}
}
