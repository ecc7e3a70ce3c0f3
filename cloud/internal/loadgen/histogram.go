package loadgen

import (
	"math/bits"
	"sync"
	"time"
)

// histogram counts latencies in log-linear microsecond buckets: exact below
// 16µs, then 16 buckets per power of two (within 6.25%), up to hours.
type histogram struct {
	mu     sync.Mutex
	counts [histBuckets]int64
	n      int64
	max    time.Duration
}

const histBuckets = 16 + 40*16

func histBucket(d time.Duration) int {
	us := uint64(max(d, 0) / time.Microsecond)
	if us < 16 {
		return int(us)
	}
	shift := bits.Len64(us) - 5
	i := 16 + shift*16 + int(us>>shift) - 16
	return min(i, histBuckets-1)
}

// histValue is the middle of bucket i.
func histValue(i int) time.Duration {
	if i < 16 {
		return time.Duration(i) * time.Microsecond
	}
	shift := (i - 16) / 16
	lo := uint64(16+(i-16)%16) << shift
	return time.Duration(lo+(uint64(1)<<shift)/2) * time.Microsecond
}

func (h *histogram) add(d time.Duration) {
	h.mu.Lock()
	h.counts[histBucket(d)]++
	h.n++
	h.max = max(h.max, d)
	h.mu.Unlock()
}

// quantile returns the q-quantile (0..1), 0 without samples.
func (h *histogram) quantile(q float64) time.Duration {
	h.mu.Lock()
	defer h.mu.Unlock()
	return quantileOf(&h.counts, h.n, h.max, q)
}

func quantileOf(counts *[histBuckets]int64, n int64, maxd time.Duration, q float64) time.Duration {
	if n == 0 {
		return 0
	}
	rank := int64(q*float64(n-1)) + 1
	var seen int64
	for i, c := range counts {
		seen += c
		if seen >= rank {
			return min(histValue(i), maxd)
		}
	}
	return maxd
}

// merge adds o's counts into h.
func (h *histogram) merge(o *histogram) {
	o.mu.Lock()
	counts, n, m := o.counts, o.n, o.max
	o.mu.Unlock()
	h.mu.Lock()
	for i, c := range counts {
		h.counts[i] += c
	}
	h.n += n
	h.max = max(h.max, m)
	h.mu.Unlock()
}
