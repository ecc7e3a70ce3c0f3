package framing

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

func TestParseBytes(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []byte
	}{
		{"CR", []byte{'\r'}}, {"LF", []byte{'\n'}}, {"CRLF", []byte("\r\n")}, {"TAB", []byte{'\t'}},
		{"GS", []byte{0x1D}}, {"STX", []byte{0x02}}, {"NUL", []byte{0}}, {"US", []byte{0x1F}}, {"DEL", []byte{0x7F}},
		{"0xA0", []byte{0xA0}}, {"0x0D0A", []byte("\r\n")}, {"0x0D 0x0A", []byte("\r\n")}, {"0XBB", []byte{0xBB}},
		{"\r\n", []byte("\r\n")}, {"<", []byte("<")}, {"Scan:", []byte("Scan:")}, {"ABCDEF", []byte("ABCDEF")},
	} {
		got, err := ParseBytes(tc.in)
		if err != nil || !bytes.Equal(got, tc.want) {
			t.Errorf("ParseBytes(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
	for _, bad := range []string{"", "0x", "0xZZ", "0x123", "CRL", "LFCR", "EOL"} {
		if got, err := ParseBytes(bad); err == nil {
			t.Errorf("ParseBytes(%q) = %q, want an error", bad, got)
		}
	}
	for _, b := range [][]byte{{'\r'}, []byte("\r\n"), {0x1D}, {0xA0}, {0x7E, 0x7E}, {0x7F}} {
		if back, err := ParseBytes(FormatBytes(b)); err != nil || !bytes.Equal(back, b) {
			t.Errorf("FormatBytes(%q) = %q does not parse back: %q, %v", b, FormatBytes(b), back, err)
		}
	}
}

// TestChecksum_CheckValues uses the catalogue check value of each CRC (the
// CRC of "123456789"), so a profile author can trust the names.
func TestChecksum_CheckValues(t *testing.T) {
	in := []byte("123456789")
	for _, tc := range []struct {
		c    Checksum
		want uint16
	}{
		{CRC16MCRF4XX, 0x6F91}, {CRC16X25, 0x906E}, {CRC16Modbus, 0x4B37},
		{Sum8, 0xDD}, {Sum8Twos, 0x23}, {XOR8, 0x31}, {NoChecksum, 0},
	} {
		if got := tc.c.Sum(in); got != tc.want {
			t.Errorf("%v: got %#04x, want %#04x", tc.c, got, tc.want)
		}
		back, ok := ParseChecksum(tc.c.String())
		if !ok || back != tc.c {
			t.Errorf("ParseChecksum(%q) = %v, %v", tc.c.String(), back, ok)
		}
	}
	if c, ok := ParseChecksum("crc16-ccitt-8408"); !ok || c != CRC16MCRF4XX {
		t.Errorf("crc16-ccitt-8408 alias: %v %v", c, ok)
	}
	if _, ok := ParseChecksum("crc32"); ok {
		t.Error("crc32 accepted")
	}
}

func TestNew_Errors(t *testing.T) {
	a0 := Config{Type: TypeBinary, Header: "0xA0", LengthOffset: 1, LengthSize: 1,
		LengthCovers: "after-length-through-checksum", Checksum: "sum8-twos"}
	with := func(f func(*Config)) Config { c := a0; f(&c); return c }
	for _, tc := range []struct {
		cfg       Config
		key, want string
	}{
		{Config{}, "type", "must be one of"},
		{Config{Type: "lines"}, "type", "must be one of"},
		{Config{Type: TypeDelimited}, "terminator", "required"},
		{Config{Type: TypeDelimited, Terminator: "CRL"}, "terminator", "must be one of CR, LF, CRLF, TAB, EOL"},
		{Config{Type: TypeDelimited, Terminator: "CR", Header: "0xA0"}, "header", "not used by type delimited"},
		{Config{Type: TypeDelimited, Terminator: "CR", MaxLen: -1}, "max_len", "must be positive"},
		{Config{Type: TypeDelimited, Terminator: "CR", MaxLen: 1 << 20}, "max_len", "between 1 and"},
		{Config{Type: TypeDelimited, Terminator: "CR", Prefix: "\r"}, "prefix", "must not contain the terminator"},
		{Config{Type: TypeDelimited, Terminator: "EOL", Suffix: "\n"}, "suffix", "must not contain the terminator"},
		{Config{Type: TypeDelimited, Terminator: "CRLF", Prefix: "LF"}, "prefix", "must not occur in the terminator"},
		{Config{Type: TypeDelimited, Terminator: "CR", Prefix: "SOH", Suffix: "0x4101"}, "suffix", "must not contain the prefix"},
		{Config{Type: TypeSTXETX, STX: "ETX"}, "etx", "must differ from stx"},
		{Config{Type: TypeSTXETX, STX: "CRLF"}, "stx", "single byte"},
		{Config{Type: TypeSTXETX, Checksum: "crc16-x25"}, "checksum", "none, xor8, sum8, sum8-twos"},
		{Config{Type: TypeSTXETX, Terminator: "CR"}, "terminator", "not used by type stx-etx"},
		{with(func(c *Config) { c.LengthCovers = "" }), "length_covers", "required"},
		{with(func(c *Config) { c.LengthCovers = "rest" }), "length_covers", "must be one of"},
		{with(func(c *Config) { c.LengthSize = 3 }), "length_size", "1 or 2"},
		{with(func(c *Config) { c.LengthSize = 2 }), "length_endian", "required"},
		{with(func(c *Config) { c.LengthEndian = "big" }), "length_endian", "only for a 2-byte length"},
		{with(func(c *Config) { c.LengthOffset = 0 }), "length_offset", "header's end"},
		{with(func(c *Config) { c.Checksum = "crc32" }), "checksum", "must be one of"},
		{with(func(c *Config) { c.Checksum = "" }), "checksum", "needs a checksum or a trailer"},
		{with(func(c *Config) { c.Checksum = "crc16-modbus" }), "checksum_endian", "required"},
		{with(func(c *Config) { c.ChecksumEndian = "little" }), "checksum_endian", "only for a 2-byte checksum"},
		{with(func(c *Config) { c.ChecksumFrom = 2 }), "checksum_from", "between 0 and length_offset"},
		{with(func(c *Config) { c.Header = "" }), "header", "required unless the checksum is a CRC-16"},
		{with(func(c *Config) { c.Header = "0xZZ" }), "header", "0x-prefixed hex"},
		{with(func(c *Config) { c.Terminator = "CR" }), "terminator", "not used by type binary"},
	} {
		_, err := New(tc.cfg)
		var ce *ConfigError
		if !errors.Is(err, ErrInvalidConfig) || !errors.As(err, &ce) || ce.Key != tc.key || !strings.Contains(ce.Reason, tc.want) {
			t.Errorf("New(%+v) = %v; want key %s and %q", tc.cfg, err, tc.key, tc.want)
		}
	}
}

func TestNew_Defaults(t *testing.T) {
	for _, tc := range []struct {
		cfg  Config
		want int // buffer capacity
	}{
		{Config{Type: TypeDelimited, Terminator: "CR"}, DefaultTextMaxLen + 1},
		{Config{Type: TypeSTXETX}, DefaultTextMaxLen + 3},
		{Config{Type: TypeBinary, Header: "0xA0", LengthOffset: 1, LengthSize: 1,
			LengthCovers: "after-length-through-checksum", Checksum: "sum8-twos"}, DefaultBinaryMaxLen + 3},
	} {
		f := mustNew(t, tc.cfg)
		if _, c := pending(f); c != tc.want {
			t.Errorf("%s: buffer capacity %d, want %d", tc.cfg.Type, c, tc.want)
		}
	}
}
