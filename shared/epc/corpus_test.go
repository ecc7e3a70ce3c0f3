package epc

import (
	"fmt"
	"strings"
	"testing"

	"github.com/omnisync/omnisync/shared/gs1"
)

// sameHex compares EPC hex modulo trailing zero padding: readers and
// libraries print SGTIN-198 as 50 or 52 hex digits.
func sameHex(a, b string) bool {
	a, b = strings.ToUpper(a), strings.ToUpper(b)
	for len(a) < len(b) {
		a += "0"
	}
	for len(b) < len(a) {
		b += "0"
	}
	return a == b
}

func num(r row, k string) (int, bool) {
	f, ok := r[k].(float64)
	return int(f), ok
}

// checkTagFields compares whatever fields a row states with a decoded tag.
func checkTagFields(r row, t Tag) error {
	type kv struct{ name, got string }
	checks := []kv{{"uri", t.PureURI}, {"tag_uri", t.TagURI}, {"company_prefix", t.CompanyPrefix}}
	if t.SGTIN != nil {
		checks = append(checks, kv{"gtin", t.SGTIN.GTIN()}, kv{"serial", t.SGTIN.Serial})
	}
	if _, ok := r["gs1_element_string"].(string); ok {
		checks = append(checks, kv{"gs1_element_string", t.GS1.HRI()})
	}
	for _, c := range checks {
		if want, ok := r[c.name].(string); ok && want != c.got {
			return fmt.Errorf("%s = %q, want %q", c.name, c.got, want)
		}
	}
	if f, ok := num(r, "filter"); ok && f != t.Filter {
		return fmt.Errorf("filter = %d, want %d", t.Filter, f)
	}
	if p, ok := num(r, "partition"); ok && p != t.Partition {
		return fmt.Errorf("partition = %d, want %d", t.Partition, p)
	}
	if ir, ok := num(r, "item_reference_int"); ok && t.SGTIN != nil && fmt.Sprint(ir) != strings.TrimLeft(t.SGTIN.ItemRef, "0") {
		return fmt.Errorf("item reference = %s, want %d", t.SGTIN.ItemRef, ir)
	}
	return nil
}

// cpLenFromURI reads the company prefix length from a pure-identity URI;
// the GTIN alone does not carry it (it comes from GS1 allocation data).
func cpLenFromURI(uri string) int {
	f := strings.Split(uri[strings.LastIndexByte(uri[:strings.IndexByte(uri, '.')], ':')+1:], ".")
	return len(f[0])
}

// bracketPairs splits "(01)...(21)..." without validating the AIs, for
// rows that print GTINs before zero padding.
func bracketPairs(s string) gs1.ElementString {
	var es gs1.ElementString
	for _, part := range strings.Split(s, "(")[1:] {
		ai, v, _ := strings.Cut(part, ")")
		es = append(es, gs1.AIValue{AI: ai, Value: v})
	}
	return es
}

var sgtinExceptions = map[string]string{}

func TestCorpusSGTIN(t *testing.T) {
	runCorpus(t, "epc/sgtin.jsonl", sgtinExceptions, func(r row) error {
		valid := r.Bool("valid")
		scheme := Scheme(r.Str("scheme"))
		filter, _ := num(r, "filter")
		switch op := r.Str("op"); op {
		case "decode", "decode_and_encode":
			tag, err := Decode(r.Str("hex"))
			if (err == nil) != valid {
				return fmt.Errorf("Decode err = %v, want valid=%v", err, valid)
			}
			if err != nil {
				return nil
			}
			if err := checkTagFields(r, tag); err != nil {
				return err
			}
			if op == "decode_and_encode" {
				h, err := tag.Encode()
				if err != nil || !sameHex(h, r.Str("hex")) {
					return fmt.Errorf("Encode = %s (%v), want %s", h, err, r.Str("hex"))
				}
				if tu := r.Str("tag_uri"); tu != "" {
					pt, err := ParseTagURI(tu)
					if err != nil {
						return err
					}
					if h2, _ := pt.Encode(); !sameHex(h2, r.Str("hex")) {
						return fmt.Errorf("tag URI encodes to %s", h2)
					}
				}
			}
			return nil
		case "encode_and_decode", "encode", "pure_uri_to_tag_uri":
			var s SGTIN
			var err error
			if uri := r.Str("uri"); uri != "" {
				s, err = ParseSGTINURI(uri)
			} else {
				cpl, _ := num(r, "company_prefix_length")
				s, err = SGTINFromGTIN(r.Str("gtin"), cpl, r.Str("serial"))
			}
			if err != nil {
				return err
			}
			tu, err := s.TagURI(scheme, filter)
			if (err == nil) != valid {
				return fmt.Errorf("TagURI err = %v, want valid=%v", err, valid)
			}
			if err != nil {
				return nil
			}
			if want := r.Str("tag_uri"); want != "" && tu != want {
				return fmt.Errorf("tag URI %q, want %q", tu, want)
			}
			h, err := s.Encode(scheme, filter)
			if err != nil {
				return err
			}
			if want := r.Str("hex"); want != "" && !sameHex(h, want) {
				return fmt.Errorf("hex %s, want %s", h, want)
			}
			back, err := Decode(h)
			if err != nil || back.PureURI != s.PureURI() {
				return fmt.Errorf("Decode(Encode) = %q (%v)", back.PureURI, err)
			}
			return checkTagFields(r, back)
		case "gtin_to_pure_uri":
			s, err := SGTINFromGTIN(r.Str("gtin_input"), cpLenFromURI(r.Str("uri")), r.Str("serial"))
			if err != nil || s.PureURI() != r.Str("uri") {
				return fmt.Errorf("uri %q (%v)", s.PureURI(), err)
			}
			return nil
		case "gs1_to_pure_uri":
			s, err := SGTINFromElementString(bracketPairs(r.Str("gs1_element_string")), cpLenFromURI(r.Str("uri")))
			if err != nil || s.PureURI() != r.Str("uri") {
				return fmt.Errorf("uri %q (%v)", s.PureURI(), err)
			}
			return nil
		case "pure_uri_parse":
			s, err := ParseSGTINURI(r.Str("uri"))
			if (err == nil) != valid {
				return fmt.Errorf("err = %v, want valid=%v", err, valid)
			}
			if err == nil && s.PureURI() != r.Str("uri") {
				return fmt.Errorf("round trip %q", s.PureURI())
			}
			return nil
		case "pure_uri_to_gs1":
			s, err := ParseSGTINURI(r.Str("uri"))
			if err != nil {
				return err
			}
			n := map[string]int{"GTIN14": 14, "GTIN13": 13, "GTIN12": 12, "GTIN8": 8}[r.Str("gtin_type")]
			key, err := s.ShortGTIN(n)
			if (err == nil) != valid {
				return fmt.Errorf("ShortGTIN err = %v, want valid=%v", err, valid)
			}
			if err != nil {
				return nil
			}
			if key != r.Str("gs1_key") || s.ElementString().HRI() != r.Str("gs1_element_string") {
				return fmt.Errorf("key %q, element string %q", key, s.ElementString().HRI())
			}
			if g := r.Str("gtin"); g != "" && g != s.GTIN() {
				return fmt.Errorf("gtin %q", s.GTIN())
			}
			cpl, _ := num(r, "company_prefix_length")
			back, err := SGTINFromElementString(s.ElementString(), cpl)
			if err != nil || back.PureURI() != r.Str("uri") {
				return fmt.Errorf("back to URI %q (%v)", back.PureURI(), err)
			}
			return nil
		case "tag_uri_syntax", "tag_uri_parse":
			tag, err := ParseTagURI(r.Str("tag_uri"))
			if (err == nil) != valid {
				return fmt.Errorf("err = %v, want valid=%v", err, valid)
			}
			if err != nil {
				return nil
			}
			if s := r.Str("serial"); s != "" && tag.SGTIN.Serial != s {
				return fmt.Errorf("serial %q", tag.SGTIN.Serial)
			}
			if f, ok := num(r, "filter"); ok && f != tag.Filter {
				return fmt.Errorf("filter %d", tag.Filter)
			}
			return nil
		}
		return fmt.Errorf("unhandled op %q", r.Str("op"))
	})
}

// otherSchemeExceptions: variable-length schemes are recognised but not
// decoded (see the package documentation).
var otherSchemeExceptions = map[string]string{
	"tds113-E3-cpi-var":   "CPI-var (variable length) not decoded",
	"tds113-E3-adi-var":   "ADI-var (variable length) not decoded",
	"epcpy-test_data-L27": "ADI-var (variable length) not decoded",
	"epcpy-test_data-L44": "CPI-var (variable length) not decoded",
}

// Rows without a hex value describe pure-identity-only schemes (BIC, GINC,
// GSIN, IMOVN, LGTIN, PGLN, UPUI) that have no tag encoding to decode; they
// are counted as not applicable.
func TestCorpusOtherSchemes(t *testing.T) {
	runCorpus(t, "epc/other_schemes.jsonl", otherSchemeExceptions, func(r row) error {
		h := r.Str("hex")
		if h == "" {
			return errNotApplicable
		}
		tag, err := Decode(h)
		if err != nil {
			return err
		}
		if string(tag.Scheme) != r.Str("scheme") {
			return fmt.Errorf("scheme %q", tag.Scheme)
		}
		return checkTagFields(r, tag)
	})
}
