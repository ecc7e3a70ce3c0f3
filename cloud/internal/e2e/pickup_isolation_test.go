package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/omnisync/omnisync/shared/downsync"
	"github.com/omnisync/omnisync/shared/testkit"
)

func reserveBody(id, location, sku string, qty int) string {
	return fmt.Sprintf(`{"kind":"reserve","data":{"reservation_id":%q,"location":%q,"lines":[{"sku":%q,"qty":%d}]}}`, id, location, sku, qty)
}

// readBucket reads what the bucket behind stream holds under filter, the
// way an agent does (one ordered consumer), until nothing is pending: each
// key's subject and value; deleted keys are left out.
func readBucket(ctx context.Context, js jetstream.JetStream, stream, filter string) (map[string][]byte, error) {
	cons, err := js.OrderedConsumer(ctx, stream, jetstream.OrderedConsumerConfig{FilterSubjects: []string{filter}})
	if err != nil {
		return nil, err
	}
	out := map[string][]byte{}
	if cons.CachedInfo().NumPending == 0 {
		return out, nil
	}
	for {
		batch, err := cons.Fetch(500, jetstream.FetchMaxWait(2*time.Second))
		if err != nil {
			return nil, err
		}
		for m := range batch.Messages() {
			if m.Headers().Get("KV-Operation") != "" {
				delete(out, m.Subject())
			} else {
				out[m.Subject()] = m.Data()
			}
			if md, err := m.Metadata(); err == nil && md.NumPending == 0 {
				return out, nil
			}
		}
		if batch.Error() != nil {
			return nil, batch.Error()
		}
	}
}

// readPickups reads the pickup orders under filter by reservation id.
func readPickups(ctx context.Context, js jetstream.JetStream, filter string) (map[string]downsync.PickupDoc, error) {
	raw, err := readBucket(ctx, js, downsync.PickupStream, filter)
	if err != nil {
		return nil, err
	}
	out := map[string]downsync.PickupDoc{}
	for subj, b := range raw {
		var d downsync.PickupDoc
		if err := json.Unmarshal(b, &d); err != nil {
			return nil, fmt.Errorf("%s: %w", subj, err)
		}
		out[d.ReservationID] = d
	}
	return out, nil
}

// Ensure that with the shipped NATS configuration a store reads its own
// pickup orders and no other store's: not through a consumer filtered to
// the other store, nor one whose configuration disagrees with the filter
// its request names, nor a consumer on the whole bucket, the bucket's
// stream info, or direct and message gets; and cannot write orders.
func TestPickupIsolation(t *testing.T) {
	t.Parallel()
	n := startIsolatedNATS(t)
	startHub(t, n.hubURL, "")

	// An S1 device takes an order for S1 and one for collection at S2
	// (an "endless aisle" sale); the hub publishes each under its store.
	a := n.startStoreAgent(t, "S1", "pos-1")
	mustPost(t, a.URL, reserveBody("ORDER-S1", "S1", "SKU-P", 1))
	mustPost(t, a.URL, reserveBody("ORDER-S2", "S2", "SKU-P", 2))
	waitDrained(t, a, 20*time.Second)

	ctx := func() context.Context {
		c, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		t.Cleanup(cancel)
		return c
	}
	// A refused request gets no answer: it times out.
	refused := func() context.Context {
		c, cancel := context.WithTimeout(context.Background(), time.Second)
		t.Cleanup(cancel)
		return c
	}
	hub := hubDownJS(t, mustHubConn(t, n.hubURL))
	testkit.Eventually(t, 20*time.Second, func() bool {
		all, err := readPickups(ctx(), hub, downsync.PickupSubjectPrefix+">")
		return err == nil && len(all) == 2
	}, "both orders in the pickup bucket")

	s1, errs := n.connectStore(t, "S1")
	s1js, err := jetstream.New(s1)
	if err != nil {
		t.Fatal(err)
	}
	own, err := readPickups(ctx(), s1js, downsync.PickupFilter("S1"))
	if err != nil || len(own) != 1 || own["ORDER-S1"].State != downsync.PickupOpen {
		t.Fatalf("S1 reading its own orders: %v %v", own, err)
	}

	// Every way of reading S2's orders fails.
	attempts := []struct {
		name string
		try  func() error
	}{
		{"a consumer filtered to S2", func() error {
			got, err := readPickups(refused(), s1js, downsync.PickupFilter("S2"))
			if err == nil {
				return fmt.Errorf("read %v", got)
			}
			return nil
		}},
		{"a consumer on the whole bucket", func() error {
			got, err := readPickups(refused(), s1js, downsync.PickupSubjectPrefix+">")
			if err == nil {
				return fmt.Errorf("read %v", got)
			}
			return nil
		}},
		{"binding the bucket (stream info)", func() error {
			js, _ := jetstream.New(s1)
			if _, err := js.KeyValue(refused(), downsync.PickupBucket); err == nil {
				return fmt.Errorf("bound the pickup bucket")
			}
			return nil
		}},
	}
	// A create request whose subject names S1's filter but whose
	// configuration reads S2's: the server refuses the mismatch.
	for _, cfg := range []string{
		`{"filter_subject":"$KV.omni_pickup.S2.>"}`,
		`{"filter_subject":"$KV.omni_pickup.S1.>","filter_subjects":["$KV.omni_pickup.S2.>"]}`,
		`{"filter_subjects":["$KV.omni_pickup.S2.>"]}`,
	} {
		attempts = append(attempts, struct {
			name string
			try  func() error
		}{"create request " + cfg, func() error {
			body := `{"stream_name":"KV_omni_pickup","config":` + strings.TrimSuffix(cfg, "}") +
				`,"name":"sneaky","deliver_policy":"all","ack_policy":"none","mem_storage":true,"inactive_threshold":10000000000}}`
			m, err := s1.RequestWithContext(ctx(), "$JS.API.CONSUMER.CREATE.KV_omni_pickup.sneaky.$KV.omni_pickup.S1.>", []byte(body))
			if err != nil {
				// The subject is allowed: the server must answer.
				return fmt.Errorf("no answer: %w", err)
			}
			var resp struct {
				Error *struct {
					Description string `json:"description"`
				} `json:"error"`
			}
			if json.Unmarshal(m.Data, &resp) != nil || resp.Error == nil {
				return fmt.Errorf("server created it: %s", m.Data)
			}
			t.Logf("create request %s: %s", cfg, resp.Error.Description)
			return nil
		}})
	}
	// The down-sync bucket's create subject, which a store may use with any
	// filter, names its stream: a request for the pickup stream through it
	// is refused.
	attempts = append(attempts, struct {
		name string
		try  func() error
	}{"a pickup consumer through the down-sync bucket's create subject", func() error {
		body := `{"stream_name":"KV_omni_pickup","config":{"name":"sneaky2","filter_subject":"$KV.omni_pickup.S2.>","deliver_policy":"all","ack_policy":"none","mem_storage":true,"inactive_threshold":10000000000}}`
		m, err := s1.RequestWithContext(ctx(), "$JS.API.CONSUMER.CREATE.KV_omni_down.sneaky2", []byte(body))
		if err != nil {
			return fmt.Errorf("no answer: %w", err)
		}
		if !strings.Contains(string(m.Data), `"error"`) {
			return fmt.Errorf("server created it: %s", m.Data)
		}
		return nil
	}})
	for _, subj := range []string{
		"$JS.API.DIRECT.GET.KV_omni_pickup.$KV.omni_pickup.S2.ORDER-S2",
		"$JS.API.DIRECT.GET.KV_omni_pickup",
		"$JS.API.STREAM.MSG.GET.KV_omni_pickup",
		"$JS.API.STREAM.INFO.KV_omni_pickup",
		"$JS.API.CONSUMER.LIST.KV_omni_pickup",
	} {
		attempts = append(attempts, struct {
			name string
			try  func() error
		}{subj, func() error {
			body := `{"last_by_subj":"$KV.omni_pickup.S2.ORDER-S2","subjects_filter":">"}`
			m, err := s1.RequestWithContext(refused(), subj, []byte(body))
			if err == nil && strings.Contains(string(m.Data), "ORDER-S2") {
				return fmt.Errorf("answered %s", m.Data)
			}
			return nil
		}})
	}
	// Each refusal costs a timeout: try them all at once.
	var wg sync.WaitGroup
	for _, at := range attempts {
		wg.Go(func() {
			if err := at.try(); err != nil {
				t.Errorf("%s: %v", at.name, err)
			}
		})
	}
	wg.Wait()
	// A push consumer on its own orders aimed at the JetStream API (the
	// server does not let a consumer's deliveries act as API requests):
	// S2's order survives, below.
	for _, target := range []string{"$JS.API.STREAM.PURGE." + downsync.PickupStream, "$JS.API.STREAM.DELETE." + downsync.PickupStream} {
		if _, err := s1js.CreatePushConsumer(ctx(), downsync.PickupStream, jetstream.ConsumerConfig{
			DeliverSubject: target, FilterSubject: downsync.PickupFilter("S1"), AckPolicy: jetstream.AckNonePolicy,
		}); err != nil {
			t.Fatalf("S1's push consumer on its own orders: %v", err)
		}
	}
	time.Sleep(time.Second)
	// Nor can a store write orders.
	js, _ := jetstream.New(s1)
	if _, err := js.Publish(refused(), downsync.PickupSubject(downsync.PickupKey("S1", "FORGED")), []byte(`{}`)); err == nil {
		t.Error("S1 wrote to the pickup bucket")
	}
	got := strings.Join(errs(), "\n")
	for _, want := range []string{
		`Publish to "$JS.API.CONSUMER.CREATE.KV_omni_pickup.`,
		`Publish to "$JS.API.STREAM.INFO.KV_omni_pickup"`,
		`Publish to "$JS.API.DIRECT.GET.KV_omni_pickup`,
		`Publish to "$KV.omni_pickup.S1.FORGED"`,
	} {
		if !strings.Contains(got, want) {
			t.Errorf("no permissions violation for %s; server said:\n%s", want, got)
		}
	}
	// S1's agent, with the same credentials, lists S1's order and knows
	// nothing of S2's.
	var list struct {
		Orders []downsync.PickupDoc `json:"orders"`
		Synced bool                 `json:"synced"`
	}
	testkit.Eventually(t, 20*time.Second, func() bool {
		return getJSON(t, a.URL+"/v1/pickups?state=open", &list) == http.StatusOK && list.Synced && len(list.Orders) == 1
	}, "S1's agent lists its order: %+v", list)
	if o := list.Orders[0]; o.ReservationID != "ORDER-S1" || o.Store != "S1" {
		t.Fatalf("S1's agent lists %+v", list.Orders)
	}
	if code := getJSON(t, a.URL+"/v1/pickups/ORDER-S2", nil); code != http.StatusNotFound {
		t.Fatalf("S1's agent answered %d for S2's order", code)
	}

	// S2's order is still S2's alone, and whole.
	all, err := readPickups(ctx(), hub, downsync.PickupFilter("S2"))
	if err != nil || len(all) != 1 || all["ORDER-S2"].Lines[0].Qty != 2 {
		t.Fatalf("S2's orders: %v %v", all, err)
	}
}
