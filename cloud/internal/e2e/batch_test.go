package e2e

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/omnisync/omnisync/shared/events"
	"github.com/omnisync/omnisync/shared/ids"
	"github.com/omnisync/omnisync/shared/subjects"
	"github.com/omnisync/omnisync/shared/testkit"
)

// Ensure that the hub applies batch messages (several events of one device
// in one JetStream message) event by event: good events apply exactly once
// however the batches are regrouped on a republish, a bad event inside a
// batch is dead-lettered alone with its reason under the sender, and a
// body that is not a batch at all is one dead letter.
func TestBatchMessages(t *testing.T) {
	t.Parallel()
	ns := testkit.StartNATS(t)
	h := startHub(t, ns.URL(), "")
	nc, err := nats.Connect(ns.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()

	const epoch = 7
	env := func(store string, seq uint64, data string) []byte {
		e := events.Envelope{V: 1, ID: ids.NewEventID(time.Now()),
			Origin: events.Origin{Store: store, Device: "pos-7", Epoch: epoch, Seq: seq},
			HLC:    nowHLC(), Kind: events.KindReceipt, Data: json.RawMessage(data)}
		b, err := json.Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	receipt := func(qty int) string { return fmt.Sprintf(`{"location":"S1","lines":[{"sku":"BATCH","qty":%d}]}`, qty) }
	good := make([][]byte, 7)
	for seq := 1; seq <= 6; seq++ {
		good[seq] = env("S1", uint64(seq), receipt(seq)) // on_hand 1+2+3+4+6 = 16 (5 is invalid)
	}
	good[5] = env("S1", 5, `{"location":"S1","lines":[]}`)
	forged := env("S2", 1, `{"location":"S2","lines":[{"sku":"BATCH","qty":1000}]}`)
	subj := subjects.Event("S1", "pos-7")
	publish := func(body []byte) {
		t.Helper()
		if err := nc.Publish(subj, body); err != nil {
			t.Fatal(err)
		}
	}
	publish(events.AppendBatch(nil, good[1], good[2], good[3]))
	publish(events.AppendBatch(nil, good[4], good[5], forged, []byte(`"not an event"`), good[6]))
	// A republish regrouped differently, and one event alone: duplicates.
	publish(events.AppendBatch(nil, good[2], good[3], good[4]))
	publish(good[6])
	// Not batches at all.
	publish([]byte(`[{"v":1,"id":`))
	publish([]byte(`[]`))
	publish([]byte("[" + strings.Repeat(`{},`, events.MaxBatchEvents) + "{}]"))
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}

	testkit.Eventually(t, 20*time.Second, func() bool { return onHand(t, h.URL, "BATCH")["S1"] == 16 }, "S1 on hand %v, want 16", onHand(t, h.URL, "BATCH"))
	var dl struct {
		DeadLetters []struct {
			Reason string `json:"reason"`
			Store  string `json:"store"`
			Seq    uint64 `json:"seq"`
		} `json:"dead_letters"`
	}
	testkit.Eventually(t, 10*time.Second, func() bool {
		getJSON(t, h.URL+"/v1/deadletters?store=S1", &dl)
		return len(dl.DeadLetters) == 6
	}, "six dead letters under S1: %+v", dl)
	want := []string{"data.lines", "does not match subject", "undecodable", "malformed batch", "no events", "at most 1000"}
	for _, w := range want {
		found := false
		for _, d := range dl.DeadLetters {
			found = found || strings.Contains(d.Reason, w)
		}
		if !found {
			t.Errorf("no dead letter mentions %q: %+v", w, dl.DeadLetters)
		}
	}
	if n := deadLetterCount(t, h.URL, "S2"); n != 0 {
		t.Fatalf("%d dead letters filed under S2, want 0", n)
	}
	var st storesView
	testkit.Eventually(t, 10*time.Second, func() bool {
		getJSON(t, h.URL+"/v1/stores", &st)
		for _, s := range st.Stores {
			for _, d := range s.Devices {
				if s.Store == "S1" && d.Device == "pos-7" {
					return d.Watermark == 6 && d.EventsApplied == 5
				}
			}
		}
		return false
	}, "S1/pos-7 at watermark 6 with 5 events applied: %+v", st)
	time.Sleep(500 * time.Millisecond) // let any late redelivery land
	if got := onHand(t, h.URL, "BATCH"); got["S1"] != 16 || got["S2"] != 0 {
		t.Fatalf("on hand %v, want S1 16 and nothing at S2", got)
	}
}
