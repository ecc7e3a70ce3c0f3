package profile

import (
	"errors"
	"strings"
	"testing"

	"github.com/omnisync/omnisync/shared/gs1"
)

// FuzzParseBarcode: any frame, with AIM identifiers on or off, yields a
// scan or an error wrapping ErrBadScan; never a panic, and never a GTIN
// that is malformed or not carried by the frame itself.
func FuzzParseBarcode(f *testing.F) {
	for _, s := range []string{
		"]E04006381333931", "]C1011234567890123110LOT7", "]d201095060001343521726123110ABC\x1d21XYZ",
		"]Q1https://id.gs1.org/01/09506000134352/10/ABC?17=261231", "]Q1https://example.com/menu",
		"4006381333931", "036000291452", "96385074", "https://id.gs1.org/01/09506000134352", "\x1d0109506000134352",
		"]E3978020137962451299", "]X9", "]",
	} {
		f.Add(true, s)
		f.Add(false, s)
	}
	aim, noAIM := shipped(f, "generic-line-scanner"), shipped(f, "line-scanner-no-aim")
	f.Fuzz(func(t *testing.T, withAIM bool, s string) {
		p := noAIM
		if withAIM {
			p = aim
		}
		sc, err := p.ParseBarcode([]byte(s))
		if err != nil {
			if !errors.Is(err, ErrBadScan) || sc.GTIN != "" {
				t.Fatalf("%q: err %v with GTIN %q", s, err, sc.GTIN)
			}
			return
		}
		if sc.Raw != s {
			t.Fatalf("raw %q, fed %q", sc.Raw, s)
		}
		if sc.GTIN == "" {
			return
		}
		if len(sc.GTIN) != 14 || gs1.ValidateCheckDigit(sc.GTIN) != nil {
			t.Fatalf("%q: invalid GTIN %q", s, sc.GTIN)
		}
		// The digits of the GTIN, less its zero padding, are in the frame
		// (unless a Digital Link percent-encoded them).
		if !strings.Contains(s, strings.TrimLeft(sc.GTIN, "0")) && !strings.Contains(s, "%") {
			t.Fatalf("%q: GTIN %q is not in the frame", s, sc.GTIN)
		}
	})
}

// FuzzLoadProfile: any file content loads or fails with ErrInvalid; a
// profile that loads builds its framer.
func FuzzLoadProfile(f *testing.F) {
	f.Add(scannerBase)
	f.Add(readerBase)
	f.Add(strings.Replace(readerBase, "decoder: a0-inventory", "decoder: a0-inventory\n  poll:\n    command: \"0xA0 04 FF 89 01 D3\"\n    every: 1s", 1))
	f.Add("framing:\n  type: binary\n  header: 0xA0\n")
	f.Add("serial: [1, 2]\nmeaning: {a: b}\n")
	f.Add("a: &x {b: *x}\n")
	f.Fuzz(func(t *testing.T, data string) {
		p, err := parse("fuzz.yaml", "fuzz", []byte(data))
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error without ErrInvalid: %v", err)
			}
			return
		}
		if _, err := p.NewFramer(); err != nil {
			t.Fatalf("loaded profile has no framer: %v", err)
		}
		if (p.Meaning == MeaningBarcode) != (p.Barcode != nil) || (p.Meaning == MeaningRFID) != (p.RFID != nil) {
			t.Fatalf("meaning %q with barcode %v rfid %v", p.Meaning, p.Barcode, p.RFID)
		}
	})
}
