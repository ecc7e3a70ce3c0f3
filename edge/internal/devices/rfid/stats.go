package rfid

import (
	"sort"
	"time"
)

// RateWindow is the span ReadsPerSec averages over: the last five whole
// seconds before the latest time the Smoother has seen.
const RateWindow = 5

// maxReaders bounds the per-reader stats table. Reader names come from the
// agent's configuration, so this only guards against a caller bug.
const maxReaders = 1024

// otherReaders collects stats beyond maxReaders.
const otherReaders = "(other)"

// Stats is a snapshot of a Smoother's counters.
type Stats struct {
	// At is the latest time seen in a read or a Tick.
	At      time.Time
	Readers []ReaderStats // by reader name
	// DecodeHits and DecodeMisses count the Decoder's cache lookups (all
	// users of a shared Decoder); DecodeCached is its current size.
	DecodeHits, DecodeMisses uint64
	DecodeCached             int
}

// ReaderStats counts one reader's reads.
type ReaderStats struct {
	Reader string
	// Reads counts every read, whatever became of it.
	Reads uint64
	// ReadsPerSec averages the last RateWindow whole seconds.
	ReadsPerSec float64
	// Rejects counts reads of malformed EPCs by reason.
	Rejects map[Reason]uint64
	// NotItems counts reads of well-formed non-item tags by scheme.
	NotItems map[string]uint64
	// Weak counts reads below the zone's MinRSSI; Unzoned reads from
	// antennas in no zone.
	Weak, Unzoned uint64
	// Evictions sums the zones' evictions.
	Evictions uint64
	Zones     []ZoneStats // in configuration order
}

// Rejected returns the total of Rejects.
func (r ReaderStats) Rejected() uint64 {
	var n uint64
	for _, v := range r.Rejects {
		n += v
	}
	return n
}

// ZoneStats describes one zone.
type ZoneStats struct {
	Zone string
	// Present counts items present now; Tracked the EPCs tracked (present
	// or candidates), at most MaxTagsPerZone.
	Present, Tracked int
	Enters, Leaves   uint64
	// Evictions counts tags dropped to respect MaxTagsPerZone.
	Evictions uint64
}

// readerState holds one reader's zones by antenna and its counters.
type readerState struct {
	name     string
	zones    []*zoneState // by antenna number
	reads    uint64
	weak     uint64
	unzoned  uint64
	rejects  map[Reason]uint64
	notItems map[string]uint64
	rate     rateWindow
}

func (s *Smoother) reader(name string) *readerState {
	if rs := s.readers[name]; rs != nil {
		return rs
	}
	if len(s.readers) >= maxReaders {
		name = otherReaders
		if rs := s.readers[name]; rs != nil {
			return rs
		}
	}
	rs := &readerState{name: name}
	s.readers[name] = rs
	return rs
}

func (rs *readerState) setZone(antenna int, z *zoneState) {
	for len(rs.zones) <= antenna {
		rs.zones = append(rs.zones, nil)
	}
	rs.zones[antenna] = z
}

func (rs *readerState) zoneFor(antenna int) *zoneState {
	if antenna < 0 || antenna >= len(rs.zones) {
		return nil
	}
	return rs.zones[antenna]
}

func (rs *readerState) reject(r Reason) {
	if rs.rejects == nil {
		rs.rejects = make(map[Reason]uint64)
	}
	rs.rejects[r]++
}

func (rs *readerState) notItem(scheme string) {
	if rs.notItems == nil {
		rs.notItems = make(map[string]uint64)
	}
	rs.notItems[scheme]++
}

// Stats returns a snapshot of the counters.
func (s *Smoother) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := Stats{At: s.now}
	st.DecodeHits, st.DecodeMisses, st.DecodeCached = s.dec.CacheStats()
	for _, rs := range s.readers {
		r := ReaderStats{
			Reader:      rs.name,
			Reads:       rs.reads,
			ReadsPerSec: rs.rate.perSec(s.now),
			Rejects:     make(map[Reason]uint64, len(rs.rejects)),
			NotItems:    make(map[string]uint64, len(rs.notItems)),
			Weak:        rs.weak,
			Unzoned:     rs.unzoned,
		}
		for k, v := range rs.rejects {
			r.Rejects[k] = v
		}
		for k, v := range rs.notItems {
			r.NotItems[k] = v
		}
		for _, z := range s.zones {
			if z.cfg.Reader != rs.name {
				continue
			}
			r.Evictions += z.evicted
			r.Zones = append(r.Zones, ZoneStats{Zone: z.cfg.Name, Present: z.present, Tracked: z.n,
				Enters: z.enters, Leaves: z.leaves, Evictions: z.evicted})
		}
		st.Readers = append(st.Readers, r)
	}
	sort.Slice(st.Readers, func(i, j int) bool { return st.Readers[i].Reader < st.Readers[j].Reader })
	return st
}

// rateWindow counts reads per whole second in a small ring.
type rateWindow struct {
	sec [RateWindow + 2]int64
	n   [RateWindow + 2]uint64
}

func (w *rateWindow) slot(sec int64) int {
	const size = int64(len(w.sec))
	return int((sec%size + size) % size)
}

func (w *rateWindow) add(t time.Time) {
	s := t.Unix()
	i := w.slot(s)
	if w.sec[i] != s {
		w.sec[i], w.n[i] = s, 0
	}
	w.n[i]++
}

// perSec averages the RateWindow whole seconds before now's second.
func (w *rateWindow) perSec(now time.Time) float64 {
	cur := now.Unix()
	var sum uint64
	for i := range w.sec {
		if d := cur - w.sec[i]; d >= 1 && d <= RateWindow && w.n[i] > 0 {
			sum += w.n[i]
		}
	}
	return float64(sum) / RateWindow
}
