package events

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

// sameEnvelope fails t unless Decode and encoding/json agree on data: the
// same envelope and the same error or none. It reports whether the fast
// path decided data.
func sameEnvelope(t *testing.T, data []byte) (fast bool) {
	t.Helper()
	var want Envelope
	wantErr := json.Unmarshal(data, &want)
	var got Envelope
	gotErr := unmarshalEnvelope(data, &got)
	if (wantErr == nil) != (gotErr == nil) || (wantErr != nil && wantErr.Error() != gotErr.Error()) {
		t.Fatalf("%q: error %v, encoding/json says %v", data, gotErr, wantErr)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("%q:\n got %#v\nwant %#v", data, got, want)
	}
	// Decode as a whole: the size limit, the JSON, then Validate.
	ref := func() (Envelope, error) {
		var e Envelope
		if len(data) > MaxEventBytes {
			return e, fieldErr("", "event is too large")
		}
		if err := json.Unmarshal(data, &e); err != nil {
			return e, jsonFieldErr("", err)
		}
		return e, e.Validate()
	}
	if len(data) <= MaxEventBytes {
		de, derr := Decode(data)
		re, rerr := ref()
		sameKept(t, &de)
		de.body = nil // what Decode keeps is checked just above
		if (derr == nil) != (rerr == nil) || (derr != nil && derr.Error() != rerr.Error()) || !reflect.DeepEqual(de, re) {
			t.Fatalf("%q: Decode %#v %v, encoding/json %#v %v", data, de, derr, re, rerr)
		}
	}
	var e Envelope
	if fastEnvelope(data, &e) {
		if wantErr != nil || !reflect.DeepEqual(e, want) {
			t.Fatalf("%q: fast path %#v, encoding/json %#v %v", data, e, want, wantErr)
		}
		return true
	}
	return false
}

// sameKept fails t unless the body e keeps reads as decoding e.Data
// does, for every reader of a body, and KeepBody keeps the same.
func sameKept(t *testing.T, e *Envelope) {
	t.Helper()
	check := func(e *Envelope, how string) {
		t.Helper()
		sm, serr := e.StockMove()
		wsm, wserr := DecodeStockMove(e.Data)
		if (serr == nil) != (wserr == nil) || serr != nil && serr.Error() != wserr.Error() || !reflect.DeepEqual(sm, wsm) {
			t.Fatalf("%s %q: StockMove %#v %v, DecodeStockMove %#v %v", how, e.Data, sm, serr, wsm, wserr)
		}
		rm, rerr := e.ReservationMove()
		wrm, wrerr := DecodeReservationMove(e.Data)
		if (rerr == nil) != (wrerr == nil) || rerr != nil && rerr.Error() != wrerr.Error() || !reflect.DeepEqual(rm, wrm) {
			t.Fatalf("%s %q: ReservationMove %#v %v, DecodeReservationMove %#v %v", how, e.Data, rm, rerr, wrm, wrerr)
		}
		if got, want := e.CustomerRef(), DecodeCustomerRef(e.Data); !reflect.DeepEqual(got, want) {
			t.Fatalf("%s %q: CustomerRef %v, DecodeCustomerRef %v", how, e.Data, got, want)
		}
	}
	check(e, "kept by Decode")
	k := *e
	k.body = nil
	k.KeepBody()
	check(&k, "kept by KeepBody")
	k.KeepBody()
	check(&k, "kept twice")
}

const plainEnvelope = `{"v":1,"id":"01890a5d-ac96-774b-bcce-b302099a8057","origin":{"store":"S1","device":"pos-1","epoch":18446744073709551615,"seq":7},"hlc":{"wall":1767225600000,"logical":3},"kind":"sale","data":{"location":"S1","lines":[{"sku":"A","qty":1}]}}`

// Ensure that the fast envelope decoder reads the envelopes agents write
// and agrees with encoding/json on the edge cases, handing the unusual
// ones to it.
func TestDecodeEnvelopeMatchesEncodingJSON(t *testing.T) {
	tests := []struct {
		name string
		body string
		fast bool
	}{
		{"plain", plainEnvelope, true},
		{"as agents write it", string(mustMarshal(t, validEnvelope())), true},
		{"unknown fields", `{"v":1,"x":[1,{"y":null}],"origin":{"store":"S1","zone":"eu"},"hlc":{"wall":1,"skew":2}}`, true},
		{"nulls", `{"v":null,"id":null,"origin":null,"hlc":null,"kind":null,"data":null}`, true},
		{"null inside", `{"origin":{"store":null,"epoch":null},"hlc":{"wall":null,"logical":null}}`, true},
		{"keys in other case", `{"V":1,"ID":"x","Origin":{"Store":"S1","SEQ":2},"HLC":{"Wall":5},"Kind":"sale","DATA":{}}`, true},
		{"zero logical max", `{"hlc":{"wall":-5,"logical":4294967295}}`, true},

		{"logical overflow", `{"hlc":{"logical":4294967296}}`, false},
		{"epoch overflow", `{"origin":{"epoch":18446744073709551616}}`, false},
		{"negative seq", `{"origin":{"seq":-1}}`, false},
		{"minus zero seq", `{"origin":{"seq":-0}}`, false},
		{"fraction", `{"v":1.5}`, false},
		{"v huge", `{"v":99999999999999999999}`, false},
		{"duplicate", `{"id":"a","id":"b"}`, false},
		{"duplicate origin", `{"origin":{"store":"S1"},"origin":{"device":"d"}}`, false},
		{"escaped id", `{"id":"\u0030"}`, false},
		{"invalid UTF-8 kind", "{\"kind\":\"s\xffale\"}", false},
		{"wrong type", `{"origin":"S1"}`, false},
		{"array", `[]`, false},
		{"trailing", plainEnvelope + `,`, false},
		{"truncated", plainEnvelope[:len(plainEnvelope)-1], false},
		{"huge", `{"v":1,"data":{"note":"` + strings.Repeat("x", MaxEventBytes) + `"}}`, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if fast := sameEnvelope(t, []byte(tt.body)); fast != tt.fast {
				t.Errorf("fast path decided it: %v, want %v", fast, tt.fast)
			}
		})
	}
}

func mustMarshal(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// FuzzDecodeEnvelope checks the envelope decoder against encoding/json.
func FuzzDecodeEnvelope(f *testing.F) {
	f.Add([]byte(plainEnvelope))
	f.Add([]byte(`{"v":1,"origin":{"epoch":1e3},"hlc":{"logical":-1},"kind":"count","data":null}`))
	f.Add([]byte(`{"V":2,"origin":null,"hlc":{"wall":1,"WALL":2}}`))
	for _, k := range keptEnvelopes {
		f.Add([]byte(k))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		sameEnvelope(t, data)
	})
}

// BenchmarkDecode decodes and validates a sale envelope as the hub's
// ingest does for every event, and its body as the hub's appliers do.
func BenchmarkDecode(b *testing.B) {
	e := validEnvelope()
	e.Data = json.RawMessage(`{"location":"S1","order_id":"O-1234","lines":[{"sku":"SKU-00017","qty":2,"unit_price":1299},{"sku":"SKU-01234","qty":1,"unit_price":499}]}`)
	raw := mustMarshal(&testing.T{}, e)
	b.Run("envelope", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := Decode(raw); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("stock-move", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := DecodeStockMove(e.Data); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkSplitBatch splits a 128-event batch message as the hub does for
// every one it receives; cut is CutBatch, which the hub tries first;
// decoder is the json.RawMessage decode it replaced.
func BenchmarkSplitBatch(b *testing.B) {
	e := validEnvelope()
	e.Data = json.RawMessage(`{"location":"S1","order_id":"O-1234","lines":[{"sku":"SKU-00017","qty":2,"unit_price":1299},{"sku":"SKU-01234","qty":1,"unit_price":499}]}`)
	raw := mustMarshal(&testing.T{}, e)
	envs := make([][]byte, 128)
	for i := range envs {
		envs[i] = raw
	}
	batch := AppendBatch(nil, envs...)
	b.Run("split", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(batch)))
		for b.Loop() {
			if _, err := SplitBatch(batch); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("cut", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(batch)))
		for b.Loop() {
			if _, ok := CutBatch(batch); !ok {
				b.Fatal("not cut")
			}
		}
	})
	b.Run("decoder", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(batch)))
		for b.Loop() {
			var elems []json.RawMessage
			if err := json.Unmarshal(batch, &elems); err != nil {
				b.Fatal(err)
			}
		}
	})
}
