package profile

import (
	"testing"
	"time"

	"github.com/omnisync/omnisync/edge/internal/devices/framing"
	"github.com/omnisync/omnisync/edge/internal/devices/rfid"
)

// BenchmarkDevice measures what one agent can do per device type: frames
// per second cut from the byte stream (64-byte reads) and interpreted, with
// the shipped profile: scanner frames parsed into GS1 scans, reader frames
// decoded into tag reads. Run:
//
//	go test -run '^$' -bench Device ./edge/internal/devices/profile/
func BenchmarkDevice(b *testing.B) {
	scans := []string{
		"]E04006381333931",
		"]d2010950600013435217261231" + "10ABC123\x1d21SERIAL0001",
		"]Q1https://id.gs1.org/01/09506000134352/10/ABC123?17=261231",
	}
	for _, tc := range []struct {
		profile string
		frames  []string // payloads (scanners) or whole frames in hex (readers)
	}{
		{"generic-line-scanner", scans},
		{"line-scanner-no-aim", []string{"4006381333931", "0109506000134352" + "10ABC123\x1d21SERIAL0001", "https://id.gs1.org/01/09506000134352"}},
		{"stx-etx-scanner", scans},
		{"uhf-a0-r2000", []string{"A0 13 01 89 1D 30 00 30 74 25 7B F7 19 4E 40 00 00 1A 85 45 B0"}},
		{"uhf-bb-m100", []string{"BB 02 22 00 11 C9 34 00 30 75 1F EB 70 5C 59 04 E3 D5 0D 70 3A 76 EF 7E"}},
	} {
		b.Run(tc.profile, func(b *testing.B) {
			p := shipped(b, tc.profile)
			f, err := p.NewFramer()
			if err != nil {
				b.Fatal(err)
			}
			var stream []byte
			n := 0
			for n < 1000 {
				for _, fr := range tc.frames {
					if p.Meaning == MeaningRFID {
						stream = append(stream, unhex(b, fr)...)
					} else if stream, err = f.AppendFrame(stream, []byte(fr)); err != nil {
						b.Fatal(err)
					}
					n++
				}
			}
			got := 0
			reads := make([]rfid.TagRead, 0, 1)
			emit := func(payload []byte) {
				if p.Meaning == MeaningRFID {
					var err error
					if reads, err = p.DecodeTags(payload, reads[:0]); err != nil || len(reads) != 1 {
						b.Fatalf("decode: %v", err)
					}
				} else if _, err := p.ParseBarcode(payload); err != nil {
					b.Fatal(err)
				}
				got++
			}
			reject := func(r framing.Reject, n int) { b.Fatalf("reject %v %d", r, n) }
			b.SetBytes(int64(len(stream)))
			b.ReportAllocs()
			b.ResetTimer()
			start := time.Now()
			for range b.N {
				for s := stream; len(s) > 0; {
					k := min(64, len(s))
					f.Feed(s[:k], emit, reject)
					s = s[k:]
				}
			}
			if d := time.Since(start).Seconds(); d > 0 {
				b.ReportMetric(float64(got)/d, "frames/s")
			}
			if got != n*b.N {
				b.Fatalf("%d frames, want %d", got, n*b.N)
			}
		})
	}
}
