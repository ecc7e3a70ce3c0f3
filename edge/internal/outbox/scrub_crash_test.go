package outbox

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/omnisync/omnisync/shared/events"
)

// scrubHelperEnv carries the outbox path to the child of
// TestScrub_SIGKILL.
const scrubHelperEnv = "OMNI_OUTBOX_SCRUB_HELPER"

// TestHelperScrubber is not a test: it is the child process of
// TestScrub_SIGKILL. It scrubs customer LC-1 from the outbox and prints
// "S <n>" once Scrub returned.
func TestHelperScrubber(t *testing.T) {
	path := os.Getenv(scrubHelperEnv)
	if path == "" {
		return
	}
	time.AfterFunc(30*time.Second, func() { os.Exit(3) })
	o, err := Open(Options{Path: path, Store: testStore, Device: testDevice, MinFreeDisk: -1})
	if err != nil {
		fmt.Println("ERR open:", err)
		os.Exit(2)
	}
	os.Stdout.WriteString("O\n")
	n, err := o.Scrub(dropCustomer("loyalty:LC-1"))
	if err != nil {
		fmt.Println("ERR scrub:", err)
		os.Exit(2)
	}
	os.Stdout.WriteString(fmt.Sprintf("S %d\n", n))
	select {}
}

// Ensure that a scrub killed by SIGKILL at any moment leaves the outbox
// either untouched or wholly scrubbed, never in between: every event
// decodes with its id and seq, the pending byte count matches the
// records, and scrubbing again on the next start finishes the job.
func TestScrub_SIGKILL(t *testing.T) {
	t.Parallel() // mostly waits on processes and timers
	const events_ = 20000
	seed := filepath.Join(t.TempDir(), "seed.db")
	o, err := Open(Options{Path: seed, Store: testStore, Device: testDevice, MinFreeDisk: -1})
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for i := 0; i < events_; i += 500 {
		var drafts []events.Draft
		for j := range 500 {
			who := "loyalty:LC-1"
			if (i+j)%2 == 1 {
				who = "loyalty:LC-2"
			}
			drafts = append(drafts, mustParse(t, fmt.Sprintf(`{"kind":"sale","data":{"lines":[{"sku":"SKU-%d","qty":1}],"customer":%q}}`, i+j, who))[0])
		}
		envs, err := o.Append(context.Background(), drafts)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range envs {
			ids = append(ids, e.ID)
		}
	}
	o.Close()
	seedBytes, err := os.ReadFile(seed)
	if err != nil {
		t.Fatal(err)
	}
	// How long a scrub takes here: kills land anywhere in twice that.
	probe := filepath.Join(t.TempDir(), "probe.db")
	if err := os.WriteFile(probe, seedBytes, 0o600); err != nil {
		t.Fatal(err)
	}
	po := mustOpen(t, Options{Path: probe, Store: testStore, Device: testDevice, MinFreeDisk: -1})
	start := time.Now()
	if _, err := po.Scrub(dropCustomer("loyalty:LC-1")); err != nil {
		t.Fatal(err)
	}
	took := time.Since(start)
	po.Close()
	t.Logf("scrubbing %d events (half of them) took %v", events_, took)
	outcomes := map[string]int{}
	for round := range 6 {
		path := filepath.Join(t.TempDir(), fmt.Sprintf("round%d.db", round))
		if err := os.WriteFile(path, seedBytes, 0o600); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(os.Args[0], "-test.run=^TestHelperScrubber$")
		cmd.Env = append(os.Environ(), scrubHelperEnv+"="+path)
		var out bytes.Buffer
		cmd.Stdout = &out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(10 * time.Second)
		for !bytes.Contains(out.Bytes(), []byte("O\n")) && time.Now().Before(deadline) {
			time.Sleep(time.Millisecond)
		}
		time.Sleep(time.Duration(rand.Int64N(int64(2*took) + 1)))
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if bytes.Contains(out.Bytes(), []byte("ERR")) {
			t.Fatalf("child: %s", out.Bytes())
		}
		finished := bytes.Contains(out.Bytes(), []byte("S "))

		o := mustOpen(t, Options{Path: path, Store: testStore, Device: testDevice, MinFreeDisk: -1})
		recs := readAll(t, o)
		if len(recs) != events_ {
			t.Fatalf("round %d: %d records", round, len(recs))
		}
		var named, total int64
		for i, r := range recs {
			total += int64(len(r.Data))
			env, err := events.Decode(r.Data)
			if err != nil || env.ID != ids[i] || r.Seq != uint64(i+1) {
				t.Fatalf("round %d: seq %d: %v", round, r.Seq, err)
			}
			if bytes.Contains(env.Data, []byte("LC-1")) {
				named++
			}
		}
		if st := o.Stats(); st.Bytes != total {
			t.Fatalf("round %d: pending bytes %d, records hold %d", round, st.Bytes, total)
		}
		switch {
		case named == 0:
			outcomes["scrubbed"]++
		case named == events_/2 && !finished:
			outcomes["untouched"]++
		default:
			t.Fatalf("round %d: %d events still name LC-1 (child finished: %v)", round, named, finished)
		}
		n, err := o.Scrub(dropCustomer("loyalty:LC-1"))
		if err != nil || int64(n) != named {
			t.Fatalf("round %d: scrubbing again: %d, %v; want %d", round, n, err, named)
		}
		o.Close()
	}
	t.Logf("outcomes after SIGKILL: %v", outcomes)
}
