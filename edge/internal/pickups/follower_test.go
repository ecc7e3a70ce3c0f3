package pickups

import (
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/omnisync/omnisync/edge/internal/pickups/pickuptest"
	"github.com/omnisync/omnisync/shared/downsync"
	"github.com/omnisync/omnisync/shared/subjects"
	"github.com/omnisync/omnisync/shared/testkit"
)

const (
	open      = downsync.PickupOpen
	collected = downsync.PickupCollected
	cancelled = downsync.PickupCancelled
)

func order(store, id, state string, version int64) downsync.PickupDoc {
	return pickuptest.Order(store, id, state, version, 1_700_000_000_000+version)
}

// Ensure that the follower reads the store's orders when it starts, then
// follows what the hub writes, deletes and purges, with S1's orders only,
// ignoring older versions and skipping what it cannot read.
func TestFollower_Follows(t *testing.T) {
	for _, tc := range []struct {
		name string
		// before is written before the agent starts, live after it has
		// caught up with it.
		before, live func(h *pickuptest.Hub)
		want         map[string]string
		// rejected and ignored are the counts after one session.
		rejected, ignored uint64
	}{{
		name: "initial read",
		before: func(h *pickuptest.Hub) {
			h.Put(order("S1", "R1", open, 1))
			h.Put(order("S1", "R2", collected, 3))
			h.Put(order("S1", "R3", cancelled, 2))
			h.Put(order("S1", "R1", open, 2)) // rewritten: the latest counts
			h.Put(order("S1", "R4", open, 1))
			h.Delete("S1", "R4") // deleted before the agent read it
			h.Put(order("S1", "R5", open, 1))
			h.Purge("S1", "R5")
		},
		want: map[string]string{"R1": "open@2", "R2": "collected@3", "R3": "cancelled@2"},
	}, {
		name:   "live open to collected",
		before: func(h *pickuptest.Hub) { h.Put(order("S1", "R1", open, 1)) },
		live: func(h *pickuptest.Hub) {
			h.Put(order("S1", "R1", collected, 2))
			h.Put(order("S1", "R2", open, 1))
		},
		want: map[string]string{"R1": "collected@2", "R2": "open@1"},
	}, {
		name: "delete and purge markers drop the order",
		before: func(h *pickuptest.Hub) {
			for _, id := range []string{"R1", "R2", "R3"} {
				h.Put(order("S1", id, collected, 1))
			}
		},
		live: func(h *pickuptest.Hub) {
			h.Delete("S1", "R1")
			h.Purge("S1", "R2")
			h.Delete("S1", "R9") // never held
		},
		want: map[string]string{"R3": "collected@1"},
	}, {
		name: "another store's orders never appear",
		before: func(h *pickuptest.Hub) {
			h.Put(order("S2", "R1", open, 1))
			h.Put(order("S10", "R2", open, 1)) // S1 is a prefix of S10, not of its subjects
			h.Put(order("S1", "R3", open, 1))
		},
		live: func(h *pickuptest.Hub) {
			h.Put(order("S2", "R4", open, 1))
			h.Put(order("S11", "R5", open, 1))
			h.Put(order("S1", "R6", open, 1))
		},
		want: map[string]string{"R3": "open@1", "R6": "open@1"},
	}, {
		name: "a lower version is ignored",
		before: func(h *pickuptest.Hub) {
			h.Put(order("S1", "R1", collected, 5))
			h.Put(order("S1", "R2", open, 1))
		},
		live: func(h *pickuptest.Hub) {
			// R1's version 5 came with the caught-up set, so version 4 is
			// surely delivered after it. (Two writes of one key in a row
			// are not: the bucket keeps one value per key, and the
			// consumer may see only the second.)
			h.Put(order("S1", "R1", open, 4))
			h.Put(order("S1", "R2", cancelled, 3))
		},
		want:    map[string]string{"R1": "collected@5", "R2": "cancelled@3"},
		ignored: 1,
	}, {
		name: "unreadable messages are counted and skipped",
		before: func(h *pickuptest.Hub) {
			h.Put(order("S1", "R1", open, 1))
			h.PutRaw("S1.R2", []byte("{not json"))
			h.PutRaw("S1._R3", mustJSON(t, order("S1", "_R3", open, 1))) // not a token
			h.PutRaw("S1.R4.x", mustJSON(t, order("S1", "R4.x", open, 1)))
		},
		live: func(h *pickuptest.Hub) {
			h.PutRaw("S1.R5", mustJSON(t, order("S1", "R6", open, 1)))     // another reservation
			h.PutRaw("S1.R7", mustJSON(t, order("S2", "R7", open, 1)))     // another store
			h.PutRaw("S1.R8", mustJSON(t, order("S1", "R8", "", 1)))       // no state
			h.PutRaw("S1.R1", []byte(`{"reservation_id": "R1", "store":`)) // R1 keeps its last good version
			h.Put(order("S1", "R9", open, 1))
		},
		want:     map[string]string{"R1": "open@1", "R9": "open@1"},
		rejected: 7,
	}} {
		t.Run(tc.name, func(t *testing.T) {
			ns := testkit.StartNATS(t)
			h := pickuptest.Connect(t, ns.URL()).CreateBucket()
			tc.before(h)
			a := newAgent(t, ns.URL()).start()
			want := tc.want
			if tc.live != nil {
				a.waitSynced()
				tc.live(h)
				// Applied in stream order: once the last order is held,
				// so is everything before it.
				h.Put(order("S1", "Z-last", open, 1))
				want = maps.Clone(want)
				want["Z-last"] = "open@1"
			}
			a.waitFor(want)
			// Live changes are applied after the set is replaced, so the
			// session that caught up is still the one running.
			st := a.f.Status()
			if st.Sessions != 1 || st.Rejected != tc.rejected || st.Ignored != tc.ignored || !st.Connected {
				t.Errorf("status %+v, want 1 session, %d rejected, %d ignored, connected", st, tc.rejected, tc.ignored)
			}
			var open int64
			for _, s := range want {
				if strings.HasPrefix(s, "open@") {
					open++
				}
			}
			if st.Orders != int64(len(want)) || st.Open != open || st.SyncedAt.IsZero() {
				t.Errorf("status %+v, want %d orders, %d open, synced_at", st, len(want), open)
			}
		})
	}
}

// Ensure that the cache survives a restart of the agent, answers while NATS
// is down, and, once NATS is back, holds exactly what the bucket holds,
// orders deleted while the agent was away included.
func TestFollower_RestartOffline(t *testing.T) {
	ns := testkit.StartNATS(t)
	h := pickuptest.Connect(t, ns.URL()).CreateBucket()
	h.Put(order("S1", "R1", open, 1))
	h.Put(order("S1", "R2", open, 1))
	a := newAgent(t, ns.URL()).start()
	a.waitFor(map[string]string{"R1": "open@1", "R2": "open@1"})
	synced := a.f.Status().SyncedAt
	a.stop()

	// While the agent is away, R1 is collected and later deleted, R3 placed.
	h.Put(order("S1", "R1", collected, 2))
	h.Delete("S1", "R1")
	h.Put(order("S1", "R3", open, 1))
	ns.Stop()

	a.start()
	time.Sleep(200 * time.Millisecond) // a few failed connection attempts
	if got, want := a.states(), (map[string]string{"R1": "open@1", "R2": "open@1"}); !maps.Equal(got, want) {
		t.Errorf("offline cache holds %v, want %v", got, want)
	}
	if d, err := a.cache.Get("R2"); err != nil || d.State != open {
		t.Errorf("offline get R2: %+v %v", d, err)
	}
	if st := a.f.Status(); st.Connected || st.Synced || !st.SyncedAt.Equal(synced) || st.Orders != 2 || st.Open != 2 {
		t.Errorf("offline status %+v, want disconnected, synced_at %v, 2 open orders", st, synced)
	}

	ns.Restart()
	a.waitFor(map[string]string{"R2": "open@1", "R3": "open@1"})
	if st := a.f.Status(); !st.SyncedAt.After(synced) {
		t.Errorf("synced_at %v not after %v", st.SyncedAt, synced)
	}

	// A NATS restart while the agent runs: a new session, and it follows.
	sessions := a.f.Status().Sessions
	ns.Restart()
	testkit.Eventually(t, 10*time.Second, func() bool {
		st := a.f.Status()
		return st.Sessions > sessions && st.Synced
	}, "a new session after the reconnect: %+v", a.f.Status())
	h.Put(order("S1", "R2", collected, 2))
	a.waitFor(map[string]string{"R2": "collected@2", "R3": "open@1"})
}

// Ensure that a bucket deleted and recreated with other contents ends in
// the cache with exactly the new contents, even with versions lower than
// the old ones.
func TestFollower_BucketRecreated(t *testing.T) {
	ns := testkit.StartNATS(t)
	h := pickuptest.Connect(t, ns.URL()).CreateBucket()
	h.Put(order("S1", "R1", collected, 7))
	h.Put(order("S1", "R2", open, 3))
	a := newAgent(t, ns.URL()).start()
	a.waitFor(map[string]string{"R1": "collected@7", "R2": "open@3"})

	h.DeleteBucket()
	h.CreateBucket()
	h.Put(order("S1", "R1", open, 1))
	h.Put(order("S1", "R3", open, 1))
	a.waitFor(map[string]string{"R1": "open@1", "R3": "open@1"})
	h.Put(order("S1", "R3", cancelled, 2))
	a.waitFor(map[string]string{"R1": "open@1", "R3": "cancelled@2"})
}

// Ensure that the follower waits for a bucket the hub has not created yet,
// keeps answering from its cache meanwhile, and reads it once it exists.
func TestFollower_WaitsForBucket(t *testing.T) {
	ns := testkit.StartNATS(t)
	h := pickuptest.Connect(t, ns.URL())
	a := newAgent(t, ns.URL()).start()
	a.waitMissingBucket()
	if st := a.f.Status(); st.Synced || st.Sessions != 0 || !st.SyncedAt.IsZero() {
		t.Errorf("status without a bucket %+v", st)
	}
	if docs, err := a.cache.List(Query{}); err != nil || len(docs) != 0 {
		t.Errorf("list without a bucket: %v %v", docs, err)
	}

	h.CreateBucket()
	h.Put(order("S1", "R1", open, 1))
	a.waitFor(map[string]string{"R1": "open@1"})
	if st := a.f.Status(); st.LastError != "" {
		t.Errorf("last error after catching up: %q", st.LastError)
	}
}

// Ensure that the follower needs nothing but what a store's credentials
// allow on the pickup stream: consumers created with its own filter in the
// subject, next-message requests and consumer deletes, with replies in its
// own inbox space.
func TestFollower_StoreCredentials(t *testing.T) {
	url := testkit.StartNATSWithUsers(t, &server.User{Username: "hub", Password: "hub"}, &server.User{
		Username: "s1", Password: "s1",
		Permissions: &server.Permissions{
			Publish: &server.SubjectPermission{Allow: []string{
				"$JS.API.CONSUMER.CREATE." + downsync.PickupStream + ".*." + downsync.PickupFilter("S1"),
				"$JS.API.CONSUMER.MSG.NEXT." + downsync.PickupStream + ".*",
				"$JS.API.CONSUMER.DELETE." + downsync.PickupStream + ".*",
			}},
			Subscribe: &server.SubjectPermission{Allow: []string{subjects.InboxPrefix("S1") + ".>"}},
		},
	})
	h := pickuptest.Connect(t, url, nats.UserInfo("hub", "hub"))
	a := newAgent(t, url, nats.UserInfo("s1", "s1")).start()
	// Before the bucket exists, the create request is allowed and answered.
	a.waitMissingBucket()
	h.CreateBucket()
	h.Put(order("S1", "R1", open, 1))
	h.Put(order("S2", "R2", open, 1))
	a.waitFor(map[string]string{"R1": "open@1"})
	h.Put(order("S1", "R1", collected, 2))
	a.waitFor(map[string]string{"R1": "collected@2"})
}

func TestParse(t *testing.T) {
	good := mustJSON(t, order("S1", "R1", open, 1))
	for _, tc := range []struct {
		name, subject, op string
		data              []byte
		wantID, wantErr   string
		deleted           bool
	}{
		{name: "document", subject: downsync.PickupSubject("S1.R1"), data: good, wantID: "R1"},
		{name: "encoded ids", subject: downsync.PickupSubject(downsync.PickupKey("S1", "web/42")),
			data: mustJSON(t, order("S1", "web/42", open, 1)), wantID: "web/42"},
		{name: "delete", subject: downsync.PickupSubject("S1.R1"), op: "DEL", wantID: "R1", deleted: true},
		{name: "purge", subject: downsync.PickupSubject("S1.R1"), op: "PURGE", wantID: "R1", deleted: true},
		{name: "no reservation", subject: downsync.PickupSubject("S1"), data: good, wantErr: "not a down-sync key"},
		{name: "bad token", subject: downsync.PickupSubject("S1._x"), data: good, wantErr: "bad token"},
		{name: "other store's key", subject: downsync.PickupSubject("S2.R1"), op: "DEL", wantErr: `key of store "S2"`},
		{name: "malformed", subject: downsync.PickupSubject("S1.R1"), data: []byte("[]"), wantErr: "malformed value"},
		{name: "store mismatch", subject: downsync.PickupSubject("S1.R1"), data: mustJSON(t, order("S2", "R1", open, 1)), wantErr: "document of store"},
		{name: "id mismatch", subject: downsync.PickupSubject("S1.R1"), data: mustJSON(t, order("S1", "R2", open, 1)), wantErr: "document of reservation"},
		{name: "no state", subject: downsync.PickupSubject("S1.R1"), data: mustJSON(t, order("S1", "R1", "", 1)), wantErr: "without a state"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ch, err := parse("S1", tc.subject, tc.op, tc.data)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || ch.id != tc.wantID || (ch.doc == nil) != tc.deleted {
				t.Fatalf("parse = %+v %v, want id %q deleted %v", ch, err, tc.wantID, tc.deleted)
			}
		})
	}
}

// FuzzParse: whatever the hub (or a corrupted stream) sends, parse does
// not panic, and what it accepts belongs to the store and its key.
func FuzzParse(f *testing.F) {
	f.Add("$KV.omni_pickup.S1.R1", "", []byte(`{"reservation_id":"R1","store":"S1","state":"open","version":1}`))
	f.Add("$KV.omni_pickup.S1.~d2ViLzQy", "DEL", []byte(nil))
	f.Add("S1.R1.R2", "PURGE", []byte(`{}`))
	f.Fuzz(func(t *testing.T, subject, op string, data []byte) {
		ch, err := parse("S1", subject, op, data)
		if err != nil {
			return
		}
		store, id, kerr := downsync.ParsePickupKey(subject)
		if kerr != nil || store != "S1" || id != ch.id || (ch.doc != nil && (ch.doc.Store != "S1" || ch.doc.ReservationID != id)) {
			t.Fatalf("accepted %q: %+v", subject, ch)
		}
	})
}
