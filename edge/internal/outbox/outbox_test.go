package outbox

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/omnisync/omnisync/shared/events"
)

// Ensure that seqs are contiguous and strictly increasing under many
// concurrent appenders, and that every returned envelope is in the file
// exactly once, byte for byte as json.Marshal writes it.
func TestAppend_ConcurrentSeqContiguous(t *testing.T) {
	o := mustOpen(t, testOptions(t))
	const callers, perCaller = 64, 40
	var mu sync.Mutex
	var got []events.Envelope
	var wg sync.WaitGroup
	for c := range callers {
		wg.Go(func() {
			for i := range perCaller {
				drafts := []events.Draft{sale(t, "SKU-1", 1)}
				if (c+i)%3 == 0 { // some multi-event calls
					drafts = append(drafts, scan(t, "0123"), deviceStatus(t, "open"))
				}
				envs, err := o.Append(context.Background(), drafts)
				if err != nil {
					t.Errorf("Append: %v", err)
					return
				}
				for j := 1; j < len(envs); j++ {
					if envs[j].Origin.Seq != envs[j-1].Origin.Seq+1 {
						t.Errorf("one call's seqs not contiguous: %d then %d", envs[j-1].Origin.Seq, envs[j].Origin.Seq)
					}
				}
				mu.Lock()
				got = append(got, envs...)
				mu.Unlock()
			}
		})
	}
	wg.Wait()

	recs := readAll(t, o)
	if len(recs) != len(got) {
		t.Fatalf("file holds %d events, appenders got %d", len(recs), len(got))
	}
	bySeq := make(map[uint64][]byte, len(recs))
	var prev events.Envelope
	for i, r := range recs {
		if r.Seq != uint64(i+1) {
			t.Fatalf("record %d has seq %d, want %d", i, r.Seq, i+1)
		}
		e, err := events.Decode(r.Data)
		if err != nil {
			t.Fatalf("seq %d: %v", r.Seq, err)
		}
		if e.Origin != (events.Origin{Store: testStore, Device: testDevice, Epoch: o.Epoch(), Seq: r.Seq}) {
			t.Fatalf("seq %d: origin %+v", r.Seq, e.Origin)
		}
		if i > 0 && !prev.HLC.Before(e.HLC) {
			t.Fatalf("seq %d: HLC %s not after %s", r.Seq, e.HLC, prev.HLC)
		}
		prev = e
		bySeq[r.Seq] = r.Data
	}
	ids := make(map[string]bool, len(got))
	for _, env := range got {
		if ids[env.ID] {
			t.Fatalf("id %s returned twice", env.ID)
		}
		ids[env.ID] = true
		data, ok := bySeq[env.Origin.Seq]
		if !ok {
			t.Fatalf("seq %d returned but not in the file", env.Origin.Seq)
		}
		delete(bySeq, env.Origin.Seq)
		if want := encoded(t, env); !bytes.Equal(data, want) {
			t.Fatalf("seq %d stored\n%s\nwant\n%s", env.Origin.Seq, data, want)
		}
	}
	st := o.Stats()
	if st.LastSeq != uint64(len(got)) || st.Depth != int64(len(got)) || st.Appends != uint64(len(got)) {
		t.Fatalf("stats %+v, want %d events", st, len(got))
	}
	if st.Batches == 0 || st.Batches > st.Appends {
		t.Fatalf("batches %d for %d appends", st.Batches, st.Appends)
	}
	t.Logf("%d events in %d transactions", st.Appends, st.Batches)
}

// Ensure that the hand-built encoding equals json.Marshal(events.Envelope)
// for bodies that exercise JSON's escaping and compaction rules.
func TestAppend_EncodingMatchesJSONMarshal(t *testing.T) {
	o := mustOpen(t, testOptions(t))
	bodies := []string{
		`{"lines":[{"sku":"SKU-1","qty":2}],"location":"S1"}`,
		"{ \"lines\" : [ {\"sku\":\"A&B<C>\", \"qty\": 1 } ],\n \"location\":\"S1\", \"note\":\"caf\u00e9 \u2028 \\u00e9\" }",
		`{"lines":[{"sku":"X","qty":1}],"location":"S1","nested":{"a":[1,2.50,-3e2,true,null]}}`,
		`null`,
		`"just a string"`,
	}
	for _, b := range bodies {
		envs := mustAppend(t, o, events.Draft{Kind: events.KindSale, Data: []byte(b)})
		recs, err := o.Read(envs[0].Origin.Seq-1, 1, 0)
		if err != nil || len(recs) != 1 {
			t.Fatalf("Read: %v, %d records", err, len(recs))
		}
		if want := encoded(t, envs[0]); !bytes.Equal(recs[0].Data, want) {
			t.Errorf("body %q stored\n%s\nwant\n%s", b, recs[0].Data, want)
		}
	}
	// A nil body is JSON null, as json.Marshal writes a nil RawMessage.
	envs := mustAppend(t, o, events.Draft{Kind: events.KindScan})
	recs, _ := o.Read(envs[0].Origin.Seq-1, 1, 0)
	if want := encoded(t, envs[0]); !bytes.Equal(recs[0].Data, want) {
		t.Errorf("nil body stored %s, want %s", recs[0].Data, want)
	}
}

// Ensure that reopening keeps epoch, seqs and pending counters, and that a
// new file mints a new epoch and starts again at seq 1.
func TestOpen_ReopenPreservesState(t *testing.T) {
	opts := testOptions(t)
	o, err := Open(opts)
	if err != nil {
		t.Fatal(err)
	}
	for range 10 {
		mustAppend(t, o, sale(t, "SKU-1", 1))
	}
	if _, err := o.Ack(o.Epoch(), 3); err != nil {
		t.Fatal(err)
	}
	before := o.Stats()
	if err := o.Close(); err != nil {
		t.Fatal(err)
	}

	o = mustOpen(t, opts)
	after := o.Stats()
	before.Appends, before.Batches = 0, 0 // per-process counters
	if after != before {
		t.Fatalf("after reopen %+v\nbefore %+v", after, before)
	}
	if envs := mustAppend(t, o, sale(t, "SKU-1", 1)); envs[0].Origin.Seq != 11 || envs[0].Origin.Epoch != before.Epoch {
		t.Fatalf("first append after reopen: origin %+v", envs[0].Origin)
	}
	o.Close()

	if err := os.Remove(opts.Path); err != nil {
		t.Fatal(err)
	}
	o = mustOpen(t, opts)
	if o.Epoch() == before.Epoch {
		t.Fatalf("new file kept epoch %d", o.Epoch())
	}
	if st := o.Stats(); st.LastSeq != 0 || st.Depth != 0 || !st.OldestUnacked.IsZero() {
		t.Fatalf("new file stats %+v", st)
	}
	if envs := mustAppend(t, o, sale(t, "SKU-1", 1)); envs[0].Origin.Seq != 1 {
		t.Fatalf("new file starts at seq %d", envs[0].Origin.Seq)
	}
}

// Ensure that stamps never go backwards across a restart even when the
// wall clock moved back by an hour meanwhile.
func TestAppend_HLCMonotonicAcrossReopen(t *testing.T) {
	clock := &fakeClock{t: time.Date(2025, 11, 28, 10, 0, 0, 0, time.UTC)}
	opts := testOptions(t)
	opts.Now = clock.now
	o, err := Open(opts)
	if err != nil {
		t.Fatal(err)
	}
	var last events.Envelope
	for range 5 {
		last = mustAppend(t, o, sale(t, "SKU-1", 1))[0]
	}
	o.Close()

	clock.t = clock.t.Add(-time.Hour)
	o = mustOpen(t, opts)
	for range 5 {
		e := mustAppend(t, o, sale(t, "SKU-1", 1))[0]
		if !last.HLC.Before(e.HLC) {
			t.Fatalf("stamp %s after restart is not after %s", e.HLC, last.HLC)
		}
		last = e
	}
	if skew := o.Clock().Skew(); skew < 59*time.Minute {
		t.Fatalf("clock reports skew %s, want about an hour", skew)
	}
}

// Ensure that a file is never re-labelled with another store or device.
func TestOpen_WrongIdentity(t *testing.T) {
	opts := testOptions(t)
	o, err := Open(opts)
	if err != nil {
		t.Fatal(err)
	}
	o.Close()
	for _, tc := range []struct{ name, store, device string }{
		{"other store", "S2", testDevice},
		{"other device", testStore, "POS-2"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := opts
			o.Store, o.Device = tc.store, tc.device
			if _, err := Open(o); !errors.Is(err, ErrWrongIdentity) {
				t.Fatalf("Open as %s/%s: %v, want ErrWrongIdentity", tc.store, tc.device, err)
			}
		})
	}
}

// Ensure that a second Open of a held file fails with ErrLocked.
func TestOpen_Locked(t *testing.T) {
	opts := testOptions(t)
	mustOpen(t, opts)
	opts.lockTimeout = 100 * time.Millisecond
	_, err := Open(opts)
	if !errors.Is(err, ErrLocked) {
		t.Fatalf("second Open: %v, want ErrLocked", err)
	}
	t.Log(err)
}

// Ensure that Open refuses unusable options.
func TestOpen_InvalidOptions(t *testing.T) {
	base := testOptions(t)
	for _, tc := range []struct {
		name string
		edit func(*Options)
	}{
		{"no path", func(o *Options) { o.Path = "" }},
		{"no store", func(o *Options) { o.Store = "" }},
		{"device with a dot", func(o *Options) { o.Device = "pos.1" }},
		{"negative budget", func(o *Options) { o.BudgetBytes = -1 }},
		{"negative batch", func(o *Options) { o.MaxBatch = -1 }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			opts := base
			tc.edit(&opts)
			if _, err := Open(opts); !errors.Is(err, ErrInvalidOption) {
				t.Fatalf("Open: %v, want ErrInvalidOption", err)
			}
		})
	}
}

// Ensure that a file whose meta is missing or inconsistent is refused.
func TestOpen_Corrupt(t *testing.T) {
	for _, tc := range []struct {
		name  string
		spoil func(t *testing.T, path string)
	}{
		{"not a bbolt file", func(t *testing.T, path string) {
			if err := os.WriteFile(path, bytes.Repeat([]byte("x"), 8192), 0o600); err != nil {
				t.Fatal(err)
			}
		}},
		{"events without meta", func(t *testing.T, path string) {
			boltUpdate(t, path, func(tx *bolt.Tx) error { return tx.DeleteBucket([]byte(bucketMeta)) })
		}},
		{"meta key missing", func(t *testing.T, path string) {
			boltUpdate(t, path, func(tx *bolt.Tx) error { return tx.Bucket([]byte(bucketMeta)).Delete([]byte(keyNextSeq)) })
		}},
		{"pending event missing", func(t *testing.T, path string) {
			boltUpdate(t, path, func(tx *bolt.Tx) error {
				return tx.Bucket([]byte(bucketEvents)).Delete(seqKey(nil, 3))
			})
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			opts := testOptions(t)
			o, err := Open(opts)
			if err != nil {
				t.Fatal(err)
			}
			for range 3 {
				mustAppend(t, o, sale(t, "SKU-1", 1))
			}
			o.Close()
			tc.spoil(t, opts.Path)
			if _, err := Open(opts); !errors.Is(err, ErrCorrupt) {
				t.Fatalf("Open: %v, want ErrCorrupt", err)
			}
		})
	}
}

func boltUpdate(t *testing.T, path string, fn func(*bolt.Tx) error) {
	t.Helper()
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.Update(fn); err != nil {
		t.Fatal(err)
	}
}

// Ensure that the file and its directories are created private.
func TestOpen_CreatesFile0600(t *testing.T) {
	opts := testOptions(t)
	mustOpen(t, opts)
	fi, err := os.Stat(opts.Path)
	if err != nil {
		t.Fatal(err)
	}
	if perm := fi.Mode().Perm(); perm != 0o600 && os.PathSeparator == '/' {
		t.Fatalf("file mode %v, want 0600", perm)
	}
	if _, err := os.Stat(filepath.Dir(opts.Path)); err != nil {
		t.Fatal(err)
	}
}

// Ensure that an invalid draft fails its call and writes nothing.
func TestAppend_RejectsWithoutWriting(t *testing.T) {
	o := mustOpen(t, testOptions(t))
	big := `{"lines":[{"sku":"SKU-1","qty":1}],"location":"S1","note":"` + string(bytes.Repeat([]byte("x"), events.MaxEventBytes)) + `"}`
	for _, tc := range []struct {
		name   string
		drafts []events.Draft
		want   error
	}{
		{"unknown kind", []events.Draft{sale(t, "SKU-1", 1), {Kind: "teleport", Data: []byte(`{}`)}}, events.ErrInvalid},
		{"invalid JSON", []events.Draft{sale(t, "SKU-1", 1), {Kind: events.KindSale, Data: []byte(`{"lines":`)}}, events.ErrInvalid},
		{"too large", []events.Draft{sale(t, "SKU-1", 1), {Kind: events.KindSale, Data: []byte(big)}}, ErrTooLarge},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := o.Stats()
			envs, err := o.Append(context.Background(), tc.drafts)
			if !errors.Is(err, tc.want) || envs != nil {
				t.Fatalf("Append: %v, %d envelopes; want %v", err, len(envs), tc.want)
			}
			if after := o.Stats(); after.LastSeq != before.LastSeq || after.Depth != before.Depth {
				t.Fatalf("stats moved from %+v to %+v", before, after)
			}
		})
	}
	if envs := mustAppend(t, o, sale(t, "SKU-1", 1)); envs[0].Origin.Seq != 1 {
		t.Fatalf("next append got seq %d, want 1", envs[0].Origin.Seq)
	}
}

// Ensure that a failed transaction fails its callers and gives their seqs
// back, so the next commit continues contiguously.
func TestAppend_FailedCommitRollsBack(t *testing.T) {
	opts := testOptions(t)
	o := mustOpen(t, opts)
	mustAppend(t, o, sale(t, "SKU-1", 1))
	boom := errors.New("disk on fire")
	o.testHookCommit = func() error { return boom }
	if _, err := o.Append(context.Background(), []events.Draft{sale(t, "SKU-1", 1), sale(t, "SKU-2", 1)}); !errors.Is(err, boom) {
		t.Fatalf("Append with a failing commit: %v", err)
	}
	o.testHookCommit = nil
	before := o.Stats()
	if before.LastSeq != 1 || before.Depth != 1 {
		t.Fatalf("stats after failed commit %+v", before)
	}
	envs := mustAppend(t, o, sale(t, "SKU-3", 1))
	if envs[0].Origin.Seq != 2 {
		t.Fatalf("seq after failed commit %d, want 2", envs[0].Origin.Seq)
	}
	o.Close()
	o = mustOpen(t, opts)
	if recs := readAll(t, o); len(recs) != 2 || recs[1].Seq != 2 {
		t.Fatalf("after reopen: %d records", len(recs))
	}
}

// Ensure that a call whose context is already done writes nothing.
func TestAppend_ContextDone(t *testing.T) {
	o := mustOpen(t, testOptions(t))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := o.Append(ctx, []events.Draft{sale(t, "SKU-1", 1)}); !errors.Is(err, context.Canceled) {
		t.Fatalf("Append: %v, want context.Canceled", err)
	}
	if st := o.Stats(); st.LastSeq != 0 {
		t.Fatalf("canceled append wrote: %+v", st)
	}
	// A deadline racing the commit: either answer is allowed, but a nil
	// error must mean the events are there.
	for i := range 50 {
		ctx, cancel := context.WithTimeout(context.Background(), time.Duration(i*20)*time.Microsecond)
		envs, err := o.Append(ctx, []events.Draft{sale(t, "SKU-1", 1)})
		cancel()
		if err == nil {
			if recs, _ := o.Read(envs[0].Origin.Seq-1, 1, 0); len(recs) != 1 || recs[0].Seq != envs[0].Origin.Seq {
				t.Fatalf("acknowledged seq %d not in the file", envs[0].Origin.Seq)
			}
		} else if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Append: %v", err)
		}
	}
}

// Ensure that Close stops the committer, answers everyone, is idempotent,
// and that every method afterwards says ErrClosed.
func TestClose(t *testing.T) {
	o, err := Open(testOptions(t))
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	start := make(chan struct{})
	for range 32 {
		wg.Go(func() {
			<-start
			for {
				_, err := o.Append(context.Background(), []events.Draft{sale(t, "SKU-1", 1)})
				if errors.Is(err, ErrClosed) {
					return
				}
				if err != nil {
					t.Errorf("Append during Close: %v", err)
					return
				}
			}
		})
	}
	close(start)
	eventually(t, 5*time.Second, func() bool { return o.Stats().Appends > 100 }, "appends did not start")
	closed := make(chan error)
	go func() { closed <- o.Close() }()
	select {
	case err := <-closed:
		if err != nil {
			t.Fatalf("Close: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not return")
	}
	wg.Wait() // every appender got its answer
	select {
	case <-o.done:
	default:
		t.Fatal("committer still running after Close")
	}
	if err := o.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := o.Append(context.Background(), []events.Draft{sale(t, "SKU-1", 1)}); !errors.Is(err, ErrClosed) {
		t.Fatalf("Append after Close: %v", err)
	}
	if _, err := o.Read(0, 1, 0); !errors.Is(err, ErrClosed) {
		t.Fatalf("Read after Close: %v", err)
	}
	if _, err := o.Ack(o.Epoch(), 1); !errors.Is(err, ErrClosed) {
		t.Fatalf("Ack after Close: %v", err)
	}
}

// Ensure that Changed fires after a commit that added events.
func TestChanged(t *testing.T) {
	o := mustOpen(t, testOptions(t))
	select {
	case <-o.Changed():
		t.Fatal("Changed fired before any append")
	default:
	}
	mustAppend(t, o, sale(t, "SKU-1", 1))
	select {
	case <-o.Changed():
	case <-time.After(time.Second):
		t.Fatal("Changed did not fire after an append")
	}
}

// Ensure that no transaction carries more than MaxBatch events from
// separate calls, and that one call larger than MaxBatch still commits, alone
// and whole.
func TestAppend_MaxBatch(t *testing.T) {
	opts := testOptions(t)
	opts.MaxBatch = 10
	o := mustOpen(t, opts)
	var wg sync.WaitGroup
	for range 32 {
		wg.Go(func() {
			for range 20 {
				if _, err := o.Append(context.Background(), []events.Draft{sale(t, "SKU-1", 1)}); err != nil {
					t.Errorf("Append: %v", err)
				}
			}
		})
	}
	wg.Wait()
	st := o.Stats()
	if min := (st.Appends + 9) / 10; st.Batches < min {
		t.Fatalf("%d events in %d transactions: some carried more than 10", st.Appends, st.Batches)
	}
	big := make([]events.Draft, 25)
	for i := range big {
		big[i] = sale(t, "SKU-1", 1)
	}
	envs := mustAppend(t, o, big...)
	if len(envs) != 25 || envs[24].Origin.Seq != envs[0].Origin.Seq+24 {
		t.Fatalf("oversized call: %d envelopes", len(envs))
	}
	if after := o.Stats(); after.Batches != st.Batches+1 {
		t.Fatalf("oversized call took %d transactions", after.Batches-st.Batches)
	}
}
