package decode

import (
	"fmt"

	"github.com/omnisync/omnisync/edge/internal/devices/rfid"
)

// Frame types and commands of the 0xBB protocol.
const (
	bbCommand  = 0x00
	bbResponse = 0x01
	bbNotice   = 0x02

	bbInventory = 0x22 // a notice carrying one tag (single or multiple polling)
	bbErrorCmd  = 0xFF // a response carrying an error code
)

// BBInventory decodes a 0xBB-family frame. payload is the frame without
// Header, Checksum and End: Type, Command, PL (2 bytes, MSB first),
// Parameters. A tag notice (Type 0x02, Command 0x22) carries RSSI (signed,
// dBm), PC (2), EPC, and the tag's CRC-16 (2).
func BBInventory(payload []byte, dst []rfid.TagRead) ([]rfid.TagRead, error) {
	if len(payload) < 4 {
		return dst, malformed("bb: %d-byte payload", len(payload))
	}
	params := payload[4:]
	if pl := int(payload[2])<<8 | int(payload[3]); pl != len(params) {
		return dst, malformed("bb: PL %d for %d parameter bytes", pl, len(params))
	}
	typ, cmd := payload[0], payload[1]
	switch {
	case typ == bbNotice && cmd == bbInventory:
	case typ == bbResponse && cmd == bbErrorCmd && len(params) == 1:
		return dst, bbError(params[0])
	case typ == bbCommand || typ == bbResponse || typ == bbNotice:
		return dst, fmt.Errorf("%w: bb type 0x%02X command 0x%02X", ErrNotTagReport, typ, cmd)
	default:
		return dst, malformed("bb: frame type 0x%02X", typ)
	}
	if len(params) < 5 {
		return dst, malformed("bb: %d-byte tag notice", len(params))
	}
	n := 2 * epcWords(params[1])
	if n == 0 {
		return dst, malformed("bb: PC 0x%02X%02X declares no EPC", params[1], params[2])
	}
	if len(params) != 1+2+n+2 {
		return dst, malformed("bb: PC declares a %d-byte EPC, the notice has %d bytes", n, len(params)-5)
	}
	pcEPC := params[1 : 3+n]
	if got, want := uint16(params[3+n])<<8|uint16(params[4+n]), crc16Genibus(pcEPC); got != want {
		return dst, malformed("bb: tag CRC 0x%04X, computed 0x%04X", got, want)
	}
	rssi := float64(int8(params[0]))
	if rssi >= 0 {
		rssi = 0 // not a received signal strength: unknown
	}
	return append(dst, rfid.TagRead{EPC: epcHex(pcEPC[2:]), Antenna: 1, RSSI: rssi}), nil
}

// bbError maps the error code of a response. 0x15 is how the module says a
// poll found no tag: the normal answer for an empty fitting room.
func bbError(code byte) error {
	var what string
	switch code {
	case 0x15:
		return nil
	case 0x17:
		what = "command error"
	case 0x20:
		what = "frequency hopping failed"
	default:
		what = "error"
	}
	return fmt.Errorf("%w: bb %s (code 0x%02X)", ErrReaderStatus, what, code)
}

// crc16Genibus is the EPC Gen2 CRC-16 (polynomial 0x1021, preset 0xFFFF,
// output inverted; "CRC-16/GENIBUS", check value 0xD64E) a tag sends after
// its PC and EPC.
func crc16Genibus(data []byte) uint16 {
	crc := uint16(0xFFFF)
	for _, b := range data {
		crc ^= uint16(b) << 8
		for range 8 {
			if crc&0x8000 != 0 {
				crc = crc<<1 ^ 0x1021
			} else {
				crc <<= 1
			}
		}
	}
	return ^crc
}
