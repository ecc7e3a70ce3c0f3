package profile

import (
	"encoding/hex"
	"errors"
	"reflect"
	"testing"

	"github.com/omnisync/omnisync/edge/internal/devices/framing/framingtest"
	"github.com/omnisync/omnisync/edge/internal/devices/profile/decode"
	"github.com/omnisync/omnisync/edge/internal/devices/rfid"
)

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	return framingtest.Hex(t, s)
}

// TestDecodeTags_Shipped drives captures through the shipped RFID
// profiles: framer, then decoder, as the agent does. Garbage and damaged
// frames are rejected by one or the other; only real tags come out.
func TestDecodeTags_Shipped(t *testing.T) {
	for _, tc := range []struct {
		profile  string
		capture  string
		reads    []rfid.TagRead
		rejected int // bytes the framer rejected
		bad      int // frames the decoder rejected
		status   int // reader status reports
	}{
		{"uhf-a0-r2000",
			"FF 00 " + // line noise at power-up
				"A0 13 01 89 1D 30 00 30 74 25 7B F7 19 4E 40 00 00 1A 85 45 B0 " +
				"A0 13 01 89 1D 30 00 30 74 25 7B F7 19 4E 40 00 00 1A 84 45 B0 " + // bit error: bad checksum
				"A0 13 01 89 1D 38 00 30 74 25 7B F7 19 4E 40 00 00 1A 85 45 A8 " + // PC disagrees with the frame
				"A0 13 01 89 00 30 00 30 75 1F EB 70 5C 59 04 E3 D5 0D 70 50 36 " +
				"A0 04 01 89 22 B0 " + // antenna missing
				"A0 0A 01 89 01 00 2A 00 00 00 7B 26", // end of round
			[]rfid.TagRead{
				{EPC: "3074257BF7194E4000001A85", Antenna: 2, RSSI: -60},
				{EPC: "30751FEB705C5904E3D50D70", Antenna: 1, RSSI: -49},
			}, 2 + 21, 1, 1},
		{"uhf-bb-m100",
			"BB 02 22 00 11 C9 34 00 30 75 1F EB 70 5C 59 04 E3 D5 0D 70 3A 76 EF 7E " +
				"BB 02 22 00 11 C9 34 00 30 75 1F EB 70 5C 59 04 E3 D5 0D 71 3A 76 F0 7E " + // tag CRC wrong
				"7E 7E " +
				"BB 01 FF 00 01 15 16 7E " + // no tag
				"BB 02 22 00 11 BE 30 00 30 74 25 7B F7 19 4E 40 00 00 1A 85 AA F9 47 7E",
			[]rfid.TagRead{
				{EPC: "30751FEB705C5904E3D50D70", Antenna: 1, RSSI: -55},
				{EPC: "3074257BF7194E4000001A85", Antenna: 1, RSSI: -66},
			}, 2, 1, 0},
	} {
		t.Run(tc.profile, func(t *testing.T) {
			p := shipped(t, tc.profile)
			payloads, rejected := frameAll(t, p, unhex(t, tc.capture))
			var reads []rfid.TagRead
			bad, status := 0, 0
			for _, pl := range payloads {
				var err error
				reads, err = p.DecodeTags(pl, reads)
				switch {
				case errors.Is(err, decode.ErrMalformed):
					bad++
				case errors.Is(err, decode.ErrReaderStatus):
					status++
				case err != nil:
					t.Fatalf("payload % X: %v", pl, err)
				}
			}
			if !reflect.DeepEqual(reads, tc.reads) || rejected != tc.rejected || bad != tc.bad || status != tc.status {
				t.Fatalf("reads %+v, rejected %d bytes, %d bad, %d status; want %+v, %d, %d, %d",
					reads, rejected, bad, status, tc.reads, tc.rejected, tc.bad, tc.status)
			}
		})
	}
}

func TestDecodeTags_WrongMeaning(t *testing.T) {
	if _, err := shipped(t, "generic-line-scanner").DecodeTags([]byte{1, 2, 3}, nil); !errors.Is(err, ErrWrongMeaning) {
		t.Fatalf("err = %v", err)
	}
}

// TestPollCommands_Frame: the poll commands shipped, and the multi-antenna
// command the A0 programming note suggests, are valid frames.
func TestPollCommands_Frame(t *testing.T) {
	for name, cmds := range map[string][]string{
		"uhf-a0-r2000": {"A0 0D FF 8A 00 01 01 01 02 01 03 01 00 01 BF", "A0 04 FF 74 00 E9", "A0 04 FF 7A 00 E3"},
		"uhf-bb-m100":  {"BB 00 27 00 03 22 27 10 83 7E", "BB 00 28 00 00 28 7E"},
	} {
		p := shipped(t, name)
		if p.RFID.Poll == nil {
			t.Fatalf("%s has no poll", name)
		}
		for _, c := range append(cmds, hex.EncodeToString(p.RFID.Poll.Frame)) {
			if payloads, rejected := frameAll(t, p, unhex(t, c)); len(payloads) != 1 || rejected != 0 {
				t.Errorf("%s: %s is not one valid frame", name, c)
			}
		}
	}
}
