// Package corpustest reads the public test-vector corpus (GS1 barcodes,
// Digital Link URIs, scanner payloads, EPC tags) committed in this
// package's testdata directory (testdata/README.md names every source and
// its licence), and runs table tests over it with an explicit exceptions
// table. Only tests import it.
//
// The corpus is part of the repository: a test that cannot find it fails,
// it never skips, so a clone that lost the files cannot pass for green.
package corpustest

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"testing"
)

// modulePath is this repository's module, which marks its root go.mod.
const modulePath = "github.com/omnisync/omnisync"

// relDir is where the corpus lives, from the repository's root.
const relDir = "shared/testkit/corpustest/testdata"

// Dir locates the test-vector corpus: $OMNI_CORPUS_DIR when set (to try
// a newer corpus), else the repository's own copy, found by walking up from
// the test's directory to the module root. Either way the directory must
// hold the corpus's README.md (its sources and licences); if not, the test
// fails.
func Dir(t testing.TB) string {
	t.Helper()
	d, err := find()
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func find() (string, error) {
	if d := os.Getenv("OMNI_CORPUS_DIR"); d != "" {
		if _, err := os.Stat(filepath.Join(d, "README.md")); err != nil {
			return "", fmt.Errorf("corpustest: OMNI_CORPUS_DIR=%q holds no corpus: %w", d, err)
		}
		return d, nil
	}
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("corpustest: %w", err)
	}
	for {
		if isModuleRoot(dir) {
			c := filepath.Join(dir, filepath.FromSlash(relDir))
			if _, err := os.Stat(filepath.Join(c, "README.md")); err != nil {
				return "", fmt.Errorf("corpustest: the test-vector corpus is missing from the repository (%s): %w", relDir, err)
			}
			return c, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("corpustest: no %s go.mod above the test's directory, so no corpus", modulePath)
		}
		dir = parent
	}
}

// isModuleRoot reports whether dir holds this repository's go.mod.
func isModuleRoot(dir string) bool {
	f, err := os.Open(filepath.Join(dir, "go.mod"))
	if err != nil {
		return false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var mod string
		if _, err := fmt.Sscanf(sc.Text(), "module %s", &mod); err == nil {
			return mod == modulePath
		}
	}
	return false
}

// Row is one JSON Lines case.
type Row map[string]any

// Str returns field k as a string ("" if absent).
func (r Row) Str(k string) string {
	s, _ := r[k].(string)
	return s
}

// Obj returns field k as an object.
func (r Row) Obj(k string) Row {
	m, _ := r[k].(map[string]any)
	return Row(m)
}

// Has reports whether field k is present.
func (r Row) Has(k string) bool {
	_, ok := r[k]
	return ok
}

// Bool returns field k as a bool.
func (r Row) Bool(k string) bool {
	b, _ := r[k].(bool)
	return b
}

// Load reads every case of the corpus file rel.
func Load(t testing.TB, rel string) []Row {
	t.Helper()
	f, err := os.Open(filepath.Join(Dir(t), rel))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var rows []Row
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	for sc.Scan() {
		var r Row
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

// ErrNotApplicable marks a row whose op (or linter) is outside this
// package's scope; such ops are listed, with reasons, in notApplicable.
var ErrNotApplicable = fmt.Errorf("not applicable")

// Run feeds every row of a corpus file to check, which returns nil
// when our result agrees with the row's valid/expect fields. Rows listed in
// exceptions must disagree (the test fails if one starts agreeing, so the
// table cannot rot); every other row must agree.
func Run(t *testing.T, rel string, exceptions map[string]string, check func(r Row) error) {
	t.Helper()
	rows := Load(t, rel)
	pass, excepted, na := 0, 0, 0
	naOps := map[string]int{}
	seen := map[string]bool{}
	for _, r := range rows {
		id := r.Str("id")
		seen[id] = true
		err := check(r)
		if err == ErrNotApplicable {
			na++
			naOps[r.Str("op")+r.Str("linter")+r.Str("scheme_family")]++
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
			t.Errorf("%s: row %s (%s %q): %v", rel, id, r.Str("op"), r.Str("input"), err)
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
