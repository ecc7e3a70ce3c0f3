package gs1

import (
	"fmt"
	"reflect"
	"testing"
)

var scanExceptions = map[string]string{}

// gseSymbologies maps gs1-syntax-engine symbology names to ours.
var gseSymbologies = map[string]Symbology{
	"NONE": SymNone, "QR": SymQR, "DM": SymDataMatrix, "DotCode": SymDotCode,
	"DataBarExpanded": SymDataBar, "GS1_128_CCA": SymGS1_128, "GS1_128_CCC": SymGS1_128,
	"DataBarOmni": SymDataBarOmni, "DataBarLimited": SymDataBarLimited,
	"UPCA": SymUPCA, "UPCE": SymUPCE, "EAN13": SymEAN13, "EAN8": SymEAN8,
}

func TestCorpusScannerRaw(t *testing.T) {
	runCorpus(t, "gs1/scanner_raw.jsonl", scanExceptions, func(r row) error {
		in, exp := r.Str("input"), r.Obj("expect")
		switch op := r.Str("op"); op {
		case "scan_parse", "api_set_scan_data":
			sc, err := ParseScan(in)
			if err == nil && op == "api_set_scan_data" {
				err = sc.AIs.Validate()
			}
			if err := wantValid(r, err); err != nil {
				return err
			}
			if err != nil {
				return nil
			}
			if s, ok := exp["symbology"].(string); ok {
				if gseSymbologies[s] != sc.Symbology {
					return fmt.Errorf("symbology %v, want %s", sc.Symbology, s)
				}
			}
			if exp.Has("data_str") && sc.Caret() != exp.Str("data_str") {
				return fmt.Errorf("data_str %q, want %q", sc.Caret(), exp.Str("data_str"))
			}
			if exp.Has("dl_ai_buffer") {
				got := ""
				if sc.DigitalLink != nil {
					got = sc.AIs.Caret()
				}
				if got != exp.Str("dl_ai_buffer") {
					return fmt.Errorf("dl_ai_buffer %q, want %q", got, exp.Str("dl_ai_buffer"))
				}
			}
			if exp.Has("ai_data_str") && sc.AIs.Bracketed() != exp.Str("ai_data_str") {
				return fmt.Errorf("ai_data_str %q, want %q", sc.AIs.Bracketed(), exp.Str("ai_data_str"))
			}
			if obs, ok := observedAIs(r); ok && sc.DigitalLink == nil && !(len(obs) == 0 && len(sc.AIs) == 0) && !reflect.DeepEqual(obs, sc.AIs) {
				return fmt.Errorf("AIs %v, observed %v", sc.AIs, obs)
			}
			return nil
		case "scan_generate", "api_set_data_str", "api_set_ai_data_str":
			data := in
			if op == "api_set_ai_data_str" {
				es, err := ParseBracketed(in)
				if err != nil {
					return err
				}
				data = es.Caret()
			}
			if op != "scan_generate" && r.Has("symbology") && !exp.Has("scan_data") {
				return fmt.Errorf("row has no scan_data")
			}
			if op != "scan_generate" {
				// The full public API also applies the association rules.
				if es, err := (Parser{}).ParseCaret(data); err == nil {
					if verr := apiCheck(r, es); verr != nil {
						return wantValid(r, verr)
					}
				}
			}
			out, err := GenerateScan(gseSymbologies[r.Str("symbology")], data, r.Obj("options").Bool("addCheckDigit"))
			if err := wantValid(r, err); err != nil {
				return err
			}
			if err == nil && out != exp.Str("scan_data") {
				return fmt.Errorf("scan_data %q, want %q", out, exp.Str("scan_data"))
			}
			return nil
		case "zxing_create_and_read":
			sc, err := ParseScan(in)
			if err != nil {
				return err
			}
			if sc.SymbologyID != exp.Str("symbology_identifier") || sc.Data != exp.Str("text") ||
				sc.AIs.HRI() != exp.Str("hri") || !sc.GS1 {
				return fmt.Errorf("got %s %q %q GS1=%v", sc.SymbologyID, sc.Data, sc.AIs.HRI(), sc.GS1)
			}
			return nil
		}
		return fmt.Errorf("unhandled op %q", r.Str("op"))
	})
}
