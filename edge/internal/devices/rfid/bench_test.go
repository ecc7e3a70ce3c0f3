package rfid

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/omnisync/omnisync/shared/epc"
)

// fittingRoom simulates span of a busy fitting room: 4 booths, one antenna
// each, 300 tagged items spread over them, every item read 4 times a second
// by its booth's antenna (RSSI around -50 dBm) and once a second through
// the wall by the next booth's antenna (around -68 dBm): 1,500 reads/s.
func fittingRoom(span time.Duration) []TagRead {
	const tags, rate = 300, 4
	rnd := rand.New(rand.NewPCG(3, 4))
	epcs := make([]string, tags)
	for i := range epcs {
		epcs[i] = tagHex(i%40, 100+i)
	}
	var out []TagRead
	round := time.Second / rate
	for n := 0; time.Duration(n)*round < span; n++ {
		start := t0.Add(time.Duration(n) * round)
		order := rnd.Perm(tags)
		for k, i := range order {
			when := start.Add(time.Duration(k) * round / tags)
			home := 1 + i%4
			out = append(out, read(epcs[i], home, -50+rnd.Float64()*6-3, when))
			if n%rate == i%rate {
				out = append(out, read(epcs[i], 1+home%4, -68+rnd.Float64()*6-3, when))
			}
		}
	}
	return out
}

// BenchmarkSmoother_FittingRoom measures the reads per second one Smoother
// sustains on one core, ticking every 250 ms of simulated time.
func BenchmarkSmoother_FittingRoom(b *testing.B) {
	const span = 60 * time.Second
	stream := fittingRoom(span)
	for _, batch := range []int{1, 64} {
		name := "one-read-per-call"
		if batch > 1 {
			name = "64-reads-per-call"
		}
		b.Run(name, func(b *testing.B) {
			s := mustNew(b, Config{Zones: booths(4)})
			buf := make([]TagRead, 0, batch)
			nextTick := t0.Add(250 * ms)
			var lap time.Duration
			i, changes := 0, 0
			b.ReportAllocs()
			b.ResetTimer()
			for n := 0; n < b.N; n++ {
				r := stream[i]
				r.At = r.At.Add(lap)
				if i++; i == len(stream) {
					i, lap = 0, lap+span
				}
				buf = append(buf, r)
				if len(buf) == batch {
					changes += len(s.Observe(buf...))
					buf = buf[:0]
				}
				if !r.At.Before(nextTick) {
					changes += len(s.Tick(nextTick))
					nextTick = nextTick.Add(250 * ms)
				}
			}
			b.StopTimer()
			perSec := float64(b.N) / b.Elapsed().Seconds()
			b.ReportMetric(perSec, "reads/s")
			b.ReportMetric(perSec/(float64(len(stream))/span.Seconds()), "rooms")
			if b.N > 2*len(stream) && changes > 2*300 {
				b.Errorf("%d presence changes: the simulated items should stay put", changes)
			}
		})
	}
}

// BenchmarkDecoder compares decode-cache hits, misses (and the LRU upkeep
// they cost) and shared/epc without a cache.
func BenchmarkDecoder(b *testing.B) {
	epcs := make([]string, 50_000)
	for i := range epcs {
		epcs[i] = tagHex(i%500, i+1)
	}
	b.Run("hit", func(b *testing.B) {
		d := NewDecoder(0)
		hot := epcs[:300]
		for _, e := range hot {
			d.Decode(e)
		}
		b.ResetTimer()
		for n := 0; n < b.N; n++ {
			d.Decode(hot[n%len(hot)])
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "decodes/s")
	})
	b.Run("miss", func(b *testing.B) {
		d := NewDecoder(1024) // cycling 50k EPCs through 1k slots: always a miss
		b.ResetTimer()
		for n := 0; n < b.N; n++ {
			d.Decode(epcs[n%len(epcs)])
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "decodes/s")
	})
	b.Run("epc.Decode-uncached", func(b *testing.B) {
		for n := 0; n < b.N; n++ {
			epc.Decode(epcs[n%len(epcs)])
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "decodes/s")
	})
}
