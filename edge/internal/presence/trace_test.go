package presence

import (
	"testing"
	"time"
)

// traceSeeds are the committed seeds the defaults were tuned on.
var traceSeeds = []uint64{1, 2, 3, 4, 5}

const settle = 5 * time.Second

// TestTraces_Accuracy replays the seeded multi-room traces and reports room
// assignment precision and recall, against a naive baseline (the room whose
// antenna read the tag strongest in the last second). Accuracy, unlike
// speed, is a property of the rules: the floors guard against a change that
// lets stray reads through.
func TestTraces_Accuracy(t *testing.T) {
	var all, naive Accuracy
	for _, seed := range traceSeeds {
		tr := Generate(TraceConfig{Seed: seed, Rooms: 4, Tags: 40, Span: 10 * time.Minute})
		acc, err := Evaluate(tr, Config{}, settle)
		if err != nil {
			t.Fatal(err)
		}
		nv := EvaluateWith(tr, settle, strongestLastSecond(tr))
		t.Logf("seed %d: scorer precision %.4f recall %.4f (tp %d fp %d fn %d); naive precision %.4f recall %.4f",
			seed, acc.Precision(), acc.Recall(), acc.TP, acc.FP, acc.FN, nv.Precision(), nv.Recall())
		all.TP, all.FP, all.FN = all.TP+acc.TP, all.FP+acc.FP, all.FN+acc.FN
		naive.TP, naive.FP, naive.FN = naive.TP+nv.TP, naive.FP+nv.FP, naive.FN+nv.FN
	}
	t.Logf("all seeds: scorer precision %.4f recall %.4f; naive precision %.4f recall %.4f",
		all.Precision(), all.Recall(), naive.Precision(), naive.Recall())
	if all.Precision() < 0.99 || all.Recall() < 0.97 {
		t.Errorf("precision %.4f recall %.4f, want at least 0.99 and 0.97", all.Precision(), all.Recall())
	}
}

// strongestLastSecond is the baseline: any read in the last second puts the
// tag in the room that read it strongest.
func strongestLastSecond(tr *Trace) func([]Read, time.Time) map[string]int {
	var window []Read
	return func(rs []Read, now time.Time) map[string]int {
		window = append(window, rs...)
		k := 0
		for k < len(window) && now.Sub(window[k].At) > time.Second {
			k++
		}
		window = window[k:]
		best := map[string]Read{}
		for _, r := range window {
			if b, ok := best[r.Key]; !ok || r.RSSI > b.RSSI {
				best[r.Key] = r
			}
		}
		out := map[string]int{}
		for k, r := range best {
			out[k] = r.Antenna
		}
		return out
	}
}

// Ensure that a trace is the same for the same seed.
func TestGenerate_Deterministic(t *testing.T) {
	a := Generate(TraceConfig{Seed: 7, Tags: 5, Span: time.Minute})
	b := Generate(TraceConfig{Seed: 7, Tags: 5, Span: time.Minute})
	if len(a.Reads) != len(b.Reads) || len(a.Reads) == 0 {
		t.Fatalf("%d and %d reads", len(a.Reads), len(b.Reads))
	}
	for i := range a.Reads {
		if a.Reads[i] != b.Reads[i] {
			t.Fatalf("read %d differs", i)
		}
	}
}
