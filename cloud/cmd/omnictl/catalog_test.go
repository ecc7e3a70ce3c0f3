package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/omnisync/omnisync/cloud/internal/api"
	"github.com/omnisync/omnisync/cloud/internal/auth"
	"github.com/omnisync/omnisync/cloud/internal/hqact"
	"github.com/omnisync/omnisync/cloud/internal/store"
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

// hubAPI serves the real hub API over a real SQLite store, behind real
// authentication; testToken is its admin's token.
func hubAPI(t *testing.T) (*httptest.Server, *store.Store) {
	t.Helper()
	return hubAPIAt(t, filepath.Join(t.TempDir(), "hub.db"))
}

// hubAPIAt is hubAPI with its SQLite database at path.
func hubAPIAt(t *testing.T, path string) (*httptest.Server, *store.Store) {
	t.Helper()
	st, err := store.Open(context.Background(), "sqlite:"+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	svc := auth.New(auth.Options{Store: st})
	if err := svc.Bootstrap(context.Background(), testToken, io.Discard); err != nil {
		t.Fatal(err)
	}
	rt := auth.NewRouter(svc)
	api.New(api.Options{Store: st, Acts: hqact.New(hqact.Options{Store: st})}).Register(rt)
	svc.Register(rt)
	srv := httptest.NewServer(api.LimitBodies(rt, 1<<20))
	t.Cleanup(srv.Close)
	return srv, st
}

const testToken = "omni_omnictl-test-admin-token-00"

// runImport runs `omnictl catalog import` with args against hub, sending
// testToken unless token says otherwise.
func runImport(t *testing.T, hub string, args ...string) (string, int) {
	t.Helper()
	return runImportAs(t, hub, testToken, args...)
}

func runImportAs(t *testing.T, hub, token string, args ...string) (string, int) {
	t.Helper()
	var out, errw bytes.Buffer
	cmd := catalogImportCmd(&out, &errw, &hubConn{url: hub, token: token})
	cmd.SetArgs(args)
	cmd.SetOut(&out)
	cmd.SetErr(&errw)
	cmd.SilenceErrors, cmd.SilenceUsage = true, true
	cmd.SetFlagErrorFunc(flagUsageError) // as the root command does
	err := cmd.Execute()
	if err != nil {
		out.WriteString("error: " + err.Error() + "\n")
	}
	return out.String(), exitCode(err)
}

// Ensure that `omnictl catalog import` imports the sample catalog into a
// real hub, refuses a file with a bad row before sending anything, imports
// the good rows with --partial, and exits 2 on usage errors.
func TestCatalogImport(t *testing.T) {
	srv, st := hubAPI(t)
	ctx := context.Background()
	variants := func() int64 {
		_, v, err := st.CatalogStats(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	sample := "../../internal/catalog/testdata/sample-catalog.jsonl"
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.csv")
	header := "sku,product_id,gtin,name,brand,size,colour,price,currency,image_url,category\n"
	if err := os.WriteFile(bad, []byte(header+
		"TSH-1-BLK-M,TSH-1,4006381333931,Tee,Kestrel,M,Black,19.99,EUR,,Tops\n"+
		"TSH-1-BLK-L,TSH-1,4006381333932,Tee,Kestrel,L,Black,19.99,EUR,,Tops\n"+
		"TSH-1-BLK-S,TSH-1,5012345678900,Tee,Kestrel,S,Black,19.99,EUR,,Tops\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	out, code := runImport(t, srv.URL, bad)
	if code != 1 || !strings.Contains(out, "bad.csv:3: gtin:") || !strings.Contains(out, "nothing was sent") || variants() != 0 {
		t.Fatalf("bad file: exit %d, %d variants stored, output:\n%s", code, variants(), out)
	}
	out, code = runImport(t, srv.URL, "--partial", bad)
	if code != 0 || !strings.Contains(out, "bad.csv:3: gtin:") || !strings.Contains(out, "2 variants (2 new, 0 updated, 0 unchanged), 1 products changed, 1 rows rejected") || variants() != 2 {
		t.Fatalf("--partial: exit %d, output:\n%s", code, out)
	}
	out, code = runImport(t, srv.URL, sample)
	if code != 0 || !strings.Contains(out, "4524 variants (4524 new, 0 updated, 0 unchanged)") || variants() != 4526 {
		t.Fatalf("sample: exit %d, output:\n%s", code, out)
	}
	out, code = runImport(t, srv.URL, sample)
	if code != 0 || !strings.Contains(out, "(0 new, 0 updated, 4524 unchanged), 0 products changed") {
		t.Fatalf("sample again: exit %d, output:\n%s", code, out)
	}
	// A GTIN held by another SKU is refused by the hub and reported by line.
	thief := filepath.Join(dir, "thief.csv")
	if err := os.WriteFile(thief, []byte(header+"\n\nNEW-1,NEW,4006381333931,Tee,Kestrel,M,Black,19.99,EUR,,Tops\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	out, code = runImport(t, srv.URL, thief)
	if code != 1 || !strings.Contains(out, "thief.csv:4: gtin: GTIN already belongs to SKU TSH-1-BLK-M") || !strings.Contains(out, "refused") {
		t.Fatalf("GTIN conflict: exit %d, output:\n%s", code, out)
	}

	for _, args := range [][]string{{}, {"a", "b"}, {"--format", "xml", sample}, {"--nope", sample}} {
		if _, code := runImport(t, srv.URL, args...); code != 2 {
			t.Errorf("%v: exit %d, want 2", args, code)
		}
	}
	if out, code := runImport(t, "http://127.0.0.1:1", sample); code != 1 || !strings.Contains(out, "hub unreachable") {
		t.Errorf("no hub: exit %d, output:\n%s", code, out)
	}
	// Without a token, or with a wrong one, nothing is imported: a forged
	// price list must not reach the stores.
	t.Setenv("OMNI_TOKEN", "")
	t.Setenv("XDG_CONFIG_HOME", t.TempDir())
	for _, token := range []string{"", "omni_forged-token-0000000000000"} {
		before := variants()
		out, code := runImportAs(t, srv.URL, token, "--partial", bad)
		if code != 1 || !strings.Contains(out, "401") || !strings.Contains(out, "omnictl login") || variants() != before {
			t.Errorf("token %q: exit %d, output:\n%s", token, code, out)
		}
	}
}

// Ensure that `omnictl catalog sample` writes the shipped sample catalog
// for its seed and size, to a file or standard output.
func TestCatalogSample(t *testing.T) {
	want, err := os.ReadFile("../../internal/catalog/testdata/sample-catalog.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "sample.jsonl")
	for _, args := range [][]string{{"--products", "1000"}, {"--products", "1000", "-o", file}} {
		var out bytes.Buffer
		cmd := catalogSampleCmd(&out)
		cmd.SetArgs(args)
		if err := cmd.Execute(); err != nil {
			t.Fatal(err)
		}
		got := out.Bytes()
		if len(args) > 2 {
			if got, err = os.ReadFile(file); err != nil {
				t.Fatal(err)
			}
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%v: not the shipped sample catalog (%d bytes, want %d)", args, len(got), len(want))
		}
	}
	cmd := catalogSampleCmd(io.Discard)
	cmd.SetArgs([]string{"--format", "xml"})
	cmd.SilenceErrors, cmd.SilenceUsage = true, true
	if err := cmd.Execute(); exitCode(err) != 2 {
		t.Fatalf("--format xml: %v", err)
	}
}

// Ensure that `omnictl catalog import` fails at once, sending nothing,
// while another import runs on the hub, and with --wait tries again until
// the hub is free.
func TestCatalogImport_Busy(t *testing.T) {
	srv, st := hubAPI(t)
	lock, err := st.LockCatalog(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	sample := "../../internal/catalog/testdata/sample-catalog.jsonl"
	out, code := runImport(t, srv.URL, sample)
	if code != 1 || !strings.Contains(out, "another catalog import is running") || !strings.Contains(out, "--wait") {
		t.Fatalf("busy hub: exit %d, output:\n%s", code, out)
	}

	// The hub is freed once it has refused the next attempt.
	var refused atomic.Int32
	busy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := httptest.NewRecorder()
		srv.Config.Handler.ServeHTTP(rec, r)
		if rec.Code == http.StatusConflict && refused.Add(1) == 1 {
			lock.Unlock()
			rec.Header().Set("Retry-After", "0")
		}
		for k, v := range rec.Header() {
			w.Header()[k] = v
		}
		w.WriteHeader(rec.Code)
		_, _ = w.Write(rec.Body.Bytes())
	}))
	defer busy.Close()
	var stdout, stderr bytes.Buffer
	cmd := catalogImportCmd(&stdout, &stderr, &hubConn{url: busy.URL, token: testToken})
	cmd.SetArgs([]string{"--wait", "1m", sample})
	if err := cmd.Execute(); err != nil || refused.Load() != 1 || !strings.Contains(stderr.String(), "trying again") ||
		!strings.Contains(stdout.String(), "4524 variants (4524 new") {
		t.Fatalf("--wait: %v, refused %d times, output:\n%s\n%s", err, refused.Load(), stdout.String(), stderr.String())
	}
}
