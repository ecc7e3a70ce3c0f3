package epc

import "testing"

func FuzzDecodeEPC(f *testing.F) {
	for _, s := range []string{
		"3074257BF7194E4000001A85", "3674257BF6B7A659B2C2BF100000000000000000000000000000",
		"3634257BF7194E5B3770E40000000000000000000000000000", "3174257BF4499602D2000000",
		"3974257BF46072CD9615F8800000000000000000000000000", "2F320434147455900000162E",
		"4114F4E4E40C0E4082DBDD8B36600000000000000000000000000000", "3AFFFFFFFFFFFFFFFFFFFFFF", "35FFFFFFFFFFFFFFFFFFFFFF",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, h string) {
		tag, err := Decode(h)
		if err != nil || tag.SGTIN == nil {
			return
		}
		enc, err := tag.Encode()
		if err != nil {
			t.Fatalf("Encode(Decode(%q)): %v", h, err)
		}
		back, err := Decode(enc)
		if err != nil || back.PureURI != tag.PureURI || back.TagURI != tag.TagURI {
			t.Fatalf("%q -> %q -> %+v, %v", h, enc, back, err)
		}
		pt, err := ParseTagURI(tag.TagURI)
		if err != nil {
			t.Fatalf("ParseTagURI(%q): %v", tag.TagURI, err)
		}
		if enc2, _ := pt.Encode(); enc2 != enc {
			t.Fatalf("tag URI %q encodes to %q, want %q", tag.TagURI, enc2, enc)
		}
	})
}

func FuzzParseTagURI(f *testing.F) {
	for _, s := range []string{
		"urn:epc:tag:sgtin-96:3.0614141.812345.6789", "urn:epc:tag:sgtin-198:1.0008000.001137.thisIs%26Test",
		"urn:epc:tag:[att=x01][xpc=x0004]:sgtin-96:3.0614141.112345.400", "urn:epc:id:sgtin:0614141.712345.32a%2Fb",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if sg, err := ParseSGTINURI(s); err == nil {
			if back, err := ParseSGTINURI(sg.PureURI()); err != nil || back != sg {
				t.Fatalf("pure URI %q does not round trip: %v", s, err)
			}
		}
		tag, err := ParseTagURI(s)
		if err != nil {
			return
		}
		h, err := tag.Encode()
		if err != nil {
			t.Fatalf("Encode of parsed %q: %v", s, err)
		}
		back, err := Decode(h)
		if err != nil || back.TagURI != tag.TagURI {
			t.Fatalf("%q -> %s -> %q, %v", s, h, back.TagURI, err)
		}
	})
}
