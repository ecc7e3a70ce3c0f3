package natsacct_test

import (
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/omnisync/omnisync/shared/natsacct/natsaccttest"
	"github.com/omnisync/omnisync/shared/subjects"
)

// Ensure that a store's agents may talk among themselves on the store's
// staff queue subjects, request and reply included, and that no other
// store can listen to them, publish to them or reach its own agents'
// through them: the subjects live in the store's account, which exports
// nothing.
func TestStoreStaffIsolation(t *testing.T) {
	w := natsaccttest.Start(t, "S1", "S2")
	a, aErrs := w.Store(t, "S1", "")
	b, bErrs := w.Store(t, "S1", "")
	s2, s2Errs := w.Store(t, "S2", "")
	s2Own, err := s2.SubscribeSync(subjects.StaffStore("S2"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s2.SubscribeSync(subjects.StaffAll); err != nil {
		t.Fatal(err)
	}
	if _, err := s2.SubscribeSync(subjects.StaffStore("S1")); err != nil {
		t.Fatal(err)
	}
	changes, err := b.SubscribeSync(subjects.StaffChanges("S1"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Subscribe(subjects.StaffSync("S1"), func(m *nats.Msg) { _ = m.Respond([]byte("queue")) }); err != nil {
		t.Fatal(err)
	}
	replies, err := a.SubscribeSync(subjects.StaffReply("S1", "a"))
	if err != nil {
		t.Fatal(err)
	}
	_ = b.Flush()
	_ = a.Flush()
	_ = s2.Flush()
	if err := a.Publish(subjects.StaffChanges("S1"), []byte("change")); err != nil {
		t.Fatal(err)
	}
	if m, err := changes.NextMsg(2 * time.Second); err != nil || string(m.Data) != "change" {
		t.Fatalf("S1's change between its agents: %v", err)
	}
	if err := a.PublishRequest(subjects.StaffSync("S1"), subjects.StaffReply("S1", "a"), []byte("?")); err != nil {
		t.Fatal(err)
	}
	if m, err := replies.NextMsg(2 * time.Second); err != nil || string(m.Data) != "queue" {
		t.Fatalf("S1's sync answered: %v", err)
	}
	// S2 publishing on S1's subjects is refused, and on its own reaches
	// none of S1's agents.
	_ = s2.Publish(subjects.StaffChanges("S1"), []byte("forged"))
	_ = s2.Publish(subjects.StaffChanges("S2"), []byte("other store"))
	if m, err := changes.NextMsg(300 * time.Millisecond); err == nil {
		t.Fatalf("S1's agent received %q from S2", m.Data)
	}
	if m, err := s2Own.NextMsg(time.Second); err != nil || string(m.Data) != "other store" {
		t.Fatalf("S2's own staff subject: %v", err)
	}
	if m, err := s2Own.NextMsg(100 * time.Millisecond); err == nil {
		t.Fatalf("S2 received %q on its own subjects", m.Data)
	}
	got := strings.Join(s2Errs(), "\n")
	for _, want := range []string{
		`Subscription to "omni.staff.>"`,
		`Subscription to "omni.staff.S1.>"`,
		`Publish to "omni.staff.S1.changes"`,
	} {
		if !strings.Contains(got, want) {
			t.Errorf("no permissions violation for %s; server said:\n%s", want, got)
		}
	}
	if errs := append(aErrs(), bErrs()...); len(errs) != 0 {
		t.Errorf("S1's agents hit permission errors: %v", errs)
	}
}

// Ensure that the shipped leaf.conf keeps the staff queue subjects on the
// leaf: neither imported from the hub nor exported to it.
func TestLeafConf_StaffStaysLocal(t *testing.T) {
	b, err := os.ReadFile("../../deploy/nats/leaf/leaf.conf")
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"deny_imports", "deny_exports"} {
		if want := k + ": [" + strconv.Quote(subjects.StaffAll) + "]"; !strings.Contains(string(b), want) {
			t.Errorf("leaf.conf has no %s", want)
		}
	}
}
