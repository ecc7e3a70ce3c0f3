package outbox

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/omnisync/omnisync/shared/events"
)

// crashHelperEnv carries the outbox path to the child process of
// TestCrash_SIGKILL.
const crashHelperEnv = "OMNI_OUTBOX_CRASH_HELPER"

// crashCompactEnv makes the child drain its outbox to empty again and again
// with compaction at every chance, so the kills land in compactions too.
const crashCompactEnv = "OMNI_OUTBOX_CRASH_COMPACT"

// TestHelperAppender is not a test: it is the child process of
// TestCrash_SIGKILL, re-executed from this test binary. It appends from
// several goroutines and prints "A seq..." only after Append returned nil,
// and "K seq" only after Ack returned, so every line is a promise the
// parent holds the file to after SIGKILL.
func TestHelperAppender(t *testing.T) {
	path := os.Getenv(crashHelperEnv)
	if path == "" {
		return // run directly: nothing to do
	}
	time.AfterFunc(30*time.Second, func() { os.Exit(3) }) // never outlive a lost parent
	opts := Options{Path: path, Store: testStore, Device: testDevice, MinFreeDisk: -1}
	compacting := os.Getenv(crashCompactEnv) != ""
	if compacting {
		opts.CompactAbove, opts.compactEvery = 64<<10, time.Millisecond
		opts.Logger = slog.New(slog.NewTextHandler(os.Stderr, nil)) // "outbox compacted", counted by the parent
	}
	o, err := Open(opts)
	if err != nil {
		fmt.Println("ERR open:", err)
		os.Exit(2)
	}
	var lull atomic.Bool // appenders wait while it is set
	var mu sync.Mutex
	say := func(line string) {
		mu.Lock()
		defer mu.Unlock()
		os.Stdout.WriteString(line) // unbuffered: a line printed is a line sent
	}
	for g := range 8 {
		go func() {
			for i := 0; ; i++ {
				drafts := []events.Draft{sale(t, "SKU-"+strconv.Itoa(g), 1+i%3)}
				for range i % 3 {
					drafts = append(drafts, scan(t, "0"+strconv.Itoa(i)))
				}
				envs, err := o.Append(context.Background(), drafts)
				if err != nil {
					say(fmt.Sprintf("ERR append: %v\n", err))
					os.Exit(2)
				}
				var b strings.Builder
				b.WriteString("A")
				for _, e := range envs {
					b.WriteString(" " + strconv.FormatUint(e.Origin.Seq, 10))
				}
				say(b.String() + "\n")
				for lull.Load() {
					time.Sleep(time.Millisecond)
				}
			}
		}()
	}
	// The uplink's part: ack everything but the most recent few hundred.
	// Compacting, let a backlog of 600 build up, then hold the appenders
	// off and ack it all, so the file drains to empty and is compacted.
	for {
		time.Sleep(2 * time.Millisecond)
		keep := uint64(300)
		if compacting {
			if st := o.Stats(); st.Depth < 600 {
				continue
			}
			lull.Store(true)
			keep = 0
		}
		if st := o.Stats(); st.LastSeq > st.AckedSeq+keep {
			upTo := st.LastSeq - keep
			if _, err := o.Ack(o.Epoch(), upTo); err != nil {
				say(fmt.Sprintf("ERR ack: %v\n", err))
				os.Exit(2)
			}
			say(fmt.Sprintf("K %d\n", upTo))
		}
		lull.Store(false)
	}
}

// Ensure that every Append that returned before a real SIGKILL is in the
// file after it, with a valid envelope, contiguous seqs and the same epoch,
// over several kill-and-reopen rounds on the same file. (SIGKILL tests the
// process dying mid-transaction; power loss additionally relies on bbolt's
// fdatasync, which no test here can pull the plug on.)
func TestCrash_SIGKILL(t *testing.T) {
	t.Parallel() // mostly waits on processes and timers
	t.Run("appending", func(t *testing.T) { crashRounds(t, "") })
	// Draining to empty, so the file is compacted over and over: a kill
	// during a compaction must lose nothing either.
	t.Run("compacting", func(t *testing.T) { crashRounds(t, crashCompactEnv+"=1") })
}

func crashRounds(t *testing.T, env string) {
	path := filepath.Join(t.TempDir(), "outbox.db")
	printed := map[uint64]bool{} // every seq ever promised
	var epoch, acked uint64
	const rounds = 5
	for round := range rounds {
		killAfter := 1 + rand.IntN(4000)
		lines, ack, compactions := runAndKill(t, path, killAfter, printed, env)
		acked = max(acked, ack)

		o, err := Open(Options{Path: path, Store: testStore, Device: testDevice, MinFreeDisk: -1})
		if err != nil {
			t.Fatalf("round %d: reopen after SIGKILL: %v", round, err)
		}
		st := o.Stats()
		if round == 0 {
			epoch = st.Epoch
		} else if st.Epoch != epoch {
			t.Fatalf("round %d: epoch changed from %d to %d", round, epoch, st.Epoch)
		}
		if st.AckedSeq < acked {
			t.Fatalf("round %d: acked seq %d, the child was told %d", round, st.AckedSeq, acked)
		}
		recs := readAll(t, o)
		if int64(len(recs)) != st.Depth {
			t.Fatalf("round %d: %d records, depth %d", round, len(recs), st.Depth)
		}
		var size int64
		var prev events.Envelope
		for i, r := range recs {
			if want := st.AckedSeq + 1 + uint64(i); r.Seq != want {
				t.Fatalf("round %d: record %d has seq %d, want %d (gap)", round, i, r.Seq, want)
			}
			e, err := events.Decode(r.Data)
			if err != nil {
				t.Fatalf("round %d: seq %d: %v", round, r.Seq, err)
			}
			if e.Origin != (events.Origin{Store: testStore, Device: testDevice, Epoch: epoch, Seq: r.Seq}) {
				t.Fatalf("round %d: seq %d has origin %+v", round, r.Seq, e.Origin)
			}
			if i > 0 && !prev.HLC.Before(e.HLC) {
				t.Fatalf("round %d: seq %d stamp %s not after %s", round, r.Seq, e.HLC, prev.HLC)
			}
			prev = e
			size += int64(len(r.Data))
		}
		if size != st.Bytes {
			t.Fatalf("round %d: records hold %d bytes, stats say %d", round, size, st.Bytes)
		}
		var missing []uint64
		for seq := range printed {
			if seq > st.LastSeq {
				missing = append(missing, seq)
			}
		}
		if len(missing) > 0 {
			t.Fatalf("round %d: %d promised seqs lost, e.g. %d (last seq %d)", round, len(missing), missing[0], st.LastSeq)
		}
		t.Logf("round %d: killed after %d lines and %d compactions; %d seqs promised so far, last seq %d, acked %d, pending %d",
			round, lines, compactions, len(printed), st.LastSeq, st.AckedSeq, st.Depth)
		if err := o.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

// runAndKill starts the helper child on path, SIGKILLs it after killAfter
// lines of output, and records what it promised. It returns the lines
// read, the highest ack the child reported and the compactions it logged.
func runAndKill(t *testing.T, path string, killAfter int, printed map[uint64]bool, env string) (lines int, acked uint64, compactions int) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperAppender$", "-test.count=1")
	cmd.Env = append(os.Environ(), crashHelperEnv+"="+path)
	if env != "" {
		cmd.Env = append(cmd.Env, env)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	watchdog := time.AfterFunc(20*time.Second, func() { cmd.Process.Kill() })
	defer watchdog.Stop()

	killed := false
	sc := bufio.NewScanner(stdout)
	for sc.Scan() { // after the kill, keep reading what was already written
		f := strings.Fields(sc.Text())
		if len(f) == 0 {
			continue
		}
		switch f[0] {
		case "A":
			for _, s := range f[1:] {
				seq, err := strconv.ParseUint(s, 10, 64)
				if err != nil {
					t.Fatalf("child printed %q", sc.Text())
				}
				printed[seq] = true
			}
		case "K":
			n, _ := strconv.ParseUint(f[1], 10, 64)
			acked = max(acked, n)
		case "ERR":
			cmd.Process.Kill()
			cmd.Wait()
			t.Fatalf("child: %s\n%s", sc.Text(), stderr.String())
		default:
			continue
		}
		lines++
		if !killed && lines >= killAfter {
			if err := cmd.Process.Kill(); err != nil {
				t.Fatal(err)
			}
			killed = true
		}
	}
	cmd.Wait()
	if !killed {
		t.Fatalf("child exited by itself after %d lines\n%s", lines, stderr.String())
	}
	return lines, acked, strings.Count(stderr.String(), "outbox compacted")
}
