package syncproto

import (
	"errors"
	"strings"
	"testing"
)

// Ensure that customer request bodies are decoded strictly: a good one
// passes, every malformed one fails with ErrInvalidRequest.
func TestDecode(t *testing.T) {
	long := strings.Repeat("x", MaxIdentifierValue+1)
	cases := []struct {
		name string
		body string
		into func() interface{ Validate() error }
		ok   bool
	}{
		{"card", `{"identifiers":{"loyalty":"LC-1","email":"a@b.example"},"device":"pos-1"}`, card, true},
		{"card without identifiers", `{"identifiers":{}}`, card, false},
		{"card with an empty value", `{"identifiers":{"loyalty":"  "}}`, card, false},
		{"card with a bad type", `{"identifiers":{"Loyalty!":"LC-1"}}`, card, false},
		{"card with a long value", `{"identifiers":{"loyalty":"` + long + `"}}`, card, false},
		{"card with an unknown field", `{"identifiers":{"loyalty":"LC-1"},"store":"S2"}`, card, false},
		{"card twice", `{"identifiers":{"loyalty":"LC-1"}}{}`, card, false},
		{"not JSON", `{"identifiers":`, card, false},
		{"match", `{"erasure":"E1","identifiers":[{"type":"","value":"LC-1"},{"type":"email","value":"a@b.example"}]}`, match, true},
		{"match without erasure", `{"identifiers":[]}`, match, false},
		{"receipt", `{"erasure":"E1","device":"pos-1","at_ms":1,"cards_purged":1,"events_scrubbed":2}`, receipt, true},
		{"receipt without device", `{"erasure":"E1","at_ms":1}`, receipt, false},
		{"receipt without time", `{"erasure":"E1","device":"pos-1"}`, receipt, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := Decode([]byte(c.body), c.into())
			if c.ok != (err == nil) || err != nil && !errors.Is(err, ErrInvalidRequest) {
				t.Fatalf("Decode = %v, want ok %v", err, c.ok)
			}
		})
	}
	many := MatchRequest{Erasure: "E1", Identifiers: make([]Identifier, MaxMatchIdentifiers+1)}
	if err := many.Validate(); !errors.Is(err, ErrInvalidRequest) {
		t.Fatalf("too many identifiers: %v", err)
	}
	if err := Decode(make([]byte, MaxRequestBytes+1), card()); !errors.Is(err, ErrInvalidRequest) {
		t.Fatalf("oversized body: %v", err)
	}
	if err := (ErasureNotice{Erasure: "E1", Customer: "C1"}).Validate(); err == nil {
		t.Fatal("a notice without a store passed")
	}
}

func card() interface{ Validate() error }    { return &CardRequest{} }
func match() interface{ Validate() error }   { return &MatchRequest{} }
func receipt() interface{ Validate() error } { return &Receipt{} }

// FuzzDecode: no body makes Decode panic, and whatever it accepts
// validates.
func FuzzDecode(f *testing.F) {
	f.Add([]byte(`{"identifiers":{"loyalty":"LC-1"}}`), uint8(0))
	f.Add([]byte(`{"erasure":"E1","identifiers":[{"type":"","value":"x"}]}`), uint8(1))
	f.Add([]byte(`{"erasure":"E1","device":"d","at_ms":5}`), uint8(2))
	f.Fuzz(func(t *testing.T, b []byte, which uint8) {
		v := []func() interface{ Validate() error }{card, match, receipt}[int(which)%3]()
		if err := Decode(b, v); err == nil {
			if err := v.Validate(); err != nil {
				t.Fatalf("accepted a body that does not validate: %v", err)
			}
		}
	})
}
