package downsync

import (
	"errors"
	"fmt"
	"strings"

	"github.com/omnisync/omnisync/shared/epc"
	"github.com/omnisync/omnisync/shared/events"
	"github.com/omnisync/omnisync/shared/gs1"
)

// ErrInvalidCode is wrapped by ParseCode when a code looks like a barcode,
// Digital Link or EPC but is not a valid one (a wrong check digit, a
// malformed URI); the page says "not a valid code", not "not found".
var ErrInvalidCode = errors.New("not a valid code")

// How a code was understood.
const (
	BySKU           = "sku"
	ByGTIN          = "gtin"
	ByElementString = "element_string"
	ByDigitalLink   = "digital_link"
	ByEPC           = "epc"
	ByScan          = "scan"
)

// Match is a code as understood: the GTIN it names (and serial or batch
// when the carrier has them), or a SKU.
type Match struct {
	By     string `json:"by"`
	SKU    string `json:"sku,omitempty"`
	GTIN   string `json:"gtin,omitempty"`
	Serial string `json:"serial,omitempty"`
	Batch  string `json:"batch,omitempty"`
	EPC    string `json:"epc,omitempty"`
}

// Code is the outcome of ParseCode: SKU is set when the text could be a
// SKU (the caller tries it first: an exact SKU always wins), GTIN when it
// decodes to one. Err is set when it looked like a GS1 or EPC code but is
// not a valid one; SKU may still be set then.
type Code struct {
	SKU  string
	GTIN Match
	Err  error
}

// ParseCode reads whatever a shopper scanned or typed: a SKU, a GTIN-8/12/
// 13/14, a GS1 element string (bracketed, with FNC1 as GS or "^", or as a
// scanner sends it with an AIM identifier), a GS1 Digital Link URI, an EPC
// as hex, or an EPC pure-identity or tag URI.
func ParseCode(raw string) Code {
	s := strings.TrimSpace(raw)
	var c Code
	if events.ValidSKU(s) == nil {
		c.SKU = s
	}
	m, err := parseGS1(s)
	c.GTIN, c.Err = m, err
	if err != nil && m.GTIN == "" {
		c.GTIN = Match{}
	}
	return c
}

func parseGS1(s string) (Match, error) {
	switch {
	case s == "":
		return Match{}, fmt.Errorf("%w: empty", ErrInvalidCode)
	case strings.HasPrefix(s, "urn:epc:id:sgtin:"):
		sg, err := epc.ParseSGTINURI(s)
		if err != nil {
			return Match{}, fmt.Errorf("%w: %v", ErrInvalidCode, err)
		}
		return Match{By: ByEPC, GTIN: sg.GTIN(), Serial: sg.Serial, EPC: sg.PureURI()}, nil
	case strings.HasPrefix(s, "urn:epc:"):
		t, err := epc.ParseTagURI(s)
		if err != nil {
			return Match{}, fmt.Errorf("%w: %v", ErrInvalidCode, err)
		}
		return fromTag(t, s)
	case strings.HasPrefix(strings.ToLower(s), "http://"), strings.HasPrefix(strings.ToLower(s), "https://"):
		if gs1.IsCompressedDigitalLink(s) {
			return Match{}, fmt.Errorf("%w: compressed Digital Link URIs are not supported; scan the uncompressed form", ErrInvalidCode)
		}
		dl, err := dlOptions.Parse(s)
		if err != nil {
			return Match{}, fmt.Errorf("%w: %v", ErrInvalidCode, err)
		}
		m := Match{By: ByDigitalLink, GTIN: dl.GTIN()}
		fill(&m, dl.AIs)
		if m.GTIN == "" {
			return Match{}, fmt.Errorf("%w: the Digital Link names no GTIN (01)", ErrInvalidCode)
		}
		return m, nil
	case strings.HasPrefix(s, "]"):
		sc, err := gs1.ParseScan(s)
		if err != nil {
			return Match{}, fmt.Errorf("%w: %v", ErrInvalidCode, err)
		}
		if sc.GTIN == "" {
			return Match{}, fmt.Errorf("%w: the scan carries no GTIN", ErrInvalidCode)
		}
		m := Match{By: ByScan, GTIN: sc.GTIN}
		fill(&m, sc.AIs)
		return m, nil
	case strings.HasPrefix(s, "("), strings.HasPrefix(s, "^"), strings.ContainsRune(s, gs1.GS):
		return elementString(s)
	case isHexEPC(s):
		t, err := epc.Decode(s)
		if err != nil {
			return Match{}, fmt.Errorf("%w: %v", ErrInvalidCode, err)
		}
		return fromTag(t, s)
	case allDigits(s):
		switch len(s) {
		case 8, 12, 13, 14:
			g, err := gs1.NormalizeGTIN(s)
			if err != nil {
				return Match{}, fmt.Errorf("%w: %v", ErrInvalidCode, err)
			}
			return Match{By: ByGTIN, GTIN: g}, nil
		}
	case len(s) > 16 && strings.HasPrefix(s, "01") && allDigits(s[:16]):
		// An element string without brackets, as a scanner without AIM
		// identifiers sends it: (01) first, then more AIs.
		return elementString(s)
	}
	return Match{}, nil
}

var dlOptions = gs1.DLOptions{
	PermitZeroSuppressedGTIN: true, PermitConvenienceAlphas: true, PermitTrailingSlash: true,
	ReorderQualifiers: true, PermitUnknownAIs: true,
}

func elementString(s string) (Match, error) {
	es, err := gs1.ParseElementString(s)
	if err != nil {
		return Match{}, fmt.Errorf("%w: %v", ErrInvalidCode, err)
	}
	m := Match{By: ByElementString, GTIN: es.GTIN()}
	fill(&m, es)
	if m.GTIN == "" {
		return Match{}, fmt.Errorf("%w: the element string names no GTIN (01)", ErrInvalidCode)
	}
	return m, nil
}

func fromTag(t epc.Tag, raw string) (Match, error) {
	if t.SGTIN == nil {
		return Match{}, fmt.Errorf("%w: EPC scheme %s does not identify a product", ErrInvalidCode, t.Scheme)
	}
	_ = raw
	return Match{By: ByEPC, GTIN: t.SGTIN.GTIN(), Serial: t.SGTIN.Serial, EPC: t.PureURI}, nil
}

func fill(m *Match, es gs1.ElementString) {
	if v, ok := es.Get("21"); ok {
		m.Serial = v
	}
	if v, ok := es.Get("10"); ok {
		m.Batch = v
	}
	if m.GTIN == "" {
		m.GTIN = es.GTIN()
	}
}

// isHexEPC spots EPC memory as readers report it: 24 hex digits for the
// 96-bit schemes, 50 or 52 for SGTIN-198, starting with a GS1 EPC header
// byte. Digit-only strings of those lengths are element strings unless the
// header says otherwise.
func isHexEPC(s string) bool {
	s = strings.TrimPrefix(strings.TrimPrefix(s, "0x"), "0X")
	if len(s) != 24 && len(s) != 50 && len(s) != 52 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
			return false
		}
	}
	h := strings.ToUpper(s[:2])
	return h == "30" || h == "36"
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

// ErrNotFound is returned by lookups for a valid code that names no product
// in the catalog.
var ErrNotFound = errors.New("product not found")
