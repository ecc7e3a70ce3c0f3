package cooccur

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"testing"
	"testing/quick"
)

type membership struct{ session, product string }

// fold applies memberships in the order given, in batches of batch, the
// way the hub's applier does: per session, the members stored so far and
// the batch's additions.
func fold(ms []membership, batch int) map[Pair]int64 {
	stored := map[string][]string{}
	counts := map[Pair]int64{}
	for start := 0; start < len(ms); start += batch {
		added := map[string][]string{}
		var order []string
		for _, m := range ms[start:min(start+batch, len(ms))] {
			if _, ok := added[m.session]; !ok {
				order = append(order, m.session)
			}
			added[m.session] = append(added[m.session], m.product)
		}
		for _, s := range order {
			fresh, pairs := Add(stored[s], added[s])
			stored[s] = append(stored[s], fresh...)
			for _, p := range pairs {
				counts[p]++
			}
		}
	}
	return counts
}

func randomLog(r *rand.Rand) []membership {
	var ms []membership
	for range r.IntN(60) {
		ms = append(ms, membership{fmt.Sprintf("s%d", r.IntN(8)), fmt.Sprintf("p%d", r.IntN(10))})
	}
	return ms
}

// Ensure that the counts are the oracle's whatever the order, duplication
// and batching of memberships.
func TestAdd_OrderDuplicatesBatching(t *testing.T) {
	prop := func(seed uint64) bool {
		r := rand.New(rand.NewPCG(seed, 1))
		ms := randomLog(r)
		sessions := map[string][]string{}
		for _, m := range ms {
			sessions[m.session] = append(sessions[m.session], m.product)
		}
		want := Count(sessions)
		// Shuffle, duplicate some, batch at random.
		log := append([]membership(nil), ms...)
		for range r.IntN(len(ms) + 1) {
			log = append(log, ms[r.IntN(len(ms))])
		}
		r.Shuffle(len(log), func(i, j int) { log[i], log[j] = log[j], log[i] })
		got := fold(log, 1+r.IntN(10))
		if !maps.Equal(got, want) {
			t.Logf("seed %d: got %v want %v", seed, got, want)
			return false
		}
		return true
	}
	if err := quick.Check(prop, &quick.Config{MaxCount: 500}); err != nil {
		t.Fatal(err)
	}
}

func TestAdd(t *testing.T) {
	for _, tc := range []struct {
		existing, added []string
		fresh           []string
		pairs           []Pair
	}{
		{nil, []string{"b", "a", "b"}, []string{"a", "b"}, []Pair{{"a", "b"}}},
		{[]string{"a"}, []string{"a"}, nil, nil},
		{[]string{"c", "a"}, []string{"b", ""}, []string{"b"}, []Pair{{"a", "b"}, {"b", "c"}}},
		{nil, []string{"a"}, []string{"a"}, nil},
	} {
		fresh, pairs := Add(tc.existing, tc.added)
		if fmt.Sprint(fresh) != fmt.Sprint(tc.fresh) || fmt.Sprint(pairs) != fmt.Sprint(tc.pairs) {
			t.Errorf("Add(%v, %v) = %v, %v; want %v, %v", tc.existing, tc.added, fresh, pairs, tc.fresh, tc.pairs)
		}
	}
}

// Ensure that ranking does not depend on the candidates' order and
// explains each suggestion.
func TestRank(t *testing.T) {
	cands := []Candidate{
		{Product: "jeans", Category: "trousers", Tried: 5, Bought: 1},
		{Product: "shirt-2", Category: "shirts", Tried: 6},
		{Product: "shirt-3", Category: "shirts", Tried: 1, Bought: 3},
		{Product: "self", Category: "shirts", Tried: 9},
		{Product: "none", Category: "shirts"},
	}
	want := "[{jeans 5 1 7 completes the look} {shirt-3 1 3 7 often bought together} {shirt-2 6 0 6 often tried with}]"
	for i := range 20 {
		r := rand.New(rand.NewPCG(uint64(i), 2))
		c := append([]Candidate(nil), cands...)
		r.Shuffle(len(c), func(i, j int) { c[i], c[j] = c[j], c[i] })
		if got := fmt.Sprint(Rank("shirts", "self", c, 5)); got != want {
			t.Fatalf("got %s\nwant %s", got, want)
		}
	}
	if got := Rank("shirts", "self", cands, 1); len(got) != 1 || got[0].Product != "jeans" {
		t.Fatalf("top 1: %v", got)
	}
}

// Ensure that a product with no history gets similar products, and that
// filling never repeats one or suggests the product itself.
func TestFill(t *testing.T) {
	got := Fill(nil, "new", []string{"a", "new", "a", "b", "c"}, 2)
	if fmt.Sprint(got) != "[{a 0 0 0 same style and brand} {b 0 0 0 same style and brand}]" {
		t.Fatalf("%v", got)
	}
	got = Fill([]Complement{{Product: "b", Score: 3, Reason: ReasonTriedWith}}, "x", []string{"b", "c"}, 3)
	if len(got) != 2 || got[1].Product != "c" {
		t.Fatalf("%v", got)
	}
}
