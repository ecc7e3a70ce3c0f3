package main

import (
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/omnisync/omnisync/cloud/internal/pii"
	"github.com/omnisync/omnisync/cloud/internal/store"
	"github.com/omnisync/omnisync/shared/events"
	"github.com/omnisync/omnisync/shared/hlc"
	"github.com/omnisync/omnisync/shared/ids"
)

// Ensure that omnictl finds a customer, shows the 360, undoes a merge,
// erases the person (only with --yes) and follows the erasure.
func TestCustomersCommands(t *testing.T) {
	srv, st := hubAPIAt(t, filepath.Join(t.TempDir(), "hub.db"))
	keys, _ := pii.New(pii.Generate())
	st.SetCustomerKeys(keys)
	t.Setenv("XDG_CONFIG_HOME", t.TempDir())
	t.Setenv("OMNI_TOKEN", testToken)
	wall := time.Now().UnixMilli()
	var items []store.Item
	for i, b := range []struct{ store, kind, body string }{
		{"S1", "identify", `{"identifiers":{"loyalty":"LC-1","email":"ann@shop.test"}}`},
		{"online", "identify", `{"identifiers":{"account":"W-1"}}`},
		{"online", "identify", `{"identifiers":{"account":"W-1","email":"ann@shop.test"},"rule":"login"}`},
	} {
		items = append(items, store.Item{Env: events.Envelope{V: events.CurrentVersion, ID: ids.NewEventID(time.Now()), Kind: events.Kind(b.kind), Data: json.RawMessage(b.body),
			Origin: events.Origin{Store: b.store, Device: "d1", Epoch: 1, Seq: uint64(i + 1)}, HLC: hlc.Timestamp{Wall: wall + int64(i)}}})
	}
	if _, err := st.ApplyBatch(context.Background(), items); err != nil {
		t.Fatal(err)
	}
	hub := "--hub=" + srv.URL
	must := func(args ...string) string {
		t.Helper()
		out, code := omnictl(t, "", append([]string{hub}, args...)...)
		if code != 0 {
			t.Fatalf("omnictl %v: exit %d\n%s", args, code, out)
		}
		return out
	}
	id := strings.TrimSpace(must("customers", "find", "email:Ann@Shop.test"))
	if out := must("customers", "show", id); !strings.Contains(out, "LC-1") || !strings.Contains(out, "W-1") || !strings.Contains(out, "login at online/d1") {
		t.Fatalf("show: %s", out)
	}
	if out := must("customers", "unmerge", id, "--reason", "two people"); !strings.Contains(out, "customers now:") {
		t.Fatalf("unmerge: %s", out)
	}
	if out := must("customers", "show", id); strings.Contains(out, "W-1") {
		t.Fatalf("after unmerge: %s", out)
	}
	if out, code := omnictl(t, "", hub, "customers", "erase", id); code != 2 || !strings.Contains(out, "--yes") {
		t.Fatalf("erase without --yes: exit %d %s", code, out)
	}
	eid := strings.TrimSpace(must("customers", "erase", id, "--yes", "--reason", "asked"))
	if out := must("customers", "erasure", eid); !strings.Contains(out, "waiting for stores") || !strings.Contains(out, "S1") || !strings.Contains(out, "pending") || !strings.Contains(out, "events stream:") {
		t.Fatalf("erasure: %s", out)
	}
	if out, code := omnictl(t, "", hub, "customers", "find", "loyalty:LC-1"); code != 1 || !strings.Contains(out, "404") {
		t.Fatalf("find after erasure: exit %d %s", code, out)
	}
}
