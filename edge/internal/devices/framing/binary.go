package framing

import (
	"bytes"
	"fmt"
)

// Coverage says which bytes a binary length field counts.
type Coverage uint8

// Coverages, named by the span of the frame the length value counts.
const (
	// AfterLengthBeforeChecksum: the bytes after the length field up to the
	// checksum (the 0xBB ... 0x7E family's PL).
	AfterLengthBeforeChecksum Coverage = iota + 1
	// AfterLengthThroughChecksum: the bytes after the length field through
	// the checksum, not the trailer (the 0xA0 / R2000 family's Len, and the
	// Len of CRC-16 readers whose frames start with it).
	AfterLengthThroughChecksum
	// AfterLengthThroughTrailer: every byte after the length field.
	AfterLengthThroughTrailer
	// WholeFrame: the whole frame, header through trailer.
	WholeFrame
)

var coverageNames = [...]string{
	AfterLengthBeforeChecksum:  "after-length-before-checksum",
	AfterLengthThroughChecksum: "after-length-through-checksum",
	AfterLengthThroughTrailer:  "after-length-through-trailer",
	WholeFrame:                 "whole-frame",
}

func (c Coverage) String() string {
	if int(c) < len(coverageNames) && coverageNames[c] != "" {
		return coverageNames[c]
	}
	return "unknown"
}

// ParseCoverage maps a profile's length_covers name to a Coverage.
func ParseCoverage(name string) (Coverage, bool) {
	for i, n := range coverageNames {
		if n != "" && n == name {
			return Coverage(i), true
		}
	}
	return 0, false
}

// Binary configures a framer for header + length + checksum frames, the
// framing of UHF RFID reader modules:
//
//	Header | ... | Length | ... | Checksum | Trailer
//
// The payload a Binary framer emits is the frame without its header,
// checksum and trailer: the length field and everything around it stay,
// because protocols put command bytes before the length (0xBB type cmd PL).
type Binary struct {
	// Header starts every frame (0xA0, 0xBB). It may be empty only with a
	// CRC-16, which then carries the whole burden of finding frames.
	Header []byte
	// LengthOffset is the length field's offset from the first header byte;
	// it must be at or after the end of the header.
	LengthOffset int
	// LengthSize is 1 or 2 bytes; LengthBigEndian selects the byte order of
	// a 2-byte field.
	LengthSize      int
	LengthBigEndian bool
	// LengthCovers says what the length value counts; LengthAdjust is added
	// to the frame size it implies, for protocols that count oddly.
	LengthCovers Coverage
	LengthAdjust int
	// Trailer ends every frame (0x7E), optional.
	Trailer []byte
	// Checksum is the frame check; NoChecksum needs a Trailer. It covers the
	// bytes from ChecksumFrom (an offset from the first header byte, at most
	// LengthOffset) up to the checksum, and is sent in ChecksumBigEndian
	// order when it is two bytes.
	Checksum          Checksum
	ChecksumFrom      int
	ChecksumBigEndian bool
	// MaxLen bounds the payload (the frame without header, checksum and
	// trailer).
	MaxLen int
}

type binary struct {
	cfg      Binary
	fixed    int // the length field's end: every frame is at least this long
	overhead int // header + checksum + trailer
	minTotal int
	maxTotal int
	// shadow is how many bytes ahead still belong to the last rejected
	// candidate frame. Resynchronisation retries every header inside it
	// (every byte, without a header), and the failures there are reported
	// as more of the same reject: one bad frame is one reject, not one per
	// retry.
	shadow     int
	shadowKind Reject
	stream
}

var _ Framer = (*binary)(nil)

// NewBinary checks c and returns its Framer.
func NewBinary(c Binary) (Framer, error) {
	f := &binary{
		cfg:      c,
		fixed:    c.LengthOffset + c.LengthSize,
		overhead: len(c.Header) + c.Checksum.Size() + len(c.Trailer),
	}
	f.minTotal = f.fixed + c.Checksum.Size() + len(c.Trailer)
	f.maxTotal = c.MaxLen + f.overhead
	switch {
	case len(c.Header) > 8 || len(c.Trailer) > 8:
		return nil, configErr("header", "header and trailer are limited to 8 bytes")
	case len(c.Header) == 0 && c.Checksum.Size() < 2:
		return nil, configErr("header", "required unless the checksum is a CRC-16")
	case c.Checksum == NoChecksum && len(c.Trailer) == 0:
		return nil, configErr("checksum", "a binary frame needs a checksum or a trailer to be checked")
	case c.LengthSize != 1 && c.LengthSize != 2:
		return nil, configErr("length_size", "must be 1 or 2")
	case c.LengthOffset < len(c.Header) || c.LengthOffset > 16:
		return nil, configErr("length_offset", fmt.Sprintf("must be between the header's end (%d) and 16", len(c.Header)))
	case c.LengthCovers.String() == "unknown":
		return nil, configErr("length_covers", "must be one of "+coverageList())
	case c.LengthAdjust < -16 || c.LengthAdjust > 16:
		return nil, configErr("length_adjust", "must be between -16 and 16")
	case c.ChecksumFrom < 0 || c.ChecksumFrom > c.LengthOffset:
		return nil, configErr("checksum_from", fmt.Sprintf("must be between 0 and length_offset (%d)", c.LengthOffset))
	case c.MaxLen < f.fixed-len(c.Header) || c.MaxLen > MaxFrameLen:
		return nil, configErr("max_len", fmt.Sprintf("must be between %d and %d", f.fixed-len(c.Header), MaxFrameLen))
	}
	f.stream = newStream(f.maxTotal)
	return f, nil
}

func coverageList() string {
	return "after-length-before-checksum, after-length-through-checksum, after-length-through-trailer, whole-frame"
}

func (f *binary) Feed(p []byte, emit func([]byte), reject func(Reject, int)) {
	f.stream.feed(f, p, emit, reject)
}

func (f *binary) Flush(emit func([]byte), reject func(Reject, int)) {
	f.stream.flush(f, emit, reject)
}

// total is the frame size a length value declares.
func (f *binary) total(v int) int {
	c := f.cfg
	switch c.LengthCovers {
	case AfterLengthBeforeChecksum:
		v += f.fixed + c.Checksum.Size() + len(c.Trailer)
	case AfterLengthThroughChecksum:
		v += f.fixed + len(c.Trailer)
	case AfterLengthThroughTrailer:
		v += f.fixed
	}
	return v + c.LengthAdjust
}

// resync is how many bytes a rejected candidate frame of n checked bytes
// at the start of b accounts for: up to the next place a frame could start,
// so that a real frame beginning inside the rejected one is not skipped.
func (f *binary) resync(b []byte, n int) int {
	h := f.cfg.Header
	if len(h) == 0 {
		return 1
	}
	if j := bytes.Index(b[1:n], h[:1]); j >= 0 {
		// The first header byte is enough: a header cut by the end of the
		// checked bytes is still a candidate.
		return 1 + j
	}
	return n
}

func (f *binary) scan(data []byte, final bool, s *sink) int {
	c := f.cfg
	h := c.Header
	i := 0
	for i < len(data) {
		b := data[i:]
		if len(h) > 0 {
			p := bytes.Index(b, h)
			if p < 0 {
				n := len(b)
				if !final {
					n -= splitPrefix(b, h)
				}
				f.reject(s, Reject{Garbage, "no header"}, n, 0)
				return i + n
			}
			if p > 0 {
				f.reject(s, Reject{Garbage, "no header"}, p, 0)
				i += p
				continue
			}
		}
		if len(b) < f.fixed {
			if final {
				n := f.resync(b, len(b))
				f.reject(s, Reject{Truncated, "incomplete frame"}, n, len(b))
				i += n
				continue
			}
			return i
		}
		total := f.total(int(getUint(b[c.LengthOffset:f.fixed], c.LengthBigEndian)))
		switch {
		case total < f.minTotal:
			n := f.resync(b, f.fixed)
			f.reject(s, Reject{BadLength, "length shorter than the frame's fixed parts"}, n, f.fixed)
			i += n
			continue
		case total > f.maxTotal:
			n := f.resync(b, f.fixed)
			f.reject(s, Reject{Oversize, "length above max_len"}, n, f.fixed)
			i += n
			continue
		case total > len(b):
			if final {
				n := f.resync(b, len(b))
				f.reject(s, Reject{Truncated, "incomplete frame"}, n, len(b))
				i += n
				continue
			}
			return i
		}
		fr := b[:total]
		csAt := total - len(c.Trailer) - c.Checksum.Size()
		if !bytes.Equal(fr[total-len(c.Trailer):], c.Trailer) {
			n := f.resync(b, total)
			f.reject(s, Reject{BadTrailer, "trailer mismatch"}, n, total)
			i += n
			continue
		}
		if c.Checksum != NoChecksum &&
			c.Checksum.get(fr[csAt:], c.ChecksumBigEndian) != c.Checksum.Sum(fr[c.ChecksumFrom:csAt]) {
			n := f.resync(b, total)
			f.reject(s, Reject{BadChecksum, "checksum mismatch"}, n, total)
			i += n
			continue
		}
		f.shadow = 0
		s.frame(fr[len(h):csAt])
		i += total
	}
	if final {
		f.shadow = 0
	}
	return i
}

// reject reports n bytes discarded from a candidate frame whose checked
// bytes span `span` (0 for garbage). Inside the shadow of an earlier
// rejected frame it reports them as more of that reject.
func (f *binary) reject(s *sink, r Reject, n, span int) {
	if span == 0 && f.shadow > 0 && n > f.shadow {
		// Garbage runs past the shadow's end: how far it reaches in one
		// scan depends on how the stream was chunked, so split it there.
		k := f.shadow
		f.reject(s, r, k, 0)
		n -= k
	}
	if f.shadow > 0 {
		r = f.shadowKind
	} else {
		f.shadowKind = r
	}
	s.drop(r.Kind, r.Detail, n)
	f.shadow = max(f.shadow-n, span-n, 0)
}

func (f *binary) AppendFrame(dst, payload []byte) ([]byte, error) {
	c := f.cfg
	lh := len(c.Header)
	if len(payload) < f.fixed-lh || len(payload) > c.MaxLen {
		return dst, fmt.Errorf("%w: payload of %d bytes (need %d to %d)", ErrUnframeable, len(payload), f.fixed-lh, c.MaxLen)
	}
	start := len(dst)
	total := len(payload) + f.overhead
	// Solve total(v) == total for the length value v.
	v := total - f.total(0)
	if v < 0 || v >= 1<<(8*c.LengthSize) {
		return dst, fmt.Errorf("%w: %d bytes do not fit the length field", ErrUnframeable, total)
	}
	dst = append(dst, c.Header...)
	dst = append(dst, payload...)
	putUint(dst[start+c.LengthOffset:start+f.fixed], uint(v), c.LengthBigEndian)
	if n := c.Checksum.Size(); n > 0 {
		sum := c.Checksum.Sum(dst[start+c.ChecksumFrom:])
		dst = append(dst, make([]byte, n)...)
		c.Checksum.put(dst[len(dst)-n:], sum, c.ChecksumBigEndian)
	}
	dst = append(dst, c.Trailer...)
	return dst, nil
}

// splitPrefix is the length of the longest tail of b that is a proper
// prefix of marker: the start of a marker split across reads, to keep.
func splitPrefix(b, marker []byte) int {
	for k := min(len(marker)-1, len(b)); k > 0; k-- {
		if bytes.HasPrefix(marker, b[len(b)-k:]) {
			return k
		}
	}
	return 0
}
