package gs1

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

// checkDigitExceptions: none needed.
var checkDigitExceptions = map[string]string{}

func TestCorpusCheckDigits(t *testing.T) {
	runCorpus(t, "gs1/check_digits.jsonl", checkDigitExceptions, func(r row) error {
		in, exp := r.Str("input"), r.Obj("expect")
		switch {
		case exp.Has("error"): // gs1-syntax-engine csum linter
			return compareLint("csum", in, exp)
		case exp.Has("computed_check_digit"): // input lacks its check digit
			c, err := CheckDigit(in)
			if err != nil || string(c) != exp.Str("computed_check_digit") {
				return fmt.Errorf("CheckDigit = %q, %v", c, err)
			}
			return nil
		case exp.Has("python_repr") || exp.Has("exception"): // python-stdnum ean.validate
			g, err := ParseGTIN(in)
			if r.Bool("valid") {
				if err != nil || "'"+g+"'" != exp.Str("python_repr") {
					return fmt.Errorf("ParseGTIN = %q, %v", g, err)
				}
				return nil
			}
			want := map[string]error{"InvalidLength": ErrLength, "InvalidFormat": ErrCharset, "InvalidChecksum": ErrCheckDigit}[exp.Str("exception")]
			if !errors.Is(err, want) {
				return fmt.Errorf("ParseGTIN err = %v, want %v", err, want)
			}
			return nil
		}
		s := in
		if strings.Contains(r.Str("note"), "validateCheckDigit(14") {
			s = in[:14] // GRAI: the check digit closes the first 14 digits
		}
		err := ValidateCheckDigit(s)
		if (err == nil) != r.Bool("valid") {
			return fmt.Errorf("ValidateCheckDigit = %v, want valid=%v", err, r.Bool("valid"))
		}
		if cd := exp.Str("correct_check_digit"); cd != "" {
			if c, _ := CheckDigit(in[:len(in)-1]); string(c) != cd {
				return fmt.Errorf("CheckDigit = %q, want %q", c, cd)
			}
		}
		return nil
	})
}

// compareLint runs a linter and compares code and highlight ("ab*c*d").
func compareLint(name, in string, exp row) error {
	err := Lint(name, in)
	code, hl := "GS1_LINTER_OK", ""
	var ge *Error
	if errors.As(err, &ge) {
		code = ge.Code
		hl = in[:ge.ErrPos] + "*" + in[ge.ErrPos:ge.ErrPos+ge.ErrLen] + "*" + in[ge.ErrPos+ge.ErrLen:]
	} else if err != nil {
		return err
	}
	if code != exp.Str("error") {
		return fmt.Errorf("%s(%q) = %s, want %s", name, in, code, exp.Str("error"))
	}
	if want := exp.Str("highlight"); exp.Has("highlight") && want != hl {
		return fmt.Errorf("%s(%q) highlight %q, want %q", name, in, hl, want)
	}
	return nil
}
