package store

import (
	"context"
	"math/rand"
	"slices"
	"strings"
	"testing"

	"github.com/omnisync/omnisync/shared/ids"
)

// Ensure that ledger keys order event ids as their lowercase text does,
// read back to the canonical id, and refuse what is not a UUID.
func TestEventIDKey(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewSource(1))
	var idsList []string
	for range 500 {
		var b [16]byte
		rng.Read(b[:])
		for j := range b {
			if rng.Intn(4) == 0 {
				b[j] = []byte{0, 0xff, 0x80, 0x7f}[rng.Intn(4)]
			}
		}
		s := strings.ToLower(uuidText(b))
		idsList = append(idsList, s)
	}
	idsList = append(idsList, "00000000-0000-0000-0000-000000000000", "ffffffff-ffff-ffff-ffff-ffffffffffff", "80000000-0000-0000-8000-000000000000")
	type key struct{ hi, lo int64 }
	for _, a := range idsList {
		hi, lo, err := eventIDKey(a)
		if err != nil {
			t.Fatal(err)
		}
		if back := eventIDString(hi, lo); back != a {
			t.Fatalf("%s read back as %s", a, back)
		}
		if uhi, ulo, _ := eventIDKey(strings.ToUpper(a)); uhi != hi || ulo != lo {
			t.Fatalf("upper case %s keyed differently", a)
		}
	}
	sorted := slices.Clone(idsList)
	slices.Sort(sorted)
	byKey := slices.Clone(idsList)
	slices.SortFunc(byKey, func(a, b string) int {
		ah, al, _ := eventIDKey(a)
		bh, bl, _ := eventIDKey(b)
		if ah != bh {
			if ah < bh {
				return -1
			}
			return 1
		}
		if al < bl {
			return -1
		} else if al > bl {
			return 1
		}
		return 0
	})
	if !slices.Equal(sorted, byKey) {
		t.Fatal("keys do not order ids as text does")
	}
	for _, bad := range []string{"", "x", "0000000-0000-0000-0000-000000000000", "00000000-0000-0000-0000-0000000000000", "g0000000-0000-0000-0000-000000000000"} {
		if _, _, err := eventIDKey(bad); err == nil {
			t.Fatalf("%q keyed", bad)
		}
	}
	if _, _, err := eventIDKey(ids.NewEventID(testNow)); err != nil {
		t.Fatal(err)
	}
}

func uuidText(b [16]byte) string {
	const hexd = "0123456789abcdef"
	var out []byte
	for i, x := range b {
		if i == 4 || i == 6 || i == 8 || i == 10 {
			out = append(out, '-')
		}
		out = append(out, hexd[x>>4], hexd[x&15])
	}
	return string(out)
}

// Ensure that the migration's SQL computes the same keys as Go, on both
// databases.
func TestEventIDKeySQL(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, s *Store) {
		for _, id := range []string{"00000000-0000-0000-0000-000000000000", "ffffffff-ffff-ffff-ffff-ffffffffffff",
			"0193a5c2-7e4f-7abc-8def-0123456789AB", "80000000-0000-0000-7fff-ffffffffffff"} {
			var hi, lo int64
			q := s.d.ddl("SELECT " + eventIDKeySQL("$1", 0) + ", " + eventIDKeySQL("$1", 1))
			if s.d.pg() {
				q = strings.ReplaceAll(q, "$1", "CAST($1 AS TEXT)")
			}
			if err := s.r.QueryRowContext(context.Background(), q, id).Scan(&hi, &lo); err != nil {
				t.Fatal(err)
			}
			whi, wlo, _ := eventIDKey(id)
			if hi != whi || lo != wlo {
				t.Fatalf("%s: SQL %d %d, Go %d %d", id, hi, lo, whi, wlo)
			}
		}
	})
}
