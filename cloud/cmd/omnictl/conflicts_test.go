package main

import (
	"context"
	"encoding/json"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/omnisync/omnisync/cloud/internal/store"
	"github.com/omnisync/omnisync/shared/events"
	"github.com/omnisync/omnisync/shared/hlc"
	"github.com/omnisync/omnisync/shared/ids"
)

// Ensure that `omnictl conflicts` lists an oversold position with where
// stock could come from, read from the API's snake_case answer.
func TestConflicts(t *testing.T) {
	srv, st := hubAPIAt(t, filepath.Join(t.TempDir(), "hub.db"))
	t.Setenv("XDG_CONFIG_HOME", t.TempDir())
	t.Setenv("OMNI_TOKEN", testToken)
	now := time.Now()
	env := func(loc string, seq uint64, kind events.Kind, sku string, qty int64) store.Item {
		data, _ := json.Marshal(events.StockMove{Location: loc, Lines: []events.Line{{SKU: sku, Qty: qty}}})
		e := events.Envelope{V: events.CurrentVersion, ID: ids.NewEventID(now), Origin: events.Origin{Store: loc, Device: "pos-1", Epoch: 1, Seq: seq},
			HLC: hlc.Timestamp{Wall: now.UnixMilli()}, Kind: kind, Data: data}
		raw, _ := json.Marshal(e)
		return store.Item{Env: e, Raw: raw}
	}
	if _, err := st.ApplyBatch(context.Background(), []store.Item{
		env("S1", 1, events.KindSale, "SKU-OVER", 2),
		env("S2", 1, events.KindReceipt, "SKU-OVER", 9),
	}); err != nil {
		t.Fatal(err)
	}
	out, code := omnictl(t, "", "--hub="+srv.URL, "conflicts")
	if code != 0 || !strings.Contains(out, "SKU-OVER at S1") || !strings.Contains(out, "Source 2 from S2 as a transfer") || !strings.Contains(out, "open") {
		t.Fatalf("exit %d\n%s", code, out)
	}
	cs, _ := st.Conflicts(context.Background(), true, 1)
	id := strconv.FormatInt(cs[0].ID, 10)
	// Acting twice with the same action id acts once.
	act := []string{"--hub=" + srv.URL, "conflicts", "act", id, "transfer", "--from", "S2", "--version", "1", "--action-id", "cli-test-1"}
	if out, code := omnictl(t, "", act...); code != 0 || !strings.Contains(out, "transfer done") {
		t.Fatalf("act: exit %d\n%s", code, out)
	}
	if out, code := omnictl(t, "", act...); code != 0 || !strings.Contains(out, "taken already") {
		t.Fatalf("act again: exit %d\n%s", code, out)
	}
	if out, code := omnictl(t, "", "--hub="+srv.URL, "conflicts", "--all"); code != 0 || !strings.Contains(out, "resolved by hq_action (transfer, admin)") {
		t.Fatalf("after acting: exit %d\n%s", code, out)
	}
	if out, code := omnictl(t, "", "--hub="+srv.URL, "transfers", "--state", "in_transit"); code != 0 || !strings.Contains(out, "hq-cli-test-1") || !strings.Contains(out, "SKU-OVER 2/0") {
		t.Fatalf("transfers: exit %d\n%s", code, out)
	}
}

// Ensure that `omnictl safety-stock` sets a position's safety stock,
// which resolves nothing here but takes units out of available, and that
// a bad quantity is a usage error.
func TestSafetyStock(t *testing.T) {
	srv, st := hubAPIAt(t, filepath.Join(t.TempDir(), "hub.db"))
	t.Setenv("XDG_CONFIG_HOME", t.TempDir())
	t.Setenv("OMNI_TOKEN", testToken)
	now := time.Now()
	data, _ := json.Marshal(events.StockMove{Location: "S1", Lines: []events.Line{{SKU: "SKU-1", Qty: 10}}})
	e := events.Envelope{V: events.CurrentVersion, ID: ids.NewEventID(now), Origin: events.Origin{Store: "S1", Device: "pos-1", Epoch: 1, Seq: 1},
		HLC: hlc.Timestamp{Wall: now.UnixMilli()}, Kind: events.KindReceipt, Data: data}
	raw, _ := json.Marshal(e)
	if _, err := st.ApplyBatch(context.Background(), []store.Item{{Env: e, Raw: raw}}); err != nil {
		t.Fatal(err)
	}
	out, code := omnictl(t, "", "--hub="+srv.URL, "safety-stock", "SKU-1", "S1", "3")
	if code != 0 || !strings.Contains(out, "safety stock 3, on hand 10, reserved 0, available 7") {
		t.Fatalf("exit %d\n%s", code, out)
	}
	if out, code := omnictl(t, "", "--hub="+srv.URL, "safety-stock", "SKU-1", "S1", "-1"); code != 2 {
		t.Fatalf("negative: exit %d\n%s", code, out)
	}
	if out, code := omnictl(t, "", "--hub="+srv.URL, "safety-stock", "NOPE", "S1", "1"); code != 1 || !strings.Contains(out, "404") {
		t.Fatalf("unknown SKU: exit %d\n%s", code, out)
	}
}
