package rfid

import (
	"fmt"
	"time"
)

// Defaults applied to zero fields of Zone and Config.
const (
	DefaultEnterAfter     = time.Second
	DefaultEnterReads     = 3
	DefaultLeaveAfter     = 5 * time.Second
	DefaultSwitchMargin   = 6.0 // dB
	DefaultMaxTagsPerZone = 10_000
	// MaxAntenna bounds antenna numbers: readers have 1 to 32 ports, a few
	// multiplexed ones more.
	MaxAntenna = 256
	// MaxZoneName bounds zone names, which travel in every enter and leave.
	MaxZoneName = 64
)

// Zone is a place where an item can be present: a fitting-room booth, a
// mirror, a counter. It is covered by some antennas of one reader.
type Zone struct {
	// Name identifies the zone in events ("booth-3").
	Name string
	// Reader is the device name reads carry in TagRead.Reader.
	Reader string
	// Antennas are the reader ports (1-based) covering the zone. A port
	// belongs to at most one zone; reads from other ports are ignored.
	Antennas []int
	// EnterAfter: an item becomes present once it has been read in the
	// zone over at least this span, at least EnterReads times, with no
	// silence longer than EnterAfter between reads. A single stray read,
	// or a short burst, from the next booth therefore never enters.
	// Default 1s.
	EnterAfter time.Duration
	// EnterReads is the minimum number of reads in that streak. Default 3.
	EnterReads int
	// LeaveAfter: a present item not read in the zone this long has left.
	// It must be at least EnterAfter (leaving is the slower decision, so
	// a tag behind a shopper's body does not flicker). Default 5s.
	LeaveAfter time.Duration
	// MinRSSI ignores reads weaker than this (dBm, e.g. -70); 0 turns the
	// filter off. Reads with unknown RSSI (0) are never filtered.
	MinRSSI float64
}

// Config configures a Smoother.
type Config struct {
	Zones []Zone
	// SwitchMargin is the hysteresis between zones, in dB of smoothed
	// RSSI: an item present in one zone moves to another only when the
	// other reads it this much stronger (or the first zone has stopped
	// reading it). Default 6 dB; a negative value means 0 (no
	// hysteresis, not recommended).
	SwitchMargin float64
	// MaxTagsPerZone bounds the EPCs tracked per zone; beyond it the
	// least recently read one is evicted (and left, if present) and
	// counted. Default 10,000.
	MaxTagsPerZone int
	// Decoder decodes and caches EPCs; nil makes a private one with
	// DefaultDecodeCache entries. Share one with Sweeps to share its cache.
	Decoder *Decoder
}

// withDefaults returns z with zero fields defaulted.
func (z Zone) withDefaults() Zone {
	if z.EnterAfter == 0 {
		z.EnterAfter = DefaultEnterAfter
	}
	if z.EnterReads == 0 {
		z.EnterReads = DefaultEnterReads
	}
	if z.LeaveAfter == 0 {
		z.LeaveAfter = DefaultLeaveAfter
	}
	return z
}

func (c Config) withDefaults() Config {
	switch {
	case c.SwitchMargin == 0:
		c.SwitchMargin = DefaultSwitchMargin
	case c.SwitchMargin < 0:
		c.SwitchMargin = 0
	}
	if c.MaxTagsPerZone == 0 {
		c.MaxTagsPerZone = DefaultMaxTagsPerZone
	}
	zs := make([]Zone, len(c.Zones))
	for i, z := range c.Zones {
		zs[i] = z.withDefaults()
	}
	c.Zones = zs
	return c
}

// Validate checks the configuration after defaults are applied.
func (c Config) Validate() error {
	c = c.withDefaults()
	if c.MaxTagsPerZone < 1 {
		return fmt.Errorf("%w: MaxTagsPerZone must be at least 1", ErrInvalidConfig)
	}
	type port struct {
		reader  string
		antenna int
	}
	names := make(map[string]bool, len(c.Zones))
	owner := make(map[port]string)
	for i, z := range c.Zones {
		where := fmt.Sprintf("zones[%d] (%s)", i, z.Name)
		bad := func(format string, a ...any) error {
			return fmt.Errorf("%w: %s: %s", ErrInvalidConfig, where, fmt.Sprintf(format, a...))
		}
		switch {
		case z.Name == "":
			return bad("name is missing")
		case len(z.Name) > MaxZoneName:
			return bad("name longer than %d characters", MaxZoneName)
		case names[z.Name]:
			return bad("name used by another zone")
		case z.Reader == "":
			return bad("reader is missing")
		case len(z.Antennas) == 0:
			return bad("at least one antenna is required")
		case z.EnterAfter < 0 || z.LeaveAfter < 0:
			return bad("durations must not be negative")
		case z.LeaveAfter < z.EnterAfter:
			return bad("leave_after (%v) must be at least enter_after (%v)", z.LeaveAfter, z.EnterAfter)
		case z.EnterReads < 1:
			return bad("enter_reads must be at least 1")
		case z.MinRSSI > 0:
			return bad("min_rssi is in dBm and must be negative (0 = off)")
		}
		names[z.Name] = true
		for _, a := range z.Antennas {
			if a < 1 || a > MaxAntenna {
				return bad("antenna %d out of range 1..%d", a, MaxAntenna)
			}
			p := port{z.Reader, a}
			if o, dup := owner[p]; dup && o != z.Name {
				return bad("antenna %d of %s already belongs to zone %s", a, z.Reader, o)
			}
			owner[p] = z.Name
		}
	}
	return nil
}
