package epc

import (
	"errors"
	"testing"
)

func TestDecodeErrors(t *testing.T) {
	tests := []struct {
		hex  string
		want error
	}{
		{"3AFFFFFFFFFFFFFFFFFFFFFF", ErrHeader},
		{"307C257BF7194E4000001A85", ErrPartition}, // partition 7
		{"3074257BF7194E40", ErrHex},               // too short
		{"3074257BF7194E4000001A8Z", ErrHex},       // not hex
		{"3074257BF7194E4000001A8500000001", ErrHex},
		{"3D14257BF71CADD35D8000075BCD1500", ErrHeader}, // CPI-var not decoded
	}
	for _, tt := range tests {
		if _, err := Decode(tt.hex); !errors.Is(err, tt.want) {
			t.Errorf("Decode(%s) = %v, want %v", tt.hex, err, tt.want)
		}
	}
}

func TestSGTINConversions(t *testing.T) {
	s, err := SGTINFromGTIN("80614141123458", 7, "6789")
	if err != nil {
		t.Fatal(err)
	}
	if s.PureURI() != "urn:epc:id:sgtin:0614141.812345.6789" || s.GTIN() != "80614141123458" {
		t.Errorf("got %s / %s", s.PureURI(), s.GTIN())
	}
	h, err := s.Encode(SGTIN96, 3)
	if err != nil || h != "3074257BF7194E4000001A85" {
		t.Errorf("Encode = %s, %v", h, err)
	}
	if _, err := (SGTIN{CompanyPrefix: "0614141", ItemRef: "812345", Serial: "0123"}).Encode(SGTIN96, 1); !errors.Is(err, ErrSerial) {
		t.Errorf("leading-zero serial accepted for SGTIN-96: %v", err)
	}
	if _, err := (SGTIN{CompanyPrefix: "0614141", ItemRef: "812345", Serial: "274877906944"}).Encode(SGTIN96, 1); !errors.Is(err, ErrSerial) {
		t.Errorf("serial 2^38 accepted for SGTIN-96: %v", err)
	}
	if _, err := s.Encode(SGTIN96, 8); !errors.Is(err, ErrFilter) {
		t.Errorf("filter 8 accepted: %v", err)
	}
	if g, err := s.ShortGTIN(13); !errors.Is(err, ErrGTIN) {
		t.Errorf("ShortGTIN(13) of an indicator-8 GTIN = %q, %v", g, err)
	}
}
