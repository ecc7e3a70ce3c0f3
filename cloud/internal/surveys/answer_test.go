package surveys

import (
	"cmp"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"testing/quick"
	"time"

	"github.com/omnisync/omnisync/shared/hlc"
)

var monday = time.Date(2025, 3, 3, 10, 0, 0, 0, time.UTC) // 2025-W10

func answer(id, respondent string, score int, wall int64, complete bool) Answer {
	return Answer{ID: id, Survey: "post-purchase", Kind: NPS, Respondent: respondent, Store: "S1", Channel: "kiosk",
		At: monday, HLC: hlc.Timestamp{Wall: wall}, Score: score, Scored: true, Complete: complete}
}

// Ensure that impossible answers are refused with the reason.
func TestAnswer_Validate(t *testing.T) {
	ok := answer("a", "R1", 9, 1, true)
	tests := []struct {
		name string
		edit func(*Answer)
		want string
	}{
		{"valid", func(*Answer) {}, ""},
		{"partial without score", func(a *Answer) { a.Scored, a.Complete, a.Score = false, false, 0 }, ""},
		{"no survey", func(a *Answer) { a.Survey = "" }, "no survey"},
		{"unknown kind", func(a *Answer) { a.Kind = "sus" }, `unknown kind "sus"`},
		{"no respondent", func(a *Answer) { a.Respondent = "" }, "no respondent"},
		{"no time", func(a *Answer) { a.At = time.Time{} }, "no time"},
		{"NPS 11", func(a *Answer) { a.Score = 11 }, "nps score 11 not in 0..10"},
		{"CSAT 0", func(a *Answer) { a.Kind, a.Score = CSAT, 0 }, "csat score 0 not in 1..5"},
		{"CES 8", func(a *Answer) { a.Kind, a.Score = CES, 8 }, "ces score 8 not in 1..7"},
		{"complete without score", func(a *Answer) { a.Scored = false }, "complete answer without a score"},
		{"comment too long", func(a *Answer) { a.Comment = strings.Repeat("é", MaxCommentLength+1) }, "longer than"},
		{"comment not UTF-8", func(a *Answer) { a.Comment = "\xff" }, "not UTF-8"},
	}
	for _, tt := range tests {
		a := ok
		tt.edit(&a)
		err := a.Validate()
		if tt.want == "" && err != nil || tt.want != "" && (!errors.Is(err, ErrInvalidAnswer) || !strings.Contains(err.Error(), tt.want)) {
			t.Errorf("%s: %v, want %q", tt.name, err, tt.want)
		}
	}
}

// Ensure that a complete answer beats a partial one, then the later HLC,
// then the greater id.
func TestSupersedes(t *testing.T) {
	tests := []struct {
		name string
		a, b Answer
		want bool
	}{
		{"later complete over partial", answer("2", "R", 9, 20, true), answer("1", "R", 3, 10, false), true},
		{"earlier complete over later partial", answer("1", "R", 9, 10, true), answer("2", "R", 3, 20, false), true},
		{"partial never over complete", answer("2", "R", 3, 20, false), answer("1", "R", 9, 10, true), false},
		{"later partial over earlier partial", answer("2", "R", 3, 20, false), answer("1", "R", 9, 10, false), true},
		{"later complete over earlier complete", answer("2", "R", 3, 20, true), answer("1", "R", 9, 10, true), true},
		{"logical counter orders equal walls", Answer{HLC: hlc.Timestamp{Wall: 5, Logical: 2}}, Answer{HLC: hlc.Timestamp{Wall: 5, Logical: 1}}, true},
		{"equal HLCs: greater id", answer("b", "R", 3, 10, true), answer("a", "R", 9, 10, true), true},
		{"the same answer twice", answer("a", "R", 3, 10, true), answer("a", "R", 3, 10, true), false},
	}
	for _, tt := range tests {
		if got := Supersedes(tt.a, tt.b); got != tt.want {
			t.Errorf("%s: %v", tt.name, got)
		}
	}
}

// randomAnswers draws answers of a few respondents to two surveys, partial
// and complete, with repeated HLCs and answers delivered twice.
func randomAnswers(rng *rand.Rand, n int) []Answer {
	var out []Answer
	for i := range n {
		a := answer(fmt.Sprint(i), fmt.Sprintf("R%d", rng.IntN(8)), rng.IntN(11), int64(rng.IntN(20)), rng.IntN(2) == 0)
		a.Store = []string{"S1", "S2"}[rng.IntN(2)]
		a.At = monday.Add(time.Duration(rng.IntN(21*24)) * time.Hour)
		if rng.IntN(2) == 0 {
			a.Survey, a.Kind, a.Score = "fitting-room", CES, 1+rng.IntN(7)
		}
		if !a.Complete && rng.IntN(3) == 0 {
			a.Scored, a.Score = false, 0
		}
		out = append(out, a)
		if rng.IntN(5) == 0 {
			out = append(out, a) // a kiosk resending after reconnecting
		}
	}
	return out
}

// Ensure that the same answer of each respondent counts whatever order
// the answers arrive in, and however often each is delivered.
func TestDedupe_SameInAnyOrder(t *testing.T) {
	prop := func(seed uint64) bool {
		rng := rand.New(rand.NewPCG(seed, 3))
		as := randomAnswers(rng, 60)
		want := kept(Dedupe(as))
		wantAgg, err := Aggregate(as, ByStore|ByWeek, 0.95)
		if err != nil {
			t.Fatal(err)
		}
		for range 3 {
			shuffled := slices.Clone(as)
			rng.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
			shuffled = append(shuffled, shuffled[:len(shuffled)/3]...) // delivered again
			got := kept(Dedupe(shuffled))
			gotAgg, _ := Aggregate(shuffled, ByStore|ByWeek, 0.95)
			if !slices.Equal(got, want) || fmt.Sprint(gotAgg) != fmt.Sprint(wantAgg) {
				return false
			}
		}
		// Exactly one answer per respondent and survey, the greatest.
		for _, k := range Dedupe(as) {
			for _, a := range as {
				if a.Survey == k.Survey && a.Respondent == k.Respondent && Supersedes(a, k) {
					return false
				}
			}
		}
		return true
	}
	if err := quick.Check(prop, &quick.Config{MaxCount: 100}); err != nil {
		t.Error(err)
	}
}

// kept is the ids of answers, sorted.
func kept(as []Answer) []string {
	var ids []string
	for _, a := range as {
		ids = append(ids, a.Survey+"/"+a.Respondent+"/"+a.ID)
	}
	slices.SortFunc(ids, cmp.Compare)
	return ids
}
