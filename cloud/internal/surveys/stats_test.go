package surveys

import (
	"encoding/json"
	"errors"
	"math"
	"testing"
	"time"

	"github.com/omnisync/omnisync/shared/hlc"
)

func near(a, b float64) bool { return math.Abs(a-b) < 0.005 }

// scores makes n answers of one kind, each from its own respondent.
func scores(kind Kind, survey string, vals ...int) []Answer {
	var out []Answer
	for i, v := range vals {
		out = append(out, Answer{ID: survey + string(rune('a'+i%26)) + string(rune('a'+i/26)), Survey: survey, Kind: kind,
			Respondent: "R" + string(rune('A'+i%26)) + string(rune('A'+i/26)), Store: "S1", Channel: "kiosk",
			At: monday, HLC: hlc.Timestamp{Wall: int64(i)}, Score: v, Scored: true, Complete: true})
	}
	return out
}

func repeat(v, n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = v
	}
	return out
}

// Ensure that scores and intervals are the documented ones, checked
// against values worked out by hand.
func TestAggregate_ScoresAndIntervals(t *testing.T) {
	var nps []int
	nps = append(nps, repeat(10, 30)...)
	nps = append(nps, repeat(9, 20)...)
	nps = append(nps, repeat(8, 30)...)
	nps = append(nps, repeat(3, 20)...)
	tests := []struct {
		name           string
		answers        []Answer
		score, low, hi float64
		check          func(Result) bool
	}{
		// 50 promoters, 30 passives, 20 detractors.
		{"NPS", scores(NPS, "n", nps...), 30, 14.05, 44.20,
			func(r Result) bool { return r.Promoters == 50 && r.Passives == 30 && r.Detractors == 20 }},
		// One promoter: the adjusted interval is wide, not [100, 100].
		{"NPS of one", scores(NPS, "n", 9), 100, -48.50, 98.50, nil},
		{"CSAT 8 of 10 satisfied", scores(CSAT, "c", 5, 5, 4, 4, 4, 4, 5, 4, 2, 3), 80, 49.02, 94.33,
			func(r Result) bool { return r.Satisfied == 8 }},
		{"CSAT none satisfied", scores(CSAT, "c", 1, 2, 3, 1, 2), 0, 0, 43.45, nil},
		{"CES", scores(CES, "e", 1, 2, 3, 4, 5), 3, 1.04, 4.96,
			func(r Result) bool { return near(r.StdDev, math.Sqrt(2.5)) }},
		{"CES of one", scores(CES, "e", 6), 6, 1, 7, nil},
	}
	for _, tt := range tests {
		rs, err := Aggregate(tt.answers, 0, 0.95)
		if err != nil || len(rs) != 1 {
			t.Fatalf("%s: %v %+v", tt.name, err, rs)
		}
		r := rs[0]
		if !near(r.Score, tt.score) || !near(r.Low, tt.low) || !near(r.High, tt.hi) || r.Responses != len(tt.answers) ||
			tt.check != nil && !tt.check(r) {
			t.Errorf("%s: %+v, want %g [%g, %g]", tt.name, r, tt.score, tt.low, tt.hi)
		}
	}
	// A higher level widens the interval.
	r95, _ := Aggregate(scores(NPS, "n", nps...), 0, 0.95)
	r99, _ := Aggregate(scores(NPS, "n", nps...), 0, 0.99)
	if !(r99[0].Low < r95[0].Low && r99[0].High > r95[0].High) {
		t.Errorf("99%% %+v inside 95%% %+v", r99[0], r95[0])
	}
}

// Ensure that answers are grouped by store, channel and ISO week, the week
// taken in the answer's own time zone.
func TestAggregate_Groups(t *testing.T) {
	paris := time.FixedZone("CET", 3600)
	as := scores(CSAT, "c", 5, 1, 4, 4)
	as[0].Store, as[0].Channel = "S1", "kiosk"
	as[1].Store, as[1].Channel = "S2", "kiosk"
	as[2].Store, as[2].Channel = "S2", "receipt_qr"
	as[3].Store, as[3].Channel = "S2", "receipt_qr"
	// Sunday 23:30 UTC is Monday 00:30 in Paris: week 10, not 9.
	as[2].At = time.Date(2025, 3, 2, 23, 30, 0, 0, time.UTC).In(paris)
	// 30 December 2024 is in 2025-W01.
	as[3].At = time.Date(2024, 12, 30, 12, 0, 0, 0, paris)
	type row struct {
		store, channel, week string
		n                    int
	}
	tests := []struct {
		by   GroupBy
		want []row
	}{
		{0, []row{{"", "", "", 4}}},
		{ByStore, []row{{"S1", "", "", 1}, {"S2", "", "", 3}}},
		{ByChannel, []row{{"", "kiosk", "", 2}, {"", "receipt_qr", "", 2}}},
		{ByWeek, []row{{"", "", "2025-W01", 1}, {"", "", "2025-W10", 3}}},
		{ByStore | ByChannel | ByWeek, []row{{"S1", "kiosk", "2025-W10", 1}, {"S2", "kiosk", "2025-W10", 1}, {"S2", "receipt_qr", "2025-W01", 1}, {"S2", "receipt_qr", "2025-W10", 1}}},
	}
	for _, tt := range tests {
		rs, err := Aggregate(as, tt.by, 0.95)
		if err != nil {
			t.Fatal(err)
		}
		var got []row
		for _, r := range rs {
			got = append(got, row{r.Store, r.Channel, r.Week.String(), r.Responses})
		}
		if len(got) != len(tt.want) {
			t.Errorf("by %b: %v, want %v", tt.by, got, tt.want)
			continue
		}
		for i := range got {
			if got[i] != tt.want[i] {
				t.Errorf("by %b: %v, want %v", tt.by, got, tt.want)
				break
			}
		}
	}
}

// Ensure that partial answers are kept and counted, that a later complete
// answer replaces the partial one, and that one respondent counts once.
func TestAggregate_PartialAndDuplicates(t *testing.T) {
	partial := answer("p1", "R1", 3, 10, false)
	unscored := answer("p2", "R2", 0, 10, false)
	unscored.Scored = false
	complete := answer("c1", "R1", 10, 20, true)
	other := answer("o1", "R3", 9, 15, true)
	other.Comment = "Great fitting rooms"
	tests := []struct {
		name                                 string
		answers                              []Answer
		responses, partial, unscored, promos int
	}{
		{"a partial answer counts", []Answer{partial, other}, 2, 1, 0, 1},
		{"an answer without a score is kept aside", []Answer{unscored, other}, 1, 0, 1, 1},
		{"the later complete answer replaces the partial", []Answer{partial, other, complete}, 2, 0, 0, 2},
		{"in any order", []Answer{complete, other, partial}, 2, 0, 0, 2},
		{"delivered twice, counted once", []Answer{other, other, complete, complete, partial}, 2, 0, 0, 2},
	}
	for _, tt := range tests {
		rs, err := Aggregate(tt.answers, 0, 0.95)
		if err != nil || len(rs) != 1 {
			t.Fatalf("%s: %v %+v", tt.name, err, rs)
		}
		r := rs[0]
		if r.Responses != tt.responses || r.Partial != tt.partial || r.Unscored != tt.unscored || r.Promoters != tt.promos || r.Comments != 1 {
			t.Errorf("%s: %+v", tt.name, r)
		}
	}
	// A group with only unscored answers has no score to report.
	if rs, _ := Aggregate([]Answer{unscored}, 0, 0.95); len(rs) != 0 {
		t.Errorf("unscored only: %+v", rs)
	}
}

// Ensure that Aggregate refuses what it cannot score.
func TestAggregate_Errors(t *testing.T) {
	bad := answer("x", "R", 12, 1, true)
	mixed := []Answer{answer("a", "R1", 9, 1, true), answer("b", "R2", 4, 1, true)}
	mixed[1].Kind = CSAT
	for name, as := range map[string][]Answer{"invalid answer": {bad}, "two scales": mixed} {
		if _, err := Aggregate(as, 0, 0.95); !errors.Is(err, ErrInvalidAnswer) {
			t.Errorf("%s: %v", name, err)
		}
	}
	for _, level := range []float64{0, 1, 95, math.NaN()} {
		if _, err := Aggregate(nil, 0, level); err == nil {
			t.Errorf("level %g accepted", level)
		}
	}
}

// Ensure that weeks travel as ISO text.
func TestWeek_JSON(t *testing.T) {
	b, err := json.Marshal(Result{Week: Week{2025, 9}})
	if err != nil || !json.Valid(b) {
		t.Fatal(err)
	}
	var r Result
	if err := json.Unmarshal(b, &r); err != nil || r.Week != (Week{2025, 9}) {
		t.Errorf("%s -> %+v %v", b, r.Week, err)
	}
	if b, _ := json.Marshal(Result{}); string(b) != `{"survey":"","kind":"","responses":0,"partial":0,"unscored":0,"comments":0,"score":0,"low":0,"high":0}` {
		t.Errorf("zero week: %s", b)
	}
	var w Week
	for _, s := range []string{"2025-09", "2025-W54", "x-W1"} {
		if w.UnmarshalText([]byte(s)) == nil {
			t.Errorf("%q accepted", s)
		}
	}
}
