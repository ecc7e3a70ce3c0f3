package customercard

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/omnisync/omnisync/edge/internal/customercard/custtest"
	"github.com/omnisync/omnisync/edge/internal/uplink"
	"github.com/omnisync/omnisync/shared/downsync"
	"github.com/omnisync/omnisync/shared/events"
	"github.com/omnisync/omnisync/shared/subjects"
	"github.com/omnisync/omnisync/shared/syncproto"
	"github.com/omnisync/omnisync/shared/testkit"
)

var ada = syncproto.Card{Customer: "C1", FirstName: "Ada", Tier: "gold", Consent: map[string]bool{"marketing_email": false, "sms": true},
	Recent: []syncproto.Purchase{{AtMS: 1, Store: "S1", Items: 2, TotalMinor: 2000, Currency: "GBP"}}}

// Ensure that a till gets the card from the hub, then from the bbolt
// cache while the store is offline (saying so), never a card older than
// the TTL, nor one the hub has since stopped giving; and that a shopper
// unknown at this store is a 404 online and offline alike.
func TestLookup_HubThenCache(t *testing.T) {
	h := custtest.Start(t, "S1")
	h.Card("S1", ada, "loyalty:LC-1", "email:ada@example.com")
	a := newAgent(t, h, "S1").start()
	a.waitConnected(true)
	ctx := context.Background()

	got, err := a.client.Lookup(ctx, map[string]string{"loyalty": "LC-1"})
	if err != nil || got.Source != SourceHub || got.Card.FirstName != "Ada" || !got.Card.Consent["sms"] {
		t.Fatalf("online lookup: %+v %v", got, err)
	}
	a.cache.flush() // cards are written after the answer
	if _, err := a.client.Lookup(ctx, map[string]string{"loyalty": "LC-9"}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown shopper: %v", err)
	}
	if _, err := a.client.Lookup(ctx, map[string]string{}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("no identifiers: %v", err)
	}

	a.proxy.Cut()
	a.waitConnected(false)
	for _, ids := range []map[string]string{{"loyalty": "LC-1"}, {"loyalty": " lc-1"}} {
		got, err = a.client.Lookup(ctx, ids)
		if err != nil || got.Source != SourceCache || got.Card.Customer != "C1" || got.FetchedAt.IsZero() {
			t.Fatalf("offline lookup %v: %+v %v", ids, got, err)
		}
	}
	// The e-mail was never asked for at this till: nothing cached for it.
	if _, err := a.client.Lookup(ctx, map[string]string{"email": "ada@example.com"}); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("offline lookup of an identifier never asked: %v", err)
	}
	a.advance(DefaultTTL + time.Second)
	if _, err := a.client.Lookup(ctx, map[string]string{"loyalty": "LC-1"}); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("offline lookup past the TTL: %v", err)
	}
	if n, err := a.cache.Sweep(); err != nil || n != 1 || a.cache.Stats().Cards != 0 {
		t.Fatalf("Sweep = %d, %v; %+v", n, err, a.cache.Stats())
	}

	// Back online: fetched again; then the hub stops giving it (moved,
	// erased): the cache drops it, offline too.
	a.proxy.Heal()
	a.waitConnected(true)
	if got, err = a.client.Lookup(ctx, map[string]string{"loyalty": "LC-1"}); err != nil || got.Source != SourceHub {
		t.Fatalf("lookup after reconnecting: %+v %v", got, err)
	}
	a.cache.flush()
	h.DropCard("S1", "loyalty:LC-1")
	if _, err := a.client.Lookup(ctx, map[string]string{"loyalty": "LC-1"}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("card gone at the hub: %v", err)
	}
	a.proxy.Cut()
	a.waitConnected(false)
	if _, err := a.client.Lookup(ctx, map[string]string{"loyalty": "LC-1"}); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("offline after the hub dropped the card: %v", err)
	}
	// A hub that answers but cannot serve: the cache answers.
	a.proxy.Heal()
	a.waitConnected(true)
	h.Card("S1", ada, "loyalty:LC-1")
	if _, err := a.client.Lookup(ctx, map[string]string{"loyalty": "LC-1"}); err != nil {
		t.Fatal(err)
	}
	a.cache.flush()
	h.SetDown(true)
	if got, err := a.client.Lookup(ctx, map[string]string{"loyalty": "LC-1"}); err != nil || got.Source != SourceCache {
		t.Fatalf("hub unable to answer: %+v %v", got, err)
	}
	if st := a.client.Stats(); st.FromHub != 3 || st.FromCache != 3 || st.NotFound != 2 || st.Unavailable != 3 {
		t.Fatalf("stats %+v", st)
	}
}

// Ensure that the till's route answers 200 with the card and where it
// came from, 400, 404 and 503 as documented, and never lets a client cache
// the answer.
func TestAPI(t *testing.T) {
	h := custtest.Start(t, "S1")
	h.Card("S1", ada, "loyalty:LC-1")
	a := newAgent(t, h, "S1").start()
	a.waitConnected(true)
	mux := http.NewServeMux()
	NewAPI(a.client).Register(mux)
	srv := httptest.NewServer(mux)
	defer srv.Close()
	post := func(body string) (int, map[string]any, http.Header) {
		resp, err := http.Post(srv.URL+"/v1/customers/card", "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var m map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&m)
		return resp.StatusCode, m, resp.Header
	}
	code, m, hdr := post(`{"identifiers":{"loyalty":"LC-1"}}`)
	if code != 200 || m["source"] != "hub" || m["card"].(map[string]any)["first_name"] != "Ada" || hdr.Get("Cache-Control") != "no-store" {
		t.Fatalf("200: %d %v %v", code, m, hdr)
	}
	a.cache.flush()
	for body, want := range map[string]int{
		`{"identifiers":{"loyalty":"LC-2"}}`:       404,
		`{"identifiers":{}}`:                       400,
		`{"identifiers":{"loyalty":"LC-1"},"x":1}`: 400,
		`not json`: 400,
		`{"identifiers":{"loyalty":"` + strings.Repeat("9", 20<<10) + `"}}`: 413,
	} {
		if code, m, _ := post(body); code != want || m["error"] == "" {
			t.Errorf("%.40s: %d %v, want %d", body, code, m, want)
		}
	}
	a.proxy.Cut()
	a.waitConnected(false)
	if code, m, _ := post(`{"identifiers":{"loyalty":"LC-1"}}`); code != 200 || m["source"] != "cache" {
		t.Fatalf("offline: %d %v", code, m)
	}
	if code, _, _ := post(`{"identifiers":{"email":"x@example.com"}}`); code != 503 {
		t.Fatalf("offline, nothing cached: %d", code)
	}
	if resp, err := http.Get(srv.URL + "/v1/customers/card?identifier=loyalty:LC-1"); err != nil || resp.StatusCode != http.StatusMethodNotAllowed {
		t.Fatalf("GET: %v %v", resp, err)
	}
}

// Ensure that an erasure published while the store is offline stays
// pending (no receipt) until the agent reconnects, and is then carried
// out: the card cache purged, the person's events scrubbed in the outbox
// (by the raw forms the tills typed, bare or typed, with the hub telling
// which), other shoppers' events and every sale line kept, and the
// receipt sent once; the scrubbed events still sync.
func TestErasure_OfflineStoreCatchesUp(t *testing.T) {
	h := custtest.Start(t, "S1", "S2")
	h.Card("S1", ada, "loyalty:LC-1")
	a := newAgent(t, h, "S1").start()
	a.waitConnected(true)
	ctx := context.Background()
	if _, err := a.client.Lookup(ctx, map[string]string{"loyalty": "LC-1"}); err != nil {
		t.Fatal(err)
	}
	a.cache.flush()
	before := []events.Envelope{
		a.sell("SKU-1", "loyalty:LC-1"),
		a.sell("SKU-2", "loyalty:LC-2"),
		a.sell("SKU-3", ""),
		a.sell("SKU-4", "email:Ada@Example.com"),
		a.sell("SKU-5", "lc-1"),
	}

	a.proxy.Cut()
	a.waitConnected(false)
	h.Erase("E1", "C1", []string{"S1", "S2"}, "loyalty:LC-1", "email:ada@example.com")
	time.Sleep(300 * time.Millisecond)
	if r := h.Receipts(); len(r) != 0 {
		t.Fatalf("receipts while offline: %v", r)
	}
	// Offline, the card is still served from the cache: the agent has
	// not heard of the erasure yet.
	if got, err := a.client.Lookup(ctx, map[string]string{"loyalty": "LC-1"}); err != nil || got.Source != SourceCache {
		t.Fatalf("offline before the notice: %+v %v", got, err)
	}

	a.proxy.Heal()
	testkit.Eventually(t, 20*time.Second, func() bool {
		e, _, _ := a.cache.Erasure("E1")
		return len(h.Receipts()) == 1 && e.State == StateDone
	}, "S1's receipt")
	if r := h.Receipts(); r[0] != "S1/pos-1/E1" {
		t.Fatalf("receipts %v", r)
	}
	e, ok, err := a.cache.Erasure("E1")
	if err != nil || !ok || e.State != StateDone || e.CardsPurged != 1 || e.EventsScrubbed != 3 || len(e.PurgedKeys) != 0 {
		t.Fatalf("erasure record %+v %v %v", e, ok, err)
	}
	if a.cache.Stats().Cards != 0 {
		t.Fatal("the erased card is still cached")
	}
	// A lookup answered before the erasure but written after it: not kept.
	a.cache.putAsync(ada, map[string]string{"loyalty": "LC-1"})
	a.cache.flush()
	if a.cache.Stats().Cards != 0 {
		t.Fatal("a card of the erased customer was cached again")
	}
	a.proxy.Cut()
	a.waitConnected(false)
	if _, err := a.client.Lookup(ctx, map[string]string{"loyalty": "LC-1"}); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("offline after the erasure: %v", err)
	}
	a.proxy.Heal()
	a.waitConnected(true)

	after := a.pending()
	if len(after) != len(before) {
		t.Fatalf("%d events pending, want %d", len(after), len(before))
	}
	for i, env := range after {
		b := before[i]
		if env.ID != b.ID || env.Origin != b.Origin || env.HLC != b.HLC {
			t.Fatalf("event %d changed identity", i)
		}
		if !bytes.Contains(env.Data, []byte(`"SKU-`)) || !bytes.Contains(env.Data, []byte(`"unit_price":1000`)) {
			t.Fatalf("event %d lost its lines: %s", i, env.Data)
		}
		names := bytes.Contains(env.Data, []byte(`"customer"`))
		if want := i == 1; names != want {
			t.Fatalf("event %d: %s", i, env.Data)
		}
	}

	// The outbox syncs as it is now: the uplink publishes the scrubbed
	// events to the events stream.
	hubJS, err := jetstream.New(h.NC)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := hubJS.CreateStream(ctx, jetstream.StreamConfig{Name: subjects.StreamEvents, Subjects: []string{subjects.EventsAll}}); err != nil {
		t.Fatal(err)
	}
	up, err := uplink.New(uplink.Options{Store: "S1", Device: "pos-1", Conn: a.nc, HeartbeatEvery: time.Hour, Logger: testkit.Logger(t)}, a.ob)
	if err != nil {
		t.Fatal(err)
	}
	uctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() { _ = up.Run(uctx) }()
	var synced []events.Envelope
	testkit.Eventually(t, 10*time.Second, func() bool {
		synced = readEvents(t, hubJS)
		return len(synced) == len(before)
	}, "the events in the stream")
	for i, env := range synced {
		if env.ID != before[i].ID || bytes.Contains(env.Data, []byte("LC-1")) || bytes.Contains(env.Data, []byte("xample")) {
			t.Fatalf("synced event %d: %s", i, env.Data)
		}
	}
	cancel()

	// A second device's receipt, a restart: nothing is done twice.
	a.stop()
	a.start()
	a.waitConnected(true)
	time.Sleep(500 * time.Millisecond)
	if r := h.Receipts(); len(r) != 1 {
		t.Fatalf("receipts after a restart: %v", r)
	}

	// Remembered for longer than the hub keeps its notice, then forgotten.
	a.advance(downsync.ErasureMaxAge)
	if _, err := a.cache.Sweep(); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := a.cache.Erasure("E1"); !ok {
		t.Fatal("the erasure was forgotten while its notice may still be read")
	}
	a.advance(KeepErasures - downsync.ErasureMaxAge + time.Hour)
	if _, err := a.cache.Sweep(); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := a.cache.Erasure("E1"); ok {
		t.Fatal("the erasure is remembered forever")
	}
}

// readEvents returns every event in the events stream, in order.
func readEvents(t testing.TB, js jetstream.JetStream) []events.Envelope {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	cons, err := js.OrderedConsumer(ctx, subjects.StreamEvents, jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	var out []events.Envelope
	if cons.CachedInfo().NumPending == 0 {
		return nil
	}
	batch, err := cons.Fetch(100, jetstream.FetchMaxWait(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	for m := range batch.Messages() {
		parts := []json.RawMessage{m.Data()}
		if events.IsBatch(m.Data()) {
			if parts, err = events.SplitBatch(m.Data()); err != nil {
				t.Fatal(err)
			}
		}
		for _, p := range parts {
			env, err := events.Decode(p)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, env)
		}
	}
	return out
}

// Ensure that an agent stopped at each step of an erasure (notice
// recorded, cards purged, outbox scrubbed) carries it on from there when
// it starts again, and that steps redone change nothing.
func TestErasure_ResumesAfterRestart(t *testing.T) {
	for _, stopAt := range []string{StatePending, StatePurged, StateScrubbed} {
		t.Run(stopAt, func(t *testing.T) {
			h := custtest.Start(t, "S1")
			h.Card("S1", ada, "loyalty:LC-1")
			a := newAgent(t, h, "S1").start()
			a.waitConnected(true)
			if _, err := a.client.Lookup(context.Background(), map[string]string{"loyalty": "LC-1"}); err != nil {
				t.Fatal(err)
			}
			a.cache.flush()
			a.sell("SKU-1", "loyalty:LC-1")
			a.sell("SKU-2", "loyalty:LC-2")
			// Stop the eraser; do its steps by hand, up to stopAt, as a
			// crash would leave them.
			a.eraser.Close()
			<-a.done
			a.done <- nil
			if _, err := a.cache.NoteErasure(syncproto.ErasureNotice{Erasure: "E1", Customer: "C1", Store: "S1", RequestedMS: 1}); err != nil {
				t.Fatal(err)
			}
			h.Erased("E1", "loyalty:LC-1")
			e, _, _ := a.cache.Erasure("E1")
			if stopAt != StatePending {
				if e, _ = a.cache.purgeFor("E1"); e.State != StatePurged {
					t.Fatalf("purge: %+v", e)
				}
			}
			if stopAt == StateScrubbed {
				er := newEraserFor(t, a)
				n, err := er.scrub(context.Background(), e)
				if err != nil || n != 1 {
					t.Fatalf("scrub: %d %v", n, err)
				}
				if e, _ = a.cache.markScrubbed("E1", n); e.State != StateScrubbed {
					t.Fatalf("mark: %+v", e)
				}
			}
			a.stop()
			a.start()
			testkit.Eventually(t, 10*time.Second, func() bool {
				e, _, _ = a.cache.Erasure("E1")
				return len(h.Receipts()) == 1 && e.State == StateDone
			}, "the receipt")
			if e.State != StateDone || e.EventsScrubbed != 1 || e.CardsPurged != 1 {
				t.Fatalf("after the restart: %+v", e)
			}
			var customers []string
			for _, env := range a.pending() {
				for _, id := range Identifiers(env.Data) {
					customers = append(customers, id.Value)
				}
			}
			if !slices.Equal(customers, []string{"LC-2"}) {
				t.Fatalf("customers left in the outbox: %v", customers)
			}
		})
	}
}

func newEraserFor(t testing.TB, a *agent) *Eraser {
	e, err := NewEraser(EraserOptions{Store: a.store, Device: "pos-1", Conn: a.nc, Cache: a.cache, Outbox: a.ob})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// Ensure that a notice under another store's key, or one disagreeing
// with its key, is refused.
func TestParseNotice(t *testing.T) {
	good := `{"erasure":"E1","customer":"C1","store":"S1","requested_ms":1}`
	if _, err := parseNotice("S1", "$KV.omni_erase.S1.E1", []byte(good)); err != nil {
		t.Fatal(err)
	}
	for subj, body := range map[string]string{
		"$KV.omni_erase.S2.E1": good,
		"$KV.omni_erase.S1.E2": good,
		"$KV.omni_erase.S1":    good,
		"$KV.omni_erase.S1.E1": `{"erasure":"E1","store":"S1"}`,
		"$KV.omni_erase.S1.E3": `nope`,
	} {
		if _, err := parseNotice("S1", subj, []byte(body)); err == nil {
			t.Errorf("accepted %s %s", subj, body)
		}
	}
}
