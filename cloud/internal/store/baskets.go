package store

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/omnisync/omnisync/cloud/internal/cooccur"
	"github.com/omnisync/omnisync/shared/hlc"
)

// Bought together: a sale's basket is folded into the product pairs after
// the sale is applied, by the basket folder (FoldBaskets, run in the
// background by every hub replica), not inside the apply transaction.
// Recommendations may lag a sale by seconds; the apply path of a batch
// with sales only writes one basket_inbox row holding its sale lines
// (basket_inbox.go).
//
// A fold takes the oldest inbox rows (whole rows: a batch's baskets fold
// together), counts their baskets' pairs (package cooccur), adds them to
// product_pairs and deletes the rows, all in ONE transaction: a crash
// anywhere before the commit folds nothing, and the next fold finds the
// same rows. A row is folded by the transaction that deletes it, and only
// the folder deletes rows, so each sale is folded once; a batch still
// running when a fold looks has no row the fold can see, and is folded by
// a later one (commit order does not matter, and a long transaction holds
// nothing back).
//
// Several replicas may fold: the fold takes basket_fold's row with FOR
// UPDATE SKIP LOCKED (PostgreSQL), so a second folder finds it taken and
// waits for its next turn instead of folding the same rows; SQLite's one
// writer does the same. basket_items keeps each sale's products (the
// try-on analytics read them) with the event as key: a basket already
// there counts nothing, a second line of defence.
//
// The folder reads nothing of the ledger but the positions' SKUs, so
// ledger retention need not wait for it. Returns and voids never counted,
// and do not now.
//
// Before the inbox, a batch stamped its sale lines (stock_ledger.xact)
// and the folder scanned an index of them by stamp from a watermark
// (basket_fold.folded); the migration to the inbox carried the lines not
// yet folded over (carryBasketBacklog). Lines from before the folder
// (stamp 0) had their baskets counted as they were applied.

// DefaultFoldLines bounds the sale lines one fold reads: a fold takes
// whole inbox rows, at least one, up to this many lines.
const DefaultFoldLines = 50_000

// foldRows bounds the inbox rows one fold looks at.
const foldRows = 1000

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

// FoldBaskets folds the baskets of the sales applied since the last fold
// into the product pairs, up to lines sale lines (DefaultFoldLines when
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

// basket is one sale's products.
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
	claim := "SELECT id FROM basket_fold WHERE id = 1"
	if s.d.pg() {
		claim += " FOR UPDATE SKIP LOCKED"
	}
	var one int64
	err = tx.QueryRowContext(ctx, claim).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) && s.d.pg() {
		res.Busy = true
		return res, nil
	}
	if err != nil {
		return res, fmt.Errorf("claim: %w", err)
	}
	// The oldest inbox rows: the fold takes whole ones while they fit in
	// limit lines, at least one.
	rows, err := tx.QueryContext(ctx, "SELECT id, lines FROM basket_inbox ORDER BY id LIMIT "+strconv.Itoa(foldRows))
	if err != nil {
		return res, fmt.Errorf("inbox: %w", err)
	}
	var ids, counts []int64
	for rows.Next() {
		var id, n int64
		if err := rows.Scan(&id, &n); err != nil {
			rows.Close()
			return res, err
		}
		ids, counts = append(ids, id), append(counts, n)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return res, err
	}
	if len(ids) == 0 {
		return res, nil
	}
	take, sum := 0, int64(0)
	for take < len(ids) && (take == 0 || sum+counts[take] <= int64(limit)) {
		sum += counts[take]
		take++
	}
	res.More = take < len(ids) || len(ids) == foldRows
	// What the delete takes is what is folded: a row that committed
	// since the look above, below the bound, is taken too.
	lines, err := s.takeInbox(ctx, tx, ids[take-1])
	if err != nil {
		return res, err
	}
	res.Lines = len(lines)
	baskets, err := s.basketsOf(ctx, tx, lines)
	if err != nil {
		return res, err
	}
	nowMS := s.now().UnixMilli()
	pairs := map[cooccur.Pair]*[2]int64{}
	res.Baskets, err = s.insertBaskets(ctx, tx, baskets, pairs)
	if err != nil {
		return res, err
	}
	if res.Products, err = s.addPairs(ctx, tx, nowMS, pairs); err != nil {
		return res, fmt.Errorf("product pairs: %w", err)
	}
	if _, err := tx.ExecContext(ctx, "UPDATE basket_fold SET folded_ms = $1 WHERE id = 1", nowMS); err != nil {
		return res, fmt.Errorf("fold time: %w", err)
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

// takeInbox deletes the inbox rows up to id and returns their sale lines.
func (s *Store) takeInbox(ctx context.Context, tx *sql.Tx, upTo int64) ([]saleLine, error) {
	rows, err := tx.QueryContext(ctx, "DELETE FROM basket_inbox WHERE id <= $1 RETURNING sales", upTo)
	if err != nil {
		return nil, fmt.Errorf("take inbox: %w", err)
	}
	defer rows.Close()
	var out []saleLine
	for rows.Next() {
		var b []byte
		if err := rows.Scan(&b); err != nil {
			return nil, err
		}
		if out, err = decodeSales(b, out); err != nil {
			return nil, err
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("take inbox: %w", err)
	}
	return out, nil
}

// basketsOf turns sale lines into baskets (one per event, each product
// once with the quantity of its lines), in event id order. Lines whose
// SKU is not in the catalog (any more) have nothing to pair and are left
// out.
func (s *Store) basketsOf(ctx context.Context, tx *sql.Tx, lines []saleLine) ([]*basket, error) {
	in := newRowset(integer("id"))
	seen := make(map[int64]bool, min(len(lines), 1<<14))
	for _, l := range lines {
		if !seen[l.pos] {
			seen[l.pos] = true
			in.add(l.pos)
		}
	}
	product := make(map[int64]string, len(seen))
	err := s.queryRows(ctx, tx, in, "k", func(a *args, k string) string {
		return `SELECT p.id, v.product_id FROM stock p JOIN variants v ON v.sku = p.sku WHERE p.id IN (SELECT id FROM ` + k + `)`
	}, func(rows *sql.Rows) error {
		var id int64
		var p string
		if err := rows.Scan(&id, &p); err != nil {
			return err
		}
		product[id] = p
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("products of the sales: %w", err)
	}
	kept := lines[:0]
	for _, l := range lines {
		if p := product[l.pos]; p != "" {
			l.product = p
			kept = append(kept, l)
		}
	}
	slices.SortFunc(kept, func(a, b saleLine) int {
		if c := cmp.Compare(a.hi, b.hi); c != 0 {
			return c
		}
		if c := cmp.Compare(a.lo, b.lo); c != 0 {
			return c
		}
		return strings.Compare(a.product, b.product)
	})
	var out []*basket
	var b *basket
	for i, l := range kept {
		if i == 0 || l.hi != kept[i-1].hi || l.lo != kept[i-1].lo {
			b = &basket{eventID: eventIDString(l.hi, l.lo), store: l.store, atMS: hlc.Unpack(l.hlc).Wall}
			out = append(out, b)
		}
		if k := len(b.products) - 1; k >= 0 && b.products[k] == l.product {
			b.qty[k] += l.qty
			continue
		}
		b.products = append(b.products, l.product)
		b.qty = append(b.qty, l.qty)
	}
	return out, nil
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
	// Pending counts the sale lines applied and not folded yet.
	Pending int64
	// FoldedMS is when the last fold that found sales committed (0:
	// never).
	FoldedMS int64
}

// BasketFoldState reads where the basket folder stands.
func (s *Store) BasketFoldState(ctx context.Context) (BasketFold, error) {
	var f BasketFold
	err := s.r.QueryRowContext(ctx, `SELECT f.folded_ms, (SELECT CAST(COALESCE(SUM(i.lines), 0) AS BIGINT) FROM basket_inbox i)
FROM basket_fold f WHERE f.id = 1`).Scan(&f.FoldedMS, &f.Pending)
	if err != nil {
		return f, fmt.Errorf("store: basket fold: %w", err)
	}
	return f, nil
}
