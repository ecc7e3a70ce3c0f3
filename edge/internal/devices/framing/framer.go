package framing

// Framer turns a device's byte stream into frames. Implementations are the
// three building blocks (Delimited, STXETX, Binary); build one with New or
// NewDelimited, NewSTXETX, NewBinary.
type Framer interface {
	// Feed consumes p (any chunk: part of a frame, several frames, garbage)
	// and calls emit for each complete frame, with its payload (the framing
	// bytes stripped; see each block for what that is), and reject for each
	// discarded span of n bytes with the reason. Calls are made in stream
	// order before Feed returns. The frame slice is only valid during the
	// call and must not be modified. Bytes of an incomplete frame are kept
	// for the next Feed (at most about MaxLen). Both callbacks must be
	// non-nil.
	Feed(p []byte, emit func(frame []byte), reject func(r Reject, n int))

	// Flush declares the end of the stream so far: frames that the buffered
	// bytes complete are emitted, whatever cannot become a frame is rejected
	// (as Truncated, or as the kind of the run in progress), and the framer
	// is left empty, as new. Call it when the line goes idle (a read times
	// out with nothing) and before reopening the port, so a partial frame
	// left by an unplug is not glued to the first frame after it.
	Flush(emit func(frame []byte), reject func(r Reject, n int))

	// AppendFrame appends payload framed for the wire to dst: what a device
	// would send so that Feed emits exactly payload. For a binary framer the
	// length field inside payload is overwritten with the right value. It
	// fails with ErrUnframeable when payload cannot be framed (too long,
	// empty, or containing a terminator or frame-start marker). Simulators
	// and tests use it; the agent only reads.
	AppendFrame(dst, payload []byte) ([]byte, error)
}

// RejectKind says why bytes were discarded.
type RejectKind uint8

// Reject kinds, in the order a status page would list them.
const (
	// Garbage: bytes outside any frame (before a frame start marker, a line
	// without the required prefix, an empty frame).
	Garbage RejectKind = iota + 1
	// Truncated: a frame cut short, by a newer frame start or by Flush.
	Truncated
	// Oversize: a frame longer than MaxLen (the whole of it is counted).
	Oversize
	// BadLength: a binary length field that cannot be right (shorter than
	// the frame's own fixed parts).
	BadLength
	// BadChecksum: the checksum, CRC or BCC does not match.
	BadChecksum
	// BadTrailer: the bytes that must close a frame are wrong (a binary
	// trailer, a delimited frame's suffix).
	BadTrailer
)

var kindNames = [...]string{
	Garbage: "garbage", Truncated: "truncated", Oversize: "oversize",
	BadLength: "bad-length", BadChecksum: "bad-checksum", BadTrailer: "bad-trailer",
}

func (k RejectKind) String() string {
	if int(k) < len(kindNames) && kindNames[k] != "" {
		return kindNames[k]
	}
	return "unknown"
}

// Reject describes a discarded span of bytes. Detail is a constant,
// human-readable refinement ("no frame start", "checksum mismatch"); it is
// safe to keep.
type Reject struct {
	Kind   RejectKind
	Detail string
}

func (r Reject) String() string {
	if r.Detail == "" {
		return r.Kind.String()
	}
	return r.Kind.String() + ": " + r.Detail
}

// sink wraps the callbacks of one Feed or Flush call: it merges adjacent
// rejects of the same kind into one report (so a burst of line noise in one
// read is one reject, not one per resync attempt) and keeps reports in
// stream order by flushing the pending reject before each frame.
type sink struct {
	emit   func([]byte)
	reject func(Reject, int)
	pend   Reject
	n      int
}

func (s *sink) drop(kind RejectKind, detail string, n int) {
	if n <= 0 {
		return
	}
	if s.n > 0 && s.pend.Kind == kind {
		s.n += n
		return
	}
	s.flush()
	s.pend, s.n = Reject{Kind: kind, Detail: detail}, n
}

func (s *sink) frame(b []byte) {
	s.flush()
	s.emit(b)
}

func (s *sink) flush() {
	if s.n > 0 {
		n := s.n
		s.n = 0
		s.reject(s.pend, n)
	}
}

// scanner is the block-specific half of a framer: scan decides what it can
// about data (a prefix of the unconsumed stream) and returns how many bytes
// it consumed. It must leave at most maxPending bytes unconsumed; with final
// set it must consume everything (the stream has ended) and reset its state.
type scanner interface {
	scan(data []byte, final bool, s *sink) int
}

// stream is the buffering half shared by the blocks: a buffer allocated
// once, holding the bytes of the frame in progress between Feeds.
type stream struct {
	buf []byte // pending bytes; cap is fixed at construction
	// sink lives here rather than on Feed's stack because scan is called
	// through an interface, which would make a local escape: one
	// allocation per Feed. Its callbacks are cleared when Feed returns.
	sink sink
}

func newStream(maxPending int) stream {
	// One spare byte: a full buffer always lets scan decide something.
	return stream{buf: make([]byte, 0, maxPending+1)}
}

func (st *stream) feed(sc scanner, p []byte, emit func([]byte), reject func(Reject, int)) {
	s := st.begin(emit, reject)
	defer st.end()
	for len(p) > 0 {
		if len(st.buf) == 0 {
			// Fast path: scan the caller's chunk in place and buffer only
			// the tail of an unfinished frame.
			p = p[sc.scan(p, false, s):]
			if len(p) < cap(st.buf) {
				st.buf = append(st.buf, p...)
				break
			}
			// Unreachable while scan honours its bound; the buffered path
			// below still makes progress.
		}
		n := copy(st.buf[len(st.buf):cap(st.buf)], p)
		st.buf = st.buf[:len(st.buf)+n]
		p = p[n:]
		used := sc.scan(st.buf, false, s)
		if used == 0 && len(st.buf) == cap(st.buf) {
			// Defensive: a scanner that cannot decide on a full buffer
			// would stall the device forever. Give up one byte.
			s.drop(Oversize, "buffer full", 1)
			used = 1
		}
		st.buf = st.buf[:copy(st.buf, st.buf[used:])]
	}
}

func (st *stream) flush(sc scanner, emit func([]byte), reject func(Reject, int)) {
	s := st.begin(emit, reject)
	defer st.end()
	used := sc.scan(st.buf, true, s)
	if used < len(st.buf) {
		s.drop(Truncated, "end of stream", len(st.buf)-used) // defensive
	}
	st.buf = st.buf[:0]
}

func (st *stream) begin(emit func([]byte), reject func(Reject, int)) *sink {
	st.sink = sink{emit: emit, reject: reject}
	return &st.sink
}

// end reports the pending reject and drops the callbacks, so the framer
// does not keep the caller's closures alive.
func (st *stream) end() {
	st.sink.flush()
	st.sink = sink{}
}
