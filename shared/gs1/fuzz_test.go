package gs1

import (
	"reflect"
	"sort"
	"testing"
)

// Fuzz targets: parsers must never panic, and whatever they accept must
// re-encode to something that parses back to the same AIs.

func FuzzParseElementString(f *testing.F) {
	for _, s := range []string{
		"(01)09506000134352(10)ABC", "^0112345678901231^991234", "0112345678901231" + "10AB\x1d21X",
		"(8110)0123456123456111101231011012371234567890123", "(4309)0279085848301529797", "(10)12345\\(11)",
		"(01)12312312312333|(99)X", "^800302112345678900ABC", "(7258)1/2", "(8030)AB12=",
	} {
		f.Add(s, false)
		f.Add(s, true)
	}
	f.Fuzz(func(t *testing.T, s string, unknown bool) {
		p := Parser{PermitUnknownAIs: unknown}
		es, err := p.Parse(s)
		if err != nil {
			return
		}
		splittable := true // unknown AIs of unallocated prefixes cannot be split when unbracketed
		for _, v := range es {
			if prefixLen(v.AI) == 0 {
				splittable = false
			}
		}
		for name, enc := range map[string]func() (ElementString, error){
			"bracketed": func() (ElementString, error) { return p.ParseBracketed(es.Bracketed()) },
			"caret":     func() (ElementString, error) { return p.ParseCaret(es.Caret()) },
			"raw":       func() (ElementString, error) { return p.ParseUnbracketed(es.Raw(), GS) },
		} {
			if name != "bracketed" && !splittable {
				continue
			}
			back, err := enc()
			if err != nil || !reflect.DeepEqual(back, es) {
				t.Fatalf("%s round trip of %q: %v, %v (want %v)", name, s, back, err, es)
			}
		}
		_ = es.Validate()
		_ = es.HRILines(true)
		_, _ = es.DigitalLinkURI(DefaultStem, DLOptions{})
	})
}

func FuzzParseDigitalLink(f *testing.F) {
	for _, s := range []string{
		"https://id.gs1.org/01/09506000134352/10/ABC?17=201225",
		"https://example.com/some/path/01/9520123456788?3103=000195&3922=0299&17=201225&linkType=x",
		"HTTPS://a/gtin/12312312312333/ser/ABC%2F1", "https://a/8004/9520614141234567?01=2112345678900#frag",
		"https://a/414/9520123456788/254/32a%2Fb", "https://[2001:db8::1]/00/006141411234567890?99=A+B",
	} {
		f.Add(s, false)
		f.Add(s, true)
	}
	f.Fuzz(func(t *testing.T, s string, relaxed bool) {
		o := DLOptions{}
		if relaxed {
			o = DLOptions{PermitZeroSuppressedGTIN: true, PermitConvenienceAlphas: true, PermitTrailingSlash: true,
				ReorderQualifiers: true, PermitUnknownAIs: true, PermitUnknownAIAttributes: true}
		}
		dl, err := o.Parse(s)
		if err != nil {
			return
		}
		uri, err := dl.URI()
		if err != nil {
			t.Fatalf("URI() of %q: %v", s, err)
		}
		back, err := o.Parse(uri)
		if err != nil || !reflect.DeepEqual(sortedAIs(back.AIs), sortedAIs(dl.AIs)) || back.PathLen != dl.PathLen {
			t.Fatalf("round trip %q -> %q: %v, %v (want %v)", s, uri, back.AIs, err, dl.AIs)
		}
	})
}

// sortedAIs orders AIs for comparison: regeneration puts predefined-length
// attributes first.
func sortedAIs(es ElementString) ElementString {
	out := append(ElementString{}, es...)
	sort.SliceStable(out, func(i, j int) bool { return out[i].AI < out[j].AI })
	return out
}

func FuzzParseScan(f *testing.F) {
	for _, s := range []string{
		"]C10109506000134352\x1d", "]E09506000134352", "]E402345673|]e099X\x1d98Y", "]e0011231231231233310ABC\x1d99T",
		"]Q1https://id.gs1.org/01/09506000134352", "]d1\\^TESTING", "]J1011231231231233310ABC", "]z0", "]XX",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		sc, err := ParseScan(s)
		if err != nil || len(sc.AIs) == 0 {
			return
		}
		back, err := ParseUnbracketed(sc.AIs.Raw(), GS)
		if err != nil || !reflect.DeepEqual(back, sc.AIs) {
			t.Fatalf("AIs of %q do not round trip: %v, %v", s, back, err)
		}
		_ = sc.Caret()
	})
}

func FuzzLint(f *testing.F) {
	f.Add(uint8(0), "012345612345611110123")
	f.Add(uint8(5), "FR7630006000011234567890189")
	f.Add(uint8(9), "1987654Ad4X4bL5ttr2310c2K")
	names := make([]string, 0, len(linterByName))
	for n := range linterByName {
		names = append(names, n)
	}
	sort.Strings(names)
	f.Fuzz(func(t *testing.T, i uint8, s string) {
		name := names[int(i)%len(names)]
		if err := Lint(name, s); err != nil {
			e := err.(*Error)
			if e.ErrPos < 0 || e.ErrLen < 0 || e.ErrPos+e.ErrLen > len(s) {
				t.Fatalf("%s(%q): highlight %d+%d out of range", name, s, e.ErrPos, e.ErrLen)
			}
		}
	})
}
