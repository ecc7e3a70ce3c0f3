package epc

import (
	"testing"
	"time"
)

func reportRate(b *testing.B, start time.Time) {
	if d := time.Since(start).Seconds(); d > 0 {
		b.ReportMetric(float64(b.N)/d, "parses/s")
	}
}

func benchDecode(b *testing.B, h string) {
	b.ReportAllocs()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		if _, err := Decode(h); err != nil {
			b.Fatal(err)
		}
	}
	reportRate(b, start)
}

func BenchmarkDecodeSGTIN96(b *testing.B) { benchDecode(b, "3074257BF7194E4000001A85") }

func BenchmarkDecodeSGTIN198(b *testing.B) {
	benchDecode(b, "3674257BF6B7A659B2C2BF100000000000000000000000000000")
}

func BenchmarkEncodeSGTIN96(b *testing.B) {
	s := SGTIN{CompanyPrefix: "0614141", ItemRef: "812345", Serial: "6789"}
	b.ReportAllocs()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		if _, err := s.Encode(SGTIN96, 3); err != nil {
			b.Fatal(err)
		}
	}
	reportRate(b, start)
}
