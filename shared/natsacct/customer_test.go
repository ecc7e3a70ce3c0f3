package natsacct_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/omnisync/omnisync/shared/downsync"
	"github.com/omnisync/omnisync/shared/natsacct/natsaccttest"
	"github.com/omnisync/omnisync/shared/subjects"
)

// Ensure that with the chain's accounts store S1 may send customer
// requests only on its own subjects, which the hub answers (naming S1),
// and reads only its own erasure notices: asking on S2's subject, reading
// S2's notices or writing notices are refused by the server.
func TestStoreCustomerIsolation(t *testing.T) {
	w := natsaccttest.Start(t, "S1", "S2")
	hub := w.Hub(t)
	if _, err := hub.Subscribe(subjects.CustAll, func(m *nats.Msg) {
		s, op, _ := subjects.ParseCust(m.Subject)
		_ = m.Respond([]byte(s + " " + op))
	}); err != nil {
		t.Fatal(err)
	}
	_ = hub.Flush()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// The hub publishes to the bucket's subjects (a KeyValue bound
	// through an API prefix would put through the prefix).
	djs := natsaccttest.DownJS(t, hub)
	kv, err := downsync.EnsureErasureBucket(ctx, djs, 1)
	if err != nil {
		t.Fatal(err)
	}
	// Every store reads through a consumer of its own: more than the
	// server's default of 1,000 per stream.
	if st, err := djs.Stream(ctx, downsync.ErasureStream); err != nil || st.CachedInfo().Config.MaxConsumers != downsync.MaxConsumers {
		t.Fatalf("erasure stream: %v", err)
	}
	for _, s := range []string{"S1", "S2"} {
		if _, err := djs.Publish(ctx, downsync.ErasureSubject(downsync.ErasureKey(s, "E1")), []byte(`{"store":"`+s+`"}`)); err != nil {
			t.Fatal(err)
		}
	}

	s1, errs := w.Store(t, "S1", "")
	m, err := s1.Request(subjects.Cust("S1", subjects.CustCard), []byte(`{}`), 2*time.Second)
	if err != nil || string(m.Data) != "S1 card" {
		t.Fatalf("S1 asking for its own card: %v %v", m, err)
	}
	if m, err := s1.Request(subjects.Cust("S2", subjects.CustCard), []byte(`{}`), 500*time.Millisecond); err == nil {
		t.Fatalf("S1 asked on S2's subject and got %q", m.Data)
	}
	js, err := jetstream.New(s1)
	if err != nil {
		t.Fatal(err)
	}
	read := func(filter string, wait time.Duration) (int, error) {
		c, cancel := context.WithTimeout(context.Background(), wait)
		defer cancel()
		cons, err := js.OrderedConsumer(c, downsync.ErasureStream, jetstream.OrderedConsumerConfig{FilterSubjects: []string{filter}})
		if err != nil {
			return 0, err
		}
		msgs, err := cons.Fetch(10, jetstream.FetchMaxWait(wait))
		if err != nil {
			return 0, err
		}
		n := 0
		for range msgs.Messages() {
			n++
		}
		return n, msgs.Error()
	}
	if n, err := read(downsync.ErasureFilter("S1"), 2*time.Second); err != nil || n != 1 {
		t.Fatalf("S1 reading its own notices: %d, %v", n, err)
	}
	if n, err := read(downsync.ErasureFilter("S2"), time.Second); err == nil && n > 0 {
		t.Fatalf("S1 read %d of S2's notices", n)
	}
	if n, err := read(downsync.ErasureSubjectPrefix+">", time.Second); err == nil && n > 0 {
		t.Fatalf("S1 read %d notices of the whole bucket", n)
	}
	_ = s1.Publish(downsync.ErasureSubject(downsync.ErasureKey("S1", "FORGED")), []byte(`{}`))
	got := strings.Join(errs(), "\n")
	for _, want := range []string{
		`Publish to "omni.hub.cust.S2.card"`,
		`Publish to "$JS.API.CONSUMER.CREATE.KV_omni_erase.`,
		`Publish to "$KV.omni_erase.S1.FORGED"`,
	} {
		if !strings.Contains(got, want) {
			t.Errorf("no permissions violation for %s; server said:\n%s", want, got)
		}
	}
	if e, err := kv.Get(ctx, downsync.ErasureKey("S1", "FORGED")); err == nil {
		t.Fatalf("S1 wrote a notice: %s", e.Value())
	}
}
