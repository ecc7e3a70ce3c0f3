package hub_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/omnisync/omnisync/shared/events"
	"github.com/omnisync/omnisync/shared/hlc"
	"github.com/omnisync/omnisync/shared/ids"
	"github.com/omnisync/omnisync/shared/subjects"
	"github.com/omnisync/omnisync/shared/testkit"
)

// Ensure that erasing a customer deletes the events stream's copies of
// the messages naming them (an identify, a sale with their card, and a
// later event from a store naming an erased identifier), and only those.
func TestStreamErase_ThroughHub(t *testing.T) {
	t.Parallel()
	h, nc := startHub(t, "")
	ctx := context.Background()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	const epoch = 1_700_000_000_000_001
	var seq uint64
	publish := func(k events.Kind, body string) uint64 {
		t.Helper()
		seq++
		b, _ := json.Marshal(events.Envelope{V: events.CurrentVersion, ID: ids.NewEventID(time.Now()),
			Origin: events.Origin{Store: "S1", Device: "pos-1", Epoch: epoch, Seq: seq},
			HLC:    hlc.Timestamp{Wall: time.Now().UnixMilli()}, Kind: k, Data: json.RawMessage(body)})
		ack, err := js.Publish(ctx, subjects.Event("S1", "pos-1"), b)
		if err != nil {
			t.Fatal(err)
		}
		return ack.Sequence
	}
	ident := publish(events.KindIdentify, `{"identifiers":{"loyalty":"LC-1","email":"ann@shop.test"}}`)
	sale := publish(events.KindSale, `{"location":"S1","customer":{"loyalty":"LC-1"},"lines":[{"sku":"SKU-1","qty":1}]}`)
	other := publish(events.KindIdentify, `{"identifiers":{"loyalty":"LC-2"}}`)
	anon := publish(events.KindSale, `{"location":"S1","lines":[{"sku":"SKU-1","qty":1}]}`)
	st := h.Store()
	var cust string
	testkit.Eventually(t, 10*time.Second, func() bool {
		cust, err = st.FindCustomer(ctx, "loyalty:LC-1", "")
		_, err2 := st.FindCustomer(ctx, "loyalty:LC-2", "")
		return err == nil && err2 == nil
	}, "the customers at the hub")
	base := "http://" + h.HTTPAddr()
	req, _ := http.NewRequest(http.MethodPost, base+"/v1/customers/"+cust+"/erase", nil)
	req.Header.Set("Authorization", "Bearer "+testToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != http.StatusAccepted {
		t.Fatalf("erase: %v %v", resp, err)
	}
	var ans struct{ Erasure string }
	_ = json.NewDecoder(resp.Body).Decode(&ans)
	resp.Body.Close()

	stream, err := js.Stream(ctx, subjects.StreamEvents)
	if err != nil {
		t.Fatal(err)
	}
	gone := func(seqs ...uint64) bool {
		for _, s := range seqs {
			if _, err := stream.GetMsg(ctx, s); !errors.Is(err, jetstream.ErrMsgNotFound) {
				return false
			}
		}
		return true
	}
	var status struct {
		Stream struct {
			State   string
			Deleted int
		}
	}
	testkit.Eventually(t, 10*time.Second, func() bool {
		return gone(ident, sale) && getJSON(t, base+"/v1/erasures/"+ans.Erasure, &status) && status.Stream.State == "done"
	}, "the customer's messages deleted from the stream")
	if status.Stream.Deleted != 2 {
		t.Fatalf("stream state: %+v", status.Stream)
	}
	for _, s := range []uint64{other, anon} {
		if _, err := stream.GetMsg(ctx, s); err != nil {
			t.Fatalf("unrelated message %d: %v", s, err)
		}
	}
	// A late event naming the erased e-mail: scrubbed on apply, and its
	// raw copy deleted from the stream too.
	late := publish(events.KindIdentify, `{"identifiers":{"email":"Ann@shop.test","account":"W-9"}}`)
	testkit.Eventually(t, 10*time.Second, func() bool {
		return gone(late) && getJSON(t, base+"/v1/erasures/"+ans.Erasure, &status) && status.Stream.Deleted == 3
	}, "the late event's message deleted from the stream")
}
