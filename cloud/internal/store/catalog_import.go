package store

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/omnisync/omnisync/cloud/internal/catalog"
)

// ErrImportRunning is returned (wrapped) by LockCatalog when another
// catalog import holds the lock, on this hub or, on PostgreSQL, on another
// replica. Nothing has been done; the caller may try again later.
var ErrImportRunning = errors.New("store: another catalog import is running")

// VariantSource hands an import's variants to each in file order, with
// the line each came from, and returns the first error each returns. An
// import may call it more than once (a transaction retried after a
// serialization failure reads the variants again): every call must hand
// out the same variants from the first.
type VariantSource func(each func(v catalog.Variant, line int) error) error

// Variants is the VariantSource of a slice; a variant's line is its
// position, from 1.
func Variants(vs []catalog.Variant) VariantSource {
	return func(each func(catalog.Variant, int) error) error {
		for i, v := range vs {
			if err := each(v, i+1); err != nil {
				return err
			}
		}
		return nil
	}
}

// maxConflicts bounds the conflicts one import lists.
const maxConflicts = 10000

// stageChunk is how many variants go to the staging tables at a time:
// what an import holds in memory.
const stageChunk = 2048

// CatalogLock is the right to run catalog imports, taken with LockCatalog
// and given back with Unlock. While it is held, other LockCatalog calls
// (on this hub, and on PostgreSQL on every replica) fail with
// ErrImportRunning, and ImportCatalog calls wait.
type CatalogLock struct {
	s *Store
	// conn is the PostgreSQL session holding the advisory lock; imports
	// run their transaction on it. nil on SQLite.
	conn *sql.Conn
	once sync.Once
}

// LockCatalog takes the catalog import lock without waiting: it fails with
// ErrImportRunning when another import holds it. On PostgreSQL the lock is
// a session advisory lock held by one pooled connection until Unlock
// (idle, not in a transaction, while the caller reads an upload), so a
// replica that dies releases it with its connection.
func (s *Store) LockCatalog(ctx context.Context) (*CatalogLock, error) {
	if !s.importing.CompareAndSwap(false, true) {
		return nil, fmt.Errorf("%w on this hub", ErrImportRunning)
	}
	l := &CatalogLock{s: s}
	if !s.d.pg() {
		return l, nil
	}
	conn, err := s.w.Conn(ctx)
	if err != nil {
		s.importing.Store(false)
		return nil, fmt.Errorf("store: catalog lock: %w", err)
	}
	var ok bool
	if err := conn.QueryRowContext(ctx, "SELECT pg_try_advisory_lock($1, hashtext(current_schema()))", catalogLockClass).Scan(&ok); err != nil {
		discard(conn)
		s.importing.Store(false)
		return nil, fmt.Errorf("store: catalog lock: %w", err)
	}
	if !ok {
		_ = conn.Close()
		s.importing.Store(false)
		return nil, fmt.Errorf("%w on another hub replica", ErrImportRunning)
	}
	l.conn = conn
	return l, nil
}

// ImportRunning reports whether this process holds the catalog import
// lock (an import of another replica does not show here). It takes
// nothing: a caller that only wants to know must not make a starting
// import fail with ErrImportRunning, as a probe through LockCatalog could.
func (s *Store) ImportRunning() bool { return s.importing.Load() }

// Unlock gives the lock back; later calls do nothing.
func (l *CatalogLock) Unlock() {
	l.once.Do(func() {
		if l.conn != nil {
			// Not the caller's context: it may be over, and the session
			// must not go back to the pool still holding the lock.
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			var ok bool
			err := l.conn.QueryRowContext(ctx, "SELECT pg_advisory_unlock($1, hashtext(current_schema()))", catalogLockClass).Scan(&ok)
			cancel()
			if err != nil || !ok {
				l.s.log.Warn("store: catalog unlock failed, closing the session instead", "err", err)
				discard(l.conn)
			} else {
				_ = l.conn.Close()
			}
		}
		l.s.importing.Store(false)
	})
}

// discard closes a pooled connection for good instead of returning it to
// the pool: ending the session is what releases its advisory locks.
func discard(conn *sql.Conn) {
	_ = conn.Raw(func(any) error { return driver.ErrBadConn })
	_ = conn.Close()
}

// Import stores the variants src hands out in one transaction, or
// nothing; see ImportCatalog for the rules. The variants are checked as
// they stream in: one failing catalog.Variant.Validate, or repeating a SKU
// or a GTIN of the import, is an error wrapping ErrInvalid.
func (l *CatalogLock) Import(ctx context.Context, src VariantSource, opts ImportOptions) (ImportResult, error) {
	return l.s.importCatalog(ctx, l.conn, src, opts)
}

// ImportCatalog upserts variants and their products in one transaction, or
// stores nothing, waiting for an import that holds the lock. Each variant
// must pass catalog.Variant.Validate, and no two may share a SKU or a GTIN
// (catalog.Parse guarantees both); otherwise the error wraps ErrInvalid.
//
// A variant's GTINs become its index rows; GTINs it no longer lists are
// removed from the index. A product's name, brand, category and image come
// from its first variant. A GTIN held by a SKU that the import does not
// mention is a *GTINConflictError (or, with SkipGTINConflicts, leaves the
// variant out); a GTIN moved between two SKUs of the same import is fine.
// A variant moved to another product bumps both products. A
// catalog_imports row records the import.
func (s *Store) ImportCatalog(ctx context.Context, variants []catalog.Variant, opts ImportOptions) (ImportResult, error) {
	if err := checkImport(variants); err != nil {
		return ImportResult{}, err
	}
	return s.importCatalog(ctx, nil, Variants(variants), opts)
}

func (s *Store) importCatalog(ctx context.Context, conn *sql.Conn, src VariantSource, opts ImportOptions) (ImportResult, error) {
	var res ImportResult
	err := s.retry(ctx, "import catalog", func() error {
		var err error
		res, err = s.importOnce(ctx, conn, src, opts)
		return err
	})
	if err != nil {
		return ImportResult{}, err
	}
	return res, nil
}

// checkImport enforces the variant rules and the uniqueness of SKUs and
// GTINs within one import, with messages naming both variants.
func checkImport(variants []catalog.Variant) error {
	skus := make(map[string]struct{}, len(variants))
	gtins := make(map[string]string, len(variants))
	for i, v := range variants {
		if errs := v.Validate(); len(errs) > 0 {
			return fmt.Errorf("%w: variant %d (SKU %q): %v", ErrInvalid, i+1, v.SKU, errs[0])
		}
		if _, dup := skus[v.SKU]; dup {
			return fmt.Errorf("%w: SKU %s given twice", ErrInvalid, v.SKU)
		}
		skus[v.SKU] = struct{}{}
		for _, g := range v.GTINs {
			if other, dup := gtins[g]; dup {
				return fmt.Errorf("%w: GTIN %s given to SKU %s and SKU %s", ErrInvalid, g, other, v.SKU)
			}
			gtins[g] = v.SKU
		}
	}
	return nil
}

// The staging tables of an import, in its transaction (dropped at commit
// or rollback). import_variants holds the variants in import order (pos)
// with what is stored for their SKU now: state 0 unchanged, 1 new, 2
// changed, and the product the variant belonged to (old_product).
// import_gtins indexes their GTINs; import_products holds each product's
// fields from its first variant; import_changed the products whose
// version grows.
var stagingTables = []string{
	`import_variants (
	pos         {{serial}},
	line        BIGINT NOT NULL,
	sku         {{key}} NOT NULL UNIQUE,
	product_id  {{key}} NOT NULL,
	name        TEXT NOT NULL,
	brand       TEXT NOT NULL,
	size        TEXT NOT NULL,
	colour      TEXT NOT NULL,
	price_minor BIGINT NOT NULL,
	currency    TEXT NOT NULL,
	image_url   TEXT NOT NULL,
	category    TEXT NOT NULL,
	gtins       TEXT NOT NULL,
	state       INTEGER NOT NULL,
	old_product {{key}} NOT NULL
)`,
	`import_gtins (
	gtin {{key}} NOT NULL PRIMARY KEY,
	sku  {{key}} NOT NULL
)`,
	`import_products (
	product_id {{key}} NOT NULL PRIMARY KEY,
	name       TEXT NOT NULL,
	brand      TEXT NOT NULL,
	category   TEXT NOT NULL,
	image_url  TEXT NOT NULL
)`,
	`import_changed (
	product_id {{key}} NOT NULL PRIMARY KEY
)`,
}

const (
	stateUnchanged = 0
	stateNew       = 1
	stateChanged   = 2
)

func (s *Store) createStaging(ctx context.Context, tx *sql.Tx) error {
	for _, t := range stagingTables {
		name, _, _ := strings.Cut(t, " ")
		stmt := "CREATE TEMP TABLE " + s.d.ddl(t) + " ON COMMIT DROP"
		if !s.d.pg() {
			// SQLite keeps temporary tables for the connection's life:
			// drop any a crashed import left, and this one's before commit.
			if _, err := tx.ExecContext(ctx, "DROP TABLE IF EXISTS temp."+name); err != nil {
				return err
			}
			stmt = "CREATE TEMP TABLE " + s.d.ddl(t)
		}
		if _, err := tx.ExecContext(ctx, stmt); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
	}
	return nil
}

func (s *Store) dropStaging(ctx context.Context, tx *sql.Tx) error {
	if s.d.pg() {
		return nil
	}
	for _, t := range stagingTables {
		name, _, _ := strings.Cut(t, " ")
		if _, err := tx.ExecContext(ctx, "DROP TABLE temp."+name); err != nil {
			return err
		}
	}
	return nil
}

// stager sends variants to the staging tables a chunk at a time.
type stager struct {
	s        *Store
	tx       *sql.Tx
	variants *rowset
	gtins    *rowset
	n        int // variants staged so far
}

func newStagingRows() (*rowset, *rowset) {
	return newRowset(integer("pos"), integer("line"), text("sku"), text("product_id"), text("name"), text("brand"), text("size"),
			text("colour"), integer("price_minor"), text("currency"), text("image_url"), text("category"), text("gtins")),
		newRowset(text("gtin"), text("sku"))
}

func (st *stager) add(ctx context.Context, v catalog.Variant, line int) error {
	if errs := v.Validate(); len(errs) > 0 {
		return fmt.Errorf("%w: line %d (SKU %q): %v", ErrInvalid, line, v.SKU, errs[0])
	}
	st.n++
	st.variants.add(int64(st.n), int64(line), v.SKU, v.ProductID, v.Name, v.Brand, v.Size, v.Colour, v.PriceMinor,
		v.Currency, v.ImageURL, v.Category, strings.Join(v.GTINs, ","))
	for _, g := range v.GTINs {
		st.gtins.add(g, v.SKU)
	}
	if st.variants.len() >= stageChunk {
		return st.flush(ctx)
	}
	return nil
}

// flush stages the buffered variants with what is stored for their SKUs,
// and their GTINs. A SKU or GTIN already staged is refused.
func (st *stager) flush(ctx context.Context) error {
	if st.variants.len() == 0 {
		return nil
	}
	s := st.s
	n, err := s.execRowsN(ctx, st.tx, st.variants, "u", func(a *args, u string) string {
		return `INSERT INTO import_variants (pos, line, sku, product_id, name, brand, size, colour, price_minor, currency, image_url, category, gtins, state, old_product)
SELECT u.pos, u.line, u.sku, u.product_id, u.name, u.brand, u.size, u.colour, u.price_minor, u.currency, u.image_url, u.category, u.gtins,
	CASE WHEN v.sku IS NULL THEN ` + fmt.Sprint(stateNew) + `
	WHEN v.product_id = u.product_id AND v.name = u.name AND v.brand = u.brand AND v.size = u.size AND v.colour = u.colour
		AND v.price_minor = u.price_minor AND v.currency = u.currency AND v.image_url = u.image_url AND v.category = u.category
		AND v.gtins = u.gtins THEN ` + fmt.Sprint(stateUnchanged) + `
	ELSE ` + fmt.Sprint(stateChanged) + ` END,
	COALESCE(v.product_id, '')
FROM ` + u + ` LEFT JOIN variants v ON v.sku = u.sku WHERE true
ON CONFLICT (sku) DO NOTHING`
	})
	if err != nil {
		return fmt.Errorf("store: stage variants: %w", err)
	}
	if n != int64(st.variants.len()) {
		return st.duplicate(ctx, st.variants, "sku")
	}
	n, err = s.execRowsN(ctx, st.tx, st.gtins, "g", func(a *args, g string) string {
		return `INSERT INTO import_gtins (gtin, sku) SELECT gtin, sku FROM ` + g + ` WHERE true ON CONFLICT (gtin) DO NOTHING`
	})
	if err != nil {
		return fmt.Errorf("store: stage GTINs: %w", err)
	}
	if n != int64(st.gtins.len()) {
		return st.duplicate(ctx, st.gtins, "gtin")
	}
	st.variants, st.gtins = newStagingRows()
	return nil
}

// duplicate finds, for the error message, a SKU (what "sku") or a GTIN
// (what "gtin") of the chunk rs that another variant of the import has.
func (st *stager) duplicate(ctx context.Context, rs *rowset, what string) error {
	var val string
	var first, second int
	err := st.s.queryRows(ctx, st.tx, rs, "k", func(_ *args, k string) string {
		if what == "sku" {
			return `SELECT k.sku, x.line, k.line FROM ` + k + ` JOIN import_variants x ON x.sku = k.sku WHERE x.pos <> k.pos`
		}
		return `SELECT k.gtin, (SELECT line FROM import_variants WHERE sku = x.sku), (SELECT line FROM import_variants WHERE sku = k.sku)
FROM ` + k + ` JOIN import_gtins x ON x.gtin = k.gtin WHERE x.sku <> k.sku`
	}, func(rows *sql.Rows) error {
		if val == "" {
			return rows.Scan(&val, &first, &second)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("store: staging: %w", err)
	}
	return fmt.Errorf("%w: %s %s given twice (lines %d and %d)", ErrInvalid, strings.ToUpper(what), val, first, second)
}

func (s *Store) importOnce(ctx context.Context, conn *sql.Conn, src VariantSource, opts ImportOptions) (ImportResult, error) {
	res := ImportResult{ProductsChanged: []string{}}
	nowMS := s.now().UnixMilli()
	var tx *sql.Tx
	var err error
	if conn != nil {
		tx, err = conn.BeginTx(ctx, nil) // holds the session advisory lock
	} else {
		tx, err = s.w.BeginTx(ctx, nil)
	}
	if err != nil {
		return res, fmt.Errorf("store: begin: %w", err)
	}
	defer tx.Rollback()
	if s.d.pg() && conn == nil {
		if _, err := tx.ExecContext(ctx, "SELECT pg_advisory_xact_lock($1, hashtext(current_schema()))", catalogLockClass); err != nil {
			return res, fmt.Errorf("store: catalog lock: %w", err)
		}
	}
	if err := s.createStaging(ctx, tx); err != nil {
		return res, fmt.Errorf("store: staging tables: %w", err)
	}

	// Stage every variant, with what is stored for its SKU.
	st := &stager{s: s, tx: tx}
	st.variants, st.gtins = newStagingRows()
	err = src(func(v catalog.Variant, line int) error { return st.add(ctx, v, line) })
	if err == nil {
		err = st.flush(ctx)
	}
	if err != nil {
		return res, err
	}
	if s.d.pg() {
		// Temporary tables are never analysed on their own, and the
		// statements below join them with the catalog.
		if _, err := tx.ExecContext(ctx, "ANALYZE import_variants, import_gtins"); err != nil {
			return res, fmt.Errorf("store: analyse staging: %w", err)
		}
	}

	if err := s.resolveConflicts(ctx, tx, opts.SkipGTINConflicts, &res); err != nil {
		return res, err
	}

	// What changes: counts, each product from its first variant, and the
	// products whose version must grow.
	err = tx.QueryRowContext(ctx, `SELECT count(*),
	COALESCE(sum(CASE WHEN state = `+fmt.Sprint(stateNew)+` THEN 1 ELSE 0 END), 0),
	COALESCE(sum(CASE WHEN state = `+fmt.Sprint(stateChanged)+` THEN 1 ELSE 0 END), 0)
FROM import_variants`).Scan(&res.Variants, &res.Created, &res.Updated)
	if err != nil {
		return res, fmt.Errorf("store: count staged variants: %w", err)
	}
	res.Unchanged = res.Variants - res.Created - res.Updated
	steps := []struct{ what, stmt string }{
		{"stage products", `INSERT INTO import_products (product_id, name, brand, category, image_url)
SELECT product_id, name, brand, category, image_url FROM import_variants WHERE true ORDER BY pos
ON CONFLICT (product_id) DO NOTHING`},
		{"find changed products", `INSERT INTO import_changed (product_id)
SELECT product_id FROM import_variants WHERE state <> ` + fmt.Sprint(stateUnchanged) + `
UNION SELECT old_product FROM import_variants WHERE state = ` + fmt.Sprint(stateChanged) + ` AND old_product <> product_id
UNION SELECT p.product_id FROM import_products p LEFT JOIN products o ON o.product_id = p.product_id
	WHERE o.product_id IS NULL OR o.name <> p.name OR o.brand <> p.brand OR o.category <> p.category OR o.image_url <> p.image_url`},

		// Writes: variants, then the GTIN index (drops before adds, so a
		// GTIN moving between two SKUs of the import lands on its new
		// SKU), then products.
		{"write variants", `INSERT INTO variants (sku, product_id, name, brand, size, colour, price_minor, currency, image_url, category, gtins, updated_ms)
SELECT sku, product_id, name, brand, size, colour, price_minor, currency, image_url, category, gtins, $1
FROM import_variants WHERE state <> ` + fmt.Sprint(stateUnchanged) + `
ON CONFLICT (sku) DO UPDATE SET product_id = excluded.product_id, name = excluded.name, brand = excluded.brand, size = excluded.size,
	colour = excluded.colour, price_minor = excluded.price_minor, currency = excluded.currency, image_url = excluded.image_url,
	category = excluded.category, gtins = excluded.gtins, updated_ms = excluded.updated_ms`},
		{"drop GTINs", `DELETE FROM variant_gtins
WHERE sku IN (SELECT sku FROM import_variants WHERE state = ` + fmt.Sprint(stateChanged) + `)
	AND NOT EXISTS (SELECT 1 FROM import_gtins ig WHERE ig.gtin = variant_gtins.gtin AND ig.sku = variant_gtins.sku)`},
		{"write GTINs", `INSERT INTO variant_gtins (gtin, sku)
SELECT ig.gtin, ig.sku FROM import_gtins ig JOIN import_variants iv ON iv.sku = ig.sku
WHERE iv.state <> ` + fmt.Sprint(stateUnchanged) + ` AND NOT EXISTS (SELECT 1 FROM variant_gtins g WHERE g.gtin = ig.gtin AND g.sku = ig.sku)
ON CONFLICT (gtin) DO UPDATE SET sku = excluded.sku`},
		{"write products", `INSERT INTO products (product_id, name, brand, category, image_url, version, updated_ms)
SELECT p.product_id, p.name, p.brand, p.category, p.image_url, 1, $1 FROM import_products p JOIN import_changed c ON c.product_id = p.product_id WHERE true
ON CONFLICT (product_id) DO UPDATE SET name = excluded.name, brand = excluded.brand, category = excluded.category,
	image_url = excluded.image_url, version = products.version + 1, updated_ms = excluded.updated_ms`},
		// Products a variant left that the import does not list.
		{"bump products", `UPDATE products SET version = version + 1, updated_ms = $1
WHERE product_id IN (SELECT c.product_id FROM import_changed c WHERE NOT EXISTS (SELECT 1 FROM import_products p WHERE p.product_id = c.product_id))`},
	}
	for _, step := range steps {
		var args []any
		if strings.Contains(step.stmt, "$1") {
			args = append(args, nowMS)
		}
		if _, err := tx.ExecContext(ctx, step.stmt, args...); err != nil {
			return res, fmt.Errorf("store: %s: %w", step.what, err)
		}
	}
	rows, err := tx.QueryContext(ctx, "SELECT product_id FROM import_changed ORDER BY product_id")
	if err != nil {
		return res, fmt.Errorf("store: changed products: %w", err)
	}
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return res, err
		}
		res.ProductsChanged = append(res.ProductsChanged, id)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return res, fmt.Errorf("store: changed products: %w", err)
	}
	if err := s.indexSearch(ctx, tx, true); err != nil {
		return res, err
	}
	if err := s.dropStaging(ctx, tx); err != nil {
		return res, fmt.Errorf("store: drop staging tables: %w", err)
	}

	rejected := opts.RowsRejected + res.SkippedVariants
	read := opts.RowsRead
	if read == 0 {
		read = res.Variants + rejected
	}
	err = tx.QueryRowContext(ctx, `INSERT INTO catalog_imports (at_ms, source, mode, rows_read, rows_accepted, rows_rejected, products_changed)
VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id`,
		nowMS, clean(opts.Source), modeName(opts.Mode), int64(read), int64(res.Variants), int64(rejected), int64(len(res.ProductsChanged))).Scan(&res.ImportID)
	if err != nil {
		return res, fmt.Errorf("store: record import: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return res, fmt.Errorf("store: commit import: %w", err)
	}
	s.log.Info("store: catalog imported", "source", opts.Source, "variants", res.Variants, "created", res.Created,
		"updated", res.Updated, "unchanged", res.Unchanged, "skipped", res.SkippedVariants, "products_changed", len(res.ProductsChanged))
	return res, nil
}

// resolveConflicts finds the staged variants that claim GTINs held by SKUs
// the import does not mention. Without skip they refuse the import; with
// it they leave the staging tables, and again until none is left (leaving
// a variant out can only leave a GTIN with its old holder, which may make
// another variant of the import a conflict: a few rounds at most).
func (s *Store) resolveConflicts(ctx context.Context, tx *sql.Tx, skip bool, res *ImportResult) error {
	for {
		var found []GTINConflict
		rows, err := tx.QueryContext(ctx, `SELECT ig.gtin, ig.sku, g.sku, iv.line
FROM import_gtins ig
JOIN variant_gtins g ON g.gtin = ig.gtin
JOIN import_variants iv ON iv.sku = ig.sku
WHERE g.sku <> ig.sku AND NOT EXISTS (SELECT 1 FROM import_variants h WHERE h.sku = g.sku)
ORDER BY iv.pos, ig.gtin LIMIT `+fmt.Sprint(maxConflicts+1))
		if err != nil {
			return fmt.Errorf("store: find GTIN conflicts: %w", err)
		}
		for rows.Next() {
			var c GTINConflict
			if err := rows.Scan(&c.GTIN, &c.SKU, &c.HeldBy, &c.Line); err != nil {
				rows.Close()
				return err
			}
			found = append(found, c)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return fmt.Errorf("store: find GTIN conflicts: %w", err)
		}
		if len(found) == 0 {
			return nil
		}
		if !skip {
			return &GTINConflictError{Conflicts: found[:min(len(found), maxConflicts)], Truncated: len(found) > maxConflicts}
		}
		ce := GTINConflictError{Conflicts: found}
		out := newRowset(text("sku"))
		for _, sku := range ce.SKUs() {
			out.add(sku)
		}
		res.SkippedVariants += out.len()
		res.Skipped = append(res.Skipped, found[:min(len(found), maxConflicts-len(res.Skipped))]...)
		for _, table := range []string{"import_gtins", "import_variants"} {
			err := s.execRows(ctx, tx, out, "k", func(_ *args, k string) string {
				return `DELETE FROM ` + table + ` WHERE sku IN (SELECT sku FROM ` + k + `)`
			})
			if err != nil {
				return fmt.Errorf("store: leave out conflicting variants: %w", err)
			}
		}
	}
}
