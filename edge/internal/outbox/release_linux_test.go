package outbox

import (
	"bufio"
	"os"
	"strconv"
	"strings"
	"testing"
)

// mappedRSS is how much of the file at path this process has resident
// through its mappings, in bytes (the Rss of its VMAs in /proc/self/smaps).
func mappedRSS(t testing.TB, path string) int64 {
	t.Helper()
	f, err := os.Open("/proc/self/smaps")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var total int64
	in := false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) == 0 {
			continue
		}
		if !strings.HasSuffix(fields[0], ":") {
			// A VMA header: range perms offset dev inode [path].
			in = len(fields) >= 6 && fields[5] == path
			continue
		}
		if in && fields[0] == "Rss:" && len(fields) >= 2 {
			kb, _ := strconv.ParseInt(fields[1], 10, 64)
			total += kb << 10
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return total
}

// Ensure that a backlog, filling up or being drained, does not pile up in
// the agent's resident memory: the pages commits faulted in, the pages Open
// walked, the pages the reader has read past and the pages Ack freed leave
// the process's resident set.
func TestMappedPagesReleased(t *testing.T) {
	opts := testOptions(t)
	opts.CompactAbove = -1 // keep the file: the test is about its pages
	o := mustOpen(t, opts)
	last := fillAndDrain(t, o, 30000)
	size := fileSize(opts.Path)
	filled := mappedRSS(t, opts.Path)
	t.Logf("file %d KiB, resident after the appends %d KiB", size>>10, filled>>10)
	if filled > releaseEvery {
		t.Errorf("%d KiB of the %d KiB file resident after the appends", filled>>10, size>>10)
	}
	if err := o.Close(); err != nil {
		t.Fatal(err)
	}

	o = mustOpen(t, opts)
	opened := mappedRSS(t, opts.Path)
	t.Logf("resident after Open %d KiB", opened>>10)
	if opened > size/8 {
		t.Errorf("%d KiB of the %d KiB file resident after Open; its freelist walk should have been released", opened>>10, size>>10)
	}
	var peak int64
	// Read ahead of the acks as the uplink does while the hub lags: the
	// hub's watermark trails what was read by a few reads.
	var sent []uint64
	var after uint64
	for after < last {
		recs, err := o.Read(after, 1024, 4<<20)
		if err != nil {
			t.Fatal(err)
		}
		after = recs[len(recs)-1].Seq
		sent = append(sent, after)
		if len(sent) > 4 {
			if _, err := o.Ack(o.Epoch(), sent[len(sent)-5]); err != nil {
				t.Fatal(err)
			}
		}
		peak = max(peak, mappedRSS(t, opts.Path))
	}
	if _, err := o.Ack(o.Epoch(), last); err != nil {
		t.Fatal(err)
	}
	end := mappedRSS(t, opts.Path)
	t.Logf("peak resident while draining %d KiB, after %d KiB", peak>>10, end>>10)
	// A release every releaseEvery bytes read and after every Ack chunk:
	// what stays resident is about one release's worth, whatever the
	// backlog.
	if peak > releaseEvery+2<<20 || peak > size/4 {
		t.Errorf("up to %d KiB of the %d KiB file resident while draining", peak>>10, size>>10)
	}
	if end > size/8 {
		t.Errorf("%d KiB of the %d KiB file resident after the drain", end>>10, size>>10)
	}
}
