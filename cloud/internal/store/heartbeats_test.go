package store

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"
)

// Ensure that hub replicas flushing overlapping sets of heartbeats at the
// same time, in any order, leave each device's newest heartbeat, and that
// of several for one device in one flush the newest counts.
func TestRecordHeartbeatsConcurrentFlushes(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		const devices, replicas, rounds = 600, 3, 4
		base := time.UnixMilli(1_700_000_000_000)
		var mu sync.Mutex
		want := map[string]Heartbeat{}
		var wg sync.WaitGroup
		errc := make(chan error, replicas*rounds)
		for r := range replicas {
			wg.Add(1)
			go func() {
				defer wg.Done()
				rng := rand.New(rand.NewPCG(uint64(r), 1))
				for round := range rounds {
					var batch []Heartbeat
					for _, i := range rng.Perm(devices)[:devices/2] {
						hb := Heartbeat{
							Store: fmt.Sprintf("S%03d", i%50), Device: fmt.Sprintf("pos-%d", i),
							Version: fmt.Sprintf("r%d-%d", r, round), Epoch: 7, Backlog: int64(rng.IntN(100)),
							Connected: true, At: base.Add(time.Duration(rng.IntN(100_000)) * time.Millisecond),
						}
						// An older copy in the same flush must not win.
						older := hb
						older.At, older.Version = hb.At.Add(-time.Second), "older"
						batch = append(batch, older, hb)
						mu.Lock()
						k := hb.Store + "/" + hb.Device
						if w, ok := want[k]; !ok || hb.At.After(w.At) {
							want[k] = hb
						}
						mu.Unlock()
					}
					errc <- s.RecordHeartbeats(ctx, batch)
				}
			}()
		}
		wg.Wait()
		close(errc)
		for err := range errc {
			if err != nil {
				t.Fatal(err)
			}
		}
		devs, err := s.Devices(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(devs) != len(want) {
			t.Fatalf("%d devices stored, want %d", len(devs), len(want))
		}
		for _, d := range devs {
			if w := want[d.Store+"/"+d.Device]; !d.LastHeartbeat.Equal(w.At) {
				t.Fatalf("%s/%s: stored %s at %v, want the newest, %s at %v", d.Store, d.Device, d.Version, d.LastHeartbeat, w.Version, w.At)
			}
		}
		// Within one flush, the newest of a device's heartbeats counts
		// wherever it is in the list.
		at := base.Add(time.Hour)
		if err := s.RecordHeartbeats(ctx, []Heartbeat{
			{Store: "S1", Device: "kiosk", Version: "new", At: at},
			{Store: "S1", Device: "kiosk", Version: "old", At: at.Add(-time.Second)},
		}); err != nil {
			t.Fatal(err)
		}
		if devs, err = s.Devices(ctx); err != nil {
			t.Fatal(err)
		}
		for _, d := range devs {
			if d.Store == "S1" && d.Device == "kiosk" && (d.Version != "new" || !d.LastHeartbeat.Equal(at)) {
				t.Fatalf("S1/kiosk: stored %s at %v, want new at %v", d.Version, d.LastHeartbeat, at)
			}
		}
		if err := s.RecordHeartbeats(ctx, []Heartbeat{{Store: "S1", Device: "pos-1"}, {Store: "S1"}}); !errors.Is(err, ErrInvalid) {
			t.Fatalf("a heartbeat without device: %v", err)
		}
		if err := s.RecordHeartbeats(ctx, nil); err != nil {
			t.Fatalf("no heartbeats: %v", err)
		}
	})
}
