package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"

	"github.com/omnisync/omnisync/cloud/internal/cooccur"
	"github.com/omnisync/omnisync/shared/hlc"
)

// Bought together: a sale's basket is folded into the product pairs after
// the sale is applied, by the basket folder (FoldBaskets, run in the
// background by every hub replica), not inside the apply transaction.
// Recommendations may lag a sale by seconds; the apply path of a sale only
// stamps its ledger lines with the batch's transaction.
//
// The stamp (stock_ledger.xact) orders the ledger's sale lines by
// transaction, and basket_fold.folded is the watermark: every stamped sale
// line below it has been folded, none at or above it has. A fold reads the
// lines of [folded, upTo), counts their baskets' pairs (package cooccur),
// adds them to product_pairs and moves folded to upTo, all in ONE
// transaction: a crash anywhere before the commit folds nothing, and the
// next fold starts from the same watermark.
//
// The stamps are handed out in one order and committed in another, so
// upTo must never pass a transaction that may still commit lines:
//
//   - PostgreSQL stamps a batch with its own transaction id
//     (pg_current_xact_id). A fold reads upTo as the xmin of its snapshot:
//     every transaction with a smaller id has ended, committed or rolled
//     back, so no line can appear below upTo later, and a line stamped by
//     a transaction still running (even one whose id is smaller than a
//     committed one's) is folded by a later fold. A long write transaction
//     holds folding back (not applying), for as long as it runs.
//   - SQLite has one writer: a batch takes the next stamp from
//     basket_fold.next_xact in its transaction, so stamps commit in order
//     and every stamp below next_xact has committed.
//
// Several replicas may fold: the fold takes basket_fold's row with FOR
// UPDATE SKIP LOCKED (PostgreSQL), so a second folder finds it taken and
// waits for its next turn instead of folding the same lines; SQLite's one
// writer does the same. basket_items keeps each sale's products (the
// try-on analytics read them) with the event as key: a basket already
// there counts nothing, a second line of defence.
//
// Ledger retention deletes only sale lines below the watermark (oldLines),
// so an old sale that arrives late is folded before it is rolled up.
// Returns and voids never counted, and do not now.

// DefaultFoldLines bounds the sale lines one fold reads: a fold takes
// whole transactions, at least one, up to this many lines.
const DefaultFoldLines = 50_000

// foldXacts bounds the transactions one fold looks at.
const foldXacts = 1000

// FoldResult says what one FoldBaskets did.
type FoldResult struct {
	// Baskets are the sales folded and Lines their ledger lines (sales
	// already folded, or of products no longer in the catalog, count in
	// Lines and not in Baskets).
	Baskets, Lines int
	// Products lists the products whose complements changed, sorted.
	Products []string
	// More says the fold stopped at its limit and more sales are ready.
	More bool
	// Busy says another replica was folding: nothing was done.
	Busy bool
}

// ledgerXact returns the stamp of the batch's ledger lines (see the top of
// this file): on PostgreSQL the transaction's id, on SQLite the next
// number of basket_fold.
func (t *applyTx) ledgerXact(ctx context.Context) (int64, error) {
	var x int64
	q := "UPDATE basket_fold SET next_xact = next_xact + 1 WHERE id = 1 RETURNING next_xact - 1"
	if t.s.d.pg() {
		q = "SELECT pg_current_xact_id()::text::bigint"
	}
	if err := t.tx.QueryRowContext(ctx, q).Scan(&x); err != nil {
		return 0, fmt.Errorf("ledger stamp: %w", err)
	}
	return x, nil
}

// FoldBaskets folds the baskets of the sales applied since the last fold
// into the product pairs, up to lines ledger lines (DefaultFoldLines when
// 0 or less), exactly once (see the top of this file).
func (s *Store) FoldBaskets(ctx context.Context, lines int) (FoldResult, error) {
	if lines <= 0 {
		lines = DefaultFoldLines
	}
	var res FoldResult
	err := s.retry(ctx, "fold baskets", func() error {
		var err error
		res, err = s.foldOnce(ctx, lines)
		return err
	})
	if err != nil {
		return FoldResult{}, fmt.Errorf("store: fold baskets: %w", err)
	}
	return res, nil
}

// basket is one sale's products, as the ledger has them.
type basket struct {
	eventID, store string
	atMS           int64
	products       []string
	qty            []int64
}

func (s *Store) foldOnce(ctx context.Context, limit int) (FoldResult, error) {
	var res FoldResult
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return res, err
	}
	defer tx.Rollback()
	claim := "SELECT folded, next_xact FROM basket_fold WHERE id = 1"
	if s.d.pg() {
		claim += " FOR UPDATE SKIP LOCKED"
	}
	var folded, upTo int64
	err = tx.QueryRowContext(ctx, claim).Scan(&folded, &upTo)
	if errors.Is(err, sql.ErrNoRows) && s.d.pg() {
		res.Busy = true
		return res, nil
	}
	if err != nil {
		return res, fmt.Errorf("watermark: %w", err)
	}
	if s.d.pg() {
		// Every transaction below the snapshot's xmin has ended. (This
		// one's own id, which the row lock gave it, can only hold the
		// xmin lower: a fold that stops short, never one that skips.)
		if err := tx.QueryRowContext(ctx, "SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint").Scan(&upTo); err != nil {
			return res, fmt.Errorf("snapshot: %w", err)
		}
		if upTo < folded {
			return res, s.restartFold(ctx, tx, folded, upTo)
		}
	}
	if upTo <= folded {
		return res, nil
	}
	// The transactions with sales in [folded, upTo), oldest first: the
	// fold takes whole ones (a batch's baskets fold together) while they
	// fit in limit lines, at least one.
	rows, err := tx.QueryContext(ctx, `SELECT xact, count(*) FROM stock_ledger WHERE kind = 'sale' AND xact > 0 AND xact >= $1 AND xact < $2
GROUP BY xact ORDER BY xact LIMIT `+strconv.Itoa(foldXacts), folded, upTo)
	if err != nil {
		return res, fmt.Errorf("transactions to fold: %w", err)
	}
	var xacts, counts []int64
	for rows.Next() {
		var x, n int64
		if err := rows.Scan(&x, &n); err != nil {
			rows.Close()
			return res, err
		}
		xacts, counts = append(xacts, x), append(counts, n)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return res, err
	}
	if len(xacts) == 0 {
		// Nothing to fold; the watermark stays, which costs the next
		// fold a scan of an empty index range.
		return res, nil
	}
	take, sum := 0, int64(0)
	for take < len(xacts) && (take == 0 || sum+counts[take] <= int64(limit)) {
		sum += counts[take]
		take++
	}
	if take < len(xacts) || len(xacts) == foldXacts {
		upTo = xacts[take-1] + 1
		res.More = true
	}
	baskets, n, err := s.readBaskets(ctx, tx, folded, upTo)
	if err != nil {
		return res, err
	}
	res.Lines = n
	nowMS := s.now().UnixMilli()
	pairs := map[cooccur.Pair]*[2]int64{}
	res.Baskets, err = s.insertBaskets(ctx, tx, baskets, pairs)
	if err != nil {
		return res, err
	}
	if res.Products, err = s.addPairs(ctx, tx, nowMS, pairs); err != nil {
		return res, fmt.Errorf("product pairs: %w", err)
	}
	if _, err := tx.ExecContext(ctx, "UPDATE basket_fold SET folded = $1, folded_ms = $2 WHERE id = 1", upTo, nowMS); err != nil {
		return res, fmt.Errorf("watermark: %w", err)
	}
	if s.beforeFoldCommit != nil {
		if err := s.beforeFoldCommit(); err != nil {
			return res, err
		}
	}
	if err := tx.Commit(); err != nil {
		return res, err
	}
	return res, nil
}

// restartFold restarts the watermark when the server's transaction ids
// went back below it, which they never do but in a new cluster (a
// logical dump restored): the sale lines stamped at or above the
// watermark were not folded, and are restamped 1; those below it were,
// and are restamped 0 (like the lines of the hubs before the folder).
// The watermark restarts at 1, and folds go on from there; were the
// restamping wrong about a basket, basket_items would still keep it from
// counting twice.
func (s *Store) restartFold(ctx context.Context, tx *sql.Tx, folded, xmin int64) error {
	s.log.Warn("store: the database's transaction ids went back below the basket folder's watermark (a restored dump?); restarting it",
		"watermark", folded, "xmin", xmin)
	if _, err := tx.ExecContext(ctx, `UPDATE stock_ledger SET xact = CASE WHEN xact >= $1 THEN 1 ELSE 0 END
WHERE kind = 'sale' AND xact > 0`, folded); err != nil {
		return fmt.Errorf("restamp sales: %w", err)
	}
	if _, err := tx.ExecContext(ctx, "UPDATE basket_fold SET folded = 1 WHERE id = 1"); err != nil {
		return fmt.Errorf("watermark: %w", err)
	}
	return tx.Commit()
}

// readBaskets reads the sale lines stamped in [from, upTo) as baskets (one
// per event, each product once with the quantity of its lines), in event
// id order, and how many lines there were.
func (s *Store) readBaskets(ctx context.Context, tx *sql.Tx, from, upTo int64) ([]*basket, int, error) {
	rows, err := tx.QueryContext(ctx, `SELECT l.ev_hi, l.ev_lo, l.store, l.hlc, COALESCE(v.product_id, ''), l.qty
FROM stock_ledger l JOIN stock p ON p.id = l.pos_id LEFT JOIN variants v ON v.sku = p.sku
WHERE l.kind = 'sale' AND l.xact > 0 AND l.xact >= $1 AND l.xact < $2
ORDER BY l.ev_hi, l.ev_lo, v.product_id`, from, upTo)
	if err != nil {
		return nil, 0, fmt.Errorf("read baskets: %w", err)
	}
	defer rows.Close()
	var out []*basket
	var b *basket
	var lastHi, lastLo int64
	n := 0
	for rows.Next() {
		var hi, lo, stamp, qty int64
		var store, product string
		if err := rows.Scan(&hi, &lo, &store, &stamp, &product, &qty); err != nil {
			return nil, 0, err
		}
		n++
		if product == "" {
			continue // the SKU left the catalog: nothing to pair
		}
		if b == nil || hi != lastHi || lo != lastLo {
			b = &basket{eventID: eventIDString(hi, lo), store: store, atMS: hlc.Unpack(stamp).Wall}
			out = append(out, b)
			lastHi, lastLo = hi, lo
		}
		if k := len(b.products) - 1; k >= 0 && b.products[k] == product {
			b.qty[k] += qty
			continue
		}
		b.products = append(b.products, product)
		b.qty = append(b.qty, qty)
	}
	if err := rows.Err(); err != nil {
		return nil, 0, fmt.Errorf("read baskets: %w", err)
	}
	return out, n, nil
}

// insertBaskets records the baskets in basket_items and adds the pairs of
// those that were new to it (index 1 of pairs: bought); it returns how
// many were.
func (s *Store) insertBaskets(ctx context.Context, tx *sql.Tx, baskets []*basket, pairs map[cooccur.Pair]*[2]int64) (int, error) {
	if len(baskets) == 0 {
		return 0, nil
	}
	rs := newRowset(text("event_id"), text("store"), text("day"), integer("at_ms"), text("product_id"), integer("qty"))
	for _, b := range baskets {
		day := dayOf(b.atMS)
		for i, p := range b.products {
			rs.add(b.eventID, b.store, day, b.atMS, p, b.qty[i])
		}
	}
	// One basket is inserted by one statement: new whole or already
	// there whole, so its pairs need no read.
	fresh := map[string][]string{}
	err := s.queryRows(ctx, tx, rs, "k", func(a *args, k string) string {
		return `INSERT INTO basket_items (event_id, product_id, store, day, at_ms, qty)
SELECT event_id, product_id, store, day, at_ms, qty FROM ` + k + s.d.inOrder() + `
ON CONFLICT DO NOTHING RETURNING event_id, product_id`
	}, func(rows *sql.Rows) error {
		var id, p string
		if err := rows.Scan(&id, &p); err != nil {
			return err
		}
		fresh[id] = append(fresh[id], p)
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("baskets: %w", err)
	}
	for _, added := range fresh {
		countPairs(nil, added, pairs, 1)
	}
	return len(fresh), nil
}

// BasketFold is where the basket folder stands.
type BasketFold struct {
	// Pending counts the stamped sale lines not folded yet.
	Pending int64
	// FoldedMS is when the last fold that found sales committed (0:
	// never).
	FoldedMS int64
}

// BasketFoldState reads where the basket folder stands.
func (s *Store) BasketFoldState(ctx context.Context) (BasketFold, error) {
	var f BasketFold
	var folded int64
	if err := s.r.QueryRowContext(ctx, "SELECT folded, folded_ms FROM basket_fold WHERE id = 1").Scan(&folded, &f.FoldedMS); err != nil {
		return f, fmt.Errorf("store: basket fold: %w", err)
	}
	err := s.r.QueryRowContext(ctx, "SELECT count(*) FROM stock_ledger WHERE kind = 'sale' AND xact > 0 AND xact >= $1", folded).Scan(&f.Pending)
	if err != nil {
		return f, fmt.Errorf("store: basket fold: %w", err)
	}
	return f, nil
}
