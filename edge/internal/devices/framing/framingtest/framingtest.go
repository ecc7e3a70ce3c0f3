// Package framingtest holds what the device-layer tests share: golden files
// of device captures (Caddy's *.caddyfiletest layout) and the capture
// notation they use. Only tests import it.
//
// A golden file has three sections separated by "----" lines: a header
// (what to run: a framing config, a profile name), the capture, and the
// expected output. A capture has one item per line: `hex A0 13 ...`,
// `text "..."` (a Go-quoted string) or `flush`; lines starting with # are
// comments.
package framingtest

import (
	"encoding/hex"
	"flag"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the expected section of testdata/*.golden")

// Golden runs fn on every file matching pattern, as a subtest named after
// the file. fn gets the header and capture sections and returns the output;
// it must equal the third section (blank and # lines ignored), or replace
// it when the test runs with -update.
func Golden(t *testing.T, pattern string, fn func(t *testing.T, header, capture string) string) {
	t.Helper()
	files, err := filepath.Glob(pattern)
	if err != nil || len(files) == 0 {
		t.Fatalf("no golden files match %s: %v", pattern, err)
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
			got := fn(t, parts[0], parts[1])
			if *update {
				if err := os.WriteFile(file, []byte(parts[0]+"\n----\n"+parts[1]+"\n----\n"+got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			if want := Lines(parts[2]); got != want {
				t.Errorf("got:\n%s\nwant:\n%s", got, want)
			}
		})
	}
}

// Lines returns section's non-blank, non-comment lines, trimmed, each
// ended by a newline.
func Lines(section string) string {
	var want []string
	for _, l := range strings.Split(section, "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
			want = append(want, l)
		}
	}
	return strings.Join(want, "\n") + "\n"
}

// Capture parses a capture section into reads: each item's bytes, with nil
// standing for a flush.
func Capture(t testing.TB, section string) [][]byte {
	t.Helper()
	var reads [][]byte
	for i, line := range strings.Split(section, "\n") {
		line = strings.TrimSpace(line)
		switch {
		case line == "" || strings.HasPrefix(line, "#"):
		case line == "flush":
			reads = append(reads, nil)
		case strings.HasPrefix(line, "hex "):
			reads = append(reads, Hex(t, strings.TrimPrefix(line, "hex ")))
		case strings.HasPrefix(line, "text "):
			s, err := strconv.Unquote(strings.TrimPrefix(line, "text "))
			if err != nil {
				t.Fatalf("capture line %d: %v", i+1, err)
			}
			reads = append(reads, []byte(s))
		default:
			t.Fatalf("capture line %d: want hex, text or flush: %q", i+1, line)
		}
	}
	return reads
}

// Hex decodes hex digits, spaces allowed ("A0 13 01").
func Hex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatalf("bad hex %q: %v", s, err)
	}
	return b
}
