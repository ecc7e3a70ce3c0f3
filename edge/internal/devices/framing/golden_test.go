package framing

import (
	"strings"
	"testing"

	"github.com/omnisync/omnisync/edge/internal/devices/framing/framingtest"

	"github.com/spf13/viper"
)

// TestGolden runs every capture in testdata/*.golden. A golden file has
// three sections separated by "----" lines (Caddy's *.caddyfiletest
// layout):
//
//  1. the framing section of a profile, in YAML;
//  2. the capture, one item per line: `hex A0 13 ...`, `text "..."` (a
//     Go-quoted string) or `flush`; items are fed in one Feed each, and the
//     stream is flushed at the end;
//  3. what the framer reports: `frame ...` and `reject KIND N (detail)`.
//
// Lines starting with # are comments. Each capture is also fed one byte
// at a time and in other chunk sizes; the frames and the rejects (kind and
// total bytes) must not change. Run with -update to rewrite section 3.
func TestGolden(t *testing.T) {
	framingtest.Golden(t, "testdata/*.golden", func(t *testing.T, header, capture string) string {
		cfg := goldenConfig(t, header)
		if _, err := New(cfg); err != nil {
			t.Fatalf("config: %v", err)
		}
		mk := func() Framer { f, _ := New(cfg); return f }
		r := &recorder{t: t, f: mk()}
		var segments [][]byte // Flush-separated, for the chunking check
		var seg []byte
		for _, p := range framingtest.Capture(t, capture) {
			if p == nil {
				r.flush()
				segments, seg = append(segments, seg), nil
				continue
			}
			r.feed(p)
			seg = append(seg, p...)
		}
		r.flush()
		segments = append(segments, seg)
		checkChunking(t, mk, segments)
		return render(r.events, cfg.Type == TypeBinary)
	})
}

func goldenConfig(t *testing.T, yaml string) Config {
	t.Helper()
	v := viper.New()
	v.SetConfigType("yaml")
	if err := v.ReadConfig(strings.NewReader(yaml)); err != nil {
		t.Fatalf("config section: %v", err)
	}
	var c Config
	if err := v.UnmarshalExact(&c); err != nil {
		t.Fatalf("config section: %v", err)
	}
	return c
}
