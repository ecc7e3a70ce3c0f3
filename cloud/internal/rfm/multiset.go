package rfm

import (
	"slices"
	"sort"
)

// multiset is a sorted multiset of int64 that answers "how many values are
// below v" and "the k-th smallest value" while values come and go. It
// keeps the values in sorted chunks of a few hundred: an insert or a
// removal moves at most one chunk's worth of memory and a query walks the
// chunk lengths, so at a million values each operation is a few
// microseconds with no rebuild and no per-value allocation.
type multiset struct {
	chunks [][]int64 // each sorted and non-empty; chunks[i] ≤ chunks[i+1]
	n      int
	split  int // a chunk longer than this is cut in two
}

// defaultSplit is the chunk length at which a chunk is cut in two.
const defaultSplit = 1024

func newMultiset(split int) *multiset {
	if split < 2 {
		split = defaultSplit
	}
	return &multiset{split: split}
}

// load replaces the contents with values, which it sorts in place.
func (s *multiset) load(values []int64) {
	slices.Sort(values)
	s.chunks = s.chunks[:0]
	half := s.split / 2
	for i := 0; i < len(values); i += half {
		s.chunks = append(s.chunks, slices.Clone(values[i:min(i+half, len(values))]))
	}
	s.n = len(values)
}

// chunkFor is the first chunk whose largest value is ≥ v, or the last
// chunk when v is larger than everything.
func (s *multiset) chunkFor(v int64) int {
	i := sort.Search(len(s.chunks), func(i int) bool { c := s.chunks[i]; return c[len(c)-1] >= v })
	return min(i, len(s.chunks)-1)
}

func (s *multiset) insert(v int64) {
	s.n++
	if len(s.chunks) == 0 {
		s.chunks = append(s.chunks, []int64{v})
		return
	}
	ci := s.chunkFor(v)
	c := s.chunks[ci]
	j, _ := slices.BinarySearch(c, v)
	c = slices.Insert(c, j, v)
	if len(c) > s.split {
		half := len(c) / 2
		right := slices.Clone(c[half:])
		c = c[:half:half]
		s.chunks = slices.Insert(s.chunks, ci+1, right)
	}
	s.chunks[ci] = c
}

// remove takes one copy of v out; it reports false when v is not there.
func (s *multiset) remove(v int64) bool {
	if len(s.chunks) == 0 {
		return false
	}
	ci := s.chunkFor(v)
	c := s.chunks[ci]
	j, found := slices.BinarySearch(c, v)
	if !found {
		return false
	}
	s.n--
	if len(c) == 1 {
		s.chunks = slices.Delete(s.chunks, ci, ci+1)
		return true
	}
	s.chunks[ci] = slices.Delete(c, j, j+1)
	return true
}

// countLess is how many values are < v.
func (s *multiset) countLess(v int64) int {
	if len(s.chunks) == 0 {
		return 0
	}
	ci := s.chunkFor(v)
	n := 0
	for _, c := range s.chunks[:ci] {
		n += len(c)
	}
	j, _ := slices.BinarySearch(s.chunks[ci], v)
	return n + j
}

// kth is the k-th smallest value, counting from 1; k must be in 1..n.
func (s *multiset) kth(k int) int64 {
	for _, c := range s.chunks {
		if k <= len(c) {
			return c[k-1]
		}
		k -= len(c)
	}
	panic("rfm: kth beyond the multiset")
}
