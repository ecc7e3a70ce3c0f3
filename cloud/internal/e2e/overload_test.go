package e2e

import (
	"fmt"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/omnisync/omnisync/shared/subjects"
	"github.com/omnisync/omnisync/shared/testkit"
)

// deadLetterCount is how many dead letters the hub holds for store.
func deadLetterCount(t testing.TB, hubURL, store string) int {
	var dls struct {
		DeadLetters []struct {
			Reason string `json:"reason"`
		} `json:"dead_letters"`
	}
	getJSON(t, hubURL+"/v1/deadletters?limit=1000&store="+store, &dls)
	return len(dls.DeadLetters)
}

// Ensure that a flood of poison on a store's subjects is dead-lettered
// with reasons while the store's real sales keep flowing, and that a hub
// outage long enough to fill an agent's disk budget costs compactable
// events first, refuses sales (507) only when the budget is exhausted, and
// loses nothing the agent accepted.
func TestPoisonAndOverload(t *testing.T) {
	t.Parallel()
	ns := testkit.StartNATS(t)
	h := startHubProcess(t, "hub", ns.URL(), "")
	a := startAgent(t, "S1", "pos-1", ns.URL(), "--outbox-budget", "1048576")

	// Poison: 1,500 messages on S1's subjects from something that is not an
	// agent: garbage, broken JSON, bodies that fail validation, and events
	// claiming to be S2's. Meanwhile the till sells.
	nc, err := nats.Connect(ns.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	poison := []string{
		"\x00\xff garbage",
		`{"v":1,"id":"not-a-uuid"`,
		`{"v":1,"id":"0190a6b4-5c3e-7c3e-8c3e-0190a6b45c3e","origin":{"store":"S1","device":"pos-9","epoch":1,"seq":%d},"hlc":{"wall":1},"kind":"sale","data":{"location":"S1","lines":[]}}`,
		`{"v":1,"id":"0190a6b4-5c3e-7c3e-8c3e-0190a6b45c3f","origin":{"store":"S2","device":"pos-9","epoch":2,"seq":%d},"hlc":{"wall":1},"kind":"sale","data":{"location":"S2","lines":[{"sku":"X","qty":1}]}}`,
	}
	const floods = 1500
	var sold atomic.Int64
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; i < 300; i++ {
			if code, _, err := post(a.URL, saleBody(fmt.Sprintf("SKU-%d", i%7), 1)); err == nil && code == http.StatusAccepted {
				sold.Add(1)
			}
		}
	}()
	for i := 0; i < floods; i++ {
		body := poison[i%len(poison)]
		if i%len(poison) >= 2 {
			body = fmt.Sprintf(body, i+1)
		}
		if _, err := js.PublishAsync(subjects.Event("S1", "pos-9"), []byte(body)); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case <-js.PublishAsyncComplete():
	case <-time.After(30 * time.Second):
		t.Fatal("poison not published")
	}
	<-done
	waitDrained(t, a, 60*time.Second)
	testkit.Eventually(t, 60*time.Second, func() bool { return appliedB(t, h.URL) >= sold.Load() }, "the till's sales applied through the poison")
	var total int64
	for i := 0; i < 7; i++ {
		total += onHand(t, h.URL, fmt.Sprintf("SKU-%d", i))["S1"]
	}
	if total != -sold.Load() {
		t.Fatalf("S1 books %d, want %d", total, -sold.Load())
	}
	testkit.Eventually(t, 30*time.Second, func() bool { return deadLetterCount(t, h.URL, "S1") >= 1000 }, "poison dead-lettered under S1: %d", deadLetterCount(t, h.URL, "S1"))
	if n := deadLetterCount(t, h.URL, "S2"); n != 0 {
		t.Fatalf("S1's forgeries filed under S2: %d", n)
	}
	t.Logf("%d sales applied through %d poison messages, dead-lettered under S1 with reasons (%d listed: the API caps a page at 1,000)", sold.Load(), floods, deadLetterCount(t, h.URL, "S1"))

	// The hub goes away; the store keeps trading until its disk budget is
	// spent. Scans (compactable) are refused first, sales last.
	h.Kill()
	var accepted, scanRefusedAt, saleRefusedAt int64
	for i := 0; i < 20000 && saleRefusedAt == 0; i++ {
		code, _, err := post(a.URL, saleBody(fmt.Sprintf("SKU-%d", i%7), 1))
		if err != nil {
			t.Fatal(err)
		}
		switch code {
		case http.StatusAccepted:
			accepted++
		case http.StatusInsufficientStorage:
			saleRefusedAt = accepted
		default:
			t.Fatalf("sale answered %d", code)
		}
		if scanRefusedAt == 0 && i%50 == 0 {
			if code, _, _ := post(a.URL, `{"kind":"scan","data":{"code":"]E09506000134352"}}`); code == http.StatusInsufficientStorage {
				scanRefusedAt = accepted
			}
		}
	}
	if saleRefusedAt == 0 || scanRefusedAt == 0 || scanRefusedAt >= saleRefusedAt {
		t.Fatalf("scans refused after %d sales, sales after %d: compactable events must go first", scanRefusedAt, saleRefusedAt)
	}
	t.Logf("hub down: scans refused (507) after %d sales, sales after %d", scanRefusedAt, saleRefusedAt)

	// The hub returns: everything accepted is applied once, and the till
	// sells again.
	h.Start()
	waitDrained(t, a, 120*time.Second)
	want := -(sold.Load() + accepted)
	testkit.Eventually(t, 60*time.Second, func() bool {
		var total int64
		for i := 0; i < 7; i++ {
			total += onHand(t, h.URL, fmt.Sprintf("SKU-%d", i))["S1"]
		}
		return total == want
	}, "S1 books after the outage: want %d", want)
	if code, _, err := post(a.URL, saleBody("SKU-0", 1)); err != nil || code != http.StatusAccepted {
		t.Fatalf("after the outage a sale answered %d %v", code, err)
	}
}
