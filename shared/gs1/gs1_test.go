package gs1

import (
	"errors"
	"testing"
)

func TestAITableOrdered(t *testing.T) {
	for i := 1; i < len(aiTable); i++ {
		if aiTable[i-1].first >= aiTable[i].first {
			t.Fatalf("aiTable not in lexical order at %s / %s", aiTable[i-1].first, aiTable[i].first)
		}
	}
	for _, d := range aiTable {
		if got := lookupAI(d.first); got == nil || got.first != d.first {
			t.Errorf("lookupAI(%s) failed", d.first)
		}
		if got := lookupAI(d.last); got == nil || got.first != d.first {
			t.Errorf("lookupAI(%s) failed", d.last)
		}
		if d.fixedLen && d.minLen() != d.maxLen() {
			t.Errorf("AI %s is predefined-length but variable", d.first)
		}
		if n := prefixLen(d.first); n != len(d.first) {
			t.Errorf("prefix table says %d digits for AI %s", n, d.first)
		}
	}
}

func TestLookupAI(t *testing.T) {
	tests := []struct {
		ai    string
		found bool
		fixed bool
	}{
		{"01", true, true}, {"10", true, false}, {"3103", true, true}, {"3106", false, false},
		{"7040", true, false}, {"710", true, false}, {"8200", true, false}, {"95", true, false},
		{"0", false, false}, {"12345", false, false}, {"1A", false, false}, {"23", false, false},
	}
	for _, tt := range tests {
		info, ok := LookupAI(tt.ai)
		if ok != tt.found || info.FixedLength != tt.fixed {
			t.Errorf("LookupAI(%q) = %+v, %v", tt.ai, info, ok)
		}
	}
}

func TestGTINHelpers(t *testing.T) {
	tests := []struct {
		in, gtin14 string
		err        error
	}{
		{"09506000134352", "09506000134352", nil},
		{"9506000134352", "09506000134352", nil},
		{"416000336108", "00416000336108", nil},
		{"02345673", "00000002345673", nil},
		{"978-0-471-11709-4", "09780471117094", nil},
		{"9506000134353", "", ErrCheckDigit},
		{"95060001343", "", ErrLength},
		{"95060A0134352", "", ErrCharset},
	}
	for _, tt := range tests {
		got, err := NormalizeGTIN(tt.in)
		if got != tt.gtin14 || !errors.Is(err, tt.err) {
			t.Errorf("NormalizeGTIN(%q) = %q, %v; want %q, %v", tt.in, got, err, tt.gtin14, tt.err)
		}
	}
	if s := ShortestGTIN("00000002345673"); s != "02345673" {
		t.Errorf("ShortestGTIN = %q", s)
	}
	if c, _ := CheckDigit("950600013435"); c != '2' {
		t.Errorf("CheckDigit = %c", c)
	}
}

func TestParseErrorsAreTyped(t *testing.T) {
	tests := []struct {
		in   string
		want error
		ai   string
	}{
		{"(01)09506000134353", ErrCheckDigit, "01"},
		{"(01)0950600013435", ErrLength, "01"},
		{"(10)AB~C", ErrCharset, "10"},
		{"(17)201332", ErrDate, "17"},
		{"(89)X", ErrUnknownAI, "89"},
		{"01)X", ErrSyntax, ""},
		{"(4307)ZZ", ErrValue, "4307"},
	}
	for _, tt := range tests {
		_, err := ParseBracketed(tt.in)
		var ge *Error
		if !errors.Is(err, tt.want) || !errors.As(err, &ge) || ge.AI != tt.ai {
			t.Errorf("ParseBracketed(%q) = %v, want %v for AI %q", tt.in, err, tt.want, tt.ai)
		}
	}
	_, err := Parser{Associations: true}.ParseBracketed("(21)ABC")
	if !errors.Is(err, ErrAssociation) {
		t.Errorf("association error not reported: %v", err)
	}
}

func TestElementStringRoundTrip(t *testing.T) {
	in := "(01)09506000134352(17)201225(10)AB\\(C(21)XYZ"
	es, err := ParseBracketed(in)
	if err != nil {
		t.Fatal(err)
	}
	if es.Bracketed() != in {
		t.Errorf("Bracketed = %q", es.Bracketed())
	}
	if es.GTIN() != "09506000134352" {
		t.Errorf("GTIN = %q", es.GTIN())
	}
	if v, ok := es.Get("10"); !ok || v != "AB(C" {
		t.Errorf("Get(10) = %q", v)
	}
	raw := es.Raw()
	if raw != "010950600013435217201225"+"10AB(C\x1d21XYZ" {
		t.Errorf("Raw = %q", raw)
	}
	back, err := ParseUnbracketed(raw, GS)
	if err != nil || back.Bracketed() != in {
		t.Errorf("ParseUnbracketed(Raw) = %v, %v", back, err)
	}
	uri, err := es.DigitalLinkURI(DefaultStem, DLOptions{})
	if err != nil || uri != "https://id.gs1.org/01/09506000134352/10/AB%28C/21/XYZ?17=201225" {
		t.Errorf("DigitalLinkURI = %q, %v", uri, err)
	}
}

func TestParseScan(t *testing.T) {
	tests := []struct {
		raw, gtin string
		sym       Symbology
		nAIs      int
	}{
		{"]C10109506000134352\x1d", "09506000134352", SymGS1_128, 1},
		{"]E09506000134352\r\n", "09506000134352", SymEAN13, 0},
		{"]E402345673", "00000002345673", SymEAN8, 0},
		{"]Q1https://id.gs1.org/01/09506000134352/10/ABC?17=201225", "09506000134352", SymQR, 3},
		{"]d20109506000134352" + "10ABC\x1d17201225", "09506000134352", SymDataMatrix, 3},
		{"]I114012345678901", "", SymITF, 0},
		{"]Q1hello", "", SymQR, 0},
	}
	for _, tt := range tests {
		sc, err := ParseScan(tt.raw)
		if err != nil || sc.GTIN != tt.gtin || sc.Symbology != tt.sym || len(sc.AIs) != tt.nAIs {
			t.Errorf("ParseScan(%q) = %+v, %v", tt.raw, sc, err)
		}
	}
	if _, err := ParseScan("]C1012345"); !errors.Is(err, ErrLength) {
		t.Errorf("short GS1-128 error = %v", err)
	}
	if _, err := ParseScan("XYZ"); !errors.Is(err, ErrSymbology) {
		t.Errorf("missing identifier error = %v", err)
	}
}
