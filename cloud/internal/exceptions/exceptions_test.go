package exceptions

import (
	"encoding/json"
	"errors"
	"slices"
	"testing"

	"github.com/omnisync/omnisync/shared/events"
)

func env(k events.Kind, store string, body string) events.Envelope {
	return events.Envelope{Kind: k, Origin: events.Origin{Store: store, Device: "pos", Epoch: 1, Seq: 1}, Data: json.RawMessage(body)}
}

func TestRefsOf(t *testing.T) {
	tests := []struct {
		name string
		env  events.Envelope
		want Refs
		ok   bool
	}{
		{"sale", env(events.KindSale, "s1", `{"location":"s1","lines":[{"sku":"B","qty":1},{"sku":"A","qty":1},{"sku":"B","qty":2}]}`),
			Refs{SKUs: []string{"A", "B"}, Locations: []string{"s1"}}, true},
		{"location defaults to the store", env(events.KindReceipt, "s1", `{"lines":[{"sku":"A","qty":1}]}`),
			Refs{SKUs: []string{"A"}, Locations: []string{"s1"}}, true},
		{"online reserve", env(events.KindReserve, "online", `{"reservation_id":"r","location":"s9","lines":[{"sku":"A","qty":1}]}`),
			Refs{SKUs: []string{"A"}, Locations: []string{"s9"}}, true},
		{"not inventory", env(events.KindDeviceStatus, "s1", `{}`), Refs{}, false},
		{"undecodable", env(events.KindSale, "s1", `[`), Refs{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := RefsOf(&tt.env)
			if ok != tt.ok || !slices.Equal(got.SKUs, tt.want.SKUs) || !slices.Equal(got.Locations, tt.want.Locations) {
				t.Fatalf("RefsOf = %+v %v, want %+v %v", got, ok, tt.want, tt.ok)
			}
		})
	}
}

func TestClassify(t *testing.T) {
	known := Known{Catalog: true, SKUs: map[string]bool{"A": true}, Locations: map[string]bool{"s1": true}}
	tests := []struct {
		name string
		k    Known
		refs Refs
		want []Finding
	}{
		{"all known", known, Refs{SKUs: []string{"A"}, Locations: []string{"s1"}}, nil},
		{"no catalog: nothing is unknown", Known{}, Refs{SKUs: []string{"Z"}, Locations: []string{"s9"}}, nil},
		{"unknown sku", known, Refs{SKUs: []string{"A", "Z"}, Locations: []string{"s1"}}, []Finding{{UnknownSKU, "Z"}}},
		{"unknown gtin", known, Refs{SKUs: []string{"05999990000017"}, Locations: []string{"s1"}}, []Finding{{UnknownGTIN, "05999990000017"}}},
		{"location first", known, Refs{SKUs: []string{"Z"}, Locations: []string{"s9"}}, []Finding{{UnknownLocation, "s9"}, {UnknownSKU, "Z"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Classify(tt.refs, tt.k); !slices.Equal(got, tt.want) {
				t.Fatalf("Classify = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestLooksLikeGTIN(t *testing.T) {
	for s, want := range map[string]bool{"12345678": true, "123456789012": true, "1234567890123": true, "12345678901234": true,
		"1234567": false, "123456789": false, "1234567890abc": false, "TEE-M": false, "": false} {
		if got := LooksLikeGTIN(s); got != want {
			t.Errorf("LooksLikeGTIN(%q) = %v", s, got)
		}
	}
}

func TestResolve(t *testing.T) {
	k := Known{Catalog: true, SKUs: map[string]bool{"A": true}, GTINs: map[string]string{"05999990000017": "A"}}
	var m Mappings
	Resolve(Refs{SKUs: []string{"05999990000017", "A", "Z"}}, k, &m)
	if m.Len() != 1 || m.skuOf("05999990000017") != "A" {
		t.Fatalf("Resolve made %+v", m)
	}
}

func TestRewrite(t *testing.T) {
	m := NewMappings([]Mapping{{MapSKU, "OLD", "A"}, {MapLocation, "s99", "s9"}})
	tests := []struct {
		name      string
		env       events.Envelope
		wantData  string
		wantStore string
		changed   bool
	}{
		{"sku rewritten, other fields kept", env(events.KindSale, "s1", `{"location":"s1","lines":[{"sku":"OLD","qty":2,"unit_price":5}],"order_id":"o1","extra":{"x":1}}`),
			`{"extra":{"x":1},"lines":[{"qty":2,"sku":"A","unit_price":5}],"location":"s1","order_id":"o1"}`, "s1", true},
		{"store's own location moves the origin too", env(events.KindCount, "s99", `{"location":"s99","lines":[{"sku":"A","qty":2}]}`),
			`{"lines":[{"sku":"A","qty":2}],"location":"s9"}`, "s9", true},
		{"defaulted location", env(events.KindReceipt, "s99", `{"lines":[{"sku":"A","qty":2}]}`),
			`{"lines":[{"sku":"A","qty":2}],"location":"s9"}`, "s9", true},
		{"online reservation: origin kept", env(events.KindReserve, "online", `{"reservation_id":"r","location":"s99","lines":[{"sku":"A","qty":1}]}`),
			`{"lines":[{"sku":"A","qty":1}],"location":"s9","reservation_id":"r"}`, "online", true},
		{"nothing mapped", env(events.KindSale, "s1", `{"location":"s1","lines":[{"sku":"A","qty":2}]}`),
			`{"location":"s1","lines":[{"sku":"A","qty":2}]}`, "s1", false},
		{"not inventory", env(events.KindDeviceStatus, "s99", `{"location":"s99"}`), `{"location":"s99"}`, "s99", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, changed, err := Rewrite(tt.env, m)
			if err != nil {
				t.Fatal(err)
			}
			if changed != tt.changed || string(got.Data) != tt.wantData || got.Origin.Store != tt.wantStore {
				t.Fatalf("Rewrite = %s (store %s, changed %v), want %s (store %s, changed %v)", got.Data, got.Origin.Store, changed, tt.wantData, tt.wantStore, tt.changed)
			}
		})
	}
}

func TestMapping_Validate(t *testing.T) {
	tests := []struct {
		m  Mapping
		ok bool
	}{
		{Mapping{MapSKU, "OLD", "A"}, true},
		{Mapping{MapLocation, "s99", "s9"}, true},
		{Mapping{"colour", "a", "b"}, false},
		{Mapping{MapSKU, "", "A"}, false},
		{Mapping{MapSKU, "A", "A"}, false},
		{Mapping{MapSKU, "A\n", "B"}, false},
		{Mapping{MapSKU, string(make([]byte, 200)), "B"}, false},
	}
	for _, tt := range tests {
		err := tt.m.Validate()
		if (err == nil) != tt.ok || (err != nil && !errors.Is(err, ErrInvalid)) {
			t.Errorf("Validate(%+v) = %v", tt.m, err)
		}
	}
}

// oracleRefs is refsOfBody as encoding/json alone reads it.
func oracleRefs(data []byte) (string, []string, bool) {
	var b struct {
		Location string `json:"location"`
		Lines    []struct {
			SKU string `json:"sku"`
		} `json:"lines"`
	}
	if err := json.Unmarshal(data, &b); err != nil {
		return "", nil, false
	}
	var skus []string
	for _, l := range b.Lines {
		if l.SKU != "" {
			skus = append(skus, l.SKU)
		}
	}
	return b.Location, skus, true
}

// FuzzRefsOfBody checks that reading a body's location and SKUs through
// the stock move decoder gives what decoding only those fields gives, on
// bodies that decode whole and on those that do not.
func FuzzRefsOfBody(f *testing.F) {
	for _, s := range []string{
		`{"location":"s1","lines":[{"sku":"B","qty":1},{"sku":"A","qty":1}]}`,
		`{"reservation_id":"r","location":"s9","lines":[{"sku":"A","qty":1}]}`,
		`{"location":"s1","lines":[{"sku":"A","qty":"1"}]}`,
		`{"lines":[{"sku":"","qty":1}],"snapshot_at":"never"}`,
		`{"lines":[{"sku":"A","qty":1}],"lines":[{"qty":2}],"LOCATION":"x"}`,
		`{"lines":[]}`, `{}`, `null`, `[`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		wloc, wskus, wok := oracleRefs(data)
		// A stock move's body and a reservation's, decoded on the spot
		// and kept on the envelope (as events.Decode keeps it).
		for _, k := range []events.Kind{events.KindSale, events.KindReserve} {
			for _, keep := range []bool{false, true} {
				env := events.Envelope{Kind: k, Data: data}
				if keep {
					env.KeepBody()
				}
				loc, skus, ok := refsOfBody(&env)
				if loc != wloc || ok != wok || (skus == nil) != (wskus == nil) || !slices.Equal(skus, wskus) {
					t.Fatalf("%s %q (kept: %v): %q %q %v, encoding/json reads %q %q %v", k, data, keep, loc, skus, ok, wloc, wskus, wok)
				}
			}
		}
	})
}
