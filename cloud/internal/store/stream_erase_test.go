package store

import (
	"context"
	"encoding/json"
	"slices"
	"testing"
	"time"

	"github.com/omnisync/omnisync/shared/events"
)

// streamItems are envs as they came from the events stream, the i-th at
// stream sequence seqs[i].
func streamItems(seqs []uint64, envs ...events.Envelope) []Item {
	out := itemsOf(envs...)
	for i := range out {
		out[i].StreamSeq = seqs[i]
	}
	return out
}

func seqsOf(ds []StreamDeletion) []uint64 {
	var out []uint64
	for _, d := range ds {
		out = append(out, d.Seq)
	}
	slices.Sort(out)
	return out
}

// Ensure that an erasure queues exactly the stream messages naming the
// customer, one replica at a time holds them, the erasure shows the
// stream's state, and a late event naming the erased customer is queued
// for deletion once applied.
func TestStreamErase_QueuesCustomersMessages(t *testing.T) {
	t.Parallel()
	forEachStoreAtOnce(t, func(t *testing.T, s *Store) {
		withKeys(s)
		ctx := context.Background()
		a := newDevice("S1", "pos-1", 1)
		_, err := s.ApplyBatch(ctx, streamItems([]uint64{10, 11, 12, 13},
			a.ev(1000, events.KindIdentify, identify(map[string]string{"loyalty": "LC-7", "email": "eve@shop.test"})),
			a.ev(1100, events.KindSale, saleBy("S1", map[string]string{"loyalty": "LC-7"}, line("A", 1))),
			a.ev(1200, events.KindIdentify, identify(map[string]string{"loyalty": "LC-8"})),
			a.ev(1300, events.KindSale, sale("S1", line("A", 1))),
		))
		if err != nil {
			t.Fatal(err)
		}
		eid, err := s.EraseCustomer(ctx, find(t, s, "loyalty:LC-7"), "hq-dpo", "")
		if err != nil {
			t.Fatal(err)
		}
		st, err := s.ErasureStatus(ctx, eid)
		if err != nil || st.Stream != (ErasureStream{State: "pending", Pending: 2}) {
			t.Fatalf("stream state after erasure: %+v %v", st.Stream, err)
		}
		now := time.UnixMilli(10_000)
		got, err := s.ClaimStreamDeletions(ctx, "hub-a", now, time.Minute, 10)
		if err != nil || !slices.Equal(seqsOf(got), []uint64{10, 11}) {
			t.Fatalf("claimed %v %v, want the identify and the sale naming the customer", seqsOf(got), err)
		}
		if other, _ := s.ClaimStreamDeletions(ctx, "hub-b", now.Add(time.Second), time.Minute, 10); len(other) != 0 {
			t.Fatalf("another replica claimed leased deletions: %v", other)
		}
		// hub-a died: after the lease, hub-b has them.
		got, err = s.ClaimStreamDeletions(ctx, "hub-b", now.Add(2*time.Minute), time.Minute, 10)
		if err != nil || len(got) != 2 {
			t.Fatalf("claim after the lease: %v %v", got, err)
		}
		if err := s.FinishStreamDeletions(ctx, got, now); err != nil {
			t.Fatal(err)
		}
		st, _ = s.ErasureStatus(ctx, eid)
		if st.Stream != (ErasureStream{State: "done", Deleted: 2}) {
			t.Fatalf("stream state when done: %+v", st.Stream)
		}
		b, _ := json.Marshal(st)
		var doc map[string]any
		_ = json.Unmarshal(b, &doc)
		if _, ok := doc["stream"].(map[string]any)["deleted"]; !ok {
			t.Fatalf("status JSON: %s", b)
		}
		// An offline store's late event naming the erased e-mail: scrubbed
		// on apply, and its stream copy queued under the erasure.
		late := newDevice("S2", "kiosk-1", 1)
		if _, err := s.ApplyBatch(ctx, streamItems([]uint64{40, 41},
			late.ev(1400, events.KindIdentify, identify(map[string]string{"email": "Eve@shop.test", "account": "W-9"})),
			late.ev(1500, events.KindIdentify, identify(map[string]string{"loyalty": "LC-9"})),
		)); err != nil {
			t.Fatal(err)
		}
		got, _ = s.ClaimStreamDeletions(ctx, "hub-a", now.Add(3*time.Minute), time.Minute, 10)
		if !slices.Equal(seqsOf(got), []uint64{40}) || got[0].Erasure != eid {
			t.Fatalf("late event's deletion: %+v", got)
		}
		if err := s.FinishStreamDeletions(ctx, got, now); err != nil {
			t.Fatal(err)
		}
		// A shopper's own erase request at a kiosk: its message, and the
		// messages naming them, go.
		k := newDevice("S1", "kiosk-1", 1)
		if _, err := s.ApplyBatch(ctx, streamItems([]uint64{50, 51},
			k.ev(1600, events.KindIdentify, identify(map[string]string{"loyalty": "LC-5"})),
			k.ev(1700, events.KindErase, events.Erase{Customer: events.CustomerRef{"loyalty": "LC-5"}}),
		)); err != nil {
			t.Fatal(err)
		}
		got, _ = s.ClaimStreamDeletions(ctx, "hub-a", now.Add(4*time.Minute), time.Minute, 10)
		if !slices.Equal(seqsOf(got), []uint64{50, 51}) {
			t.Fatalf("erase request's deletions: %+v", got)
		}
	})
}
