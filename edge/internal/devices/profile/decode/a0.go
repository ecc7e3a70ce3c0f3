package decode

import (
	"fmt"

	"github.com/omnisync/omnisync/edge/internal/devices/rfid"
)

// Commands of the 0xA0 protocol whose replies carry tags, one per frame.
const (
	a0RealTimeInventory   = 0x89
	a0FastSwitchInventory = 0x8A
	a0SessionInventory    = 0x8B
)

// A0Inventory decodes a 0xA0-family inventory reply. payload is the frame
// without Head and Check: Len, Address, Cmd, Data. Data is one of
//
//	ErrorCode                              (Len 0x04)
//	round summary, 7 bytes                 (Len 0x0A)
//	FreqAnt, PC (2), EPC, RSSI
func A0Inventory(payload []byte, dst []rfid.TagRead) ([]rfid.TagRead, error) {
	if len(payload) < 4 {
		return dst, malformed("a0: %d-byte payload", len(payload))
	}
	if int(payload[0]) != len(payload) {
		// Len counts Address..Check, which is the payload's size: a
		// profile framing this protocol differently ends here.
		return dst, malformed("a0: Len %d for a %d-byte payload", payload[0], len(payload))
	}
	switch cmd := payload[2]; cmd {
	case a0RealTimeInventory, a0FastSwitchInventory, a0SessionInventory:
	default:
		return dst, fmt.Errorf("%w: a0 command 0x%02X", ErrNotTagReport, cmd)
	}
	data := payload[3:]
	switch len(data) {
	case 1:
		return dst, a0Error(data[0])
	case 7:
		return dst, nil // end of an inventory round: antenna, read rate, count
	}
	if len(data) < 3 {
		return dst, malformed("a0: %d data bytes", len(data))
	}
	n := 2 * epcWords(data[1])
	if n == 0 {
		return dst, malformed("a0: PC 0x%02X%02X declares no EPC", data[1], data[2])
	}
	// After the EPC comes the RSSI byte and nothing else. Firmware that
	// appends two phase bytes is refused rather than guessed at: a 5-word
	// EPC with phase has the size of a 6-word EPC without.
	if len(data) != 3+n+1 {
		return dst, malformed("a0: PC declares a %d-byte EPC, the frame has %d bytes after the PC", n, len(data)-3)
	}
	return append(dst, rfid.TagRead{
		EPC:     epcHex(data[3 : 3+n]),
		Antenna: int(data[0]&0x03) + 1,
		RSSI:    float64(int(data[3+n]&0x7F) - 129),
	}), nil
}

// a0Error maps an inventory error code. "No tag" is not an error: a
// fitting room is empty most of the time.
func a0Error(code byte) error {
	const noTag = 0x36
	var what string
	switch code {
	case noTag:
		return nil
	case 0x10:
		return nil // success without data
	case 0x11:
		what = "command failed"
	case 0x20:
		what = "MCU reset"
	case 0x21:
		what = "CW on error"
	case 0x22:
		what = "antenna missing"
	case 0x31:
		what = "tag inventory error"
	case 0x57:
		what = "output power too low"
	default:
		what = "error"
	}
	return fmt.Errorf("%w: a0 %s (code 0x%02X)", ErrReaderStatus, what, code)
}
