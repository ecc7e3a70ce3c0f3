package framing

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// The fuzz targets feed arbitrary bytes, in arbitrary chunks, to framers of
// several configurations (sel picks one) and check what the package
// promises:
//   - no panic, and the buffer never exceeds its capacity (recorder);
//   - chunking does not change the frames or the rejects (kind and bytes);
//   - every byte is accounted for: rejected bytes plus the wire size of the
//     emitted frames make up the input (the blank lines an EOL framer skips
//     are the only bytes reported nowhere);
//   - every frame is at most MaxLen and re-frames (AppendFrame, then Feed)
//     into exactly itself.
//
// Seeds are in testdata/fuzz/<target>/ and in the f.Add calls.

var delimitedConfigs = []Config{
	{Type: TypeDelimited, Terminator: "EOL", MaxLen: 32},
	{Type: TypeDelimited, Terminator: "CR", Prefix: "SOH", Suffix: "ETB", MaxLen: 16},
	{Type: TypeDelimited, Terminator: "CRLF", Prefix: "0x4142", Suffix: "Z", MaxLen: 8},
	{Type: TypeDelimited, Terminator: "TAB", MaxLen: 4},
	{Type: TypeDelimited, Terminator: "\n\n", MaxLen: 8}, // a terminator that overlaps itself
	{Type: TypeDelimited, Terminator: "EOL", Prefix: "0x02", MaxLen: 8},
}

var stxetxConfigs = []Config{
	{Type: TypeSTXETX, MaxLen: 32},
	{Type: TypeSTXETX, Checksum: "xor8", MaxLen: 16},
	{Type: TypeSTXETX, STX: "<", ETX: ">", Checksum: "sum8-twos", MaxLen: 4},
}

var binaryConfigs = []Config{
	{Type: TypeBinary, Header: "0xA0", LengthOffset: 1, LengthSize: 1, LengthCovers: "after-length-through-checksum",
		Checksum: "sum8-twos", MaxLen: 64},
	{Type: TypeBinary, Header: "0xBB", LengthOffset: 3, LengthSize: 2, LengthEndian: "big",
		LengthCovers: "after-length-before-checksum", Checksum: "sum8", ChecksumFrom: 1, Trailer: "0x7E", MaxLen: 64},
	{Type: TypeBinary, LengthSize: 1, LengthCovers: "after-length-through-checksum", Checksum: "crc16-mcrf4xx",
		ChecksumEndian: "little", MaxLen: 32},
	{Type: TypeBinary, Header: "0xAA55", LengthOffset: 2, LengthSize: 2, LengthEndian: "little", LengthCovers: "whole-frame",
		Checksum: "crc16-modbus", ChecksumEndian: "big", MaxLen: 16},
	{Type: TypeBinary, Header: "0x7E", LengthOffset: 1, LengthSize: 1, LengthCovers: "after-length-through-trailer",
		LengthAdjust: -1, Checksum: "xor8", ChecksumFrom: 1, Trailer: "0x7E", MaxLen: 8},
	{Type: TypeBinary, Header: "0x02", LengthOffset: 2, LengthSize: 1, LengthCovers: "after-length-before-checksum",
		Checksum: "crc16-x25", ChecksumEndian: "little", Trailer: "0x0D0A", MaxLen: 8},
}

func FuzzDelimited(f *testing.F) {
	for _, s := range []string{
		"]E04006381333931\r\n]E0978\r\n\r\n",
		"\x01400638\x17\r~\x01ab\x01cd\x17\r\x01",
		"ABxZ\r\nABAByyZ\r\nABAB\r\n",
		"1\t22\t333\t4444\t55555\t\t",
		"a\n\n\nb\n\nc\n",
		"\x02ok\r\x02too long line\n\x02",
	} {
		f.Add(uint8(0), uint8(0), []byte(s))
		f.Add(uint8(1), uint8(7), []byte(s))
	}
	fuzzFraming(f, delimitedConfigs)
}

func FuzzSTXETX(f *testing.F) {
	for _, s := range []string{
		"\x02]E04006381333931\x03\x1b\x02A@\x03\x02",
		"xx\x02abc\x02def\x03\x00\x03\x02\x03",
		"<ab>\x00<abcdef>\xff<x>",
	} {
		f.Add(uint8(0), uint8(0), []byte(s))
		f.Add(uint8(2), uint8(3), []byte(s))
	}
	fuzzFraming(f, stxetxConfigs)
}

func FuzzBinary(f *testing.F) {
	for _, h := range []string{
		"A0 13 01 89 1D 30 00 30 74 25 7B F7 19 4E 40 00 00 1A 85 45 B0 A0 04 01 89 22 B0 A0 06 A0 04 01 89 22 B0",
		"BB 02 22 00 11 C9 34 00 30 75 1F EB 70 5C 59 04 E3 D5 0D 70 3A 76 EF 7E BB 01 FF 00 01 15 16 7E",
		"12 00 EE 00 0C 30 74 25 7B F7 19 4E 40 00 00 1A 85 CB 07 05 FF 00",
	} {
		f.Add(uint8(0), uint8(0), mustHex(f, h))
		f.Add(uint8(1), uint8(9), mustHex(f, h))
		f.Add(uint8(2), uint8(5), mustHex(f, h))
	}
	fuzzFraming(f, binaryConfigs)
}

func fuzzFraming(f *testing.F, configs []Config) {
	for _, c := range configs {
		mustNew(f, c)
	}
	f.Fuzz(func(t *testing.T, sel, split uint8, data []byte) {
		cfg := configs[int(sel)%len(configs)]
		mk := func() Framer { return mustNew(t, cfg) }
		whole := runChunks(t, mk(), [][]byte{data}, 0)

		r := &recorder{t: t, f: mk()}
		for p, x := data, uint64(split)<<32|uint64(len(data))|1; len(p) > 0; {
			x ^= x << 13 // xorshift64: reproducible chunk sizes
			x ^= x >> 7
			x ^= x << 17
			n := min(int(x%97)+1, len(p))
			r.feed(p[:n])
			p = p[n:]
		}
		r.flush()
		if got, want := render(merged(r.events), true), render(merged(whole), true); got != want {
			t.Fatalf("chunked:\n%s\nwhole:\n%s", got, want)
		}

		maxLen, eol := configMaxLen(cfg), cfg.Terminator == "EOL"
		accounted := 0
		for _, e := range whole {
			if !e.isFrame() {
				accounted += e.n
				continue
			}
			if len(e.frame) > maxLen || len(e.frame) == 0 {
				t.Fatalf("frame of %d bytes, max_len %d", len(e.frame), maxLen)
			}
			w, err := mk().AppendFrame(nil, []byte(e.frame))
			if err != nil {
				t.Fatalf("emitted frame %q cannot be re-framed: %v", e.frame, err)
			}
			accounted += len(w)
			if eol {
				accounted-- // AppendFrame writes CRLF; the input may have had CR or LF alone
			}
			back := runChunks(t, mk(), [][]byte{w}, 0)
			if len(back) != 1 || back[0].frame != e.frame || !back[0].isFrame() {
				t.Fatalf("frame %q re-framed as %q into %v", e.frame, w, back)
			}
		}
		if accounted > len(data) || (!eol && accounted != len(data)) {
			t.Fatalf("%d bytes accounted for, %d fed", accounted, len(data))
		}
	})
}

func configMaxLen(c Config) int {
	switch {
	case c.MaxLen > 0:
		return c.MaxLen
	case c.Type == TypeBinary:
		return DefaultBinaryMaxLen
	}
	return DefaultTextMaxLen
}

// TestFuzzSeedsPresent guards the checked-in seed corpora (go test runs
// them as regression inputs of the targets above).
func TestFuzzSeedsPresent(t *testing.T) {
	for _, target := range []string{"FuzzDelimited", "FuzzSTXETX", "FuzzBinary"} {
		seeds, err := filepath.Glob("testdata/fuzz/" + target + "/*")
		if err != nil || len(seeds) == 0 {
			t.Errorf("%s: no seed corpus in testdata/fuzz (%v)", target, err)
		}
		for _, s := range seeds {
			b, err := os.ReadFile(s)
			if err != nil || !bytes.HasPrefix(b, []byte("go test fuzz v1\n")) {
				t.Errorf("%s: not a corpus file: %v", s, err)
			}
		}
	}
}
