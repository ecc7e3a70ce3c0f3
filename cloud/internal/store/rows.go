package store

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"fmt"
	"math"
	"strconv"
	"strings"
)

type execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// execRows runs the statement stmt builds around the derived table of r
// (named alias) once per chunk of r; nothing when r is empty. stmt may add
// parameters of its own to a.
func (s *Store) execRows(ctx context.Context, db execer, r *rowset, alias string, stmt func(a *args, from string) string) error {
	_, err := s.execRowsN(ctx, db, r, alias, stmt)
	return err
}

// execRowsN is execRows that also returns the number of rows affected.
func (s *Store) execRowsN(ctx context.Context, db execer, r *rowset, alias string, stmt func(a *args, from string) string) (int64, error) {
	var n int64
	err := s.eachChunk(ctx, db, r, alias, stmt, func(st *sql.Stmt, q string, a args) error {
		var res sql.Result
		var err error
		if st != nil {
			res, err = st.ExecContext(ctx, a...)
		} else {
			res, err = db.ExecContext(ctx, q, a...)
		}
		if err != nil {
			return err
		}
		m, err := res.RowsAffected()
		n += m
		return err
	})
	return n, err
}

// writePart is one statement of execAll: the statement stmt builds around
// the derived table of r (named alias), and what it writes (for errors).
type writePart struct {
	what  string
	r     *rowset
	alias string
	stmt  func(a *args, from string) string
}

// execAll runs the statements of parts whose row sets are not empty. On
// PostgreSQL they go as one statement, every one but the last in a WITH
// (one round trip where each would take one); on SQLite one after the
// other. The statements of one such statement share a snapshot and none
// sees what another writes, so parts must write rows no other part reads
// or writes (different tables, or disjoint keys).
func (s *Store) execAll(ctx context.Context, db execer, parts ...writePart) error {
	live := parts[:0:0]
	for _, p := range parts {
		if p.r.len() > 0 {
			live = append(live, p)
		}
	}
	if !s.d.pg() || len(live) < 2 {
		for _, p := range live {
			if err := s.execRows(ctx, db, p.r, p.alias, p.stmt); err != nil {
				return fmt.Errorf("%s: %w", p.what, err)
			}
		}
		return nil
	}
	var a args
	var b strings.Builder
	whats := make([]string, len(live))
	for i, p := range live {
		whats[i] = p.what
		q := p.stmt(&a, s.d.from(&a, p.r, p.alias))
		switch {
		case i == len(live)-1:
			b.WriteString(" ")
		case i == 0:
			b.WriteString("WITH w0 AS (")
		default:
			b.WriteString(", w" + strconv.Itoa(i) + " AS (")
		}
		b.WriteString(q)
		if i < len(live)-1 {
			b.WriteString(")")
		}
	}
	if _, err := db.ExecContext(ctx, b.String(), a...); err != nil {
		return fmt.Errorf("%s: %w", strings.Join(whats, ", "), err)
	}
	return nil
}

// execRowsConn is execRowsN on tx, a transaction on conn, for the row
// sets of tens of thousands of values a busy batch writes. On SQLite the
// chunks run on conn's driver connection directly, with one argument
// slice reused for every chunk: database/sql would convert every value
// of every chunk into a slice of its own, which cost the hub more than
// binding them. Values are converted as database/sql converts them (the
// driver checks none itself), so the statements see the same arguments.
func (s *Store) execRowsConn(ctx context.Context, conn *sql.Conn, tx *sql.Tx, r *rowset, alias string, stmt func(a *args, from string) string) (int64, error) {
	if s.d.pg() || r.len() == 0 {
		return s.execRowsN(ctx, tx, r, alias, stmt)
	}
	var n int64
	err := conn.Raw(func(dc any) error {
		pc, ok := dc.(driver.ConnPrepareContext)
		if !ok {
			return fmt.Errorf("driver connection %T cannot prepare", dc)
		}
		type prepared struct {
			st   driver.StmtExecContext
			perm []int
		}
		stmts := map[int]prepared{}
		defer func() {
			for _, p := range stmts {
				p.st.(driver.Stmt).Close()
			}
		}()
		var a args
		var named []driver.NamedValue
		for _, part := range s.d.chunks(r) {
			a = a[:0]
			p, ok := stmts[part.n]
			if ok {
				sqliteArgs(&a, part)
				stmt(&a, "")
			} else {
				q, perm := positional(stmt(&a, s.d.from(&a, part, alias)))
				st, err := pc.PrepareContext(ctx, q)
				if err != nil {
					return err
				}
				if p.st, ok = st.(driver.StmtExecContext); !ok {
					st.Close()
					return fmt.Errorf("driver statement %T cannot execute with a context", st)
				}
				p.perm = perm
				stmts[part.n] = p
			}
			named = named[:0]
			for k, j := range p.perm {
				v := a[j]
				if !driver.IsValue(v) {
					var err error
					if v, err = driver.DefaultParameterConverter.ConvertValue(v); err != nil {
						return fmt.Errorf("argument %d: %w", k+1, err)
					}
				}
				named = append(named, driver.NamedValue{Ordinal: k + 1, Value: v})
			}
			res, err := p.st.ExecContext(ctx, named)
			if err != nil {
				return err
			}
			m, err := res.RowsAffected()
			if err != nil {
				return err
			}
			n += m
		}
		return nil
	})
	return n, err
}

// queryRows is execRows for statements returning rows: scan is called on
// each result row of each chunk.
func (s *Store) queryRows(ctx context.Context, db querier, r *rowset, alias string, stmt func(a *args, from string) string, scan func(*sql.Rows) error) error {
	return s.eachChunk(ctx, db, r, alias, stmt, func(st *sql.Stmt, q string, a args) error {
		var rows *sql.Rows
		var err error
		if st != nil {
			rows, err = st.QueryContext(ctx, a...)
		} else {
			rows, err = db.(querier).QueryContext(ctx, q, a...)
		}
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			if err := scan(rows); err != nil {
				return err
			}
		}
		return rows.Err()
	})
}

// preparer is a *sql.DB, *sql.Conn or *sql.Tx.
type preparer interface {
	PrepareContext(ctx context.Context, query string) (*sql.Stmt, error)
}

// eachChunk renders the statement for each chunk of r and runs it. When
// r takes several chunks and db can prepare, chunks of the same size
// share one prepared statement (on SQLite, where a statement's text holds
// a placeholder per value and parsing it again for each chunk would cost
// as much as running it).
func (s *Store) eachChunk(ctx context.Context, db any, r *rowset, alias string, stmt func(a *args, from string) string, exec func(st *sql.Stmt, q string, a args) error) error {
	if r.len() == 0 {
		return nil
	}
	parts := s.d.chunks(r)
	prep, canPrepare := db.(preparer)
	type prepared struct {
		st   *sql.Stmt
		perm []int
	}
	stmts := map[int]prepared{}
	defer func() {
		for _, p := range stmts {
			p.st.Close()
		}
	}()
	// The arguments' slices are reused from chunk to chunk: the driver
	// does not keep them past the call.
	var a, ordered args
	for _, part := range parts {
		a = a[:0]
		var p prepared
		var q string
		if cached, ok := stmts[part.n]; ok && !s.d.pg() {
			// A statement prepared for a chunk of this size: only its
			// arguments are needed, the rowset's first, then the
			// statement's own (its text is dropped).
			p = cached
			sqliteArgs(&a, part)
			stmt(&a, "")
		} else {
			from := s.d.from(&a, part, alias)
			q = stmt(&a, from)
			if !s.d.pg() {
				q, p.perm = positional(q)
				if canPrepare && len(parts) > 1 {
					var err error
					if p.st, err = prep.PrepareContext(ctx, q); err != nil {
						return err
					}
					stmts[part.n] = p
				}
			}
		}
		run := a
		if p.perm != nil {
			ordered = ordered[:0]
			for _, j := range p.perm {
				ordered = append(ordered, a[j])
			}
			run = ordered
		}
		if err := exec(p.st, q, run); err != nil {
			return err
		}
	}
	return nil
}

// positional rewrites q's numbered placeholders ($1, $2, ...) as
// anonymous ones (?) and returns, for each placeholder in the order they
// appear, the index of its argument. Anonymous placeholders already in q
// (a SQLite row set renders its values so, as the first arguments, in
// order) take the arguments from the first on. SQLite binds a numbered
// parameter by looking its name up in a list it scans from the start, so a
// statement with thousands of them spends its time binding; anonymous ones
// are bound by position. The store's SQL has no '$' or '?' other than
// placeholders.
// appendScanned is a queryRows scan of a one-column result: each row's
// value is appended to out.
func appendScanned[T any](out *[]T) func(*sql.Rows) error {
	return func(rows *sql.Rows) error {
		var v T
		if err := rows.Scan(&v); err != nil {
			return err
		}
		*out = append(*out, v)
		return nil
	}
}

func positional(q string) (string, []int) {
	var b strings.Builder
	b.Grow(len(q))
	var perm []int
	next := 0
	for i := 0; i < len(q); i++ {
		c := q[i]
		switch {
		case c == '?':
			perm = append(perm, next)
			next++
		case c == '$' && i+1 < len(q) && q[i+1] >= '0' && q[i+1] <= '9':
			n := 0
			for i+1 < len(q) && q[i+1] >= '0' && q[i+1] <= '9' {
				i++
				n = n*10 + int(q[i]-'0')
			}
			perm = append(perm, n-1)
			c = '?'
		}
		b.WriteByte(c)
	}
	return b.String(), perm
}

func (s *Store) insertDeadLetters(ctx context.Context, db execer, dls []DeadLetter) error {
	rs := newRowset(text("event_id"), text("store"), text("device"), integer("epoch"), integer("seq"), text("kind"),
		text("subject"), text("reason"), blob("payload"), blob("payload_enc"), integer("at_ms"))
	for _, d := range dls {
		plain, enc := s.sealPayload(d.Kind, d.Payload)
		rs.add(clean(d.EventID), clean(d.Store), clean(d.Device), clampInt(d.Epoch), clampInt(d.Seq), clean(d.Kind),
			clean(d.Subject), clean(d.Reason), plain, enc, d.At.UnixMilli())
	}
	err := s.execRows(ctx, db, rs, "k", func(a *args, k string) string {
		return `INSERT INTO dead_letters (event_id, store, device, epoch, seq, kind, subject, reason, payload, payload_enc, at_ms)
SELECT event_id, store, device, epoch, seq, kind, subject, reason, payload, payload_enc, at_ms FROM ` + k
	})
	if err != nil {
		return fmt.Errorf("store: insert dead letters: %w", err)
	}
	return nil
}

// clean makes s storable as text on both databases: valid UTF-8, no NUL.
func clean(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	return strings.ReplaceAll(s, "\x00", "\uFFFD")
}

func nonNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

func clampInt(v uint64) int64 {
	if v > math.MaxInt64 {
		return math.MaxInt64
	}
	return int64(v)
}

func b2i(b bool) int64 {
	if b {
		return 1
	}
	return 0
}
