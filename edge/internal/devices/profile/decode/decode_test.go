package decode

import (
	"encoding/hex"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/omnisync/omnisync/edge/internal/devices/framing"
	"github.com/omnisync/omnisync/edge/internal/devices/rfid"
)

// The frames below are written as a reader sends them, with the checksums
// computed by hand (A0: two's complement of the byte sum from Head; BB: low
// byte of the sum from Type; tag CRC: CRC-16/GENIBUS over PC+EPC). The
// framers built like the shipped profiles must accept them, so a wrong
// checksum in this file fails the test rather than being decoded.

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// payloadOf frames one wire frame with cfg and returns its payload.
func payloadOf(t *testing.T, cfg framing.Config, wire []byte) []byte {
	t.Helper()
	f, err := framing.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	var got [][]byte
	fail := func(r framing.Reject, n int) { t.Fatalf("frame % X rejected: %v (%d bytes)", wire, r, n) }
	f.Feed(wire, func(p []byte) { got = append(got, append([]byte(nil), p...)) }, fail)
	f.Flush(func(p []byte) { got = append(got, p) }, fail)
	if len(got) != 1 {
		t.Fatalf("frame % X: %d frames", wire, len(got))
	}
	return got[0]
}

var a0Framing = framing.Config{Type: "binary", Header: "0xA0", LengthOffset: 1, LengthSize: 1,
	LengthCovers: "after-length-through-checksum", Checksum: "sum8-twos"}

var bbFraming = framing.Config{Type: "binary", Header: "0xBB", LengthOffset: 3, LengthSize: 2, LengthEndian: "big",
	LengthCovers: "after-length-before-checksum", Checksum: "sum8", ChecksumFrom: 1, Trailer: "0x7E"}

type decodeCase struct {
	name string
	wire string // the whole frame as the reader sends it
	want []rfid.TagRead
	err  error
}

func runDecodeCases(t *testing.T, cfg framing.Config, fn Func, cases []decodeCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			prev := []rfid.TagRead{{EPC: "KEEP"}}
			got, err := fn(payloadOf(t, cfg, unhex(t, tc.wire)), prev)
			if tc.err != nil {
				if !errors.Is(err, tc.err) {
					t.Fatalf("err = %v, want %v", err, tc.err)
				}
			} else if err != nil {
				t.Fatalf("err = %v", err)
			}
			if !reflect.DeepEqual(got[:1], prev) {
				t.Fatalf("dst was not appended to: %v", got)
			}
			if got := got[1:]; !reflect.DeepEqual(got, tc.want) && !(len(got) == 0 && len(tc.want) == 0) {
				t.Fatalf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestA0Inventory(t *testing.T) {
	runDecodeCases(t, a0Framing, A0Inventory, []decodeCase{
		{"SGTIN-96 on antenna 2", "A0 13 01 89 1D 30 00 30 74 25 7B F7 19 4E 40 00 00 1A 85 45 B0",
			[]rfid.TagRead{{EPC: "3074257BF7194E4000001A85", Antenna: 2, RSSI: -60}}, nil},
		{"antenna 1, RSSI 0x50", "A0 13 01 89 00 30 00 30 75 1F EB 70 5C 59 04 E3 D5 0D 70 50 36",
			[]rfid.TagRead{{EPC: "30751FEB705C5904E3D50D70", Antenna: 1, RSSI: -49}}, nil},
		{"SGTIN-198 (13 words) on antenna 4",
			"A0 21 01 89 0B 68 00 36 74 25 7B F6 B7 A6 59 B2 C2 BF 10 00 00 00 00 00 00 00 00 00 00 00 00 00 00 38 D1",
			[]rfid.TagRead{{EPC: "3674257BF6B7A659B2C2BF100000000000000000000000000000", Antenna: 4, RSSI: -73}}, nil},
		{"RSSI bit 7 is a flag", "A0 13 01 89 1D 30 00 30 74 25 7B F7 19 4E 40 00 00 1A 85 C5 30",
			[]rfid.TagRead{{EPC: "3074257BF7194E4000001A85", Antenna: 2, RSSI: -60}}, nil},
		// Phase-reporting firmware: refused, never guessed (a 5-word EPC
		// with phase has the size of a 6-word EPC without).
		{"with phase bytes", "A0 15 01 89 1D 30 00 30 74 25 7B F7 19 4E 40 00 00 1A 85 C5 12 34 E8", nil, ErrMalformed},
		{"fast antenna switch (0x8A)", "A0 13 01 8A 1D 30 00 30 74 25 7B F7 19 4E 40 00 00 1A 85 45 AF",
			[]rfid.TagRead{{EPC: "3074257BF7194E4000001A85", Antenna: 2, RSSI: -60}}, nil},
		{"round summary", "A0 0A 01 89 01 00 2A 00 00 00 7B 26", nil, nil},
		{"no tag", "A0 04 01 89 36 9C", nil, nil},
		{"antenna missing", "A0 04 01 89 22 B0", nil, ErrReaderStatus},
		{"another command's reply", "A0 04 01 72 10 D9", nil, ErrNotTagReport},
		{"PC longer than the frame", "A0 13 01 89 1D 38 00 30 74 25 7B F7 19 4E 40 00 00 1A 85 45 A8", nil, ErrMalformed},
		{"PC shorter than the frame", "A0 13 01 89 1D 28 00 30 74 25 7B F7 19 4E 40 00 00 1A 85 45 B8", nil, ErrMalformed},
		{"PC without EPC", "A0 13 01 89 1D 00 00 30 74 25 7B F7 19 4E 40 00 00 1A 85 45 E0", nil, ErrMalformed},
		{"too short", "A0 05 01 89 1D 30 84", nil, ErrMalformed},
	})
}

func TestBBInventory(t *testing.T) {
	runDecodeCases(t, bbFraming, BBInventory, []decodeCase{
		// The notice frame example of the M100/QM100 manual, verbatim.
		{"manual example", "BB 02 22 00 11 C9 34 00 30 75 1F EB 70 5C 59 04 E3 D5 0D 70 3A 76 EF 7E",
			[]rfid.TagRead{{EPC: "30751FEB705C5904E3D50D70", Antenna: 1, RSSI: -55}}, nil},
		{"SGTIN-96", "BB 02 22 00 11 BE 30 00 30 74 25 7B F7 19 4E 40 00 00 1A 85 AA F9 47 7E",
			[]rfid.TagRead{{EPC: "3074257BF7194E4000001A85", Antenna: 1, RSSI: -66}}, nil},
		{"RSSI not negative: unknown", "BB 02 22 00 11 30 34 00 30 75 1F EB 70 5C 59 04 E3 D5 0D 70 3A 76 56 7E",
			[]rfid.TagRead{{EPC: "30751FEB705C5904E3D50D70", Antenna: 1, RSSI: 0}}, nil},
		{"no tag answer to a poll", "BB 01 FF 00 01 15 16 7E", nil, nil},
		{"command error", "BB 01 FF 00 01 17 18 7E", nil, ErrReaderStatus},
		{"reply to stop polling", "BB 01 28 00 01 00 2A 7E", nil, ErrNotTagReport},
		{"the host's multi-poll command", "BB 00 27 00 03 22 27 10 83 7E", nil, ErrNotTagReport},
		// One EPC bit flipped and the frame checksum recomputed: only the
		// tag CRC can tell, and it does.
		{"bad tag CRC", "BB 02 22 00 11 C9 34 00 30 75 1F EB 70 5C 59 04 E3 D5 0D 71 3A 76 F0 7E", nil, ErrMalformed},
		{"PC longer than the notice", "BB 02 22 00 11 C9 3C 00 30 75 1F EB 70 5C 59 04 E3 D5 0D 70 3A 76 F7 7E", nil, ErrMalformed},
		{"unknown frame type", "BB 05 22 00 00 27 7E", nil, ErrMalformed},
		{"short notice", "BB 02 22 00 02 C9 34 23 7E", nil, ErrMalformed},
	})
}

// TestDecoders_LengthDisagreesWithFraming: a profile that pairs a decoder
// with the wrong framing gets rejects, not reads.
func TestDecoders_LengthDisagreesWithFraming(t *testing.T) {
	for _, tc := range []struct {
		fn      Func
		payload string
	}{
		{A0Inventory, "14 01 89 1D 30 00 30 74 25 7B F7 19 4E 40 00 00 1A 85 45"},
		{A0Inventory, "13 01 89"},
		{BBInventory, "02 22 00 12 C9 34 00 30 75 1F EB 70 5C 59 04 E3 D5 0D 70 3A 76"},
		{BBInventory, "02 22 00"},
	} {
		if got, err := tc.fn(unhex(t, tc.payload), nil); !errors.Is(err, ErrMalformed) || len(got) != 0 {
			t.Errorf("% s: %v, %v; want ErrMalformed", tc.payload, got, err)
		}
	}
}

func TestLookup(t *testing.T) {
	for _, n := range Names() {
		d, ok := Lookup(n)
		if !ok || d.Name != n || d.Decode == nil || len(d.Header) != 1 {
			t.Errorf("Lookup(%q) = %+v, %v", n, d, ok)
		}
	}
	if _, ok := Lookup("a0"); ok {
		t.Error("Lookup(a0) succeeded")
	}
}

func TestCRC16Genibus_CheckValue(t *testing.T) {
	if got := crc16Genibus([]byte("123456789")); got != 0xD64E {
		t.Fatalf("got %#04x, want 0xD64E", got)
	}
}

func TestDecode_Allocs(t *testing.T) {
	p := unhex(t, "13 01 89 1D 30 00 30 74 25 7B F7 19 4E 40 00 00 1A 85 45")
	dst := make([]rfid.TagRead, 0, 4)
	// One allocation: the EPC string.
	if n := testing.AllocsPerRun(100, func() { _, _ = A0Inventory(p, dst[:0]) }); n != 1 {
		t.Fatalf("%v allocations per decode", n)
	}
}
