package events

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

// oracleStockMove is DecodeStockMove as encoding/json alone does it: the
// reference the fast decoder must match.
func oracleStockMove(data []byte) (StockMove, error) {
	var m StockMove
	if err := json.Unmarshal(data, &m); err != nil {
		return m, jsonFieldErr("", err)
	}
	return m, nil
}

// sameStockMove fails t unless DecodeStockMove and encoding/json agree on
// data: the same value, and the same error or none. It reports whether
// the fast path decided data.
func sameStockMove(t *testing.T, data []byte) (fast bool) {
	t.Helper()
	want, wantErr := oracleStockMove(data)
	got, gotErr := DecodeStockMove(data)
	if (wantErr == nil) != (gotErr == nil) || (wantErr != nil && wantErr.Error() != gotErr.Error()) {
		t.Fatalf("%q: error %v, encoding/json says %v", data, gotErr, wantErr)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("%q:\n got %#v\nwant %#v", data, got, want)
	}
	var m StockMove
	if fastStockMove(data, &m) {
		if wantErr != nil {
			t.Fatalf("%q: the fast path accepted what encoding/json refuses (%v)", data, wantErr)
		}
		if !reflect.DeepEqual(m, want) {
			t.Fatalf("%q: fast path\n got %#v\nwant %#v", data, m, want)
		}
		return true
	}
	return false
}

// oracleCustomerRef is DecodeCustomerRef as encoding/json alone does it.
func oracleCustomerRef(data []byte) CustomerRef {
	var m struct {
		Customer json.RawMessage `json:"customer"`
	}
	if json.Unmarshal(data, &m) != nil || len(m.Customer) == 0 || m.Customer[0] != '{' {
		return nil
	}
	var c CustomerRef
	if json.Unmarshal(m.Customer, &c) != nil || len(c) == 0 {
		return nil
	}
	return c
}

// sameCustomerRef fails t unless DecodeCustomerRef and encoding/json
// agree on data.
func sameCustomerRef(t *testing.T, data []byte) {
	t.Helper()
	if got, want := DecodeCustomerRef(data), oracleCustomerRef(data); !reflect.DeepEqual(got, want) {
		t.Fatalf("%q: customer %#v, encoding/json says %#v", data, got, want)
	}
}

// Ensure that the fast stock move decoder reads the common bodies itself
// and agrees with encoding/json on every edge case, handing the unusual
// ones to it.
func TestDecodeStockMoveMatchesEncodingJSON(t *testing.T) {
	tests := []struct {
		name string
		body string
		fast bool // the fast path decides it
	}{
		{"sale", `{"location":"S1","lines":[{"sku":"SKU-1","qty":2},{"sku":"SKU-2","qty":1,"unit_price":1299}]}`, true},
		{"count with snapshot", `{"location":"S1","method":"rfid_sweep","snapshot_at":"2026-06-01T10:00:00.123Z","lines":[{"sku":"A","qty":0}]}`, true},
		{"snapshot with offset", `{"snapshot_at":"2026-06-01T10:00:00+02:00","lines":[{"sku":"A","qty":1}]}`, true},
		{"transfer", `{"location":"S1","to":"S2","transfer_id":"T-1","lines":[{"sku":"A","qty":5}],"reason":"rebalance"}`, true},
		{"customer object", `{"location":"S1","customer":{"loyalty":"LC-1","email":"a\u0040b.example"},"lines":[{"sku":"A","qty":1}]}`, true},
		{"customer string", `{"customer":"walk-in","lines":[{"sku":"A","qty":1}]}`, true},
		{"customer null", `{"customer":null,"lines":[{"sku":"A","qty":1}]}`, true},
		{"customer twice", `{"customer":{"loyalty":"LC-1"},"Customer":{"email":"a@b.example"},"lines":[]}`, false},
		{"customer with unknown fields", `{"lines":[{"sku":"A","qty":1}],"customer":{"loyalty":"LC-1","region":"EU"},"x":[{}]}`, true},
		{"customer nested", `{"customer":{"a":[1,-2.5e3,true,false,null,{"b":"c"}]},"lines":[]}`, true},
		{"whitespace", " \t\n{ \"location\" : \"S1\" ,\r\n \"lines\" : [ { \"sku\" : \"A\" , \"qty\" : 3 } ] } \n", true},
		{"empty object", `{}`, true},
		{"empty lines", `{"lines":[]}`, true},
		{"null lines", `{"lines":null}`, true},
		{"null line", `{"lines":[null,{"sku":"A","qty":1}]}`, true},
		{"null fields", `{"location":null,"order_id":null,"lines":[{"sku":null,"qty":null,"unit_price":null}],"snapshot_at":null}`, true},
		{"unknown fields", `{"till":7,"x":{"y":[1,2]},"lines":[{"sku":"A","qty":1,"note":"gift"}]}`, true},
		{"key in other case", `{"Location":"S1","LINES":[{"SKU":"A","Qty":1,"Unit_Price":5}]}`, true},
		{"non-ASCII value", `{"location":"S1","reason":"café ☕","lines":[{"sku":"A","qty":1}]}`, true},
		{"negative and zero", `{"lines":[{"sku":"A","qty":-3},{"sku":"B","qty":0},{"sku":"C","qty":-0}]}`, true},
		{"18 digits", `{"lines":[{"sku":"A","qty":999999999999999999}]}`, true},

		// Left to encoding/json.
		{"not an object", `[{"sku":"A"}]`, false},
		{"null body", `null`, false},
		{"empty input", ``, false},
		{"string body", `"x"`, false},
		{"duplicate key", `{"location":"S1","location":"S2"}`, false},
		{"duplicate lines merge", `{"lines":[{"sku":"A","qty":1,"unit_price":5}],"lines":[{"sku":"B"}]}`, false},
		{"duplicate key in line", `{"lines":[{"sku":"A","sku":"B","qty":1}]}`, false},
		{"duplicate by case", `{"location":"S1","LOCATION":"S2"}`, false},
		{"non-ASCII key folding", "{\"\u017fku\":\"x\",\"lines\":[{\"\u017fku\":\"A\",\"qty\":1}]}", false},
		{"kelvin key", "{\"lines\":[{\"sku\":\"A\",\"qty\":1,\"\u212a\":2}]}", false},
		{"escaped key", `{"loc\u0061tion":"S1"}`, false},
		{"escaped value", `{"location":"S\u0031","lines":[{"sku":"A\"B","qty":1}]}`, false},
		{"invalid UTF-8", "{\"location\":\"S\xff1\",\"lines\":[{\"sku\":\"A\",\"qty\":1}]}", false},
		{"invalid UTF-8 in customer", "{\"customer\":\"\xc3\x28\",\"lines\":[]}", true},
		{"lone surrogate", `{"reason":"\ud800"}`, false},
		{"control character", "{\"location\":\"S\x011\"}", false},
		{"qty as string", `{"lines":[{"sku":"A","qty":"1"}]}`, false},
		{"qty fraction", `{"lines":[{"sku":"A","qty":1.0}]}`, false},
		{"qty exponent", `{"lines":[{"sku":"A","qty":1e2}]}`, false},
		{"qty 19 digits", `{"lines":[{"sku":"A","qty":1000000000000000000}]}`, false},
		{"qty out of range", `{"lines":[{"sku":"A","qty":9223372036854775808}]}`, false},
		{"qty min int64", `{"lines":[{"sku":"A","qty":-9223372036854775808}]}`, false},
		{"leading zero", `{"lines":[{"sku":"A","qty":01}]}`, false},
		{"bare minus", `{"lines":[{"sku":"A","qty":-}]}`, false},
		{"location as number", `{"location":5,"lines":[]}`, false},
		{"lines as object", `{"lines":{"sku":"A"}}`, false},
		{"line as array", `{"lines":[["A",1]]}`, false},
		{"bad snapshot", `{"snapshot_at":"yesterday"}`, false},
		{"snapshot as number", `{"snapshot_at":1700000000}`, false},
		{"trailing comma", `{"location":"S1",}`, false},
		{"trailing data", `{"location":"S1"} x`, false},
		{"two values", `{}{}`, false},
		{"unterminated", `{"location":"S1"`, false},
		{"bad escape in customer", `{"customer":"\x"}`, false},
		{"short unicode escape in customer", `{"customer":"\u12"}`, false},
		{"bad literal", `{"customer":nul}`, false},
		{"true as lines", `{"lines":true}`, false},
		{"deep customer", `{"customer":` + strings.Repeat("[", 100) + strings.Repeat("]", 100) + `}`, false},
		{"too deep customer", `{"customer":` + strings.Repeat("[", 10001) + strings.Repeat("]", 10001) + `}`, false},
		{"BOM", "\xef\xbb\xbf{}", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sameCustomerRef(t, []byte(tt.body))
			if fast := sameStockMove(t, []byte(tt.body)); fast != tt.fast {
				t.Errorf("fast path decided it: %v, want %v", fast, tt.fast)
			}
		})
	}
}

// Ensure that a large basket decodes on the fast path like encoding/json
// decodes it, and that a huge unknown field is skipped the same way.
func TestDecodeStockMoveHuge(t *testing.T) {
	var b strings.Builder
	b.WriteString(`{"location":"S1","lines":[`)
	for i := range MaxLines * 4 {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(`{"sku":"SKU-` + strings.Repeat("x", i%60) + `","qty":` + strings.Repeat("9", 1+i%18) + `,"unit_price":123}`)
	}
	b.WriteString(`],"note":"` + strings.Repeat("y", 1<<20) + `"}`)
	if !sameStockMove(t, []byte(b.String())) {
		t.Error("the fast path left a large plain basket to encoding/json")
	}
}

// Ensure that lines decoded on the fast path do not share price storage
// in a way that one line's price changes another's.
func TestDecodeStockMovePricesApart(t *testing.T) {
	m, err := DecodeStockMove([]byte(`{"lines":[{"sku":"A","qty":1,"unit_price":1},{"sku":"B","qty":1,"unit_price":2},{"sku":"C","qty":1,"unit_price":3},{"sku":"D","qty":1,"unit_price":4},{"sku":"E","qty":1,"unit_price":5}]}`))
	if err != nil {
		t.Fatal(err)
	}
	*m.Lines[0].UnitPrice = 100
	for i, l := range m.Lines[1:] {
		if *l.UnitPrice != int64(i+2) {
			t.Fatalf("line %d price %d", i+1, *l.UnitPrice)
		}
	}
}

// FuzzDecodeStockMove checks DecodeStockMove against encoding/json, the
// oracle: on every input both give the same value and the same error.
func FuzzDecodeStockMove(f *testing.F) {
	f.Add([]byte(`{"location":"S1","lines":[{"sku":"SKU-1","qty":2},{"sku":"SKU-2","qty":1,"unit_price":1299}]}`))
	f.Add([]byte(`{"location":"S1","method":"rfid_sweep","snapshot_at":"2026-06-01T10:00:00.123Z","lines":[{"sku":"A","qty":0}]}`))
	f.Add([]byte(`{"location":"S1","to":"S2","transfer_id":"T-1","lines":[{"sku":"A","qty":5}],"order_id":"O-1","channel":"web","from":"W"}`))
	f.Add([]byte(`{"customer":{"loyalty":"LC-1"},"lines":[{"sku":"A","qty":-1}],"Reason":"x"}`))
	f.Add([]byte(`{"lines":[null,{"SKU":"A","qty":1e2,"unit_price":null}],"customer":null}`))
	f.Add([]byte(`{"location":"S\u0031","location":"S2","lines":{}}`))
	f.Add([]byte(`{"customer":{"loyalty":"LC-1"},"CUSTOMER":"x"}`))
	f.Add([]byte(`{"reservation_id":"R-1","location":"W1","lines":[{"sku":"A","qty":2}],"channel":"web"}`))
	f.Add([]byte(`{"identifiers":{"loyalty":"LC-1","email":"a@b.test"},"rule":"card_scan","region":"GB"}`))
	f.Add([]byte(`{"identifiers":{"email":null,"email":"x","é":"y"},"Rule":"x"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		sameStockMove(t, data)
		sameCustomerRef(t, data)
		sameReservationMove(t, data)
		sameIdentify(t, data)
	})
}

// sameReservationMove fails t unless DecodeReservationMove and
// encoding/json agree on data; it reports whether the fast path decided
// data.
func sameReservationMove(t *testing.T, data []byte) (fast bool) {
	t.Helper()
	var want ReservationMove
	var wantErr error
	if err := json.Unmarshal(data, &want); err != nil {
		wantErr = jsonFieldErr("", err)
	}
	got, gotErr := DecodeReservationMove(data)
	if (wantErr == nil) != (gotErr == nil) || (wantErr != nil && wantErr.Error() != gotErr.Error()) {
		t.Fatalf("%q: error %v, encoding/json says %v", data, gotErr, wantErr)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("%q:\n got %#v\nwant %#v", data, got, want)
	}
	var m ReservationMove
	if fastReservationMove(data, &m) {
		if wantErr != nil || !reflect.DeepEqual(m, want) {
			t.Fatalf("%q: fast path %#v, encoding/json %#v %v", data, m, want, wantErr)
		}
		return true
	}
	return false
}

// Ensure that reservation bodies decode as encoding/json decodes them.
func TestDecodeReservationMoveMatchesEncodingJSON(t *testing.T) {
	tests := []struct {
		name string
		body string
		fast bool
	}{
		{"reserve", `{"reservation_id":"R-1","location":"W1","lines":[{"sku":"A","qty":2}],"order_id":"O-1","channel":"web"}`, true},
		{"release without lines", `{"reservation_id":"R-1","location":"W1"}`, true},
		{"nulls and unknown", `{"reservation_id":null,"lines":null,"expires":"soon","Channel":"web"}`, true},
		{"duplicate", `{"reservation_id":"R-1","reservation_id":"R-2"}`, false},
		{"id as number", `{"reservation_id":7}`, false},
		{"escaped", `{"reservation_id":"R\u002d1"}`, false},
		{"not an object", `"R-1"`, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if fast := sameReservationMove(t, []byte(tt.body)); fast != tt.fast {
				t.Errorf("fast path decided it: %v, want %v", fast, tt.fast)
			}
		})
	}
}

// sameIdentify fails t unless UnmarshalIdentify and encoding/json agree
// on data; it reports whether the fast path decided data.
func sameIdentify(t *testing.T, data []byte) (fast bool) {
	t.Helper()
	var want, got Identify
	wantErr := json.Unmarshal(data, &want)
	gotErr := UnmarshalIdentify(data, &got)
	if (wantErr == nil) != (gotErr == nil) || (wantErr != nil && wantErr.Error() != gotErr.Error()) {
		t.Fatalf("%q: error %v, encoding/json says %v", data, gotErr, wantErr)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("%q:\n got %#v\nwant %#v", data, got, want)
	}
	var b Identify
	if fastIdentify(data, &b) {
		if wantErr != nil || !reflect.DeepEqual(b, want) {
			t.Fatalf("%q: fast path %#v, encoding/json %#v %v", data, b, want, wantErr)
		}
		return true
	}
	return false
}

// Ensure that identify bodies decode as encoding/json decodes them: the
// plain ones on the fast path, the unusual ones by encoding/json.
func TestUnmarshalIdentifyMatchesEncodingJSON(t *testing.T) {
	tests := []struct {
		name string
		body string
		fast bool
	}{
		{"identify", `{"identifiers":{"loyalty":"LC-000000001","email":"shopper1@shop.test"}}`, true},
		{"rule and region", `{"identifiers":{"phone":"07700 900123"},"rule":"card_scan","region":"gb"}`, true},
		{"folded names and unknown", `{"IDENTIFIERS":{"Loyalty":"LC-1"},"Rule":"x","note":[1,{"a":null}]}`, true},
		{"empty identifiers", `{"identifiers":{}}`, true},
		{"null identifiers", `{"identifiers":null,"rule":null}`, true},
		{"empty body", `{}`, true},
		{"unicode value", `{"identifiers":{"email":"zoë@shop.test"}}`, true},
		{"null value", `{"identifiers":{"email":null}}`, false},
		{"repeated identifier", `{"identifiers":{"email":"a@b.test","email":"c@d.test"}}`, false},
		{"repeated field", `{"rule":"a","rule":"b"}`, false},
		{"escaped key", `{"identifiers":{"em\u0061il":"a@b.test"}}`, false},
		{"escaped value", `{"identifiers":{"email":"a\u0040b.test"}}`, false},
		{"non-ASCII key", `{"identifiers":{"é":"a"}}`, false},
		{"number value", `{"identifiers":{"loyalty":7}}`, false},
		{"identifiers as string", `{"identifiers":"LC-1"}`, false},
		{"trailing comma", `{"identifiers":{"email":"a@b.test",}}`, false},
		{"trailing data", `{"identifiers":{}} x`, false},
		{"not an object", `[]`, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if fast := sameIdentify(t, []byte(tt.body)); fast != tt.fast {
				t.Errorf("fast path decided it: %v, want %v", fast, tt.fast)
			}
		})
	}
}

// Ensure that an identify body's decoded strings stay as they were when
// the body's bytes are reused (they are copied out of it).
func TestUnmarshalIdentifyOwnsStrings(t *testing.T) {
	data := []byte(`{"identifiers":{"loyalty":"LC-1"},"rule":"card_scan"}`)
	var b Identify
	if err := UnmarshalIdentify(data, &b); err != nil {
		t.Fatal(err)
	}
	for i := range data {
		data[i] = ' '
	}
	if b.Identifiers["loyalty"] != "LC-1" || b.Rule != "card_scan" {
		t.Fatalf("decoded %#v", b)
	}
}
