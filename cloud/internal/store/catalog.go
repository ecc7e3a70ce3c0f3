package store

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"

	"github.com/omnisync/omnisync/cloud/internal/catalog"
	"github.com/omnisync/omnisync/shared/downsync"
	"github.com/omnisync/omnisync/shared/gs1"
)

// The catalog: products, their variants and the GTIN index.
//
// Guarantee: a catalog import is all-or-nothing. Whatever it is given
// commits in one transaction, or nothing does; which rows of a file are
// worth importing (Partial mode) is decided before, by catalog.Parse, and
// by the import itself only for rows whose GTINs other SKUs hold
// (ImportOptions.SkipGTINConflicts). A product's version grows by one,
// and its updated_ms moves to now, only when the product row or one of its
// variants actually changed, so importing the same file twice changes
// nothing and down-sync republishes nothing.
//
// Memory: an import streams its variants (a VariantSource) into staging
// tables of its transaction, a chunk at a time, and works out what changed
// in SQL: memory does not grow with the catalog, only the list of changed
// products does.
//
// Concurrency: one import at a time per hub cluster. LockCatalog takes
// the right to import without waiting, before an upload is even read: on
// this process, and on PostgreSQL across replicas with a session advisory
// lock (catalogLockClass); a caller that finds it taken answers "busy"
// rather than queueing. ImportCatalog, for callers that have their
// variants in hand, waits instead: on PostgreSQL for the same key as a
// transaction advisory lock. Nothing else writes products, variants or
// variant_gtins, and ApplyBatch takes none of those rows, so there is no
// lock order to respect (LOCKS.md levels 1-3 are untouched). On SQLite
// the single writer serialises the import's transaction with everything
// else: the upload is therefore read (into a spool) before the
// transaction begins, so a slow client never holds the writer.

// catalogLockClass is the first key of the catalog import's advisory lock
// ("omnc" in ASCII); the second is the hash of the hub's schema, so that
// hubs keeping their books in other schemas of one database (a staging
// and a test cluster, parallel tests) do not lock each other out.
const catalogLockClass int32 = 0x6f6d6e63

// ImportOptions describe a catalog import for its audit row
// (catalog_imports), and whether GTIN conflicts refuse it.
type ImportOptions struct {
	// Source names where the catalog came from: a file name, "api".
	Source string
	// Mode is how the file was parsed: all-or-nothing or partial.
	Mode catalog.Mode
	// RowsRead and RowsRejected are the parser's counts (Report.Rows and
	// Report.Invalid); rows left out for GTIN conflicts are added to
	// RowsRejected. RowsRead defaults to the number of variants given plus
	// RowsRejected.
	RowsRead, RowsRejected int
	// SkipGTINConflicts leaves out the variants whose GTINs other SKUs
	// hold (ImportResult.Skipped lists them) instead of refusing the
	// import with a *GTINConflictError: what a partial import wants.
	SkipGTINConflicts bool
}

// ImportResult says what an import changed.
type ImportResult struct {
	// Variants counts the variants stored: Created + Updated + Unchanged.
	Variants                    int
	Created, Updated, Unchanged int
	// ProductsChanged lists, sorted, the products whose version grew: new
	// or changed products, products with a new or changed variant, and
	// products a variant moved away from. Down-sync republishes them.
	ProductsChanged []string
	// SkippedVariants counts the variants left out for GTIN conflicts
	// (SkipGTINConflicts); Skipped lists their conflicts in import order,
	// the first maxConflicts of them.
	SkippedVariants int
	Skipped         []GTINConflict
	// ImportID is the id of the audit row.
	ImportID int64
}

// GTINConflict is a GTIN an import gives to SKU while another SKU, which
// the import does not mention, holds it.
type GTINConflict struct {
	GTIN   string // GTIN-14
	SKU    string // the SKU of the import claiming it
	HeldBy string // the SKU holding it
	// Line is where the import's variant came from (VariantSource); with
	// ImportCatalog, the variant's position in the slice, from 1.
	Line int
}

// GTINConflictError is returned by an import, with nothing stored, when it
// gives GTINs to SKUs while other SKUs that the import does not re-assign
// still hold them. errors.Is(err, ErrInvalid) holds.
type GTINConflictError struct {
	// Conflicts are in the order of the import's variants, the first
	// maxConflicts of them; Truncated says there are more.
	Conflicts []GTINConflict
	Truncated bool
}

func (e *GTINConflictError) Error() string {
	if len(e.Conflicts) == 0 {
		return "store: GTIN conflict"
	}
	c := e.Conflicts[0]
	msg := fmt.Sprintf("store: GTIN %s given to SKU %s is held by SKU %s, which this import does not re-assign", c.GTIN, c.SKU, c.HeldBy)
	switch n := len(e.Conflicts) - 1; {
	case e.Truncated:
		msg += fmt.Sprintf(" (and more than %d more conflicts)", n)
	case n > 0:
		msg += fmt.Sprintf(" (and %d more conflicts)", n)
	}
	return msg
}

// Unwrap makes errors.Is(err, ErrInvalid) hold.
func (e *GTINConflictError) Unwrap() error { return ErrInvalid }

// SKUs lists the SKUs of the import that are in conflict, once each, in
// import order.
func (e *GTINConflictError) SKUs() []string {
	var out []string
	seen := map[string]bool{}
	for _, c := range e.Conflicts {
		if !seen[c.SKU] {
			seen[c.SKU] = true
			out = append(out, c.SKU)
		}
	}
	return out
}

// CatalogImport is the audit row of one committed catalog import.
type CatalogImport struct {
	ID                                                    int64
	At                                                    time.Time
	Source, Mode                                          string
	RowsRead, RowsAccepted, RowsRejected, ProductsChanged int64
}

func modeName(m catalog.Mode) string {
	if m == catalog.Partial {
		return "partial"
	}
	return "all"
}

// ProductDocs returns the down-sync documents of the products asked for
// that exist, in the order asked (each once), variants ordered by SKU. A
// product and its variants are read from one snapshot.
func (s *Store) ProductDocs(ctx context.Context, ids []string) ([]downsync.ProductDoc, error) {
	out := []downsync.ProductDoc{}
	if len(ids) == 0 {
		return out, nil
	}
	tx, err := s.r.BeginTx(ctx, s.d.readTx())
	if err != nil {
		return nil, fmt.Errorf("store: begin read: %w", err)
	}
	defer tx.Rollback()
	return s.productDocs(ctx, tx, ids)
}

func (s *Store) productDocs(ctx context.Context, q querier, ids []string) ([]downsync.ProductDoc, error) {
	rs := newRowset(text("id"))
	seen := make(map[string]bool, len(ids))
	for _, id := range ids {
		if !seen[id] {
			seen[id] = true
			rs.add(id)
		}
	}
	docs := make(map[string]*downsync.ProductDoc, len(seen))
	err := s.queryRows(ctx, q, rs, "k", func(a *args, k string) string {
		return `SELECT p.product_id, p.name, p.brand, p.category, p.image_url, p.version, p.updated_ms FROM products p JOIN ` + k + ` ON p.product_id = k.id`
	}, func(rows *sql.Rows) error {
		d := &downsync.ProductDoc{Variants: []downsync.VariantDoc{}}
		if err := rows.Scan(&d.ID, &d.Name, &d.Brand, &d.Category, &d.ImageURL, &d.Version, &d.UpdatedMS); err != nil {
			return err
		}
		docs[d.ID] = d
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("store: products: %w", err)
	}
	err = s.queryRows(ctx, q, rs, "k", func(a *args, k string) string {
		return `SELECT v.product_id, v.sku, v.gtins, v.name, v.size, v.colour, v.price_minor, v.currency, v.image_url
FROM variants v JOIN ` + k + ` ON v.product_id = k.id ORDER BY v.product_id, v.sku`
	}, func(rows *sql.Rows) error {
		var id, gtins string
		var v downsync.VariantDoc
		if err := rows.Scan(&id, &v.SKU, &gtins, &v.Name, &v.Size, &v.Colour, &v.PriceMinor, &v.Currency, &v.ImageURL); err != nil {
			return err
		}
		if gtins != "" {
			v.GTINs = strings.Split(gtins, ",")
		}
		if d := docs[id]; d != nil {
			d.Variants = append(d.Variants, v)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("store: product variants: %w", err)
	}
	out := make([]downsync.ProductDoc, 0, len(docs))
	for i := 0; i < rs.len(); i++ {
		if d := docs[rs.strs[0][i]]; d != nil {
			out = append(out, *d)
		}
	}
	return out, nil
}

// ProductBySKU returns the product that has a variant sku, with all its
// variants; false when no variant has that SKU.
func (s *Store) ProductBySKU(ctx context.Context, sku string) (downsync.ProductDoc, bool, error) {
	tx, err := s.r.BeginTx(ctx, s.d.readTx())
	if err != nil {
		return downsync.ProductDoc{}, false, fmt.Errorf("store: begin read: %w", err)
	}
	defer tx.Rollback()
	var id string
	err = tx.QueryRowContext(ctx, "SELECT product_id FROM variants WHERE sku = $1", sku).Scan(&id)
	if err == sql.ErrNoRows {
		return downsync.ProductDoc{}, false, nil
	}
	if err != nil {
		return downsync.ProductDoc{}, false, fmt.Errorf("store: variant %s: %w", sku, err)
	}
	docs, err := s.productDocs(ctx, tx, []string{id})
	if err != nil || len(docs) == 0 {
		return downsync.ProductDoc{}, false, err
	}
	return docs[0], true, nil
}

// SKUByGTIN returns the SKU that holds a GTIN; false when none does. gtin
// is a GTIN-14; a valid GTIN-8, -12 or -13 is padded to one first.
func (s *Store) SKUByGTIN(ctx context.Context, gtin string) (string, bool, error) {
	if n, err := gs1.NormalizeGTIN(gtin); err == nil {
		gtin = n
	}
	var sku string
	err := s.r.QueryRowContext(ctx, "SELECT sku FROM variant_gtins WHERE gtin = $1", gtin).Scan(&sku)
	if err == sql.ErrNoRows {
		return "", false, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("store: GTIN %s: %w", gtin, err)
	}
	return sku, true, nil
}

// CatalogStats counts products and variants.
func (s *Store) CatalogStats(ctx context.Context) (products, variants int64, err error) {
	err = s.r.QueryRowContext(ctx, "SELECT (SELECT count(*) FROM products), (SELECT count(*) FROM variants)").Scan(&products, &variants)
	if err != nil {
		return 0, 0, fmt.Errorf("store: catalog stats: %w", err)
	}
	return products, variants, nil
}

// CatalogImports lists the latest committed imports, newest first; limit
// <= 0 means 20, at most 1000.
func (s *Store) CatalogImports(ctx context.Context, limit int) ([]CatalogImport, error) {
	if limit <= 0 || limit > 1000 {
		limit = 20
	}
	rows, err := s.r.QueryContext(ctx, `SELECT id, at_ms, source, mode, rows_read, rows_accepted, rows_rejected, products_changed
FROM catalog_imports ORDER BY id DESC LIMIT `+fmt.Sprint(limit))
	if err != nil {
		return nil, fmt.Errorf("store: catalog imports: %w", err)
	}
	defer rows.Close()
	out := []CatalogImport{}
	for rows.Next() {
		var c CatalogImport
		var at int64
		if err := rows.Scan(&c.ID, &at, &c.Source, &c.Mode, &c.RowsRead, &c.RowsAccepted, &c.RowsRejected, &c.ProductsChanged); err != nil {
			return nil, err
		}
		c.At = msTime(at)
		out = append(out, c)
	}
	return out, rows.Err()
}
