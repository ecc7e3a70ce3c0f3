package clv

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
)

// ErrBadCSV is wrapped by ReadCSV's errors; a *CSVError lists the rows.
var ErrBadCSV = errors.New("clv: bad customer CSV")

// maxRowErrors bounds the rows a CSVError lists; the rest are counted.
const maxRowErrors = 100

// RowError is one bad row of a customer CSV.
type RowError struct {
	Line   int    `json:"line"`
	Column string `json:"column,omitempty"`
	Reason string `json:"reason"`
}

func (e RowError) String() string {
	if e.Column == "" {
		return fmt.Sprintf("line %d: %s", e.Line, e.Reason)
	}
	return fmt.Sprintf("line %d: %s: %s", e.Line, e.Column, e.Reason)
}

// CSVError is every bad row of a customer CSV (the first maxRowErrors of
// them, and how many more there were).
type CSVError struct {
	Rows    []RowError
	Dropped int
}

func (e *CSVError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%v: %d bad rows", ErrBadCSV, len(e.Rows)+e.Dropped)
	for i, r := range e.Rows {
		if i == 3 {
			fmt.Fprintf(&b, "; ... and %d more", len(e.Rows)+e.Dropped-3)
			break
		}
		b.WriteString("; ")
		b.WriteString(r.String())
	}
	return b.String()
}

func (e *CSVError) Unwrap() error { return ErrBadCSV }

func (e *CSVError) add(r RowError) {
	if len(e.Rows) < maxRowErrors {
		e.Rows = append(e.Rows, r)
	} else {
		e.Dropped++
	}
}

// column names ReadCSV accepts, compared case-insensitively with spaces
// and hyphens read as underscores.
var csvColumns = [4][]string{
	{"x", "frequency"},
	{"t_x", "tx", "recency"},
	{"t", "age"},
	{"average_spend", "avg_spend", "average_value", "zbar", "monetary_value", "spend"},
}

var csvColumnNames = [4]string{"x", "t_x", "T", "average spend"}

// ReadCSV reads customers from CSV: a header row naming the columns x,
// t_x, T and the average spend (as average_spend, avg_spend, zbar or
// monetary_value; names match whatever their case, other columns are
// ignored), then one row a customer. Every row is checked as the fits
// would check it (x a whole number, 0 ≤ t_x ≤ T, a positive spend for a
// repeat customer; the spend may be empty when x is 0). A file with bad
// rows returns a *CSVError listing them by line, and no customers.
func ReadCSV(r io.Reader) ([]Customer, error) {
	cr := csv.NewReader(r)
	cr.TrimLeadingSpace = true
	header, err := cr.Read()
	if err == io.EOF {
		return nil, fmt.Errorf("%w: empty file, expected a header row", ErrBadCSV)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadCSV, err)
	}
	var pos [4]int
	for i := range pos {
		pos[i] = -1
	}
	for i, h := range header {
		h = strings.ToLower(strings.TrimSpace(strings.TrimPrefix(h, "\ufeff")))
		h = strings.NewReplacer(" ", "_", "-", "_").Replace(h)
		for k, names := range csvColumns {
			for _, n := range names {
				if h == n {
					if pos[k] >= 0 {
						return nil, fmt.Errorf("%w: line 1: two columns for %s (%q and %q)", ErrBadCSV, csvColumnNames[k], header[pos[k]], header[i])
					}
					pos[k] = i
				}
			}
		}
	}
	var missing []string
	for k, p := range pos {
		if p < 0 {
			missing = append(missing, csvColumnNames[k])
		}
	}
	if missing != nil {
		return nil, fmt.Errorf("%w: line 1: no column for %s (the header has %s)", ErrBadCSV, strings.Join(missing, ", "), strings.Join(header, ","))
	}
	var out []Customer
	bad := &CSVError{}
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			var pe *csv.ParseError
			if errors.As(err, &pe) && errors.Is(err, csv.ErrFieldCount) {
				bad.add(RowError{Line: pe.Line, Reason: fmt.Sprintf("%d fields, the header has %d", len(rec), len(header))})
				continue
			}
			if errors.As(err, &pe) {
				bad.add(RowError{Line: pe.Line, Reason: pe.Err.Error()})
				return nil, bad
			}
			return nil, fmt.Errorf("%w: %w", ErrBadCSV, err)
		}
		line, _ := cr.FieldPos(0)
		c, rowErr := parseRow(rec, pos)
		if rowErr != nil {
			rowErr.Line = line
			bad.add(*rowErr)
			continue
		}
		out = append(out, c)
	}
	if len(bad.Rows) > 0 {
		return nil, bad
	}
	return out, nil
}

func parseRow(rec []string, pos [4]int) (Customer, *RowError) {
	var v [4]float64
	for k, p := range pos {
		s := strings.TrimSpace(rec[p])
		if k == 3 && s == "" {
			continue // checked below: only a repeat customer needs a spend
		}
		f, err := strconv.ParseFloat(s, 64)
		if err != nil || !finite(f) {
			return Customer{}, &RowError{Column: csvColumnNames[k], Reason: fmt.Sprintf("%q is not a number", s)}
		}
		v[k] = f
	}
	if v[0] != math.Trunc(v[0]) || v[0] < 0 || v[0] > math.MaxInt32 {
		return Customer{}, &RowError{Column: "x", Reason: fmt.Sprintf("%g is not a count of purchases (a whole number >= 0)", v[0])}
	}
	c := Customer{X: int(v[0]), Tx: v[1], T: v[2], AvgSpend: v[3]}
	if err := c.Validate(); err != nil {
		return Customer{}, &RowError{Reason: strings.TrimPrefix(err.Error(), ErrInvalidCustomer.Error()+": ")}
	}
	if err := c.validateSpend(); err != nil {
		return Customer{}, &RowError{Column: "average spend", Reason: strings.TrimPrefix(err.Error(), ErrInvalidCustomer.Error()+": ")}
	}
	return c, nil
}
