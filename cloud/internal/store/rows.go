package store

import (
	"context"
	"database/sql"
	"fmt"
	"math"
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
func (s *Store) eachChunk(ctx context.Context, db any, r *rowset, alias string, stmt func(a *args, from string) string, run func(st *sql.Stmt, q string, a args) error) error {
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
	for _, part := range parts {
		var a args
		from := s.d.from(&a, part, alias)
		q := stmt(&a, from)
		var p prepared
		if s.d.pg() {
			p.st = nil
		} else if cached, ok := stmts[part.n]; ok {
			p = cached
		} else {
			q, p.perm = positional(q)
			if canPrepare && len(parts) > 1 {
				var err error
				if p.st, err = prep.PrepareContext(ctx, q); err != nil {
					return err
				}
				stmts[part.n] = p
			}
		}
		if p.perm != nil {
			ordered := make(args, len(p.perm))
			for i, j := range p.perm {
				ordered[i] = a[j]
			}
			a = ordered
		}
		if err := run(p.st, q, a); err != nil {
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
		text("subject"), text("reason"), blob("payload"), integer("at_ms"))
	for _, d := range dls {
		rs.add(clean(d.EventID), clean(d.Store), clean(d.Device), clampInt(d.Epoch), clampInt(d.Seq), clean(d.Kind),
			clean(d.Subject), clean(d.Reason), nonNil(d.Payload), d.At.UnixMilli())
	}
	err := s.execRows(ctx, db, rs, "k", func(a *args, k string) string {
		return `INSERT INTO dead_letters (event_id, store, device, epoch, seq, kind, subject, reason, payload, at_ms)
SELECT event_id, store, device, epoch, seq, kind, subject, reason, payload, at_ms FROM ` + k
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
