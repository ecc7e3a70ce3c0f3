package outbox

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/omnisync/omnisync/shared/events"
)

// Ensure that Ack removes exactly the events <= upTo, is idempotent,
// refuses other epochs, clamps beyond the last seq, and keeps Stats
// consistent.
func TestAck(t *testing.T) {
	clock := &fakeClock{t: time.Date(2025, 11, 28, 10, 0, 0, 0, time.UTC)}
	opts := testOptions(t)
	opts.Now = clock.now
	o := mustOpen(t, opts)
	var envs []events.Envelope
	for range 10 {
		envs = append(envs, mustAppend(t, o, sale(t, "SKU-1", 1))...)
		clock.t = clock.t.Add(time.Second)
	}
	size := func(from, to int) (n int64) { // bytes of seqs from..to
		for _, e := range envs[from-1 : to] {
			n += int64(len(encoded(t, e)))
		}
		return n
	}
	if st := o.Stats(); st.Depth != 10 || st.Bytes != size(1, 10) || !st.OldestUnacked.Equal(envs[0].HLC.Time()) {
		t.Fatalf("before any ack: %+v", st)
	}

	for _, tc := range []struct {
		name        string
		epoch, upTo uint64
		wantRemoved int
		wantErr     error
		wantAcked   uint64
	}{
		{"prefix", o.Epoch(), 4, 4, nil, 4},
		{"same again", o.Epoch(), 4, 0, nil, 4},
		{"older", o.Epoch(), 2, 0, nil, 4},
		{"another epoch", o.Epoch() + 1, 8, 0, ErrEpochMismatch, 4},
		{"one more", o.Epoch(), 5, 1, nil, 5},
		{"beyond the last seq", o.Epoch(), 1000, 5, nil, 10},
		{"everything again", o.Epoch(), 1000, 0, nil, 10},
	} {
		t.Run(tc.name, func(t *testing.T) {
			removed, err := o.Ack(tc.epoch, tc.upTo)
			if removed != tc.wantRemoved || !errors.Is(err, tc.wantErr) {
				t.Fatalf("Ack(%d, %d) = %d, %v; want %d, %v", tc.epoch, tc.upTo, removed, err, tc.wantRemoved, tc.wantErr)
			}
			st := o.Stats()
			pending := int64(10 - tc.wantAcked)
			if st.AckedSeq != tc.wantAcked || st.LastSeq != 10 || st.Depth != pending {
				t.Fatalf("stats %+v", st)
			}
			recs := readAll(t, o)
			if int64(len(recs)) != pending || (pending > 0 && recs[0].Seq != tc.wantAcked+1) {
				t.Fatalf("%d records left, want seqs %d..10", len(recs), tc.wantAcked+1)
			}
			if pending == 0 {
				if st.Bytes != 0 || !st.OldestUnacked.IsZero() {
					t.Fatalf("empty outbox stats %+v", st)
				}
				return
			}
			if st.Bytes != size(int(tc.wantAcked)+1, 10) {
				t.Fatalf("bytes %d, want %d", st.Bytes, size(int(tc.wantAcked)+1, 10))
			}
			if want := envs[tc.wantAcked].HLC.Time(); !st.OldestUnacked.Equal(want) {
				t.Fatalf("oldest unacked %v, want %v", st.OldestUnacked, want)
			}
		})
	}

	// Appending to the emptied outbox sets the oldest again.
	e := mustAppend(t, o, sale(t, "SKU-1", 1))[0]
	if st := o.Stats(); st.Depth != 1 || !st.OldestUnacked.Equal(e.HLC.Time()) || e.Origin.Seq != 11 {
		t.Fatalf("after refill: %+v, seq %d", st, e.Origin.Seq)
	}
}

// Ensure that a large Ack is split into chunks and leaves consistent state,
// while appends go on concurrently.
func TestAck_Large(t *testing.T) {
	opts := testOptions(t)
	o := mustOpen(t, opts)
	const n = 3*ackChunk + 123
	drafts := make([]events.Draft, 1000)
	for i := range drafts {
		drafts[i] = sale(t, "SKU-1", 1)
	}
	for o.Stats().LastSeq < n {
		mustAppend(t, o, drafts...)
	}
	total := o.Stats().LastSeq

	stop := make(chan struct{})
	appended := make(chan int)
	go func() {
		k := 0
		for {
			select {
			case <-stop:
				appended <- k
				return
			default:
			}
			if _, err := o.Append(context.Background(), drafts[:1]); err != nil {
				t.Errorf("Append during Ack: %v", err)
			}
			k++
		}
	}()
	removed, err := o.Ack(o.Epoch(), n)
	close(stop)
	extra := <-appended
	if err != nil || removed != n {
		t.Fatalf("Ack = %d, %v; want %d", removed, err, n)
	}
	st := o.Stats()
	if want := int64(total) - n + int64(extra); st.AckedSeq != n || st.Depth != want {
		t.Fatalf("stats %+v, want acked %d depth %d", st, n, want)
	}
	o.Close()
	o = mustOpen(t, opts)
	if st2 := o.Stats(); st2.AckedSeq != n || st2.Depth != st.Depth || st2.Bytes != st.Bytes {
		t.Fatalf("after reopen %+v, before %+v", st2, st)
	}
}

// Ensure that Read pages by record count and by bytes, never returns an
// empty page while records exist, and returns copies.
func TestRead_Pagination(t *testing.T) {
	o := mustOpen(t, testOptions(t))
	for range 10 {
		mustAppend(t, o, sale(t, "SKU-1", 1))
	}
	one := len(readAll(t, o)[0].Data) // every record has this size (same body, same digit counts)

	for _, tc := range []struct {
		name          string
		after         uint64
		max, maxBytes int
		want          []uint64
	}{
		{"all", 0, 0, 0, seqs(1, 10)},
		{"by count", 0, 3, 0, seqs(1, 3)},
		{"by count after", 3, 3, 0, seqs(4, 6)},
		{"by bytes", 0, 0, 4*one + one/2, seqs(1, 4)},
		{"by bytes exact", 2, 0, 2 * one, seqs(3, 4)},
		{"count before bytes", 0, 2, 5 * one, seqs(1, 2)},
		{"one record larger than maxBytes", 5, 10, 1, seqs(6, 6)},
		{"tail", 8, 100, 0, seqs(9, 10)},
		{"past the end", 10, 100, 0, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			recs, err := o.Read(tc.after, tc.max, tc.maxBytes)
			if err != nil {
				t.Fatal(err)
			}
			var got []uint64
			for _, r := range recs {
				got = append(got, r.Seq)
				if e, err := events.Decode(r.Data); err != nil || e.Origin.Seq != r.Seq {
					t.Fatalf("seq %d: %v (origin seq %d)", r.Seq, err, e.Origin.Seq)
				}
			}
			if !equalSeqs(got, tc.want) {
				t.Fatalf("seqs %v, want %v", got, tc.want)
			}
		})
	}

	// Records stay valid after the events are acked and the pages reused.
	recs, _ := o.Read(0, 0, 0)
	keep := string(recs[0].Data)
	o.Ack(o.Epoch(), 10)
	for range 50 {
		mustAppend(t, o, scan(t, "9999999999999"))
	}
	if string(recs[0].Data) != keep {
		t.Fatal("a record changed after its event was acked")
	}
}

func seqs(from, to uint64) []uint64 {
	var s []uint64
	for i := from; i <= to; i++ {
		s = append(s, i)
	}
	return s
}

func equalSeqs(a, b []uint64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
