package epc

import (
	"strconv"
	"strings"

	"github.com/omnisync/omnisync/shared/gs1"
)

// Scheme names an EPC binary coding scheme, as in tag URIs.
type Scheme string

// Coding schemes.
const (
	SGTIN96  Scheme = "sgtin-96"
	SGTIN198 Scheme = "sgtin-198"
)

const (
	headerSGTIN96  = 0x30
	headerSGTIN198 = 0x36
	sgtin96Bits    = 96
	sgtin198Bits   = 198
	maxSerial96    = 1<<38 - 1
)

// partitionRow gives, for one partition value, the bit and digit sizes of
// the company prefix and of the field that follows it.
type partitionRow struct{ cpBits, cpDigits, restBits, restDigits int }

// sgtinPartitions is TDS Table 14-2: company prefix and indicator/item
// reference always total 44 bits and 13 digits.
var sgtinPartitions = [7]partitionRow{
	{40, 12, 4, 1}, {37, 11, 7, 2}, {34, 10, 10, 3}, {30, 9, 14, 4},
	{27, 8, 17, 5}, {24, 7, 20, 6}, {20, 6, 24, 7},
}

// SGTIN is a serialised GTIN as the EPC pure identity sees it.
type SGTIN struct {
	// CompanyPrefix is the GS1 Company Prefix, 6 to 12 digits.
	CompanyPrefix string
	// ItemRef is the indicator digit followed by the item reference; it
	// has 13 - len(CompanyPrefix) digits.
	ItemRef string
	// Serial is the serial number, unescaped (CSET 82, 1-20 characters).
	Serial string
}

// validate checks the field shapes of an SGTIN.
func (s SGTIN) validate() error {
	if len(s.CompanyPrefix) < 6 || len(s.CompanyPrefix) > 12 || !allDigits(s.CompanyPrefix) {
		return errf(ErrURI, "company prefix must be 6 to 12 digits")
	}
	if len(s.CompanyPrefix)+len(s.ItemRef) != 13 || !allDigits(s.ItemRef) {
		return errf(ErrURI, "company prefix and item reference must total 13 digits")
	}
	if s.Serial == "" || len(s.Serial) > 20 {
		return errf(ErrSerial, "serial must have 1 to 20 characters")
	}
	for i := 0; i < len(s.Serial); i++ {
		if !isCset82(s.Serial[i]) {
			return errf(ErrSerial, "serial character outside the GS1 character set")
		}
	}
	return nil
}

// GTIN returns the GTIN-14.
func (s SGTIN) GTIN() string {
	body := s.ItemRef[:1] + s.CompanyPrefix + s.ItemRef[1:]
	c, _ := gs1.CheckDigit(body)
	return body + string(c)
}

// ShortGTIN returns the GTIN as GTIN-8, -12, -13 or -14 (n = 8, 12, 13 or
// 14), failing with ErrGTIN when the dropped leading digits are not zero.
func (s SGTIN) ShortGTIN(n int) (string, error) {
	g := s.GTIN()
	switch n {
	case 8, 12, 13, 14:
	default:
		return "", errf(ErrGTIN, "GTIN length must be 8, 12, 13 or 14")
	}
	if strings.Trim(g[:14-n], "0") != "" {
		return "", errf(ErrGTIN, "GTIN cannot be shortened to "+strconv.Itoa(n)+" digits")
	}
	return g[14-n:], nil
}

// ElementString returns the GS1 element string (01)GTIN(21)serial.
func (s SGTIN) ElementString() gs1.ElementString {
	return gs1.ElementString{{AI: "01", Value: s.GTIN()}, {AI: "21", Value: s.Serial}}
}

// PureURI returns urn:epc:id:sgtin:CompanyPrefix.ItemRef.Serial.
func (s SGTIN) PureURI() string {
	return "urn:epc:id:sgtin:" + s.CompanyPrefix + "." + s.ItemRef + "." + escapeComponent(s.Serial)
}

// TagURI returns the tag URI for the given scheme and filter; it fails when
// the serial or filter cannot be encoded in that scheme.
func (s SGTIN) TagURI(scheme Scheme, filter int) (string, error) {
	if err := s.encodable(scheme, filter); err != nil {
		return "", err
	}
	return "urn:epc:tag:" + string(scheme) + ":" + strconv.Itoa(filter) + "." + s.CompanyPrefix + "." +
		s.ItemRef + "." + escapeComponent(s.Serial), nil
}

func (s SGTIN) encodable(scheme Scheme, filter int) error {
	if err := s.validate(); err != nil {
		return err
	}
	if filter < 0 || filter > 7 {
		return errf(ErrFilter, "filter must be 0 to 7")
	}
	switch scheme {
	case SGTIN96:
		if !allDigits(s.Serial) || (len(s.Serial) > 1 && s.Serial[0] == '0') {
			return errf(ErrSerial, "SGTIN-96 serial must be a number without leading zeros")
		}
		if v, err := strconv.ParseUint(s.Serial, 10, 64); err != nil || v > maxSerial96 {
			return errf(ErrSerial, "SGTIN-96 serial must be below 2^38")
		}
	case SGTIN198:
	default:
		return errf(ErrHeader, "not an SGTIN scheme: "+string(scheme))
	}
	return nil
}

// Encode returns the EPC memory for the SGTIN as upper-case hex: 24 digits
// for SGTIN-96, 52 for SGTIN-198 (see the package notes on padding).
func (s SGTIN) Encode(scheme Scheme, filter int) (string, error) {
	if err := s.encodable(scheme, filter); err != nil {
		return "", err
	}
	part := 12 - len(s.CompanyPrefix)
	row := sgtinPartitions[part]
	cp, _ := strconv.ParseUint(s.CompanyPrefix, 10, 64)
	ir, _ := strconv.ParseUint(s.ItemRef, 10, 64)
	var w bitWriter
	header := uint64(headerSGTIN96)
	if scheme == SGTIN198 {
		header = headerSGTIN198
	}
	w.write(header, 8)
	w.write(uint64(filter), 3)
	w.write(uint64(part), 3)
	w.write(cp, row.cpBits)
	w.write(ir, row.restBits)
	if scheme == SGTIN96 {
		v, _ := strconv.ParseUint(s.Serial, 10, 64)
		w.write(v, 38)
	} else {
		writeString(&w, s.Serial, 140)
	}
	return w.hex(), nil
}

// writeString writes 7-bit characters, zero-padded to bits.
func writeString(w *bitWriter, s string, bits int) {
	for i := 0; i < len(s); i++ {
		w.write(uint64(s[i]), 7)
	}
	w.write(0, bits-7*len(s))
}

// readString reads up to bits/7 seven-bit characters, stopping at the first
// NUL; everything after it must be zero and every character CSET 82.
func readString(r *bitReader, bits int) (string, error) {
	var b strings.Builder
	end := r.pos + bits
	for r.pos+7 <= end {
		c := byte(r.read(7))
		if c == 0 {
			break
		}
		if !isCset82(c) {
			return "", errf(ErrSerial, "character outside the GS1 character set")
		}
		b.WriteByte(c)
	}
	for r.pos < end {
		if r.read(1) != 0 {
			return "", errf(ErrSerial, "non-zero bits after the string terminator")
		}
	}
	return b.String(), nil
}

// readDigits reads a bits-wide integer that must fit in digits decimal
// digits, returned zero-padded.
func readDigits(r *bitReader, bits, digits int) (string, error) {
	v := r.read(bits)
	if digits == 0 {
		if v != 0 {
			return "", errf(ErrPartition, "field value exceeds its digit count")
		}
		return "", nil
	}
	s := strconv.FormatUint(v, 10)
	if len(s) > digits {
		return "", errf(ErrPartition, "field value exceeds its digit count")
	}
	return strings.Repeat("0", digits-len(s)) + s, nil
}

// decodeSGTIN decodes SGTIN-96 or SGTIN-198 EPC memory.
func decodeSGTIN(b []byte, scheme Scheme) (Tag, error) {
	r := bitReader{b: b, pos: 8}
	t := Tag{Scheme: scheme}
	t.Filter = int(r.read(3))
	t.Partition = int(r.read(3))
	if t.Partition > 6 {
		return Tag{}, errf(ErrPartition, "partition value 7 is reserved")
	}
	row := sgtinPartitions[t.Partition]
	var s SGTIN
	var err error
	if s.CompanyPrefix, err = readDigits(&r, row.cpBits, row.cpDigits); err != nil {
		return Tag{}, err
	}
	if s.ItemRef, err = readDigits(&r, row.restBits, row.restDigits); err != nil {
		return Tag{}, err
	}
	if scheme == SGTIN96 {
		s.Serial = strconv.FormatUint(r.read(38), 10)
	} else if s.Serial, err = readString(&r, 140); err != nil {
		return Tag{}, err
	} else if s.Serial == "" {
		return Tag{}, errf(ErrSerial, "empty serial")
	}
	t.CompanyPrefix = s.CompanyPrefix
	t.SGTIN = &s
	t.PureURI = s.PureURI()
	t.TagURI, _ = s.TagURI(scheme, t.Filter)
	t.GS1 = s.ElementString()
	return t, nil
}

// SGTINFromGTIN builds an SGTIN from any GTIN form (8, 12, 13 or 14 digits;
// spaces and hyphens ignored), the length of its GS1 Company Prefix and a
// serial. GTIN-8s use the TDS convention of a zero-padded prefix.
func SGTINFromGTIN(gtin string, companyPrefixLen int, serial string) (SGTIN, error) {
	g, err := gs1.NormalizeGTIN(gtin)
	if err != nil {
		return SGTIN{}, errf(ErrGTIN, err.Error())
	}
	if companyPrefixLen < 6 || companyPrefixLen > 12 {
		return SGTIN{}, errf(ErrGTIN, "company prefix length must be 6 to 12")
	}
	s := SGTIN{
		CompanyPrefix: g[1 : 1+companyPrefixLen],
		ItemRef:       g[:1] + g[1+companyPrefixLen:13],
		Serial:        serial,
	}
	return s, s.validate()
}

// SGTINFromElementString builds an SGTIN from GS1 data carrying (01) and
// (21), given the company prefix length.
func SGTINFromElementString(es gs1.ElementString, companyPrefixLen int) (SGTIN, error) {
	g, ok1 := es.Get("01")
	ser, ok2 := es.Get("21")
	if !ok1 || !ok2 {
		return SGTIN{}, errf(ErrGTIN, "element string needs (01) and (21)")
	}
	return SGTINFromGTIN(g, companyPrefixLen, ser)
}

// ParseSGTINURI parses a pure-identity URI urn:epc:id:sgtin:CP.ItemRef.Serial.
func ParseSGTINURI(uri string) (SGTIN, error) {
	rest, ok := strings.CutPrefix(uri, "urn:epc:id:sgtin:")
	if !ok {
		return SGTIN{}, errf(ErrURI, "not an SGTIN pure-identity URI")
	}
	return parseSGTINFields(rest)
}

func parseSGTINFields(rest string) (SGTIN, error) {
	f := strings.SplitN(rest, ".", 3)
	if len(f) != 3 {
		return SGTIN{}, errf(ErrURI, "SGTIN URI needs three fields")
	}
	serial, err := unescapeComponent(f[2])
	if err != nil {
		return SGTIN{}, err
	}
	s := SGTIN{CompanyPrefix: f[0], ItemRef: f[1], Serial: serial}
	return s, s.validate()
}
