package pickups

import (
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/omnisync/omnisync/shared/downsync"
)

func mustOpen(t *testing.T, path, store string) *Cache {
	t.Helper()
	c, err := Open(Options{Path: path, Store: store})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// Ensure that a cache file keeps its orders and synced_at across a reopen
// by the same store, and is emptied when opened for another store.
func TestCache_Reopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "pickups.db")
	c := mustOpen(t, path, "S1")
	synced := time.Unix(1_700_000_000, 123)
	err := c.replace(map[string]downsync.PickupDoc{
		"R1": order("S1", "R1", open, 1), "R2": order("S1", "R2", cancelled, 2), "R3": order("S1", "R3", "ready", 1),
	}, synced)
	if err != nil {
		t.Fatal(err)
	}
	want := Stats{Orders: 3, Open: 1, Cancelled: 1, SyncedAt: synced}
	if st := c.Stats(); st != want {
		t.Fatalf("stats %+v, want %+v", st, want)
	}
	c.Close()

	for _, tc := range []struct {
		store string
		want  Stats
	}{
		{"S1", want},
		{"S2", Stats{}},
		{"S1", Stats{}}, // S2 emptied it
	} {
		c := mustOpen(t, path, tc.store)
		if st := c.Stats(); !st.SyncedAt.Equal(tc.want.SyncedAt) || st.Orders != tc.want.Orders || st.Open != tc.want.Open {
			t.Errorf("opened for %s: stats %+v, want %+v", tc.store, st, tc.want)
		}
		if docs, _ := c.List(Query{}); int64(len(docs)) != tc.want.Orders {
			t.Errorf("opened for %s: %d orders listed, want %d", tc.store, len(docs), tc.want.Orders)
		}
		c.Close()
	}
}

// Ensure that apply keeps the counts by state in step and ignores only
// documents older than the one held.
func TestCache_Apply(t *testing.T) {
	c := mustOpen(t, filepath.Join(t.TempDir(), "pickups.db"), "S1")
	doc := func(id, state string, v int64) *downsync.PickupDoc { d := order("S1", id, state, v); return &d }
	ignored, err := c.apply([]change{
		{id: "R1", doc: doc("R1", open, 2)},
		{id: "R2", doc: doc("R2", open, 1)},
		{id: "R1", doc: doc("R1", collected, 1)}, // older: ignored
		{id: "R2", doc: doc("R2", cancelled, 1)}, // same version: applied
		{id: "R3", doc: doc("R3", open, 1)},
		{id: "R3"},
		{id: "R4"}, // never held
	})
	if err != nil || ignored != 1 {
		t.Fatalf("apply: %d ignored, %v", ignored, err)
	}
	if st := c.Stats(); st.Orders != 2 || st.Open != 1 || st.Cancelled != 1 || st.Collected != 0 {
		t.Errorf("stats %+v", st)
	}
	if d, err := c.Get("R2"); err != nil || d.State != cancelled {
		t.Errorf("R2: %+v %v", d, err)
	}
	if _, err := c.Get("R3"); !errors.Is(err, ErrNotFound) {
		t.Errorf("R3 deleted: %v", err)
	}
}

// Ensure that a second Open of a file fails with ErrLocked, and that a
// closed cache says so.
func TestCache_LockedAndClosed(t *testing.T) {
	path := filepath.Join(t.TempDir(), "pickups.db")
	c := mustOpen(t, path, "S1")
	if _, err := Open(Options{Path: path, Store: "S1"}); !errors.Is(err, ErrLocked) {
		t.Errorf("second open: %v, want ErrLocked", err)
	}
	c.Close()
	if _, err := c.List(Query{}); !errors.Is(err, ErrClosed) {
		t.Errorf("list after close: %v", err)
	}
	if _, err := c.apply([]change{{id: "R1"}}); !errors.Is(err, ErrClosed) {
		t.Errorf("apply after close: %v", err)
	}
	if err := c.Close(); err != nil {
		t.Errorf("second close: %v", err)
	}
	for _, o := range []Options{{Store: "S1"}, {Path: path, Store: "bad store"}} {
		if _, err := Open(o); !errors.Is(err, ErrInvalidOption) {
			t.Errorf("open %+v: %v, want ErrInvalidOption", o, err)
		}
	}
}
