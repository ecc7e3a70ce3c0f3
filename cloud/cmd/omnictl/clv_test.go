package main

import (
	"bytes"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const cdnowFile = "../../internal/clv/testdata/cdnow_customers_summary_with_transactions.csv"

// runCLI runs omnictl in-process with stdout and stderr apart.
func runCLI(t *testing.T, stdin string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errw bytes.Buffer
	root := rootCmd(strings.NewReader(stdin), &out, &errw)
	root.SetArgs(args)
	root.SetOut(&out)
	root.SetErr(&errw)
	err := root.Execute()
	if err != nil {
		errw.WriteString("error: " + err.Error() + "\n")
	}
	return out.String(), errw.String(), exitCode(err)
}

// Ensure that `omnictl clv fit` on the CDNOW sample prints the published
// estimates, to 2 significant digits, as JSON with the documented keys.
func TestCLVFit_CDNOW(t *testing.T) {
	raw, err := os.ReadFile(cdnowFile)
	if err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"clv", "fit", cdnowFile}, {"clv", "fit", "--workers", "1", "-"}} {
		out, errOut, code := runCLI(t, string(raw), args...)
		if code != 0 {
			t.Fatalf("%v: exit %d\n%s", args, code, errOut)
		}
		var got map[string]float64
		if err := json.Unmarshal([]byte(out), &got); err != nil {
			t.Fatalf("%v: %v\n%s", args, err, out)
		}
		want := map[string]float64{
			"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426, "p": 6.25, "q": 3.74, "gamma": 15.44,
			"bgnbd_log_likelihood": -9582.4, "gamma_gamma_log_likelihood": -4055.9,
			"customers": 2357, "repeat_customers": 946,
		}
		for k, w := range want {
			g, ok := got[k]
			unit := math.Pow(10, math.Floor(math.Log10(math.Abs(w)))-1)
			if !ok || math.Abs(g-w) >= unit/2+1e-12 && math.Round(g/unit) != math.Round(w/unit) {
				t.Errorf("%v: %s = %v, published %v", args, k, g, w)
			}
		}
	}
}

// Ensure that a bad file lists its bad rows by file and line on stderr,
// fits nothing and exits 1; a missing argument is a usage error.
func TestCLVFit_BadFile(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.csv")
	if err := os.WriteFile(bad, []byte("id,X,T_X,t,zbar\na,1,2,3,4\nb,1,5,3,4\nc,two,1,3,4\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	noCol := filepath.Join(dir, "nocol.csv")
	if err := os.WriteFile(noCol, []byte("x,t_x,T\n1,2,3\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	zeros := filepath.Join(dir, "zeros.csv")
	if err := os.WriteFile(zeros, []byte("x,t_x,T,zbar\n0,0,3,0\n0,0,4,0\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		args []string
		code int
		want []string
	}{
		{[]string{"clv", "fit", bad}, 1, []string{bad + ":3: t_x 5 is after T 3", bad + `:4: x: "two" is not a number`, "2 bad rows, nothing fitted"}},
		{[]string{"clv", "fit", noCol}, 1, []string{"no column for average spend"}},
		{[]string{"clv", "fit", zeros}, 1, []string{"no customer made a repeat purchase"}},
		{[]string{"clv", "fit", filepath.Join(dir, "missing.csv")}, 1, []string{"no such file"}},
		{[]string{"clv", "fit"}, 2, []string{"accepts 1 arg"}},
	}
	for _, tt := range tests {
		out, errOut, code := runCLI(t, "", tt.args...)
		if code != tt.code || out != "" {
			t.Errorf("%v: exit %d, stdout %q, stderr %s", tt.args, code, out, errOut)
		}
		for _, w := range tt.want {
			if !strings.Contains(errOut, w) {
				t.Errorf("%v: stderr lacks %q:\n%s", tt.args, w, errOut)
			}
		}
	}
}
