package store

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/omnisync/omnisync/cloud/internal/catalog"
	"github.com/omnisync/omnisync/shared/downsync"
	"github.com/omnisync/omnisync/shared/gs1"
)

// The catalog: products, their variants and the GTIN index.
//
// Guarantee: ImportCatalog is all-or-nothing. Whatever it is given commits
// in one transaction, or nothing does; which rows of a file are worth
// importing (Partial mode) is decided before, by catalog.Parse. A
// product's version grows, and its updated_ms moves to now, only when the
// product row or one of its variants actually changed, so importing the
// same file twice changes nothing and down-sync republishes nothing.
//
// Concurrency: on PostgreSQL a catalog import first takes a transaction
// advisory lock (catalogLockKey), so imports by several hub replicas run
// one after the other; nothing else writes products, variants or
// variant_gtins, and ApplyBatch takes none of those rows, so there is no
// lock order to respect (LOCKS.md levels 1-3 are untouched). On SQLite
// the single writer serialises imports as it does everything else.

// catalogLockKey is the pg_advisory_xact_lock key of catalog imports
// ("omnicata" in ASCII).
const catalogLockKey = 0x6f6d6e6963617461

// ImportOptions describe a catalog import for its audit row
// (catalog_imports); they do not change what is stored.
type ImportOptions struct {
	// Source names where the catalog came from: a file name, "api".
	Source string
	// Mode is how the file was parsed: all-or-nothing or partial.
	Mode catalog.Mode
	// RowsRead and RowsRejected are the parser's counts (Report.Rows and
	// Report.Invalid, plus rows the caller left out after a GTIN
	// conflict). RowsRead defaults to the number of variants given.
	RowsRead, RowsRejected int
}

// ImportResult says what ImportCatalog changed.
type ImportResult struct {
	// Variants counts the variants given: Created + Updated + Unchanged.
	Variants                    int
	Created, Updated, Unchanged int
	// ProductsChanged lists, sorted, the products whose version grew: new
	// or changed products, products with a new or changed variant, and
	// products a variant moved away from. Down-sync republishes them.
	ProductsChanged []string
	// ImportID is the id of the audit row.
	ImportID int64
}

// GTINConflict is a GTIN an import gives to SKU while another SKU, which
// the import does not mention, holds it.
type GTINConflict struct {
	GTIN   string // GTIN-14
	SKU    string // the SKU of the import claiming it
	HeldBy string // the SKU holding it
}

// GTINConflictError is returned by ImportCatalog, with nothing stored, when
// the import gives GTINs to SKUs while other SKUs that the import does not
// re-assign still hold them. errors.Is(err, ErrInvalid) holds. A caller
// that keeps the line of each variant can report the conflicts by line
// (Conflicts[i].SKU); a partial import may drop those variants and retry.
type GTINConflictError struct {
	// Conflicts are in the order of the import's variants.
	Conflicts []GTINConflict
}

func (e *GTINConflictError) Error() string {
	if len(e.Conflicts) == 0 {
		return "store: GTIN conflict"
	}
	c := e.Conflicts[0]
	msg := fmt.Sprintf("store: GTIN %s given to SKU %s is held by SKU %s, which this import does not re-assign", c.GTIN, c.SKU, c.HeldBy)
	if n := len(e.Conflicts) - 1; n > 0 {
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

// maxConflicts bounds the conflicts one GTINConflictError lists.
const maxConflicts = 10000

// ImportCatalog upserts variants and their products in one transaction, or
// stores nothing. Each variant must pass catalog.Variant.Validate, and no
// two may share a SKU or a GTIN (catalog.Parse guarantees both); otherwise
// the error wraps ErrInvalid.
//
// A variant's GTINs become its index rows; GTINs it no longer lists are
// removed from the index. A product's name, brand, category and image come
// from its first variant in variants. A GTIN held by a SKU that the import
// does not mention is a *GTINConflictError; a GTIN moved between two SKUs
// of the same import is fine. A variant moved to another product bumps
// both products. A catalog_imports row records the import.
//
// The statements are batched (a fixed number per 20,000 variants on
// SQLite, per import on PostgreSQL), so 100,000 variants import in
// seconds. Memory is proportional to the import.
func (s *Store) ImportCatalog(ctx context.Context, variants []catalog.Variant, opts ImportOptions) (ImportResult, error) {
	if err := checkImport(variants); err != nil {
		return ImportResult{}, err
	}
	var res ImportResult
	err := s.retry(ctx, "import catalog", func() error {
		var err error
		res, err = s.importOnce(ctx, variants, opts)
		return err
	})
	if err != nil {
		return ImportResult{}, err
	}
	return res, nil
}

// checkImport enforces the variant rules and the uniqueness of SKUs and
// GTINs within one import.
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

// storedVariant is a variants row.
type storedVariant struct {
	productID, name, brand, size, colour, currency, imageURL, category, gtins string
	price                                                                     int64
}

func storedOf(v catalog.Variant) storedVariant {
	return storedVariant{productID: v.ProductID, name: v.Name, brand: v.Brand, size: v.Size, colour: v.Colour,
		currency: v.Currency, imageURL: v.ImageURL, category: v.Category, gtins: strings.Join(v.GTINs, ","), price: v.PriceMinor}
}

// storedProduct is the part of a products row an import sets.
type storedProduct struct{ name, brand, category, imageURL string }

func (s *Store) importOnce(ctx context.Context, variants []catalog.Variant, opts ImportOptions) (ImportResult, error) {
	res := ImportResult{Variants: len(variants), ProductsChanged: []string{}}
	nowMS := s.now().UnixMilli()
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return res, fmt.Errorf("store: begin: %w", err)
	}
	defer tx.Rollback()
	if s.d.pg() {
		if _, err := tx.ExecContext(ctx, "SELECT pg_advisory_xact_lock($1)", int64(catalogLockKey)); err != nil {
			return res, fmt.Errorf("store: catalog lock: %w", err)
		}
	}

	// What is stored now for the import's SKUs, GTINs and products.
	inImport := make(map[string]int, len(variants)) // SKU -> index
	claimant := make(map[string]string, len(variants))
	skuRows := newRowset(text("sku"))
	gtinRows := newRowset(text("gtin"))
	for i, v := range variants {
		inImport[v.SKU] = i
		skuRows.add(v.SKU)
		for _, g := range v.GTINs {
			claimant[g] = v.SKU
			gtinRows.add(g)
		}
	}
	old := make(map[string]storedVariant, len(variants))
	err = s.queryRows(ctx, tx, skuRows, "k", func(a *args, k string) string {
		return `SELECT v.sku, v.product_id, v.name, v.brand, v.size, v.colour, v.price_minor, v.currency, v.image_url, v.category, v.gtins
FROM variants v JOIN ` + k + ` ON v.sku = k.sku`
	}, func(rows *sql.Rows) error {
		var sku string
		var o storedVariant
		if err := rows.Scan(&sku, &o.productID, &o.name, &o.brand, &o.size, &o.colour, &o.price, &o.currency, &o.imageURL, &o.category, &o.gtins); err != nil {
			return err
		}
		old[sku] = o
		return nil
	})
	if err != nil {
		return res, fmt.Errorf("store: load variants: %w", err)
	}
	var conflicts []GTINConflict
	err = s.queryRows(ctx, tx, gtinRows, "k", func(a *args, k string) string {
		return `SELECT g.gtin, g.sku FROM variant_gtins g JOIN ` + k + ` ON g.gtin = k.gtin`
	}, func(rows *sql.Rows) error {
		var gtin, holder string
		if err := rows.Scan(&gtin, &holder); err != nil {
			return err
		}
		if _, reassigned := inImport[holder]; !reassigned && holder != claimant[gtin] {
			conflicts = append(conflicts, GTINConflict{GTIN: gtin, SKU: claimant[gtin], HeldBy: holder})
		}
		return nil
	})
	if err != nil {
		return res, fmt.Errorf("store: load GTINs: %w", err)
	}
	if len(conflicts) > 0 {
		slices.SortFunc(conflicts, func(a, b GTINConflict) int {
			if c := inImport[a.SKU] - inImport[b.SKU]; c != 0 {
				return c
			}
			return strings.Compare(a.GTIN, b.GTIN)
		})
		return res, &GTINConflictError{Conflicts: conflicts[:min(len(conflicts), maxConflicts)]}
	}

	// The products of the import, each from its first variant.
	firstOf := map[string]int{}
	prodRows := newRowset(text("product_id"))
	for i, v := range variants {
		if _, ok := firstOf[v.ProductID]; !ok {
			firstOf[v.ProductID] = i
			prodRows.add(v.ProductID)
		}
	}
	oldProducts := make(map[string]storedProduct, len(firstOf))
	err = s.queryRows(ctx, tx, prodRows, "k", func(a *args, k string) string {
		return `SELECT p.product_id, p.name, p.brand, p.category, p.image_url FROM products p JOIN ` + k + ` ON p.product_id = k.product_id`
	}, func(rows *sql.Rows) error {
		var id string
		var p storedProduct
		if err := rows.Scan(&id, &p.name, &p.brand, &p.category, &p.imageURL); err != nil {
			return err
		}
		oldProducts[id] = p
		return nil
	})
	if err != nil {
		return res, fmt.Errorf("store: load products: %w", err)
	}

	// What changes.
	changed := map[string]bool{} // product id -> version must grow
	upserts := newRowset(text("sku"), text("product_id"), text("name"), text("brand"), text("size"), text("colour"),
		integer("price_minor"), text("currency"), text("image_url"), text("category"), text("gtins"))
	dropGTINs := newRowset(text("gtin"), text("sku"))
	addGTINs := newRowset(text("gtin"), text("sku"))
	for _, v := range variants {
		nv := storedOf(v)
		ov, existed := old[v.SKU]
		switch {
		case !existed:
			res.Created++
		case ov == nv:
			res.Unchanged++
			continue
		default:
			res.Updated++
			if ov.productID != v.ProductID {
				changed[ov.productID] = true
			}
		}
		changed[v.ProductID] = true
		upserts.add(v.SKU, nv.productID, nv.name, nv.brand, nv.size, nv.colour, nv.price, nv.currency, nv.imageURL, nv.category, nv.gtins)
		var had []string
		if existed && ov.gtins != "" {
			had = strings.Split(ov.gtins, ",")
		}
		for _, g := range had {
			if !slices.Contains(v.GTINs, g) {
				dropGTINs.add(g, v.SKU)
			}
		}
		for _, g := range v.GTINs {
			if !slices.Contains(had, g) {
				addGTINs.add(g, v.SKU)
			}
		}
	}
	prodUpserts := newRowset(text("product_id"), text("name"), text("brand"), text("category"), text("image_url"))
	for id, i := range firstOf {
		v := variants[i]
		np := storedProduct{name: v.Name, brand: v.Brand, category: v.Category, imageURL: v.ImageURL}
		if op, ok := oldProducts[id]; !ok || op != np {
			changed[id] = true
		}
		if changed[id] {
			prodUpserts.add(id, np.name, np.brand, np.category, np.imageURL)
		}
	}
	bumps := newRowset(text("product_id")) // products a variant left, not in the import
	for id := range changed {
		res.ProductsChanged = append(res.ProductsChanged, id)
		if _, ok := firstOf[id]; !ok {
			bumps.add(id)
		}
	}
	slices.Sort(res.ProductsChanged)

	// Writes: variants, then the GTIN index (drops before adds, so a GTIN
	// moving between two SKUs of the import lands on its new SKU), then
	// products.
	err = s.execRows(ctx, tx, upserts, "u", func(a *args, u string) string {
		return `INSERT INTO variants (sku, product_id, name, brand, size, colour, price_minor, currency, image_url, category, gtins, updated_ms)
SELECT sku, product_id, name, brand, size, colour, price_minor, currency, image_url, category, gtins, ` + a.add(nowMS) + ` FROM ` + u + ` WHERE true
ON CONFLICT (sku) DO UPDATE SET product_id = excluded.product_id, name = excluded.name, brand = excluded.brand, size = excluded.size,
	colour = excluded.colour, price_minor = excluded.price_minor, currency = excluded.currency, image_url = excluded.image_url,
	category = excluded.category, gtins = excluded.gtins, updated_ms = excluded.updated_ms`
	})
	if err != nil {
		return res, fmt.Errorf("store: write variants: %w", err)
	}
	err = s.execRows(ctx, tx, dropGTINs, "d", func(a *args, d string) string {
		return `DELETE FROM variant_gtins WHERE (gtin, sku) IN (SELECT gtin, sku FROM ` + d + `)`
	})
	if err != nil {
		return res, fmt.Errorf("store: drop GTINs: %w", err)
	}
	err = s.execRows(ctx, tx, addGTINs, "g", func(a *args, g string) string {
		return `INSERT INTO variant_gtins (gtin, sku) SELECT gtin, sku FROM ` + g + ` WHERE true
ON CONFLICT (gtin) DO UPDATE SET sku = excluded.sku`
	})
	if err != nil {
		return res, fmt.Errorf("store: write GTINs: %w", err)
	}
	err = s.execRows(ctx, tx, prodUpserts, "p", func(a *args, p string) string {
		return `INSERT INTO products (product_id, name, brand, category, image_url, version, updated_ms)
SELECT product_id, name, brand, category, image_url, 1, ` + a.add(nowMS) + ` FROM ` + p + ` WHERE true
ON CONFLICT (product_id) DO UPDATE SET name = excluded.name, brand = excluded.brand, category = excluded.category,
	image_url = excluded.image_url, version = products.version + 1, updated_ms = excluded.updated_ms`
	})
	if err != nil {
		return res, fmt.Errorf("store: write products: %w", err)
	}
	err = s.execRows(ctx, tx, bumps, "b", func(a *args, b string) string {
		return `UPDATE products SET version = version + 1, updated_ms = ` + a.add(nowMS) + `
WHERE product_id IN (SELECT product_id FROM ` + b + `)`
	})
	if err != nil {
		return res, fmt.Errorf("store: bump products: %w", err)
	}

	read := opts.RowsRead
	if read == 0 {
		read = len(variants) + opts.RowsRejected
	}
	err = tx.QueryRowContext(ctx, `INSERT INTO catalog_imports (at_ms, source, mode, rows_read, rows_accepted, rows_rejected, products_changed)
VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id`,
		nowMS, clean(opts.Source), modeName(opts.Mode), int64(read), int64(len(variants)), int64(opts.RowsRejected), int64(len(res.ProductsChanged))).Scan(&res.ImportID)
	if err != nil {
		return res, fmt.Errorf("store: record import: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return res, fmt.Errorf("store: commit import: %w", err)
	}
	s.log.Info("store: catalog imported", "source", opts.Source, "variants", res.Variants, "created", res.Created,
		"updated", res.Updated, "unchanged", res.Unchanged, "products_changed", len(res.ProductsChanged))
	return res, nil
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
