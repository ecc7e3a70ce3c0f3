package api

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"io"
	"net/http"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/omnisync/omnisync/shared/testkit"
)

// BenchmarkCartAPI_Postgres measures cart operations a second through the
// hub's HTTP API on PostgreSQL: many web shop clients at once, each setting
// lines of its own carts (PUT /v1/carts/{id}/lines/{sku}, which answers
// the whole cart), the hub's group commit writing them in batches.
//
// "app" is a channel that reserves on order (the edit is the cart alone);
// "web" reserves on cart (each edit also re-reserves the cart's lines at
// the online location); "get" reads the carts (GET /v1/carts/{id}).
//
//	go test -run XXX -bench CartAPI -benchtime 5000x ./cloud/internal/api/
func BenchmarkCartAPI_Postgres(b *testing.B) {
	for _, channel := range []string{"app", "web", "get"} {
		b.Run(channel, func(b *testing.B) { benchCartAPI(b, channel) })
	}
}

func benchCartAPI(b *testing.B, channel string) {
	app := "cartbench-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	dsn := testkit.Postgres(b)
	base, _, st, _ := cartAPI(b, dsn+"&pool_max_conns=24&application_name="+app)
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	var (
		mu      sync.Mutex
		steps   = map[string]time.Duration{}
		batches int
	)
	st.ObserveApply(func(step string, d time.Duration) {
		mu.Lock()
		defer mu.Unlock()
		steps[step] += d
		if step == "commit" {
			batches++
		}
	})
	const clients = 128
	carts := make([]string, clients)
	for i := range carts {
		var c Cart
		status := doJSON(b, "POST", base+"/v1/carts", `{"lines":[{"sku":"SKU-0","qty":1}]}`, &c)
		if status != 201 {
			b.Fatalf("create: %d", status)
		}
		carts[i] = c.CartID
	}
	tr := &http.Transport{MaxIdleConnsPerHost: clients}
	client := &http.Client{Transport: tr}
	var next, failed atomic.Int64
	// The clients run in this process too: CPU per operation counts them,
	// an upper bound of the hub's.
	var ru0 syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru0)
	pg0 := serverCPU(b, db, app)
	mu.Lock()
	clear(steps)
	batches = 0
	mu.Unlock()
	b.ResetTimer()
	b.SetParallelism(clients / runtime.GOMAXPROCS(0))
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			n := next.Add(1)
			id := carts[n%clients]
			req, _ := http.NewRequest("PUT", fmt.Sprintf("%s/v1/carts/%s/lines/SKU-%d", base, id, n%20), strings.NewReader(fmt.Sprintf(`{"qty":%d,"unit_price":999,"channel":%q}`, n%5, channel)))
			if channel == "get" {
				req, _ = http.NewRequest("GET", base+"/v1/carts/"+id, nil)
			}
			req.Header.Set("Authorization", "Bearer "+adminToken)
			resp, err := client.Do(req)
			if err != nil || resp.StatusCode != 200 {
				failed.Add(1)
			}
			if resp != nil {
				// Read to the end, so the connection is kept alive as a
				// web shop's client keeps it.
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		}
	})
	b.StopTimer()
	if failed.Load() > 0 {
		b.Fatalf("%d operations failed", failed.Load())
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "ops/s")
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	cpu := ru.Utime.Nano() + ru.Stime.Nano() - ru0.Utime.Nano() - ru0.Stime.Nano()
	b.ReportMetric(float64(cpu)/1e3/float64(b.N), "process-cpu-us/op")
	var pg time.Duration
	for pid, t := range serverCPU(b, db, app) {
		pg += t - pg0[pid]
	}
	b.ReportMetric(float64(pg.Microseconds())/float64(b.N), "pg-cpu-us/op")
	mu.Lock()
	defer mu.Unlock()
	if batches > 0 {
		b.ReportMetric(float64(b.N)/float64(batches), "ops/batch")
		for step, d := range steps {
			if ms := d.Seconds() * 1000 / float64(batches); ms >= 0.05 {
				b.ReportMetric(ms, step+"-ms/batch")
			}
		}
	}
}

// serverCPU returns the CPU time of each PostgreSQL server process (on
// this machine) serving a connection named app.
func serverCPU(b *testing.B, db *sql.DB, app string) map[int]time.Duration {
	rows, err := db.QueryContext(context.Background(), `SELECT pid FROM pg_stat_activity WHERE application_name = $1`, app)
	if err != nil {
		b.Fatal(err)
	}
	defer rows.Close()
	out := map[int]time.Duration{}
	for rows.Next() {
		var pid int
		if err := rows.Scan(&pid); err != nil {
			b.Fatal(err)
		}
		raw, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
		if err != nil {
			continue
		}
		f := strings.Fields(string(raw[bytes.LastIndexByte(raw, ')')+2:]))
		if len(f) < 13 {
			continue
		}
		ut, _ := strconv.ParseInt(f[11], 10, 64)
		stime, _ := strconv.ParseInt(f[12], 10, 64)
		out[pid] = time.Duration(ut+stime) * time.Second / 100 // USER_HZ
	}
	return out
}
