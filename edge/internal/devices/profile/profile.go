package profile

import (
	"fmt"
	"time"

	"github.com/omnisync/omnisync/edge/internal/devices/framing"
	"github.com/omnisync/omnisync/edge/internal/devices/profile/decode"
	"github.com/omnisync/omnisync/edge/internal/devices/rfid"
	"github.com/omnisync/omnisync/shared/gs1"
)

// Meanings: what a frame from the device is.
const (
	MeaningBarcode = "barcode"
	MeaningRFID    = "rfid"
)

// Profile describes one device model. Fields with mapstructure tags are the
// YAML keys (see firmware-configs/SCHEMA.md); Load fills the defaults.
type Profile struct {
	// Name is the file's stem, the name devices use; File is its path.
	Name string `mapstructure:"-"`
	File string `mapstructure:"-"`

	// Description says which devices the profile is for (required).
	Description string `mapstructure:"description"`
	// Models lists models known to work with it (informative).
	Models []string `mapstructure:"models"`

	Serial  Serial         `mapstructure:"serial"`
	Framing framing.Config `mapstructure:"framing"`
	// Meaning is barcode or rfid; the section of the same name says more.
	Meaning string   `mapstructure:"meaning"`
	Barcode *Barcode `mapstructure:"barcode"`
	RFID    *RFID    `mapstructure:"rfid"`
}

// Serial holds the line settings used to open the port. USB-CDC devices
// ignore baud, bits and parity, but a profile states them anyway for
// RS-232 variants of the same model. The ranges are those the agent's
// serial port layer (tarm/serial underneath) can open.
type Serial struct {
	// Baud is one of the standard rates, 1200 to 921600 (required).
	Baud int `mapstructure:"baud"`
	// DataBits is 5 to 8 (default 8).
	DataBits int `mapstructure:"data_bits"`
	// Parity is none, odd or even (default none).
	Parity string `mapstructure:"parity"`
	// StopBits is 1 or 2 (default 1).
	StopBits int `mapstructure:"stop_bits"`
	// ReadTimeout bounds one read, 100ms to 1s in steps of 100ms (a tty's
	// VTIME); default 100ms. A read that times out with nothing means the
	// line is idle: flush the framer then, so it must be longer than the
	// pauses inside one frame.
	ReadTimeout time.Duration `mapstructure:"read_timeout"`
}

// ParityByte is Parity as serial libraries spell it: 'N', 'O' or 'E'.
func (s Serial) ParityByte() byte {
	switch s.Parity {
	case "odd":
		return 'O'
	case "even":
		return 'E'
	}
	return 'N'
}

// Barcode is the barcode section: how to read a scanner's frames.
type Barcode struct {
	// AIM says the scanner prefixes each scan with its AIM symbology
	// identifier (]C1, ]Q3, ]E0...). Required: it decides whether the
	// symbology is read or guessed.
	AIM bool `mapstructure:"aim"`
	// GS1Separator is the byte the scanner sends for FNC1 inside GS1 data
	// (default GS, 0x1D), for scanners that cannot send GS and substitute
	// another character.
	GS1Separator string `mapstructure:"gs1_separator"`
	// Policy is the GS1 validation policy ParseBarcode applies; the zero
	// value is strict. Not a profile key: the agent's choice.
	Policy gs1.ScanParser `mapstructure:"-"`

	sep byte
}

// RFID is the rfid section: how to decode a reader's frames.
type RFID struct {
	// Decoder names the payload decoder (decode.Names()).
	Decoder string `mapstructure:"decoder"`
	// Poll, when set, is a command the agent sends to make the reader
	// report tags, for readers that do not stream on their own.
	Poll *Poll `mapstructure:"poll"`

	dec decode.Decoder
}

// Poll is a command frame the agent writes to the reader.
type Poll struct {
	// Command is the whole frame as sent, in ParseBytes notation
	// ("0xA0 04 FF 89 01 D3"); it must frame as one valid frame.
	Command string `mapstructure:"command"`
	// Every repeats the command; 0 sends it once after the port opens.
	Every time.Duration `mapstructure:"every"`
	// Frame is Command's bytes.
	Frame []byte `mapstructure:"-"`
}

// NewFramer returns a new framer for one device using this profile. Every
// device needs its own: a framer holds the partial frame between reads.
func (p *Profile) NewFramer() (framing.Framer, error) {
	f, err := framing.New(p.Framing)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrInvalid, p.File, err)
	}
	return f, nil
}

// DecodeTags decodes one frame payload of an RFID profile into tag reads
// appended to dst, with the errors of the decode package (ErrMalformed for
// a frame that is not a valid tag report). Reader and At are left to the
// caller.
func (p *Profile) DecodeTags(payload []byte, dst []rfid.TagRead) ([]rfid.TagRead, error) {
	if p.RFID == nil || p.RFID.dec.Decode == nil {
		return dst, fmt.Errorf("%w: %s is a %s profile", ErrWrongMeaning, p.Name, p.Meaning)
	}
	return p.RFID.dec.Decode(payload, dst)
}
