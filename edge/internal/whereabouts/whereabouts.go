// Package whereabouts remembers, per store agent, where on the shop floor
// or in the stockroom each item was last seen by an RFID read: the area a
// stock sweep covered ("rack-7", "stockroom"), when, and which units (the
// SGTIN serials) it read there.
//
// It exists so that an associate sent to fetch "M · Black" for a fitting
// room knows where to go and, when a sweep read them, which exact units
// to look for (edge/internal/staffq shows it in the request). Sweeps know
// the area; the agent's devices tell the Book what each sweep saw, and
// which units were carried into a fitting room: a unit in a room is with a
// shopper, not on its rack, so a fitting-room read is never a location and
// takes the unit off the area it was swept in.
//
// The Book is a small bbolt file of its own under the agent's data dir, so
// it works with the store offline and survives a restart. Per GTIN it
// keeps the MaxAreas most recently swept areas, each with at most MaxUnits
// serials; sightings older than MaxAge are forgotten. Nothing in it is
// personal.
//
// Sharp edges: the Book knows only what sweeps saw. A unit sold, or moved
// by hand from one rack to another, stays listed where it was swept until
// the next sweep of either area (or until it enters a fitting room); the
// page shows the age of a sighting so the associate can judge it.
package whereabouts

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"
	"unicode/utf8"

	bolt "go.etcd.io/bbolt"

	"github.com/omnisync/omnisync/shared/gs1"
)

// Bounds on what the Book keeps and accepts.
const (
	// MaxArea is the longest area name, in bytes.
	MaxArea = 64
	// MaxSerial is the longest serial (an SGTIN-198 serial has at most
	// 20 characters).
	MaxSerial = 20
	// MaxUnits is how many serials the Book keeps per GTIN and area: the
	// associate needs a few to look for, not the whole rack.
	MaxUnits = 8
	// MaxAreas is how many areas the Book keeps per GTIN.
	MaxAreas = 4
	// DefaultMaxAge: sightings older than this are forgotten.
	DefaultMaxAge = 30 * 24 * time.Hour
)

// ErrArea: the area name is empty, too long or not UTF-8.
var ErrArea = errors.New("whereabouts: area must be 1 to 64 bytes of UTF-8")

// Sighting is one GTIN a sweep read in its area: when it was last read and
// up to MaxUnits of its serials.
type Sighting struct {
	GTIN    string
	Serials []string
	At      time.Time
}

// Unit is one tagged item.
type Unit struct {
	GTIN, Serial string
}

// Place is where an item was last seen.
type Place struct {
	Area string
	Seen time.Time
	// Units are serials read there and not seen since in a fitting room
	// or another area.
	Units []string
}

// Options configures a Book.
type Options struct {
	// Path is the Book's bbolt file.
	Path string
	// MaxAge: sightings older than this are forgotten (default
	// DefaultMaxAge).
	MaxAge time.Duration
	// Now is the clock; Logger receives what happened.
	Now    func() time.Time
	Logger *slog.Logger
}

// Book is the agent's record of where items were seen.
type Book struct {
	o   Options
	log *slog.Logger
	db  *bolt.DB
}

var bucketGTINs = []byte("gtins")

// area is one area a GTIN was seen in, as stored.
type area struct {
	Name   string   `json:"area"`
	SeenMS int64    `json:"seen_ms"`
	Units  []string `json:"units,omitempty"`
}

// entry is everything known of one GTIN, most recently seen area first.
type entry struct {
	Areas []area `json:"areas"`
}

// Open opens (creating) the Book's file and forgets sightings older than
// MaxAge.
func Open(o Options) (*Book, error) {
	if o.Path == "" {
		return nil, errors.New("whereabouts: Path is required")
	}
	if o.MaxAge <= 0 {
		o.MaxAge = DefaultMaxAge
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	db, err := bolt.Open(o.Path, 0o600, &bolt.Options{Timeout: 5 * time.Second})
	if err != nil {
		return nil, fmt.Errorf("whereabouts: open %s: %w", o.Path, err)
	}
	b := &Book{o: o, log: o.Logger, db: db}
	if err := db.Update(func(tx *bolt.Tx) error {
		bk, err := tx.CreateBucketIfNotExists(bucketGTINs)
		if err != nil {
			return err
		}
		return b.prune(bk)
	}); err != nil {
		db.Close()
		return nil, fmt.Errorf("whereabouts: %w", err)
	}
	return b, nil
}

// Close closes the file.
func (b *Book) Close() error { return b.db.Close() }

// prune drops areas older than MaxAge, and GTINs left with none.
func (b *Book) prune(bk *bolt.Bucket) error {
	cutoff := b.o.Now().Add(-b.o.MaxAge).UnixMilli()
	type put struct {
		k []byte
		e *entry
	}
	var puts []put
	err := bk.ForEach(func(k, raw []byte) error {
		e, ok := decode(raw)
		if ok {
			kept := slices.DeleteFunc(slices.Clone(e.Areas), func(a area) bool { return a.SeenMS < cutoff })
			if len(kept) == len(e.Areas) {
				return nil
			}
			e.Areas = kept
		}
		if !ok || len(e.Areas) == 0 {
			puts = append(puts, put{k: slices.Clone(k)})
			return nil
		}
		puts = append(puts, put{k: slices.Clone(k), e: &e})
		return nil
	})
	if err != nil {
		return err
	}
	for _, p := range puts {
		if err := b.store(bk, p.k, p.e); err != nil {
			return err
		}
	}
	if len(puts) > 0 {
		b.log.Info("whereabouts: old sightings forgotten", "gtins", len(puts))
	}
	return nil
}

// decode reads a stored entry; an unreadable one is treated as absent.
func decode(raw []byte) (entry, bool) {
	var e entry
	if raw == nil || json.Unmarshal(raw, &e) != nil {
		return entry{}, false
	}
	return e, true
}

// store writes e under k, or deletes k when e is nil or empty.
func (b *Book) store(bk *bolt.Bucket, k []byte, e *entry) error {
	if e == nil || len(e.Areas) == 0 {
		return bk.Delete(k)
	}
	raw, err := json.Marshal(e)
	if err != nil {
		return err
	}
	return bk.Put(k, raw)
}

// ValidArea reports whether name can be an area (see ErrArea).
func ValidArea(name string) error {
	if name == "" || len(name) > MaxArea || !utf8.ValidString(name) {
		return ErrArea
	}
	return nil
}

// Swept records what a sweep of area read there, in one transaction: each
// GTIN's place in area becomes the sighting (its serials replace those
// listed there before: the sweep has just looked), and serials it read
// leave any other area they were listed in. Sightings with a GTIN that is
// not one, and serials that are empty or too long, are skipped; an area
// that is not one (ErrArea) changes nothing.
func (b *Book) Swept(ctx context.Context, name string, seen []Sighting) error {
	if err := ValidArea(name); err != nil {
		return err
	}
	if len(seen) == 0 {
		return nil
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	err := b.db.Update(func(tx *bolt.Tx) error {
		bk := tx.Bucket(bucketGTINs)
		for _, s := range seen {
			gtin, err := gs1.NormalizeGTIN(s.GTIN)
			if err != nil {
				continue
			}
			units := cleanSerials(s.Serials)
			e, _ := decode(bk.Get([]byte(gtin)))
			at := s.At.UnixMilli()
			found := false
			for i := range e.Areas {
				a := &e.Areas[i]
				if a.Name == name {
					found = true
					a.SeenMS = max(a.SeenMS, at)
					a.Units = units
					continue
				}
				a.Units = slices.DeleteFunc(a.Units, func(u string) bool { return slices.Contains(units, u) })
			}
			if !found {
				e.Areas = append(e.Areas, area{Name: name, SeenMS: at, Units: units})
			}
			slices.SortStableFunc(e.Areas, func(x, y area) int { return cmp.Compare(y.SeenMS, x.SeenMS) })
			if len(e.Areas) > MaxAreas {
				e.Areas = e.Areas[:MaxAreas]
			}
			if err := b.store(bk, []byte(gtin), &e); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("whereabouts: sweep of %s: %w", name, err)
	}
	return nil
}

// cleanSerials keeps the first MaxUnits distinct usable serials.
func cleanSerials(in []string) []string {
	var out []string
	for _, s := range in {
		if s == "" || len(s) > MaxSerial || !utf8.ValidString(s) || slices.Contains(out, s) {
			continue
		}
		out = append(out, s)
		if len(out) == MaxUnits {
			break
		}
	}
	return out
}

// Entered takes units carried into a fitting room off the areas they
// were swept in: they are with a shopper now. The areas stay (the item's
// other units are likely still there).
func (b *Book) Entered(ctx context.Context, units []Unit) error {
	if len(units) == 0 {
		return nil
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	err := b.db.Update(func(tx *bolt.Tx) error {
		bk := tx.Bucket(bucketGTINs)
		for _, u := range units {
			gtin, err := gs1.NormalizeGTIN(u.GTIN)
			if err != nil || u.Serial == "" {
				continue
			}
			e, ok := decode(bk.Get([]byte(gtin)))
			if !ok {
				continue
			}
			changed := false
			for i := range e.Areas {
				n := len(e.Areas[i].Units)
				e.Areas[i].Units = slices.DeleteFunc(e.Areas[i].Units, func(s string) bool { return s == u.Serial })
				changed = changed || len(e.Areas[i].Units) != n
			}
			if !changed {
				continue
			}
			if err := b.store(bk, []byte(gtin), &e); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("whereabouts: units entering a room: %w", err)
	}
	return nil
}

// Where says where an item with any of gtins (a variant may have several)
// is best fetched from: the most recently seen area that still lists
// units, or else the most recently seen area. ok is false when no sweep
// within MaxAge saw it; a GTIN that is not one is ignored.
func (b *Book) Where(gtins ...string) (Place, bool) {
	cutoff := b.o.Now().Add(-b.o.MaxAge).UnixMilli()
	var all []area
	err := b.db.View(func(tx *bolt.Tx) error {
		bk := tx.Bucket(bucketGTINs)
		for _, g := range gtins {
			n, err := gs1.NormalizeGTIN(g)
			if err != nil {
				continue
			}
			if e, ok := decode(bk.Get([]byte(n))); ok {
				for _, a := range e.Areas {
					if a.SeenMS >= cutoff {
						all = append(all, a)
					}
				}
			}
		}
		return nil
	})
	if err != nil {
		b.log.Warn("whereabouts: lookup failed", "err", err)
		return Place{}, false
	}
	if len(all) == 0 {
		return Place{}, false
	}
	slices.SortStableFunc(all, func(x, y area) int { return cmp.Compare(y.SeenMS, x.SeenMS) })
	best := all[0]
	for _, a := range all {
		if len(a.Units) > 0 {
			best = a
			break
		}
	}
	return Place{Area: best.Name, Seen: time.UnixMilli(best.SeenMS), Units: slices.Clone(best.Units)}, true
}
