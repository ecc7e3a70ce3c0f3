package presence

import (
	"testing"
	"time"
)

// BenchmarkScorer_Trace measures the reads per second one scorer sustains
// on one core replaying a seeded 4-room trace, ticking every 250 ms of
// simulated time.
func BenchmarkScorer_Trace(b *testing.B) {
	tr := Generate(TraceConfig{Seed: 1, Rooms: 4, Tags: 40, Span: 5 * time.Minute})
	s, err := New(Config{Rooms: tr.Rooms})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	i := 0
	var lap time.Duration
	next := tr.Start.Add(250 * time.Millisecond)
	for n := 0; n < b.N; n++ {
		r := tr.Reads[i]
		r.At = r.At.Add(lap)
		if i++; i == len(tr.Reads) {
			i, lap = 0, lap+5*time.Minute+time.Second
		}
		s.Observe(r)
		if !r.At.Before(next) {
			s.Tick(next)
			next = next.Add(250 * time.Millisecond)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "reads/s")
}
