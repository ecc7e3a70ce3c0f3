package main

import (
	"context"
	"encoding/json"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/omnisync/omnisync/cloud/internal/catalog"
	"github.com/omnisync/omnisync/cloud/internal/store"
	"github.com/omnisync/omnisync/shared/events"
	"github.com/omnisync/omnisync/shared/hlc"
	"github.com/omnisync/omnisync/shared/ids"
)

// Ensure that omnictl lists the exception queue, maps an unknown SKU and
// replays its held sale, discards another exception only with a reason,
// replays a dead letter, and shows the pickups board.
func TestExceptionsCommands(t *testing.T) {
	srv, st := hubAPIAt(t, filepath.Join(t.TempDir(), "hub.db"))
	t.Setenv("XDG_CONFIG_HOME", t.TempDir())
	t.Setenv("OMNI_TOKEN", testToken)
	ctx := context.Background()
	if _, err := st.ImportCatalog(ctx, []catalog.Variant{{SKU: "SKU-1", ProductID: "P1", Name: "Tee", Brand: "K", Size: "M",
		PriceMinor: 100, Currency: "EUR", GTINs: []string{"05999990000013"}}}, store.ImportOptions{Source: "test"}); err != nil {
		t.Fatal(err)
	}
	wall := time.Now().UnixMilli()
	var items []store.Item
	for i, b := range []struct{ store, kind, body string }{
		{"S1", "receipt", `{"location":"S1","lines":[{"sku":"SKU-1","qty":5}]}`},
		{"S1", "sale", `{"location":"S1","lines":[{"sku":"OLD-1","qty":2}]}`},
		{"S1", "sale", `{"location":"S1","lines":[{"sku":"TYPO","qty":1}]}`},
		{"S1", "reserve", `{"reservation_id":"R1","location":"S1","lines":[{"sku":"SKU-1","qty":1}]}`},
		{"S1", "receipt", `{"location":"S1","lines":[{"sku":"SKU-1","qty":1}]}`},
	} {
		items = append(items, store.Item{Env: events.Envelope{V: events.CurrentVersion, ID: ids.NewEventID(time.Now()), Kind: events.Kind(b.kind), Data: json.RawMessage(b.body),
			Origin: events.Origin{Store: b.store, Device: "d1", Epoch: 1, Seq: uint64(i + 1)}, HLC: hlc.Timestamp{Wall: wall + int64(i)}}})
	}
	items[4].Reject = "a bug since fixed"
	if _, err := st.ApplyBatch(ctx, items); err != nil {
		t.Fatal(err)
	}
	hub := "--hub=" + srv.URL
	run := func(args ...string) (string, int) {
		t.Helper()
		return omnictl(t, "", append([]string{hub}, args...)...)
	}
	must := func(args ...string) string {
		t.Helper()
		out, code := run(args...)
		if code != 0 {
			t.Fatalf("omnictl %v: exit %d\n%s", args, code, out)
		}
		return out
	}
	out := must("exceptions")
	if !strings.Contains(out, "OLD-1") || !strings.Contains(out, "TYPO") {
		t.Fatalf("list: %s", out)
	}
	xs, _ := st.Exceptions(ctx, store.ExceptionQuery{})
	id := map[string]string{}
	for _, x := range xs {
		id[x.Value] = strconvI(x.ID)
	}
	if out := must("exceptions", "map", id["OLD-1"], "SKU-1"); !strings.Contains(out, "replayed 1") {
		t.Fatalf("map: %s", out)
	}
	if _, code := run("exceptions", "discard", id["TYPO"]); code != 2 {
		t.Fatalf("discard without a reason: exit %d", code)
	}
	must("exceptions", "discard", id["TYPO"], "--reason", "test sale")
	if out := must("exceptions", "mappings"); !strings.Contains(out, "OLD-1") {
		t.Fatalf("mappings: %s", out)
	}
	if out := must("exceptions"); strings.Contains(out, "OLD-1") || strings.Contains(out, "TYPO") {
		t.Fatalf("still open: %s", out)
	}
	dls, _ := st.DeadLetters(ctx, "S1", 10)
	if len(dls) != 1 {
		t.Fatalf("dead letters %+v", dls)
	}
	if out := must("deadletters", "replay", strconvI(dls[0].ID)); !strings.Contains(out, "replayed") {
		t.Fatalf("dead letter replay: %s", out)
	}
	stock, _ := st.StockForSKU(ctx, "SKU-1")
	if len(stock) != 1 || stock[0].OnHand != 5-2+1 {
		t.Fatalf("stock %+v, want 4 on hand", stock)
	}
	if out := must("pickups", "--store", "S1"); !strings.Contains(out, "R1") || !strings.Contains(out, "reserved") {
		t.Fatalf("pickups: %s", out)
	}
}

func strconvI(v int64) string { return strconv.FormatInt(v, 10) }
