package rfid

import (
	"errors"
	"testing"

	"github.com/omnisync/omnisync/shared/epc"
)

// Ensure that the decoder yields items only for SGTINs, with the GTIN and
// serial of the GS1 examples, and the right error otherwise.
func TestDecoder_Decode(t *testing.T) {
	tests := []struct {
		name         string
		in           string
		gtin, serial string
		canon        string
		want         error
		reason       Reason
	}{
		{"sgtin-96", tdsSGTIN96, "80614141123458", "6789", tdsSGTIN96, nil, ""},
		{"sgtin-96 lower case", "3074257bf7194e4000001a85", "80614141123458", "6789", tdsSGTIN96, nil, ""},
		{"sgtin-198 52 digits", tdsSGTIN198, "70614141123451", "32a/b", tdsSGTIN198, nil, ""},
		{"sgtin-198 50 digits", tdsSGTIN198[:50], "70614141123451", "32a/b", tdsSGTIN198, nil, ""},
		{"sscc", tdsSSCC96, "", "", "", ErrNotItem, ""},
		{"giai", tdsGIAI96, "", "", "", ErrNotItem, ""},
		{"adi-var", "3B0E0CF5E76C9047759AD00373DC7602E7200", "", "", "", ErrNotItem, ""},
		{"not hex", "3074257BF7194E4000001A8G", "", "", "", ErrRejected, ReasonHex},
		{"short", "3074", "", "", "", ErrRejected, ReasonLength},
		{"padding not zero", tdsSGTIN96 + "0001", "", "", "", ErrRejected, ReasonLength},
		{"header", "0074257BF7194E4000001A85", "", "", "", ErrRejected, ReasonHeader},
		{"partition 7", "307C257BF7194E4000001A85", "", "", "", ErrRejected, ReasonPartition},
		{"sgtin-198 non-zero padding", "3674257BF6B7A659B2C2BF1000000000000000000000000000FF", "", "", "", ErrRejected, ReasonLength},
		{"sgtin-198 control character in serial", "3674257BF6B7A640B2C2BF100000000000000000000000000000", "", "", "", ErrRejected, ReasonSerial},
		{"sgtin-198 empty serial", "3674257BF6B7A6000000000000000000000000000000000000", "", "", "", ErrRejected, ReasonSerial},
	}
	d := NewDecoder(16)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for range 2 { // the second call is a cache hit and must agree
				it, err := d.Decode(tt.in)
				if !errors.Is(err, tt.want) || (tt.want == nil) != (err == nil) {
					t.Fatalf("Decode = %+v, %v; want %v", it, err, tt.want)
				}
				if tt.want == nil {
					if it.GTIN != tt.gtin || it.Serial != tt.serial || it.EPC != tt.canon {
						t.Errorf("item %+v", it)
					}
					continue
				}
				if it != (Item{}) {
					t.Errorf("an error came with a product: %+v", it)
				}
				var de *DecodeError
				if !errors.As(err, &de) || de.Reason != tt.reason {
					t.Errorf("reason of %v = %+v, want %q", err, de, tt.reason)
				}
				if tt.want == ErrRejected && !errors.Is(err, epc.ErrHex) && !errors.Is(err, epc.ErrHeader) &&
					!errors.Is(err, epc.ErrPartition) && !errors.Is(err, epc.ErrSerial) {
					t.Errorf("reject %v does not wrap the epc error", err)
				}
			}
		})
	}
	hits, misses, size := d.CacheStats()
	if hits != uint64(len(tests)) || misses != uint64(len(tests)) || size != len(tests) {
		t.Errorf("cache hits %d misses %d size %d, want %d each", hits, misses, size, len(tests))
	}
}

// Ensure that the cache keeps its bound and evicts the least recently used.
func TestDecoder_LRU(t *testing.T) {
	d := NewDecoder(3)
	a, b, c, e := tagHex(1, 1), tagHex(1, 2), tagHex(1, 3), tagHex(1, 4)
	for _, x := range []string{a, b, c, a, e} { // a refreshed, so b is evicted by e
		if _, err := d.Decode(x); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, size := d.CacheStats(); size != 3 {
		t.Fatalf("size %d", size)
	}
	h0, m0, _ := d.CacheStats()
	d.Decode(a)
	d.Decode(c)
	d.Decode(e)
	if h, m, _ := d.CacheStats(); h-h0 != 3 || m != m0 {
		t.Errorf("a, c, e should hit: hits +%d misses +%d", h-h0, m-m0)
	}
	d.Decode(b)
	if _, m, _ := d.CacheStats(); m != m0+1 {
		t.Errorf("b should have been evicted")
	}
	for i := 0; i < 1000; i++ {
		d.Decode(tagHex(2, i))
	}
	if _, _, size := d.CacheStats(); size != 3 {
		t.Errorf("size %d after a flood", size)
	}
}
