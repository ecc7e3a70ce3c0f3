package epc

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"testing"
)

// corpusDir locates the shared test-vector corpus: $OMNI_CORPUS_DIR, else a
// "shared/corpus" directory found by walking up from the package directory
// (the corpus lives beside the repository root). Without it the corpus
// tests fail under CI and skip elsewhere.
func corpusDir(t testing.TB) string {
	t.Helper()
	if d := os.Getenv("OMNI_CORPUS_DIR"); d != "" {
		if _, err := os.Stat(d); err == nil {
			return d
		}
		t.Fatalf("OMNI_CORPUS_DIR=%q does not exist", d)
	}
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		c := filepath.Join(dir, "shared", "corpus")
		if _, err := os.Stat(filepath.Join(c, "README.md")); err == nil {
			return c
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			break
		}
		dir = parent
	}
	if os.Getenv("CI") != "" {
		t.Fatal("test-vector corpus not found (set OMNI_CORPUS_DIR)")
	}
	t.Skip("test-vector corpus not found; set OMNI_CORPUS_DIR to run corpus tests")
	return ""
}

type row map[string]any

func (r row) str(k string) string {
	s, _ := r[k].(string)
	return s
}

func (r row) obj(k string) row {
	m, _ := r[k].(map[string]any)
	return row(m)
}

func (r row) has(k string) bool {
	_, ok := r[k]
	return ok
}

func (r row) boolean(k string) bool {
	b, _ := r[k].(bool)
	return b
}

func loadRows(t *testing.T, rel string) []row {
	t.Helper()
	f, err := os.Open(filepath.Join(corpusDir(t), rel))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var rows []row
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	for sc.Scan() {
		var r row
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("%s: %v", rel, err)
		}
		rows = append(rows, r)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return rows
}

// errNotApplicable marks a row whose op (or linter) is outside this
// package's scope; such ops are listed, with reasons, in notApplicable.
var errNotApplicable = fmt.Errorf("not applicable")

// runCorpus feeds every row of a corpus file to check, which returns nil
// when our result agrees with the row's valid/expect fields. Rows listed in
// exceptions must disagree (the test fails if one starts agreeing, so the
// table cannot rot); every other row must agree.
func runCorpus(t *testing.T, rel string, exceptions map[string]string, check func(r row) error) {
	t.Helper()
	rows := loadRows(t, rel)
	pass, excepted, na := 0, 0, 0
	naOps := map[string]int{}
	seen := map[string]bool{}
	for _, r := range rows {
		id := r.str("id")
		seen[id] = true
		err := check(r)
		if err == errNotApplicable {
			na++
			naOps[r.str("op")+r.str("linter")+r.str("scheme_family")]++
			continue
		}
		if reason, ok := exceptions[id]; ok {
			excepted++
			if err == nil {
				t.Errorf("%s: row %s is in the exceptions table (%s) but now passes; remove it", rel, id, reason)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: row %s (%s %q): %v", rel, id, r.str("op"), r.str("input"), err)
			continue
		}
		pass++
	}
	for id := range exceptions {
		if !seen[id] {
			t.Errorf("%s: exception %s matches no row", rel, id)
		}
	}
	t.Logf("%s: %d/%d passed, %d deliberately treated differently", rel, pass, len(rows), excepted)
	if na > 0 {
		keys := make([]string, 0, len(naOps))
		for k := range naOps {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		t.Logf("%s: %d rows not applicable (documented ops): %v", rel, na, keys)
	}
}
