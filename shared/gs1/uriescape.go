package gs1

import "strings"

// isURIUnreserved reports the RFC 3986 unreserved characters, which never
// need escaping in a Digital Link path segment or query value.
func isURIUnreserved(c byte) bool {
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || isDigit(c) ||
		c == '-' || c == '.' || c == '_' || c == '~'
}

// EscapeURIComponent percent-encodes an AI value for a Digital Link path
// segment (query=false) or query value (query=true). Everything but the
// RFC 3986 unreserved characters is escaped with upper-case hex, and a
// space becomes "+" in query values. "+" itself is always escaped so that
// it cannot be mistaken for a space.
func EscapeURIComponent(s string, query bool) string {
	const hexDigits = "0123456789ABCDEF"
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case isURIUnreserved(c):
			b.WriteByte(c)
		case c == ' ' && query:
			b.WriteByte('+')
		default:
			b.WriteByte('%')
			b.WriteByte(hexDigits[c>>4])
			b.WriteByte(hexDigits[c&15])
		}
	}
	return b.String()
}

func unhex(c byte) byte {
	switch {
	case c >= 'a':
		return c - 'a' + 10
	case c >= 'A':
		return c - 'A' + 10
	}
	return c - '0'
}

// UnescapeURIComponent reverses percent-encoding in a Digital Link path
// segment or query value. It is deliberately lenient, like GS1's reference
// implementation: a "%" not followed by two hex digits is kept literally.
// In query values "+" means a space; in path segments it is a literal "+".
// An encoded NUL is rejected because no GS1 character set contains it.
func UnescapeURIComponent(s string, query bool) (string, error) {
	if strings.IndexByte(s, '%') < 0 && (!query || strings.IndexByte(s, '+') < 0) {
		return s, nil
	}
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '%' && i+2 < len(s) && isHex(s[i+1]) && isHex(s[i+2]):
			v := unhex(s[i+1])<<4 | unhex(s[i+2])
			if v == 0 {
				return "", newErr(ErrDigitalLink, "", i, "percent-encoded NUL")
			}
			b.WriteByte(v)
			i += 2
		case c == '+' && query:
			b.WriteByte(' ')
		default:
			b.WriteByte(c)
		}
	}
	return b.String(), nil
}
