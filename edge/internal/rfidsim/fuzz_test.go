package rfidsim

import (
	"bytes"
	"testing"
)

// FuzzGTINsFromCatalog: no catalog file makes the reader panic, and every
// GTIN it returns is non-empty.
func FuzzGTINsFromCatalog(f *testing.F) {
	f.Add([]byte(`{"sku":"A","gtins":["05012302000003"]}` + "\n" + `{"sku":"B"}`))
	f.Add([]byte("sku,gtin\nA,05012302000003|05012302000010\nB,\n"))
	f.Add([]byte("\xef\xbb\xbfsku;name\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		gtins, _ := GTINsFromCatalog(bytes.NewReader(b))
		for _, g := range gtins {
			if g == "" {
				t.Fatal("empty GTIN")
			}
		}
	})
}

// FuzzFrameA0: any EPC and antenna either fail cleanly or make a frame
// whose checksum and length the R2000 protocol accepts.
func FuzzFrameA0(f *testing.F) {
	f.Add(1, "3074257BF7194E4000001A85", -50.0)
	f.Add(4, "ZZ", 0.0)
	f.Fuzz(func(t *testing.T, antenna int, epc string, rssi float64) {
		fr, err := FrameA0(antenna, epc, rssi)
		if err != nil {
			return
		}
		if fr[0] != 0xA0 || int(fr[1]) != len(fr)-2 {
			t.Fatalf("frame % X", fr)
		}
		var sum byte
		for _, b := range fr {
			sum += b
		}
		if sum != 0 {
			t.Fatalf("checksum of % X", fr)
		}
	})
}
