package api

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/omnisync/omnisync/cloud/internal/catalog"
	"github.com/omnisync/omnisync/cloud/internal/store"
)

// CatalogImportPath is where catalog files are posted.
const CatalogImportPath = "/v1/catalog/import"

// ImportTimeout bounds how long one catalog import may take to upload
// and answer.
const ImportTimeout = 30 * time.Minute

// LimitBodies bounds every request body to max bytes (as
// http.MaxBytesHandler does), except catalog imports, which the API bounds
// itself with Options.MaxImportBytes. The hub wraps its mux with it in
// place of http.MaxBytesHandler.
func LimitBodies(next http.Handler, max int64) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !(r.Method == http.MethodPost && r.URL.Path == CatalogImportPath) {
			r2 := *r
			r2.Body = http.MaxBytesReader(w, r.Body, max)
			r = &r2
		}
		next.ServeHTTP(w, r)
	})
}

// ImportRetryAfter is what an import refused because another one is
// running tells the client to wait (Retry-After).
const ImportRetryAfter = 30 * time.Second

// ImportAnswer is the answer of POST /v1/catalog/import: 200 when the
// import committed (Partial: with the rows it left out in Errors), 422
// when it was refused and nothing was stored (Error says why).
type ImportAnswer struct {
	Error  string `json:"error,omitempty"`
	Mode   string `json:"mode"`
	Format string `json:"format,omitempty"`
	// Rows counts the data rows read; Rejected the rows left out (bad rows,
	// and rows whose GTIN another SKU holds).
	Rows     int `json:"rows"`
	Rejected int `json:"rejected"`
	// Variants counts the variants stored: Created + Updated + Unchanged.
	Variants        int      `json:"variants"`
	Created         int      `json:"created"`
	Updated         int      `json:"updated"`
	Unchanged       int      `json:"unchanged"`
	ProductsChanged []string `json:"products_changed"`
	// Errors lists the rejected rows' problems by line, the first
	// catalog.DefaultMaxErrors of them; ErrorsDropped counts the rest.
	Errors        []catalog.RowError `json:"errors"`
	ErrorsDropped int                `json:"errors_dropped,omitempty"`
	ImportID      int64              `json:"import_id,omitempty"`
}

// addConflicts reports GTIN conflicts as row errors, keeping Errors in
// line order and within catalog.DefaultMaxErrors.
func (ans *ImportAnswer) addConflicts(cs []store.GTINConflict) {
	for _, c := range cs {
		ans.Errors = append(ans.Errors, catalog.RowError{Line: c.Line, Field: "gtin", Value: c.GTIN,
			Reason: fmt.Sprintf("GTIN already belongs to SKU %s, which this import does not re-assign (SKU %s)", c.HeldBy, c.SKU)})
	}
	slices.SortStableFunc(ans.Errors, func(x, y catalog.RowError) int { return x.Line - y.Line })
	if n := len(ans.Errors) - catalog.DefaultMaxErrors; n > 0 {
		ans.ErrorsDropped += n
		ans.Errors = ans.Errors[:catalog.DefaultMaxErrors]
	}
}

// catalogImport reads the body through catalog.ParseLines into a spool
// on disk, then imports the spool in one transaction:
//
//	POST /v1/catalog/import?format=csv|jsonl&mode=all|partial&source=NAME
//
// The format may instead come from Content-Type (text/csv,
// application/x-ndjson, application/jsonl) or, failing both, from the
// source name and the first bytes.
//
// One import at a time per hub cluster: while one runs, another is
// answered 409 with Retry-After before its body is read (a client that
// sent Expect: 100-continue never sends it). The body is read whole before
// the transaction begins, so a slow upload holds no database writer
// (SQLite has one) and a refused file (422, 413) costs the database
// nothing. Memory does not grow with the file: the parser's duplicate
// detection (tens of bytes per row) aside, rows go to the spool and from
// it to the database a chunk at a time.
func (a *API) catalogImport(w http.ResponseWriter, r *http.Request) {
	// A catalog of hundreds of MiB over a store's uplink outlasts the
	// server's general read and write timeouts; this route alone gets
	// ImportTimeout. (An error means the connection does not support
	// deadlines, as in tests through a recorder: nothing to extend.)
	rc := http.NewResponseController(w)
	_ = rc.SetReadDeadline(time.Now().Add(ImportTimeout))
	_ = rc.SetWriteDeadline(time.Now().Add(ImportTimeout))
	q := r.URL.Query()
	mode := catalog.AllOrNothing
	switch q.Get("mode") {
	case "", "all":
	case "partial":
		mode = catalog.Partial
	default:
		writeErr(w, http.StatusBadRequest, "mode", "must be all or partial")
		return
	}
	source := q.Get("source")
	if len(source) > 200 || strings.ContainsFunc(source, func(c rune) bool { return c < ' ' || c == 0x7f }) {
		writeErr(w, http.StatusBadRequest, "source", "must be at most 200 printable characters")
		return
	}
	if source == "" {
		source = "api"
	}
	if r.ContentLength > a.o.MaxImportBytes {
		a.refuseTooLarge(w, nil)
		return
	}
	lock, err := a.o.Store.LockCatalog(r.Context())
	if errors.Is(err, store.ErrImportRunning) {
		w.Header().Set("Retry-After", strconv.Itoa(int(ImportRetryAfter.Seconds())))
		writeErr(w, http.StatusConflict, "", "another catalog import is running; nothing was read, try again later")
		return
	}
	if err != nil {
		a.internal(w, r, err)
		return
	}
	defer lock.Unlock()

	body := http.MaxBytesReader(w, r.Body, a.o.MaxImportBytes)
	br := bufio.NewReaderSize(body, 64<<10)
	format, field, err := importFormat(q.Get("format"), r.Header.Get("Content-Type"), source, br)
	if err != nil {
		if tooLarge(err) {
			a.refuseTooLarge(w, err)
			return
		}
		writeErr(w, http.StatusBadRequest, field, err.Error())
		return
	}
	spool, err := catalog.NewSpool(a.o.SpoolDir)
	if err != nil {
		a.internal(w, r, err)
		return
	}
	defer spool.Close()
	readStart := time.Now()
	var spoolErr error // the hub's disk, not the client's file
	rep, perr := catalog.ParseLines(br, format, catalog.Options{Mode: mode}, func(v catalog.Variant, line int) error {
		spoolErr = spool.Add(v, line)
		return spoolErr
	})
	ans := ImportAnswer{Mode: modeName(mode), Format: format.String(), Rows: rep.Rows, Rejected: rep.Invalid,
		Errors: rep.Errors, ErrorsDropped: rep.ErrorsDropped, ProductsChanged: []string{}}
	if ans.Errors == nil {
		ans.Errors = []catalog.RowError{}
	}
	switch {
	case perr == nil:
	case tooLarge(perr):
		a.refuseTooLarge(w, perr)
		return
	case errors.Is(perr, catalog.ErrInvalidRows), errors.Is(perr, catalog.ErrHeader), errors.Is(perr, catalog.ErrUnknownColumn),
		errors.Is(perr, catalog.ErrRecordTooLong):
		ans.Error = refusal(perr, rep)
		writeJSON(w, http.StatusUnprocessableEntity, ans)
		return
	case spoolErr != nil, errors.Is(perr, catalog.ErrInvalidOption):
		a.internal(w, r, perr)
		return
	default:
		writeErr(w, http.StatusBadRequest, "", "reading the catalog: "+perr.Error())
		return
	}

	// Store. A partial import leaves out the rows whose GTINs other SKUs
	// hold; an all-or-nothing one is refused by them.
	start := time.Now()
	res, err := lock.Import(r.Context(), store.VariantSource(spool.Each), store.ImportOptions{
		Source: source, Mode: mode, RowsRead: rep.Rows, RowsRejected: rep.Invalid, SkipGTINConflicts: mode == catalog.Partial})
	// The next import may start while this answer is written (a large one
	// takes a while to reach a slow client).
	lock.Unlock()
	var ce *store.GTINConflictError
	switch {
	case errors.As(err, &ce):
		skus := len(ce.SKUs())
		ans.Rejected += skus
		ans.addConflicts(ce.Conflicts)
		more := ""
		if ce.Truncated {
			more = "more than "
		}
		ans.Error = fmt.Sprintf("%s%d rows give GTINs that other SKUs hold; nothing was imported", more, skus)
		writeJSON(w, http.StatusUnprocessableEntity, ans)
		return
	case errors.Is(err, store.ErrInvalid):
		ans.Error = err.Error()
		writeJSON(w, http.StatusUnprocessableEntity, ans)
		return
	case err != nil:
		a.internal(w, r, err)
		return
	}
	ans.Rejected += res.SkippedVariants
	ans.addConflicts(res.Skipped)
	ans.Variants, ans.Created, ans.Updated, ans.Unchanged = res.Variants, res.Created, res.Updated, res.Unchanged
	ans.ProductsChanged, ans.ImportID = res.ProductsChanged, res.ImportID
	a.log.Info("catalog imported", "source", source, "mode", ans.Mode, "rows", ans.Rows, "variants", ans.Variants,
		"rejected", ans.Rejected, "products_changed", len(ans.ProductsChanged), "read_time", start.Sub(readStart),
		"spool_bytes", spool.Size(), "store_time", time.Since(start))
	if len(res.ProductsChanged) > 0 && a.o.OnCatalogChange != nil {
		a.o.OnCatalogChange(slices.Clone(res.ProductsChanged))
	}
	writeJSON(w, http.StatusOK, ans)
}

func modeName(m catalog.Mode) string {
	if m == catalog.Partial {
		return "partial"
	}
	return "all"
}

func refusal(err error, rep catalog.Report) string {
	if errors.Is(err, catalog.ErrInvalidRows) {
		return fmt.Sprintf("%d of %d rows are invalid; nothing was imported (mode=partial imports the rest)", rep.Invalid, rep.Rows)
	}
	return strings.TrimPrefix(err.Error(), "catalog: ") + "; nothing was imported"
}

func tooLarge(err error) bool {
	var mbe *http.MaxBytesError
	return errors.As(err, &mbe)
}

// refuseTooLarge answers 413 with the limit that was hit: ours, or one an
// outer handler set (the hub's general limit, when it is not LimitBodies).
func (a *API) refuseTooLarge(w http.ResponseWriter, err error) {
	limit := a.o.MaxImportBytes
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		limit = mbe.Limit
	}
	writeErr(w, http.StatusRequestEntityTooLarge, "", fmt.Sprintf("catalog larger than %d bytes; nothing was imported", limit))
}

// importFormat picks the format: the format parameter, else Content-Type,
// else the source's extension and the first bytes. It returns the
// offending field on error.
func importFormat(param, contentType, source string, br *bufio.Reader) (catalog.Format, string, error) {
	if param != "" {
		f, err := catalog.ParseFormat(param)
		if err != nil {
			return 0, "format", errors.New("format must be csv or jsonl")
		}
		return f, "", nil
	}
	mt, _, _ := mime.ParseMediaType(contentType)
	switch mt {
	case "text/csv":
		return catalog.CSV, "", nil
	case "application/x-ndjson", "application/jsonl", "application/x-jsonlines", "application/jsonlines", "application/json-seq":
		return catalog.JSONL, "", nil
	}
	head, err := br.Peek(512)
	if err != nil && err != io.EOF && err != bufio.ErrBufferFull {
		return 0, "", err
	}
	name := ""
	if strings.Contains(source, ".") {
		name = path.Base(source)
	}
	f, err := catalog.DetectFormat(name, head)
	if err != nil {
		return 0, "format", errors.New("cannot tell the format: pass format=csv or format=jsonl, or Content-Type text/csv or application/x-ndjson")
	}
	return f, "", nil
}

// CatalogStats is the answer of GET /v1/catalog.
type CatalogStats struct {
	Products int64           `json:"products"`
	Variants int64           `json:"variants"`
	Imports  []CatalogImport `json:"imports"`
}

// CatalogImport is one committed import in GET /v1/catalog.
type CatalogImport struct {
	ID              int64     `json:"id"`
	At              time.Time `json:"at"`
	Source          string    `json:"source"`
	Mode            string    `json:"mode"`
	RowsRead        int64     `json:"rows_read"`
	RowsAccepted    int64     `json:"rows_accepted"`
	RowsRejected    int64     `json:"rows_rejected"`
	ProductsChanged int64     `json:"products_changed"`
}

func (a *API) catalogStats(w http.ResponseWriter, r *http.Request) {
	limit, ok := limitParam(w, r, 10)
	if !ok {
		return
	}
	var out CatalogStats
	var err error
	if out.Products, out.Variants, err = a.o.Store.CatalogStats(r.Context()); err != nil {
		a.internal(w, r, err)
		return
	}
	imps, err := a.o.Store.CatalogImports(r.Context(), limit)
	if err != nil {
		a.internal(w, r, err)
		return
	}
	out.Imports = make([]CatalogImport, 0, len(imps))
	for _, c := range imps {
		out.Imports = append(out.Imports, CatalogImport{ID: c.ID, At: c.At.UTC(), Source: c.Source, Mode: c.Mode, RowsRead: c.RowsRead,
			RowsAccepted: c.RowsAccepted, RowsRejected: c.RowsRejected, ProductsChanged: c.ProductsChanged})
	}
	writeJSON(w, http.StatusOK, out)
}
