package corpustest

import (
	"bufio"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"
)

// TestCorpusComplete checks that every file the corpus README lists is in
// the repository with as many cases as the README says, so a truncated or
// missing file fails here rather than thinning the parsers' tests.
func TestCorpusComplete(t *testing.T) {
	dir := Dir(t)
	readme, err := os.Open(filepath.Join(dir, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	defer readme.Close()
	row := regexp.MustCompile("^\\| `([a-z0-9_/]+\\.jsonl)` \\| ([0-9]+) \\|")
	listed := 0
	sc := bufio.NewScanner(readme)
	for sc.Scan() {
		m := row.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		listed++
		want, _ := strconv.Atoi(m[2])
		if got := len(Load(t, m[1])); got != want {
			t.Errorf("%s: %d cases, the README lists %d", m[1], got, want)
		}
	}
	if listed < 7 {
		t.Fatalf("the corpus README lists %d files; expected the 7 GS1 and EPC files", listed)
	}
}

// TestDirMissing: without the corpus, finding it is an error (the tests
// fail), not a skip.
func TestDirMissing(t *testing.T) {
	t.Setenv("OMNI_CORPUS_DIR", t.TempDir())
	if _, err := find(); err == nil {
		t.Fatal("an empty OMNI_CORPUS_DIR was accepted")
	}
	t.Setenv("OMNI_CORPUS_DIR", "")
	t.Chdir(t.TempDir())
	if _, err := find(); err == nil {
		t.Fatal("found a corpus outside the repository")
	}
}
