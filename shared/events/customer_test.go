package events

import (
	"errors"
	"testing"
)

// Ensure that customer bodies are validated, each refusal naming its field.
func TestCustomerBodies(t *testing.T) {
	tests := []struct {
		name      string
		body      string
		wantField string // "" means accepted
	}{
		{"identify minimal", `{"kind":"identify","data":{"identifiers":{"loyalty":"LC-1","email":"a@b.example","phone":"+821012345678","account":"W-1"}}}`, ""},
		{"identify with rule", `{"kind":"identify","data":{"identifiers":{"loyalty":"LC-1"},"rule":"card_scan","region":"KR"}}`, ""},
		{"identify none", `{"kind":"identify","data":{"identifiers":{}}}`, "data.identifiers"},
		{"identify unknown type", `{"kind":"identify","data":{"identifiers":{"passport":"X1"}}}`, "data.identifiers.passport"},
		{"identify empty value", `{"kind":"identify","data":{"identifiers":{"email":"  "}}}`, "data.identifiers.email"},
		{"identify bad region", `{"kind":"identify","data":{"identifiers":{"phone":"010"},"region":"Korea"}}`, "data.region"},
		{"identify not a map", `{"kind":"identify","data":{"identifiers":["LC-1"]}}`, "data.identifiers"},
		{"consent minimal", `{"kind":"consent","data":{"customer":{"email":"a@b.example"},"purpose":"marketing_email","granted":false}}`, ""},
		{"consent rich", `{"kind":"consent","data":{"customer":{"loyalty":"LC-1"},"purpose":"sms","status":"granted","channel":"store","source":"kiosk","text_version":"v3","expires_at":"2027-01-01T00:00:00Z"}}`, ""},
		{"consent no decision", `{"kind":"consent","data":{"customer":{"email":"a@b.example"},"purpose":"sms"}}`, "data.granted"},
		{"consent bad purpose", `{"kind":"consent","data":{"customer":{"email":"a@b.example"},"purpose":"spam","granted":true}}`, "data.purpose"},
		{"consent bad channel", `{"kind":"consent","data":{"customer":{"email":"a@b.example"},"purpose":"sms","granted":true,"channel":"fax"}}`, "data.channel"},
		{"consent contradiction", `{"kind":"consent","data":{"customer":{"email":"a@b.example"},"purpose":"sms","granted":true,"status":"revoked"}}`, "data.granted"},
		{"opt-out expiring", `{"kind":"consent","data":{"customer":{"email":"a@b.example"},"purpose":"sms","granted":false,"expires_at":"2027-01-01T00:00:00Z"}}`, "data.expires_at"},
		{"update", `{"kind":"update","data":{"customer":{"loyalty":"LC-1"},"fields":{"first_name":"Ann","postcode":null}}}`, ""},
		{"update no fields", `{"kind":"update","data":{"customer":{"loyalty":"LC-1"},"fields":{}}}`, "data.fields"},
		{"update no customer", `{"kind":"update","data":{"fields":{"first_name":"Ann"}}}`, "data.customer"},
		{"erase", `{"kind":"erase","data":{"customer":{"email":"a@b.example"}}}`, ""},
		{"sale with customer", `{"kind":"sale","data":{"lines":[{"sku":"A","qty":1}],"customer":{"loyalty":"LC-1"}}}`, ""},
		{"sale with legacy customer string", `{"kind":"sale","data":{"lines":[{"sku":"A","qty":1}],"customer":"C-9"}}`, ""},
		{"sale with bad customer", `{"kind":"sale","data":{"lines":[{"sku":"A","qty":1}],"customer":{"shoe":"42"}}}`, "data.customer.shoe"},
		{"sale with numeric customer", `{"kind":"sale","data":{"lines":[{"sku":"A","qty":1}],"customer":7}}`, "data.customer"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseDrafts([]byte(tt.body), "S1")
			if tt.wantField == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			var fe *FieldError
			if !errors.As(err, &fe) {
				t.Fatalf("want a field error on %s, got %v", tt.wantField, err)
			}
			if fe.Field != tt.wantField {
				t.Fatalf("field %q (%v), want %q", fe.Field, err, tt.wantField)
			}
		})
	}
}

// Ensure that a sale's customer decodes, and a legacy string names no one.
func TestDecodeCustomerRef(t *testing.T) {
	if c := DecodeCustomerRef([]byte(`{"lines":[],"customer":{"loyalty":"LC-1"}}`)); c["loyalty"] != "LC-1" {
		t.Fatalf("got %v", c)
	}
	for _, b := range []string{`{"customer":"C-9"}`, `{}`, `{"customer":null}`, `{"customer":{}}`} {
		if c := DecodeCustomerRef([]byte(b)); c != nil {
			t.Fatalf("%s: got %v", b, c)
		}
	}
}
