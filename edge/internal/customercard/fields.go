package customercard

import (
	"bytes"
	"encoding/json"
	"strings"

	"github.com/omnisync/omnisync/shared/events"
	"github.com/omnisync/omnisync/shared/syncproto"
)

// What of an event body names a customer, as the agent sees it (the hub
// owns the kinds' schemas; the agent must recognise a person's events
// without knowing every kind):
//
//   - a top-level "customer" (sales, returns, orders, consent): an object
//     of type -> value ({"loyalty": "LC-1"}, as docs/DESIGN.md spells
//     it), or a string, "type:value" when it starts with a known
//     identifier type, otherwise a bare value whose type the hub works out
//     (Identifier.Type empty);
//   - a top-level "identifiers" object of type -> value (identify, and
//     consent and update when they name their subject that way).
//
// Scrubbing (ScrubBody): the kinds about the person alone (identify,
// update, consent) keep nothing but a marker naming the erasure, the
// body {"erased": "<erasure id>"}, so the event keeps its seq and the hub
// drops it (it names nobody); every other kind loses its "customer" and
// "identifiers" fields and keeps the rest: a sale's lines, prices and
// location stay, anonymous.

// personKinds are the kinds whose only subject is the person.
var personKinds = map[events.Kind]bool{"identify": true, "update": true, "consent": true}

// identifierTypes are the types a "customer" string may start with.
var identifierTypes = map[string]bool{"loyalty": true, "email": true, "phone": true, "account": true, "app": true}

// Identifiers returns the identifiers body names (personal data: never log
// them). A body that is not a JSON object names none.
func Identifiers(data json.RawMessage) []syncproto.Identifier {
	if !bytes.Contains(data, []byte(`"customer"`)) && !bytes.Contains(data, []byte(`"identifiers"`)) {
		return nil
	}
	var body struct {
		Customer    json.RawMessage `json:"customer"`
		Identifiers json.RawMessage `json:"identifiers"`
	}
	if json.Unmarshal(data, &body) != nil {
		return nil
	}
	var out []syncproto.Identifier
	out = appendObject(out, body.Customer)
	var c string
	if json.Unmarshal(body.Customer, &c) == nil && strings.TrimSpace(c) != "" {
		if t, v, ok := strings.Cut(c, ":"); ok && identifierTypes[t] {
			out = append(out, syncproto.Identifier{Type: t, Value: v})
		} else {
			out = append(out, syncproto.Identifier{Value: c})
		}
	}
	return appendObject(out, body.Identifiers)
}

// appendObject adds the string members of a JSON object of type -> value.
func appendObject(out []syncproto.Identifier, raw json.RawMessage) []syncproto.Identifier {
	var ids map[string]json.RawMessage
	if json.Unmarshal(raw, &ids) != nil {
		return out
	}
	for t, raw := range ids {
		var v string
		if json.Unmarshal(raw, &v) == nil && strings.TrimSpace(v) != "" {
			out = append(out, syncproto.Identifier{Type: t, Value: v})
		}
	}
	return out
}

// ScrubBody returns body without the person: see the comment above.
// erasure names the erasure in a person kind's marker. It reports false
// when there is nothing to scrub.
func ScrubBody(kind events.Kind, data json.RawMessage, erasure string) (json.RawMessage, bool) {
	if personKinds[kind] {
		b, _ := json.Marshal(map[string]string{"erased": erasure})
		return b, !bytes.Equal(b, data)
	}
	var m map[string]json.RawMessage
	if json.Unmarshal(data, &m) != nil {
		return nil, false
	}
	_, c := m["customer"]
	_, i := m["identifiers"]
	if !c && !i {
		return nil, false
	}
	delete(m, "customer")
	delete(m, "identifiers")
	b, err := json.Marshal(m)
	if err != nil {
		return nil, false
	}
	return b, true
}
