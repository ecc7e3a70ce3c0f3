package rfid

import "testing"

// FuzzSmoother feeds arbitrary read and tick sequences (see drive) and
// checks that nothing panics and the presence invariants hold. Its seed
// corpus is in testdata/fuzz/FuzzSmoother.
func FuzzSmoother(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > 64<<10 {
			data = data[:64<<10]
		}
		i := 0
		drive(t, func() (byte, bool) {
			if i == len(data) {
				return 0, false
			}
			i++
			return data[i-1], true
		})
	})
}

// FuzzDecoder checks that no string makes the decoder panic or name a
// product for something that is not an SGTIN.
func FuzzDecoder(f *testing.F) {
	for _, s := range []string{tdsSGTIN96, tdsSGTIN198, tdsSSCC96, tdsGIAI96, "", "3074", "307C257BF7194E4000001A85"} {
		f.Add(s)
	}
	d := NewDecoder(64)
	f.Fuzz(func(t *testing.T, s string) {
		it, err := d.Decode(s)
		if err != nil {
			if it != (Item{}) {
				t.Fatalf("error %v with item %+v", err, it)
			}
			return
		}
		if len(it.GTIN) != 14 || it.Serial == "" || (it.EPC[:2] != "30" && it.EPC[:2] != "36") {
			t.Fatalf("item %+v from %q", it, s)
		}
		again, err := d.Decode(it.EPC)
		if err != nil || again != it {
			t.Fatalf("canonical EPC %s decodes to %+v, %v", it.EPC, again, err)
		}
	})
}
