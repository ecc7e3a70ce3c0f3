package outbox

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/omnisync/omnisync/shared/events"
)

// Ensure that a retry with the same key gets the first answer and appends nothing.
func TestAppendOnce_Replay(t *testing.T) {
	o := mustOpen(t, testOptions(t))
	ctx := context.Background()
	drafts := []events.Draft{sale(t, "A", 1), sale(t, "B", 2)}
	first, replayed, err := o.AppendOnce(ctx, "pos-1/txn-42", drafts)
	if err != nil || replayed || len(first) != 2 {
		t.Fatalf("first: %v %v %d", err, replayed, len(first))
	}
	again, replayed, err := o.AppendOnce(ctx, "pos-1/txn-42", []events.Draft{sale(t, "A", 1), sale(t, "B", 2)})
	if err != nil || !replayed {
		t.Fatalf("retry: %v replayed=%v", err, replayed)
	}
	for i := range first {
		if again[i].ID != first[i].ID || again[i].Origin != first[i].Origin || again[i].HLC != first[i].HLC || again[i].HLC.IsZero() {
			t.Fatalf("retry answer %d: %+v, first %+v", i, again[i], first[i])
		}
	}
	if st := o.Stats(); st.LastSeq != 2 || st.Depth != 2 {
		t.Fatalf("retry appended: %+v", st)
	}
	// A different request under the same key is refused.
	if _, _, err := o.AppendOnce(ctx, "pos-1/txn-42", []events.Draft{sale(t, "A", 3)}); !errors.Is(err, ErrKeyReused) {
		t.Fatalf("reused key: %v", err)
	}
	// Another key appends.
	if _, replayed, err := o.AppendOnce(ctx, "pos-1/txn-43", drafts); err != nil || replayed {
		t.Fatalf("new key: %v %v", err, replayed)
	}
	if st := o.Stats(); st.LastSeq != 4 {
		t.Fatalf("LastSeq %d", st.LastSeq)
	}
}

// Ensure that many concurrent retries of one key append exactly once, even
// when they land in the same transaction as the original.
func TestAppendOnce_Concurrent(t *testing.T) {
	o := mustOpen(t, testOptions(t))
	var wg sync.WaitGroup
	ids := make([]string, 64)
	for i := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			envs, _, err := o.AppendOnce(context.Background(), "same-key", []events.Draft{sale(t, "A", 1)})
			if err != nil {
				t.Error(err)
				return
			}
			ids[i] = envs[0].ID + "@" + envs[0].HLC.String()
		}()
	}
	wg.Wait()
	for _, id := range ids {
		if id != ids[0] {
			t.Fatalf("different answers: %q vs %q", id, ids[0])
		}
	}
	if st := o.Stats(); st.LastSeq != 1 {
		t.Fatalf("appended %d events for one key", st.LastSeq)
	}
}

// Ensure that keys survive a restart and expire after their TTL.
func TestAppendOnce_ReopenAndExpiry(t *testing.T) {
	clk := &fakeClock{t: time.Now()}
	opts := testOptions(t)
	opts.Now = clk.now
	opts.KeyTTL = time.Hour
	o, err := Open(opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	first, _, err := o.AppendOnce(ctx, "k1", []events.Draft{sale(t, "A", 1)})
	if err != nil {
		t.Fatal(err)
	}
	o.Close()

	o = mustOpen(t, opts)
	again, replayed, err := o.AppendOnce(ctx, "k1", []events.Draft{sale(t, "A", 1)})
	if err != nil || !replayed {
		t.Fatalf("after reopen: %v replayed=%v", err, replayed)
	}
	if again[0].ID != first[0].ID || again[0].HLC != first[0].HLC {
		t.Fatalf("after reopen: answer %+v, first %+v", again[0], first[0])
	}
	// Two hours later a commit prunes the key; the same key is new again.
	clk.t = clk.t.Add(2 * time.Hour)
	if _, _, err := o.AppendOnce(ctx, "k2", []events.Draft{sale(t, "B", 1)}); err != nil {
		t.Fatal(err)
	}
	if _, replayed, err := o.AppendOnce(ctx, "k1", []events.Draft{sale(t, "A", 1)}); err != nil || replayed {
		t.Fatalf("expired key: %v replayed=%v", err, replayed)
	}
	if st := o.Stats(); st.LastSeq != 3 {
		t.Fatalf("LastSeq %d, want 3", st.LastSeq)
	}
}

func TestAppendOnce_InvalidKey(t *testing.T) {
	o := mustOpen(t, testOptions(t))
	for _, k := range []string{"", "has space", strings.Repeat("k", MaxKeyLen+1), "tab\tkey"} {
		if _, _, err := o.AppendOnce(context.Background(), k, []events.Draft{sale(t, "A", 1)}); !errors.Is(err, ErrInvalidKey) {
			t.Errorf("key %q: %v", k, err)
		}
	}
	if o.Stats().LastSeq != 0 {
		t.Fatal("invalid key appended")
	}
}
