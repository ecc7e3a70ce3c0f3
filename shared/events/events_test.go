package events

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/omnisync/omnisync/shared/hlc"
	"github.com/omnisync/omnisync/shared/ids"
)

func TestParseDrafts(t *testing.T) {
	tests := []struct {
		name      string
		body      string
		wantN     int
		wantField string // "" means success
	}{
		{"minimal sale", `{"kind":"sale","data":{"lines":[{"sku":"SKU-1","qty":2}]}}`, 1, ""},
		{"array", `[{"kind":"receipt","data":{"lines":[{"sku":"A","qty":5}]}},{"kind":"count","data":{"lines":[{"sku":"A","qty":0}]}}]`, 2, ""},
		{"adjust negative", `{"kind":"adjust","data":{"lines":[{"sku":"A","qty":-3}]}}`, 1, ""},
		{"richer fields kept", `{"kind":"sale","data":{"order_id":"o1","lines":[{"sku":"A","qty":1,"unit_price":1299}],"tender":"card"}}`, 1, ""},
		{"empty body", ``, 0, ""},
		{"malformed json", `{"kind":"sale",`, 0, ""},
		{"unknown kind", `{"kind":"teleport","data":{}}`, 0, "kind"},
		{"missing kind", `{"data":{"lines":[{"sku":"A","qty":1}]}}`, 0, "kind"},
		{"missing data", `{"kind":"sale"}`, 0, "data"},
		{"missing lines", `{"kind":"sale","data":{}}`, 0, "data.lines"},
		{"missing sku", `{"kind":"sale","data":{"lines":[{"qty":1}]}}`, 0, "data.lines[0].sku"},
		{"negative sale", `{"kind":"sale","data":{"lines":[{"sku":"A","qty":-1}]}}`, 0, "data.lines[0].qty"},
		{"absurd qty", `{"kind":"receipt","data":{"lines":[{"sku":"A","qty":100000000}]}}`, 0, "data.lines[0].qty"},
		{"fractional qty", `{"kind":"sale","data":{"lines":[{"sku":"A","qty":1.5}]}}`, 0, "data.lines.qty"},
		{"string qty", `{"kind":"sale","data":{"lines":[{"sku":"A","qty":"2"}]}}`, 0, "data.lines.qty"},
		{"zero adjust", `{"kind":"adjust","data":{"lines":[{"sku":"A","qty":0}]}}`, 0, "data.lines[0].qty"},
		{"negative count", `{"kind":"count","data":{"lines":[{"sku":"A","qty":-1}]}}`, 0, "data.lines[0].qty"},
		{"duplicate sku in count", `{"kind":"count","data":{"lines":[{"sku":"A","qty":1},{"sku":"A","qty":2}]}}`, 0, "data.lines[1].sku"},
		{"sweep count", `{"kind":"count","data":{"method":"rfid_sweep","snapshot_at":"2026-06-01T10:00:00Z","lines":[{"sku":"A","qty":3}]}}`, 1, ""},
		{"unknown count method", `{"kind":"count","data":{"method":"guess","lines":[{"sku":"A","qty":3}]}}`, 0, "data.method"},
		{"snapshot not a time", `{"kind":"count","data":{"snapshot_at":"yesterday","lines":[{"sku":"A","qty":3}]}}`, 0, "data"},
		{"snapshot out of range", `{"kind":"count","data":{"snapshot_at":"1970-01-01T00:00:01Z","lines":[{"sku":"A","qty":3}]}}`, 0, "data.snapshot_at"},
		{"method on a sale", `{"kind":"sale","data":{"method":"manual","lines":[{"sku":"A","qty":3}]}}`, 0, "data.method"},
		{"snapshot on a receipt", `{"kind":"receipt","data":{"snapshot_at":"2026-06-01T10:00:00Z","lines":[{"sku":"A","qty":3}]}}`, 0, "data.snapshot_at"},
		{"bad location", `{"kind":"sale","data":{"location":"a.b","lines":[{"sku":"A","qty":1}]}}`, 0, "data.location"},
		{"transfer without destination", `{"kind":"transfer_out","data":{"lines":[{"sku":"A","qty":1}]}}`, 0, "data.to"},
		{"reserve without id", `{"kind":"reserve","data":{"lines":[{"sku":"A","qty":1}]}}`, 0, "data.reservation_id"},
		{"release without lines", `{"kind":"release","data":{"reservation_id":"r1"}}`, 1, ""},
		{"bad item in array", `[{"kind":"sale","data":{"lines":[{"sku":"A","qty":1}]}},{"kind":"sale","data":{"lines":[{"sku":"A b","qty":1}]}}]`, 0, "[1].data.lines[0].sku"},
		{"sku with space", `{"kind":"sale","data":{"lines":[{"sku":"A B","qty":1}]}}`, 0, "data.lines[0].sku"},
		{"not an object", `[1]`, 0, "[0]"},
		{"fitting room enter", `{"kind":"enter","data":{"zone":"room-1","epc":"3074257BF7194E4000001A85","gtin":"80614141123458","serial":"6789"}}`, 1, ""},
		{"leave with dwell", `{"kind":"leave","data":{"zone":"room-1","epc":"3074257BF7194E4000001A85","gtin":"80614141123458","dwell_ms":90000}}`, 1, ""},
		{"enter with bad epc", `{"kind":"enter","data":{"zone":"room-1","epc":"xyz","gtin":"80614141123458"}}`, 0, "data.epc"},
		{"enter with short gtin", `{"kind":"enter","data":{"zone":"room-1","epc":"30","gtin":"123"}}`, 0, "data.gtin"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			drafts, err := ParseDrafts([]byte(tt.body), "S1")
			if tt.wantN > 0 {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				if len(drafts) != tt.wantN {
					t.Fatalf("got %d drafts, want %d", len(drafts), tt.wantN)
				}
				return
			}
			if err == nil {
				t.Fatalf("expected an error")
			}
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error %v is not ErrInvalid", err)
			}
			var fe *FieldError
			if !errors.As(err, &fe) {
				t.Fatalf("error %v is not a FieldError", err)
			}
			if tt.wantField != "" && fe.Field != tt.wantField {
				t.Fatalf("field = %q, want %q (%v)", fe.Field, tt.wantField, err)
			}
		})
	}
}

// Ensure that a missing location is filled from the store and unknown fields survive.
func TestParseDrafts_FillsLocation(t *testing.T) {
	d, err := ParseDrafts([]byte(`{"kind":"sale","data":{"tender":"cash","lines":[{"sku":"A","qty":1}]}}`), "S9")
	if err != nil {
		t.Fatal(err)
	}
	var body map[string]any
	if err := json.Unmarshal(d[0].Data, &body); err != nil {
		t.Fatal(err)
	}
	if body["location"] != "S9" || body["tender"] != "cash" {
		t.Fatalf("body = %v", body)
	}
}

func TestParseDrafts_TooMany(t *testing.T) {
	one := `{"kind":"sale","data":{"lines":[{"sku":"A","qty":1}]}}`
	body := "[" + strings.Repeat(one+",", MaxDraftsPerRequest) + one + "]"
	if _, err := ParseDrafts([]byte(body), "S1"); !errors.Is(err, ErrInvalid) {
		t.Fatalf("err = %v, want ErrInvalid", err)
	}
}

func validEnvelope() Envelope {
	return Envelope{
		V:      CurrentVersion,
		ID:     ids.NewEventID(time.Now()),
		Origin: Origin{Store: "S1", Device: "pos-1", Epoch: 42, Seq: 1},
		HLC:    hlc.Timestamp{Wall: time.Now().UnixMilli()},
		Kind:   KindSale,
		Data:   json.RawMessage(`{"location":"S1","lines":[{"sku":"A","qty":1}]}`),
	}
}

func TestDecode(t *testing.T) {
	good := validEnvelope()
	b, _ := json.Marshal(good)
	if _, err := Decode(b); err != nil {
		t.Fatalf("valid envelope rejected: %v", err)
	}
	tests := []struct {
		name   string
		mutate func(*Envelope)
		want   error
		field  string
	}{
		{"future version", func(e *Envelope) { e.V = 99 }, ErrUnsupportedVersion, ""},
		{"no id", func(e *Envelope) { e.ID = "x" }, ErrInvalid, "id"},
		{"bad store", func(e *Envelope) { e.Origin.Store = "a b" }, ErrInvalid, "origin.store"},
		{"zero seq", func(e *Envelope) { e.Origin.Seq = 0 }, ErrInvalid, "origin.seq"},
		{"zero epoch", func(e *Envelope) { e.Origin.Epoch = 0 }, ErrInvalid, "origin.epoch"},
		{"no clock", func(e *Envelope) { e.HLC = hlc.Timestamp{} }, ErrInvalid, "hlc.wall"},
		{"unknown kind", func(e *Envelope) { e.Kind = "x" }, ErrInvalid, "kind"},
		{"bad body", func(e *Envelope) { e.Data = json.RawMessage(`{"location":"S1","lines":[]}`) }, ErrInvalid, "data.lines"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := validEnvelope()
			tt.mutate(&e)
			b, _ := json.Marshal(e)
			_, err := Decode(b)
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			var fe *FieldError
			if tt.field != "" && (!errors.As(err, &fe) || fe.Field != tt.field) {
				t.Fatalf("err = %v, want field %q", err, tt.field)
			}
		})
	}
	if _, err := Decode([]byte("not json")); !errors.Is(err, ErrInvalid) {
		t.Fatalf("garbage: err = %v", err)
	}
}

func TestStampCompare(t *testing.T) {
	a := Stamp{HLC: hlc.Timestamp{Wall: 1}, ID: "b"}
	b := Stamp{HLC: hlc.Timestamp{Wall: 1}, ID: "c"}
	c := Stamp{HLC: hlc.Timestamp{Wall: 2}, ID: "a"}
	if a.Compare(b) >= 0 || b.Compare(c) >= 0 || c.Compare(a) <= 0 || a.Compare(a) != 0 {
		t.Fatal("stamp order wrong")
	}
}

func FuzzParseDrafts(f *testing.F) {
	f.Add([]byte(`{"kind":"sale","data":{"lines":[{"sku":"SKU-1","qty":2}]}}`))
	f.Add([]byte(`[{"kind":"count","data":{"lines":[{"sku":"A","qty":0}]}}]`))
	f.Add([]byte(`{"kind":"count","data":{"method":"rfid_sweep","snapshot_at":"2026-06-01T10:00:00.123Z","lines":[{"sku":"A","qty":4}]}}`))
	f.Add([]byte(`{"kind":"reserve","data":{"reservation_id":"r","lines":[{"sku":"A","qty":1}]}}`))
	f.Add([]byte(`{"kind":"identify","data":{"identifiers":{"loyalty":"LC-1","email":"a@b.example","phone":"+821012345678","account":"W-1"}}}`))
	f.Add([]byte(`{"kind":"consent","data":{"customer":{"email":"a@b.example"},"purpose":"marketing_email","granted":false,"expires_at":"2027-01-01T00:00:00Z"}}`))
	f.Add([]byte(`{"kind":"update","data":{"customer":{"loyalty":"LC-1"},"fields":{"first_name":"Ann","postcode":null}}}`))
	f.Add([]byte(`{"kind":"sale","data":{"customer":{"loyalty":"LC-1"},"lines":[{"sku":"A","qty":1}]}}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		drafts, err := ParseDrafts(body, "S1")
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error not ErrInvalid: %v", err)
			}
			return
		}
		// Every accepted draft must make a valid envelope.
		for _, d := range drafts {
			e := validEnvelope()
			e.Kind, e.Data = d.Kind, d.Data
			if err := e.Validate(); err != nil {
				t.Fatalf("accepted draft makes invalid envelope: %v", err)
			}
		}
	})
}

// FuzzSplitBatch feeds arbitrary bodies to the hub's batch splitter: it
// never panics, and what it accepts is 1..MaxBatchEvents valid JSON values
// that re-frame into an equivalent batch.
func FuzzSplitBatch(f *testing.F) {
	f.Add([]byte(`[{"v":1},{"v":2}]`))
	f.Add([]byte(`[]`))
	f.Add([]byte(`[1,`))
	f.Add([]byte(` ["x", null, {}]`))
	f.Add([]byte(`{"v":1}`))
	f.Add([]byte(` [ {"a":"]},[\"x"} , "s\\" ,[1,[2,{}]], -1.5e3 ,true,null ] `))
	f.Add([]byte(`[1 2]`))
	f.Add([]byte(`[1]x`))
	f.Add([]byte(`[01]`))
	f.Add([]byte(`["\u00e9\x"]`))
	f.Add([]byte("[\"a\x01\"]"))
	f.Add([]byte(`[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		elems, err := SplitBatch(data)
		// The one-pass split decides only what the checked split
		// accepts, and cuts it the same.
		if fast, ok := fastSplit(data); ok {
			slow, serr := splitChecked(data)
			if serr != nil || len(slow) != len(fast) {
				t.Fatalf("%q: fast split %d elements, checked %d %v", data, len(fast), len(slow), serr)
			}
			for i := range fast {
				if !bytes.Equal(fast[i], slow[i]) || cap(fast[i]) != len(fast[i]) {
					t.Fatalf("%q: element %d %q (cap %d), checked %q", data, i, fast[i], cap(fast[i]), slow[i])
				}
			}
		}
		// The unchecked cut agrees with it whenever its elements are
		// valid JSON.
		if cut, ok := CutBatch(data); ok && allValid(cut) {
			if err != nil || len(cut) != len(elems) {
				t.Fatalf("%q: cut into %d valid elements, split %d %v", data, len(cut), len(elems), err)
			}
			for i := range cut {
				if !bytes.Equal(cut[i], elems[i]) || cap(cut[i]) != len(cut[i]) {
					t.Fatalf("%q: element %d cut %q (cap %d), split %q", data, i, cut[i], cap(cut[i]), elems[i])
				}
			}
		}
		if err != nil {
			if !errors.Is(err, ErrBatch) {
				t.Fatalf("error %v is not ErrBatch", err)
			}
			return
		}
		if !IsBatch(data) || len(elems) == 0 || len(elems) > MaxBatchEvents {
			t.Fatalf("accepted %q as %d elements", data, len(elems))
		}
		raw := make([][]byte, len(elems))
		for i, e := range elems {
			if !json.Valid(e) {
				t.Fatalf("element %d not valid JSON: %q", i, e)
			}
			raw[i] = e
		}
		again, err := SplitBatch(AppendBatch(nil, raw...))
		if err != nil || len(again) != len(elems) {
			t.Fatalf("re-framed batch: %d elements, %v", len(again), err)
		}
	})
}

func allValid(elems []json.RawMessage) bool {
	for _, e := range elems {
		if !json.Valid(e) {
			return false
		}
	}
	return true
}

// Ensure that CutBatch cuts batches of envelopes as SplitBatch does, and
// gives up on what is not one.
func TestCutBatch(t *testing.T) {
	for _, body := range []string{
		`[{"v":1},{"v":2}]`, ` [ {"a":"]},[\"x\\"} , {"s":"\\\"}{"} ,{"n":[1,[2,{}]]}] `,
		"[\n{\"v\":1}\t]\r\n", `[{}]`, `[{"a":"\u00e9"}]`,
	} {
		cut, ok := CutBatch([]byte(body))
		want, err := SplitBatch([]byte(body))
		if !ok || err != nil || len(cut) != len(want) {
			t.Errorf("%q: cut %d %v, split %d %v", body, len(cut), ok, len(want), err)
			continue
		}
		for i := range cut {
			if !bytes.Equal(cut[i], want[i]) {
				t.Errorf("%q: element %d cut %q, split %q", body, i, cut[i], want[i])
			}
		}
	}
	for _, body := range []string{
		`[]`, ` [ ] `, `[1]`, `["x"]`, `[[]]`, `[{},1]`, `[{"v":1}`, `[{"v":1},]`, `[{"v":1} {"v":2}]`,
		`[{"v":1}]x`, `[{"v":1}]]`, `{"v":1}`, ``, `[{"a":"x}]`, `[{"a":"x\"}]`,
		string(AppendBatch(nil, bytes.Split(bytes.Repeat([]byte("{},"), MaxBatchEvents+1)[:3*(MaxBatchEvents+1)-1], []byte(","))...)),
	} {
		if cut, ok := CutBatch([]byte(body)); ok {
			t.Errorf("%.40q: cut into %d elements, want it refused", body, len(cut))
		}
	}
}

// Ensure that SplitBatch accepts and splits exactly as decoding the body
// into []json.RawMessage does (what it did before cutting the body
// itself), whitespace, nesting and escapes included.
func TestSplitBatch_MatchesDecoder(t *testing.T) {
	over := AppendBatch(nil, bytes.Split(bytes.Repeat([]byte("1,"), MaxBatchEvents+1)[:2*(MaxBatchEvents+1)-1], []byte(","))...)
	for _, body := range []string{
		`[{"v":1},{"v":2}]`, ` [ {"a":"]},[\"x"} , "s\\" ,[1,[2,{}]], -1.5e3 ,true,null ] `,
		"[\n{\"v\":1}\t]\r\n", `[1]`, `["x"]`, `[[]]`, `[{}]`,
		`[]`, ` [ ] `, `[1,`, `[1 2]`, `[1,]`, `{"v":1}`, `null`, `"[1]"`, ``, `[1]x`, `[1]]`,
		string(over), string(over[:len(over)-3]) + "]",
	} {
		var want []json.RawMessage
		werr := json.Unmarshal([]byte(body), &want)
		if werr == nil && (len(want) == 0 || len(want) > MaxBatchEvents) {
			werr = ErrBatch
		}
		got, err := SplitBatch([]byte(body))
		if (err != nil) != (werr != nil) {
			t.Errorf("%.40q: error %v, decoder %v", body, err, werr)
			continue
		}
		if err != nil {
			if !errors.Is(err, ErrBatch) {
				t.Errorf("%.40q: error %v is not ErrBatch", body, err)
			}
			continue
		}
		if len(got) != len(want) {
			t.Errorf("%.40q: %d elements, decoder %d", body, len(got), len(want))
			continue
		}
		for i := range got {
			if !bytes.Equal(got[i], want[i]) {
				t.Errorf("%.40q: element %d %q, decoder %q", body, i, got[i], want[i])
			}
		}
	}
}
