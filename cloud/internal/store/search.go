package store

import (
	"context"
	"database/sql"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/omnisync/omnisync/cloud/internal/catalog"
	"github.com/omnisync/omnisync/shared/downsync"
	"github.com/omnisync/omnisync/shared/hlc"
)

// The console's reads: catalog search over catalog_search (terms as
// catalog.SearchTerms makes them; a query word matches a term it is a
// prefix of, by a range scan of the primary key), stock of many SKUs, and
// sales per position.

// searchSKUsPerProduct bounds the SKUs a search reads per product it
// answers.
const searchSKUsPerProduct = 16

// searchPage is how many variants one indexing round reads.
const searchPage = 2000

// indexSearch rewrites the search terms of variants: with imported, of
// those the import in tx changed (and of every variant of a product whose
// name or brand changed); without, of every variant (a catalog imported
// before catalog_search existed).
func (s *Store) indexSearch(ctx context.Context, tx *sql.Tx, imported bool) error {
	where := "true"
	if imported {
		where = `(v.sku IN (SELECT sku FROM import_variants WHERE state <> ` + fmt.Sprint(stateUnchanged) + `)
	OR v.product_id IN (SELECT product_id FROM import_changed))`
	}
	after := ""
	for {
		rows, err := tx.QueryContext(ctx, `SELECT v.sku, v.gtins, v.name, v.brand, v.colour, v.category, p.name, p.brand
FROM variants v JOIN products p ON p.product_id = v.product_id
WHERE `+where+` AND v.sku > $1 ORDER BY v.sku LIMIT `+fmt.Sprint(searchPage), after)
		if err != nil {
			return fmt.Errorf("store: search index: read variants: %w", err)
		}
		skus := newRowset(text("sku"))
		terms := newRowset(text("term"), text("sku"))
		n := 0
		for rows.Next() {
			var v catalog.Variant
			var gtins, pname, pbrand string
			if err := rows.Scan(&v.SKU, &gtins, &v.Name, &v.Brand, &v.Colour, &v.Category, &pname, &pbrand); err != nil {
				rows.Close()
				return fmt.Errorf("store: search index: %w", err)
			}
			if gtins != "" {
				v.GTINs = strings.Split(gtins, ",")
			}
			skus.add(v.SKU)
			for _, t := range catalog.SearchTerms(v, pname, pbrand) {
				terms.add(t, v.SKU)
			}
			after = v.SKU
			n++
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return fmt.Errorf("store: search index: %w", err)
		}
		if n == 0 {
			return nil
		}
		if imported {
			err = s.execRows(ctx, tx, skus, "k", func(a *args, k string) string {
				return `DELETE FROM catalog_search WHERE sku IN (SELECT k.sku FROM ` + k + `)`
			})
			if err != nil {
				return fmt.Errorf("store: search index: drop terms: %w", err)
			}
		}
		err = s.execRows(ctx, tx, terms, "t", func(a *args, t string) string {
			return `INSERT INTO catalog_search (term, sku) SELECT t.term, t.sku FROM ` + t + ` WHERE true ON CONFLICT DO NOTHING`
		})
		if err != nil {
			return fmt.Errorf("store: search index: write terms: %w", err)
		}
		if n < searchPage {
			return nil
		}
	}
}

// backfillSearch indexes a catalog imported before catalog_search existed
// (run with the migrations, under their lock).
func (s *Store) backfillSearch(ctx context.Context, conn *sql.Conn) error {
	var variants, terms int
	if err := conn.QueryRowContext(ctx, `SELECT (SELECT count(*) FROM (SELECT 1 FROM variants LIMIT 1) v), (SELECT count(*) FROM (SELECT 1 FROM catalog_search LIMIT 1) t)`).Scan(&variants, &terms); err != nil {
		return fmt.Errorf("store: search backfill: %w", err)
	}
	if variants == 0 || terms > 0 {
		return nil
	}
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if err := s.indexSearch(ctx, tx, false); err != nil {
		return err
	}
	return tx.Commit()
}

// SearchCatalog returns the products (with all their variants, ordered by
// product id) that have a variant every word of q finds, at most limit
// (default 20, at most 200). A query that is one token (a SKU with
// punctuation, a GTIN) is tried whole first. An empty query finds
// nothing.
func (s *Store) SearchCatalog(ctx context.Context, q string, limit int) ([]downsync.ProductDoc, error) {
	if limit <= 0 {
		limit = 20
	}
	limit = min(limit, 200)
	words := catalog.QueryWords(q)
	if len(words) == 0 {
		return []downsync.ProductDoc{}, nil
	}
	tries := [][]string{words}
	if len(words) > 1 && !strings.ContainsFunc(strings.TrimSpace(q), func(r rune) bool { return r == ' ' || r == '\t' }) {
		tries = [][]string{words[:1], words[1:]}
	}
	for _, ws := range tries {
		ids, err := s.searchProductIDs(ctx, ws, limit)
		if err != nil {
			return nil, err
		}
		if len(ids) > 0 {
			return s.ProductDocs(ctx, ids)
		}
	}
	return []downsync.ProductDoc{}, nil
}

func (s *Store) searchProductIDs(ctx context.Context, words []string, limit int) ([]string, error) {
	var a args
	parts := make([]string, len(words))
	for i, w := range words {
		parts[i] = "SELECT sku FROM catalog_search WHERE term >= " + a.add(w) + " AND term < " + a.add(catalog.PrefixEnd(w))
	}
	// The matching SKUs are bounded first (searchSKUsPerProduct a
	// product), so that a word every variant has costs what a rare one
	// does; a query that finds more products than are shown says so
	// anyway.
	stmt := `SELECT DISTINCT v.product_id FROM variants v WHERE v.sku IN (` + strings.Join(parts, " INTERSECT ") +
		` ORDER BY 1 LIMIT ` + a.add(int64(limit*searchSKUsPerProduct)) + `) ORDER BY v.product_id LIMIT ` + a.add(int64(limit))
	rows, err := s.r.QueryContext(ctx, stmt, a...)
	if err != nil {
		return nil, fmt.Errorf("store: search catalog: %w", err)
	}
	defer rows.Close()
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		ids = append(ids, id)
	}
	return ids, rows.Err()
}

// ProductByID returns a product with its variants; false when there is
// none.
func (s *Store) ProductByID(ctx context.Context, id string) (downsync.ProductDoc, bool, error) {
	docs, err := s.ProductDocs(ctx, []string{id})
	if err != nil || len(docs) == 0 {
		return downsync.ProductDoc{}, false, err
	}
	return docs[0], true, nil
}

// StockForSKUs returns every position of the SKUs (each SKU once),
// ordered by SKU and location.
func (s *Store) StockForSKUs(ctx context.Context, skus []string) ([]Stock, error) {
	out := []Stock{}
	if len(skus) == 0 {
		return out, nil
	}
	rs := newRowset(text("sku"))
	seen := map[string]bool{}
	for _, k := range skus {
		if !seen[k] {
			seen[k] = true
			rs.add(k)
		}
	}
	err := s.queryRows(ctx, s.r, rs, "k", func(a *args, k string) string {
		return "SELECT s." + strings.ReplaceAll(stockCols, ", ", ", s.") + " FROM stock s JOIN " + k + " ON s.sku = k.sku"
	}, func(rows *sql.Rows) error {
		st, err := scanStockRow(rows)
		if err == nil {
			out = append(out, st)
		}
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("store: stock for skus: %w", err)
	}
	sortStock(out)
	return out, nil
}

// PositionSales is what one position sold (sales less returns) since a
// time, from the ledger's raw lines.
type PositionSales struct {
	SKU, Location string
	Units         int64
}

// SalesSince sums the units each position of the SKUs sold (sale lines,
// less return lines) stamped at or after since. Lines older than the
// ledger's retention live on as daily totals (ledger_daily), counted in
// whole UTC days from since's day: a line is in one or the other, never
// both (the roll-up moves it in one transaction).
func (s *Store) SalesSince(ctx context.Context, skus []string, since time.Time) ([]PositionSales, error) {
	out := []PositionSales{}
	if len(skus) == 0 {
		return out, nil
	}
	rs := newRowset(text("sku"))
	seen := map[string]bool{}
	for _, k := range skus {
		if !seen[k] {
			seen[k] = true
			rs.add(k)
		}
	}
	from := hlc.Timestamp{Wall: since.UnixMilli()}.Pack()
	day := since.UnixMilli() / int64(24*time.Hour/time.Millisecond)
	if since.UnixMilli() < 0 {
		day = 0
	}
	err := s.queryRows(ctx, s.r, rs, "k", func(a *args, k string) string {
		// A position's lines since from are in from's day and the days
		// after it: a seek each (ledgerOfDays). p MATERIALIZED:
		// flattened into the query, it let SQLite scan the whole ledger
		// first.
		with := "WITH RECURSIVE " + ledgerDaysCTE(a, ledgerDay(from)) + ",\n"
		lines := s.ledgerOfDays("p", "p.id", "l.hlc >= "+a.add(from))
		return with + `p AS MATERIALIZED (SELECT s.id, s.sku, s.location FROM stock s JOIN ` + k + ` ON s.sku = k.sku)
SELECT sku, location, CAST(COALESCE(sum(units), 0) AS BIGINT) FROM (
	SELECT p.sku, p.location, -l.delta AS units FROM ` + lines + `
	WHERE l.kind IN ('sale', 'return')
	UNION ALL
	SELECT p.sku, p.location, -d.delta AS units FROM p JOIN ledger_daily d ON d.pos_id = p.id AND d.day >= ` + a.add(day) + `
	WHERE d.kind IN ('sale', 'return')
) u GROUP BY sku, location`
	}, func(rows *sql.Rows) error {
		var p PositionSales
		if err := rows.Scan(&p.SKU, &p.Location, &p.Units); err != nil {
			return err
		}
		out = append(out, p)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("store: sales since: %w", err)
	}
	return out, nil
}

func sortStock(st []Stock) {
	slices.SortFunc(st, func(a, b Stock) int {
		if c := strings.Compare(a.SKU, b.SKU); c != 0 {
			return c
		}
		return strings.Compare(a.Location, b.Location)
	})
}

// LedgerLine is one line of a position's history.
type LedgerLine struct {
	At      time.Time // the event's HLC wall time
	Kind    string
	Qty     int64 // as the event stated it (a count's absolute quantity)
	Delta   int64 // what it changed on hand by (0 for a count)
	Store   string
	EventID string
}

// PositionReservation is a reservation holding (or having held) units of
// a position.
type PositionReservation struct {
	ID         string
	Qty        int64
	Active     bool
	ReservedAt time.Time
	ClosedAt   time.Time
	ClosedBy   string // release, fulfil; "" while open
}

// PositionHistory returns a position's ledger lines still held raw
// (newest first, at most limit, default 100) and the reservations whose
// newest lines name it (active first). An unknown position has none.
func (s *Store) PositionHistory(ctx context.Context, sku, location string, limit int) ([]LedgerLine, []PositionReservation, error) {
	if limit <= 0 || limit > 1000 {
		limit = 100
	}
	lines := []LedgerLine{}
	a := args{sku, location, int64(limit)}
	// A seek a day (ledgerOfDays), and the position's lines of every day
	// sorted for the newest: a position's raw lines are bounded by the
	// ledger's retention.
	with := "WITH RECURSIVE " + ledgerDaysCTE(&a, math.MinInt64) + "\n"
	from := s.ledgerOfDays("stock s", "s.id", "")
	rows, err := s.r.QueryContext(ctx, with+`SELECT l.hlc, l.ev_hi, l.ev_lo, l.kind, l.qty, l.delta, l.store
FROM `+from+` WHERE s.sku = $1 AND s.location = $2
ORDER BY l.hlc DESC, l.ev_hi DESC, l.ev_lo DESC, l.line_no DESC LIMIT $3`, a...)
	if err != nil {
		return nil, nil, fmt.Errorf("store: position history: %w", err)
	}
	for rows.Next() {
		var l LedgerLine
		var h, hi, lo int64
		if err := rows.Scan(&h, &hi, &lo, &l.Kind, &l.Qty, &l.Delta, &l.Store); err != nil {
			rows.Close()
			return nil, nil, err
		}
		l.At, l.EventID = hlc.Unpack(h).Time().UTC(), eventIDString(hi, lo)
		lines = append(lines, l)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, nil, fmt.Errorf("store: position history: %w", err)
	}
	res := []PositionReservation{}
	rows, err = s.r.QueryContext(ctx, `SELECT r.reservation_id, rl.qty, r.active, r.reserve_hlc, r.closed_hlc, r.closed_kind
FROM reservation_lines rl JOIN reservations r ON r.reservation_id = rl.reservation_id
WHERE rl.sku = $1 AND rl.location = $2 ORDER BY r.active DESC, r.reserve_hlc DESC LIMIT $3`, sku, location, int64(limit))
	if err != nil {
		return nil, nil, fmt.Errorf("store: position reservations: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var r PositionReservation
		var active, rh, ch int64
		if err := rows.Scan(&r.ID, &r.Qty, &active, &rh, &ch, &r.ClosedBy); err != nil {
			return nil, nil, err
		}
		r.Active = active != 0
		if rh != 0 {
			r.ReservedAt = hlc.Unpack(rh).Time().UTC()
		}
		if ch != 0 {
			r.ClosedAt = hlc.Unpack(ch).Time().UTC()
		}
		res = append(res, r)
	}
	return lines, res, rows.Err()
}
