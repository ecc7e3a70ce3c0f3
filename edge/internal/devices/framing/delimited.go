package framing

import (
	"bytes"
	"fmt"
)

// Delimited configures a framer for text lines, the way most barcode
// scanners send a scan: [Prefix] data [Suffix] Terminator.
type Delimited struct {
	// Terminator ends a frame; any byte string ("\r", "\n", "\r\n", "\t").
	// Leave it empty and set AnyLineEnd for scanners that may end lines
	// with CR, LF or CRLF.
	Terminator []byte
	// AnyLineEnd makes CR, LF and CRLF each end a frame. Blank lines are
	// skipped silently when there is no Prefix; with a Prefix, line ends
	// outside frames are Garbage like any other byte (except the LF of a
	// frame's CRLF).
	AnyLineEnd bool
	// Prefix, when set, marks the start of every frame: bytes before it are
	// Garbage, and a Prefix seen before the terminator starts a new frame
	// (the unfinished one is Truncated). It is stripped.
	Prefix []byte
	// Suffix, when set, must end every frame just before the terminator
	// (else BadTrailer). It is stripped.
	Suffix []byte
	// MaxLen bounds the payload (without prefix, suffix and terminator).
	MaxLen int
}

// delimited is the Framer for Delimited.
type delimited struct {
	cfg      Delimited
	maxLine  int  // longest line content: MaxLen + len(Suffix)
	keep     int  // bytes that may be the start of a split terminator or prefix
	skipping bool // inside an oversize line: discard up to its end
	afterCR  bool // AnyLineEnd: the last line ended with CR, so an LF next is its CRLF
	stream
}

var _ Framer = (*delimited)(nil)

// NewDelimited checks c and returns its Framer.
func NewDelimited(c Delimited) (Framer, error) {
	switch {
	case c.AnyLineEnd && len(c.Terminator) > 0:
		return nil, configErr("terminator", "set either a terminator or any line end, not both")
	case !c.AnyLineEnd && len(c.Terminator) == 0:
		return nil, configErr("terminator", "required")
	case c.MaxLen < 1 || c.MaxLen > MaxFrameLen:
		return nil, configErr("max_len", fmt.Sprintf("must be between 1 and %d", MaxFrameLen))
	case len(c.Prefix) > 16 || len(c.Suffix) > 16 || len(c.Terminator) > 16:
		return nil, configErr("prefix", "prefix, suffix and terminator are limited to 16 bytes")
	}
	d := &delimited{cfg: c, maxLine: c.MaxLen + len(c.Suffix)}
	term := c.Terminator
	if c.AnyLineEnd {
		term = []byte{'\r'}
	}
	switch {
	case len(c.Prefix) > 0 && d.isTerm(c.Prefix, 0) >= 0:
		return nil, configErr("prefix", "must not contain the terminator")
	case len(c.Suffix) > 0 && d.isTerm(c.Suffix, 0) >= 0:
		return nil, configErr("suffix", "must not contain the terminator")
	case len(c.Prefix) > 0 && bytes.Contains(c.Suffix, c.Prefix):
		return nil, configErr("suffix", "must not contain the prefix")
	case len(c.Prefix) > 0 && bytes.Contains(c.Terminator, c.Prefix):
		return nil, configErr("prefix", "must not occur in the terminator")
	}
	d.keep = max(len(term), len(c.Prefix)) - 1
	d.stream = newStream(len(c.Prefix) + d.maxLine + d.keep)
	return d, nil
}

// findTerm returns the index and length of the first terminator in b, or
// -1.
func (d *delimited) findTerm(b []byte) (int, int) {
	if d.cfg.AnyLineEnd {
		return bytes.IndexAny(b, "\r\n"), 1
	}
	return bytes.Index(b, d.cfg.Terminator), len(d.cfg.Terminator)
}

// isTerm is findTerm's index only, from offset from.
func (d *delimited) isTerm(b []byte, from int) int {
	i, _ := d.findTerm(b[from:])
	return i
}

func (d *delimited) isLineEnd(c byte) bool {
	return d.cfg.AnyLineEnd && (c == '\r' || c == '\n')
}

func (d *delimited) Feed(p []byte, emit func([]byte), reject func(Reject, int)) {
	d.stream.feed(d, p, emit, reject)
}

func (d *delimited) Flush(emit func([]byte), reject func(Reject, int)) {
	d.stream.flush(d, emit, reject)
}

func (d *delimited) scan(data []byte, final bool, s *sink) int {
	i := 0
	pre := d.cfg.Prefix
	for i < len(data) {
		b := data[i:]
		if d.skipping {
			i += d.skip(b, final, s)
			if d.skipping {
				return i
			}
			continue
		}
		if d.afterCR {
			d.afterCR = false
			if b[0] == '\n' {
				i++ // the LF of a CRLF
				continue
			}
		}
		if len(pre) == 0 && d.isLineEnd(b[0]) {
			i++ // a blank line
			continue
		}
		start := 0
		if len(pre) > 0 {
			p := bytes.Index(b, pre)
			if p < 0 {
				n := len(b)
				if !final {
					n -= min(d.keep, n)
				}
				s.drop(Garbage, "no frame start", n)
				return i + n
			}
			if p > 0 {
				s.drop(Garbage, "no frame start", p)
				i += p
				continue
			}
			start = len(pre)
		}
		body := b[start:]
		t, tl := d.findTerm(body)
		next := -1 // a new prefix before the terminator
		if len(pre) > 0 {
			lim := body
			if t >= 0 {
				lim = body[:t]
			}
			next = bytes.Index(lim, pre)
		}
		end := t // where the line (or the frame start that cuts it) begins
		if next >= 0 {
			end = next
		}
		switch {
		case end > d.maxLine || (end < 0 && len(body)-d.keep > d.maxLine):
			// Too long, whatever follows: count what is certainly part of
			// this line and discard the rest of it in skipping mode.
			s.drop(Oversize, "line longer than max_len", start+d.maxLine)
			i += start + d.maxLine
			d.skipping = true
		case next >= 0:
			s.drop(Truncated, "new frame start before the terminator", start+next)
			i += start + next
		case t < 0 && final:
			s.drop(Truncated, "no terminator", len(b))
			i += len(b)
		case t < 0:
			return i
		default:
			i += start + t + tl
			d.afterCR = d.cfg.AnyLineEnd && body[t] == '\r'
			d.line(body[:t], start+t+tl, s)
		}
	}
	if final {
		d.afterCR = false
	}
	return i
}

// line checks and emits one complete line of n wire bytes.
func (d *delimited) line(l []byte, n int, s *sink) {
	if suf := d.cfg.Suffix; len(suf) > 0 {
		if !bytes.HasSuffix(l, suf) {
			s.drop(BadTrailer, "missing suffix", n)
			return
		}
		l = l[:len(l)-len(suf)]
	}
	if len(l) == 0 {
		if !d.cfg.AnyLineEnd || len(d.cfg.Prefix)+len(d.cfg.Suffix) > 0 {
			s.drop(Garbage, "empty frame", n)
		}
		return
	}
	s.frame(l)
}

// skip discards the rest of an oversize line: up to and including its
// terminator, or up to a new prefix. It returns the bytes consumed and
// clears d.skipping when the line has ended.
func (d *delimited) skip(b []byte, final bool, s *sink) int {
	t, tl := d.findTerm(b)
	if len(d.cfg.Prefix) > 0 {
		lim := b
		if t >= 0 {
			lim = b[:t]
		}
		if p := bytes.Index(lim, d.cfg.Prefix); p >= 0 {
			s.drop(Oversize, "line longer than max_len", p)
			d.skipping = false
			return p
		}
	}
	if t >= 0 {
		s.drop(Oversize, "line longer than max_len", t+tl)
		d.skipping = false
		d.afterCR = d.cfg.AnyLineEnd && b[t] == '\r'
		return t + tl
	}
	n := len(b)
	if final {
		d.skipping = false
	} else {
		n -= min(d.keep, n)
	}
	s.drop(Oversize, "line longer than max_len", n)
	return n
}

func (d *delimited) AppendFrame(dst, payload []byte) ([]byte, error) {
	if len(payload) == 0 || len(payload) > d.cfg.MaxLen {
		return dst, fmt.Errorf("%w: payload of %d bytes (max_len %d)", ErrUnframeable, len(payload), d.cfg.MaxLen)
	}
	start := len(dst)
	dst = append(dst, d.cfg.Prefix...)
	dst = append(dst, payload...)
	dst = append(dst, d.cfg.Suffix...)
	bodyEnd := len(dst)
	if d.cfg.AnyLineEnd {
		dst = append(dst, '\r', '\n')
	} else {
		dst = append(dst, d.cfg.Terminator...)
	}
	// The frame must read back as itself: the first terminator is ours and
	// no prefix restarts the frame inside it.
	body := dst[start+len(d.cfg.Prefix):]
	if t, _ := d.findTerm(body); t != bodyEnd-start-len(d.cfg.Prefix) {
		return dst[:start], fmt.Errorf("%w: payload contains the terminator", ErrUnframeable)
	}
	if len(d.cfg.Prefix) > 0 && bytes.Contains(body[:bodyEnd-start-len(d.cfg.Prefix)], d.cfg.Prefix) {
		return dst[:start], fmt.Errorf("%w: payload contains the prefix", ErrUnframeable)
	}
	return dst, nil
}
