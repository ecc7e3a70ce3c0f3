package epc

import (
	"strconv"
	"strings"

	"github.com/omnisync/omnisync/shared/gs1"
)

// Tag is a decoded EPC.
type Tag struct {
	Scheme Scheme
	// Filter is the filter value (0-7, or 0-15 for USDOD); -1 when the
	// scheme has none (GID).
	Filter int
	// Partition is the partition value, for schemes that have one.
	Partition int
	// CompanyPrefix is the GS1 Company Prefix, for GS1 schemes.
	CompanyPrefix string
	// PureURI is the pure-identity URI (urn:epc:id:...), TagURI the tag URI
	// (urn:epc:tag:...), both with CSET 82 components percent-escaped.
	PureURI, TagURI string
	// GS1 is the equivalent GS1 element string, for GS1 schemes.
	GS1 gs1.ElementString
	// SGTIN is set for SGTIN-96/198 tags.
	SGTIN *SGTIN
}

// MaxHexLen bounds Decode's input (the longest EPC is a few hundred bits).
const MaxHexLen = 128

// Decode decodes EPC memory given as hex (an optional "0x" prefix and
// surrounding spaces are ignored), identifying the scheme from its header.
func Decode(hexEPC string) (Tag, error) {
	s := strings.TrimSpace(hexEPC)
	s = strings.TrimPrefix(strings.TrimPrefix(s, "0x"), "0X")
	if len(s) > MaxHexLen {
		return Tag{}, errf(ErrHex, "too long")
	}
	if len(s) < 2 {
		return Tag{}, errf(ErrHex, "too short")
	}
	h, err := strconv.ParseUint(s[:2], 16, 8)
	if err != nil {
		return Tag{}, errf(ErrHex, "not hexadecimal")
	}
	l, ok := layouts[byte(h)]
	if !ok {
		return Tag{}, errf(ErrHeader, "unsupported EPC header 0x"+strings.ToUpper(s[:2]))
	}
	if l.bits == 0 { // recognised but not decodable
		return l.decode(nil, l)
	}
	b, err := decodeHex(s, l.bits)
	if err != nil {
		return Tag{}, err
	}
	return l.decode(b, l)
}

// ParseTagURI parses an SGTIN tag URI (urn:epc:tag:sgtin-96:F.CP.IR.S or
// sgtin-198), including any "[att=x..][xpc=x..]" control fields after
// "urn:epc:tag:", which are accepted and dropped.
func ParseTagURI(uri string) (Tag, error) {
	rest, ok := strings.CutPrefix(uri, "urn:epc:tag:")
	if !ok {
		return Tag{}, errf(ErrURI, "not an EPC tag URI")
	}
	for strings.HasPrefix(rest, "[") {
		end := strings.IndexByte(rest, ']')
		if end < 0 {
			return Tag{}, errf(ErrURI, "unterminated control field")
		}
		rest = rest[end+1:]
		if strings.HasPrefix(rest, ":") && !strings.HasPrefix(rest[1:], "[") {
			rest = rest[1:]
		}
	}
	name, fields, ok := strings.Cut(rest, ":")
	scheme := Scheme(name)
	if !ok || (scheme != SGTIN96 && scheme != SGTIN198) {
		return Tag{}, errf(ErrHeader, "only SGTIN tag URIs can be parsed")
	}
	f, rest2, ok := strings.Cut(fields, ".")
	filter, err := strconv.Atoi(f)
	if !ok || err != nil || len(f) != 1 || filter > 7 || filter < 0 {
		return Tag{}, errf(ErrFilter, "filter must be one digit 0-7")
	}
	s, err := parseSGTINFields(rest2)
	if err != nil {
		return Tag{}, err
	}
	if err := s.encodable(scheme, filter); err != nil {
		return Tag{}, err
	}
	t := Tag{Scheme: scheme, Filter: filter, Partition: 12 - len(s.CompanyPrefix), CompanyPrefix: s.CompanyPrefix, SGTIN: &s}
	t.PureURI = s.PureURI()
	t.TagURI, _ = s.TagURI(scheme, filter)
	t.GS1 = s.ElementString()
	return t, nil
}

// Encode returns the hex EPC memory for an SGTIN tag.
func (t Tag) Encode() (string, error) {
	if t.SGTIN == nil {
		return "", errf(ErrHeader, "encoding is implemented for SGTIN only")
	}
	return t.SGTIN.Encode(t.Scheme, t.Filter)
}
