package gs1

import "strings"

// kindForCode maps a GS1 linter code to the sentinel error callers branch on.
func kindForCode(code string) error {
	switch {
	case strings.Contains(code, "CHECK_DIGIT") && strings.HasPrefix(code, "GS1_LINTER_INCORRECT"),
		strings.HasSuffix(code, "INCORRECT_CHECK_PAIR"), strings.HasSuffix(code, "IBAN_CHECKSUM"):
		return ErrCheckDigit
	case strings.Contains(code, "CHARACTER"), strings.HasSuffix(code, "CSET64_PADDING"):
		return ErrCharset
	case strings.Contains(code, "DATE"), strings.Contains(code, "MONTH"), strings.Contains(code, "DAY"),
		strings.Contains(code, "HOUR"), strings.Contains(code, "MINUTE"), strings.Contains(code, "SECOND"):
		if strings.HasPrefix(code, "GS1_LINTER_COUPON") {
			return ErrValue
		}
		return ErrDate
	case strings.Contains(code, "TOO_SHORT"), strings.Contains(code, "TOO_LONG"), strings.Contains(code, "INVALID_LENGTH"):
		return ErrLength
	}
	return ErrValue
}

// lintError converts a linter result on the component starting at off into
// an *Error for the given AI value.
func lintError(ai, value string, off, end int, le *lintErr) *Error {
	return &Error{Kind: kindForCode(le.code), AI: ai, Pos: -1, Code: le.code, Value: value,
		ErrPos: off + le.pos, ErrLen: le.n, compEnd: end,
		Msg: strings.ToLower(strings.ReplaceAll(strings.TrimPrefix(le.code, "GS1_LINTER_"), "_", " "))}
}

var csetLinter = map[cset]linter{
	csetNumeric: lintNumeric,
	cset82:      lintCset82,
	cset39:      lintCset39,
	cset64:      lintCset64,
}

// validateValue checks one AI value against its definition: lengths and
// character sets always, content linters (check digits, dates, code lists)
// unless structural is set.
func validateValue(ai string, d *aiDef, value string, structural bool) *Error {
	if n := d.minLen(); len(value) < n {
		return &Error{Kind: ErrLength, AI: ai, Pos: -1, Value: value, Msg: "value too short"}
	}
	if n := d.maxLen(); len(value) > n {
		return &Error{Kind: ErrLength, AI: ai, Pos: -1, Value: value, Msg: "value too long"}
	}
	pos := 0
	for _, c := range d.comps {
		rest := len(value) - pos
		if rest == 0 && c.optional {
			break
		}
		n := c.max
		if c.min == c.max {
			if rest < n {
				return &Error{Kind: ErrLength, AI: ai, Pos: -1, Value: value, ErrPos: pos, ErrLen: rest,
					compEnd: len(value), Msg: "value too short for its components"}
			}
		} else {
			n = min(rest, c.max)
		}
		part := value[pos : pos+n]
		if le := csetLinter[c.cset](part); le != nil {
			return lintError(ai, value, pos, pos+n, le)
		}
		if !structural {
			for _, l := range c.linters {
				if le := l(part); le != nil {
					return lintError(ai, value, pos, pos+n, le)
				}
			}
		}
		pos += n
	}
	if pos != len(value) {
		return &Error{Kind: ErrLength, AI: ai, Pos: -1, Value: value, ErrPos: pos, ErrLen: len(value) - pos,
			compEnd: len(value), Msg: "value too long for its components"}
	}
	return nil
}

// ValidateAIValue checks a single AI value in isolation, e.g. before
// building a Digital Link from user input.
func ValidateAIValue(ai, value string) error {
	d := lookupAI(ai)
	if d == nil || firstNot(ai, isDigit) >= 0 {
		return &Error{Kind: ErrUnknownAI, AI: ai, Pos: -1, Msg: "unknown AI"}
	}
	if err := validateValue(ai, d, value, false); err != nil {
		return err
	}
	return nil
}
