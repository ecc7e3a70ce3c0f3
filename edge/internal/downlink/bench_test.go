package downlink

import (
	"bufio"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/omnisync/omnisync/edge/internal/productcache/cachetest"
	"github.com/omnisync/omnisync/shared/downsync"
	"github.com/omnisync/omnisync/shared/testkit"
)

// A chain's catalog as one store reads it: 25k products of 4 variants
// (100k SKUs), their review summaries, and stock of every SKU here, at one
// nearby store and online.
const (
	benchProducts = 25_000
	// benchChangedPct of the keys change benchChanges times each while the
	// agent is away: "a week offline".
	benchChangedPct = 5
	benchChanges    = 20
)

var benchLocations = []string{"S1", "S2", "online"}

// benchKeys lists every key of the benchmark bucket, products and reviews
// first, then stock location by location (the order a hub's first publish
// would have).
func benchKeys() []string {
	keys := make([]string, 0, benchProducts*(2+cachetest.Variants*len(benchLocations)))
	for i := range benchProducts {
		keys = append(keys, downsync.ProductKey(cachetest.Product(i)), downsync.ReviewKey(cachetest.Product(i)))
	}
	for _, l := range benchLocations {
		for i := range benchProducts {
			for v := range cachetest.Variants {
				keys = append(keys, downsync.StockKey(l, cachetest.SKU(i, v)))
			}
		}
	}
	return keys
}

// benchDoc is the document of key at version.
func benchDoc(key string, version int64) []byte {
	k, err := downsync.ParseKey(key)
	if err != nil {
		panic(err)
	}
	var i int
	switch k.Kind {
	case downsync.KindProduct, downsync.KindReview:
		i, _ = strconv.Atoi(strings.TrimPrefix(k.ProductID, "P-"))
	}
	switch k.Kind {
	case downsync.KindProduct:
		return cachetest.JSON(cachetest.ProductDoc(i, version))
	case downsync.KindReview:
		return cachetest.JSON(cachetest.ReviewSummary(i, version))
	default:
		return cachetest.JSON(cachetest.StockDoc(k.Location, k.SKU, version%7, version))
	}
}

// publish writes docs into the bucket as fast as JetStream takes them.
func (h *hub) publish(b *testing.B, keys []string, version int64) {
	b.Helper()
	js, err := jetstream.New(h.nc, jetstream.WithPublishAsyncMaxPending(4096))
	if err != nil {
		b.Fatal(err)
	}
	for _, k := range keys {
		for {
			_, err := js.PublishAsync(downsync.Subject(k), benchDoc(k, version))
			if err == nil {
				break
			}
			if err != jetstream.ErrTooManyStalledMsgs {
				b.Fatal(err)
			}
			time.Sleep(time.Millisecond)
		}
	}
	select {
	case <-js.PublishAsyncComplete():
	case <-time.After(time.Minute):
		b.Fatal("publishes not acknowledged")
	}
}

// BenchmarkBootstrapAndCatchUp measures what a store's agent costs the
// network and itself: bootstrapping a 100k-variant catalog with stock of 3
// locations (350k keys) into an empty cache, and catching up after being
// away while 5% of the keys changed 20 times each. Figures, never
// asserted:
//
//	go test ./edge/internal/downlink -run '^$' -bench BenchmarkBootstrapAndCatchUp -benchtime 1x
//
// bootstrap-s, bootstrap-msgs, bootstrap-MiB (bucket messages as received:
// subjects, replies, headers, payloads) and payload-MiB (the connection's
// payload bytes), cache-file-MiB; catchup-msgs (should be the number of
// changed keys, not the changes), catchup-KiB and catchup-s; then the same
// bootstrap by an omni-edge process: process-bootstrap-s, process-rss-MiB
// (its resident set, the mapped cache file included) and process-heap-MiB
// (its Go heap in use).
func BenchmarkBootstrapAndCatchUp(b *testing.B) {
	for b.Loop() {
		ns := testkit.StartNATS(b)
		h := startHub(b, ns)
		keys := benchKeys()
		start := time.Now()
		h.publish(b, keys, 1)
		b.Logf("published %d keys in %v", len(keys), time.Since(start).Round(time.Millisecond))

		a := newAgent(b, ns)
		a.o.Nearby = []string{"S2"}
		a.tune = func(o *Options) { o.MaxBatch = 0 } // the agent's default
		start = time.Now()
		a.start()
		a.waitCaughtUpWithin(h, 5*time.Minute)
		took := time.Since(start)
		st := a.dl.Status()
		b.ReportMetric(took.Seconds(), "bootstrap-s")
		b.ReportMetric(float64(st.MessagesReceived), "bootstrap-msgs")
		b.ReportMetric(float64(st.BytesReceived)/(1<<20), "bootstrap-MiB")
		b.ReportMetric(float64(a.nc.Stats().InBytes)/(1<<20), "payload-MiB")
		b.ReportMetric(float64(st.CacheBytes)/(1<<20), "cache-file-MiB")

		// A week away: 5% of the keys change 20 times each.
		a.stop()
		var changed []string
		for i, k := range keys {
			if i%(100/benchChangedPct) == 0 {
				changed = append(changed, k)
			}
		}
		for v := int64(2); v <= 1+benchChanges; v++ {
			h.publish(b, changed, v)
		}
		c := newAgent(b, ns)
		c.o, c.tune = a.o, a.tune
		start = time.Now()
		c.start()
		c.waitCaughtUpWithin(h, 5*time.Minute)
		st = c.dl.Status()
		b.ReportMetric(time.Since(start).Seconds(), "catchup-s")
		b.ReportMetric(float64(st.MessagesReceived), "catchup-msgs")
		b.ReportMetric(float64(st.BytesReceived)/(1<<10), "catchup-KiB")
		b.Logf("catch-up: %d keys changed %d times each (%d publishes); received %d messages, %d bytes",
			len(changed), benchChanges, len(changed)*benchChanges, st.MessagesReceived, st.BytesReceived)
		c.stop()

		// The agent itself, as a process: bootstrap time and memory.
		took, rss, heap := bootstrapProcess(b, ns, h.lastSeq())
		b.ReportMetric(took.Seconds(), "process-bootstrap-s")
		b.ReportMetric(float64(rss)/(1<<20), "process-rss-MiB")
		b.ReportMetric(float64(heap)/(1<<20), "process-heap-MiB")
	}
}

// bootstrapProcess runs omni-edge (store S1, nearby S2) with an empty data
// directory until its cache has caught up to seq, and returns how long
// that took, its resident set and its Go heap in use then.
func bootstrapProcess(b *testing.B, ns *testkit.NATS, seq uint64) (time.Duration, int64, int64) {
	bin := testkit.BuildBinary(b, "github.com/omnisync/omnisync/edge/cmd/omni-edge")
	addr := testkit.FreeAddr(b)
	cmd := exec.Command(bin, "--store", "S1", "--device", "kiosk-1", "--nats-url", ns.URL(),
		"--data-dir", b.TempDir(), "--http", addr, "--nearby", "S2", "--log-level", "warn")
	cmd.Stderr = os.Stderr
	start := time.Now()
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	defer func() {
		_ = cmd.Process.Signal(os.Interrupt)
		_ = cmd.Wait()
	}()
	testkit.Eventually(b, 5*time.Minute, func() bool {
		var st struct {
			Downsync Status `json:"downsync"`
		}
		resp, err := http.Get("http://" + addr + "/v1/status")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		if json.NewDecoder(resp.Body).Decode(&st) != nil {
			return false
		}
		return st.Downsync.LastSeq >= seq && st.Downsync.SyncedAgeSeconds >= 0
	}, "omni-edge caught up")
	took := time.Since(start)
	var heap int64
	if resp, err := http.Get("http://" + addr + "/metrics"); err == nil {
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			if v, ok := strings.CutPrefix(sc.Text(), "go_memstats_heap_inuse_bytes "); ok {
				f, _ := strconv.ParseFloat(v, 64)
				heap = int64(f)
			}
		}
		resp.Body.Close()
	}
	return took, rssOf(cmd.Process.Pid), heap
}

func (a *agent) waitCaughtUpWithin(h *hub, d time.Duration) {
	a.t.Helper()
	want := h.lastSeq()
	testkit.Eventually(a.t, d, func() bool {
		st := a.cache.Stats()
		return st.LastSeq >= want && !st.SyncedAt.IsZero()
	}, "caught up to %d", want)
}

// rssOf is a process's resident set (Linux; 0 elsewhere).
func rssOf(pid int) int64 {
	f, err := os.Open("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if v, ok := strings.CutPrefix(s.Text(), "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb << 10
		}
	}
	return 0
}
