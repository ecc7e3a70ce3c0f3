package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/omnisync/omnisync/shared/events"
	"github.com/omnisync/omnisync/shared/hlc"
	"github.com/omnisync/omnisync/shared/ids"
	"github.com/omnisync/omnisync/shared/subjects"
	"github.com/omnisync/omnisync/shared/testkit"
)

// BenchmarkSaleToConsole measures how long a sale takes from a store to
// the HQ console's event stream while 100 stores trade: 100 simulated
// agents publish sales over real NATS JetStream (as agents do, one subject
// per store and device, each sale of its own position) at about 5 a
// second each for 10 seconds, an in-process hub on SQLite applies them,
// and one console stream (GET /v1/stream) records when each sale's
// position is announced. Reports p50 and p99 in milliseconds.
//
//	go test -run - -bench SaleToConsole -benchtime 1x ./cloud/internal/e2e/
func BenchmarkSaleToConsole(b *testing.B) {
	const stores, perSecond, seconds = 100, 5, 10
	ns := testkit.StartNATS(b)
	h := startHub(b, ns.URL(), "")
	nc, err := nats.Connect(ns.URL())
	if err != nil {
		b.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		b.Fatal(err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, h.URL+"/v1/stream", nil)
	resp, err := (&http.Client{Transport: httpClient.Transport}).Do(req)
	if err != nil || resp.StatusCode != http.StatusOK {
		b.Fatalf("stream: %v %v", resp, err)
	}
	defer resp.Body.Close()

	var mu sync.Mutex
	sent := map[string]time.Time{} // sku@location -> published
	var lat []time.Duration
	seen := make(chan struct{}, 1)
	go func() {
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 1<<20), 1<<24)
		for sc.Scan() {
			line, ok := strings.CutPrefix(sc.Text(), "data: ")
			if !ok {
				continue
			}
			now := time.Now()
			var ch struct {
				Positions []struct{ SKU, Location string } `json:"positions"`
			}
			if json.Unmarshal([]byte(line), &ch) != nil {
				continue
			}
			mu.Lock()
			for _, p := range ch.Positions {
				k := p.SKU + "@" + p.Location
				if t0, ok := sent[k]; ok {
					lat = append(lat, now.Sub(t0))
					delete(sent, k)
				}
			}
			mu.Unlock()
			select {
			case seen <- struct{}{}:
			default:
			}
		}
	}()

	b.ResetTimer()
	var wg sync.WaitGroup
	total := stores * perSecond * seconds
	for s := range stores {
		wg.Add(1)
		go func() {
			defer wg.Done()
			store := fmt.Sprintf("S%03d", s)
			tick := time.NewTicker(time.Second / perSecond)
			defer tick.Stop()
			// Stores start spread over a second, as tills do.
			time.Sleep(time.Duration(s) * time.Second / stores)
			for seq := uint64(1); seq <= perSecond*seconds; seq++ {
				<-tick.C
				sku := fmt.Sprintf("LAT-%d", seq)
				data, _ := json.Marshal(events.StockMove{Location: store, Lines: []events.Line{{SKU: sku, Qty: 1}}})
				now := time.Now()
				env := events.Envelope{V: events.CurrentVersion, ID: ids.NewEventID(now),
					Origin: events.Origin{Store: store, Device: "pos-1", Epoch: 1, Seq: seq},
					HLC:    hlc.Timestamp{Wall: now.UnixMilli()}, Kind: events.KindSale, Data: data}
				body, _ := json.Marshal(env)
				mu.Lock()
				sent[sku+"@"+store] = now
				mu.Unlock()
				if _, err := js.PublishAsync(subjects.Event(store, "pos-1"), body); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	deadline := time.After(30 * time.Second)
	for {
		mu.Lock()
		n := len(lat)
		mu.Unlock()
		if n == total {
			break
		}
		select {
		case <-seen:
		case <-deadline:
			b.Fatalf("only %d of %d sales reached the stream", n, total)
		}
	}
	b.StopTimer()
	slices.Sort(lat)
	p := func(q float64) float64 { return float64(lat[int(q*float64(len(lat)-1))]) / float64(time.Millisecond) }
	b.ReportMetric(p(0.5), "p50-ms")
	b.ReportMetric(p(0.99), "p99-ms")
	b.ReportMetric(float64(lat[len(lat)-1])/float64(time.Millisecond), "max-ms")
	b.Logf("%d sales from %d stores: p50 %.1f ms, p99 %.1f ms, max %.1f ms", len(lat), stores, p(0.5), p(0.99), p(1))
}
