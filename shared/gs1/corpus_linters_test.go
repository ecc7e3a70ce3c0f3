package gs1

import (
	"encoding/hex"
	"strings"
	"testing"
)

// linterExceptions: rows whose expected result depends on the
// gs1-syntax-engine unit-test GCP registry mock (test-gcp-lookup.h). We do
// no registry lookups (edge agents run offline), so "1234567" is a
// well-formed prefix to us.
var linterExceptions = map[string]string{
	"gse-lint_couponcode.c-L1431": "expects the unit-test GCP lookup mock to reject the coupon's company prefix",
	"gse-lint_couponcode.c-L1438": "expects the unit-test GCP lookup mock to reject the coupon's company prefix",
	"gse-lint_couponcode.c-L1446": "expects the unit-test GCP lookup mock to reject the coupon's company prefix",
	"gse-lint_couponcode.c-L1454": "expects the unit-test GCP lookup mock to reject the coupon's company prefix",
	"gse-lint_couponcode.c-L1433": "expects the unit-test GCP lookup mock to report its data source offline",
	"gse-lint_couponcode.c-L1441": "expects the unit-test GCP lookup mock to report its data source offline",
	"gse-lint_couponcode.c-L1449": "expects the unit-test GCP lookup mock to report its data source offline",
	"gse-lint_couponcode.c-L1457": "expects the unit-test GCP lookup mock to report its data source offline",
	"gse-lint_gcppos1.c-L221":     "expects the unit-test GCP lookup mock to reject this prefix",
	"gse-lint_gcppos1.c-L223":     "expects the unit-test GCP lookup mock to report its data source offline",
}

func TestCorpusComponentLinters(t *testing.T) {
	runCorpus(t, "gs1/component_linters.jsonl", linterExceptions, func(r row) error {
		name := strings.TrimPrefix(r.Str("linter"), "gs1_lint_")
		if !HasLinter(name) {
			return errNotApplicable
		}
		in := r.Str("input")
		exp := r.Obj("expect")
		if h := r.Str("input_hex"); h != "" {
			b, err := hex.DecodeString(h)
			if err != nil {
				return err
			}
			in = string(b)
			if hh := exp.Str("highlight_hex"); hh != "" {
				hb, _ := hex.DecodeString(hh)
				exp = row{"error": exp.Str("error"), "highlight": string(hb)}
			}
		}
		return compareLint(name, in, exp)
	})
}
