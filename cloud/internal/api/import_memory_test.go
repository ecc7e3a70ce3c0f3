package api

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"runtime/metrics"
	"strconv"
	"testing"
	"time"

	"github.com/omnisync/omnisync/cloud/internal/catalog"
	"github.com/omnisync/omnisync/cloud/internal/store"
)

// TestImportMemory measures what a catalog import costs the hub's Go heap:
// a generated catalog of OMNI_IMPORT_PRODUCTS products (360000: 500 MB of
// JSON Lines) or the file OMNI_IMPORT_FILE, posted twice (new, then
// unchanged) to the API over a real SQLite store (OMNI_IMPORT_DB for
// PostgreSQL), with the peak of the heap (live and not yet swept objects,
// runtime/metrics, sampled every 20 ms) during each. The hub's down-sync
// of the changed products is not part of it: deploy/bench/catalog-import.sh
// measures the whole hub. Skipped unless one of the two is set (make
// import-bench).
func TestImportMemory(t *testing.T) {
	file := os.Getenv("OMNI_IMPORT_FILE")
	products, _ := strconv.Atoi(os.Getenv("OMNI_IMPORT_PRODUCTS"))
	if file == "" && products <= 0 {
		t.Skip("set OMNI_IMPORT_PRODUCTS or OMNI_IMPORT_FILE")
	}
	ctx := context.Background()
	if file == "" {
		file = filepath.Join(t.TempDir(), "catalog.jsonl")
		f, err := os.Create(file)
		if err != nil {
			t.Fatal(err)
		}
		if err := catalog.WriteSample(f, catalog.JSONL, 1, products); err != nil {
			t.Fatal(err)
		}
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
	}
	fi, err := os.Stat(file)
	if err != nil {
		t.Fatal(err)
	}
	dsn := os.Getenv("OMNI_IMPORT_DB")
	if dsn == "" {
		dsn = "sqlite:" + filepath.Join(t.TempDir(), "hub.db")
	}
	st, err := store.Open(ctx, dsn, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	srv, _ := serveAPI(t, st, Options{Store: st, Version: "test"}, nil)

	for _, run := range []string{"new", "unchanged"} {
		runtime.GC()
		peak := make(chan uint64)
		stop := make(chan struct{})
		go func() {
			s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
			var hi uint64
			tick := time.NewTicker(20 * time.Millisecond)
			defer tick.Stop()
			for {
				metrics.Read(s)
				hi = max(hi, s[0].Value.Uint64())
				select {
				case <-stop:
					peak <- hi
					return
				case <-tick.C:
				}
			}
		}()
		f, err := os.Open(file)
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		resp, err := http.Post(srv.URL+CatalogImportPath+"?format=jsonl", "", f)
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		took := time.Since(start)
		close(stop)
		p := <-peak
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: %s", run, resp.Status)
		}
		t.Logf("%s: %d MB catalog imported in %.1f s, peak Go heap %d MB", run, fi.Size()>>20, took.Seconds(), p>>20)
	}
}
