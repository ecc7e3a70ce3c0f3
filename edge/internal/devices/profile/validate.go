package profile

import (
	"bytes"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"time"

	"github.com/go-viper/mapstructure/v2"

	"github.com/omnisync/omnisync/edge/internal/devices/framing"
	"github.com/omnisync/omnisync/edge/internal/devices/profile/decode"
	"github.com/omnisync/omnisync/shared/gs1"
)

// Defaults for keys a profile may leave out.
const (
	DefaultDataBits    = 8
	DefaultParity      = "none"
	DefaultStopBits    = 1
	DefaultReadTimeout = 100 * time.Millisecond
)

// cset82 is the GS1 character set of AI values: a GS1 separator from it
// would be taken for data.
const cset82 = `!"%&'()*+,-./0123456789:;<=>?ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz`

// checker collects the problems of one file.
type checker struct {
	file     string
	lines    map[string]int
	sections map[string]bool // keys that hold a section of keys
	isSet    func(key string) bool
	errs     []error
}

// add records a problem with key, located at the key's line or, when the
// key is missing, at its section's.
func (c *checker) add(key, msg string) {
	line := 0
	for k := key; k != "" && line == 0; {
		line = c.lines[k]
		i := strings.LastIndexByte(k, '.')
		if i < 0 {
			break
		}
		k = k[:i]
	}
	c.errs = append(c.errs, &Error{File: c.file, Line: line, Key: key, Msg: msg})
}

func (c *checker) err() error { return errors.Join(c.errs...) }

// decodeErrors turns mapstructure's errors (a tree of joined DecodeErrors)
// into one Error per key.
func (c *checker) decodeErrors(err error) {
	switch e := err.(type) {
	case *mapstructure.DecodeError:
		inner := e.Unwrap()
		if _, nested := inner.(*mapstructure.DecodeError); nested {
			c.decodeErrors(inner)
			return
		}
		if _, joined := inner.(interface{ Unwrap() []error }); joined {
			c.decodeErrors(inner)
			return
		}
		key := strings.ToLower(e.Name())
		if c.sections[key] {
			c.add(key, "must be a section of keys, not "+describeErr(inner))
			return
		}
		c.add(key, typeMessage(inner))
	case interface{ Unwrap() []error }:
		for _, x := range e.Unwrap() {
			c.decodeErrors(x)
		}
	case interface{ Unwrap() error }:
		// mapstructure's "decoding failed due to the following error(s)"
		c.decodeErrors(e.Unwrap())
	default:
		c.add("", err.Error())
	}
}

func typeMessage(err error) string {
	var ute *mapstructure.UnconvertibleTypeError
	if errors.As(err, &ute) {
		return "must be " + expected(ute.Expected.Type()) + ", not " + describe(ute.Value)
	}
	var pe *mapstructure.ParseError
	if errors.As(err, &pe) {
		return "must be " + expected(pe.Expected.Type()) + ", not " + describe(pe.Value)
	}
	return err.Error()
}

// describeErr says what was found instead of a section, when mapstructure
// says it.
func describeErr(err error) string {
	var ute *mapstructure.UnconvertibleTypeError
	if errors.As(err, &ute) {
		return describe(ute.Value)
	}
	return "a single value"
}

func expected(t reflect.Type) string {
	if t == reflect.TypeOf(time.Duration(0)) {
		return "a duration like 100ms"
	}
	switch t.Kind() {
	case reflect.String:
		return `text (quote byte strings: "0xA0")`
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "a whole number"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Slice, reflect.Array:
		return "a list"
	}
	return "a section of keys"
}

func describe(v any) string {
	switch v := v.(type) {
	case string:
		return fmt.Sprintf("the text %q", v)
	case bool:
		return fmt.Sprint(v)
	case int, int64, uint64, float64:
		return fmt.Sprintf("the number %v (YAML reads unquoted 0x.. and digits as numbers)", v)
	case []any:
		return "a list"
	case map[string]any:
		return "a section of keys"
	}
	return fmt.Sprintf("%T", v)
}

// validate checks a decoded profile and fills its defaults and derived
// fields.
func (c *checker) validate(p *Profile) {
	if strings.TrimSpace(p.Description) == "" {
		c.add("description", "required: say which devices the profile is for")
	}
	c.serial(&p.Serial)
	fr, err := framing.New(p.Framing)
	if err != nil {
		var ce *framing.ConfigError
		if errors.As(err, &ce) {
			c.add("framing."+ce.Key, ce.Reason)
		} else {
			c.add("framing", err.Error())
		}
	}
	binary := p.Framing.Type == framing.TypeBinary
	switch p.Meaning {
	case MeaningBarcode:
		if binary {
			c.add("framing.type", "a scanner's frames are text: delimited or stx-etx")
		}
		if c.isSet("rfid") || p.RFID != nil {
			c.add("rfid", "only for meaning: rfid")
		}
		c.barcode(p)
	case MeaningRFID:
		if !binary && p.Framing.Type != "" {
			c.add("framing.type", "RFID decoders read binary frames")
		}
		if c.isSet("barcode") || p.Barcode != nil {
			c.add("barcode", "only for meaning: barcode")
		}
		c.rfid(p, fr)
	case "":
		c.add("meaning", "required: barcode or rfid")
	default:
		c.add("meaning", "must be barcode or rfid")
	}
}

func (c *checker) serial(s *Serial) {
	switch {
	case !c.isSet("serial.baud"):
		c.add("serial.baud", "required (USB-CDC devices ignore it; state the RS-232 rate)")
	case !standardBaud(s.Baud):
		c.add("serial.baud", fmt.Sprintf("%d is not a standard rate (1200 to 921600)", s.Baud))
	}
	if !c.isSet("serial.data_bits") {
		s.DataBits = DefaultDataBits
	} else if s.DataBits < 5 || s.DataBits > 8 {
		c.add("serial.data_bits", "must be 5, 6, 7 or 8")
	}
	switch s.Parity = strings.ToLower(s.Parity); s.Parity {
	case "":
		s.Parity = DefaultParity
	case "none", "odd", "even":
	default:
		c.add("serial.parity", "must be none, odd or even")
	}
	if !c.isSet("serial.stop_bits") {
		s.StopBits = DefaultStopBits
	} else if s.StopBits != 1 && s.StopBits != 2 {
		c.add("serial.stop_bits", "must be 1 or 2")
	}
	if !c.isSet("serial.read_timeout") {
		s.ReadTimeout = DefaultReadTimeout
	} else if s.ReadTimeout < 100*time.Millisecond || s.ReadTimeout > time.Second || s.ReadTimeout%(100*time.Millisecond) != 0 {
		// A tty's read timeout (VTIME) counts tenths of a second, and a
		// longer one would delay closing the port.
		c.add("serial.read_timeout", "must be 100ms to 1s, in steps of 100ms")
	}
}

func standardBaud(b int) bool {
	switch b {
	case 1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200, 230400, 460800, 921600:
		return true
	}
	return false
}

func (c *checker) barcode(p *Profile) {
	if p.Barcode == nil {
		p.Barcode = &Barcode{}
	}
	b := p.Barcode
	if !c.isSet("barcode.aim") {
		c.add("barcode.aim", "required: true if the scanner sends AIM symbology identifiers (]E0, ]C1, ]Q3...), else false")
	}
	b.sep = gs1.GS
	if c.isSet("barcode.gs1_separator") {
		sep, err := framing.ParseBytes(b.GS1Separator)
		switch {
		case err != nil:
			c.add("barcode.gs1_separator", err.Error())
			return
		case len(sep) != 1:
			c.add("barcode.gs1_separator", "must be a single byte")
			return
		case sep[0] == 0 || strings.IndexByte(cset82, sep[0]) >= 0:
			c.add("barcode.gs1_separator", fmt.Sprintf("%s can occur in GS1 data; use a control character or one outside GS1's character set", framing.FormatBytes(sep)))
			return
		}
		b.sep = sep[0]
	}
	// The separator must survive framing: a terminator or marker made of it
	// would cut GS1 data in two.
	for _, m := range []struct{ key, val string }{
		{"terminator", p.Framing.Terminator}, {"prefix", p.Framing.Prefix}, {"suffix", p.Framing.Suffix},
		{"stx", p.Framing.STX}, {"etx", p.Framing.ETX},
	} {
		v := m.val
		if v == "EOL" {
			v = "\r\n"
		}
		if mb, err := framing.ParseBytes(v); err == nil && bytes.IndexByte(mb, b.sep) >= 0 {
			c.add("barcode.gs1_separator", fmt.Sprintf("%s is also in framing.%s", framing.FormatBytes([]byte{b.sep}), m.key))
		}
	}
}

func (c *checker) rfid(p *Profile, fr framing.Framer) {
	if p.RFID == nil {
		p.RFID = &RFID{}
	}
	r := p.RFID
	names := strings.Join(decode.Names(), ", ")
	dec, ok := decode.Lookup(r.Decoder)
	switch {
	case r.Decoder == "":
		c.add("rfid.decoder", "required: one of "+names)
	case !ok:
		c.add("rfid.decoder", "must be one of "+names)
	default:
		r.dec = dec
		if h, err := framing.ParseBytes(p.Framing.Header); err == nil && !bytes.Equal(h, dec.Header) {
			c.add("rfid.decoder", fmt.Sprintf("%s reads frames with header %s, framing.header is %s",
				dec.Name, framing.FormatBytes(dec.Header), framing.FormatBytes(h)))
		}
	}
	if r.Poll == nil {
		if c.isSet("rfid.poll") {
			c.add("rfid.poll.command", "required when rfid.poll is present")
		}
		return
	}
	if r.Poll.Every != 0 && (r.Poll.Every < 10*time.Millisecond || r.Poll.Every > time.Hour) {
		c.add("rfid.poll.every", "must be 0 (once after opening) or between 10ms and 1h")
	}
	cmd, err := framing.ParseBytes(r.Poll.Command)
	if err != nil {
		c.add("rfid.poll.command", "required: the whole command frame, e.g. \"0xA0 04 FF 89 01 D3\"")
		return
	}
	r.Poll.Frame = cmd
	if fr != nil && !framesAsOne(fr, cmd) {
		c.add("rfid.poll.command", "is not exactly one valid frame for this profile's framing (check its length and checksum)")
	}
}

// framesAsOne reports whether b is exactly one frame for fr, with nothing
// rejected.
func framesAsOne(fr framing.Framer, b []byte) bool {
	frames, rejects := 0, 0
	emit := func([]byte) { frames++ }
	reject := func(framing.Reject, int) { rejects++ }
	fr.Feed(b, emit, reject)
	fr.Flush(emit, reject)
	return frames == 1 && rejects == 0
}
