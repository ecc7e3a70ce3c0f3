package profile

import (
	"errors"
	"testing"

	"github.com/omnisync/omnisync/shared/gs1"
)

type scanCase struct {
	frame   string
	sym     gs1.Symbology
	gtin    string
	ais     string // bracketed
	dl      bool
	wantErr error // besides ErrBadScan
}

func runScanCases(t *testing.T, p *Profile, cases []scanCase) {
	t.Helper()
	for _, tc := range cases {
		sc, err := p.ParseBarcode([]byte(tc.frame))
		if tc.wantErr != nil {
			if !errors.Is(err, ErrBadScan) || !errors.Is(err, tc.wantErr) {
				t.Errorf("%s: %q: err = %v, want ErrBadScan and %v", p.Name, tc.frame, err, tc.wantErr)
			}
			if sc.GTIN != "" || sc.Raw != tc.frame {
				t.Errorf("%s: %q: a rejected scan carries GTIN %q, raw %q", p.Name, tc.frame, sc.GTIN, sc.Raw)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %q: %v", p.Name, tc.frame, err)
			continue
		}
		if sc.Raw != tc.frame || sc.Symbology != tc.sym || sc.GTIN != tc.gtin || sc.AIs.Bracketed() != tc.ais ||
			(sc.DigitalLink != nil) != tc.dl || sc.Guessed == p.Barcode.AIM {
			t.Errorf("%s: %q: got raw %q sym %v gtin %q ais %q dl %v guessed %v; want sym %v gtin %q ais %q dl %v",
				p.Name, tc.frame, sc.Raw, sc.Symbology, sc.GTIN, sc.AIs.Bracketed(), sc.DigitalLink != nil, sc.Guessed,
				tc.sym, tc.gtin, tc.ais, tc.dl)
		}
	}
}

func TestParseBarcode_AIM(t *testing.T) {
	runScanCases(t, shipped(t, "generic-line-scanner"), []scanCase{
		{frame: "]E04006381333931", sym: gs1.SymEAN13, gtin: "04006381333931"},
		{frame: "]E00036000291452", sym: gs1.SymEAN13, gtin: "00036000291452"},
		// ]E0 data is 13 digits (AIM; the corpus agrees). A 12-digit UPC-A
		// or 8-digit UPC-E is refused, not padded: an EAN-13 that lost a
		// digit on the line would pass as a UPC-A one time in ten.
		{frame: "]E0036000291452", wantErr: gs1.ErrLength},
		{frame: "]E004252614", wantErr: gs1.ErrLength},
		{frame: "]E496385074", sym: gs1.SymEAN8, gtin: "00000096385074"},
		{frame: "]E3978020137962451299", sym: gs1.SymEAN13AddOn, gtin: "09780201379624"},
		{frame: "]C1010950600013435217261231" + "10ABC", sym: gs1.SymGS1_128, gtin: "09506000134352", ais: "(01)09506000134352(17)261231(10)ABC"},
		{frame: "]d201095060001343521726123110ABC\x1d21XYZ", sym: gs1.SymDataMatrix, gtin: "09506000134352",
			ais: "(01)09506000134352(17)261231(10)ABC(21)XYZ"},
		// FNC1 in first position sent as GS.
		{frame: "]d2\x1d0109506000134352", sym: gs1.SymDataMatrix, gtin: "09506000134352", ais: "(01)09506000134352"},
		{frame: "]Q3010950600013435217261231", sym: gs1.SymQR, gtin: "09506000134352", ais: "(01)09506000134352(17)261231"},
		{frame: "]Q1https://id.gs1.org/01/09506000134352/10/ABC?17=261231", sym: gs1.SymQR, gtin: "09506000134352",
			ais: "(01)09506000134352(10)ABC(17)261231", dl: true},
		{frame: "]Q1https://example.com/menu", sym: gs1.SymQR},
		{frame: "]A0SKU-42", sym: gs1.SymCode39},
		{frame: "]C0INTERNAL 0042", sym: gs1.SymCode128},
		{frame: "]E04006381333932", wantErr: gs1.ErrCheckDigit},
		{frame: "]C10109506000134353", wantErr: gs1.ErrCheckDigit},
		{frame: "]C1891234", wantErr: gs1.ErrUnknownAI},
		{frame: "]Q1https://id.gs1.org/01/09506000134353", wantErr: gs1.ErrCheckDigit},
		{frame: "]Q3https://id.gs1.org/01/09506000134352", wantErr: gs1.ErrUnknownAI},
		{frame: "4006381333931", wantErr: gs1.ErrSymbology},
		{frame: "]X94006381333931", wantErr: gs1.ErrSymbology},
		{frame: "", wantErr: gs1.ErrSymbology},
	})
}

func TestParseBarcode_NoAIM(t *testing.T) {
	runScanCases(t, shipped(t, "line-scanner-no-aim"), []scanCase{
		{frame: "4006381333931", sym: gs1.SymEAN13, gtin: "04006381333931"},
		{frame: "036000291452", sym: gs1.SymEAN13, gtin: "00036000291452"},
		{frame: "96385074", sym: gs1.SymEAN8, gtin: "00000096385074"},
		{frame: "10614141000415", sym: gs1.SymITF, gtin: "10614141000415"},
		{frame: "https://id.gs1.org/01/09506000134352", gtin: "09506000134352", ais: "(01)09506000134352", dl: true},
		{frame: "https://example.com/menu"},
		{frame: "0109506000134352" + "10ABC\x1d21XYZ", gtin: "09506000134352", ais: "(01)09506000134352(10)ABC(21)XYZ"},
		{frame: "\x1d0109506000134352", gtin: "09506000134352", ais: "(01)09506000134352"},
		{frame: "123456"},
		{frame: "010950600013435217261231"}, // GS1 data without a GS cannot be told from a number
		{frame: "SKU-42"},
		{frame: "4006381333932", wantErr: gs1.ErrCheckDigit},
		{frame: "96385075", wantErr: gs1.ErrCheckDigit},
		{frame: "0109506000134353" + "10ABC\x1d21X", wantErr: gs1.ErrCheckDigit},
		{frame: "https://id.gs1.org/01/09506000134353", wantErr: gs1.ErrCheckDigit},
		{frame: "", wantErr: gs1.ErrSymbology},
	})
}

func TestParseBarcode_CustomSeparator(t *testing.T) {
	body := scannerBase + "  gs1_separator: \"~\"\n"
	p, err := LoadFile(writeProfile(t, t.TempDir(), "s", "tilde", body))
	if err != nil {
		t.Fatal(err)
	}
	runScanCases(t, p, []scanCase{
		{frame: "]d20109506000134352" + "10ABC~21XYZ", sym: gs1.SymDataMatrix, gtin: "09506000134352",
			ais: "(01)09506000134352(10)ABC(21)XYZ"},
	})
}

func TestParseBarcode_WrongMeaning(t *testing.T) {
	if _, err := shipped(t, "uhf-a0-r2000").ParseBarcode([]byte("]E04006381333931")); !errors.Is(err, ErrWrongMeaning) {
		t.Fatalf("err = %v", err)
	}
}
