package rfid

import (
	"sort"
	"sync"
	"time"
)

// Smoother turns raw reads from fitting-room readers into presence changes.
// It holds no goroutine and reads no clock: time comes from TagRead.At and
// from Tick's argument. It is safe for concurrent use (one mutex; lock order
// Smoother, then its Decoder).
type Smoother struct {
	mu      sync.Mutex
	margin  float64
	maxTags int
	dec     *Decoder
	zones   []*zoneState
	readers map[string]*readerState
	items   map[string]*item
	// now is the latest time seen in a read or a Tick; it dates Stats.
	now time.Time
}

// New returns a Smoother for the configured zones.
func New(cfg Config) (*Smoother, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	s := &Smoother{
		margin:  cfg.SwitchMargin,
		maxTags: cfg.MaxTagsPerZone,
		dec:     cfg.Decoder,
		readers: make(map[string]*readerState),
		items:   make(map[string]*item),
	}
	if s.dec == nil {
		s.dec = NewDecoder(0)
	}
	for _, z := range cfg.Zones {
		zs := &zoneState{cfg: z}
		s.zones = append(s.zones, zs)
		rs := s.reader(z.Reader)
		for _, a := range z.Antennas {
			rs.setZone(a, zs)
		}
	}
	return s, nil
}

// Observe feeds reads, in any order of EPCs and zones, and returns the
// presence changes they cause, oldest first (nil when none, which is the
// usual case). Reads of one zone should arrive roughly in time order; one
// that is older than the tag's previous read in that zone counts as
// simultaneous with it.
//
// Malformed EPCs, non-item tags, reads from antennas outside every zone and
// reads below the zone's MinRSSI are counted in Stats and otherwise ignored.
func (s *Smoother) Observe(reads ...TagRead) []Presence {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Presence
	for i := range reads {
		out = s.observe(&reads[i], out)
	}
	return out
}

// Tick expires items not read for their zone's LeaveAfter before now and
// returns the resulting Leaves. Call it every few hundred milliseconds:
// leaves are only noticed by Tick (or by the item's next read), and the
// tracking of tags gone quiet is only freed here.
func (s *Smoother) Tick(now time.Time) []Presence {
	s.mu.Lock()
	defer s.mu.Unlock()
	if now.After(s.now) {
		s.now = now
	}
	var out []Presence
	for _, z := range s.zones {
		// The list is ordered by arrival, which within one reader is time
		// order; a rare out-of-order read only delays an expiry.
		for t := z.tail; t != nil && now.Sub(t.last) > z.cfg.LeaveAfter; t = z.tail {
			out = s.drop(t, CauseGone, out)
		}
	}
	return out
}

// Present lists the items present in zone now, by GTIN then serial (nil
// for an unknown zone).
func (s *Smoother) Present(zone string) []Stay {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Stay
	for _, z := range s.zones {
		if z.cfg.Name != zone {
			continue
		}
		for t := z.head; t != nil; t = t.next {
			if t.item.present == t {
				out = append(out, Stay{Zone: zone, Item: t.item.Item, Since: t.item.since,
					LastSeen: t.last, Reads: t.reads, RSSI: t.peak})
			}
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].GTIN != out[j].GTIN {
			return out[i].GTIN < out[j].GTIN
		}
		return out[i].Serial < out[j].Serial
	})
	return out
}

func (s *Smoother) observe(r *TagRead, out []Presence) []Presence {
	rs := s.reader(r.Reader)
	rs.reads++
	rs.rate.add(r.At)
	if r.At.After(s.now) {
		s.now = r.At
	}
	d := s.dec.lookup(r.EPC)
	switch d.verdict {
	case verdictReject:
		rs.reject(d.reason)
		return out
	case verdictNotItem:
		rs.notItem(d.scheme)
		return out
	}
	z := rs.zoneFor(r.Antenna)
	if z == nil {
		rs.unzoned++
		return out
	}
	if rssi := rssiOf(r); z.cfg.MinRSSI != 0 && rssi != 0 && rssi < z.cfg.MinRSSI {
		rs.weak++
		return out
	}
	it := s.items[d.key]
	if it == nil {
		it = &item{Item: d.item, key: d.key}
		s.items[d.key] = it
	}
	t := it.in(z)
	switch {
	case t == nil:
		out = s.makeRoom(z, out)
		t = &tracked{item: it, zone: z}
		it.sightings = append(it.sightings, t)
		z.pushFront(t)
	case it.present == t && r.At.Sub(t.last) > z.cfg.LeaveAfter:
		// Tick ran late: the item left before this read came.
		out = s.leave(it, CauseGone, out)
	}
	t.see(r, z.cfg.EnterAfter)
	z.touch(t)
	return s.settle(it, t, out)
}

// settle decides, after a read in t's zone, whether the item enters that
// zone. The rules, in order:
//   - it must qualify there (EnterReads reads over EnterAfter, no gap
//     longer than EnterAfter);
//   - if it is present elsewhere, it moves only when that zone has gone
//     quiet (no read for EnterAfter) or reads it more than SwitchMargin dB
//     weaker; this hysteresis keeps a tag between two booths in one;
//   - if it is present nowhere, it waits while another zone with a live
//     streak reads it more than SwitchMargin dB stronger, since that zone
//     will qualify soon and is where the tag is.
func (s *Smoother) settle(it *item, t *tracked, out []Presence) []Presence {
	if it.present == t || !t.qualifies() {
		return out
	}
	now := t.last
	if p := it.present; p != nil {
		switch {
		case now.Sub(p.last) > p.zone.cfg.LeaveAfter:
			out = s.leave(it, CauseGone, out)
		case p.recent(now) && !stronger(t, p, s.margin):
			return out
		default:
			out = s.leave(it, CauseMoved, out)
		}
	}
	for _, c := range it.sightings {
		if c != t && c.recent(now) && stronger(c, t, s.margin) {
			return out
		}
	}
	return s.enter(it, t, out)
}

func (s *Smoother) enter(it *item, t *tracked, out []Presence) []Presence {
	z := t.zone
	it.present, it.since = t, t.first
	z.present++
	z.enters++
	return append(out, Presence{Change: Enter, Zone: z.cfg.Name, Reader: z.cfg.Reader,
		Antenna: t.antenna, Item: it.Item, RSSI: t.peak, At: t.first})
}

func (s *Smoother) leave(it *item, cause Cause, out []Presence) []Presence {
	p := it.present
	z := p.zone
	dwell := p.last.Sub(it.since)
	if dwell < 0 {
		dwell = 0 // unreachable: since is a first read, last never decreases
	}
	it.present = nil
	z.present--
	z.leaves++
	return append(out, Presence{Change: Leave, Zone: z.cfg.Name, Reader: z.cfg.Reader,
		Antenna: p.antenna, Item: it.Item, RSSI: p.peak, At: p.last, Dwell: dwell, Cause: cause})
}

// drop stops tracking t, leaving its zone first if the item is present.
func (s *Smoother) drop(t *tracked, cause Cause, out []Presence) []Presence {
	it := t.item
	if it.present == t {
		out = s.leave(it, cause, out)
	}
	t.zone.unlink(t)
	it.remove(t)
	if len(it.sightings) == 0 {
		delete(s.items, it.key)
	}
	return out
}

// makeRoom evicts the least recently read tags of z until one more fits.
func (s *Smoother) makeRoom(z *zoneState, out []Presence) []Presence {
	for z.n >= s.maxTags && z.tail != nil {
		z.evicted++
		out = s.drop(z.tail, CauseEvicted, out)
	}
	return out
}
