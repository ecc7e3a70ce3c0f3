package gs1

import (
	"strings"
)

// Symbology identifies a barcode symbology family as reported by the AIM
// symbology identifier a scanner prefixes to its data ("]C1", "]Q3", ...).
type Symbology uint8

// Symbologies. Parsing reports the family a symbology identifier stands
// for; the finer DataBar and UPC values are only meaningful to GenerateScan
// (a scanner sends "]e0" for every GS1 DataBar and "]E0" for EAN-13, UPC-A
// and UPC-E alike).
const (
	SymNone           Symbology = iota
	SymGS1_128                  // ]C1 GS1-128 (Code 128 with FNC1 first)
	SymCode128                  // ]C0 plain Code 128
	SymDataBar                  // ]e0 GS1 DataBar family and GS1 composites
	SymDataBarOmni              // generation only: DataBar Omnidirectional/Truncated/Stacked
	SymDataBarLimited           // generation only: DataBar Limited
	SymEAN13                    // ]E0 EAN-13 (and UPC-A/UPC-E as 13 digits)
	SymUPCA                     // generation only
	SymUPCE                     // generation only (12-digit expanded form)
	SymEAN8                     // ]E4 EAN-8
	SymEAN13AddOn               // ]E3 EAN/UPC with a 2- or 5-digit add-on
	SymDataMatrix               // ]d1 plain, ]d2 GS1 DataMatrix
	SymQR                       // ]Q1 plain, ]Q3 GS1 QR Code
	SymDotCode                  // ]J0 plain, ]J1 GS1 DotCode
	SymAztec                    // ]z0 plain, ]z1 GS1 Aztec
	SymCode39                   // ]A0 Code 39
	SymITF                      // ]I0/]I1 Interleaved 2 of 5 (ITF-14)
)

var symNames = [...]string{
	SymNone: "none", SymGS1_128: "GS1-128", SymCode128: "Code 128", SymDataBar: "GS1 DataBar",
	SymDataBarOmni: "GS1 DataBar Omnidirectional", SymDataBarLimited: "GS1 DataBar Limited",
	SymEAN13: "EAN-13", SymUPCA: "UPC-A", SymUPCE: "UPC-E", SymEAN8: "EAN-8", SymEAN13AddOn: "EAN/UPC with add-on",
	SymDataMatrix: "DataMatrix", SymQR: "QR Code", SymDotCode: "DotCode", SymAztec: "Aztec",
	SymCode39: "Code 39", SymITF: "ITF",
}

func (s Symbology) String() string {
	if int(s) < len(symNames) {
		return symNames[s]
	}
	return "unknown"
}

// symID describes one AIM symbology identifier.
type symID struct {
	id  string
	sym Symbology
	gs1 bool // data is GS1 AI data (FNC1 in first position)
}

var symIDs = [...]symID{
	{"C0", SymCode128, false}, {"C1", SymGS1_128, true},
	{"e0", SymDataBar, true},
	{"E0", SymEAN13, false}, {"E3", SymEAN13AddOn, false}, {"E4", SymEAN8, false},
	{"d1", SymDataMatrix, false}, {"d2", SymDataMatrix, true},
	{"Q0", SymQR, false}, {"Q1", SymQR, false}, {"Q3", SymQR, true},
	{"J0", SymDotCode, false}, {"J1", SymDotCode, true},
	{"z0", SymAztec, false}, {"z1", SymAztec, true},
	{"A0", SymCode39, false},
	{"I0", SymITF, false}, {"I1", SymITF, false},
}

// Scan is the interpretation of one raw scanner transmission.
type Scan struct {
	Symbology Symbology
	// SymbologyID is the AIM identifier as received, e.g. "]Q3".
	SymbologyID string
	// GS1 is true when the symbol carried GS1 AI data (FNC1 mode, an
	// EAN/UPC or DataBar primary) or a valid GS1 Digital Link.
	GS1 bool
	// GTIN is the GTIN-14 identified by the scan: AI (01), the EAN/UPC or
	// ITF-14 primary number, or the Digital Link's (01). Empty if none.
	GTIN string
	// AIs are the AIs present, in order: those of GS1 data, of a composite
	// component, or extracted from a Digital Link. An EAN/UPC primary is
	// not repeated here as an implied (01); use GTIN.
	AIs ElementString
	// Data is everything after the symbology identifier, unchanged (GS
	// separators kept).
	Data string
	// Primary is the EAN/UPC/ITF number as scanned, when there is one.
	Primary string
	// DigitalLink is set when plain data is a GS1 Digital Link URI.
	DigitalLink *DigitalLink
}

// ScanParser holds the policies used by ParseScan; the zero value is strict.
type ScanParser struct {
	Parser Parser    // element string policy for GS1 data
	DL     DLOptions // Digital Link policy for URIs in plain data
}

// ParseScan interprets a raw scanner payload with the default policies.
func ParseScan(raw string) (Scan, error) { return ScanParser{}.ParseScan(raw) }

// ParseScan interprets a raw scanner payload: the AIM symbology identifier,
// then GS1 AI data (GS as separator), an EAN/UPC primary number with an
// optional "|]e0" composite message, or plain data. Plain data that starts
// with http(s):// is parsed as a Digital Link; if that fails the returned
// Scan still carries the plain Data alongside an error wrapping
// ErrDigitalLink, so callers can fall back to treating it as a plain URL.
// A single trailing CR/LF (a common scanner suffix) is ignored.
func (sp ScanParser) ParseScan(raw string) (Scan, error) {
	var sc Scan
	if len(raw) > MaxInputLen {
		return sc, newErr(ErrSymbology, "", MaxInputLen, "scan too long")
	}
	raw = strings.TrimSuffix(strings.TrimSuffix(raw, "\n"), "\r")
	if len(raw) < 3 || raw[0] != ']' {
		return sc, newErr(ErrSymbology, "", 0, "missing symbology identifier")
	}
	var id *symID
	for i := range symIDs {
		if raw[1:3] == symIDs[i].id {
			id = &symIDs[i]
			break
		}
	}
	if id == nil {
		return sc, newErr(ErrSymbology, "", 1, "unsupported symbology identifier "+raw[:3])
	}
	sc.Symbology, sc.SymbologyID, sc.Data = id.sym, raw[:3], raw[3:]
	data := sc.Data

	switch id.sym {
	case SymEAN13, SymEAN8, SymEAN13AddOn:
		return sp.parseEAN(sc)
	case SymITF:
		if len(data) == 14 && ValidateCheckDigit(data) == nil {
			sc.Primary, sc.GTIN, sc.GS1 = data, data, true
		}
		return sc, nil
	}
	if id.gs1 {
		es, err := sp.parseGS1(data, 3)
		if err != nil {
			return Scan{}, err
		}
		sc.GS1, sc.AIs, sc.GTIN = true, es, es.GTIN()
		return sc, nil
	}
	if IsDigitalLinkScheme(data) {
		dl, err := sp.DL.Parse(data)
		if err != nil {
			return sc, err
		}
		sc.GS1, sc.AIs, sc.GTIN, sc.DigitalLink = true, dl.AIs, dl.GTIN(), &dl
	}
	return sc, nil
}

// parseGS1 parses GS1 AI data as scanners send it.
func (sp ScanParser) parseGS1(data string, base int) (ElementString, error) {
	if data == "" {
		return nil, newErr(ErrSymbology, "", base, "empty GS1 data")
	}
	if i := strings.IndexByte(data, '^'); i >= 0 {
		// "^" is reserved for FNC1 in caret notation; as data it can only
		// come from a mangled transmission.
		return nil, newErr(ErrCharset, "", base+i, `"^" is not a GS1 character`)
	}
	es, err := sp.Parser.ParseUnbracketed(data, GS)
	if e, ok := err.(*Error); ok && e.Pos >= 0 {
		e.Pos += base
	}
	return es, err
}

func (sp ScanParser) parseEAN(sc Scan) (Scan, error) {
	n := 13
	switch sc.Symbology {
	case SymEAN8:
		n = 8
	case SymEAN13AddOn:
		// EAN-13 followed by a 2- or 5-digit add-on (price, issue number).
		if len(sc.Data) != 15 && len(sc.Data) != 18 {
			return Scan{}, newErr(ErrSymbology, "", 3, "EAN with add-on must have 15 or 18 digits")
		}
	}
	data := sc.Data
	if len(data) < n {
		return Scan{}, newErr(ErrLength, "", 3, "primary data too short")
	}
	primary, cc := data[:n], ""
	if rest := data[n:]; rest != "" && sc.Symbology != SymEAN13AddOn {
		if !strings.HasPrefix(rest, "|]e0") {
			return Scan{}, newErr(ErrLength, "", 3+n, "primary data too long")
		}
		cc = rest[4:]
	}
	if i := firstNot(primary, isDigit); i >= 0 {
		return Scan{}, newErr(ErrCharset, "", 3+i, "primary data must be digits")
	}
	if err := ValidateCheckDigit(primary); err != nil {
		return Scan{}, err
	}
	sc.Primary, sc.GS1 = primary, true
	sc.GTIN = strings.Repeat("0", 14-n) + primary
	if cc != "" || strings.HasSuffix(data, "|]e0") {
		es, err := sp.parseGS1(cc, 3+n+4)
		if err != nil {
			return Scan{}, err
		}
		sc.AIs = es
	}
	return sc, nil
}

// Caret renders the scan in the "^" data notation: GS1 data as
// "^01...^10...", an EAN/UPC composite as "primary|^AIs", plain data with a
// leading "^" escaped as `\^`.
func (sc Scan) Caret() string {
	switch {
	case sc.Primary != "" && sc.Symbology != SymITF:
		if len(sc.AIs) > 0 {
			return sc.Primary + "|^" + strings.ReplaceAll(sc.Data[len(sc.Primary)+4:], "\x1d", "^")
		}
		return sc.Primary
	case sc.GS1 && sc.DigitalLink == nil:
		return "^" + strings.ReplaceAll(sc.Data, "\x1d", "^")
	}
	return escapeCaretPlain(sc.Data)
}

// escapeCaretPlain marks plain data that would otherwise read as GS1 data:
// a leading run of backslashes followed by "^" gets one more backslash.
func escapeCaretPlain(s string) string {
	i := 0
	for i < len(s) && s[i] == '\\' {
		i++
	}
	if i < len(s) && s[i] == '^' {
		return `\` + s
	}
	return s
}

func unescapeCaretPlain(s string) string {
	i := 0
	for i < len(s) && s[i] == '\\' {
		i++
	}
	if i > 0 && i < len(s) && s[i] == '^' {
		return s[1:]
	}
	return s
}
