package clv

import (
	"errors"
	"strings"
	"testing"
)

// Ensure that ReadCSV finds its columns by name and lists every bad row
// by line.
func TestReadCSV(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want []Customer
		errs []string // the error, or each row error, must contain these
	}{
		{"the CDNOW layout", "ID,x,t_x,T,zbar\n1,2,30.43,38.86,22.35\n2,0,0.00,38.86,0.00\n",
			[]Customer{{X: 2, Tx: 30.43, T: 38.86, AvgSpend: 22.35}, {X: 0, T: 38.86}}, nil},
		{"a semicolon-separated file", "x;t_x;T;zbar\n", nil, []string{"no column for x, t_x"}},
		{"lifetimes' names", "customer,frequency,recency,T,monetary_value\nc1,1,2.5,10,9.99\n",
			[]Customer{{X: 1, Tx: 2.5, T: 10, AvgSpend: 9.99}}, nil},
		{"upper case and a byte order mark", "\ufeffX,T_X,t,AVERAGE_SPEND\n3,4,5,6\n",
			[]Customer{{X: 3, Tx: 4, T: 5, AvgSpend: 6}}, nil},
		{"spaces and an empty spend for x = 0", "x, t_x, T, average spend\n0, 0, 7,\n",
			[]Customer{{X: 0, T: 7}}, nil},
		{"empty file", "", nil, []string{"empty file"}},
		{"missing spend column", "x,t_x,T\n1,1,2\n", nil, []string{"no column for average spend"}},
		{"two columns for one thing", "x,frequency,t_x,T,zbar\n", nil, []string{"two columns for x"}},
		{"every bad row, by line", "x,t_x,T,zbar\n1,1,2,3\n1.5,1,2,3\n1,3,2,3\nabc,1,2,3\n2,1,2,0\n0,1,2,0\n1,1,2\n1,1,2,3\n-1,0,2,0\n",
			nil, []string{
				"line 3: x: 1.5 is not a count",
				"line 4: t_x 3 is after T 2",
				`line 5: x: "abc" is not a number`,
				"line 6: average spend: average spend 0 of a repeat customer",
				"line 7: t_x 1 with no repeat purchase",
				"line 8: 3 fields, the header has 4",
				"line 10: x: -1 is not a count",
			}},
		{"spend missing for a repeat customer", "x,t_x,T,zbar\n1,1,2,\n", nil, []string{"line 2: average spend: average spend 0"}},
		{"not a number", "x,t_x,T,zbar\n1,NaN,2,3\n", nil, []string{`line 2: t_x: "NaN" is not a number`}},
		{"a broken quote stops the read", "x,t_x,T,zbar\n1,1,2,3\n\"1,1,2,3\n", nil, []string{"line 3"}},
	}
	for _, tt := range tests {
		got, err := ReadCSV(strings.NewReader(tt.in))
		if tt.errs == nil {
			if err != nil || len(got) != len(tt.want) {
				t.Errorf("%s: %v, %+v", tt.name, err, got)
				continue
			}
			for i := range got {
				if got[i] != tt.want[i] {
					t.Errorf("%s: row %d %+v, want %+v", tt.name, i, got[i], tt.want[i])
				}
			}
			continue
		}
		if !errors.Is(err, ErrBadCSV) || got != nil {
			t.Errorf("%s: %v, %+v", tt.name, err, got)
			continue
		}
		var ce *CSVError
		var text []string
		if errors.As(err, &ce) {
			for _, r := range ce.Rows {
				text = append(text, r.String())
			}
			if len(ce.Rows) != len(tt.errs) {
				t.Errorf("%s: %d row errors %q, want %d", tt.name, len(ce.Rows), text, len(tt.errs))
			}
		} else {
			text = []string{err.Error()}
		}
		for i, want := range tt.errs {
			if i >= len(text) || !strings.Contains(text[i], want) {
				t.Errorf("%s: errors %q, want %q at %d", tt.name, text, want, i)
			}
		}
	}
}

// Ensure that a file with more bad rows than are listed counts the rest.
func TestReadCSV_ManyBadRows(t *testing.T) {
	in := "x,t_x,T,zbar\n" + strings.Repeat("1,5,2,3\n", maxRowErrors+7)
	_, err := ReadCSV(strings.NewReader(in))
	var ce *CSVError
	if !errors.As(err, &ce) || len(ce.Rows) != maxRowErrors || ce.Dropped != 7 {
		t.Fatalf("%v", err)
	}
	if !strings.Contains(err.Error(), "107 bad rows") || !strings.Contains(err.Error(), "and 104 more") {
		t.Errorf("%v", err)
	}
}

// FuzzReadCSV checks that any input either fails with ErrBadCSV or gives
// customers the fits accept.
func FuzzReadCSV(f *testing.F) {
	f.Add("x,t_x,T,zbar\n1,2,3,4\n")
	f.Add("ID,x,t_x,T,zbar\n1,2,30.43,38.86,22.35\n2,0,0.00,38.86,0.00\n")
	f.Add("frequency,recency,T,monetary_value\n0,0,1,\n\"1\",\"0.5\",2,1e3\n")
	f.Fuzz(func(t *testing.T, in string) {
		cs, err := ReadCSV(strings.NewReader(in))
		if err != nil {
			if !errors.Is(err, ErrBadCSV) {
				t.Fatalf("error %v is not ErrBadCSV", err)
			}
			return
		}
		for _, c := range cs {
			if c.Validate() != nil || c.validateSpend() != nil {
				t.Fatalf("accepted %+v", c)
			}
		}
	})
}
