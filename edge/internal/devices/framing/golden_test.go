package framing

import (
	"flag"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/spf13/viper"
)

var update = flag.Bool("update", false, "rewrite the expected section of testdata/*.golden")

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
			cfg := goldenConfig(t, parts[0])
			if _, err := New(cfg); err != nil {
				t.Fatalf("config: %v", err)
			}
			mk := func() Framer { f, _ := New(cfg); return f }
			var feeds [][]byte // one Feed each, nil = Flush
			for i, line := range strings.Split(parts[1], "\n") {
				line = strings.TrimSpace(line)
				switch {
				case line == "" || strings.HasPrefix(line, "#"):
				case line == "flush":
					feeds = append(feeds, nil)
				case strings.HasPrefix(line, "hex "):
					feeds = append(feeds, mustHex(t, strings.TrimPrefix(line, "hex ")))
				case strings.HasPrefix(line, "text "):
					s, err := strconv.Unquote(strings.TrimPrefix(line, "text "))
					if err != nil {
						t.Fatalf("input line %d: %v", i+1, err)
					}
					feeds = append(feeds, []byte(s))
				default:
					t.Fatalf("input line %d: want hex, text or flush: %q", i+1, line)
				}
			}
			r := &recorder{t: t, f: mk()}
			var segments [][]byte // Flush-separated, for the chunking check
			var seg []byte
			for _, p := range feeds {
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
			got := render(r.events, cfg.Type == TypeBinary)

			var want []string
			for _, l := range strings.Split(parts[2], "\n") {
				if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
					want = append(want, l)
				}
			}
			if *update {
				out := parts[0] + "\n----\n" + parts[1] + "\n----\n" + got
				if err := os.WriteFile(file, []byte(out), 0o644); err != nil {
					t.Fatal(err)
				}
			} else if w := strings.Join(want, "\n") + "\n"; got != w {
				t.Errorf("got:\n%s\nwant:\n%s", got, w)
			}
			checkChunking(t, mk, segments)
		})
	}
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
