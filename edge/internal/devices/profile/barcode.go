package profile

import (
	"errors"
	"fmt"
	"strings"

	"github.com/omnisync/omnisync/shared/gs1"
)

// Scan is one barcode as the agent reports it: what the scanner sent and
// what GS1 makes of it (symbology, GTIN, AIs, Digital Link; see gs1.Scan).
type Scan struct {
	// Raw is the frame's payload exactly as received.
	Raw string
	// Guessed is set when the profile has aim: false, so Symbology is
	// inferred from the data (SymNone when it cannot be) and SymbologyID
	// is empty.
	Guessed bool
	gs1.Scan
}

// gs1IDs are the AIM identifiers whose data is GS1 AI data: a leading GS
// there is an FNC1 in first position that some scanners transmit.
func gs1ID(id string) bool {
	switch id {
	case "]C1", "]e0", "]d2", "]Q3", "]J1", "]z1":
		return true
	}
	return false
}

// ParseBarcode interprets one frame of a barcode profile. With AIM
// identifiers on it parses them (gs1.ParseScan); with them off it guesses:
// all digits with a valid check digit and the length of a GTIN (8, 12, 13,
// 14) is an EAN/UPC/ITF-14, http(s):// is a Digital Link (or a plain URL),
// data containing the GS1 separator is a GS1 element string, anything else
// is plain data. Errors wrap ErrBadScan and the gs1 sentinel that says why
// (gs1.ErrSymbology, gs1.ErrCheckDigit, gs1.ErrUnknownAI, ...).
//
// A plain URL that is not a Digital Link (no GS1 key in its path) is plain
// data, not an error: shoppers scan menus and web links too.
func (p *Profile) ParseBarcode(frame []byte) (Scan, error) {
	b := p.Barcode
	if b == nil {
		return Scan{}, fmt.Errorf("%w: %s is a %s profile", ErrWrongMeaning, p.Name, p.Meaning)
	}
	sc := Scan{Raw: string(frame)}
	data := sc.Raw
	if b.sep != gs1.GS && b.sep != 0 {
		data = strings.ReplaceAll(data, string(b.sep), string(rune(gs1.GS)))
	}
	var (
		g   gs1.Scan
		err error
	)
	if b.AIM {
		if len(data) < 3 || data[0] != ']' {
			return Scan{Raw: sc.Raw}, badScan(&gs1.Error{Kind: gs1.ErrSymbology, Pos: 0,
				Msg: "no AIM symbology identifier (turn AIM ID transmission on, or use a profile with aim: false)"})
		}
		if gs1ID(data[:3]) && len(data) > 3 && data[3] == gs1.GS {
			data = data[:3] + data[4:]
		}
		g, err = b.Policy.ParseScan(data)
	} else {
		g, err = b.guess(data)
		sc.Guessed = true
	}
	if err != nil {
		var ge *gs1.Error
		if errors.As(err, &ge) && ge.Kind == gs1.ErrDigitalLink && ge.AI == "" && g.Data != "" {
			// A URL without a GS1 key: plain data.
			g.DigitalLink, g.GS1, g.AIs, g.GTIN = nil, false, nil, ""
			if sc.Guessed {
				g.Symbology, g.SymbologyID = gs1.SymNone, ""
			}
			sc.Scan = g
			return sc, nil
		}
		return Scan{Raw: sc.Raw}, badScan(err)
	}
	sc.Scan = g
	return sc, nil
}

func badScan(err error) error { return fmt.Errorf("%w: %w", ErrBadScan, err) }

// guess interprets data sent without an AIM identifier.
func (b *Barcode) guess(data string) (gs1.Scan, error) {
	var id string
	switch {
	case data == "":
		return gs1.Scan{}, &gs1.Error{Kind: gs1.ErrSymbology, Pos: 0, Msg: "empty scan"}
	case data[0] == gs1.GS:
		id, data = "]C1", data[1:] // FNC1 in first position, sent as GS
	case allDigits(data) && (len(data) == 8 || len(data) == 12 || len(data) == 13 || len(data) == 14):
		// A GTIN, if its check digit says so; scanners verify EAN/UPC check
		// digits, so a bad one means a non-GTIN symbology or a garbled line,
		// and either way no product.
		if err := gs1.ValidateCheckDigit(data); err != nil {
			return gs1.Scan{}, err
		}
		switch len(data) {
		case 8:
			id = "]E4"
		case 12:
			id, data = "]E0", "0"+data // UPC-A is an EAN-13 with a leading 0
		case 13:
			id = "]E0"
		case 14:
			id = "]I1"
		}
		g, err := b.Policy.ParseScan(id + data)
		g.SymbologyID = ""
		return g, err
	case gs1.IsDigitalLinkScheme(data):
		id = "]Q1"
	case strings.IndexByte(data, gs1.GS) >= 0:
		id = "]C1"
	default:
		return gs1.Scan{Data: data}, nil
	}
	// The carrier (QR, DataMatrix, GS1-128...) is unknown: only the data
	// type was guessed.
	g, err := b.Policy.ParseScan(id + data)
	g.Symbology, g.SymbologyID = gs1.SymNone, ""
	return g, err
}

func allDigits(s string) bool {
	for i := range len(s) {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}
