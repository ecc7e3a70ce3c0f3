package framing

import (
	"bytes"
	"fmt"
)

// STXETX configures a framer for STX data ETX [BCC] frames, the framing
// industrial scanners offer for RS-232 lines.
type STXETX struct {
	// STX and ETX delimit the payload (usually 0x02 and 0x03). Neither may
	// occur in the data; an STX before the ETX starts a new frame and the
	// unfinished one is Truncated.
	STX, ETX byte
	// Check is the optional block check byte sent after ETX: XOR8 (the usual
	// BCC/LRC), Sum8 or Sum8Twos, computed over the payload and the ETX (not
	// the STX), as ISO 1745-style links do. NoChecksum when absent.
	Check Checksum
	// MaxLen bounds the payload.
	MaxLen int
}

type stxetx struct {
	cfg      STXETX
	skipping bool // inside an oversize frame: discard up to its ETX
	stream
}

var _ Framer = (*stxetx)(nil)

// NewSTXETX checks c and returns its Framer.
func NewSTXETX(c STXETX) (Framer, error) {
	switch {
	case c.STX == c.ETX:
		return nil, configErr("etx", "must differ from stx")
	case c.Check.Size() > 1:
		return nil, configErr("checksum", "must be none, xor8, sum8 or sum8-twos (one byte after ETX)")
	case c.MaxLen < 1 || c.MaxLen > MaxFrameLen:
		return nil, configErr("max_len", fmt.Sprintf("must be between 1 and %d", MaxFrameLen))
	}
	// Pending at most: STX, MaxLen bytes, ETX, waiting for the check byte.
	return &stxetx{cfg: c, stream: newStream(c.MaxLen + 2)}, nil
}

func (f *stxetx) Feed(p []byte, emit func([]byte), reject func(Reject, int)) {
	f.stream.feed(f, p, emit, reject)
}

func (f *stxetx) Flush(emit func([]byte), reject func(Reject, int)) {
	f.stream.flush(f, emit, reject)
}

func (f *stxetx) scan(data []byte, final bool, s *sink) int {
	stx, etx, cs := f.cfg.STX, f.cfg.ETX, f.cfg.Check.Size()
	i := 0
	for i < len(data) {
		b := data[i:]
		if f.skipping {
			n, done := f.skip(b, final, s)
			i += n
			if !done {
				return i
			}
			continue
		}
		st := bytes.IndexByte(b, stx)
		if st < 0 {
			s.drop(Garbage, "no STX", len(b))
			return i + len(b)
		}
		if st > 0 {
			s.drop(Garbage, "no STX", st)
			i += st
			continue
		}
		body := b[1:]
		e := bytes.IndexByte(body, etx)
		next := bytes.IndexByte(body, stx)
		end := e
		if next >= 0 && (e < 0 || next < e) {
			end = next
		}
		switch {
		case end > f.cfg.MaxLen || (end < 0 && len(body) > f.cfg.MaxLen):
			s.drop(Oversize, "frame longer than max_len", 1+f.cfg.MaxLen)
			i += 1 + f.cfg.MaxLen
			f.skipping = true
		case end >= 0 && end == next:
			s.drop(Truncated, "STX before ETX", 1+next)
			i += 1 + next
		case end < 0 || 1+e+1+cs > len(b):
			if !final {
				return i
			}
			s.drop(Truncated, "no ETX", len(b))
			i += len(b)
		default:
			n := 1 + e + 1
			if cs == 1 {
				if got, want := b[n], byte(f.cfg.Check.Sum(body[:e+1])); got != want {
					// A check byte that is really the next frame's STX
					// (a scanner not sending a BCC) is left to start it.
					if got != stx {
						n++
					}
					s.drop(BadChecksum, "BCC mismatch", n)
					i += n
					continue
				}
				n++
			}
			i += n
			if e == 0 {
				s.drop(Garbage, "empty frame", n)
				continue
			}
			s.frame(body[:e])
		}
	}
	if final {
		f.skipping = false
	}
	return i
}

// skip discards the rest of an oversize frame, through its ETX (and check
// byte) or up to a new STX. done reports that the frame has ended.
func (f *stxetx) skip(b []byte, final bool, s *sink) (n int, done bool) {
	e := bytes.IndexByte(b, f.cfg.ETX)
	st := bytes.IndexByte(b, f.cfg.STX)
	switch {
	case st >= 0 && (e < 0 || st < e):
		n, done = st, true
	case e >= 0:
		n, done = e+1, true
		if f.cfg.Check.Size() == 1 {
			switch {
			case e+1 < len(b) && b[e+1] != f.cfg.STX:
				n++
			case e+1 >= len(b) && !final:
				// Wait, holding only the ETX: the next byte may be the
				// check byte.
				s.drop(Oversize, "frame longer than max_len", e)
				return e, false
			}
		}
	default:
		n, done = len(b), final
	}
	s.drop(Oversize, "frame longer than max_len", n)
	f.skipping = !done
	return n, done
}

func (f *stxetx) AppendFrame(dst, payload []byte) ([]byte, error) {
	switch {
	case len(payload) == 0 || len(payload) > f.cfg.MaxLen:
		return dst, fmt.Errorf("%w: payload of %d bytes (max_len %d)", ErrUnframeable, len(payload), f.cfg.MaxLen)
	case bytes.IndexByte(payload, f.cfg.STX) >= 0 || bytes.IndexByte(payload, f.cfg.ETX) >= 0:
		return dst, fmt.Errorf("%w: payload contains STX or ETX", ErrUnframeable)
	}
	dst = append(dst, f.cfg.STX)
	start := len(dst)
	dst = append(dst, payload...)
	dst = append(dst, f.cfg.ETX)
	if f.cfg.Check.Size() == 1 {
		dst = append(dst, byte(f.cfg.Check.Sum(dst[start:])))
	}
	return dst, nil
}
