package outbox

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/omnisync/omnisync/shared/events"
)

// fillAndDrain appends n sales with padded bodies in batches and returns
// the last seq.
func fillAndDrain(t *testing.T, o *Outbox, n int) uint64 {
	t.Helper()
	pad := strings.Repeat("x", 400)
	var last uint64
	for done := 0; done < n; done += 500 {
		batch := make([]string, 0, 500)
		for i := 0; i < 500 && done+i < n; i++ {
			batch = append(batch, fmt.Sprintf(`{"kind":"sale","data":{"lines":[{"sku":"SKU-%d","qty":1}],"note":%q}}`, done+i, pad))
		}
		envs := mustAppend(t, o, mustParse(t, "["+strings.Join(batch, ",")+"]")...)
		last = envs[len(envs)-1].Origin.Seq
	}
	return last
}

// Ensure that a drained outbox whose file grew large is rewritten small,
// and that everything it must remember survives: the epoch, the next seq,
// the HLC and the idempotency keys.
func TestCompact_AfterDrain(t *testing.T) {
	opts := testOptions(t)
	opts.CompactAbove = 4 << 20
	o := mustOpen(t, opts)
	ctx := context.Background()
	keyed, _, err := o.AppendOnce(ctx, "receipt-1", []events.Draft{sale(t, "A", 1)})
	if err != nil {
		t.Fatal(err)
	}
	last := fillAndDrain(t, o, 20000)
	big := fileSize(opts.Path)
	if big < 8<<20 {
		t.Fatalf("file only %d bytes after 20,000 events; the test needs a large file", big)
	}
	epoch := o.Epoch()
	hlcBefore := o.Clock().Last()
	if _, err := o.Ack(epoch, last); err != nil {
		t.Fatal(err)
	}
	small := fileSize(opts.Path)
	if small*4 > big {
		t.Fatalf("file %d bytes after draining, was %d: not compacted", small, big)
	}
	t.Logf("compacted %d -> %d bytes", big, small)

	again, replayed, err := o.AppendOnce(ctx, "receipt-1", []events.Draft{sale(t, "A", 1)})
	if err != nil || !replayed || again[0].ID != keyed[0].ID {
		t.Fatalf("idempotency key lost in compaction: replayed %v, err %v", replayed, err)
	}
	next := mustAppend(t, o, sale(t, "B", 1))[0]
	if next.Origin.Epoch != epoch || next.Origin.Seq != last+1 || next.HLC.Compare(hlcBefore) <= 0 {
		t.Fatalf("after compaction: epoch %d seq %d hlc %v; want epoch %d seq %d after %v",
			next.Origin.Epoch, next.Origin.Seq, next.HLC, epoch, last+1, hlcBefore)
	}
	if recs := readAll(t, o); len(recs) != 1 || recs[0].Seq != last+1 {
		t.Fatalf("pending after compaction: %d records", len(recs))
	}
	// And the compacted file opens as itself.
	if err := o.Close(); err != nil {
		t.Fatal(err)
	}
	o2 := mustOpen(t, opts)
	if st := o2.Stats(); st.Epoch != epoch || st.LastSeq != last+1 || st.Depth != 1 {
		t.Fatalf("reopened: %+v", st)
	}
}

// Ensure that a copy left by a compaction that crashed before its rename is
// discarded and the original file is used.
func TestCompact_LeftoverCopyIgnored(t *testing.T) {
	opts := testOptions(t)
	o := mustOpen(t, opts)
	env := mustAppend(t, o, sale(t, "A", 1))[0]
	o.Close()
	if err := os.WriteFile(opts.Path+compactSuffix, []byte("half a copy"), 0o600); err != nil {
		t.Fatal(err)
	}
	o = mustOpen(t, opts)
	if recs := readAll(t, o); len(recs) != 1 || recs[0].Seq != env.Origin.Seq {
		t.Fatalf("pending after reopen: %+v", recs)
	}
	if _, err := os.Stat(opts.Path + compactSuffix); !os.IsNotExist(err) {
		t.Fatalf("leftover copy still there: %v", err)
	}
}

// Ensure that appends racing a compaction are neither lost nor refused.
func TestCompact_ConcurrentAppends(t *testing.T) {
	opts := testOptions(t)
	opts.CompactAbove = 2 << 20
	o := mustOpen(t, opts)
	last := fillAndDrain(t, o, 8000)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var got []uint64
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 200; i++ {
				envs, err := o.Append(context.Background(), []events.Draft{sale(t, "C", 1)})
				if err != nil {
					t.Errorf("append during compaction: %v", err)
					return
				}
				mu.Lock()
				got = append(got, envs[0].Origin.Seq)
				mu.Unlock()
			}
		}()
	}
	if _, err := o.Ack(o.Epoch(), last); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	recs := readAll(t, o)
	if len(recs) != len(got) || len(got) != 800 {
		t.Fatalf("%d appended, %d pending", len(got), len(recs))
	}
	for i, r := range recs {
		if r.Seq != last+1+uint64(i) {
			t.Fatalf("pending record %d has seq %d, want %d", i, r.Seq, last+1+uint64(i))
		}
	}
}
