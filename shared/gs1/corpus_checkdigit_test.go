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
		in, exp := r.str("input"), r.obj("expect")
		switch {
		case exp.has("error"): // gs1-syntax-engine csum linter
			return compareLint("csum", in, exp)
		case exp.has("computed_check_digit"): // input lacks its check digit
			c, err := CheckDigit(in)
			if err != nil || string(c) != exp.str("computed_check_digit") {
				return fmt.Errorf("CheckDigit = %q, %v", c, err)
			}
			return nil
		case exp.has("python_repr") || exp.has("exception"): // python-stdnum ean.validate
			g, err := ParseGTIN(in)
			if r.boolean("valid") {
				if err != nil || "'"+g+"'" != exp.str("python_repr") {
					return fmt.Errorf("ParseGTIN = %q, %v", g, err)
				}
				return nil
			}
			want := map[string]error{"InvalidLength": ErrLength, "InvalidFormat": ErrCharset, "InvalidChecksum": ErrCheckDigit}[exp.str("exception")]
			if !errors.Is(err, want) {
				return fmt.Errorf("ParseGTIN err = %v, want %v", err, want)
			}
			return nil
		}
		s := in
		if strings.Contains(r.str("note"), "validateCheckDigit(14") {
			s = in[:14] // GRAI: the check digit closes the first 14 digits
		}
		err := ValidateCheckDigit(s)
		if (err == nil) != r.boolean("valid") {
			return fmt.Errorf("ValidateCheckDigit = %v, want valid=%v", err, r.boolean("valid"))
		}
		if cd := exp.str("correct_check_digit"); cd != "" {
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
	if code != exp.str("error") {
		return fmt.Errorf("%s(%q) = %s, want %s", name, in, code, exp.str("error"))
	}
	if want := exp.str("highlight"); exp.has("highlight") && want != hl {
		return fmt.Errorf("%s(%q) highlight %q, want %q", name, in, hl, want)
	}
	return nil
}
