package heartbeat

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/omnisync/omnisync/cloud/internal/store"
	"github.com/omnisync/omnisync/shared/events"
	"github.com/omnisync/omnisync/shared/subjects"
)

// FuzzHandle feeds the heartbeat service what any client on NATS could
// send: a reply always comes, an error reply records nothing, and what is
// recorded is always the device the subject names.
func FuzzHandle(f *testing.F) {
	f.Add(subjects.HubSync("S1", "pos-1"), []byte(`{"store":"S1","device":"pos-1","epoch":7,"backlog":3,"agent_time_ms":1700000000000}`))
	f.Add(subjects.HubSync("S1", "pos-1"), []byte(`{"store":"S2","device":"pos-1"}`))
	f.Add("omni.hub.sync.S1", []byte(`{}`))
	f.Add(subjects.HubSync("S1", "pos-1"), []byte(`{"store":"S1","device":"pos-1","epoch":-1,"published_seq":18446744073709551615}`))
	f.Add(subjects.HubSync("S1", "pos-1"), []byte("\x00{"))
	f.Add(subjects.HubSync("S1", "pos-1"), []byte(`{"store":"S1","device":"pos-1","epoch":7,"backlog":2,"unsynced_sales":2,"unsynced_sales_value":1300,"oldest_unsynced_sale_ms":-5}`))
	st, err := store.Open(context.Background(), "sqlite:"+filepath.Join(f.TempDir(), "hub.db"), nil)
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { st.Close() })
	s, err := New(Options{Store: st})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, subject string, data []byte) {
		s.mu.Lock()
		s.pending = map[devKey]store.Heartbeat{}
		s.mu.Unlock()
		rep := s.Handle(context.Background(), subject, data)
		s.mu.Lock()
		defer s.mu.Unlock()
		if rep.HubTimeMS == 0 {
			t.Fatal("a reply without the hub's time")
		}
		wantStore, wantDevice, ok := subjects.ParseHubSync(subject)
		if rep.Error != "" && rep.Error != "watermarks unavailable" {
			if len(s.pending) != 0 {
				t.Fatalf("refused (%s) but recorded %v", rep.Error, s.pending)
			}
			return
		}
		if !ok {
			t.Fatalf("accepted on a subject that names no device: %q", subject)
		}
		for k, hb := range s.pending {
			if k.store != wantStore || k.device != wantDevice || hb.Store != wantStore || hb.Device != wantDevice ||
				events.ValidToken(hb.Store) != nil || events.ValidToken(hb.Device) != nil {
				t.Fatalf("subject %q recorded %+v", subject, hb)
			}
		}
	})
}
