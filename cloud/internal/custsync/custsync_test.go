package custsync

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/omnisync/omnisync/cloud/internal/identity"
	"github.com/omnisync/omnisync/shared/downsync"
	"github.com/omnisync/omnisync/shared/subjects"
	"github.com/omnisync/omnisync/shared/syncproto"
	"github.com/omnisync/omnisync/shared/testkit"
)

func ask[R any](t testing.TB, nc *nats.Conn, subject string, body any) (R, error) {
	t.Helper()
	var r R
	b, _ := json.Marshal(body)
	m, err := nc.Request(subject, b, 2*time.Second)
	if err != nil {
		return r, err
	}
	if err := json.Unmarshal(m.Data, &r); err != nil {
		t.Fatalf("reply %q: %v", m.Data, err)
	}
	return r, nil
}

// Ensure that a store gets the card of a shopper who identified there,
// by any of their identifiers as a till types them; not one who
// identified only elsewhere; that the store is always the subject's (a
// body naming a store is refused, and the server refuses S1 on S2's
// subject: a permissions violation, no answer); and that malformed and
// failing requests get a clear code.
func TestCard(t *testing.T) {
	h := startHub(t, time.Hour, "S1", "S2")
	h.m.identify(t, "S1", Card{Customer: "C1", FirstName: "Ada", Tier: "gold", Consent: map[string]bool{"sms": true}}, "loyalty:LC-1", "email:ada@example.com")
	s1, errs := h.w.Store(t, "S1", "")
	s2, _ := h.w.Store(t, "S2", "")

	for _, ids := range []map[string]string{{"loyalty": "lc-1 "}, {"email": "Ada@Example.com"}, {"loyalty": "LC-404", "email": "ada@example.com"}} {
		r, err := ask[syncproto.CardReply](t, s1, subjects.Cust("S1", subjects.CustCard), syncproto.CardRequest{Identifiers: ids, Device: "pos-1"})
		if err != nil || r.Card == nil || r.Card.Customer != "C1" || r.Card.FirstName != "Ada" || !r.Card.Consent["sms"] {
			t.Fatalf("S1 asking with %d identifiers: %+v %v", len(ids), r, err)
		}
	}
	cases := []struct {
		name string
		nc   *nats.Conn
		subj string
		body string
		code string
	}{
		{"identified elsewhere", s2, subjects.Cust("S2", subjects.CustCard), `{"identifiers":{"loyalty":"LC-1"}}`, syncproto.CodeNotFound},
		{"unknown", s1, subjects.Cust("S1", subjects.CustCard), `{"identifiers":{"loyalty":"LC-2"}}`, syncproto.CodeNotFound},
		{"a body naming a store", s1, subjects.Cust("S1", subjects.CustCard), `{"identifiers":{"loyalty":"LC-1"},"store":"S2"}`, syncproto.CodeInvalid},
		{"no identifiers", s1, subjects.Cust("S1", subjects.CustCard), `{"identifiers":{}}`, syncproto.CodeInvalid},
		{"not an e-mail", s1, subjects.Cust("S1", subjects.CustCard), `{"identifiers":{"email":"nobody"}}`, syncproto.CodeInvalid},
		{"not JSON", s1, subjects.Cust("S1", subjects.CustCard), `{`, syncproto.CodeInvalid},
	}
	for _, c := range cases {
		m, err := c.nc.Request(c.subj, []byte(c.body), 2*time.Second)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		var r syncproto.CardReply
		if json.Unmarshal(m.Data, &r) != nil || r.Card != nil || r.Code != c.code {
			t.Fatalf("%s: %s, want code %s", c.name, m.Data, c.code)
		}
	}
	h.m.mu.Lock()
	h.m.failNext = errors.New("database gone")
	h.m.mu.Unlock()
	if r, _ := ask[syncproto.CardReply](t, s1, subjects.Cust("S1", subjects.CustCard), syncproto.CardRequest{Identifiers: map[string]string{"loyalty": "LC-1"}}); r.Code != syncproto.CodeUnavailable || strings.Contains(r.Error, "database") {
		t.Fatalf("failing store: %+v", r)
	}

	// S1 on S2's subject: refused by the server, never answered.
	before := len(h.m.asked)
	if _, err := s1.Request(subjects.Cust("S2", subjects.CustCard), []byte(`{"identifiers":{"loyalty":"LC-1"}}`), 500*time.Millisecond); err == nil {
		t.Fatal("S1 got an answer on S2's subject")
	}
	if got := strings.Join(errs(), "\n"); !strings.Contains(got, `Publish to "omni.hub.cust.S2.card"`) {
		t.Fatalf("no permissions violation; server said:\n%s", got)
	}
	h.m.mu.Lock()
	asked := slices.Clone(h.m.asked[before:])
	all := slices.Clone(h.m.asked)
	h.m.mu.Unlock()
	if len(asked) != 0 {
		t.Fatalf("the store was asked for %v", asked)
	}
	// Only S2's own request was answered for S2.
	if n := len(all) - len(slices.DeleteFunc(slices.Clone(all), func(s string) bool { return s == "S2" })); n != 1 {
		t.Fatalf("asked for %v", all)
	}
	if st := h.svc.Stats(); st.Cards != 3 || st.CardsNotFound != 2 || st.RequestErrors != 1 {
		t.Fatalf("stats %+v", st)
	}
}

// readNotices reads the erasure notices under filter with the store's
// connection, the way an agent does.
func readNotices(t testing.TB, nc *nats.Conn, filter string) map[string]syncproto.ErasureNotice {
	t.Helper()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	cons, err := js.OrderedConsumer(ctx, downsync.ErasureStream, jetstream.OrderedConsumerConfig{FilterSubjects: []string{filter}})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]syncproto.ErasureNotice{}
	if cons.CachedInfo().NumPending == 0 {
		return out
	}
	for {
		batch, err := cons.Fetch(100, jetstream.FetchMaxWait(2*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		for m := range batch.Messages() {
			var n syncproto.ErasureNotice
			if err := json.Unmarshal(m.Data(), &n); err != nil {
				t.Fatal(err)
			}
			out[n.Erasure] = n
			if md, _ := m.Metadata(); md != nil && md.NumPending == 0 {
				return out
			}
		}
	}
}

// Ensure that every pending erasure reaches every store it is pending at
// (at start, and at once on Notify), each store reads only its own, a
// receipt is recorded once and for the store it came from, the notice
// stays for the store's other devices, and the hub answers which
// identifiers an erasure names for any erasure of that store.
func TestErasures(t *testing.T) {
	h := startHub(t, time.Hour, "S1", "S2", "S3")
	h.m.identify(t, "S1", Card{Customer: "C1"}, "loyalty:LC-1", "email:ada@example.com", "phone:+44 20 7946 0018")
	h.m.erase(t, "E1", "C1", []string{"S1", "S2"}, "loyalty:LC-1", "email:ada@example.com", "phone:+44 20 7946 0018")
	h.svc.Notify()
	s1, _ := h.w.Store(t, "S1", "")
	s2, _ := h.w.Store(t, "S2", "")
	s3, _ := h.w.Store(t, "S3", "")
	testkit.Eventually(t, 10*time.Second, func() bool {
		return len(readNotices(t, s1, downsync.ErasureFilter("S1"))) == 1 && len(readNotices(t, s2, downsync.ErasureFilter("S2"))) == 1
	}, "E1 at S1 and S2")
	if n := readNotices(t, s1, downsync.ErasureFilter("S1"))["E1"]; n.Customer != "C1" || n.Store != "S1" || n.RequestedMS == 0 {
		t.Fatalf("S1's notice %+v", n)
	}
	if got := readNotices(t, s3, downsync.ErasureFilter("S3")); len(got) != 0 {
		t.Fatalf("S3 got %v", got)
	}

	// Which identifiers E1 names, as S1's tills typed them.
	ids := []syncproto.Identifier{
		{Type: "", Value: "lc-1"},                     // a bare customer field
		{Type: "email", Value: "someone@example.com"}, // another person
		{Type: "email", Value: " ADA@example.com"},
		{Type: "phone", Value: "020 7946 0018"}, // read in the store's country
		{Type: "loyalty", Value: "LC-2"},
	}
	r, err := ask[syncproto.MatchReply](t, s1, subjects.Cust("S1", subjects.CustMatch), syncproto.MatchRequest{Erasure: "E1", Identifiers: ids})
	if err != nil || !slices.Equal(r.Matches, []int{0, 2, 3}) {
		t.Fatalf("match: %+v %v", r, err)
	}
	if r, _ := ask[syncproto.MatchReply](t, s3, subjects.Cust("S3", subjects.CustMatch), syncproto.MatchRequest{Erasure: "E1", Identifiers: ids}); r.Code != syncproto.CodeNotFound || len(r.Matches) != 0 {
		t.Fatalf("S3 matching E1: %+v", r)
	}

	// Receipts: S1's twice (two devices), then a receipt for an erasure
	// S3 never had.
	for _, dev := range []string{"pos-1", "pos-2"} {
		rc := syncproto.Receipt{Erasure: "E1", Device: dev, AtMS: time.Now().UnixMilli(), EventsScrubbed: 2}
		if r, err := ask[syncproto.Reply](t, s1, subjects.Cust("S1", subjects.CustReceipt), rc); err != nil || r.Error != "" {
			t.Fatalf("receipt of %s: %+v %v", dev, r, err)
		}
	}
	if r, _ := ask[syncproto.Reply](t, s3, subjects.Cust("S3", subjects.CustReceipt), syncproto.Receipt{Erasure: "E1", Device: "pos-1", AtMS: 1}); r.Code != syncproto.CodeNotFound {
		t.Fatalf("S3's receipt: %+v", r)
	}
	if !h.m.acked("S1", "E1") || h.m.acked("S2", "E1") || h.m.acked("S3", "E1") {
		t.Fatal("receipts recorded for the wrong stores")
	}
	// Done at S1, the notice stays for S1's other devices; the store may
	// still match against it.
	h.svc.Notify()
	if got := readNotices(t, s1, downsync.ErasureFilter("S1")); len(got) != 1 {
		t.Fatalf("S1's notices after its receipt: %v", got)
	}
	if r, _ := ask[syncproto.MatchReply](t, s1, subjects.Cust("S1", subjects.CustMatch), syncproto.MatchRequest{Erasure: "E1", Identifiers: ids[:1]}); !slices.Equal(r.Matches, []int{0}) {
		t.Fatalf("match after the receipt: %+v", r)
	}

	// A second erasure, published on Notify, once.
	h.m.erase(t, "E2", "C9", []string{"S1", "S3"})
	h.svc.Notify()
	testkit.Eventually(t, 10*time.Second, func() bool {
		return len(readNotices(t, s1, downsync.ErasureFilter("S1"))) == 2 && len(readNotices(t, s3, downsync.ErasureFilter("S3"))) == 1
	}, "E2 at S1 and S3")
	// The bucket shows a notice a moment before the service counts it.
	testkit.Eventually(t, 10*time.Second, func() bool { return h.svc.Stats().NoticesPublished == 4 }, "4 notices counted")
	published := h.svc.Stats().NoticesPublished
	h.svc.Notify()
	time.Sleep(200 * time.Millisecond)
	if st := h.svc.Stats(); st.NoticesPublished != published || published != 4 || st.Receipts != 2 || st.Matches != 2 {
		t.Fatalf("stats %+v", st)
	}
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(h.svc.Collector())
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, mf := range mfs {
		if mf.GetName() == "omni_hub_erasure_notices_published_total" {
			found = mf.GetMetric()[0].GetCounter().GetValue() == 4
		}
	}
	if !found {
		t.Fatal("omni_hub_erasure_notices_published_total is not 4")
	}
}

// Ensure that a new hub (its memory of what it published lost) does not
// write a notice twice: the bucket refuses a second create.
func TestErasures_RestartCreatesOnce(t *testing.T) {
	h := startHub(t, time.Hour, "S1")
	h.m.erase(t, "E1", "C1", []string{"S1"})
	h.svc.Notify()
	testkit.Eventually(t, 10*time.Second, func() bool { return h.svc.Stats().NoticesPublished == 1 }, "E1 published")
	svc2, err := New(Options{Conn: h.nc, JS: h.svc.o.JS, Cards: h.m, Erasures: h.m, Hasher: h.m.h, Every: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if err := svc2.round(context.Background()); err != nil {
		t.Fatal(err)
	}
	if st := svc2.Stats(); st.NoticesPublished != 0 {
		t.Fatalf("a second hub published again: %+v", st)
	}
	kvInfo, err := h.svc.o.JS.Stream(context.Background(), downsync.ErasureStream)
	if err != nil {
		t.Fatal(err)
	}
	if n := kvInfo.CachedInfo().State.Msgs; n != 1 {
		t.Fatalf("%d messages in the bucket, want 1", n)
	}
}

// Ensure that Match compares normalised values under every key version
// the digests use, tries every type for an untyped value, and refuses
// broken digests.
func TestMatch(t *testing.T) {
	old := identity.Key{Version: 1, Secret: []byte("0123456789abcdef0123456789abcdef")}
	cur := identity.Key{Version: 2, Secret: []byte("fedcba9876543210fedcba9876543210")}
	h, err := identity.NewHasher(cur, old)
	if err != nil {
		t.Fatal(err)
	}
	card, _ := identity.Parse("loyalty:LC-7", "")
	mail, _ := identity.Parse("email:bo@example.org", "")
	d1, _ := h.DigestUnder(card, 1)
	digests := []string{d1.String(), h.Digest(mail).String()}
	got, err := Match(h, "", digests, []syncproto.Identifier{{Value: "lc-7"}, {Type: "email", Value: "BO@example.org"}, {Type: "loyalty", Value: "bo@example.org"}, {Type: "phone", Value: "12"}})
	if err != nil || !slices.Equal(got, []int{0, 1}) {
		t.Fatalf("Match = %v, %v", got, err)
	}
	if _, err := Match(h, "", []string{"nonsense"}, nil); err == nil {
		t.Fatal("accepted a broken digest")
	}
}
