package events

import (
	"unicode/utf8"
)

// fastScan reads the few JSON shapes of the hub's hot path (stock move
// bodies, envelopes) without reflection. It is a recogniser, not a
// decoder of its own: every function returns ok false as soon as the input
// holds anything it does not handle exactly as encoding/json does
// (escapes, non-ASCII keys, numbers that are not plain integers, repeated
// keys, syntax errors, values of the wrong type), and its caller then
// decodes the whole input with encoding/json, whose result is the
// reference. So the fast path only ever decides inputs on which both agree,
// which the differential fuzz tests check.
type fastScan struct {
	b []byte
	i int
	// s is b as one string, made on the first string value: the decoded
	// strings are substrings of it, so a body costs one string allocation
	// however many fields and lines it has. Only for small inputs: a
	// string kept long (a position's SKU in the hub's caches) keeps all
	// of s alive.
	s string
}

// fastShareMax is the largest input whose strings share one allocation.
const fastShareMax = 1024

// fastMaxDepth bounds the nesting skipValue follows (encoding/json allows
// 10,000 levels; deeper inputs go to it).
const fastMaxDepth = 64

func (p *fastScan) ws() {
	for p.i < len(p.b) {
		switch p.b[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

// peek returns the next byte after whitespace, 0 at the end.
func (p *fastScan) peek() byte {
	p.ws()
	if p.i < len(p.b) {
		return p.b[p.i]
	}
	return 0
}

// eat consumes c after whitespace.
func (p *fastScan) eat(c byte) bool {
	if p.peek() != c {
		return false
	}
	p.i++
	return true
}

// end reports whether only whitespace is left.
func (p *fastScan) end() bool {
	p.ws()
	return p.i == len(p.b)
}

// rawString consumes a string without escapes and returns the offsets of
// its content. ascii requires every byte to be ASCII (keys, whose
// case-insensitive matching encoding/json extends to Unicode folding);
// otherwise the content must be valid UTF-8, which encoding/json keeps as
// it is (it replaces invalid sequences, which this does not do).
func (p *fastScan) rawString(ascii bool) (lo, hi int, ok bool) {
	if p.peek() != '"' {
		return 0, 0, false
	}
	p.i++
	lo = p.i
	wide := false
	for p.i < len(p.b) {
		c := p.b[p.i]
		switch {
		case c == '"':
			hi = p.i
			p.i++
			if wide && (ascii || !utf8.Valid(p.b[lo:hi])) {
				return 0, 0, false
			}
			return lo, hi, true
		case c == '\\' || c < 0x20:
			return 0, 0, false
		case c >= utf8.RuneSelf:
			wide = true
		}
		p.i++
	}
	return 0, 0, false
}

// str consumes a string value (see rawString) and returns it.
func (p *fastScan) str() (string, bool) {
	lo, hi, ok := p.rawString(false)
	if !ok {
		return "", false
	}
	if lo == hi {
		return "", true
	}
	if len(p.b) > fastShareMax {
		return string(p.b[lo:hi]), true
	}
	if p.s == "" {
		p.s = string(p.b)
	}
	return p.s[lo:hi], true
}

// key consumes an object key and the colon after it and returns the key's
// bytes (ASCII, no escapes).
func (p *fastScan) key() ([]byte, bool) {
	lo, hi, ok := p.rawString(true)
	if !ok || !p.eat(':') {
		return nil, false
	}
	return p.b[lo:hi], true
}

// null consumes a null literal if one comes next.
func (p *fastScan) null() bool {
	if p.peek() == 'n' && len(p.b)-p.i >= 4 && string(p.b[p.i:p.i+4]) == "null" {
		p.i += 4
		return true
	}
	return false
}

// int consumes a number written as a plain integer of at most 18 digits,
// the numbers strconv.ParseInt reads into any int64 (what encoding/json
// calls for an integer field). Fractions, exponents and longer numbers are
// left to encoding/json.
func (p *fastScan) int() (int64, bool) {
	p.ws()
	neg := false
	if p.i < len(p.b) && p.b[p.i] == '-' {
		neg = true
		p.i++
	}
	start := p.i
	var v int64
	for p.i < len(p.b) {
		c := p.b[p.i]
		if c < '0' || c > '9' {
			break
		}
		v = v*10 + int64(c-'0')
		p.i++
	}
	n := p.i - start
	if n == 0 || n > 18 || (n > 1 && p.b[start] == '0') {
		return 0, false
	}
	if p.i < len(p.b) {
		switch p.b[p.i] {
		case '.', 'e', 'E':
			return 0, false
		}
	}
	if neg {
		v = -v
	}
	return v, true
}

// uint consumes a number written as a plain unsigned integer that fits
// in 64 bits, the numbers strconv.ParseUint reads (what encoding/json
// calls for an unsigned field). A minus sign, a fraction, an exponent or
// an overflow are left to encoding/json.
func (p *fastScan) uint() (uint64, bool) {
	p.ws()
	start := p.i
	var v uint64
	for p.i < len(p.b) {
		c := p.b[p.i]
		if c < '0' || c > '9' {
			break
		}
		d := uint64(c - '0')
		if v > (1<<64-1-d)/10 {
			return 0, false
		}
		v = v*10 + d
		p.i++
	}
	n := p.i - start
	if n == 0 || (n > 1 && p.b[start] == '0') {
		return 0, false
	}
	if p.i < len(p.b) {
		switch p.b[p.i] {
		case '.', 'e', 'E':
			return 0, false
		}
	}
	return v, true
}

// skipValue consumes any JSON value, checking its syntax as strictly as
// encoding/json's scanner does, and returns its bytes.
func (p *fastScan) skipValue() ([]byte, bool) {
	p.ws()
	lo := p.i
	if !p.skip(0) {
		return nil, false
	}
	return p.b[lo:p.i], true
}

func (p *fastScan) skip(depth int) bool {
	if depth > fastMaxDepth {
		return false
	}
	switch p.peek() {
	case '"':
		return p.skipString()
	case '{':
		p.i++
		if p.eat('}') {
			return true
		}
		for {
			if p.peek() != '"' || !p.skipString() || !p.eat(':') || !p.skip(depth+1) {
				return false
			}
			if p.eat('}') {
				return true
			}
			if !p.eat(',') {
				return false
			}
		}
	case '[':
		p.i++
		if p.eat(']') {
			return true
		}
		for {
			if !p.skip(depth + 1) {
				return false
			}
			if p.eat(']') {
				return true
			}
			if !p.eat(',') {
				return false
			}
		}
	case 't':
		return p.literal("true")
	case 'f':
		return p.literal("false")
	case 'n':
		return p.literal("null")
	case '-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9':
		return p.skipNumber()
	}
	return false
}

func (p *fastScan) literal(lit string) bool {
	if len(p.b)-p.i < len(lit) || string(p.b[p.i:p.i+len(lit)]) != lit {
		return false
	}
	p.i += len(lit)
	return true
}

// skipString consumes a string with any valid escapes. Like encoding/json's
// scanner it refuses control characters and does not check UTF-8.
func (p *fastScan) skipString() bool {
	p.i++ // the opening quote
	for p.i < len(p.b) {
		c := p.b[p.i]
		switch {
		case c == '"':
			p.i++
			return true
		case c < 0x20:
			return false
		case c == '\\':
			p.i++
			if p.i >= len(p.b) {
				return false
			}
			switch p.b[p.i] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				p.i++
			case 'u':
				p.i++
				if len(p.b)-p.i < 4 {
					return false
				}
				for _, h := range p.b[p.i : p.i+4] {
					if !(h >= '0' && h <= '9' || h >= 'a' && h <= 'f' || h >= 'A' && h <= 'F') {
						return false
					}
				}
				p.i += 4
			default:
				return false
			}
		default:
			p.i++
		}
	}
	return false
}

// skipNumber consumes a number of JSON's grammar: -?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?
func (p *fastScan) skipNumber() bool {
	if p.b[p.i] == '-' {
		p.i++
	}
	if p.i >= len(p.b) {
		return false
	}
	switch c := p.b[p.i]; {
	case c == '0':
		p.i++
	case c >= '1' && c <= '9':
		p.digits()
	default:
		return false
	}
	if p.i < len(p.b) && p.b[p.i] == '.' {
		p.i++
		if p.digits() == 0 {
			return false
		}
	}
	if p.i < len(p.b) && (p.b[p.i] == 'e' || p.b[p.i] == 'E') {
		p.i++
		if p.i < len(p.b) && (p.b[p.i] == '+' || p.b[p.i] == '-') {
			p.i++
		}
		if p.digits() == 0 {
			return false
		}
	}
	return true
}

func (p *fastScan) digits() int {
	start := p.i
	for p.i < len(p.b) && p.b[p.i] >= '0' && p.b[p.i] <= '9' {
		p.i++
	}
	return p.i - start
}

// fieldOf returns the index in names of the field key names for
// encoding/json: the exact name, else the one equal to it under ASCII
// case folding (key is ASCII, see key; names are lowercase ASCII), else -1.
func fieldOf(key []byte, names []string) int {
	for i, n := range names {
		if string(key) == n {
			return i
		}
	}
	for i, n := range names {
		if len(n) == len(key) && asciiEqualFold(key, n) {
			return i
		}
	}
	return -1
}

func asciiEqualFold(a []byte, b string) bool {
	for i := range a {
		x, y := a[i], b[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}
