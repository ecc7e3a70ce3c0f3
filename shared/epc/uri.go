package epc

import "strings"

// Serial-like EPC URI components carry GS1 AI encodable characters (CSET
// 82); TDS Table A-1 requires seven of them to be percent-escaped.

const cset82 = "!\"%&'()*+,-./0123456789:;<=>?ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz"

func isCset82(c byte) bool { return c != 0 && strings.IndexByte(cset82, c) >= 0 }

func mustEscape(c byte) bool { return strings.IndexByte(`"%&/<>?`, c) >= 0 }

// escapeComponent percent-escapes a CSET 82 value for an EPC URI.
func escapeComponent(s string) string {
	const hexDigits = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if mustEscape(c) {
			b.WriteByte('%')
			b.WriteByte(hexDigits[c>>4])
			b.WriteByte(hexDigits[c&15])
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}

func hexVal(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10, true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	}
	return 0, false
}

// unescapeComponent decodes an EPC URI component, rejecting characters
// outside CSET 82, unescaped reserved characters and bad escapes.
func unescapeComponent(s string) (string, error) {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '%' {
			if i+2 >= len(s) {
				return "", errf(ErrURI, "truncated percent escape")
			}
			h, ok1 := hexVal(s[i+1])
			l, ok2 := hexVal(s[i+2])
			if !ok1 || !ok2 {
				return "", errf(ErrURI, "bad percent escape")
			}
			c = h<<4 | l
			if !isCset82(c) {
				return "", errf(ErrSerial, "escaped character outside the GS1 character set")
			}
			b.WriteByte(c)
			i += 2
			continue
		}
		if !isCset82(c) || mustEscape(c) {
			return "", errf(ErrURI, "character must be percent-escaped or is not allowed")
		}
		b.WriteByte(c)
	}
	return b.String(), nil
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
