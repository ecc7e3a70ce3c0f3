package epc

import (
	"strconv"
	"strings"

	"github.com/omnisync/omnisync/shared/gs1"
)

// layout describes a binary coding scheme identified by its header byte.
type layout struct {
	scheme Scheme
	bits   int
	decode func(b []byte, l layout) (Tag, error)
}

// layouts maps EPC header bytes to schemes (TDS Table 14-1). Read-only.
var layouts = map[byte]layout{
	0x30: {SGTIN96, 96, decodeSGTINLayout},
	0x36: {SGTIN198, 198, decodeSGTINLayout},
	0x31: {"sscc-96", 96, decodeSSCC},
	0x32: {"sgln-96", 96, decodeSGLN},
	0x39: {"sgln-195", 195, decodeSGLN},
	0x33: {"grai-96", 96, decodeGRAI},
	0x37: {"grai-170", 170, decodeGRAI},
	0x34: {"giai-96", 96, decodeGIAI},
	0x38: {"giai-202", 202, decodeGIAI},
	0x2D: {"gsrn-96", 96, decodeGSRN},
	0x2E: {"gsrnp-96", 96, decodeGSRN},
	0x2C: {"gdti-96", 96, decodeGDTI},
	0x3E: {"gdti-174", 174, decodeGDTI},
	0x3C: {"cpi-96", 96, decodeCPI},
	0x3F: {"sgcn-96", 96, decodeSGCN},
	0x40: {"itip-110", 110, decodeITIP},
	0x41: {"itip-212", 212, decodeITIP},
	0x35: {"gid-96", 96, decodeGID},
	0x2F: {"usdod-96", 96, decodeUSDOD},
	0x3D: {"cpi-var", 0, decodeUnsupported},
	0x3B: {"adi-var", 0, decodeUnsupported},
}

// Partition tables of TDS section 14 for the other GS1 schemes.
var (
	ssccPartitions = [7]partitionRow{ // also GSRN, GSRNP
		{40, 12, 18, 5}, {37, 11, 21, 6}, {34, 10, 24, 7}, {30, 9, 28, 8},
		{27, 8, 31, 9}, {24, 7, 34, 10}, {20, 6, 38, 11},
	}
	sglnPartitions = [7]partitionRow{ // also GDTI, SGCN
		{40, 12, 1, 0}, {37, 11, 4, 1}, {34, 10, 7, 2}, {30, 9, 11, 3},
		{27, 8, 14, 4}, {24, 7, 17, 5}, {20, 6, 21, 6},
	}
	graiPartitions = [7]partitionRow{
		{40, 12, 4, 0}, {37, 11, 7, 1}, {34, 10, 10, 2}, {30, 9, 14, 3},
		{27, 8, 17, 4}, {24, 7, 20, 5}, {20, 6, 24, 6},
	}
	giai96Partitions = [7]partitionRow{
		{40, 12, 42, 13}, {37, 11, 45, 14}, {34, 10, 48, 15}, {30, 9, 52, 16},
		{27, 8, 55, 17}, {24, 7, 58, 18}, {20, 6, 62, 19},
	}
	// For GIAI-202 the second field is a string: restDigits is its maximum
	// number of characters.
	giai202Partitions = [7]partitionRow{
		{40, 12, 148, 18}, {37, 11, 151, 19}, {34, 10, 154, 20}, {30, 9, 158, 21},
		{27, 8, 161, 22}, {24, 7, 164, 23}, {20, 6, 168, 24},
	}
	cpiPartitions = [7]partitionRow{
		{40, 12, 11, 3}, {37, 11, 14, 4}, {34, 10, 17, 5}, {30, 9, 21, 6},
		{27, 8, 24, 7}, {24, 7, 27, 8}, {20, 6, 31, 9},
	}
)

func decodeUnsupported(_ []byte, l layout) (Tag, error) {
	return Tag{}, errf(ErrHeader, "variable-length scheme "+string(l.scheme)+" is not supported")
}

func decodeSGTINLayout(b []byte, l layout) (Tag, error) { return decodeSGTIN(b, l.scheme) }

// gs1Head reads filter, partition, company prefix and the numeric field
// after it, using the given partition table.
func gs1Head(b []byte, tab *[7]partitionRow, restNumeric bool) (r bitReader, t Tag, row partitionRow, rest string, err error) {
	r = bitReader{b: b, pos: 8}
	t.Filter = int(r.read(3))
	t.Partition = int(r.read(3))
	if t.Partition > 6 {
		return r, t, row, "", errf(ErrPartition, "partition value 7 is reserved")
	}
	row = tab[t.Partition]
	if t.CompanyPrefix, err = readDigits(&r, row.cpBits, row.cpDigits); err != nil {
		return
	}
	if restNumeric {
		rest, err = readDigits(&r, row.restBits, row.restDigits)
	}
	return
}

// finish fills the URIs of a GS1 tag from its URI fields.
func finish(t Tag, l layout, name string, fields ...string) Tag {
	t.Scheme = l.scheme
	esc := make([]string, len(fields))
	for i, f := range fields {
		esc[i] = escapeComponent(f)
	}
	body := strings.Join(esc, ".")
	t.PureURI = "urn:epc:id:" + name + ":" + body
	if t.Filter >= 0 {
		t.TagURI = "urn:epc:tag:" + string(l.scheme) + ":" + strconv.Itoa(t.Filter) + "." + body
	} else {
		t.TagURI = "urn:epc:tag:" + string(l.scheme) + ":" + body
	}
	return t
}

// withCheck appends the GS1 mod-10 check digit.
func withCheck(digits string) string {
	c, _ := gs1.CheckDigit(digits)
	return digits + string(c)
}

func decodeSSCC(b []byte, l layout) (Tag, error) {
	_, t, _, ref, err := gs1Head(b, &ssccPartitions, true)
	if err != nil {
		return Tag{}, err
	}
	t.GS1 = gs1.ElementString{{AI: "00", Value: withCheck(ref[:1] + t.CompanyPrefix + ref[1:])}}
	return finish(t, l, "sscc", t.CompanyPrefix, ref), nil
}

func decodeGSRN(b []byte, l layout) (Tag, error) {
	_, t, _, ref, err := gs1Head(b, &ssccPartitions, true)
	if err != nil {
		return Tag{}, err
	}
	ai, name := "8018", "gsrn"
	if l.scheme == "gsrnp-96" {
		ai, name = "8017", "gsrnp"
	}
	t.GS1 = gs1.ElementString{{AI: ai, Value: withCheck(t.CompanyPrefix + ref)}}
	return finish(t, l, name, t.CompanyPrefix, ref), nil
}

// readSerial reads a numeric serial of n bits or a string serial filling
// the remaining bits of the scheme, depending on the scheme size.
func readSerial(r *bitReader, numericBits, total int) (string, error) {
	if total == 96 {
		return strconv.FormatUint(r.read(numericBits), 10), nil
	}
	return readString(r, total-r.pos)
}

func decodeSGLN(b []byte, l layout) (Tag, error) {
	r, t, _, loc, err := gs1Head(b, &sglnPartitions, true)
	if err != nil {
		return Tag{}, err
	}
	ext, err := readSerial(&r, 41, l.bits)
	if err != nil {
		return Tag{}, err
	}
	t.GS1 = gs1.ElementString{{AI: "414", Value: withCheck(t.CompanyPrefix + loc)}}
	if ext != "0" && ext != "" {
		t.GS1 = append(t.GS1, gs1.AIValue{AI: "254", Value: ext})
	}
	return finish(t, l, "sgln", t.CompanyPrefix, loc, ext), nil
}

func decodeGRAI(b []byte, l layout) (Tag, error) {
	r, t, _, typ, err := gs1Head(b, &graiPartitions, true)
	if err != nil {
		return Tag{}, err
	}
	ser, err := readSerial(&r, 38, l.bits)
	if err != nil {
		return Tag{}, err
	}
	t.GS1 = gs1.ElementString{{AI: "8003", Value: "0" + withCheck(t.CompanyPrefix+typ) + ser}}
	return finish(t, l, "grai", t.CompanyPrefix, typ, ser), nil
}

func decodeGDTI(b []byte, l layout) (Tag, error) {
	r, t, _, typ, err := gs1Head(b, &sglnPartitions, true)
	if err != nil {
		return Tag{}, err
	}
	ser, err := readSerial(&r, 41, l.bits)
	if err != nil {
		return Tag{}, err
	}
	t.GS1 = gs1.ElementString{{AI: "253", Value: withCheck(t.CompanyPrefix+typ) + ser}}
	return finish(t, l, "gdti", t.CompanyPrefix, typ, ser), nil
}

func decodeGIAI(b []byte, l layout) (Tag, error) {
	tab := &giai96Partitions
	if l.bits != 96 {
		tab = &giai202Partitions
	}
	r, t, row, _, err := gs1Head(b, tab, false)
	if err != nil {
		return Tag{}, err
	}
	var ref string
	if l.bits == 96 {
		v := r.read(row.restBits)
		if ref = strconv.FormatUint(v, 10); len(ref) > row.restDigits {
			return Tag{}, errf(ErrPartition, "asset reference exceeds its digit count")
		}
	} else if ref, err = readString(&r, row.restBits); err != nil {
		return Tag{}, err
	}
	t.GS1 = gs1.ElementString{{AI: "8004", Value: t.CompanyPrefix + ref}}
	return finish(t, l, "giai", t.CompanyPrefix, ref), nil
}

func decodeCPI(b []byte, l layout) (Tag, error) {
	r, t, row, _, err := gs1Head(b, &cpiPartitions, false)
	if err != nil {
		return Tag{}, err
	}
	part := strconv.FormatUint(r.read(row.restBits), 10)
	if len(part) > row.restDigits {
		return Tag{}, errf(ErrPartition, "component/part reference exceeds its digit count")
	}
	ser := strconv.FormatUint(r.read(31), 10)
	t.GS1 = gs1.ElementString{{AI: "8010", Value: t.CompanyPrefix + part}, {AI: "8011", Value: ser}}
	return finish(t, l, "cpi", t.CompanyPrefix, part, ser), nil
}

func decodeSGCN(b []byte, l layout) (Tag, error) {
	r, t, _, ref, err := gs1Head(b, &sglnPartitions, true)
	if err != nil {
		return Tag{}, err
	}
	// The serial uses TDS "numeric string" encoding: a leading 1 is
	// prepended so that leading zeros survive as an integer.
	n := strconv.FormatUint(r.read(41), 10)
	if len(n) < 2 || n[0] != '1' || len(n) > 13 {
		return Tag{}, errf(ErrSerial, "bad numeric-string serial")
	}
	ser := n[1:]
	t.GS1 = gs1.ElementString{{AI: "255", Value: withCheck(t.CompanyPrefix+ref) + ser}}
	return finish(t, l, "sgcn", t.CompanyPrefix, ref, ser), nil
}

func decodeITIP(b []byte, l layout) (Tag, error) {
	r, t, _, ir, err := gs1Head(b, &sgtinPartitions, true)
	if err != nil {
		return Tag{}, err
	}
	piece, err := readDigits(&r, 7, 2)
	if err != nil {
		return Tag{}, err
	}
	total, err := readDigits(&r, 7, 2)
	if err != nil {
		return Tag{}, err
	}
	var ser string
	if l.bits == 110 {
		ser = strconv.FormatUint(r.read(38), 10)
	} else if ser, err = readString(&r, 140); err != nil {
		return Tag{}, err
	}
	gtin := withCheck(ir[:1] + t.CompanyPrefix + ir[1:])
	t.GS1 = gs1.ElementString{{AI: "8006", Value: gtin + piece + total}, {AI: "21", Value: ser}}
	return finish(t, l, "itip", t.CompanyPrefix, ir, piece, total, ser), nil
}

func decodeGID(b []byte, l layout) (Tag, error) {
	r := bitReader{b: b, pos: 8}
	m := strconv.FormatUint(r.read(28), 10)
	c := strconv.FormatUint(r.read(24), 10)
	s := strconv.FormatUint(r.read(36), 10)
	return finish(Tag{Filter: -1}, l, "gid", m, c, s), nil
}

func decodeUSDOD(b []byte, l layout) (Tag, error) {
	r := bitReader{b: b, pos: 8}
	t := Tag{Filter: int(r.read(4))}
	var cage []byte
	for i := 0; i < 6; i++ {
		c := byte(r.read(8))
		if c != ' ' && !(c >= 'A' && c <= 'Z') && !(c >= '0' && c <= '9') {
			return Tag{}, errf(ErrSerial, "bad CAGE/DoDAAC character")
		}
		cage = append(cage, c)
	}
	code := strings.TrimLeft(string(cage), " ")
	ser := strconv.FormatUint(r.read(36), 10)
	return finish(t, l, "usdod", code, ser), nil
}
