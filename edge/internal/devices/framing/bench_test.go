package framing

import (
	"bytes"
	"testing"
	"time"
)

// BenchmarkFramer measures how many frames per second one framer cuts from
// a device's stream, per device type, fed in 64-byte reads (a USB
// full-speed packet; serial reads are smaller, which costs a little more
// per byte). Run: go test -run '^$' -bench Framer ./edge/internal/devices/framing/
func BenchmarkFramer(b *testing.B) {
	scans := [][]byte{
		[]byte("]E04006381333931"),
		[]byte("]d2010950600013435217261231" + "10ABC123\x1d21SERIAL0001"),
		[]byte("]Q1https://id.gs1.org/01/09506000134352/10/ABC123?17=261231"),
	}
	tags := []string{
		"A0 13 01 89 1D 30 00 30 74 25 7B F7 19 4E 40 00 00 1A 85 45 B0",
		"BB 02 22 00 11 C9 34 00 30 75 1F EB 70 5C 59 04 E3 D5 0D 70 3A 76 EF 7E",
		"12 00 EE 00 0C 30 74 25 7B F7 19 4E 40 00 00 1A 85 CB 07",
	}
	for _, tc := range []struct {
		name string
		mk   func(testing.TB) Framer
		one  func(testing.TB, Framer) [][]byte // the frames of one cycle, on the wire
	}{
		{"generic-line-scanner", withDefaultMaxLen(lineScanner), textFrames(scans)},
		{"line-scanner-no-aim", withDefaultMaxLen(prefixScanner), textFrames([][]byte{[]byte("4006381333931"), []byte("09506000134352")})},
		{"stx-etx-scanner", withDefaultMaxLen(stxScanner), textFrames(scans)},
		{"uhf-a0-r2000", withDefaultMaxLen(a0Reader), rawFrames(tags[0])},
		{"uhf-bb-m100", withDefaultMaxLen(bbReader), rawFrames(tags[1])},
		{"crc16-headerless", withDefaultMaxLen(crcReader), rawFrames(tags[2])},
	} {
		b.Run(tc.name, func(b *testing.B) {
			f := tc.mk(b)
			var stream []byte
			nframes := 0
			for nframes < 1000 {
				for _, w := range tc.one(b, f) {
					stream = append(stream, w...)
					nframes++
				}
			}
			got := 0
			emit := func([]byte) { got++ }
			reject := func(r Reject, n int) { b.Fatalf("reject %v %d", r, n) }
			b.SetBytes(int64(len(stream)))
			b.ReportAllocs()
			b.ResetTimer()
			start := time.Now()
			for range b.N {
				for p := stream; len(p) > 0; {
					n := min(64, len(p))
					f.Feed(p[:n], emit, reject)
					p = p[n:]
				}
			}
			if d := time.Since(start).Seconds(); d > 0 {
				b.ReportMetric(float64(got)/d, "frames/s")
			}
			if got != nframes*b.N {
				b.Fatalf("%d frames, want %d", got, nframes*b.N)
			}
		})
	}
}

func textFrames(payloads [][]byte) func(testing.TB, Framer) [][]byte {
	return func(t testing.TB, f Framer) [][]byte {
		var out [][]byte
		for _, p := range payloads {
			w, err := f.AppendFrame(nil, p)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, w)
		}
		return out
	}
}

func rawFrames(h string) func(testing.TB, Framer) [][]byte {
	return func(t testing.TB, _ Framer) [][]byte { return [][]byte{bytes.Clone(mustHex(t, h))} }
}

// withDefaultMaxLen rebuilds a test framer with the default max_len, as
// the shipped profiles use (the buffer size changes nothing per frame, but
// benchmarks should measure what runs).
func withDefaultMaxLen(mk func(testing.TB) Framer) func(testing.TB) Framer {
	return func(t testing.TB) Framer {
		switch f := mk(t).(type) {
		case *delimited:
			c := f.cfg
			c.MaxLen = DefaultTextMaxLen
			g, err := NewDelimited(c)
			if err != nil {
				t.Fatal(err)
			}
			return g
		case *stxetx:
			c := f.cfg
			c.MaxLen = DefaultTextMaxLen
			g, err := NewSTXETX(c)
			if err != nil {
				t.Fatal(err)
			}
			return g
		case *binary:
			c := f.cfg
			c.MaxLen = DefaultBinaryMaxLen
			g, err := NewBinary(c)
			if err != nil {
				t.Fatal(err)
			}
			return g
		}
		panic("unknown framer")
	}
}
