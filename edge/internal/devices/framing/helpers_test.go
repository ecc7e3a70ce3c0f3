package framing

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"testing"

	"github.com/omnisync/omnisync/edge/internal/devices/framing/framingtest"
)

// event is one callback a framer made: a frame, or a reject of n bytes.
type event struct {
	frame  string // set for frames
	kind   RejectKind
	detail string
	n      int
}

func (e event) isFrame() bool { return e.kind == 0 }

// recorder collects callbacks and checks the framer's bounds after each
// call.
type recorder struct {
	t      testing.TB
	f      Framer
	events []event
}

func (r *recorder) emit(b []byte) { r.events = append(r.events, event{frame: string(b)}) }
func (r *recorder) reject(j Reject, n int) {
	if n <= 0 {
		r.t.Fatalf("reject %v with n=%d", j, n)
	}
	r.events = append(r.events, event{kind: j.Kind, detail: j.Detail, n: n})
}

func (r *recorder) feed(p []byte) {
	r.f.Feed(p, r.emit, r.reject)
	r.checkBounds()
}

func (r *recorder) flush() {
	r.f.Flush(r.emit, r.reject)
	if n, _ := pending(r.f); n != 0 {
		r.t.Fatalf("%d bytes pending after Flush", n)
	}
}

func (r *recorder) checkBounds() {
	n, c := pending(r.f)
	if n >= c {
		r.t.Fatalf("%d bytes pending, buffer capacity %d", n, c)
	}
}

// pending reports the bytes a framer holds and its buffer's capacity.
func pending(f Framer) (n, capacity int) {
	var st *stream
	switch f := f.(type) {
	case *delimited:
		st = &f.stream
	case *stxetx:
		st = &f.stream
	case *binary:
		st = &f.stream
	default:
		panic(fmt.Sprintf("unknown framer %T", f))
	}
	return len(st.buf), cap(st.buf)
}

// runChunks feeds segments (each split into chunks of size chunk, 0 for
// whole) with a Flush after each segment, and returns the events.
func runChunks(t testing.TB, f Framer, segments [][]byte, chunk int) []event {
	r := &recorder{t: t, f: f}
	for _, seg := range segments {
		if chunk <= 0 {
			r.feed(seg)
		} else {
			for len(seg) > 0 {
				n := min(chunk, len(seg))
				r.feed(seg[:n])
				seg = seg[n:]
			}
		}
		r.flush()
	}
	return r.events
}

// merged folds adjacent rejects of the same kind, the way reports may be
// split across reads, and drops details: the chunking-independent view.
func merged(evs []event) []event {
	var out []event
	for _, e := range evs {
		if !e.isFrame() && len(out) > 0 && out[len(out)-1].kind == e.kind {
			out[len(out)-1].n += e.n
			continue
		}
		e.detail = ""
		out = append(out, e)
	}
	return out
}

// render writes events one per line, frames as Go-quoted text or hex.
func render(evs []event, binaryFrames bool) string {
	var b strings.Builder
	for _, e := range evs {
		switch {
		case !e.isFrame():
			fmt.Fprintf(&b, "reject %s %d", e.kind, e.n)
			if e.detail != "" {
				fmt.Fprintf(&b, " (%s)", e.detail)
			}
		case binaryFrames:
			b.WriteString("frame " + spacedHex([]byte(e.frame)))
		default:
			b.WriteString("frame " + strconv.Quote(e.frame))
		}
		b.WriteByte('\n')
	}
	return b.String()
}

func spacedHex(p []byte) string {
	h := strings.ToUpper(hex.EncodeToString(p))
	var b strings.Builder
	for i := 0; i < len(h); i += 2 {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(h[i : i+2])
	}
	return b.String()
}

// mustHex decodes spaced hex; it is for test literals.
func mustHex(t testing.TB, s string) []byte {
	t.Helper()
	return framingtest.Hex(t, s)
}

// checkChunking feeds segments whole, byte by byte and in a few chunk sizes
// and fails unless the merged events agree.
func checkChunking(t testing.TB, mk func() Framer, segments [][]byte) []event {
	t.Helper()
	whole := runChunks(t, mk(), segments, 0)
	want := render(merged(whole), true)
	for _, c := range []int{1, 2, 3, 5, 7, 64} {
		if got := render(merged(runChunks(t, mk(), segments, c)), true); got != want {
			t.Fatalf("chunks of %d disagree with a single Feed:\n%s\nwant:\n%s", c, got, want)
		}
	}
	return whole
}

// frames returns the frames among events.
func frames(evs []event) []string {
	var out []string
	for _, e := range evs {
		if e.isFrame() {
			out = append(out, e.frame)
		}
	}
	return out
}

// cat concatenates byte slices.
func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
