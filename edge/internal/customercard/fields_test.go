package customercard

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/omnisync/omnisync/shared/events"
	"github.com/omnisync/omnisync/shared/syncproto"
)

// Ensure that the agent finds the identifiers of every shape of body
// that names a customer, and scrubbing leaves a sale's lines and nothing
// of the person.
func TestIdentifiersAndScrub(t *testing.T) {
	cases := []struct {
		kind   events.Kind
		body   string
		ids    []syncproto.Identifier
		scrub  string // "" = unchanged
		person bool
	}{
		{"sale", `{"lines":[{"sku":"A","qty":1}],"customer":"loyalty:LC-1"}`, []syncproto.Identifier{{Type: "loyalty", Value: "LC-1"}}, `{"lines":[{"sku":"A","qty":1}]}`, false},
		{"sale", `{"lines":[{"sku":"A","qty":1}],"customer":"LC-1"}`, []syncproto.Identifier{{Value: "LC-1"}}, `{"lines":[{"sku":"A","qty":1}]}`, false},
		{"sale", `{"lines":[{"sku":"A","qty":1}],"customer":"mailto:x"}`, []syncproto.Identifier{{Value: "mailto:x"}}, `{"lines":[{"sku":"A","qty":1}]}`, false},
		{"sale", `{"lines":[{"sku":"A","qty":1}]}`, nil, "", false},
		{"sale", `{"lines":[{"sku":"A","qty":1}],"customer":{"loyalty":"LC-1"}}`, []syncproto.Identifier{{Type: "loyalty", Value: "LC-1"}}, `{"lines":[{"sku":"A","qty":1}]}`, false},
		{"consent", `{"customer":{"email":"a@b.example"},"purpose":"marketing_email","granted":false}`, []syncproto.Identifier{{Type: "email", Value: "a@b.example"}}, `{"erased":"E1"}`, true},
		{"return", `{"lines":[{"sku":"A","qty":1}],"customer":""}`, nil, `{"lines":[{"sku":"A","qty":1}]}`, false},
		{"identify", `{"identifiers":{"loyalty":"LC-1","email":"a@b.example"}}`, []syncproto.Identifier{{Type: "email", Value: "a@b.example"}, {Type: "loyalty", Value: "LC-1"}}, `{"erased":"E1"}`, true},
		{"consent", `{"identifiers":{"phone":"+44 20 7946 0018"},"purpose":"sms","status":"granted"}`, []syncproto.Identifier{{Type: "phone", Value: "+44 20 7946 0018"}}, `{"erased":"E1"}`, true},
		{"update", `{"customer":"email:a@b.example","fields":{"first_name":"Ada"}}`, []syncproto.Identifier{{Type: "email", Value: "a@b.example"}}, `{"erased":"E1"}`, true},
		{"identify", `{"erased":"E1"}`, nil, "", true},
		{"scan", `{"code":"customer"}`, nil, "", false},
		{"sale", `not json`, nil, "", false},
	}
	for _, c := range cases {
		ids := Identifiers(json.RawMessage(c.body))
		slices.SortFunc(ids, func(a, b syncproto.Identifier) int { return strings.Compare(a.Type+a.Value, b.Type+b.Value) })
		if !slices.Equal(ids, c.ids) {
			t.Errorf("Identifiers(%s) = %v, want %v", c.body, ids, c.ids)
		}
		got, ok := ScrubBody(c.kind, json.RawMessage(c.body), "E1")
		if ok != (c.scrub != "") || ok && string(got) != c.scrub {
			t.Errorf("ScrubBody(%s, %s) = %s, %v; want %s", c.kind, c.body, got, ok, c.scrub)
		}
		if ok && len(Identifiers(got)) != 0 {
			t.Errorf("ScrubBody(%s) left identifiers: %s", c.body, got)
		}
	}
}

// FuzzScrubBody: whatever the body, a scrubbed body is JSON and names
// nobody.
func FuzzScrubBody(f *testing.F) {
	f.Add("sale", `{"lines":[{"sku":"A","qty":1}],"customer":"loyalty:LC-1"}`)
	f.Add("identify", `{"identifiers":{"loyalty":"LC-1"}}`)
	f.Add("consent", `{"customer":{"nested":true},"identifiers":[1,2]}`)
	f.Fuzz(func(t *testing.T, kind, body string) {
		_ = Identifiers(json.RawMessage(body))
		got, ok := ScrubBody(events.Kind(kind), json.RawMessage(body), "E1")
		if !ok {
			return
		}
		if !json.Valid(got) {
			t.Fatalf("scrubbed %q into invalid JSON %q", body, got)
		}
		if ids := Identifiers(got); len(ids) != 0 {
			t.Fatalf("scrubbed %q still names %v", body, ids)
		}
	})
}
