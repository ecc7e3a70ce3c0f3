package store

import (
	"context"
	"database/sql"
	"encoding/binary"
	"errors"
	"fmt"
)

// The basket inbox is how the apply path hands its sales to the basket
// folder (baskets.go): a batch with sales writes ONE basket_inbox row, in
// its own transaction, holding every sale line it recorded (those the
// ledger took: a line already there is not a new sale) in a compact
// binary form, salesCodec below. The folder reads inbox rows, folds them
// and deletes them in one transaction.
//
// It replaced a partial index of the ledger's stamped sale lines, which
// the folder scanned by stamp: that index cost an entry per sale line in
// the apply path (about a fifth of the ledger COPY's server CPU), where
// the inbox costs one row per batch.
//
// A row's sales blob, format 1:
//
//	byte   1 (the format)
//	then, per sale (event), until the end:
//	  8+8 bytes  the event id's key (ev_hi, ev_lo), big-endian
//	  varint     its clock (packed HLC), less the previous sale's
//	  uvarint    its store: an index into the stores named so far, or,
//	             when it equals their number, a new one: uvarint length
//	             and the name
//	  uvarint    its number of lines, then per line:
//	    uvarint  the position (stock.id)
//	    varint   the quantity

// salesFormat is the first byte of an inbox row's sales.
const salesFormat = 1

// salesEncoder builds one inbox row's sales.
type salesEncoder struct {
	buf     []byte
	stores  map[string]uint64
	lastHLC int64
	lines   int64
}

func newSalesEncoder(sizeHint int) *salesEncoder {
	b := make([]byte, 1, 1+sizeHint)
	b[0] = salesFormat
	return &salesEncoder{buf: b, stores: map[string]uint64{}}
}

// add appends one sale: its event's key, clock and store, and its lines'
// positions and quantities (pos and qty of equal length, at least one).
func (e *salesEncoder) add(hi, lo, stamp int64, store string, pos, qty []int64) {
	e.buf = binary.BigEndian.AppendUint64(e.buf, uint64(hi))
	e.buf = binary.BigEndian.AppendUint64(e.buf, uint64(lo))
	e.buf = binary.AppendVarint(e.buf, stamp-e.lastHLC)
	e.lastHLC = stamp
	if i, ok := e.stores[store]; ok {
		e.buf = binary.AppendUvarint(e.buf, i)
	} else {
		i = uint64(len(e.stores))
		e.stores[store] = i
		e.buf = binary.AppendUvarint(e.buf, i)
		e.buf = binary.AppendUvarint(e.buf, uint64(len(store)))
		e.buf = append(e.buf, store...)
	}
	e.buf = binary.AppendUvarint(e.buf, uint64(len(pos)))
	for i, p := range pos {
		e.buf = binary.AppendUvarint(e.buf, uint64(p))
		e.buf = binary.AppendVarint(e.buf, qty[i])
	}
	e.lines += int64(len(pos))
}

// saleLine is one sale line as an inbox row holds it, and the product of
// its position (filled by the folder).
type saleLine struct {
	hi, lo, hlc int64
	store       string
	pos, qty    int64
	product     string
}

var errBadSales = errors.New("store: malformed basket inbox row")

// decodeSales appends the lines of an inbox row's sales to out.
func decodeSales(b []byte, out []saleLine) ([]saleLine, error) {
	if len(b) == 0 || b[0] != salesFormat {
		return out, fmt.Errorf("%w: format %v", errBadSales, b[:min(len(b), 1)])
	}
	b = b[1:]
	var stores []string
	var stamp int64
	uvarint := func() uint64 {
		v, n := binary.Uvarint(b)
		if n <= 0 {
			b = nil
			return 0
		}
		b = b[n:]
		return v
	}
	varint := func() int64 {
		v, n := binary.Varint(b)
		if n <= 0 {
			b = nil
			return 0
		}
		b = b[n:]
		return v
	}
	for len(b) > 0 {
		if len(b) < 16 {
			return out, errBadSales
		}
		hi, lo := int64(binary.BigEndian.Uint64(b)), int64(binary.BigEndian.Uint64(b[8:]))
		b = b[16:]
		stamp += varint()
		si := uvarint()
		switch {
		case b == nil:
			return out, errBadSales
		case si == uint64(len(stores)):
			n := uvarint()
			if n > uint64(len(b)) {
				return out, errBadSales
			}
			stores = append(stores, string(b[:n]))
			b = b[n:]
		case si > uint64(len(stores)):
			return out, errBadSales
		}
		store := stores[si]
		n := uvarint()
		if b == nil || n > uint64(len(b)) {
			return out, errBadSales
		}
		for range n {
			pos := uvarint()
			qty := varint()
			if b == nil {
				return out, errBadSales
			}
			out = append(out, saleLine{hi: hi, lo: lo, hlc: stamp, store: store, pos: int64(pos), qty: qty})
		}
	}
	return out, nil
}

// putInbox writes a batch's sales as one inbox row (nothing when it has
// none).
func putInbox(ctx context.Context, tx *sql.Tx, e *salesEncoder) error {
	if e == nil || e.lines == 0 {
		return nil
	}
	if _, err := tx.ExecContext(ctx, "INSERT INTO basket_inbox (lines, sales) VALUES ($1, $2)", e.lines, e.buf); err != nil {
		return fmt.Errorf("basket inbox: %w", err)
	}
	return nil
}

// carryBasketBacklog turns the sale lines the migration to the inbox
// found not yet folded (basket_backlog: the ledger's stamped lines at or
// above the old watermark) into inbox rows, one per transaction that
// wrote them, as the apply path writes them now, and empties the backlog,
// in one transaction (run with the migrations, under their lock).
func (s *Store) carryBasketBacklog(ctx context.Context, conn *sql.Conn) error {
	var n int
	if err := conn.QueryRowContext(ctx, "SELECT count(*) FROM (SELECT 1 FROM basket_backlog LIMIT 1) b").Scan(&n); err != nil {
		return fmt.Errorf("store: basket backlog: %w", err)
	}
	if n == 0 {
		return nil
	}
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	rows, err := tx.QueryContext(ctx, `SELECT xact, ev_hi, ev_lo, hlc, store, pos_id, qty FROM basket_backlog
ORDER BY xact, ev_hi, ev_lo, pos_id`)
	if err != nil {
		return fmt.Errorf("store: basket backlog: %w", err)
	}
	var out []*salesEncoder
	var e *salesEncoder
	var cur saleLine
	var xact int64
	var pos, qty []int64
	flush := func() {
		if len(pos) > 0 {
			e.add(cur.hi, cur.lo, cur.hlc, cur.store, pos, qty)
			pos, qty = pos[:0], qty[:0]
		}
	}
	for rows.Next() {
		var l saleLine
		var x int64
		if err := rows.Scan(&x, &l.hi, &l.lo, &l.hlc, &l.store, &l.pos, &l.qty); err != nil {
			rows.Close()
			return fmt.Errorf("store: basket backlog: %w", err)
		}
		if e == nil || x != xact || l.hi != cur.hi || l.lo != cur.lo {
			flush()
			if e == nil || x != xact {
				e, xact = newSalesEncoder(0), x
				out = append(out, e)
			}
			cur = l
		}
		pos, qty = append(pos, l.pos), append(qty, l.qty)
	}
	flush()
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("store: basket backlog: %w", err)
	}
	for _, e := range out {
		if err := putInbox(ctx, tx, e); err != nil {
			return fmt.Errorf("store: basket backlog: %w", err)
		}
	}
	if _, err := tx.ExecContext(ctx, "DELETE FROM basket_backlog"); err != nil {
		return fmt.Errorf("store: basket backlog: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return err
	}
	s.log.Info("store: carried the sales not yet folded into the basket inbox", "transactions", len(out))
	return nil
}
