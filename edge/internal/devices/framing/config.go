package framing

import (
	"errors"
	"sort"
	"strings"
)

// MaxFrameLen is the largest max_len any block accepts (64 KiB): more than
// any scanner symbol or reader frame, small enough to bound an agent with
// dozens of devices.
const MaxFrameLen = 1 << 16

// Default max_len values, used when a profile leaves max_len out. A QR Code
// holds at most 7,089 characters but retail symbols (GS1 element strings,
// Digital Link URIs) stay well under 4 KiB; reader frames under 512 bytes.
const (
	DefaultTextMaxLen   = 4096
	DefaultBinaryMaxLen = 512
)

// Errors callers branch on with errors.Is.
var (
	// ErrInvalidConfig is wrapped by every error New and the New*
	// constructors return; errors.As finds the *ConfigError naming the key.
	ErrInvalidConfig = errors.New("framing: invalid configuration")
	// ErrUnframeable is returned by AppendFrame for a payload that the
	// framer could not read back as itself.
	ErrUnframeable = errors.New("framing: payload cannot be framed")
)

// ConfigError names the framing key (as written in a profile, without the
// "framing." prefix) that is wrong and why.
type ConfigError struct {
	Key    string
	Reason string
}

func (e *ConfigError) Error() string { return "framing." + e.Key + ": " + e.Reason }

// Unwrap returns ErrInvalidConfig.
func (e *ConfigError) Unwrap() error { return ErrInvalidConfig }

func configErr(key, reason string) error { return &ConfigError{Key: key, Reason: reason} }

// Config is the framing section of a device profile, decoded by viper
// (mapstructure tags). Byte strings (terminator, prefix, suffix, stx, etx,
// header, trailer) use the notation of ParseBytes. firmware-configs/SCHEMA.md
// documents each key with examples.
type Config struct {
	// Type selects the block: delimited, stx-etx or binary.
	Type string `mapstructure:"type"`
	// MaxLen bounds a frame's payload in bytes; 0 means the default
	// (DefaultTextMaxLen or DefaultBinaryMaxLen).
	MaxLen int `mapstructure:"max_len"`

	// Terminator (delimited, required): CR, LF, CRLF, TAB, EOL (any of CR,
	// LF, CRLF) or a byte string.
	Terminator string `mapstructure:"terminator"`
	// Prefix and Suffix (delimited, optional) are stripped; see Delimited.
	Prefix string `mapstructure:"prefix"`
	Suffix string `mapstructure:"suffix"`

	// STX and ETX (stx-etx) default to STX (0x02) and ETX (0x03).
	STX string `mapstructure:"stx"`
	ETX string `mapstructure:"etx"`

	// Checksum (stx-etx: none, xor8, sum8, sum8-twos; binary: also
	// crc16-mcrf4xx, crc16-x25, crc16-modbus). Default none.
	Checksum string `mapstructure:"checksum"`

	// Binary framing; see Binary for what each means.
	Header         string `mapstructure:"header"`
	LengthOffset   int    `mapstructure:"length_offset"`
	LengthSize     int    `mapstructure:"length_size"`
	LengthEndian   string `mapstructure:"length_endian"` // big or little; required for a 2-byte length
	LengthCovers   string `mapstructure:"length_covers"`
	LengthAdjust   int    `mapstructure:"length_adjust"`
	Trailer        string `mapstructure:"trailer"`
	ChecksumFrom   int    `mapstructure:"checksum_from"`
	ChecksumEndian string `mapstructure:"checksum_endian"` // big or little; required for a CRC-16
}

// Framing types.
const (
	TypeDelimited = "delimited"
	TypeSTXETX    = "stx-etx"
	TypeBinary    = "binary"
)

// typeKeys lists the keys each type uses; a key set for another type is an
// error, so a profile cannot carry settings that silently do nothing.
func typeKeys(t string) (string, bool) {
	switch t {
	case TypeDelimited:
		return "type max_len terminator prefix suffix", true
	case TypeSTXETX:
		return "type max_len stx etx checksum", true
	case TypeBinary:
		return "type max_len header length_offset length_size length_endian length_covers length_adjust " +
			"trailer checksum checksum_from checksum_endian", true
	}
	return "", false
}

// setKeys reports which keys of c hold a non-zero value.
func (c Config) setKeys() map[string]bool {
	return map[string]bool{
		"terminator": c.Terminator != "", "prefix": c.Prefix != "", "suffix": c.Suffix != "",
		"stx": c.STX != "", "etx": c.ETX != "", "checksum": c.Checksum != "", "header": c.Header != "",
		"length_offset": c.LengthOffset != 0, "length_size": c.LengthSize != 0,
		"length_endian": c.LengthEndian != "", "length_covers": c.LengthCovers != "",
		"length_adjust": c.LengthAdjust != 0, "trailer": c.Trailer != "",
		"checksum_from": c.ChecksumFrom != 0, "checksum_endian": c.ChecksumEndian != "",
	}
}

// New builds the Framer a profile's framing section describes. Errors wrap
// ErrInvalidConfig and are *ConfigError values naming the key.
func New(c Config) (Framer, error) {
	allowed, ok := typeKeys(c.Type)
	if !ok {
		return nil, configErr("type", "must be one of delimited, stx-etx, binary")
	}
	var foreign []string
	for k, set := range c.setKeys() {
		if set && !strings.Contains(" "+allowed+" ", " "+k+" ") {
			foreign = append(foreign, k)
		}
	}
	if len(foreign) > 0 {
		sort.Strings(foreign)
		return nil, configErr(foreign[0], "not used by type "+c.Type)
	}
	if c.MaxLen < 0 {
		return nil, configErr("max_len", "must be positive")
	}
	switch c.Type {
	case TypeDelimited:
		return c.delimited()
	case TypeSTXETX:
		return c.stxetx()
	}
	return c.binary()
}

// bytesKey parses an optional byte-string key.
func bytesKey(key, v string) ([]byte, error) {
	if v == "" {
		return nil, nil
	}
	b, err := ParseBytes(v)
	if err != nil {
		return nil, configErr(key, err.Error())
	}
	return b, nil
}

func (c Config) delimited() (Framer, error) {
	d := Delimited{MaxLen: c.MaxLen}
	if d.MaxLen == 0 {
		d.MaxLen = DefaultTextMaxLen
	}
	switch c.Terminator {
	case "":
		return nil, configErr("terminator", "required: one of CR, LF, CRLF, TAB, EOL or a byte string")
	case "EOL":
		d.AnyLineEnd = true
	default:
		t, err := ParseBytes(c.Terminator)
		if err != nil {
			return nil, configErr("terminator", "must be one of CR, LF, CRLF, TAB, EOL, a control name, 0x-hex or a quoted byte string")
		}
		d.Terminator = t
	}
	var err error
	if d.Prefix, err = bytesKey("prefix", c.Prefix); err != nil {
		return nil, err
	}
	if d.Suffix, err = bytesKey("suffix", c.Suffix); err != nil {
		return nil, err
	}
	return NewDelimited(d)
}

// oneByte parses a key that must be a single byte, with a default.
func oneByte(key, v string, def byte) (byte, error) {
	if v == "" {
		return def, nil
	}
	b, err := ParseBytes(v)
	if err != nil {
		return 0, configErr(key, err.Error())
	}
	if len(b) != 1 {
		return 0, configErr(key, "must be a single byte")
	}
	return b[0], nil
}

func (c Config) stxetx() (Framer, error) {
	s := STXETX{MaxLen: c.MaxLen}
	if s.MaxLen == 0 {
		s.MaxLen = DefaultTextMaxLen
	}
	var err error
	if s.STX, err = oneByte("stx", c.STX, 0x02); err != nil {
		return nil, err
	}
	if s.ETX, err = oneByte("etx", c.ETX, 0x03); err != nil {
		return nil, err
	}
	var ok bool
	if s.Check, ok = ParseChecksum(c.Checksum); !ok || s.Check.Size() > 1 {
		return nil, configErr("checksum", "must be one of none, xor8, sum8, sum8-twos")
	}
	return NewSTXETX(s)
}

func endian(key, v string, required bool) (big bool, err error) {
	switch strings.ToLower(v) {
	case "big":
		return true, nil
	case "little":
		return false, nil
	case "":
		if !required {
			return false, nil
		}
		return false, configErr(key, "required: big or little")
	}
	return false, configErr(key, "must be big or little")
}

func (c Config) binary() (Framer, error) {
	b := Binary{
		LengthOffset: c.LengthOffset, LengthSize: c.LengthSize, LengthAdjust: c.LengthAdjust,
		ChecksumFrom: c.ChecksumFrom, MaxLen: c.MaxLen,
	}
	if b.MaxLen == 0 {
		b.MaxLen = DefaultBinaryMaxLen
	}
	var err error
	if b.Header, err = bytesKey("header", c.Header); err != nil {
		return nil, err
	}
	if b.Trailer, err = bytesKey("trailer", c.Trailer); err != nil {
		return nil, err
	}
	var ok bool
	if b.Checksum, ok = ParseChecksum(c.Checksum); !ok {
		return nil, configErr("checksum", "must be one of none, sum8, sum8-twos, xor8, crc16-mcrf4xx (crc16-ccitt-8408), crc16-x25, crc16-modbus")
	}
	if c.LengthCovers == "" {
		return nil, configErr("length_covers", "required: one of "+coverageList())
	}
	if b.LengthCovers, ok = ParseCoverage(c.LengthCovers); !ok {
		return nil, configErr("length_covers", "must be one of "+coverageList())
	}
	if b.LengthBigEndian, err = endian("length_endian", c.LengthEndian, c.LengthSize == 2); err != nil {
		return nil, err
	}
	if b.ChecksumBigEndian, err = endian("checksum_endian", c.ChecksumEndian, b.Checksum.Size() == 2); err != nil {
		return nil, err
	}
	if c.LengthEndian != "" && c.LengthSize == 1 {
		return nil, configErr("length_endian", "only for a 2-byte length")
	}
	if c.ChecksumEndian != "" && b.Checksum.Size() != 2 {
		return nil, configErr("checksum_endian", "only for a 2-byte checksum")
	}
	return NewBinary(b)
}
