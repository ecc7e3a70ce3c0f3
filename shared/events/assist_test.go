package events

import (
	"errors"
	"testing"
)

// Ensure that an assist names the variant wanted, except a call for help,
// which may name none ("please come to room 2"), and that a bad field is
// named.
func TestValidateAssist(t *testing.T) {
	tests := []struct {
		body, field string // field "": valid
	}{
		{`{"zone":"room-1","sku":"TEE-L","from":"TEE-M","reason":"size"}`, ""},
		{`{"zone":"room-1","sku":"TEE-L"}`, ""},
		{`{"zone":"room-1","sku":"TEE-M","from":"TEE-M","reason":"help"}`, ""},
		{`{"zone":"room-1","reason":"help"}`, ""},
		{`{"zone":"room-1","sku":"","reason":"help"}`, ""},
		{`{"zone":"room-1","reason":"size"}`, "sku"},
		{`{"zone":"room-1"}`, "sku"},
		{`{"zone":"room-1","sku":"has space","reason":"help"}`, "sku"},
		{`{"zone":"","reason":"help"}`, "zone"},
		{`{"zone":"room-1","sku":"TEE-L","reason":"hurry"}`, "reason"},
	}
	for _, tt := range tests {
		_, err := ValidateBody(KindAssist, []byte(tt.body))
		var fe *FieldError
		switch {
		case tt.field == "" && err != nil:
			t.Errorf("%s: %v", tt.body, err)
		case tt.field != "" && (!errors.As(err, &fe) || fe.Field != tt.field):
			t.Errorf("%s: got %v, want a problem with %s", tt.body, err, tt.field)
		}
	}
}
