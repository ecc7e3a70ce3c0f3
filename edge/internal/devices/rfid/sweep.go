package rfid

import (
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/omnisync/omnisync/shared/gs1"
)

// DefaultMaxSweepItems bounds the distinct items one sweep remembers (about
// 100 bytes each): far above a large store's tagged stock.
const DefaultMaxSweepItems = 500_000

// SweepConfig configures one sweep.
type SweepConfig struct {
	// Area names what the sweep covers ("store", "zone-3"); informative.
	Area string
	// Scope lists the GTINs (any GTIN-8/12/13/14 form) this sweep is
	// responsible for. When set, the result counts exactly these GTINs,
	// 0 for those not seen, and ignores tags of any other GTIN (counted in
	// OutOfScope). When empty, the result counts every GTIN seen and no
	// others. See the package documentation on why this matters.
	Scope []string
	// MinRSSI ignores reads weaker than this (dBm); 0 = off.
	MinRSSI float64
	// MaxItems bounds the distinct items remembered; a sweep that sees
	// more is Truncated. Default DefaultMaxSweepItems.
	MaxItems int
	// Decoder decodes EPCs; nil makes a private one.
	Decoder *Decoder
}

// Sweep is one counting session: a handheld walk or a ceiling-reader cycle
// over an area. It collapses repeated reads of a tag and, at End, counts
// distinct serials per GTIN. Safe for concurrent use (lock order: the
// Sweep, then its Decoder).
type Sweep struct {
	mu       sync.Mutex
	cfg      SweepConfig
	dec      *Decoder
	scope    map[string]bool // nil = everything
	started  time.Time
	ended    bool
	seen     map[string]struct{} // item keys counted
	outside  map[string]struct{} // item keys out of scope, for a distinct count
	perGTIN  map[string]int64
	reads    uint64
	weak     uint64
	overflow uint64
	rejects  map[Reason]uint64
	notItems map[string]uint64
}

// SweepResult is what a sweep counted.
type SweepResult struct {
	Area           string
	Started, Ended time.Time
	// Counts holds one entry per GTIN, sorted by GTIN: with a Scope,
	// every scope GTIN (0 when none seen); without, every GTIN seen.
	Counts []GTINCount
	// Items is the number of distinct items (GTIN + serial) counted;
	// OutOfScope the distinct items ignored because their GTIN is outside
	// the Scope.
	Items, OutOfScope int
	// Reads counts every read; Weak those below MinRSSI; Rejects the
	// malformed EPCs by reason; NotItems well-formed non-item tags by
	// scheme.
	Reads, Weak uint64
	Rejects     map[Reason]uint64
	NotItems    map[string]uint64
	// Truncated says distinct items beyond MaxItems were dropped
	// (Overflow reads of them): the counts are too low and CountEvents
	// refuses them.
	Truncated bool
	Overflow  uint64
}

// GTINCount is the number of distinct serials of one GTIN.
type GTINCount struct {
	GTIN string
	Qty  int64
}

// NewSweep starts a sweep at start.
func NewSweep(cfg SweepConfig, start time.Time) (*Sweep, error) {
	if cfg.MaxItems == 0 {
		cfg.MaxItems = DefaultMaxSweepItems
	}
	if cfg.MaxItems < 0 {
		return nil, fmt.Errorf("%w: sweep: MaxItems must be positive", ErrInvalidConfig)
	}
	if cfg.MinRSSI > 0 {
		return nil, fmt.Errorf("%w: sweep: MinRSSI is in dBm and must be negative (0 = off)", ErrInvalidConfig)
	}
	sw := &Sweep{
		cfg:      cfg,
		dec:      cfg.Decoder,
		started:  start,
		seen:     make(map[string]struct{}),
		outside:  make(map[string]struct{}),
		perGTIN:  make(map[string]int64),
		rejects:  make(map[Reason]uint64),
		notItems: make(map[string]uint64),
	}
	if sw.dec == nil {
		sw.dec = NewDecoder(0)
	}
	if len(cfg.Scope) > 0 {
		sw.scope = make(map[string]bool, len(cfg.Scope))
		for i, g := range cfg.Scope {
			n, err := gs1.NormalizeGTIN(g)
			if err != nil {
				return nil, fmt.Errorf("%w: sweep: scope[%d] %q: %v", ErrInvalidConfig, i, g, err)
			}
			sw.scope[n] = true
		}
	}
	return sw, nil
}

// Observe adds reads to the sweep. It fails only with ErrSweepEnded.
func (sw *Sweep) Observe(reads ...TagRead) error {
	sw.mu.Lock()
	defer sw.mu.Unlock()
	if sw.ended {
		return ErrSweepEnded
	}
	for i := range reads {
		sw.observe(&reads[i])
	}
	return nil
}

func (sw *Sweep) observe(r *TagRead) {
	sw.reads++
	d := sw.dec.lookup(r.EPC)
	switch d.verdict {
	case verdictReject:
		sw.rejects[d.reason]++
		return
	case verdictNotItem:
		sw.notItems[d.scheme]++
		return
	}
	if rssi := rssiOf(r); sw.cfg.MinRSSI != 0 && rssi != 0 && rssi < sw.cfg.MinRSSI {
		sw.weak++
		return
	}
	if sw.scope != nil && !sw.scope[d.item.GTIN] {
		if _, dup := sw.outside[d.key]; !dup && len(sw.outside) < sw.cfg.MaxItems {
			sw.outside[d.key] = struct{}{}
		}
		return
	}
	if _, dup := sw.seen[d.key]; dup {
		return
	}
	if len(sw.seen) >= sw.cfg.MaxItems {
		sw.overflow++
		return
	}
	sw.seen[d.key] = struct{}{}
	sw.perGTIN[d.item.GTIN]++
}

// End closes the sweep at end and returns its counts. The sweep frees its
// memory; a second End or a later Observe fails with ErrSweepEnded.
func (sw *Sweep) End(end time.Time) (SweepResult, error) {
	sw.mu.Lock()
	defer sw.mu.Unlock()
	if sw.ended {
		return SweepResult{}, ErrSweepEnded
	}
	sw.ended = true
	res := SweepResult{
		Area: sw.cfg.Area, Started: sw.started, Ended: end,
		Items: len(sw.seen), OutOfScope: len(sw.outside),
		Reads: sw.reads, Weak: sw.weak,
		Rejects: sw.rejects, NotItems: sw.notItems,
		Truncated: sw.overflow > 0, Overflow: sw.overflow,
	}
	if sw.scope != nil {
		for g := range sw.scope {
			res.Counts = append(res.Counts, GTINCount{GTIN: g, Qty: sw.perGTIN[g]})
		}
	} else {
		for g, n := range sw.perGTIN {
			res.Counts = append(res.Counts, GTINCount{GTIN: g, Qty: n})
		}
	}
	sort.Slice(res.Counts, func(i, j int) bool { return res.Counts[i].GTIN < res.Counts[j].GTIN })
	sw.seen, sw.outside, sw.perGTIN = nil, nil, nil
	return res, nil
}
