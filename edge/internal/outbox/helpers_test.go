package outbox

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/omnisync/omnisync/shared/events"
)

const (
	testStore  = "S1"
	testDevice = "POS-1"
)

// testOptions returns options for a fresh file in t's temp dir.
func testOptions(t testing.TB) Options {
	t.Helper()
	return Options{
		Path:   filepath.Join(t.TempDir(), "edge", "outbox.db"),
		Store:  testStore,
		Device: testDevice,
	}
}

// mustOpen opens an outbox and closes it when the test ends.
func mustOpen(t testing.TB, opts Options) *Outbox {
	t.Helper()
	o, err := Open(opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { o.Close() })
	return o
}

// mustParse parses a POST body the way the HTTP layer does.
func mustParse(t testing.TB, body string) []events.Draft {
	t.Helper()
	d, err := events.ParseDrafts([]byte(body), testStore)
	if err != nil {
		t.Fatalf("ParseDrafts(%s): %v", body, err)
	}
	return d
}

func sale(t testing.TB, sku string, qty int) events.Draft {
	t.Helper()
	return mustParse(t, fmt.Sprintf(`{"kind":"sale","data":{"lines":[{"sku":%q,"qty":%d}]}}`, sku, qty))[0]
}

func scan(t testing.TB, code string) events.Draft {
	t.Helper()
	return mustParse(t, fmt.Sprintf(`{"kind":"scan","data":{"code":%q}}`, code))[0]
}

func deviceStatus(t testing.TB, state string) events.Draft {
	t.Helper()
	return mustParse(t, fmt.Sprintf(`{"kind":"device_status","data":{"name":"scanner-1","state":%q}}`, state))[0]
}

func mustAppend(t testing.TB, o *Outbox, drafts ...events.Draft) []events.Envelope {
	t.Helper()
	envs, err := o.Append(context.Background(), drafts)
	if err != nil {
		t.Fatalf("Append: %v", err)
	}
	return envs
}

// readAll returns every pending record.
func readAll(t testing.TB, o *Outbox) []Record {
	t.Helper()
	recs, err := o.Read(0, 0, 0)
	if err != nil {
		t.Fatalf("Read: %v", err)
	}
	return recs
}

// encoded is what the outbox must store for env.
func encoded(t testing.TB, env events.Envelope) []byte {
	t.Helper()
	b, err := json.Marshal(env)
	if err != nil {
		t.Fatalf("marshal envelope: %v", err)
	}
	return b
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t testing.TB, timeout time.Duration, cond func() bool, msg string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after %s: %s", timeout, msg)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// fakeClock is a settable wall clock.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time { return c.t }
