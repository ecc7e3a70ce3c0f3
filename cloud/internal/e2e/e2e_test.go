package e2e

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/omnisync/omnisync/shared/events"
	"github.com/omnisync/omnisync/shared/subjects"
	"github.com/omnisync/omnisync/shared/testkit"
)

// Ensure that events posted to an agent reach the hub's inventory API, with
// counts, deltas and reservations reconciled, on SQLite and on PostgreSQL.
func TestEndToEnd(t *testing.T) {
	t.Parallel()
	for _, db := range []string{"sqlite", "postgres"} {
		t.Run(db, func(t *testing.T) {
			dsn := ""
			if db == "postgres" {
				dsn = testkit.Postgres(t)
			}
			ns := testkit.StartNATS(t)
			h := startHub(t, ns.URL(), dsn)
			a := startAgent(t, "S1", "pos-1", ns.URL())
			b := startAgent(t, "S2", "pos-1", ns.URL())

			mustPost(t, a.URL, receiptBody("SKU-1", 50))
			mustPost(t, a.URL, `[`+saleBody("SKU-1", 2)+`,`+saleBody("SKU-1", 3)+`]`)
			mustPost(t, a.URL, `{"kind":"return","data":{"lines":[{"sku":"SKU-1","qty":1}]}}`)
			mustPost(t, a.URL, `{"kind":"reserve","data":{"reservation_id":"web-1","lines":[{"sku":"SKU-1","qty":4}]}}`)
			mustPost(t, b.URL, `{"kind":"count","data":{"lines":[{"sku":"SKU-1","qty":12}]}}`)
			mustPost(t, b.URL, saleBody("SKU-1", 2))

			testkit.Eventually(t, 30*time.Second, func() bool {
				got := onHand(t, h.URL, "SKU-1")
				return got["S1"] == 46 && got["S2"] == 10
			}, "inventory SKU-1: %v", onHand(t, h.URL, "SKU-1"))
			var v stockView
			getJSON(t, h.URL+"/v1/inventory/SKU-1", &v)
			if v.Total.OnHand != 56 || v.Total.Reserved != 4 || v.Total.Available != 52 {
				t.Fatalf("totals = %+v", v.Total)
			}
			waitDrained(t, a, 20*time.Second)
			waitDrained(t, b, 20*time.Second)

			var stores storesView
			testkit.Eventually(t, 10*time.Second, func() bool {
				getJSON(t, h.URL+"/v1/stores", &stores)
				return len(stores.Stores) == 2 && stores.Stores[0].Devices[0].Connected && stores.Stores[1].Devices[0].Connected
			}, "stores: %+v", stores)
			if d := stores.Stores[0].Devices[0]; stores.Stores[0].Store != "S1" || d.EventsApplied != 5 || d.Watermark != 5 {
				t.Fatalf("S1 device = %+v", d)
			}
			if getJSON(t, h.URL+"/v1/inventory/NOPE", nil) != http.StatusNotFound {
				t.Fatal("unknown SKU should be 404")
			}
			var low struct {
				Items []struct{ SKU, Location string } `json:"items"`
			}
			getJSON(t, h.URL+"/v1/inventory?location=S2&below=11", &low)
			if len(low.Items) != 1 || low.Items[0].Location != "S2" {
				t.Fatalf("low stock = %+v", low)
			}
		})
	}
}

// Ensure that bad input gets a clear 4xx naming the field and writes nothing.
func TestBadInput(t *testing.T) {
	t.Parallel()
	ns := testkit.StartNATS(t)
	h := startHub(t, ns.URL(), "")
	a := startAgent(t, "S1", "pos-1", ns.URL())
	tests := []struct {
		name  string
		body  string
		code  int
		field string
	}{
		{"malformed json", `{"kind":"sale","data":`, 400, ""},
		{"unknown kind", `{"kind":"teleport","data":{}}`, 400, "kind"},
		{"missing sku", `{"kind":"sale","data":{"lines":[{"qty":1}]}}`, 400, "data.lines[0].sku"},
		{"negative qty", `{"kind":"sale","data":{"lines":[{"sku":"A","qty":-4}]}}`, 400, "data.lines[0].qty"},
		{"absurd qty", `{"kind":"receipt","data":{"lines":[{"sku":"A","qty":999999999}]}}`, 400, "data.lines[0].qty"},
		{"one bad in a batch", `[` + saleBody("A", 1) + `,{"kind":"sale","data":{"lines":[]}}]`, 400, "[1].data.lines"},
		{"oversized", `[` + strings.Repeat(saleBody("A", 1)+",", 30000) + saleBody("A", 1) + `]`, 413, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, m, err := post(a.URL, tt.body)
			if err != nil {
				t.Fatal(err)
			}
			if code != tt.code {
				t.Fatalf("code = %d (%v), want %d", code, m, tt.code)
			}
			if m["error"] == nil || m["error"] == "" {
				t.Fatalf("no error message: %v", m)
			}
			if tt.field != "" && m["field"] != tt.field {
				t.Fatalf("field = %v, want %q", m["field"], tt.field)
			}
		})
	}
	if s := status(t, a); s.LastSeq != 0 {
		t.Fatalf("bad input wrote %d events", s.LastSeq)
	}

	// Garbage and forged events straight onto the stream: dead-lettered
	// with a reason, and the stream keeps flowing.
	nc, err := nats.Connect(ns.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	_ = nc.Publish(subjects.Event("S1", "pos-9"), []byte("not json at all"))
	forged := events.Envelope{V: 1, ID: "0190b6a2-7c1e-7b3a-9f00-1234567890ab",
		Origin: events.Origin{Store: "S2", Device: "pos-1", Epoch: 1, Seq: 1},
		HLC:    nowHLC(), Kind: events.KindReceipt, Data: json.RawMessage(`{"location":"S2","lines":[{"sku":"A","qty":1000}]}`)}
	fb, _ := json.Marshal(forged)
	_ = nc.Publish(subjects.Event("S1", "pos-1"), fb)
	nc.Flush()
	mustPost(t, a.URL, receiptBody("A", 7))
	testkit.Eventually(t, 20*time.Second, func() bool { return onHand(t, h.URL, "A")["S1"] == 7 }, "good event applied after garbage")
	var dl struct {
		DeadLetters []struct{ Reason, Subject string } `json:"dead_letters"`
	}
	testkit.Eventually(t, 10*time.Second, func() bool {
		getJSON(t, h.URL+"/v1/deadletters", &dl)
		return len(dl.DeadLetters) == 2
	}, "two dead letters: %+v", dl)
	if got := onHand(t, h.URL, "A")["S2"]; got != 0 {
		t.Fatalf("forged event changed S2's books: %d", got)
	}
	// Both are filed under the sender, S1: a forgery never lands in S2's list.
	if n, m := deadLetterCount(t, h.URL, "S1"), deadLetterCount(t, h.URL, "S2"); n != 2 || m != 0 {
		t.Fatalf("dead letters: S1 %d, S2 %d; want 2 and 0", n, m)
	}
	for _, d := range dl.DeadLetters {
		if d.Reason == "" {
			t.Fatalf("dead letter without reason: %+v", d)
		}
	}
}

// Ensure that with NATS down the agent keeps acknowledging sales, and once
// NATS is back every event reaches the hub exactly once.
func TestOutage(t *testing.T) {
	t.Parallel()
	ns := testkit.StartNATS(t)
	h := startHub(t, ns.URL(), "")
	a := startAgent(t, "S1", "pos-1", ns.URL())
	mustPost(t, a.URL, receiptBody("SKU-9", 10000))
	waitDrained(t, a, 20*time.Second)

	ns.Stop()
	testkit.Eventually(t, 10*time.Second, func() bool { return !status(t, a).Connected }, "agent sees the outage")
	var sold int64
	for i := 0; i < 300; i++ {
		start := time.Now()
		mustPost(t, a.URL, saleBody("SKU-9", 1+i%3))
		if d := time.Since(start); d > 2*time.Second {
			t.Logf("slow 202 while offline: %v", d)
		}
		sold += int64(1 + i%3)
	}
	if s := status(t, a); s.OutboxDepth < 300 {
		t.Fatalf("offline outbox depth %d, want >= 300", s.OutboxDepth)
	}
	ns.Restart()
	waitDrained(t, a, 60*time.Second)
	testkit.Eventually(t, 20*time.Second, func() bool { return onHand(t, h.URL, "SKU-9")["S1"] == 10000-sold },
		"books after outage: %v, want %d", onHand(t, h.URL, "SKU-9"), 10000-sold)
}

// Ensure that an agent SIGKILLed at random moments while selling and
// draining loses nothing it acknowledged and applies nothing twice. The POS
// clients behave like real tills: every request carries an Idempotency-Key,
// and a request whose answer was lost is retried until it is acknowledged,
// so the books must come out exact, with no ambiguous sales.
func TestAgentSIGKILL(t *testing.T) {
	t.Parallel()
	ns := testkit.StartNATS(t)
	h := startHub(t, ns.URL(), "")
	a := startAgent(t, "S1", "pos-1", ns.URL())
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 1))

	// Every event is a one-unit sale, so units sold, events applied and
	// the outbox's last seq must all equal the events acknowledged.
	var acked, retries, replays atomic.Int64
	kills := 4
	for round := 0; round <= kills; round++ {
		var wg sync.WaitGroup
		stop := make(chan struct{})
		for w := 0; w < 4; w++ {
			wg.Add(1)
			go func(w int, seed uint64) {
				defer wg.Done()
				r := rand.New(rand.NewPCG(seed, 2))
				for req := 0; ; req++ {
					select {
					case <-stop:
						return
					default:
					}
					n := 1 + r.IntN(20)
					var parts []string
					for i := 0; i < n; i++ {
						parts = append(parts, saleBody(fmt.Sprintf("SKU-%d", i%5), 1))
					}
					key := fmt.Sprintf("till-%d-round-%d-req-%d", w, round, req)
					for attempt := 0; ; attempt++ {
						code, replayed, err := postKeyed(a.URL, key, "["+strings.Join(parts, ",")+"]")
						if err == nil && code == http.StatusAccepted {
							acked.Add(int64(n))
							if replayed {
								replays.Add(1)
							}
							break
						}
						if err == nil {
							t.Errorf("till %d: status %d", w, code)
							return
						}
						if attempt > 600 {
							t.Errorf("till %d: agent unreachable: %v", w, err)
							return
						}
						retries.Add(1)
						time.Sleep(50 * time.Millisecond)
					}
				}
			}(w, rng.Uint64())
		}
		time.Sleep(time.Duration(200+rng.IntN(800)) * time.Millisecond)
		if round < kills {
			a.Kill() // mid-write and mid-drain
			a.Start()
		}
		close(stop)
		wg.Wait()
	}
	waitDrained(t, a, 60*time.Second)
	last := int64(status(t, a).LastSeq)
	if last != acked.Load() {
		t.Fatalf("outbox issued %d events; the tills had %d acknowledged (%d retries, %d answered from a key)", last, acked.Load(), retries.Load(), replays.Load())
	}
	testkit.Eventually(t, 20*time.Second, func() bool {
		var total int64
		for i := 0; i < 5; i++ {
			total += onHand(t, h.URL, fmt.Sprintf("SKU-%d", i))["S1"]
		}
		return total == -last
	}, "books after %d SIGKILLs: want %d units sold", kills, last)
	var stores struct {
		Stores []struct {
			Devices []struct {
				EventsApplied int64 `json:"events_applied"`
			} `json:"devices"`
		} `json:"stores"`
	}
	getJSON(t, h.URL+"/v1/stores", &stores)
	if got := stores.Stores[0].Devices[0].EventsApplied; got != last {
		t.Fatalf("hub applied %d events, the outbox issued %d", got, last)
	}
	t.Logf("%d events acknowledged across %d SIGKILLs (%d retries, %d answered from an idempotency key); %d applied, each once",
		acked.Load(), kills, retries.Load(), replays.Load(), last)
}
