package epc

import (
	"encoding/hex"
	"strings"
)

// bitReader reads big-endian bit fields from EPC memory.
type bitReader struct {
	b   []byte
	pos int
}

// read returns the next n bits (n <= 64); bits past the end read as zero.
func (r *bitReader) read(n int) uint64 {
	var v uint64
	for i := 0; i < n; i++ {
		bit := uint64(0)
		if p := r.pos + i; p/8 < len(r.b) {
			bit = uint64(r.b[p/8]>>(7-p%8)) & 1
		}
		v = v<<1 | bit
	}
	r.pos += n
	return v
}

// bitWriter builds EPC memory.
type bitWriter struct {
	b   []byte
	pos int
}

func (w *bitWriter) write(v uint64, n int) {
	for i := n - 1; i >= 0; i-- {
		if w.pos/8 >= len(w.b) {
			w.b = append(w.b, 0)
		}
		if v>>uint(i)&1 == 1 {
			w.b[w.pos/8] |= 1 << (7 - w.pos%8)
		}
		w.pos++
	}
}

// hex returns the memory as upper-case hex padded to whole 16-bit words,
// as Gen2 EPC memory is organised.
func (w *bitWriter) hex() string {
	n := (w.pos + 15) / 16 * 2
	for len(w.b) < n {
		w.b = append(w.b, 0)
	}
	return strings.ToUpper(hex.EncodeToString(w.b[:n]))
}

// decodeHex parses a hex EPC, requiring at least bits bits and allowing
// only zero bits beyond them (reader padding).
func decodeHex(s string, bits int) ([]byte, error) {
	if len(s)%2 == 1 {
		s += "0" // some tools print an odd number of digits
	}
	b, err := hex.DecodeString(s)
	if err != nil {
		return nil, errf(ErrHex, "not hexadecimal")
	}
	if len(b)*8 < bits {
		return nil, errf(ErrHex, "too short for the scheme")
	}
	r := bitReader{b: b, pos: bits}
	for r.pos < len(b)*8 {
		if r.read(1) != 0 {
			return nil, errf(ErrHex, "non-zero bits after the end of the scheme")
		}
	}
	return b, nil
}
