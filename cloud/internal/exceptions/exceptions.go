// Package exceptions decides which inventory events name things the hub
// does not know — a SKU or GTIN missing from the catalog, a location no
// store is known by — so the hub holds them in an exception queue instead
// of applying them to phantom stock positions, and how HQ's mappings
// ("this GTIN is SKU X", "store-99 is store-9") rewrite them.
//
// The package is pure: the store gathers what is known (catalog, stores,
// mappings) and asks Classify and Rewrite; it never does I/O.
//
// The rules:
//   - Nothing is unknown until a catalog has been imported (Known.Catalog):
//     a hub being set up, or a test, has no catalog, and every SKU and
//     location is taken as it comes.
//   - A SKU is known if the catalog has it as a variant. A value the catalog
//     has as a GTIN is not an exception: Resolve maps it to its variant.
//     An unknown value that looks like a GTIN (8, 12, 13 or 14 digits) is
//     unknown_gtin, any other unknown_sku.
//   - A location is known if it is the online location, a store that has
//     sent events or heartbeats (the event's own store among them: its NATS
//     account proves it exists), a store an account is scoped to, or a
//     mapping's target. So in practice an unknown location is a store named
//     by another channel (an online reservation at a store that never
//     synced).
//   - A whole event is held, never some of its lines: an event's lines take
//     effect together or not at all, as everywhere else on the hub.
package exceptions

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/omnisync/omnisync/cloud/internal/inventory"
	"github.com/omnisync/omnisync/shared/events"
)

// Reason says why an event is held.
type Reason string

// The reasons an event is held for.
const (
	UnknownSKU      Reason = "unknown_sku"
	UnknownGTIN     Reason = "unknown_gtin"
	UnknownLocation Reason = "unknown_location"
)

// Valid reports whether r is one of the reasons.
func (r Reason) Valid() bool {
	return r == UnknownSKU || r == UnknownGTIN || r == UnknownLocation
}

// MapKind is what a mapping substitutes: a SKU (an unknown SKU or GTIN) or
// a location.
type MapKind string

// The kinds of mapping.
const (
	MapSKU      MapKind = "sku"
	MapLocation MapKind = "location"
)

// MapKindOf is the kind of mapping that fixes findings of reason r.
func MapKindOf(r Reason) MapKind {
	if r == UnknownLocation {
		return MapLocation
	}
	return MapSKU
}

// ErrInvalid wraps every error about a mapping HQ asked for.
var ErrInvalid = errors.New("exceptions: invalid")

// maxValue bounds a mapped value, like the ids of events.
const maxValue = 128

// Mapping says that From, wherever an event names it as a Kind, is To.
type Mapping struct {
	Kind     MapKind
	From, To string
}

// Validate checks a mapping HQ asks for.
func (m Mapping) Validate() error {
	switch {
	case m.Kind != MapSKU && m.Kind != MapLocation:
		return fmt.Errorf("%w: kind must be %q or %q", ErrInvalid, MapSKU, MapLocation)
	case strings.TrimSpace(m.From) == "" || strings.TrimSpace(m.To) == "":
		return fmt.Errorf("%w: from and to are required", ErrInvalid)
	case m.From == m.To:
		return fmt.Errorf("%w: from and to are the same", ErrInvalid)
	case len(m.From) > maxValue || len(m.To) > maxValue:
		return fmt.Errorf("%w: a value is longer than %d bytes", ErrInvalid, maxValue)
	case strings.ContainsFunc(m.From+m.To, func(r rune) bool { return r < ' ' || r == 0x7f }):
		return fmt.Errorf("%w: a value has control characters", ErrInvalid)
	}
	return nil
}

// Mappings is a set of mappings, at most one per (kind, from).
type Mappings struct {
	sku, location map[string]string
}

// NewMappings indexes ms; of two with the same (kind, from) the later wins.
func NewMappings(ms []Mapping) Mappings {
	m := Mappings{sku: map[string]string{}, location: map[string]string{}}
	for _, x := range ms {
		m.Add(x)
	}
	return m
}

// Add adds (or replaces) one mapping.
func (m *Mappings) Add(x Mapping) {
	if m.sku == nil {
		m.sku, m.location = map[string]string{}, map[string]string{}
	}
	if x.Kind == MapLocation {
		m.location[x.From] = x.To
	} else {
		m.sku[x.From] = x.To
	}
}

// Len is the number of mappings.
func (m Mappings) Len() int { return len(m.sku) + len(m.location) }

// Targets returns the locations mapped to.
func (m Mappings) Targets() []string {
	out := make([]string, 0, len(m.location))
	for _, to := range m.location {
		out = append(out, to)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// Clone returns a copy of m that can be added to without changing m.
func (m Mappings) Clone() Mappings {
	out := NewMappings(nil)
	out.AddAll(m)
	return out
}

// AddAll adds every mapping of o to m.
func (m *Mappings) AddAll(o Mappings) {
	for from, to := range o.sku {
		m.Add(Mapping{Kind: MapSKU, From: from, To: to})
	}
	for from, to := range o.location {
		m.Add(Mapping{Kind: MapLocation, From: from, To: to})
	}
}

// MapRefs returns r with every mapped value substituted (sorted, unique).
// Mappings are not chained: one substitution per value, as in Rewrite.
func (m Mappings) MapRefs(r Refs) Refs {
	out := Refs{SKUs: make([]string, len(r.SKUs)), Locations: make([]string, len(r.Locations))}
	for i, s := range r.SKUs {
		out.SKUs[i] = m.skuOf(s)
	}
	for i, l := range r.Locations {
		out.Locations[i] = m.locationOf(l)
	}
	slices.Sort(out.SKUs)
	out.SKUs = slices.Compact(out.SKUs)
	slices.Sort(out.Locations)
	out.Locations = slices.Compact(out.Locations)
	return out
}

func (m Mappings) skuOf(s string) string {
	if to, ok := m.sku[s]; ok {
		return to
	}
	return s
}

func (m Mappings) locationOf(s string) string {
	if to, ok := m.location[s]; ok {
		return to
	}
	return s
}

// Refs are the SKUs and locations an event names.
type Refs struct {
	SKUs, Locations []string
}

// RefsOf returns what an inventory event names (sorted, unique); ok is
// false for events of other kinds and for bodies that do not decode (the
// inventory rules dead-letter those).
func RefsOf(env *events.Envelope) (r Refs, ok bool) {
	if !inventory.IsInventory(env.Kind) {
		return Refs{}, false
	}
	loc, skus, ok := refsOfBody(env)
	if !ok {
		return Refs{}, false
	}
	if loc == "" {
		loc = env.Origin.Store
	}
	if loc != "" {
		r.Locations = []string{loc}
	}
	r.SKUs = skus
	slices.Sort(r.SKUs)
	r.SKUs = slices.Compact(r.SKUs)
	return r, true
}

// refsOfBody returns the location and the non-empty SKUs of an
// inventory body, as decoding only those two fields would. Most bodies
// decode whole as a stock move or a reservation move (the body the
// envelope keeps from events.Decode, else through the events package's
// fast path); the same fields of a body that decodes whole are what the
// narrower decode reads (its fields are a subset of either move's, of the
// same types), and a body that does not (a quantity of the wrong type)
// takes the narrower decode.
func refsOfBody(env *events.Envelope) (loc string, skus []string, ok bool) {
	var lines []events.Line
	switch env.Kind {
	case events.KindReserve, events.KindRelease, events.KindFulfil:
		if m, err := env.ReservationMove(); err == nil {
			loc, lines, ok = m.Location, m.Lines, true
		}
	default:
		if m, err := env.StockMove(); err == nil {
			loc, lines, ok = m.Location, m.Lines, true
		}
	}
	if ok {
		for _, l := range lines {
			if l.SKU != "" {
				if skus == nil {
					skus = make([]string, 0, len(lines))
				}
				skus = append(skus, l.SKU)
			}
		}
		return loc, skus, true
	}
	data := env.Data
	var b struct {
		Location string `json:"location"`
		Lines    []struct {
			SKU string `json:"sku"`
		} `json:"lines"`
	}
	if err := json.Unmarshal(data, &b); err != nil {
		return "", nil, false
	}
	for _, l := range b.Lines {
		if l.SKU != "" {
			skus = append(skus, l.SKU)
		}
	}
	return b.Location, skus, true
}

// Known is what the hub knows of the values an event names.
type Known struct {
	// Catalog: a catalog has been imported, so the checks apply at all.
	Catalog bool
	// SKUs are the catalog's variants among those asked about; GTINs the
	// catalog's GTINs among those asked about, each with its SKU.
	SKUs  map[string]bool
	GTINs map[string]string
	// Locations are the known locations among those asked about.
	Locations map[string]bool
}

// Finding is one unknown value of an event.
type Finding struct {
	Reason Reason
	Value  string
}

// Resolve adds to m, for every SKU of r that the catalog has only as a
// GTIN, the mapping to its variant, so Rewrite turns it into the SKU.
func Resolve(r Refs, k Known, m *Mappings) {
	if !k.Catalog {
		return
	}
	for _, s := range r.SKUs {
		if k.SKUs[s] {
			continue
		}
		if sku, ok := k.GTINs[s]; ok && sku != "" {
			m.Add(Mapping{Kind: MapSKU, From: s, To: sku})
		}
	}
}

// Classify returns the unknown values r names (locations first, then SKUs,
// each sorted); none when the event may be applied. r must be the refs of
// the event as rewritten.
func Classify(r Refs, k Known) []Finding {
	if !k.Catalog {
		return nil
	}
	var out []Finding
	for _, l := range r.Locations {
		if !k.Locations[l] {
			out = append(out, Finding{UnknownLocation, l})
		}
	}
	for _, s := range r.SKUs {
		if k.SKUs[s] {
			continue
		}
		if LooksLikeGTIN(s) {
			out = append(out, Finding{UnknownGTIN, s})
		} else {
			out = append(out, Finding{UnknownSKU, s})
		}
	}
	return out
}

// LooksLikeGTIN reports whether s has the form of a GTIN-8, -12, -13 or
// -14: all digits, of one of those lengths.
func LooksLikeGTIN(s string) bool {
	switch len(s) {
	case 8, 12, 13, 14:
	default:
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// Rewrite returns env with every mapped SKU and location substituted in
// its body, and its origin store too when the body's location is the
// origin (a store's own stock moves must stay at its own location). Other
// fields of the body are kept as they are. changed is false, and env is
// returned untouched, when no mapping applies.
func Rewrite(env events.Envelope, m Mappings) (out events.Envelope, changed bool, err error) {
	if m.Len() == 0 || !inventory.IsInventory(env.Kind) {
		return env, false, nil
	}
	var body map[string]json.RawMessage
	if err := json.Unmarshal(env.Data, &body); err != nil {
		return env, false, nil
	}
	var loc string
	if raw, ok := body["location"]; ok {
		if err := json.Unmarshal(raw, &loc); err != nil {
			return env, false, nil
		}
	}
	effective := loc
	if effective == "" {
		effective = env.Origin.Store
	}
	if to := m.locationOf(effective); to != effective {
		if body["location"], err = json.Marshal(to); err != nil {
			return env, false, err
		}
		if env.Origin.Store == effective {
			env.Origin.Store = to
		}
		changed = true
	}
	if raw, ok := body["lines"]; ok {
		var lines []map[string]json.RawMessage
		if err := json.Unmarshal(raw, &lines); err != nil {
			return env, false, nil
		}
		linesChanged := false
		for _, l := range lines {
			var sku string
			if err := json.Unmarshal(l["sku"], &sku); err != nil {
				continue
			}
			if to := m.skuOf(sku); to != sku {
				if l["sku"], err = json.Marshal(to); err != nil {
					return env, false, err
				}
				linesChanged = true
			}
		}
		if linesChanged {
			if body["lines"], err = json.Marshal(lines); err != nil {
				return env, false, err
			}
			changed = true
		}
	}
	if !changed {
		return env, false, nil
	}
	data, err := json.Marshal(body)
	if err != nil {
		return env, false, err
	}
	env.Data = data
	return env, true, nil
}
