package outbox

import (
	"context"
	"encoding/json"
	"path/filepath"
	"testing"
	"time"

	"github.com/omnisync/omnisync/shared/events"
)

func TestSaleValue(t *testing.T) {
	for _, tt := range []struct {
		kind events.Kind
		data string
		want int64
		sale bool
	}{
		{events.KindSale, `{"lines":[{"sku":"A","qty":2,"unit_price":150},{"sku":"B","qty":3}]}`, 300, true},
		{events.KindSale, `{"lines":[{"sku":"A","qty":1}]}`, 0, true},
		{events.KindSale, `not json`, 0, true},
		{events.KindReturn, `{"lines":[{"sku":"A","qty":2,"unit_price":150}]}`, 0, false},
		{events.KindCount, `{"lines":[{"sku":"A","qty":2}]}`, 0, false},
	} {
		if v, ok := saleValue(tt.kind, json.RawMessage(tt.data)); v != tt.want || ok != tt.sale {
			t.Errorf("%s %s: %d %v, want %d %v", tt.kind, tt.data, v, ok, tt.want, tt.sale)
		}
	}
}

// Ensure that the unsynced sales survive a restart (rebuilt from the
// file) and leave with their acks.
func TestStats_UnsyncedSalesAcrossReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "outbox.db")
	wall := time.UnixMilli(1_780_000_000_000)
	opts := Options{Path: path, Store: "S1", Device: "pos-1", MinFreeDisk: -1, Now: func() time.Time { return wall }}
	ob, err := Open(opts)
	if err != nil {
		t.Fatal(err)
	}
	sale := func(price int) events.Draft {
		b, _ := json.Marshal(events.StockMove{Location: "S1", Lines: []events.Line{{SKU: "A", Qty: 2, UnitPrice: ptr(int64(price))}}})
		return events.Draft{Kind: events.KindSale, Data: b}
	}
	if _, err := ob.Append(context.Background(), []events.Draft{sale(100), {Kind: events.KindReceipt, Data: json.RawMessage(`{"location":"S1","lines":[{"sku":"A","qty":9}]}`)}, sale(250)}); err != nil {
		t.Fatal(err)
	}
	check := func(ob *Outbox, n, v int64, oldest bool) {
		t.Helper()
		st := ob.Stats()
		if st.UnsyncedSales != n || st.UnsyncedValue != v || st.OldestUnsyncedSale.IsZero() == oldest {
			t.Fatalf("stats %+v, want %d sales worth %d", st, n, v)
		}
		if oldest && st.OldestUnsyncedSale.UnixMilli() != wall.UnixMilli() {
			t.Fatalf("oldest %v, want %v", st.OldestUnsyncedSale, wall)
		}
	}
	check(ob, 2, 700, true)
	if err := ob.Close(); err != nil {
		t.Fatal(err)
	}
	if ob, err = Open(opts); err != nil {
		t.Fatal(err)
	}
	defer ob.Close()
	check(ob, 2, 700, true)
	if _, err := ob.Ack(ob.Epoch(), 2); err != nil {
		t.Fatal(err)
	}
	check(ob, 1, 500, true)
	if _, err := ob.Ack(ob.Epoch(), 3); err != nil {
		t.Fatal(err)
	}
	check(ob, 0, 0, false)
}

func ptr[T any](v T) *T { return &v }

// BenchmarkSaleValue is the append path's extra work for a priced
// three-line sale.
func BenchmarkSaleValue(b *testing.B) {
	data := json.RawMessage(`{"location":"S1","lines":[{"sku":"SKU-1","qty":2,"unit_price":1999},{"sku":"SKU-2","qty":1,"unit_price":4900},{"sku":"SKU-3","qty":3,"unit_price":250}],"order_id":"R-1001"}`)
	b.ReportAllocs()
	for b.Loop() {
		if v, _ := saleValue(events.KindSale, data); v != 9648 {
			b.Fatal(v)
		}
	}
}
