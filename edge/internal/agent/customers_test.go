package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/omnisync/omnisync/edge/internal/customercard/custtest"
	"github.com/omnisync/omnisync/edge/internal/outbox"
	"github.com/omnisync/omnisync/shared/events"
	"github.com/omnisync/omnisync/shared/syncproto"
	"github.com/omnisync/omnisync/shared/testkit"
)

// Ensure that the assembled agent, with its store's real credentials,
// serves the till's customer card from the hub, carries an erasure out
// (the card purged, the person's pending sale scrubbed, another's kept)
// and answers the hub with a receipt, with the erasure in /v1/status.
func TestAgent_Customers(t *testing.T) {
	h := custtest.Start(t, "S1")
	h.Card("S1", syncproto.Card{Customer: "C1", FirstName: "Ada", Consent: map[string]bool{"sms": true}}, "loyalty:LC-1")
	cfg := Defaults()
	cfg.Store, cfg.Device, cfg.NATSURL, cfg.DataDir, cfg.HTTP = "S1", "pos-1", h.W.URL, t.TempDir(), "127.0.0.1:0"
	cfg.NATSCreds = h.W.Creds(t, "S1")
	a, err := New(cfg, testkit.Logger(t), "test")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	defer func() {
		cancel()
		<-done
	}()
	<-a.Ready()
	base := "http://" + a.HTTPAddr()

	post := func(path, body string) (int, []byte) {
		resp, err := http.Post(base+path, "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var b bytes.Buffer
		_, _ = b.ReadFrom(resp.Body)
		return resp.StatusCode, b.Bytes()
	}
	var card struct {
		Card   syncproto.Card `json:"card"`
		Source string         `json:"source"`
	}
	testkit.Eventually(t, 10*time.Second, func() bool {
		code, b := post("/v1/customers/card", `{"identifiers":{"loyalty":"LC-1"}}`)
		return code == http.StatusOK && json.Unmarshal(b, &card) == nil
	}, "the card from the hub")
	if card.Source != "hub" || card.Card.FirstName != "Ada" {
		t.Fatalf("card %+v", card)
	}
	for _, c := range []string{"loyalty:LC-1", "loyalty:LC-2"} {
		if code, b := post("/v1/events", `{"kind":"sale","data":{"lines":[{"sku":"SKU-1","qty":1}],"customer":"`+c+`"}}`); code != http.StatusAccepted {
			t.Fatalf("sale: %d %s", code, b)
		}
	}

	h.Erase("E1", "C1", []string{"S1"}, "loyalty:LC-1")
	var st Status
	testkit.Eventually(t, 20*time.Second, func() bool {
		return get(t, base+"/v1/status", &st) == http.StatusOK && st.Customers.Done == 1 && len(h.Receipts()) == 1
	}, "the erasure carried out: %+v", st.Customers)
	if st.Customers.Cards != 0 || st.Customers.Pending != 0 || h.Receipts()[0] != "S1/pos-1/E1" {
		t.Fatalf("after the erasure: %+v %v", st.Customers, h.Receipts())
	}
	hasMetrics(t, base, `omni_edge_customer_card_lookups_total{outcome="hub"} 1`, "omni_edge_erasures_pending 0")
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	done <- nil

	ob, err := outbox.Open(outbox.Options{Path: filepath.Join(cfg.DataDir, "outbox.db"), Store: "S1", Device: "pos-1"})
	if err != nil {
		t.Fatal(err)
	}
	defer ob.Close()
	recs, err := ob.Read(0, 0, 0)
	if err != nil || len(recs) != 2 {
		t.Fatalf("outbox: %d records, %v", len(recs), err)
	}
	for i, r := range recs {
		env, err := events.Decode(r.Data)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(env.Data, []byte("LC-1")) || i == 1 && !bytes.Contains(env.Data, []byte("LC-2")) || !bytes.Contains(env.Data, []byte("SKU-1")) {
			t.Fatalf("event %d: %s", i, env.Data)
		}
	}
}
