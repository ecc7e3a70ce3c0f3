package store

import (
	"bytes"
	"cmp"
	"context"
	"database/sql"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/omnisync/omnisync/cloud/internal/inventory"
	"github.com/omnisync/omnisync/shared/events"
)

// ledgerApplier records every stock line (sales, returns, receipts,
// adjustments, transfers, counts, fulfilments) in the stock ledger, the
// sales history, once per event line whatever origin carried it, and
// hands the lines that were new to it to the stock applier.
type ledgerApplier struct{}

func (ledgerApplier) name() string { return "ledger" }

// ledgerRead is an event's lines and its id as the ledger keys it.
type ledgerRead struct {
	moves  []inventory.Move
	hi, lo int64
}

func (ledgerApplier) read(s *Store, env *events.Envelope) (any, error) {
	if !events.IsStockDelta(env.Kind) && env.Kind != events.KindCount && env.Kind != events.KindFulfil {
		return nil, nil
	}
	eff, err := s.rules.Effect(*env)
	if err != nil {
		return nil, err
	}
	hi, lo, err := eventIDKey(env.ID)
	if err != nil {
		return nil, err
	}
	return &ledgerRead{moves: eff.Moves, hi: hi, lo: lo}, nil
}

func (ledgerApplier) apply(ctx context.Context, t *applyTx, reads []itemRead) error {
	// The batch's ledger lines, and the distinct positions they touch.
	n := 0
	for _, r := range reads {
		n += len(r.v.(*ledgerRead).moves)
	}
	// moves[r] are the moves of reads[r]: lines point into them rather
	// than into a copy of them all.
	moves := make([][]inventory.Move, len(reads))
	lines := make([]ledgerLine, 0, n)
	keyIdx := make(map[inventory.Key]int32, min(n, 1<<16))
	keys := make([]inventory.Key, 0, min(n, 1<<16))
	// first[r] is the index in lines of reads[r]'s first move, before the
	// lines are sorted; sales says some move is a sale.
	first := make([]int32, len(reads))
	sales := false
	for ri, r := range reads {
		lr := r.v.(*ledgerRead)
		moves[ri] = lr.moves
		first[ri] = int32(len(lines))
		for mi, m := range lr.moves {
			sales = sales || m.Kind == events.KindSale
			k, ok := keyIdx[m.Key]
			if !ok {
				k = int32(len(keys))
				keyIdx[m.Key] = k
				keys = append(keys, m.Key)
			}
			lines = append(lines, ledgerLine{pos: int64(k), hlc: m.Stamp.HLC.Pack(), hi: lr.hi, lo: lr.lo,
				line: int32(m.Line), read: int32(ri), move: int32(mi), item: int32(r.item)})
		}
	}
	// Every position the batch touches gets its id now, those only the
	// reservations changed included, so that new positions are created
	// before the ledger is written (the lock order).
	nk := len(keys)
	for k, d := range t.held {
		if _, ok := keyIdx[k]; !ok && d != 0 {
			keys = append(keys, k)
		}
	}
	if len(keys) == 0 {
		return nil
	}
	err := t.resolve(ctx, keys)
	if err != nil {
		return err
	}
	if n == 0 {
		return nil
	}
	ids := make([]int64, nk)
	for i, k := range keys[:nk] {
		ids[i] = t.ids[k]
	}
	var posOf []int64 // the positions of the lines in batch order
	if sales {
		posOf = make([]int64, len(lines))
	}
	for i := range lines {
		lines[i].pos = ids[lines[i].pos]
		if sales {
			posOf[i] = lines[i].pos
		}
	}
	sortLedgerLines(lines)
	var fresh map[lineID]bool
	if t.s.d.pg() && !t.p.ledgerSeen {
		// The COPY (encoded on its goroutine too) runs while the hub goes
		// on with the batch: the rest of this applier and the stock
		// applier's work up to its first statement (awaitLedger). lines
		// and moves are only read from here on.
		done := make(chan error, 1)
		go func() { done <- t.s.copyLedger(ctx, t.conn, lines, moves, t.p) }()
		t.copying = done
	} else if fresh, err = t.s.insertLedger(ctx, t.conn, t.tx, lines, moves, t.p, t.p.ledgerSeen); err != nil {
		return err
	}
	if sales {
		// The sales the ledger took go to the basket folder (baskets.go).
		inbox := t.salesOf(reads, moves, first, posOf, fresh)
		if t.copying != nil {
			t.inbox = inbox
		} else if err := putInbox(ctx, t.tx, inbox); err != nil {
			return err
		}
	}
	// Lines are sorted by position: each position's new moves are one run
	// of one array.
	sorted := make([]inventory.Move, 0, len(lines))
	if len(t.work) == 0 {
		t.work = make(map[int64]int32, nk)
	}
	t.works = slices.Grow(t.works, nk)
	for i := 0; i < len(lines); {
		j, start := i, len(sorted)
		for ; j < len(lines) && lines[j].pos == lines[i].pos; j++ {
			if l := &lines[j]; fresh == nil || fresh[lineID{l.hi, l.lo, int(l.line)}] {
				sorted = append(sorted, moves[l.read][l.move])
			}
		}
		if len(sorted) > start {
			t.workOn(lines[i].pos, sorted[start].Key).change.Moves = sorted[start:len(sorted):len(sorted)]
		}
		i = j
	}
	return nil
}

// salesOf encodes the batch's sale lines that the ledger took (fresh; nil:
// all) for the basket inbox: reads[r]'s moves are moves[r], and the
// position of its move m is posOf[first[r]+m].
func (t *applyTx) salesOf(reads []itemRead, moves [][]inventory.Move, first []int32, posOf []int64, fresh map[lineID]bool) *salesEncoder {
	e := newSalesEncoder(len(reads) * 24)
	var pos, qty []int64
	for ri, r := range reads {
		lr := r.v.(*ledgerRead)
		pos, qty = pos[:0], qty[:0]
		var stamp int64
		for mi := range moves[ri] {
			m := &moves[ri][mi]
			if m.Kind != events.KindSale || fresh != nil && !fresh[lineID{lr.hi, lr.lo, m.Line}] {
				continue
			}
			if len(pos) == 0 {
				stamp = m.Stamp.HLC.Pack()
			}
			pos, qty = append(pos, posOf[int(first[ri])+mi]), append(qty, m.Qty)
		}
		if len(pos) > 0 {
			e.add(lr.hi, lr.lo, stamp, t.p.items[r.item].Env.Origin.Store, pos, qty)
		}
	}
	return e
}

// ledgerLine is one line of the ledger as the batch writes it: its key,
// and where its move (moves[read][move]) and event (the batch's
// items[item]) are. It holds no pointers, so sorting a batch's lines
// moves little.
type ledgerLine struct {
	pos, hlc, hi, lo       int64
	line, read, move, item int32
}

type lineID struct {
	hi, lo int64
	line   int
}

// sortLedgerLines sorts lines by the ledger's key.
func sortLedgerLines(lines []ledgerLine) {
	slices.SortFunc(lines, func(a, b ledgerLine) int {
		if c := cmp.Compare(a.pos, b.pos); c != 0 {
			return c
		}
		if c := cmp.Compare(a.hlc, b.hlc); c != 0 {
			return c
		}
		if c := cmp.Compare(a.hi, b.hi); c != 0 {
			return c
		}
		if c := cmp.Compare(a.lo, b.lo); c != 0 {
			return c
		}
		return cmp.Compare(a.line, b.line)
	})
}

// errLedgerSeen reports that a line of the batch was already in the
// ledger: the transaction is abandoned and redone with insertLedger told
// to find out which (see plan.ledgerSeen).
var errLedgerSeen = errors.New("store: a ledger line of the batch is already recorded")

// insertLedger records lines and returns which ones were not already in the
// ledger (nil: all of them): a second line of defence, so an event id is
// applied once even if it arrived under two origins. Lines go in in key
// order, which on PostgreSQL is the order in which a transaction waits for
// another one inserting the same line (see LOCKS.md); it also keeps the
// B-tree writes local. lines must be sorted by that key (sortLedgerLines);
// tx is a transaction on conn.
//
// A line already recorded is rare (a broken agent), so unless precise the
// lines go in without finding out which ones were new, which is cheaper:
// on SQLite inserted with a count of the rows that went in (on PostgreSQL
// the ledger applier copies them instead: copyLedger). If any was already
// there, it returns errLedgerSeen.
func (s *Store) insertLedger(ctx context.Context, conn *sql.Conn, tx *sql.Tx, lines []ledgerLine, moves [][]inventory.Move, p *plan, precise bool) (map[lineID]bool, error) {
	if len(lines) == 0 {
		return nil, nil
	}
	rs, cols := ledgerRows(lines, moves, p)
	insert := func(returning string) func(a *args, k string) string {
		return func(a *args, k string) string {
			return `INSERT INTO stock_ledger (` + cols + `)
SELECT ` + cols + ` FROM ` + k + s.d.inOrder() + ` ON CONFLICT DO NOTHING` + returning
		}
	}
	if !precise {
		n, err := s.execRowsConn(ctx, conn, tx, rs, "k", insert(""))
		if err != nil {
			return nil, fmt.Errorf("insert ledger: %w", err)
		}
		if n != int64(len(lines)) {
			return nil, errLedgerSeen
		}
		return nil, nil
	}
	fresh := make(map[lineID]bool, len(lines))
	err := s.queryRows(ctx, tx, rs, "k", insert(" RETURNING ev_hi, ev_lo, line_no"), func(rows *sql.Rows) error {
		var id lineID
		var line int64
		if err := rows.Scan(&id.hi, &id.lo, &line); err != nil {
			return err
		}
		id.line = int(line)
		fresh[id] = true
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("insert ledger: %w", err)
	}
	return fresh, nil
}

// copyLedger copies lines (sorted by the ledger's key) into the ledger on
// PostgreSQL, over conn, in the transaction open on it; it returns
// errLedgerSeen if one was already there (the COPY fails whole).
func (s *Store) copyLedger(ctx context.Context, conn *sql.Conn, lines []ledgerLine, moves [][]inventory.Move, p *plan) error {
	// COPY in binary form, formatted here: a number is 8 bytes put
	// rather than up to 20 digits formatted (the stamps and event
	// ids are all 19-digit numbers): formatting them costs the hub half
	// as much, and the server reads them without parsing.
	buf := make([]byte, 0, len(pgCopyBinaryHeader)+2+len(lines)*(2+8*14+4*2+8+8))
	buf = append(buf, pgCopyBinaryHeader...)
	for i := range lines {
		l := &lines[i]
		m := &moves[l.read][l.move]
		buf = binary.BigEndian.AppendUint16(buf, 10)
		buf = appendCopyInt8(buf, ledgerDay(l.hlc))
		buf = appendCopyInt8(buf, l.pos)
		buf = appendCopyInt8(buf, l.hlc)
		buf = appendCopyInt8(buf, l.hi)
		buf = appendCopyInt8(buf, l.lo)
		buf = binary.BigEndian.AppendUint32(buf, 4)
		buf = binary.BigEndian.AppendUint32(buf, uint32(l.line))
		buf = appendCopyBinaryText(buf, string(m.Kind))
		buf = appendCopyInt8(buf, m.Qty)
		buf = appendCopyInt8(buf, m.Delta)
		buf = appendCopyBinaryText(buf, p.items[l.item].Env.Origin.Store)
	}
	buf = binary.BigEndian.AppendUint16(buf, 0xffff) // the trailer: -1 fields
	err := conn.Raw(func(dc any) error {
		c, ok := dc.(*stdlib.Conn)
		if !ok {
			return fmt.Errorf("unexpected driver connection %T", dc)
		}
		tag, err := c.Conn().PgConn().CopyFrom(ctx, bytes.NewReader(buf),
			"COPY stock_ledger (day, pos_id, hlc, ev_hi, ev_lo, line_no, kind, qty, delta, store) FROM STDIN (FORMAT binary)")
		if err == nil && tag.RowsAffected() != int64(len(lines)) {
			err = fmt.Errorf("copied %d of %d rows", tag.RowsAffected(), len(lines))
		}
		return err
	})
	if pe := (*pgconn.PgError)(nil); errors.As(err, &pe) && pe.Code == "23505" { // unique_violation
		return errLedgerSeen
	}
	if err != nil {
		return fmt.Errorf("copy ledger: %w", err)
	}
	return nil
}

// ledgerRows is lines as rows of the ledger, with their day, and the
// ledger's columns they fill.
func ledgerRows(lines []ledgerLine, moves [][]inventory.Move, p *plan) (*rowset, string) {
	cols := "day, pos_id, hlc, ev_hi, ev_lo, line_no, kind, qty, delta, store"
	rs := newRowset(integer("day"), integer("pos_id"), integer("hlc"), integer("ev_hi"), integer("ev_lo"), integer("line_no"),
		text("kind"), integer("qty"), integer("delta"), text("store"))
	rs.grow(len(lines))
	for i := range lines {
		l := &lines[i]
		m := &moves[l.read][l.move]
		rs.add(ledgerDay(l.hlc), l.pos, l.hlc, l.hi, l.lo, int64(l.line), string(m.Kind), m.Qty, m.Delta, p.items[l.item].Env.Origin.Store)
	}
	return rs, cols
}

// deltasAfter sums, for each position (by id), the ledger deltas stamped
// after the given count stamp: one indexed range scan per position and
// day, from the count's day on.
func (s *Store) deltasAfter(ctx context.Context, tx *sql.Tx, counts map[int64]events.Stamp) (map[int64]int64, error) {
	out := make(map[int64]int64, len(counts))
	if len(counts) == 0 {
		return out, nil
	}
	rs := newRowset(integer("pos"), integer("hlc"), integer("hi"), integer("lo"), integer("day"))
	first := int64(math.MaxInt64) // the day of the earliest count
	for id, st := range counts {
		hi, lo, err := eventIDKey(st.ID)
		if err != nil {
			return nil, err
		}
		h := st.HLC.Pack()
		first = min(first, ledgerDay(h))
		rs.add(id, h, hi, lo, ledgerDay(h))
	}
	err := s.queryRows(ctx, tx, rs, "k", func(a *args, k string) string {
		if !s.d.pg() {
			// A position's lines after its count are in the count's day
			// and the days after it: a seek each, in that order (CROSS
			// JOIN, and the days' bound in WHERE: in ON, SQLite scanned
			// the ledger from the count's day on instead).
			return `WITH RECURSIVE ` + ledgerDaysCTE(a, first) + `
SELECT k.pos, CAST(SUM(l.delta) AS BIGINT) FROM ` + k + ` CROSS JOIN days
CROSS JOIN stock_ledger l ON l.day = days.d AND l.pos_id = k.pos AND (l.hlc, l.ev_hi, l.ev_lo) > (k.hlc, k.hi, k.lo)
WHERE days.d >= k.day GROUP BY k.pos`
		}
		// A range of the ledger's key per position and day, whatever
		// the planner guesses of the array's length: as a join, it
		// chose a (parallel) scan of the whole ledger, whose cost grew
		// with the history. The days are an array (found first, by a
		// seek each), so each (day, position) is an index condition.
		return `WITH RECURSIVE ` + ledgerDaysCTE(a, first) + `
SELECT k.pos, COALESCE((SELECT CAST(SUM(l.delta) AS BIGINT) FROM stock_ledger l
	WHERE l.day = ANY (ARRAY(SELECT d FROM days WHERE d >= k.day)) AND l.pos_id = k.pos
	AND (l.hlc, l.ev_hi, l.ev_lo) > (k.hlc, k.hi, k.lo)), 0) FROM ` + k
	}, func(rows *sql.Rows) error {
		var id, sum int64
		if err := rows.Scan(&id, &sum); err != nil {
			return err
		}
		out[id] = sum
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("deltas after count: %w", err)
	}
	return out, nil
}
