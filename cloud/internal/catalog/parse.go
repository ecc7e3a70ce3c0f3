package catalog

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"strings"
	"unicode/utf8"
)

// Errors returned by Parse, ParseFormat and DetectFormat. Each is wrapped
// with detail; branch with errors.Is.
var (
	// ErrUnknownFormat: the format is neither CSV nor JSONL, or cannot be
	// told from the file name and first bytes.
	ErrUnknownFormat = errors.New("catalog: unknown file format")
	// ErrInvalidOption: an Options field is out of range.
	ErrInvalidOption = errors.New("catalog: invalid option")
	// ErrHeader: the CSV header row is missing, has an unnamed or repeated
	// column, or lacks a required column. Nothing has been imported.
	ErrHeader = errors.New("catalog: bad CSV header")
	// ErrUnknownColumn: the CSV header names a column this format does not
	// know (a typo would otherwise drop data). Nothing has been imported.
	ErrUnknownColumn = errors.New("catalog: unknown CSV column")
	// ErrRecordTooLong: a CSV record is longer than Options.MaxLineBytes,
	// most likely because of a quote that is never closed; the rest of the
	// file cannot be split into records, so Parse stops. Nothing has been
	// imported.
	ErrRecordTooLong = errors.New("catalog: CSV record too long")
	// ErrInvalidRows: in AllOrNothing mode, at least one row was rejected;
	// the Report lists them and the caller must discard what it staged.
	ErrInvalidRows = errors.New("catalog: invalid rows")
)

// Format is a catalog file format.
type Format int

// The formats Parse reads.
const (
	// CSV: a header row naming the columns, then one variant per record.
	CSV Format = iota + 1
	// JSONL: one JSON object per line (JSON Lines, NDJSON).
	JSONL
)

func (f Format) String() string {
	switch f {
	case CSV:
		return "csv"
	case JSONL:
		return "jsonl"
	}
	return fmt.Sprintf("Format(%d)", int(f))
}

// ParseFormat reads a format name as given on a command line: "csv",
// "jsonl" or "ndjson" (any case).
func ParseFormat(s string) (Format, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "csv":
		return CSV, nil
	case "jsonl", "ndjson":
		return JSONL, nil
	}
	return 0, fmt.Errorf("%w: %q (want csv or jsonl)", ErrUnknownFormat, s)
}

// DetectFormat tells the format from a file name's extension (.csv, .jsonl,
// .ndjson, .json) or, failing that, from the first bytes of the file: an
// object means JSONL, a first line with commas naming an sku column means CSV.
func DetectFormat(name string, firstBytes []byte) (Format, error) {
	switch strings.ToLower(filepath.Ext(name)) {
	case ".csv":
		return CSV, nil
	case ".jsonl", ".ndjson", ".json":
		return JSONL, nil
	}
	b := bytes.TrimLeft(bytes.TrimPrefix(firstBytes, utf8BOM), " \t\r\n")
	if len(b) > 0 && b[0] == '{' {
		return JSONL, nil
	}
	first, _, _ := bytes.Cut(b, []byte("\n"))
	if bytes.IndexByte(first, ',') >= 0 && bytes.Contains(bytes.ToLower(first), []byte("sku")) {
		return CSV, nil
	}
	return 0, fmt.Errorf("%w: cannot tell %q apart (name it .csv or .jsonl)", ErrUnknownFormat, name)
}

// Mode says what Parse does with a file that has bad rows.
type Mode int

const (
	// AllOrNothing (the default): the callback sees valid rows only until
	// the first bad row, Parse goes on validating to report every error,
	// then returns ErrInvalidRows. Stage what the callback receives and
	// commit only when Parse returns nil.
	AllOrNothing Mode = iota
	// Partial: bad rows are skipped and reported, every valid row reaches
	// the callback, and Parse returns nil; the Report says what was left out.
	Partial
)

// Defaults for zero Options fields.
const (
	DefaultMaxErrors     = 1000
	DefaultProgressEvery = 1000
	DefaultMaxLineBytes  = 1 << 20
)

// Options tune Parse. The zero value is an all-or-nothing import.
type Options struct {
	Mode Mode
	// MaxErrors caps Report.Errors (default DefaultMaxErrors); errors past
	// the cap are only counted, in Report.ErrorsDropped.
	MaxErrors int
	// DefaultCurrency fills rows whose currency is empty (and makes the CSV
	// currency column optional). Empty: every row must give its currency.
	DefaultCurrency string
	// Progress, if set, is called every ProgressEvery rows (default
	// DefaultProgressEvery) and once at the end, with the rows read so far
	// (valid or not, blank lines excluded) and the bytes consumed, so a CLI
	// can draw a progress bar against the file size. It runs on Parse's
	// goroutine; keep it quick.
	Progress      func(rowsDone int, bytesDone int64)
	ProgressEvery int
	// MaxLineBytes bounds a JSONL line and a CSV record (default
	// DefaultMaxLineBytes), so that memory does not grow with the file. A
	// longer JSONL line is a bad row, skipped without being buffered; a
	// longer CSV record (give or take the 64 KiB read ahead) stops Parse
	// with ErrRecordTooLong, since a CSV file cannot be resynchronised.
	MaxLineBytes int
}

func (o *Options) setDefaults() error {
	if o.Mode != AllOrNothing && o.Mode != Partial {
		return fmt.Errorf("%w: mode %d", ErrInvalidOption, o.Mode)
	}
	if o.MaxErrors < 0 || o.ProgressEvery < 0 || o.MaxLineBytes < 0 {
		return fmt.Errorf("%w: MaxErrors, ProgressEvery and MaxLineBytes must not be negative", ErrInvalidOption)
	}
	if o.MaxErrors == 0 {
		o.MaxErrors = DefaultMaxErrors
	}
	if o.ProgressEvery == 0 {
		o.ProgressEvery = DefaultProgressEvery
	}
	if o.MaxLineBytes == 0 {
		o.MaxLineBytes = DefaultMaxLineBytes
	}
	if o.DefaultCurrency != "" {
		if r := checkCurrency(o.DefaultCurrency); r != "" {
			return fmt.Errorf("%w: default currency %q: %s", ErrInvalidOption, o.DefaultCurrency, r)
		}
	}
	return nil
}

// Report is what Parse saw.
type Report struct {
	Format Format `json:"format"`
	// Rows counts data rows (not the CSV header, not blank lines);
	// Rows == Valid + Invalid.
	Rows    int `json:"rows"`
	Valid   int `json:"valid"`
	Invalid int `json:"invalid"`
	// DuplicateSKUs and DuplicateGTINs count rows rejected because an
	// earlier accepted row already had their SKU or one of their GTINs.
	DuplicateSKUs  int `json:"duplicate_skus"`
	DuplicateGTINs int `json:"duplicate_gtins"`
	// Errors lists the first Options.MaxErrors problems in file order;
	// ErrorsDropped counts the rest.
	Errors        []RowError `json:"errors,omitempty"`
	ErrorsDropped int        `json:"errors_dropped,omitempty"`
	Bytes         int64      `json:"bytes"`
}

// Parse reads a catalog file in format and calls each with every valid
// variant, normalised, in file order (a nil each only validates). It
// streams: memory grows with the number of accepted SKUs and GTINs (for
// duplicate detection), not with the file.
//
// The Mode decides what bad rows do; see AllOrNothing and Partial. Parse
// stops early only when each returns an error (returned wrapped with the
// line), when the reader fails, or on a CSV header problem (ErrHeader,
// ErrUnknownColumn). The Report is filled in every case.
func Parse(r io.Reader, format Format, opts Options, each func(Variant) error) (Report, error) {
	var eachLine func(Variant, int) error
	if each != nil {
		eachLine = func(v Variant, _ int) error { return each(v) }
	}
	return ParseLines(r, format, opts, eachLine)
}

// ParseLines is Parse whose callback also gets the line each variant's row
// starts on (as in RowError.Line), so that what a later stage refuses can
// be reported by line.
func ParseLines(r io.Reader, format Format, opts Options, each func(v Variant, line int) error) (Report, error) {
	if err := opts.setDefaults(); err != nil {
		return Report{}, err
	}
	p := &parser{
		opts: opts,
		each: each,
		seen: newSeen(),
	}
	p.report.Format = format
	var err error
	switch format {
	case CSV:
		err = p.parseCSV(r)
	case JSONL:
		err = p.parseJSONL(r)
	default:
		return p.report, fmt.Errorf("%w: %v", ErrUnknownFormat, format)
	}
	if opts.Progress != nil {
		opts.Progress(p.report.Rows, p.report.Bytes)
	}
	if err != nil {
		return p.report, err
	}
	if p.report.Invalid > 0 && opts.Mode == AllOrNothing {
		first := ""
		if len(p.report.Errors) > 0 {
			first = "; first: " + p.report.Errors[0].Error()
		}
		return p.report, fmt.Errorf("%w: %d of %d rows rejected, nothing may be imported%s",
			ErrInvalidRows, p.report.Invalid, p.report.Rows, first)
	}
	return p.report, nil
}

type parser struct {
	opts   Options
	each   func(Variant, int) error
	report Report
	seen   *seen // accepted SKUs and GTINs
	buf    []byte
}

// rawRow is one row as read, before conversion and validation.
type rawRow struct {
	line                    int
	v                       Variant // text fields as given, GTINs unnormalised
	price, priceMinor       string
	hasPrice, hasPriceMinor bool
	errs                    []RowError // structural problems found while reading
	malformed               bool       // not a row at all: report errs only
}

func (rr *rawRow) fail(field, value, reason string) {
	rr.errs = append(rr.errs, RowError{Field: field, Value: value, Reason: reason})
}

// setText stores the value of a text key; it reports false for keys that
// are not plain text fields.
func (rr *rawRow) setText(key, val string) bool {
	switch key {
	case "sku":
		rr.v.SKU = val
	case "product_id":
		rr.v.ProductID = val
	case "name":
		rr.v.Name = val
	case "brand":
		rr.v.Brand = val
	case "size":
		rr.v.Size = val
	case "colour":
		rr.v.Colour = val
	case "currency":
		rr.v.Currency = val
	case "image_url":
		rr.v.ImageURL = val
	case "category":
		rr.v.Category = val
	case "price":
		rr.price, rr.hasPrice = val, true
	case "price_minor":
		rr.priceMinor, rr.hasPriceMinor = val, true
	default:
		return false
	}
	return true
}

// splitGTINs splits a cell holding one or more GTINs separated by '|' or ';'.
func splitGTINs(s string) []string {
	var out []string
	for _, g := range strings.FieldsFunc(s, func(r rune) bool { return r == '|' || r == ';' }) {
		if g = strings.TrimSpace(g); g != "" {
			out = append(out, g)
		}
	}
	return out
}

// row converts, validates and de-duplicates one row, then hands it out.
func (p *parser) row(rr *rawRow) error {
	p.report.Rows++
	if rr.malformed {
		p.reject(rr.line, rr.errs...)
		return nil
	}
	errs := rr.errs
	v := rr.v
	v.Normalize()
	if v.Currency == "" {
		v.Currency = p.opts.DefaultCurrency
	}
	switch {
	case rr.hasPrice && rr.hasPriceMinor && strings.TrimSpace(rr.price) != "" && strings.TrimSpace(rr.priceMinor) != "":
		errs = append(errs, RowError{Field: "price", Value: rr.price, Reason: "give price or price_minor, not both"})
	case rr.hasPriceMinor && strings.TrimSpace(rr.priceMinor) != "":
		n, err := parseMinor(strings.TrimSpace(rr.priceMinor))
		if err != nil {
			errs = append(errs, RowError{Field: "price_minor", Value: rr.priceMinor, Reason: err.Error()})
		}
		v.PriceMinor = n
	default:
		n, err := ParsePrice(strings.TrimSpace(rr.price), v.Currency)
		if err != nil {
			errs = append(errs, RowError{Field: "price", Value: rr.price, Reason: err.Error()})
		}
		v.PriceMinor = n
	}
	errs = append(errs, v.Validate()...)
	if len(errs) == 0 {
		if l, ok := p.seen.skuLine(v.SKU); ok {
			p.report.DuplicateSKUs++
			errs = append(errs, RowError{Field: "sku", Value: v.SKU, Reason: fmt.Sprintf("duplicate SKU, already on line %d", l)})
		} else {
			for _, g := range v.GTINs {
				if line, sku, ok := p.seen.gtin(g); ok {
					p.report.DuplicateGTINs++
					errs = append(errs, RowError{Field: "gtin", Value: g,
						Reason: fmt.Sprintf("duplicate GTIN, already used by SKU %s on line %d", sku, line)})
					break
				}
			}
		}
	}
	if len(errs) > 0 {
		p.reject(rr.line, errs...)
		return nil
	}
	p.seen.add(v.SKU, rr.line, v.GTINs)
	p.report.Valid++
	p.progress()
	if p.each == nil || (p.opts.Mode == AllOrNothing && p.report.Invalid > 0) {
		return nil
	}
	if err := p.each(v, rr.line); err != nil {
		return fmt.Errorf("catalog: line %d: %w", rr.line, err)
	}
	return nil
}

// reject records a bad row; the caller has already counted it in Rows.
func (p *parser) reject(line int, errs ...RowError) {
	p.report.Invalid++
	for _, e := range errs {
		e.Line = line
		p.addError(e)
	}
	p.progress()
}

func (p *parser) addError(e RowError) {
	if len(p.report.Errors) >= p.opts.MaxErrors {
		p.report.ErrorsDropped++
		return
	}
	e.Value = clip(e.Value, 200)
	p.report.Errors = append(p.report.Errors, e)
}

func (p *parser) progress() {
	if p.opts.Progress != nil && p.report.Rows%p.opts.ProgressEvery == 0 {
		p.opts.Progress(p.report.Rows, p.report.Bytes)
	}
}

var utf8BOM = []byte("\xef\xbb\xbf")

// skipBOM drops a leading UTF-8 byte order mark and returns its length.
func skipBOM(br *bufio.Reader) int64 {
	if b, err := br.Peek(3); err == nil && bytes.Equal(b, utf8BOM) {
		br.Discard(3)
		return 3
	}
	return 0
}

// csvKey maps a CSV column name to its canonical key.
func csvKey(name string) (string, bool) {
	k := strings.ToLower(strings.TrimSpace(name))
	switch k {
	case "color":
		return "colour", true
	case "gtins":
		return "gtin", true
	case "sku", "product_id", "gtin", "name", "brand", "size", "colour", "price", "price_minor", "currency", "image_url", "category":
		return k, true
	}
	return k, false
}

const knownKeys = "sku, product_id, gtin (or gtins), name, brand, size, colour (or color), price (or price_minor), currency, image_url, category"

// fatal records the problem that stops Parse, as a RowError and as the
// error Parse returns.
func (p *parser) fatal(line int, field, reason string, sentinel error) error {
	p.addError(RowError{Line: line, Field: field, Reason: reason})
	return fmt.Errorf("%w: line %d: %s", sentinel, line, reason)
}

// csvReadAhead is the buffer the CSV reader reads through.
const csvReadAhead = 64 << 10

// errRecordTooLong is what recordLimit hands the CSV reader.
var errRecordTooLong = errors.New("record too long")

// recordLimit fails reads once more than max bytes have been read past
// the end of the last whole record (mark): encoding/csv buffers a record
// whole, and one unclosed quote would make the rest of the file a single
// record.
type recordLimit struct {
	r          io.Reader
	read, mark int64
	max        int64
}

func (l *recordLimit) Read(p []byte) (int, error) {
	if l.read-l.mark > l.max {
		return 0, errRecordTooLong
	}
	n, err := l.r.Read(p)
	l.read += int64(n)
	return n, err
}

func (p *parser) parseCSV(r io.Reader) error {
	lim := &recordLimit{r: r, max: int64(p.opts.MaxLineBytes) + csvReadAhead}
	br := bufio.NewReaderSize(lim, csvReadAhead)
	bom := skipBOM(br)
	tooLong := func(line int) error {
		return p.fatal(line, "", fmt.Sprintf("a record longer than %d bytes (a quote that is never closed?); the rest of the file cannot be read", p.opts.MaxLineBytes), ErrRecordTooLong)
	}
	cr := csv.NewReader(br)
	cr.ReuseRecord = true
	header, err := cr.Read()
	if err == io.EOF {
		return p.fatal(1, "", "empty file: no header row", ErrHeader)
	}
	if errors.Is(err, errRecordTooLong) {
		return tooLong(1)
	}
	if err != nil {
		var pe *csv.ParseError
		if errors.As(err, &pe) {
			return p.fatal(pe.StartLine, "", pe.Err.Error(), ErrHeader)
		}
		return fmt.Errorf("catalog: reading CSV header: %w", err)
	}
	hline, _ := cr.FieldPos(0)
	keys := make([]string, len(header))
	for i, name := range header {
		k, ok := csvKey(name)
		switch {
		case k == "":
			return p.fatal(hline, "", fmt.Sprintf("column %d has no name", i+1), ErrHeader)
		case !ok:
			return p.fatal(hline, strings.TrimSpace(name),
				fmt.Sprintf("unknown column %q (column %d); known columns: %s", strings.TrimSpace(name), i+1, knownKeys), ErrUnknownColumn)
		case slices.Contains(keys[:i], k):
			return p.fatal(hline, k, fmt.Sprintf("column %q given twice (column %d)", k, i+1), ErrHeader)
		}
		keys[i] = k
	}
	var missing []string
	for _, req := range []string{"sku", "product_id", "gtin", "name", "price", "currency"} {
		switch {
		case slices.Contains(keys, req):
		case req == "price" && slices.Contains(keys, "price_minor"):
		case req == "currency" && p.opts.DefaultCurrency != "":
		default:
			missing = append(missing, req)
		}
	}
	if len(missing) > 0 {
		return p.fatal(hline, missing[0], "missing required column(s): "+strings.Join(missing, ", "), ErrHeader)
	}
	lim.mark = bom + cr.InputOffset()
	next := hline + 1 // where the next record starts, give or take a multi-line field
	for {
		rec, err := cr.Read()
		p.report.Bytes = bom + cr.InputOffset()
		lim.mark = p.report.Bytes
		if err == io.EOF {
			return nil
		}
		if errors.Is(err, errRecordTooLong) {
			p.report.Rows++
			p.report.Invalid++
			return tooLong(next)
		}
		var pe *csv.ParseError
		if errors.As(err, &pe) {
			next = pe.Line + 1
			p.report.Rows++
			reason := pe.Err.Error()
			if errors.Is(pe.Err, csv.ErrFieldCount) {
				reason = fmt.Sprintf("%d fields, the header has %d", len(rec), len(keys))
			}
			p.reject(pe.StartLine, RowError{Reason: reason})
			continue
		}
		if err != nil {
			return fmt.Errorf("catalog: reading CSV: %w", err)
		}
		last, _ := cr.FieldPos(len(rec) - 1)
		next = last + 1
		if blankRecord(rec) {
			continue
		}
		line, _ := cr.FieldPos(0)
		rr := rawRow{line: line}
		for i, val := range rec {
			if keys[i] == "gtin" {
				rr.v.GTINs = append(rr.v.GTINs, splitGTINs(val)...)
			} else {
				rr.setText(keys[i], val)
			}
		}
		if err := p.row(&rr); err != nil {
			return err
		}
	}
}

func blankRecord(rec []string) bool {
	for _, f := range rec {
		if strings.TrimSpace(f) != "" {
			return false
		}
	}
	return true
}

// readLine reads one line (with its newline) into p.buf, keeping at most
// MaxLineBytes of it; n is the number of bytes consumed.
func (p *parser) readLine(br *bufio.Reader) (line []byte, n int, tooLong bool, err error) {
	p.buf = p.buf[:0]
	for {
		chunk, err := br.ReadSlice('\n')
		n += len(chunk)
		if !tooLong {
			if len(p.buf)+len(chunk) > p.opts.MaxLineBytes+2 { // room for "\r\n"
				tooLong, p.buf = true, p.buf[:0]
			} else {
				p.buf = append(p.buf, chunk...)
			}
		}
		if err == bufio.ErrBufferFull {
			continue
		}
		return p.buf, n, tooLong, err
	}
}

func (p *parser) parseJSONL(r io.Reader) error {
	br := bufio.NewReaderSize(r, 64<<10)
	p.report.Bytes = skipBOM(br)
	for lineNo := 1; ; lineNo++ {
		data, n, tooLong, err := p.readLine(br)
		p.report.Bytes += int64(n)
		if err != nil && err != io.EOF {
			return fmt.Errorf("catalog: reading JSONL line %d: %w", lineNo, err)
		}
		if n == 0 && err == io.EOF {
			return nil
		}
		switch {
		case tooLong:
			p.report.Rows++
			p.reject(lineNo, RowError{Reason: fmt.Sprintf("line longer than %d bytes", p.opts.MaxLineBytes)})
		case len(bytes.TrimSpace(data)) == 0:
		default:
			rr := p.decodeJSONLine(lineNo, data)
			if rerr := p.row(rr); rerr != nil {
				return rerr
			}
		}
		if err == io.EOF {
			return nil
		}
	}
}

func (p *parser) decodeJSONLine(lineNo int, data []byte) *rawRow {
	rr := &rawRow{line: lineNo}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(data, &m); err != nil || m == nil {
		reason := "not a JSON object"
		if err != nil {
			reason += ": " + strings.TrimPrefix(err.Error(), "json: ")
		}
		rr.fail("", "", reason)
		rr.malformed = true
		return rr
	}
	if m["color"] != nil && m["colour"] != nil {
		rr.fail("colour", "", "give colour or color, not both")
	}
	if m["gtin"] != nil && m["gtins"] != nil {
		rr.fail("gtin", "", "give gtin or gtins, not both")
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		raw := bytes.TrimSpace(m[k])
		if string(raw) == "null" {
			continue
		}
		switch k {
		case "gtins":
			var gs []string
			if err := json.Unmarshal(raw, &gs); err != nil {
				rr.fail("gtin", string(raw), "gtins must be an array of strings (a number loses leading zeros)")
				continue
			}
			rr.v.GTINs = append(rr.v.GTINs, gs...)
		case "gtin":
			var s string
			if err := jsonString(raw, &s); err != nil {
				rr.fail("gtin", string(raw), "must be a string (a number loses leading zeros)")
				continue
			}
			rr.v.GTINs = append(rr.v.GTINs, splitGTINs(s)...)
		case "price", "price_minor":
			s := string(raw)
			if raw[0] == '"' {
				if err := jsonString(raw, &s); err != nil {
					rr.fail(k, s, "not a valid JSON string")
					continue
				}
			} else if raw[0] != '-' && (raw[0] < '0' || raw[0] > '9') {
				rr.fail(k, s, "must be a number or a decimal string")
				continue
			}
			rr.setText(k, s)
		default:
			key := k
			if key == "color" {
				key = "colour"
			}
			if key == "price" || key == "price_minor" || !isTextKey(key) {
				rr.fail(k, "", "unknown key; known keys: "+knownKeys)
				continue
			}
			var s string
			if err := jsonString(raw, &s); err != nil {
				rr.fail(key, string(raw), "must be a string")
				continue
			}
			rr.setText(key, s)
		}
	}
	return rr
}

// jsonString decodes a JSON string value, skipping encoding/json for the
// common case of a string without escapes.
func jsonString(raw []byte, s *string) error {
	if n := len(raw); n >= 2 && raw[0] == '"' && raw[n-1] == '"' {
		body := raw[1 : n-1]
		plain := utf8.Valid(body)
		for i := 0; plain && i < len(body); i++ {
			plain = body[i] >= ' ' && body[i] != '"' && body[i] != '\\'
		}
		if plain {
			*s = string(body)
			return nil
		}
	}
	return json.Unmarshal(raw, s)
}

func isTextKey(k string) bool {
	switch k {
	case "sku", "product_id", "name", "brand", "size", "colour", "currency", "image_url", "category":
		return true
	}
	return false
}
