package outbox

import (
	"context"
	"encoding/json"
	"path/filepath"
	"testing"
	"time"

	"github.com/omnisync/omnisync/shared/events"
	"github.com/omnisync/omnisync/shared/hlc"
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

// TestStoredSale checks that the byte reader loadSales uses agrees with
// decoding, on envelopes as the outbox writes them, as a scrub rewrites
// them, and on ones it must leave to the decoder.
func TestStoredSale(t *testing.T) {
	enc := newEncoder("S1", "pos-1", 1_780_000_000_000)
	ts := hlc.Timestamp{Wall: 1_780_000_000_123, Logical: 7}
	id := "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b"
	var recs [][]byte
	for _, d := range []events.Draft{
		{Kind: events.KindSale, Data: json.RawMessage(`{"lines":[{"sku":"A","qty":2,"unit_price":150}]}`)},
		{Kind: events.KindSale, Data: json.RawMessage(`{"lines":[{"sku":"A","qty":1}],"note":"},\"hlc\":{\"wall\":1"}`)},
		{Kind: events.KindReceipt, Data: json.RawMessage(`{"lines":[{"sku":"A","qty":9}],"kind":"sale"}`)},
	} {
		tail, err := json.Marshal(kindData{Kind: d.Kind, Data: d.Data})
		if err != nil {
			t.Fatal(err)
		}
		recs = append(recs, enc.append(nil, id, 42, ts, tail[1:]))
		scrubbed, err := json.Marshal(events.Envelope{V: 1, ID: id, Origin: events.Origin{Store: "S1", Device: "pos-1", Epoch: 1, Seq: 42},
			HLC: ts, Kind: d.Kind, Data: d.Data})
		if err != nil {
			t.Fatal(err)
		}
		recs = append(recs, scrubbed)
	}
	for _, rec := range recs {
		wall, data, sale, ok := storedSale(rec)
		if !ok {
			t.Fatalf("%s: not read", rec)
		}
		dw, dd, ds := decodedSale(rec)
		if sale != ds || sale && (wall != dw || string(data) != string(dd)) {
			t.Errorf("%s: read %d %s %v, decoded %d %s %v", rec, wall, data, sale, dw, dd, ds)
		}
	}
	for _, rec := range []string{
		`{"v":1,"id":"x","hlc":{"wall":-5,"logical":0},"kind":"sale","data":{}}`,
		`{"v":1,"id":"x","hlc":{"wall":5,"logical":0},"kind":"s\u0061le","data":{}}`,
		`{"v":1,"id":"x","hlc":{"wall":5,"logical":0},"data":{},"kind":"sale"}`,
		`{"v":1,"id":"x","kind":"sale","data":{},"hlc":{"wall":5,"logical":0}}`,
		`{"v":1,"id":"x","origin":{"seq":1},"hlc":{"wall":5 ,"logical":0},"kind":"sale","data":{}}`,
		`{"v":1,"id":"x","origin":{"seq":1},"hlc":{"wall":5,"logical":0},"kind":"sale","data":{}} `,
		`not json`,
	} {
		if _, _, _, ok := storedSale([]byte(rec)); ok {
			t.Errorf("%s: read, want it left to the decoder", rec)
		}
	}
}
