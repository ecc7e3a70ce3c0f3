package store

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// seqSet is the exact dedup state of one (store, device, epoch): every seq
// <= watermark has been processed, and so has every seq in above (sorted,
// each > watermark+1, at most MaxAhead-1 of them).
type seqSet struct {
	watermark uint64
	above     []uint64
}

type verdict int

const (
	seqNew verdict = iota
	seqDuplicate
	seqDeferred
)

// check says what to do with seq.
func (s *seqSet) check(seq uint64) verdict {
	if seq <= s.watermark {
		return seqDuplicate
	}
	if seq-s.watermark > MaxAhead {
		return seqDeferred
	}
	if _, found := slices.BinarySearch(s.above, seq); found {
		return seqDuplicate
	}
	return seqNew
}

// mark records seq (which check found new) as processed and advances the
// watermark over any run it completes.
func (s *seqSet) mark(seq uint64) {
	if seq == s.watermark+1 {
		s.watermark = seq
	} else {
		i, _ := slices.BinarySearch(s.above, seq)
		s.above = slices.Insert(s.above, i, seq)
	}
	n := 0
	for n < len(s.above) && s.above[n] == s.watermark+1 {
		s.watermark++
		n++
	}
	if n > 0 {
		s.above = slices.Delete(s.above, 0, n)
	}
}

// encodeAbove renders above as comma-separated ranges: "7-9,12,15-20".
func (s *seqSet) encodeAbove() string {
	var b strings.Builder
	for i := 0; i < len(s.above); {
		j := i
		for j+1 < len(s.above) && s.above[j+1] == s.above[j]+1 {
			j++
		}
		if b.Len() > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.FormatUint(s.above[i], 10))
		if j > i {
			b.WriteByte('-')
			b.WriteString(strconv.FormatUint(s.above[j], 10))
		}
		i = j + 1
	}
	return b.String()
}

// decodeAbove parses what encodeAbove wrote.
func decodeAbove(text string) ([]uint64, error) {
	if text == "" {
		return nil, nil
	}
	var out []uint64
	for _, r := range strings.Split(text, ",") {
		lo, hi, isRange := strings.Cut(r, "-")
		a, err := strconv.ParseUint(lo, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("dedup state %q: %w", text, err)
		}
		b := a
		if isRange {
			if b, err = strconv.ParseUint(hi, 10, 64); err != nil || b < a || b-a > MaxAhead {
				return nil, fmt.Errorf("dedup state %q: bad range %q", text, r)
			}
		}
		for v := a; v <= b; v++ {
			out = append(out, v)
		}
	}
	if !slices.IsSorted(out) {
		return nil, fmt.Errorf("dedup state %q: not sorted", text)
	}
	return out, nil
}
