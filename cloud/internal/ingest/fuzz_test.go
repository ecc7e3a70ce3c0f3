package ingest

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/omnisync/omnisync/cloud/internal/store"
	"github.com/omnisync/omnisync/shared/events"
	"github.com/omnisync/omnisync/shared/subjects"
)

// messageSeeds are messages a store could publish, good and bad.
func messageSeeds() [][2]string {
	ev := func(store, device string, seq int, kind, data string) string {
		return fmt.Sprintf(`{"v":1,"id":"0190a6b4-5c3e-7c3e-8c3e-%012d","origin":{"store":%q,"device":%q,"epoch":1,"seq":%d},"hlc":{"wall":1700000000000},"kind":%q,"data":%s}`,
			seq, store, device, seq, kind, data)
	}
	subj := subjects.Event("S1", "pos-1")
	return [][2]string{
		{subj, ev("S1", "pos-1", 1, "sale", `{"location":"S1","lines":[{"sku":"A","qty":1}]}`)},
		{subj, ev("S2", "pos-1", 2, "count", `{"location":"S2","lines":[{"sku":"A","qty":0}]}`)},
		{subj, ev("S1", "pos-1", 3, "count", `{"location":"S2","lines":[{"sku":"A","qty":0}]}`)},
		{subj, ev("S1", "pos-1", 4, "release", `{"reservation_id":"R","location":"S1"}`)},
		{subj, ev("S1", "pos-1", 5, "review", `{"product_id":"P","rating":5,"session":"s"}`)},
		{subj, "[" + ev("S1", "pos-1", 6, "sale", `{"location":"S1","lines":[{"sku":"A","qty":1}]}`) + "," + ev("S1", "pos-1", 7, "nope", `{}`) + "]"},
		{"omni.ev.S1", `{}`},
		{subj, `[`},
	}
}

// readMessage runs the hub's per-message path over one message (decode,
// then the store's Prepare) and checks what holds for any input: nothing
// panics; an item is always the subject's own device's (a forged origin
// becomes a dead letter filed under the subject); a dead letter never
// names another store. It returns the items to apply.
func readMessage(t *testing.T, st *store.Store, subject string, data []byte) []store.Item {
	subStore, subDevice, _ := subjects.ParseEvent(subject)
	var items []store.Item
	check := func(it store.Item, dl *store.DeadLetter) {
		if dl != nil {
			if dl.Store != subStore || dl.Device != subDevice {
				t.Fatalf("dead letter of %q filed under %s/%s", subject, dl.Store, dl.Device)
			}
			return
		}
		if it.Reject == "" && (it.Env.Origin.Store != subStore || it.Env.Origin.Device != subDevice) {
			t.Fatalf("item from %s/%s accepted on %q", it.Env.Origin.Store, it.Env.Origin.Device, subject)
		}
		items = append(items, it)
	}
	if events.IsBatch(data) {
		its, dl := decodeBatch(subject, data)
		// Cutting the body unchecked decides as the checked split does.
		cits, cdl := decodeBatchChecked(subject, data)
		if (dl == nil) != (cdl == nil) || dl != nil && dl.Reason != cdl.Reason || !reflect.DeepEqual(its, cits) {
			t.Fatalf("%q on %q: decoded %d items, dead letter %+v; checked split %d items, %+v", data, subject, len(its), dl, len(cits), cdl)
		}
		if dl != nil {
			check(store.Item{}, dl)
		}
		for _, it := range its {
			check(it, nil)
		}
	} else {
		check(decode(subject, data))
	}
	if p := st.Prepare(items); len(items) > 0 && len(p.Items()) != len(items) {
		t.Fatalf("prepared %d of %d items", len(p.Items()), len(items))
	}
	return items
}

func fuzzStore(tb testing.TB, dir string) *store.Store {
	st, err := store.Open(context.Background(), "sqlite:"+filepath.Join(dir, "hub.db"), nil)
	if err != nil {
		tb.Fatal(err)
	}
	return st
}

// FuzzMessage fuzzes the hub's per-message path (readMessage) with what
// any store could publish on its subjects.
func FuzzMessage(f *testing.F) {
	for _, s := range messageSeeds() {
		f.Add(s[0], []byte(s[1]))
	}
	st := fuzzStore(f, f.TempDir())
	f.Cleanup(func() { st.Close() })
	f.Fuzz(func(t *testing.T, subject string, data []byte) { readMessage(t, st, subject, data) })
}

// Ensure that the seeds and every input the fuzzer kept (testdata/fuzz)
// also apply to a real store without an error: bad input is dead-lettered,
// never a failure, and every item is accounted for once. (Committing each
// input costs an fsync, too slow for the fuzzer itself.)
func TestMessageCorpusApplies(t *testing.T) {
	st := fuzzStore(t, t.TempDir())
	defer st.Close()
	inputs := messageSeeds()
	files, _ := filepath.Glob(filepath.Join("testdata", "fuzz", "FuzzMessage", "*"))
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		vals, err := parseCorpus(b)
		if err != nil || len(vals) != 2 {
			t.Fatalf("%s: %v", f, err)
		}
		inputs = append(inputs, [2]string{vals[0], vals[1]})
	}
	for _, in := range inputs {
		items := readMessage(t, st, in[0], []byte(in[1]))
		if len(items) == 0 {
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		res, err := st.ApplyBatch(ctx, items)
		cancel()
		if err != nil {
			t.Fatalf("apply %q: %v", in, err)
		}
		if res.Applied+res.Duplicates+res.DeadLettered+len(res.Deferred) != len(items) {
			t.Fatalf("%d items, result %+v", len(items), res)
		}
	}
}

// parseCorpus reads a "go test fuzz v1" file of string and []byte values.
func parseCorpus(b []byte) ([]string, error) {
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) == 0 || lines[0] != "go test fuzz v1" {
		return nil, fmt.Errorf("not a fuzz corpus file")
	}
	var out []string
	for _, l := range lines[1:] {
		open, close := strings.IndexByte(l, '('), strings.LastIndexByte(l, ')')
		if open < 0 || close < open {
			return nil, fmt.Errorf("bad line %q", l)
		}
		v, err := strconv.Unquote(l[open+1 : close])
		if err != nil {
			return nil, fmt.Errorf("line %q: %w", l, err)
		}
		out = append(out, v)
	}
	return out, nil
}
