package profile

import (
	"bufio"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/omnisync/omnisync/shared/gs1"
	"github.com/omnisync/omnisync/shared/testkit/corpustest"
)

// TestCorpus_ScannerPayloads sends every raw scanner payload of the public
// corpus (gs1/scanner_raw.jsonl) through the generic-line-scanner profile
// as a scanner would: framed with a CR, cut by the framer, parsed. The
// verdict must be the corpus's, and the result the same as gs1.ParseScan
// on the bare payload: the device layer adds no meaning of its own.
func TestCorpus_ScannerPayloads(t *testing.T) {
	f, err := os.Open(filepath.Join(corpustest.Dir(t), "gs1", "scanner_raw.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	p := shipped(t, "generic-line-scanner")
	fr, err := p.NewFramer()
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var row struct {
			ID, Op, Input string
			Valid         bool
		}
		if err := json.Unmarshal(sc.Bytes(), &row); err != nil {
			t.Fatal(err)
		}
		if row.Op != "scan_parse" {
			continue
		}
		wire, err := fr.AppendFrame(nil, []byte(row.Input))
		if err != nil {
			continue // empty, or a CR/LF inside: no scanner sends that as one line
		}
		payloads, rejected := frameAll(t, p, wire)
		if len(payloads) != 1 || rejected != 0 {
			t.Errorf("%s: framed into %d payloads, %d bytes rejected", row.ID, len(payloads), rejected)
			continue
		}
		got, err := p.ParseBarcode(payloads[0])
		if err == nil && !row.Valid && plainURL(row.Input) {
			// Not a Digital Link, but a URL: the agent reports it as plain
			// data (a shopper scanned a web link), with no product.
			if got.GTIN != "" || got.AIs != nil || got.DigitalLink != nil || got.GS1 {
				t.Errorf("%s: plain URL %q carries GS1 data: %+v", row.ID, row.Input, got)
			}
			n++
			continue
		}
		if (err == nil) != row.Valid {
			t.Errorf("%s: %q: err = %v, corpus says valid=%v", row.ID, row.Input, err, row.Valid)
			continue
		}
		n++
		if err != nil {
			continue
		}
		want, werr := gs1.ParseScan(row.Input)
		if werr != nil {
			if got.GTIN != "" || got.AIs != nil {
				t.Errorf("%s: plain-URL fallback gave GTIN %q AIs %v", row.ID, got.GTIN, got.AIs)
			}
			continue
		}
		if got.GTIN != want.GTIN || got.AIs.Bracketed() != want.AIs.Bracketed() || got.Symbology != want.Symbology {
			t.Errorf("%s: got %v %q %s, gs1 says %v %q %s", row.ID, got.Symbology, got.GTIN, got.AIs.Bracketed(),
				want.Symbology, want.GTIN, want.AIs.Bracketed())
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if n < 40 {
		t.Fatalf("only %d corpus rows checked", n)
	}
	t.Logf("%d scanner payloads checked", n)
}

// plainURL reports whether gs1 refuses payload as a Digital Link for want
// of any GS1 key in it, rather than for a bad one.
func plainURL(payload string) bool {
	_, err := gs1.ParseScan(payload)
	var ge *gs1.Error
	return errors.As(err, &ge) && ge.Kind == gs1.ErrDigitalLink && ge.AI == ""
}
