package gs1

import (
	"testing"
	"time"
)

// reportRate adds a parses/s metric, the number edge-agent sizing uses.
func reportRate(b *testing.B, start time.Time) {
	if d := time.Since(start).Seconds(); d > 0 {
		b.ReportMetric(float64(b.N)/d, "parses/s")
	}
}

func BenchmarkParseBracketed(b *testing.B) {
	const in = "(01)09506000134352(17)261231(10)ABC123(21)SERIAL0001"
	b.ReportAllocs()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		if _, err := ParseBracketed(in); err != nil {
			b.Fatal(err)
		}
	}
	reportRate(b, start)
}

func BenchmarkParseScanGS1DataMatrix(b *testing.B) {
	const in = "]d2010950600013435217261231" + "10ABC123\x1d21SERIAL0001"
	b.ReportAllocs()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		if _, err := ParseScan(in); err != nil {
			b.Fatal(err)
		}
	}
	reportRate(b, start)
}

func BenchmarkParseScanEAN13(b *testing.B) {
	b.ReportAllocs()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		if _, err := ParseScan("]E09506000134352"); err != nil {
			b.Fatal(err)
		}
	}
	reportRate(b, start)
}

func BenchmarkParseDigitalLink(b *testing.B) {
	const in = "https://id.gs1.org/01/09506000134352/10/ABC123/21/SERIAL0001?17=261231&3103=000195"
	b.ReportAllocs()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		if _, err := ParseDigitalLink(in); err != nil {
			b.Fatal(err)
		}
	}
	reportRate(b, start)
}

func BenchmarkGenerateDigitalLink(b *testing.B) {
	es, _ := ParseBracketed("(01)09506000134352(17)261231(10)ABC123(21)SERIAL0001")
	b.ReportAllocs()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		if _, err := es.DigitalLinkURI(DefaultStem, DLOptions{}); err != nil {
			b.Fatal(err)
		}
	}
	reportRate(b, start)
}
