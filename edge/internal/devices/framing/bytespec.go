package framing

import (
	"encoding/hex"
	"errors"
	"strings"
)

// controlNames are the ASCII control character mnemonics a profile may use
// for a byte string, as scanner manuals print them in prefix/suffix tables.
var controlNames = [...]string{
	"NUL", "SOH", "STX", "ETX", "EOT", "ENQ", "ACK", "BEL", "BS", "TAB", "LF", "VT", "FF", "CR", "SO", "SI",
	"DLE", "DC1", "DC2", "DC3", "DC4", "NAK", "SYN", "ETB", "CAN", "EM", "SUB", "ESC", "FS", "GS", "RS", "US",
}

// errByteSpec is returned by ParseBytes; its text is the user-facing rule.
var errByteSpec = errors.New("must be a control name (CR, LF, CRLF, TAB, GS, STX, ...), 0x-prefixed hex (0x0D0A) or a quoted byte string")

// ParseBytes reads a byte string as profiles write it, in this order:
//   - an ASCII control mnemonic: NUL, SOH, STX, ETX, ... CR, ... GS, RS, US,
//     DEL, or CRLF (case-sensitive, so literal text is rarely mistaken);
//   - "0x" followed by hex pairs, spaces allowed: "0xA0", "0x0D 0x0A" or
//     "0x0D0A";
//   - anything else is taken literally (YAML double quotes already turn
//     "\r\n" or "\x1d" into the bytes), except a short word in capitals
//     that is not a mnemonic: that is a typo ("CRL") and an error.
//
// The empty string is an error: no setting that takes bytes means "nothing"
// by an empty value; leave the key out instead.
func ParseBytes(s string) ([]byte, error) {
	switch s {
	case "":
		return nil, errByteSpec
	case "CRLF":
		return []byte("\r\n"), nil
	case "DEL":
		return []byte{0x7F}, nil
	}
	for i, n := range controlNames {
		if s == n {
			return []byte{byte(i)}, nil
		}
	}
	if len(s) >= 2 && len(s) <= 5 && strings.Trim(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZ") == "" {
		// Short upper-case words are mnemonics; an unknown one is a typo
		// ("CRL"), not text to match. Literal text in capitals can be
		// written in hex.
		return nil, errByteSpec
	}
	if strings.HasPrefix(s, "0x") || strings.HasPrefix(s, "0X") {
		h := strings.NewReplacer(" ", "", "0x", "", "0X", "").Replace(s)
		b, err := hex.DecodeString(h)
		if err != nil || len(b) == 0 {
			return nil, errByteSpec
		}
		return b, nil
	}
	return []byte(s), nil
}

// FormatBytes renders b the way ParseBytes reads it back, preferring a
// control name, then hex: for error messages and documentation.
func FormatBytes(b []byte) string {
	switch {
	case len(b) == 0:
		return `""`
	case string(b) == "\r\n":
		return "CRLF"
	case len(b) == 1 && int(b[0]) < len(controlNames):
		return controlNames[b[0]]
	case len(b) == 1 && b[0] == 0x7F:
		return "DEL"
	}
	return "0x" + strings.ToUpper(hex.EncodeToString(b))
}
