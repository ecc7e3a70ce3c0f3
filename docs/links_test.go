// Package docs holds the product's design (DESIGN.md) and reference pages;
// its test checks that the repository's Markdown links only to files that
// exist, so a fresh clone's documentation has no dead ends.
package docs

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// link matches a Markdown inline link or image target: [text](target) or
// [text](target "title").
var link = regexp.MustCompile(`\]\(([^)\s]+)(?:\s+"[^"]*")?\)`)

// TestRelativeLinks checks every relative link in README.md, docs/*.md and
// the deploy READMEs: the file or directory it names must be in the
// repository.
func TestRelativeLinks(t *testing.T) {
	root := ".."
	files := []string{filepath.Join(root, "README.md")}
	for _, pat := range []string{"docs/*.md", "deploy/*/README.md", "deploy/README.md", "firmware-configs/*.md", "shared/events/*.md"} {
		m, err := filepath.Glob(filepath.Join(root, pat))
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, m...)
	}
	checked := 0
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range link.FindAllStringSubmatch(stripCode(string(b)), -1) {
			target := m[1]
			if strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:") || strings.HasPrefix(target, "#") {
				continue
			}
			target, _, _ = strings.Cut(target, "#")
			path := filepath.Join(filepath.Dir(f), filepath.FromSlash(target))
			if _, err := os.Stat(path); err != nil {
				rel, _ := filepath.Rel(root, f)
				t.Errorf("%s links to %s, which is not in the repository", rel, m[1])
			}
			checked++
		}
	}
	if checked == 0 {
		t.Fatal("no relative links found; is the pattern still right?")
	}
	t.Logf("%d relative links in %d files", checked, len(files))
}

// stripCode drops fenced code blocks and inline code, whose brackets are
// not links.
func stripCode(s string) string {
	var b strings.Builder
	fenced := false
	for _, line := range strings.Split(s, "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "```") {
			fenced = !fenced
			continue
		}
		if fenced {
			continue
		}
		parts := strings.Split(line, "`")
		for i := 0; i < len(parts); i += 2 {
			b.WriteString(parts[i])
		}
		b.WriteByte('\n')
	}
	return b.String()
}
