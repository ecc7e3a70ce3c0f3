// Package corpustest reads the public test-vector corpus (GS1 barcodes,
// Digital Link URIs, scanner payloads, EPC tags) that lives beside the
// repository, and runs table tests over it with an explicit exceptions
// table. Only tests import it.
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

// corpusDir locates the shared test-vector corpus: $OMNI_CORPUS_DIR, else a
// "shared/corpus" directory found by walking up from the package directory
// (the corpus lives beside the repository root). Without it the corpus
// tests fail under CI and skip elsewhere.
func Dir(t testing.TB) string {
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
