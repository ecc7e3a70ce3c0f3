package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCatalogValidate(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.csv")
	bad := filepath.Join(dir, "bad.csv")
	header := "sku,product_id,gtin,name,brand,size,colour,price,currency,image_url,category\n"
	if err := os.WriteFile(good, []byte(header+"TSH-1-BLK-M,TSH-1,4006381333931,Tee,Kestrel,M,Black,19.99,EUR,,Tops\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bad, []byte(header+
		"TSH-1-BLK-M,TSH-1,4006381333931,Tee,Kestrel,M,Black,19.99,EUR,,Tops\n"+
		"TSH-1-BLK-L,TSH-1,4006381333932,Tee,Kestrel,L,Black,19.99,EUR,,Tops\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		file    string
		args    []string
		wantErr bool
		want    string
	}{
		{good, nil, false, "1 rows, 1 valid, 0 invalid"},
		{bad, nil, true, "bad.csv:3: gtin"},
		{bad, []string{"--partial"}, false, "2 rows, 1 valid, 1 invalid"},
	}
	for _, tt := range tests {
		var out, errw bytes.Buffer
		cmd := catalogValidateCmd(&out, &errw)
		cmd.SetArgs(append(tt.args, tt.file))
		cmd.SetOut(&out)
		cmd.SetErr(&errw)
		err := cmd.Execute()
		if (err != nil) != tt.wantErr || !strings.Contains(out.String(), tt.want) {
			t.Errorf("%s %v: err %v, output:\n%s", filepath.Base(tt.file), tt.args, err, out.String())
		}
	}
}

// Ensure that the shipped sample catalog validates cleanly.
func TestCatalogValidate_Sample(t *testing.T) {
	var out, errw bytes.Buffer
	cmd := catalogValidateCmd(&out, &errw)
	cmd.SetArgs([]string{"../../internal/catalog/testdata/sample-catalog.jsonl"})
	cmd.SetOut(&out)
	cmd.SetErr(&errw)
	if err := cmd.Execute(); err != nil || !strings.Contains(out.String(), "4524 valid, 0 invalid") {
		t.Fatalf("err %v, output %s", err, out.String())
	}
}
