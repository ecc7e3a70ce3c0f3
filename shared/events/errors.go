package events

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// FieldError is a validation failure tied to one field of the input. Field
// is a path such as "data.lines[0].qty" (or "[3].data.kind" inside a batch).
type FieldError struct {
	Field  string
	Reason string
}

func (e *FieldError) Error() string {
	if e.Field == "" {
		return e.Reason
	}
	return e.Field + ": " + e.Reason
}

// Is makes errors.Is(err, ErrInvalid) true for every FieldError.
func (e *FieldError) Is(target error) bool { return target == ErrInvalid }

func fieldErr(field, reason string) error { return &FieldError{Field: field, Reason: reason} }

// prefix puts p in front of the field path of a FieldError.
func prefix(p string, err error) error {
	var fe *FieldError
	if !errors.As(err, &fe) {
		return err
	}
	f := p
	switch {
	case fe.Field == "":
	case strings.HasPrefix(fe.Field, "["):
		f = p + fe.Field
	case p == "":
		f = fe.Field
	default:
		f = p + "." + fe.Field
	}
	return &FieldError{Field: f, Reason: fe.Reason}
}

// jsonFieldErr turns an encoding/json error into a FieldError naming the
// field where it can.
func jsonFieldErr(base string, err error) error {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		f := te.Field
		if base != "" && f != "" {
			f = base + "." + f
		} else if f == "" {
			f = base
		}
		return &FieldError{Field: f, Reason: fmt.Sprintf("must be %s, got %s", jsonTypeName(te.Type.Kind().String()), te.Value)}
	}
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return &FieldError{Field: base, Reason: fmt.Sprintf("malformed JSON at byte %d: %v", se.Offset, se)}
	}
	return &FieldError{Field: base, Reason: "malformed JSON: " + err.Error()}
}

func jsonTypeName(k string) string {
	switch k {
	case "int", "int8", "int16", "int32", "int64", "uint", "uint8", "uint16", "uint32", "uint64":
		return "an integer"
	case "float32", "float64":
		return "a number"
	case "string":
		return "a string"
	case "slice", "array":
		return "an array"
	case "struct", "map":
		return "an object"
	case "bool":
		return "true or false"
	}
	return k
}
