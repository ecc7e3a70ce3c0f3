package catalog

import (
	"bytes"
	"os"
	"testing"
)

// FuzzParse checks that Parse never panics, that its counts add up, and
// that every variant it hands out is valid, normalised and unique.
func FuzzParse(f *testing.F) {
	f.Add([]byte(sameCSV), false)
	f.Add([]byte(sameJSONL), true)
	f.Fuzz(func(t *testing.T, data []byte, jsonl bool) {
		format := CSV
		if jsonl {
			format = JSONL
		}
		skus := map[string]bool{}
		gtins := map[string]bool{}
		rep, _ := Parse(bytes.NewReader(data), format, Options{Mode: Partial, MaxLineBytes: 4096}, func(v Variant) error {
			if errs := v.Validate(); errs != nil {
				t.Fatalf("handed out an invalid variant %+v: %v", v, errs)
			}
			if skus[v.SKU] {
				t.Fatalf("SKU %q handed out twice", v.SKU)
			}
			skus[v.SKU] = true
			for _, g := range v.GTINs {
				if gtins[g] {
					t.Fatalf("GTIN %q handed out twice", g)
				}
				gtins[g] = true
			}
			return nil
		})
		if rep.Rows != rep.Valid+rep.Invalid || rep.Valid != len(skus) {
			t.Fatalf("counts do not add up: %+v, %d handed out", rep, len(skus))
		}
		if rep.Bytes > int64(len(data)) {
			t.Fatalf("consumed %d of %d bytes", rep.Bytes, len(data))
		}
	})
}

func BenchmarkParse(b *testing.B) {
	jsonl, err := os.ReadFile(sampleFile)
	if err != nil {
		b.Fatal(err)
	}
	var vs []Variant
	if _, err := Parse(bytes.NewReader(jsonl), JSONL, Options{}, func(v Variant) error { vs = append(vs, v); return nil }); err != nil {
		b.Fatal(err)
	}
	var csvBuf bytes.Buffer
	if err := WriteCSV(&csvBuf, vs); err != nil {
		b.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		format Format
		data   []byte
	}{{"CSV", CSV, csvBuf.Bytes()}, {"JSONL", JSONL, jsonl}} {
		b.Run(tc.name, func(b *testing.B) {
			b.SetBytes(int64(len(tc.data)))
			b.ReportAllocs()
			rows := 0
			for b.Loop() {
				rep, err := Parse(bytes.NewReader(tc.data), tc.format, Options{}, func(Variant) error { return nil })
				if err != nil {
					b.Fatal(err)
				}
				rows += rep.Valid
			}
			b.ReportMetric(float64(rows)/b.Elapsed().Seconds(), "rows/s")
		})
	}
}
