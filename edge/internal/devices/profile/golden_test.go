package profile

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/omnisync/omnisync/edge/internal/devices/framing/framingtest"

	"github.com/omnisync/omnisync/edge/internal/devices/framing"
	"github.com/omnisync/omnisync/edge/internal/devices/profile/decode"
)

// TestGolden replays device captures through a shipped profile, as the
// agent does (framer, then barcode parser or tag decoder), and compares
// the events with the expected ones. A golden file has three sections
// separated by "----" lines: `profile: NAME`; the capture (`hex ...`,
// `text "..."` Go-quoted, or `flush`, each one read); the events. Run with
// -update to rewrite the events.
func TestGolden(t *testing.T) {
	framingtest.Golden(t, "testdata/*.golden", func(t *testing.T, header, capture string) string {
		var name string
		for _, l := range strings.Split(header, "\n") {
			if v, ok := strings.CutPrefix(strings.TrimSpace(l), "profile:"); ok {
				name = strings.TrimSpace(v)
			}
		}
		return replay(t, shipped(t, name), capture)
	})
}

// replay runs a capture and renders one line per event.
func replay(t *testing.T, p *Profile, capture string) string {
	f, err := p.NewFramer()
	if err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	emit := func(payload []byte) {
		if p.Meaning == MeaningBarcode {
			sc, err := p.ParseBarcode(payload)
			if err != nil {
				fmt.Fprintf(&out, "bad-scan %q: %v\n", payload, err)
				return
			}
			fmt.Fprintf(&out, "scan %s raw=%q gtin=%s ais=%s", sc.Symbology, sc.Raw, dash(sc.GTIN), dash(sc.AIs.Bracketed()))
			if sc.DigitalLink != nil {
				out.WriteString(" digital-link")
			}
			if sc.Guessed {
				out.WriteString(" guessed")
			}
			out.WriteByte('\n')
			return
		}
		reads, err := p.DecodeTags(payload, nil)
		for _, r := range reads {
			fmt.Fprintf(&out, "tag epc=%s antenna=%d rssi=%g\n", r.EPC, r.Antenna, r.RSSI)
		}
		switch {
		case errors.Is(err, decode.ErrMalformed):
			fmt.Fprintf(&out, "malformed: %v\n", err)
		case errors.Is(err, decode.ErrReaderStatus):
			fmt.Fprintf(&out, "status: %v\n", err)
		case errors.Is(err, decode.ErrNotTagReport):
			fmt.Fprintf(&out, "ignored: %v\n", err)
		case err != nil:
			t.Fatalf("decode: %v", err)
		case len(reads) == 0:
			out.WriteString("no tag\n")
		}
	}
	reject := func(r framing.Reject, n int) { fmt.Fprintf(&out, "reject %s %d (%s)\n", r.Kind, n, r.Detail) }
	for _, read := range framingtest.Capture(t, capture) {
		if read == nil {
			f.Flush(emit, reject)
			continue
		}
		f.Feed(read, emit, reject)
	}
	f.Flush(emit, reject)
	return out.String()
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
