package profile

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/omnisync/omnisync/edge/internal/devices/framing"
)

// shippedDir is the repository's firmware-configs/, found from the
// package directory.
func shippedDir(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return filepath.Join(dir, "firmware-configs")
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("repository root (go.mod) not found")
		}
		dir = parent
	}
}

// shipped loads one shipped profile.
func shipped(t testing.TB, name string) *Profile {
	t.Helper()
	p, err := Load(shippedDir(t), name)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// writeProfile writes body as <dir>/<sub>/<name>.yaml and returns the path.
func writeProfile(t testing.TB, dir, sub, name, body string) string {
	t.Helper()
	d := filepath.Join(dir, sub)
	if err := os.MkdirAll(d, 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(d, name+Ext)
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// frameAll feeds wire to a fresh framer of p and returns the payloads and
// the number of rejected bytes.
func frameAll(t testing.TB, p *Profile, wire []byte) (payloads [][]byte, rejected int) {
	t.Helper()
	f, err := p.NewFramer()
	if err != nil {
		t.Fatal(err)
	}
	emit := func(b []byte) { payloads = append(payloads, append([]byte(nil), b...)) }
	reject := func(_ framing.Reject, n int) { rejected += n }
	f.Feed(wire, emit, reject)
	f.Flush(emit, reject)
	return payloads, rejected
}

// lines joins lines with newlines: YAML test fixtures.
func lines(l ...string) string { return strings.Join(l, "\n") + "\n" }
