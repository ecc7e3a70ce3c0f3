package reviews

import (
	"math/rand"
	"slices"
	"testing"

	"github.com/omnisync/omnisync/shared/events"
)

// Ensure that the screener rejects whole blocked words in any field,
// ignoring case, and publishes or holds the rest as the policy says.
func TestScreen(t *testing.T) {
	tests := []struct {
		name        string
		policy      Policy
		r           events.Review
		status, why string
	}{
		{"clean, auto", Policy{BlockedWords: []string{"casino"}, AutoPublish: true}, events.Review{Title: "Great fit"}, Published, ""},
		{"clean, moderated", Policy{BlockedWords: []string{"casino"}}, events.Review{Title: "Great fit"}, Pending, ""},
		{"blocked in text", Policy{BlockedWords: []string{"casino"}, AutoPublish: true}, events.Review{Text: "visit my CASINO now"}, Rejected, `blocked word "casino"`},
		{"blocked in nickname", Policy{BlockedWords: []string{"casino"}}, events.Review{Nickname: "casino-king"}, Rejected, `blocked word "casino"`},
		{"part of a word is fine", Policy{BlockedWords: []string{"ass"}, AutoPublish: true}, events.Review{Text: "a classic pass"}, Published, ""},
		{"mixed case in the list", Policy{BlockedWords: []string{" Casino "}}, events.Review{Text: "casino"}, Rejected, `blocked word "casino"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, why := NewScreener(tt.policy).Screen(tt.r)
			if status != tt.status || why != tt.why {
				t.Fatalf("Screen = %q %q, want %q %q", status, why, tt.status, tt.why)
			}
		})
	}
}

// Ensure that Normalize stores equal policies as equal lists and refuses
// words the tokenizer could never match.
func TestNormalize(t *testing.T) {
	p, err := Policy{BlockedWords: []string{"B", "a", " b", "", "a"}}.Normalize()
	if err != nil || !slices.Equal(p.BlockedWords, []string{"a", "b"}) {
		t.Fatalf("Normalize = %v, %v", p.BlockedWords, err)
	}
	if _, err := (Policy{BlockedWords: []string{"two words"}}).Normalize(); err == nil {
		t.Fatal("accepted a phrase")
	}
	if _, err := (Policy{BlockedWords: make([]string, MaxBlockedWords+1)}).Normalize(); err == nil {
		t.Fatal("accepted an overlong list")
	}
}

// Ensure that the earliest stamp is kept whatever the order the
// candidates arrive in, with duplicates.
func TestStampBefore_AnyOrder(t *testing.T) {
	stamps := []Stamp{{10, "b"}, {10, "a"}, {12, "0"}, {9, "z"}, {9, "z"}}
	want := Stamp{9, "z"}
	rng := rand.New(rand.NewSource(1))
	for range 100 {
		rng.Shuffle(len(stamps), func(i, j int) { stamps[i], stamps[j] = stamps[j], stamps[i] })
		best := stamps[0]
		for _, s := range stamps[1:] {
			if s.Before(best) {
				best = s
			}
		}
		if best != want {
			t.Fatalf("kept %v, want %v", best, want)
		}
	}
}

// Ensure that moderators move reviews between statuses as the table says,
// and nowhere else.
func TestModerate(t *testing.T) {
	tests := []struct {
		status string
		action Action
		want   string
	}{
		{Pending, Approve, Published}, {Rejected, Approve, Published}, {Pending, Reject, Rejected}, {Published, Unpublish, Rejected},
		{Published, Approve, ""}, {Rejected, Reject, ""}, {Published, Reject, ""}, {Pending, Unpublish, ""}, {Pending, "delete", ""},
	}
	for _, tt := range tests {
		got, err := Moderate(tt.status, tt.action)
		if got != tt.want || (err != nil) != (tt.want == "") {
			t.Errorf("Moderate(%s, %s) = %q, %v; want %q", tt.status, tt.action, got, err, tt.want)
		}
	}
}
