package catalog

import (
	"hash/maphash"
	"math"
	"strconv"
)

// seen is what Parse remembers of the rows it accepted, to refuse a later
// row that repeats a SKU or a GTIN: every accepted SKU with its line, and
// every GTIN with the SKU that has it. It is the one part of Parse whose
// memory grows with the file, so it is kept compact: the SKUs back to back
// in one byte arena with an open-addressing table of their numbers, and
// each GTIN-14 as a number. About 70 bytes a row (a map[string]int of SKUs
// and a map[string]struct{line int; sku string} of GTINs took 140).
type seen struct {
	seed  maphash.Seed
	arena []byte   // the SKUs, back to back
	ends  []int    // ends[i]: where SKU i ends in arena (it starts at ends[i-1])
	lines []uint32 // lines[i]: the line of SKU i
	slots []uint32 // 0: empty; i+1: SKU i
	gtins map[uint64]uint32
	// other holds GTINs that are not numbers; Validate lets none through.
	other map[string]uint32
}

func newSeen() *seen {
	return &seen{seed: maphash.MakeSeed(), slots: make([]uint32, 1024), gtins: map[uint64]uint32{}, other: map[string]uint32{}}
}

func (s *seen) sku(i uint32) []byte {
	start := 0
	if i > 0 {
		start = s.ends[i-1]
	}
	return s.arena[start:s.ends[i]]
}

// slot returns the slot of sku in the table: the one holding it, or the
// empty one where it would go.
func (s *seen) slot(sku string) int {
	mask := len(s.slots) - 1
	for j := int(maphash.String(s.seed, sku)) & mask; ; j = (j + 1) & mask {
		n := s.slots[j]
		if n == 0 || string(s.sku(n-1)) == sku {
			return j
		}
	}
}

// skuLine returns the line of an accepted SKU.
func (s *seen) skuLine(sku string) (int, bool) {
	if n := s.slots[s.slot(sku)]; n != 0 {
		return int(s.lines[n-1]), true
	}
	return 0, false
}

// gtin returns the line and SKU of the accepted row that has GTIN g.
func (s *seen) gtin(g string) (line int, sku string, ok bool) {
	var n uint32
	if k, err := strconv.ParseUint(g, 10, 64); err == nil {
		n, ok = s.gtins[k]
	} else {
		n, ok = s.other[g]
	}
	if !ok {
		return 0, "", false
	}
	return int(s.lines[n]), string(s.sku(n)), true
}

// add remembers an accepted row: its SKU (not seen before), line and GTINs.
func (s *seen) add(sku string, line int, gtins []string) {
	if 4*(len(s.ends)+1) > 3*len(s.slots) {
		s.grow()
	}
	n := uint32(len(s.ends))
	s.arena = append(s.arena, sku...)
	s.ends = append(s.ends, len(s.arena))
	s.lines = append(s.lines, uint32(min(line, math.MaxUint32)))
	s.slots[s.slot(sku)] = n + 1
	for _, g := range gtins {
		if k, err := strconv.ParseUint(g, 10, 64); err == nil {
			s.gtins[k] = n
		} else {
			s.other[g] = n
		}
	}
}

// grow doubles the table.
func (s *seen) grow() {
	s.slots = make([]uint32, 2*len(s.slots))
	mask := len(s.slots) - 1
	for i := range s.ends {
		j := int(maphash.Bytes(s.seed, s.sku(uint32(i)))) & mask
		for s.slots[j] != 0 {
			j = (j + 1) & mask
		}
		s.slots[j] = uint32(i) + 1
	}
}
