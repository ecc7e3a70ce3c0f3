package store

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"
)

// identKeyGuard watches the statements a store sends to PostgreSQL for
// a digest of cust_identifiers compared as bare text: the table is
// indexed by digest_key(digest) only, so such a comparison is right but
// reads the whole table (at millions of identifiers, seconds per
// statement), which no functional test would notice.
type identKeyGuard struct {
	mu  sync.Mutex
	bad []string
}

func (g *identKeyGuard) TraceQueryStart(ctx context.Context, _ *pgx.Conn, d pgx.TraceQueryStartData) context.Context {
	if bareIdentDigest(d.SQL) && !migrationStatements()[d.SQL] {
		g.mu.Lock()
		g.bad = append(g.bad, d.SQL)
		g.mu.Unlock()
	}
	return ctx
}

func (g *identKeyGuard) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}

// guardIdentKeys has s's statements watched by an identKeyGuard, and
// fails t at its end if one compared a bare digest.
func guardIdentKeys(t testing.TB, s *Store) *Store {
	t.Helper()
	g := &identKeyGuard{}
	retrace(t, s, g)
	t.Cleanup(func() {
		g.mu.Lock()
		defer g.mu.Unlock()
		for _, q := range g.bad {
			t.Errorf("a statement compares a digest of cust_identifiers as text, past its index (use dialect.identKey):\n%s", q)
		}
	})
	return s
}

// migrationStatements are the statements of the migrations on
// PostgreSQL: those before digest_key compare digests as text, rightly
// (the text was the key then), when a test migrates a schema it made old.
var migrationStatements = sync.OnceValue(func() map[string]bool {
	out := map[string]bool{}
	for _, m := range migrations {
		for _, stmt := range splitStatements(postgres.ddl(m)) {
			out[stmt] = true
		}
	}
	return out
})

var digestCompared = regexp.MustCompile(`(?i)\b[\w.]*digest\s*(=|<|>|\bIN\b)|(=|<|>)\s*[\w.]*digest\b`)

// bareIdentDigest reports whether sql, naming cust_identifiers, compares
// a digest outside digest_key().
func bareIdentDigest(sql string) bool {
	if !strings.Contains(sql, "cust_identifiers") {
		return false
	}
	return digestCompared.MatchString(stripCalls(sql, "digest_key("))
}

// stripCalls removes every call of fn (its name and open parenthesis)
// with its arguments from sql.
func stripCalls(sql, fn string) string {
	for {
		i := strings.Index(sql, fn)
		if i < 0 {
			return sql
		}
		depth, j := 1, i+len(fn)
		for ; j < len(sql) && depth > 0; j++ {
			switch sql[j] {
			case '(':
				depth++
			case ')':
				depth--
			}
		}
		sql = sql[:i] + "k" + sql[j:]
	}
}

func TestBareIdentDigest(t *testing.T) {
	for _, c := range []struct {
		sql  string
		bare bool
	}{
		{`SELECT customer FROM cust_identifiers WHERE digest = $1`, true},
		{`SELECT customer FROM cust_identifiers WHERE digest_key(digest) = digest_key($1)`, false},
		{`SELECT i.customer FROM cust_masters m JOIN cust_identifiers i ON i.digest = m.anchor`, true},
		{`SELECT i.customer FROM cust_masters m JOIN cust_identifiers i ON digest_key(i.digest) = digest_key(m.anchor)`, false},
		{`DELETE FROM cust_identifiers WHERE digest IN (SELECT k FROM r)`, true},
		{`DELETE FROM cust_identifiers WHERE digest_key(digest) IN (SELECT digest_key(k) FROM r)`, false},
		{`SELECT digest FROM cust_identifiers WHERE digest > $1 ORDER BY digest`, true},
		{`UPDATE cust_identifiers SET customer = r.customer FROM r WHERE cust_identifiers.digest = r.digest`, true},
		{`SELECT m.digest, m.cluster FROM cust_identifiers m JOIN r ON m.cluster = r.cluster`, false},
		{`SELECT t.digest FROM cust_tombstones t JOIN r ON t.digest = r.digest`, false},
	} {
		if got := bareIdentDigest(c.sql); got != c.bare {
			t.Errorf("bareIdentDigest(%q) = %v", c.sql, got)
		}
	}
}

// TestDigestKey checks digest_key on PostgreSQL: a keyring digest takes
// its short form, anything else is kept whole, and no two texts share a
// key (the unique index on it is the table's key).
func TestDigestKey(t *testing.T) {
	s := openPostgres(t)
	hex64 := strings.Repeat("0123456789abcdef", 4)
	texts := []string{"v1:" + hex64, "v1:" + strings.Repeat("f", 64), "v1:ab", "", "v2:" + hex64, `a\b`, `a\\b`, "\x01" + hex64[:32], "v1:" + hex64 + "0"}
	keys := map[string]string{}
	for _, x := range texts {
		var k []byte
		if err := s.w.QueryRowContext(context.Background(), `SELECT digest_key($1)`, x).Scan(&k); err != nil {
			t.Fatalf("digest_key(%q): %v", x, err)
		}
		if prev, ok := keys[string(k)]; ok {
			t.Errorf("digest_key(%q) = digest_key(%q) = %x", x, prev, k)
		}
		keys[string(k)] = x
		if x == texts[0] && (len(k) != 33 || k[0] != 1 || fmt.Sprintf("%x", k[1:]) != hex64) {
			t.Errorf("digest_key(%q) = %x, want 01%s", x, k, hex64)
		}
		if x != texts[0] && x != texts[1] && (len(k) != len(x)+1 || k[0] != 0 || string(k[1:]) != x) {
			t.Errorf("digest_key(%q) = %x, want 00 and the text", x, k)
		}
	}
}
