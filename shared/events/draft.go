package events

import (
	"bytes"
	"encoding/json"
	"fmt"
)

// MaxDraftsPerRequest bounds how many events one POST may carry.
const MaxDraftsPerRequest = 1000

// Draft is what a POS app posts: a kind and its body. The agent turns it
// into an Envelope when it appends it to the outbox.
type Draft struct {
	Kind Kind            `json:"kind"`
	Data json.RawMessage `json:"data"`
}

// ParseDrafts parses a POST body holding one draft or a JSON array of them,
// validates every one and fills defaultLocation where a body has none. It is
// all or nothing: any invalid draft fails the whole request, with the field
// path naming it ("[3].data.lines[0].qty" in an array).
func ParseDrafts(body []byte, defaultLocation string) ([]Draft, error) {
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) == 0 {
		return nil, fieldErr("", "empty body: send an event object or an array of them")
	}
	var raw []json.RawMessage
	array := trimmed[0] == '['
	if array {
		if err := json.Unmarshal(trimmed, &raw); err != nil {
			return nil, jsonFieldErr("", err)
		}
		if len(raw) == 0 {
			return nil, fieldErr("", "empty array")
		}
		if len(raw) > MaxDraftsPerRequest {
			return nil, fieldErr("", fmt.Sprintf("%d events, the limit per request is %d", len(raw), MaxDraftsPerRequest))
		}
	} else {
		raw = []json.RawMessage{trimmed}
	}
	out := make([]Draft, len(raw))
	for i, r := range raw {
		d, err := parseDraft(r, defaultLocation)
		if err != nil {
			if array {
				return nil, prefix(fmt.Sprintf("[%d]", i), err)
			}
			return nil, err
		}
		out[i] = d
	}
	return out, nil
}

func parseDraft(r json.RawMessage, defaultLocation string) (Draft, error) {
	var d Draft
	t := bytes.TrimSpace(r)
	if len(t) == 0 || t[0] != '{' {
		return d, fieldErr("", "an event must be a JSON object")
	}
	if err := json.Unmarshal(t, &d); err != nil {
		return d, jsonFieldErr("", err)
	}
	data, err := normaliseBody(d.Kind, d.Data, defaultLocation)
	if err != nil {
		var fe *FieldError
		if ok := asField(err, &fe); ok && fe.Field == "kind" {
			return d, err
		}
		return d, prefix("data", err)
	}
	d.Data = data
	return d, nil
}

func asField(err error, fe **FieldError) bool {
	e, ok := err.(*FieldError)
	if ok {
		*fe = e
	}
	return ok
}

// WithCountMethod returns d with method as its count method if d is a
// count that names none (what a channel knows of its counts: the POS's
// are made by hand); any other draft unchanged. d must be valid.
func (d Draft) WithCountMethod(method string) (Draft, error) {
	if d.Kind != KindCount {
		return d, nil
	}
	var m struct {
		Method string `json:"method"`
	}
	if err := json.Unmarshal(d.Data, &m); err != nil {
		return d, jsonFieldErr("data", err)
	}
	if m.Method != "" {
		return d, nil
	}
	data, err := setField(d.Data, "method", method)
	if err != nil {
		return d, err
	}
	d.Data = data
	return d, nil
}
