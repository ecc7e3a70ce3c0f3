package gs1

import "strings"

// MaxInputLen bounds every parser's input. Real GS1 symbols carry at most a
// few hundred characters; the cap keeps hostile input from costing memory.
const MaxInputLen = 8192

// MaxAIs is the largest number of AIs accepted in one element string.
const MaxAIs = 64

// GS is the ASCII group separator that scanners send in place of FNC1.
const GS = '\x1d'

// Parser holds the validation policy for parsing element strings. The zero
// value is the strict default: every AI must be in the table, every value
// must pass its format and content checks, and cross-AI rules are not
// applied (see the package documentation for why).
type Parser struct {
	// PermitUnknownAIs accepts AIs missing from the table when their
	// length is consistent with the GS1 AI prefix table; their values are
	// only checked to be 1-90 characters of CSET 82. AIs under unallocated
	// prefixes (e.g. 89) have no defined length, so they are accepted in
	// bracketed form only: unbracketed data cannot be split after them.
	PermitUnknownAIs bool
	// StructuralOnly checks AI, length and character set but skips content
	// checks (check digits, dates, code lists), like a decoder's HRI
	// rendering does.
	StructuralOnly bool
	// LenientSeparators lets a value of fixed total length run straight
	// into the next AI even when the AI formally needs an FNC1 separator,
	// as some encoders produce.
	LenientSeparators bool
	// Associations applies the cross-AI rules of Validate after parsing.
	Associations bool
}

// ParseBracketed parses "(01)09506000134352(10)ABC" with the default Parser.
func ParseBracketed(s string) (ElementString, error) { return Parser{}.ParseBracketed(s) }

// ParseUnbracketed parses FNC1-separated data with the default Parser; see
// Parser.ParseUnbracketed.
func ParseUnbracketed(data string, sep byte) (ElementString, error) {
	return Parser{}.ParseUnbracketed(data, sep)
}

// ParseCaret parses "^" notation with the default Parser; see
// Parser.ParseCaret.
func ParseCaret(s string) (ElementString, error) { return Parser{}.ParseCaret(s) }

// ParseElementString parses any element string notation with the default
// Parser; see Parser.Parse.
func ParseElementString(s string) (ElementString, error) { return Parser{}.Parse(s) }

// Parse detects the notation: bracketed when s starts with "(", caret
// notation when it starts with "^", otherwise raw data as a scanner sends
// it after the symbology identifier (GS separators, no leading FNC1).
func (p Parser) Parse(s string) (ElementString, error) {
	switch {
	case strings.HasPrefix(s, "("):
		return p.ParseBracketed(s)
	case strings.HasPrefix(s, "^"):
		return p.ParseCaret(s)
	}
	return p.ParseUnbracketed(s, GS)
}

func tooLong(s string) error {
	if len(s) > MaxInputLen {
		return newErr(ErrSyntax, "", MaxInputLen, "input too long")
	}
	return nil
}

// resolveAI finds the definition for an explicitly delimited AI (bracketed
// or Digital Link), honouring PermitUnknownAIs.
func (p Parser) resolveAI(ai string, pos int) (*aiDef, error) {
	if len(ai) < 2 || len(ai) > 4 || firstNot(ai, isDigit) >= 0 {
		return nil, newErr(ErrSyntax, ai, pos, "AI must be 2 to 4 digits")
	}
	if d := lookupAI(ai); d != nil {
		return d, nil
	}
	if p.PermitUnknownAIs {
		if n := prefixLen(ai); n == 0 || n == len(ai) {
			// An AI that starts with a shorter known AI would be
			// ambiguous once unbracketed: still reject it.
			for l := 2; l < len(ai); l++ {
				if lookupAI(ai[:l]) != nil {
					return nil, newErr(ErrUnknownAI, ai, pos, "unknown AI")
				}
			}
			return &unknownAIDef, nil
		}
	}
	return nil, newErr(ErrUnknownAI, ai, pos, "unknown AI")
}

func (p Parser) check(ai string, d *aiDef, value string, pos int) error {
	if err := validateValue(ai, d, value, p.StructuralOnly); err != nil {
		err.Pos = pos
		return err
	}
	return nil
}

func (p Parser) finish(es ElementString) (ElementString, error) {
	if len(es) == 0 {
		return nil, newErr(ErrSyntax, "", 0, "no AIs")
	}
	if p.Associations {
		if err := es.Validate(); err != nil {
			return nil, err
		}
	}
	return es, nil
}

// ParseBracketed parses the bracketed notation, in which a literal "(" in a
// value is written `\(`. A "|" between AIs separates the linear and 2D
// parts of a composite symbol and is otherwise ignored.
func (p Parser) ParseBracketed(s string) (ElementString, error) {
	if err := tooLong(s); err != nil {
		return nil, err
	}
	var es ElementString
	i := 0
	for i < len(s) {
		if s[i] == '|' && len(es) > 0 {
			i++
			continue
		}
		if s[i] != '(' {
			return nil, newErr(ErrSyntax, "", i, `expected "("`)
		}
		close := strings.IndexByte(s[i+1:], ')')
		if close < 0 {
			return nil, newErr(ErrSyntax, "", i, `unterminated AI, missing ")"`)
		}
		ai := s[i+1 : i+1+close]
		d, err := p.resolveAI(ai, i+1)
		if err != nil {
			return nil, err
		}
		i += close + 2
		start := i
		var val strings.Builder
		for i < len(s) && s[i] != '(' && s[i] != '|' {
			if s[i] == '\\' && i+1 < len(s) && s[i+1] == '(' {
				val.WriteByte('(')
				i += 2
				continue
			}
			val.WriteByte(s[i])
			i++
		}
		if val.Len() == 0 {
			return nil, newErr(ErrSyntax, ai, start, "empty value")
		}
		if len(es) >= MaxAIs {
			return nil, newErr(ErrSyntax, ai, start, "too many AIs")
		}
		v := val.String()
		if err := p.check(ai, d, v, start); err != nil {
			return nil, err
		}
		es = append(es, AIValue{AI: ai, Value: v})
	}
	return p.finish(es)
}

// ParseCaret parses the "^" notation: a leading "^" (FNC1 in first
// position, meaning GS1 data) followed by AIs with "^" as separator. A "|^"
// starts the 2D part of a composite symbol.
func (p Parser) ParseCaret(s string) (ElementString, error) {
	if err := tooLong(s); err != nil {
		return nil, err
	}
	if !strings.HasPrefix(s, "^") {
		return nil, newErr(ErrSyntax, "", 0, `GS1 data must start with FNC1 "^"`)
	}
	linear, cc, composite := strings.Cut(s[1:], "|")
	es, err := p.parseUnbracketed(linear, '^', 1)
	if err != nil {
		return nil, err
	}
	if composite {
		if !strings.HasPrefix(cc, "^") {
			return nil, newErr(ErrSyntax, "", len(linear)+2, `composite part must start with FNC1 "^"`)
		}
		more, err := p.parseUnbracketed(cc[1:], '^', len(linear)+3)
		if err != nil {
			return nil, err
		}
		es = append(es, more...)
		if len(es) > MaxAIs {
			return nil, newErr(ErrSyntax, "", len(s), "too many AIs")
		}
	}
	return p.finish(es)
}

// ParseUnbracketed parses AIs run together as encoded in a symbol, with sep
// (GS for scanner output, '^' for caret notation) after variable-length
// values. data must not include the leading FNC1/symbology identifier.
// A superfluous separator after a predefined-length value, or at the end,
// is tolerated.
func (p Parser) ParseUnbracketed(data string, sep byte) (ElementString, error) {
	if err := tooLong(data); err != nil {
		return nil, err
	}
	es, err := p.parseUnbracketed(data, sep, 0)
	if err != nil {
		return nil, err
	}
	return p.finish(es)
}

// findAI identifies the AI at the start of data.
func (p Parser) findAI(data string, pos int) (string, *aiDef, error) {
	for l := 2; l <= 4 && l <= len(data); l++ {
		if d := lookupAI(data[:l]); d != nil && firstNot(data[:l], isDigit) < 0 {
			return data[:l], d, nil
		}
	}
	if p.PermitUnknownAIs {
		if l := prefixLen(data); l > 0 && l <= len(data) && firstNot(data[:l], isDigit) < 0 {
			return data[:l], &unknownAIDef, nil
		}
	}
	n := min(4, len(data))
	return "", nil, newErr(ErrUnknownAI, data[:n], pos, "no known AI at this position")
}

func (p Parser) parseUnbracketed(data string, sep byte, base int) (ElementString, error) {
	if data == "" {
		return nil, newErr(ErrSyntax, "", base, "no AIs")
	}
	var es ElementString
	i := 0
	for i < len(data) {
		if data[i] == sep {
			return nil, newErr(ErrSyntax, "", base+i, "unexpected separator")
		}
		ai, d, err := p.findAI(data[i:], base+i)
		if err != nil {
			return nil, err
		}
		i += len(ai)
		start := i
		var v string
		if d.fixedLen {
			n := d.maxLen()
			end := min(i+n, len(data))
			if j := strings.IndexByte(data[i:end], sep); j >= 0 {
				end = i + j
			}
			v = data[i:end]
			if len(v) < n {
				return nil, &Error{Kind: ErrLength, AI: ai, Pos: base + start, Value: v, Msg: "value too short"}
			}
			i = end
		} else {
			end := len(data)
			if j := strings.IndexByte(data[i:], sep); j >= 0 {
				end = i + j
			}
			if p.LenientSeparators && d.minLen() == d.maxLen() && end-i > d.maxLen() {
				end = i + d.maxLen()
			}
			v = data[i:end]
			i = end
		}
		if v == "" {
			return nil, newErr(ErrSyntax, ai, base+start, "empty value")
		}
		if len(es) >= MaxAIs {
			return nil, newErr(ErrSyntax, ai, base+start, "too many AIs")
		}
		if err := p.check(ai, d, v, base+start); err != nil {
			return nil, err
		}
		es = append(es, AIValue{AI: ai, Value: v})
		if i < len(data) && data[i] == sep {
			i++
		}
	}
	return es, nil
}
