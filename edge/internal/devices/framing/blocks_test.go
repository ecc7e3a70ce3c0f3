package framing

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

// Framers built the way the shipped profiles build them (see
// firmware-configs/); the profile package checks the real files.
func lineScanner(t testing.TB) Framer {
	return mustNew(t, Config{Type: TypeDelimited, Terminator: "EOL", MaxLen: 32})
}

func prefixScanner(t testing.TB) Framer {
	return mustNew(t, Config{Type: TypeDelimited, Terminator: "CR", Prefix: "SOH", Suffix: "ETB", MaxLen: 32})
}

func stxScanner(t testing.TB) Framer {
	return mustNew(t, Config{Type: TypeSTXETX, Checksum: "xor8", MaxLen: 32})
}

func a0Reader(t testing.TB) Framer {
	return mustNew(t, Config{Type: TypeBinary, Header: "0xA0", LengthOffset: 1, LengthSize: 1,
		LengthCovers: "after-length-through-checksum", Checksum: "sum8-twos", MaxLen: 64})
}

func bbReader(t testing.TB) Framer {
	return mustNew(t, Config{Type: TypeBinary, Header: "0xBB", LengthOffset: 3, LengthSize: 2, LengthEndian: "big",
		LengthCovers: "after-length-before-checksum", Checksum: "sum8", ChecksumFrom: 1, Trailer: "0x7E", MaxLen: 64})
}

func crcReader(t testing.TB) Framer {
	return mustNew(t, Config{Type: TypeBinary, LengthSize: 1, LengthCovers: "after-length-through-checksum",
		Checksum: "crc16-mcrf4xx", ChecksumEndian: "little", MaxLen: 64})
}

func mustNew(t testing.TB, c Config) Framer {
	t.Helper()
	f, err := New(c)
	if err != nil {
		t.Fatalf("New(%+v): %v", c, err)
	}
	return f
}

// wire frames payload with a fresh framer from mk.
func wire(t testing.TB, mk func(testing.TB) Framer, payload string) []byte {
	t.Helper()
	b, err := mk(t).AppendFrame(nil, []byte(payload))
	if err != nil {
		t.Fatalf("AppendFrame(%q): %v", payload, err)
	}
	return b
}

type blockCase struct {
	name string
	in   [][]byte // Flush-separated segments
	want string   // merged events, rendered
}

func runBlockCases(t *testing.T, mk func(testing.TB) Framer, cases []blockCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			evs := checkChunking(t, func() Framer { return mk(t) }, tc.in)
			if got := render(merged(evs), true); got != tc.want {
				t.Errorf("got:\n%s\nwant:\n%s", got, tc.want)
			}
		})
	}
}

// hexFrame renders a frame line as render(..., true) does.
func hexFrame(p []byte) string { return "frame " + spacedHex(p) + "\n" }

func TestDelimited_Cases(t *testing.T) {
	a := []byte("]E04006381333931")
	b := []byte("]C1011234567890123110LOT7")
	runBlockCases(t, lineScanner, []blockCase{
		{"split", [][]byte{cat(a[:3], a[3:], []byte("\r\n"))}, hexFrame(a)},
		{"merged", [][]byte{cat(a, []byte("\r\n"), b, []byte("\n"), a, []byte("\r"))}, hexFrame(a) + hexFrame(b) + hexFrame(a)},
		{"blank lines are not rejects", [][]byte{[]byte("\r\n\n\r\r\n")}, ""},
		{"oversize then good", [][]byte{cat(bytes.Repeat([]byte("9"), 33), []byte("\r\n"), a, []byte("\r\n"))},
			"reject oversize 34\n" + hexFrame(a)},
		{"partial line flushed", [][]byte{a[:5], cat(a, []byte("\r"))}, "reject truncated 5\n" + hexFrame(a)},
	})
	runBlockCases(t, prefixScanner, []blockCase{
		{"garbage before prefix", [][]byte{cat([]byte("\x00\xffzz\x01"), a, []byte("\x17\r"))}, "reject garbage 4\n" + hexFrame(a)},
		{"missing suffix", [][]byte{cat([]byte("\x01"), a, []byte("\r\x01"), a, []byte("\x17\r"))},
			"reject bad-trailer 18\n" + hexFrame(a)},
		{"new prefix truncates", [][]byte{cat([]byte("\x01]E0\x01"), a, []byte("\x17\r"))}, "reject truncated 4\n" + hexFrame(a)},
		{"oversize keeps the next prefix", [][]byte{cat([]byte("\x01"), bytes.Repeat([]byte("x"), 40), []byte("\x01"), a, []byte("\x17\r"))},
			"reject oversize 41\n" + hexFrame(a)},
	})
}

func TestSTXETX_Cases(t *testing.T) {
	a := []byte("]E04006381333931")
	good := wire(t, stxScanner, string(a))
	bad := bytes.Clone(good)
	bad[len(bad)-1] ^= 0x40
	runBlockCases(t, stxScanner, []blockCase{
		{"flushed mid-frame", [][]byte{good[:1], good[1:]}, "reject truncated 1\nreject garbage 18\n"},
		{"split in one segment", [][]byte{cat(good[:7], good[7:])}, hexFrame(a)},
		{"merged", [][]byte{cat(good, good, good)}, hexFrame(a) + hexFrame(a) + hexFrame(a)},
		{"garbage", [][]byte{cat([]byte("\r\n\x03noise"), good)}, "reject garbage 8\n" + hexFrame(a)},
		{"bad BCC", [][]byte{cat(bad, good)}, "reject bad-checksum 19\n" + hexFrame(a)},
		{"oversize", [][]byte{cat([]byte("\x02"), bytes.Repeat([]byte("x"), 33), []byte("\x03\x7b"), good)},
			"reject oversize 36\n" + hexFrame(a)},
	})
}

func TestBinary_Cases(t *testing.T) {
	a0 := mustHex(t, "A0 13 01 89 1D 30 00 30 74 25 7B F7 19 4E 40 00 00 1A 85 45 B0")
	a0bad := bytes.Clone(a0)
	a0bad[10] ^= 1
	runBlockCases(t, a0Reader, []blockCase{
		{"split", [][]byte{cat(a0[:1], a0[1:2], a0[2:])}, hexFrame(a0[1:20])},
		{"merged", [][]byte{cat(a0, a0)}, hexFrame(a0[1:20]) + hexFrame(a0[1:20])},
		{"garbage", [][]byte{cat(mustHex(t, "00 01 02"), a0)}, "reject garbage 3\n" + hexFrame(a0[1:20])},
		{"bad checksum", [][]byte{cat(a0bad, a0)}, "reject bad-checksum 21\n" + hexFrame(a0[1:20])},
		// The garbage header's "length" (0x13) covers the real frame's start.
		{"frame inside a bad one", [][]byte{cat(mustHex(t, "A0 13 00"), a0)}, "reject bad-checksum 3\n" + hexFrame(a0[1:20])},
		{"oversize", [][]byte{cat(mustHex(t, "A0 FE"), a0)}, "reject oversize 2\n" + hexFrame(a0[1:20])},
		{"bad length", [][]byte{cat(mustHex(t, "A0 00"), a0)}, "reject bad-length 2\n" + hexFrame(a0[1:20])},
		{"truncated by flush", [][]byte{a0[:9], a0}, "reject truncated 9\n" + hexFrame(a0[1:20])},
	})
	bb := mustHex(t, "BB 02 22 00 11 C9 34 00 30 75 1F EB 70 5C 59 04 E3 D5 0D 70 3A 76 EF 7E")
	bbTrailer := bytes.Clone(bb)
	bbTrailer[len(bb)-1] = 0x7F
	runBlockCases(t, bbReader, []blockCase{
		{"split in the length", [][]byte{cat(bb[:4], bb[4:])}, hexFrame(bb[1:22])},
		{"merged", [][]byte{cat(bb, bb)}, hexFrame(bb[1:22]) + hexFrame(bb[1:22])},
		{"bad trailer", [][]byte{cat(bbTrailer, bb)}, "reject bad-trailer 24\n" + hexFrame(bb[1:22])},
		{"garbage with trailer bytes", [][]byte{cat(mustHex(t, "7E 7E 7E"), bb)}, "reject garbage 3\n" + hexFrame(bb[1:22])},
	})
	cf := mustHex(t, "12 00 EE 00 0C 30 74 25 7B F7 19 4E 40 00 00 1A 85 CB 07")
	runBlockCases(t, crcReader, []blockCase{
		{"merged", [][]byte{cat(cf, cf)}, hexFrame(cf[:17]) + hexFrame(cf[:17])},
		{"noise", [][]byte{cat(mustHex(t, "FF 00 03"), cf)}, "reject oversize 1\nreject bad-length 1\nreject bad-checksum 1\n" + hexFrame(cf[:17])},
	})
}

func TestAppendFrame_RoundTrip(t *testing.T) {
	for name, mk := range map[string]func(testing.TB) Framer{
		"line": lineScanner, "prefix": prefixScanner, "stx": stxScanner, "a0": a0Reader, "bb": bbReader, "crc": crcReader,
	} {
		t.Run(name, func(t *testing.T) {
			payload := []byte("\x00\x01\x02]E04006381333931 \x1d,")
			if name == "line" || name == "prefix" || name == "stx" {
				payload = []byte("]d2010950600013435210AB\x1d21X")
			}
			f := mk(t)
			w, err := f.AppendFrame([]byte("keep"), payload)
			if err != nil || !bytes.HasPrefix(w, []byte("keep")) {
				t.Fatalf("AppendFrame: %q, %v", w, err)
			}
			got := runChunks(t, mk(t), [][]byte{w[4:]}, 0)
			fr := frames(got)
			if len(got) != 1 || len(fr) != 1 {
				t.Fatalf("re-framed into %v", got)
			}
			if name == "a0" || name == "bb" || name == "crc" {
				return // the length field was rewritten; the fuzz targets check the rest
			}
			if fr[0] != string(payload) {
				t.Fatalf("got %q, want %q", fr[0], payload)
			}
		})
	}
}

func TestAppendFrame_Unframeable(t *testing.T) {
	for _, tc := range []struct {
		mk      func(testing.TB) Framer
		payload string
	}{
		{lineScanner, ""}, {lineScanner, "a\rb"}, {lineScanner, "a\n"}, {lineScanner, strings.Repeat("x", 33)},
		{prefixScanner, "a\x01b"}, {prefixScanner, "a\rb"},
		{stxScanner, "a\x02"}, {stxScanner, "\x03"},
		{a0Reader, ""}, {a0Reader, strings.Repeat("x", 65)},
		{bbReader, "xx"},
	} {
		if b, err := tc.mk(t).AppendFrame(nil, []byte(tc.payload)); !errors.Is(err, ErrUnframeable) || len(b) != 0 {
			t.Errorf("AppendFrame(%q) = %q, %v; want ErrUnframeable", tc.payload, b, err)
		}
	}
}

// TestFeed_ZeroAllocs guards the hot path: a framer that allocates per
// frame costs an agent with many RFID readers real GC time.
func TestFeed_ZeroAllocs(t *testing.T) {
	for name, tc := range map[string]struct {
		mk func(testing.TB) Framer
		in []byte
	}{
		"line": {lineScanner, []byte("]E04006381333931\r\nxx\r\n]E0400638")},
		"stx":  {stxScanner, cat(wire(t, stxScanner, "]E04006381333931"), []byte("junk\x02]E0"))},
		"a0":   {a0Reader, mustHex(t, "A0 13 01 89 1D 30 00 30 74 25 7B F7 19 4E 40 00 00 1A 85 45 B0 A0 13 00 A0 13 01 89")},
		"bb":   {bbReader, mustHex(t, "BB 02 22 00 11 C9 34 00 30 75 1F EB 70 5C 59 04 E3 D5 0D 70 3A 76 EF 7E BB 02")},
	} {
		f := tc.mk(t)
		emit := func([]byte) {}
		reject := func(Reject, int) {}
		if n := testing.AllocsPerRun(200, func() { f.Feed(tc.in, emit, reject) }); n != 0 {
			t.Errorf("%s: %v allocations per Feed", name, n)
		}
	}
}

func TestFlush_LeavesFramerAsNew(t *testing.T) {
	a0 := mustHex(t, "A0 13 01 89 1D 30 00 30 74 25 7B F7 19 4E 40 00 00 1A 85 45 B0")
	f := a0Reader(t)
	r := &recorder{t: t, f: f}
	r.feed(a0[:10])
	r.flush()
	r.feed(a0)
	if got := render(r.events, true); got != "reject truncated 10 (incomplete frame)\n"+hexFrame(a0[1:20]) {
		t.Fatalf("got:\n%s", got)
	}
}
