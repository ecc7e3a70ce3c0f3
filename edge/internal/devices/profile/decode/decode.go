package decode

import (
	"errors"
	"fmt"

	"github.com/omnisync/omnisync/edge/internal/devices/rfid"
)

// Errors a decoder returns, wrapped with the detail. Callers branch on them
// with errors.Is.
var (
	// ErrMalformed: the payload cannot be a tag report of the protocol
	// (lengths disagree, an empty EPC, a bad tag CRC). Count it as a
	// rejected frame: it is never turned into a read.
	ErrMalformed = errors.New("decode: malformed frame")
	// ErrReaderStatus: a well-formed frame in which the reader reports an
	// error (an antenna missing, a failed inventory). Not bad input: the
	// device's status.
	ErrReaderStatus = errors.New("decode: reader reports an error")
	// ErrNotTagReport: a well-formed frame of another command (a reply to
	// a configuration command, the host's own command on a shared line).
	// Count it as read and move on.
	ErrNotTagReport = errors.New("decode: not a tag report")
)

// Func decodes one frame payload, appending the tag reads it carries to
// dst (none for an end-of-round summary or a "no tag" answer).
type Func func(payload []byte, dst []rfid.TagRead) ([]rfid.TagRead, error)

// Decoder is a named payload decoder and the framing it expects.
type Decoder struct {
	Name string
	// Header is the frame header of the protocol; a profile using the
	// decoder must frame with it (the profile loader checks).
	Header []byte
	Decode Func
}

// Names lists the decoders, for error messages and documentation.
func Names() []string { return []string{"a0-inventory", "bb-inventory"} }

// Lookup returns the decoder called name.
func Lookup(name string) (Decoder, bool) {
	switch name {
	case "a0-inventory":
		return Decoder{Name: name, Header: []byte{0xA0}, Decode: A0Inventory}, true
	case "bb-inventory":
		return Decoder{Name: name, Header: []byte{0xBB}, Decode: BBInventory}, true
	}
	return Decoder{}, false
}

// epcWords is the EPC length, in 16-bit words, a PC word declares (its top
// five bits, EPC Gen2 §6.3.2.1.2.2).
func epcWords(pcHi byte) int { return int(pcHi >> 3) }

// epcHex renders an EPC as TagRead wants it: upper-case hex. EPCs are at
// most 31 words (the PC's length field), so the digits fit on the stack and
// the string is the only allocation.
func epcHex(b []byte) string {
	const digits = "0123456789ABCDEF"
	var buf [2 * 62]byte
	for i, c := range b[:min(len(b), 62)] {
		buf[2*i], buf[2*i+1] = digits[c>>4], digits[c&0x0F]
	}
	return string(buf[:2*min(len(b), 62)])
}

func malformed(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrMalformed}, args...)...)
}
