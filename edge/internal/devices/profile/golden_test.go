package profile

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/omnisync/omnisync/edge/internal/devices/framing"
	"github.com/omnisync/omnisync/edge/internal/devices/profile/decode"
)

var update = flag.Bool("update", false, "rewrite the expected section of testdata/*.golden")

// TestGolden replays device captures through a shipped profile, as the
// agent does (framer, then barcode parser or tag decoder), and compares
// the events with the expected ones. A golden file has three sections
// separated by "----" lines: `profile: NAME`; the capture (`hex ...`,
// `text "..."` Go-quoted, or `flush`, each one read); the events. Run with
// -update to rewrite the events.
func TestGolden(t *testing.T) {
	files, err := filepath.Glob("testdata/*.golden")
	if err != nil || len(files) == 0 {
		t.Fatalf("no golden files: %v", err)
	}
	for _, file := range files {
		t.Run(strings.TrimSuffix(filepath.Base(file), ".golden"), func(t *testing.T) {
			raw, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			parts := strings.SplitN(string(raw), "\n----\n", 3)
			if len(parts) != 3 {
				t.Fatalf("want 3 sections separated by ----, got %d", len(parts))
			}
			var name string
			for _, l := range strings.Split(parts[0], "\n") {
				if v, ok := strings.CutPrefix(strings.TrimSpace(l), "profile:"); ok {
					name = strings.TrimSpace(v)
				}
			}
			p := shipped(t, name)
			got := replay(t, p, parts[1])
			if *update {
				if err := os.WriteFile(file, []byte(parts[0]+"\n----\n"+parts[1]+"\n----\n"+got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			var want []string
			for _, l := range strings.Split(parts[2], "\n") {
				if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
					want = append(want, l)
				}
			}
			if w := strings.Join(want, "\n") + "\n"; got != w {
				t.Errorf("got:\n%s\nwant:\n%s", got, w)
			}
		})
	}
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
	for i, line := range strings.Split(capture, "\n") {
		line = strings.TrimSpace(line)
		switch {
		case line == "" || strings.HasPrefix(line, "#"):
		case line == "flush":
			f.Flush(emit, reject)
		case strings.HasPrefix(line, "hex "):
			f.Feed(unhex(t, strings.TrimPrefix(line, "hex ")), emit, reject)
		case strings.HasPrefix(line, "text "):
			s, err := strconv.Unquote(strings.TrimPrefix(line, "text "))
			if err != nil {
				t.Fatalf("capture line %d: %v", i+1, err)
			}
			f.Feed([]byte(s), emit, reject)
		default:
			t.Fatalf("capture line %d: want hex, text or flush: %q", i+1, line)
		}
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
