package events

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

// Ensure that survey bodies are checked field by field, naming the field.
func TestValidateSurvey(t *testing.T) {
	tok := strings.Repeat("A", MinSurveyToken)
	tests := []struct {
		body, field string
	}{
		{`{"survey":"post-purchase","receipt":"R-1","score":9,"complete":true}`, ""},
		{`{"survey":"post-purchase","session":"k1","comment":"slow queue"}`, ""},
		{`{"survey":"post-purchase","receipt":"R-1","token":"` + tok + `"}`, ""},
		{`{"survey":"","receipt":"R-1"}`, "survey"},
		{`{"survey":"s"}`, "receipt"},
		{`{"survey":"s","receipt":"R 1"}`, "receipt"},
		{`{"survey":"s","receipt":"R1","score":11}`, "score"},
		{`{"survey":"s","receipt":"R1","score":-1}`, "score"},
		{`{"survey":"s","receipt":"R1","complete":true}`, "score"},
		{`{"survey":"s","receipt":"R1","comment":"` + strings.Repeat("x", MaxSurveyComment+1) + `"}`, "comment"},
		{`{"survey":"s","receipt":"R1","comment":"a\u0001b"}`, "comment"},
		{`{"survey":"s","session":"k1","token":"` + tok + `"}`, "token"},
		{`{"survey":"s","receipt":"R1","token":"short"}`, "token"},
		{`{"survey":"s","receipt":"R1","score":"9"}`, "score"},
	}
	for _, tt := range tests {
		_, err := ValidateBody(KindSurvey, []byte(tt.body))
		var fe *FieldError
		switch {
		case tt.field == "" && err != nil:
			t.Errorf("%s: %v", tt.body, err)
		case tt.field != "" && (!errors.As(err, &fe) || fe.Field != tt.field):
			t.Errorf("%s: %v, want an error on %q", tt.body, err, tt.field)
		}
	}
	if ClassOf(KindSurvey) != ClassNormal {
		t.Errorf("survey class %v", ClassOf(KindSurvey))
	}
}

// FuzzValidateSurvey feeds arbitrary bodies to the survey validator: it
// never panics, refuses with a FieldError, and what it accepts decodes into
// a Survey within the limits.
func FuzzValidateSurvey(f *testing.F) {
	f.Add([]byte(`{"survey":"post-purchase","receipt":"R-1","score":9,"complete":true,"comment":"ok"}`))
	f.Add([]byte(`{"survey":"s","receipt":"R1","token":"` + strings.Repeat("A", MinSurveyToken) + `"}`))
	f.Add([]byte(`{"survey":"s","session":"k","score":-1}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		out, err := ValidateBody(KindSurvey, body)
		if err != nil {
			var fe *FieldError
			if !errors.As(err, &fe) {
				t.Fatalf("not a FieldError: %v", err)
			}
			return
		}
		var s Survey
		if err := json.Unmarshal(out, &s); err != nil {
			t.Fatalf("accepted body does not decode: %v", err)
		}
		if s.Survey == "" || (s.Score != nil && (*s.Score < 0 || *s.Score > 10)) || (s.Complete && s.Score == nil) {
			t.Fatalf("accepted %s", out)
		}
	})
}
