package hub

import (
	"testing"
	"time"

	"github.com/omnisync/omnisync/cloud/internal/store"
)

// Ensure that the overview's badge counts the devices whose oldest
// unsynced sale is past the alert age, counting the time since their last
// heartbeat, and ignores devices that are caught up.
func TestUnsyncedOf(t *testing.T) {
	now := time.Now()
	devs := []store.DeviceStatus{
		{Store: "S1", Device: "pos-1", Backlog: 0, OldestUnackedAge: 10 * time.Hour, LastHeartbeat: now},
		{Store: "S2", Device: "pos-1", Backlog: 3, OldestUnackedAge: time.Minute, LastHeartbeat: now},
		{Store: "S3", Device: "pos-1", Backlog: 7, OldestUnackedAge: time.Hour, LastHeartbeat: now.Add(-3*time.Hour - time.Minute)},
	}
	got, overdue := unsyncedOf(devs, now)
	if overdue != 1 || len(got) != 2 || got[0].Store != "S3" || !got[0].Overdue || got[1].Store != "S2" || got[1].Overdue {
		t.Fatalf("overdue %d, %+v", overdue, got)
	}
}
